"""The `edgeface` command: JSON output, exit codes, a gallery round trip through the CLI."""
from __future__ import annotations

import json
import shutil
import sqlite3

import cv2
import pytest

from edgeface.cli import EXIT_DIFFERENT, EXIT_INPUT, EXIT_OK, EXIT_SETUP, EXIT_USAGE, main
from conftest import EXAMPLE, shared_data


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_detect_json_and_draw(capsys, tmp_path):
    code, out, err = run(capsys, "detect", str(EXAMPLE), "--json", "--draw", str(tmp_path / "drawn"))
    assert code == EXIT_OK
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["command"] == "detect"
    (image,) = doc["images"]
    assert image["error"] is None and (image["width"], image["height"]) == (512, 512)
    (face,) = image["faces"]
    assert set(face) == {"box", "score", "landmarks"}  # detect: the detector alone, no quality gate
    assert set(face["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 320 and 50 < y1 < y2 < 260 and face["score"] > 0.9
    drawn = cv2.imread(str(tmp_path / "drawn" / "astronaut.jpg"))
    assert drawn is not None and drawn.shape == (512, 512, 3)
    assert "1/1 images, 1 faces" in err


def test_unreadable_input_is_reported_and_exit_code_says_so(capsys, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 garbage")
    code, out, err = run(capsys, "detect", str(EXAMPLE), str(bad), "--json")
    assert code == EXIT_INPUT
    images = json.loads(out)["images"]
    assert images[0]["error"] is None and len(images[0]["faces"]) == 1
    assert "broken.jpg" in images[1]["error"] and images[1]["faces"] == []


def test_enroll_identify_verify_and_gallery_commands(capsys, tmp_path):
    people = tmp_path / "people" / "eileen"
    people.mkdir(parents=True)
    shutil.copy(EXAMPLE, people / "portrait.jpg")
    (tmp_path / "people" / "nobody").mkdir()
    (tmp_path / "people" / "nobody" / "blank.png").write_bytes(cv2.imencode(".png", 0 * cv2.imread(str(EXAMPLE)))[1].tobytes())
    gallery = str(tmp_path / "g.db")

    code, out, err = run(capsys, "enroll", gallery, "--from-dir", str(tmp_path / "people"), "--json")
    assert code == EXIT_INPUT  # the blank photo has no face: reported, the rest enrolled
    report = {p["name"]: p for p in json.loads(out)["people"]}
    assert report["eileen"]["enrolled"] == 1 and report["nobody"]["enrolled"] == 0
    assert "no face" in report["nobody"]["problems"][0]

    flipped = tmp_path / "flipped.jpg"
    cv2.imwrite(str(flipped), cv2.flip(cv2.imread(str(EXAMPLE)), 1))
    code, out, _ = run(capsys, "identify", gallery, str(flipped), "--json")
    assert code == EXIT_OK
    (face,) = json.loads(out)["images"][0]["faces"]
    assert face["identity"] == "eileen" and face["similarity"] > 0.8

    code, out, _ = run(capsys, "verify", str(EXAMPLE), str(flipped), "--json")
    assert code == EXIT_OK and json.loads(out)["same"] is True

    code, out, _ = run(capsys, "gallery", "list", gallery, "--json")
    assert code == EXIT_OK and json.loads(out)["people"] == [{"name": "eileen", "embeddings": 1}]
    assert run(capsys, "gallery", "rename", gallery, "eileen", "collins")[0] == EXIT_OK
    assert run(capsys, "gallery", "remove", gallery, "nobody")[0] == EXIT_USAGE  # not enrolled: a bad NAME
    assert run(capsys, "gallery", "remove", gallery)[0] == EXIT_USAGE
    assert run(capsys, "gallery", "remove", gallery, "collins")[0] == EXIT_OK
    code, out, _ = run(capsys, "gallery", "list", gallery, "--json")
    assert json.loads(out)["people"] == []


def test_verify_different_people_exit_code(capsys, tmp_path):
    root = shared_data("identification")
    code, out, _ = run(capsys, "verify", str(root / "knn_examples/train/obama/obama.jpg"),
                       str(root / "knn_examples/train/biden/biden.jpg"), "--json")
    assert code == EXIT_DIFFERENT and json.loads(out)["same"] is False


def test_foreign_and_non_gallery_files_exit_setup(capsys, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE x (y)")
    code, _, err = run(capsys, "identify", str(other), str(EXAMPLE))
    assert code == EXIT_SETUP and "not an edgeface gallery" in err
    code, _, err = run(capsys, "identify", str(tmp_path / "missing.db"), str(EXAMPLE))
    assert code == EXIT_SETUP and "not found" in err


def test_info_json(capsys):
    code, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert code == EXIT_OK and info["edgeface"] and info["physical_cores"] >= 1
    assert {m["name"] for m in info["models"]} >= {"mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"}
