"""`edgeface enroll` and `edgeface gallery` as a user meets them (issue 12 items 1, 2, 8, 9, 10, 12)."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3

import cv2
import pytest

from conftest import EXAMPLE, shared_data
from edgeface.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def people(capsys, gallery: str) -> list[dict]:
    code, out, _ = run(capsys, "gallery", "list", gallery, "--json")
    assert code == EXIT_OK
    return json.loads(out)["people"]


def test_documented_enroll_form_works_and_rerun_is_idempotent(capsys, tmp_path):
    gallery = str(tmp_path / "g.db")
    flipped = tmp_path / "flipped.jpg"
    cv2.imwrite(str(flipped), cv2.flip(cv2.imread(str(EXAMPLE)), 1))
    code, out, _ = run(capsys, "enroll", gallery, "--name", "eileen", str(EXAMPLE), "--json")  # docs/cli.md form
    assert code == EXIT_OK and json.loads(out)["people"][0]["enrolled"] == 1
    code, out, err = run(capsys, "enroll", gallery, str(EXAMPLE), str(flipped), "--name", "eileen")  # old form
    assert code == EXIT_OK and "eileen: 1/2 photos enrolled, 1 already enrolled" in out
    code, out, _ = run(capsys, "enroll", gallery, "--name", "eileen", str(EXAMPLE), str(flipped), "--json")
    report = json.loads(out)["people"][0]
    assert code == EXIT_OK and report["enrolled"] == 0 and report["already_enrolled"] == 2
    assert people(capsys, gallery) == [{"name": "eileen", "embeddings": 2}]  # no duplicates after re-runs
    code, out, _ = run(capsys, "enroll", gallery, "--name", "eileen", str(flipped), "--replace", "--json")
    assert code == EXIT_OK and json.loads(out)["people"][0]["enrolled"] == 1
    assert people(capsys, gallery) == [{"name": "eileen", "embeddings": 1}]


def test_from_dir_usage_errors_and_empty_inputs(capsys, tmp_path):
    gallery = str(tmp_path / "g.db")
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(EXAMPLE, flat / "a.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "enroll", gallery, "--from-dir", str(flat))
    assert code == EXIT_USAGE and "no sub-folders" in err
    code, _, err = run(capsys, "enroll", gallery, "--from-dir", str(empty))
    assert code == EXIT_USAGE
    (empty / "nobody").mkdir()
    code, _, err = run(capsys, "enroll", gallery, "--from-dir", str(empty))
    assert code == EXIT_USAGE and "no images found" in err
    code, _, err = run(capsys, "enroll", gallery, "--from-dir", str(flat), "--name", "x")
    assert code == EXIT_USAGE and "--from-dir takes no --name" in err
    code, _, err = run(capsys, "enroll", gallery, "--name", "x", str(tmp_path / "empty" / "nobody"))
    assert code == EXIT_USAGE and "no images found" in err
    code, _, err = run(capsys, "enroll", gallery, str(EXAMPLE))
    assert code == EXIT_USAGE
    assert not os.path.exists(gallery) or people(capsys, gallery) == []


@pytest.mark.skipif(os.name != "posix", reason="undecodable file names are a POSIX thing")
def test_from_dir_with_undecodable_folder_name_skips_it_with_a_warning(capsys, tmp_path):
    root = tmp_path / "people"
    (root / "eileen").mkdir(parents=True)
    shutil.copy(EXAMPLE, root / "eileen" / "a.jpg")
    bad = os.path.join(os.fsencode(root), b"caf\xe9")
    os.mkdir(bad)
    shutil.copy(EXAMPLE, os.path.join(bad, b"b.jpg"))
    gallery = str(tmp_path / "g.db")
    code, out, err = run(capsys, "enroll", gallery, "--from-dir", str(root), "--json")
    assert code == EXIT_INPUT and "caf" in err and "not valid text" in err
    assert people(capsys, gallery) == [{"name": "eileen", "embeddings": 1}]
    assert {p["name"] for p in json.loads(out)["people"]} == {"caf\ufffd", "eileen"}


def test_group_photo_is_refused_for_enrollment(capsys, tmp_path):
    group = shared_data("identification") / "examples" / "two_people.jpg"  # two faces of about the same size
    gallery = str(tmp_path / "g.db")
    code, out, err = run(capsys, "enroll", gallery, "--name", "obama", str(group), str(EXAMPLE), "--json")
    assert code == EXIT_INPUT and "2 faces of similar size" in err
    (report,) = json.loads(out)["people"]
    assert report["enrolled"] == 1 and "crop the photo" in report["problems"][0]
    # a portrait with a small background face is not ambiguous: it is enrolled
    code, _, _ = run(capsys, "enroll", gallery, "--name", "obama", str(group.parent / "obama.jpg"))
    assert code == EXIT_OK


def test_gallery_list_shows_the_int8_model_and_bad_names_are_usage_errors(capsys, tmp_path):
    gallery = str(tmp_path / "g.db")
    code, _, _ = run(capsys, "enroll", gallery, "--name", "eileen", str(EXAMPLE), "--embedder", "dlib_resnet_v1_int8")
    assert code == EXIT_OK
    code, out, _ = run(capsys, "gallery", "list", gallery, "--json")
    doc = json.loads(out)
    assert doc["model"] == "dlib_resnet_v1_int8" and doc["embedding_space"] == "dlib_resnet_v1"
    code, _, err = run(capsys, "gallery", "remove", gallery, "ghost")
    assert code == EXIT_USAGE and "no person named 'ghost'" in err
    code, _, err = run(capsys, "gallery", "rename", gallery, "ghost", "x")
    assert code == EXIT_USAGE
    run(capsys, "enroll", gallery, "--name", "other", str(EXAMPLE), "--embedder", "dlib_resnet_v1_int8")
    code, _, err = run(capsys, "gallery", "rename", gallery, "eileen", "other")
    assert code == EXIT_USAGE and "already enrolled" in err
    code, _, _ = run(capsys, "gallery", "list", gallery, "extra")
    assert code == EXIT_USAGE


def test_schema1_gallery_from_the_cli_is_upgraded_and_kept(capsys, tmp_path):
    from test_gallery_scale import make_schema1
    import numpy as np
    path = tmp_path / "old.db"
    make_schema1(path, np.random.default_rng(0), [("ann", 2)])
    with sqlite3.connect(path) as db:  # a real 128-d schema-1 file of the default model
        db.execute("UPDATE meta SET value = '128' WHERE key = 'dim'")
        db.execute("UPDATE meta SET value = 'dlib_resnet_v1' WHERE key = 'embedding_space'")
        db.execute("UPDATE embeddings SET vector = ?", (np.ones(128, "<f4").tobytes(),))
    code, _, _ = run(capsys, "enroll", str(path), "--name", "eileen", str(EXAMPLE))
    assert code == EXIT_OK
    assert people(capsys, str(path)) == [{"name": "ann", "embeddings": 2}, {"name": "eileen", "embeddings": 1}]
