"""The CLI's usage errors, empty inputs, help text and option validation (issue 12 items 8 and 10)."""
from __future__ import annotations

import argparse
import json

import pytest

from edgeface.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, build_parser, main
from edgeface.detection import DEFAULT_DETECTOR
from conftest import EXAMPLE


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [
    ["detect", str(EXAMPLE), "--min-face", "0"],
    ["detect", str(EXAMPLE), "--min-face", "-5"],
    ["detect", str(EXAMPLE), "--min-face", "nan"],
    ["detect", str(EXAMPLE), "--min-face", "1.5"],
    ["detect", str(EXAMPLE), "--threads", "0"],
    ["verify", str(EXAMPLE), str(EXAMPLE), "--threads", "-1"],
    ["identify", "g.db", str(EXAMPLE), "--min-face", "0"],
])
def test_zero_min_face_and_threads_are_usage_errors(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and out == ""
    assert ("must be greater than 0" in err or "must be at least 6 px" in err) and "Traceback" not in err


def test_empty_folder_is_an_input_error_not_success(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, out, err = run(capsys, "detect", str(empty), "--json")
    assert code == EXIT_INPUT
    (record,) = json.loads(out)["images"]
    assert record["path"] == str(empty) and "no images" in record["error"]
    assert "no images" in err

    # With other inputs beside it: those are processed and reported, the exit code still says 3.
    code, out, _ = run(capsys, "detect", str(empty), str(EXAMPLE), "--json")
    images = json.loads(out)["images"]
    assert code == EXIT_INPUT and len(images[1]["faces"]) == 1


def test_identify_empty_folder_is_an_input_error(capsys, tmp_path):
    from edgeface import FaceAnalyzer
    with FaceAnalyzer() as fa:
        fa.open_gallery(tmp_path / "g.db").close()
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "identify", str(tmp_path / "g.db"), str(tmp_path / "empty"))
    assert code == EXIT_INPUT and "no images" in err


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_argument_of_every_subcommand_has_help():
    for name, sub in subcommands().items():
        for action in sub._actions:
            assert action.help, f"`edgeface {name}`: {action.dest} has no help"


def test_help_shows_defaults():
    help_text = " ".join(subcommands()["identify"].format_help().split())  # argparse wraps lines
    assert "default 20 for MTCNN" in help_text    # --min-face
    assert f"default: {DEFAULT_DETECTOR}," in help_text
    assert "(default: far_1e-3)" in help_text        # --operating-point
    assert "default: dlib_resnet_v1_int8" in help_text
    assert "default: the physical cores" in help_text


@pytest.mark.parametrize("command, absent", [
    ("info", ["--min-face", "--threads", "--embedder", "--operating-point"]),
    ("detect", ["--embedder", "--operating-point"]),   # detection only: no embedder, no threshold
])
def test_subcommands_list_only_the_options_that_apply(command, absent):
    help_text = subcommands()[command].format_help()
    for option in absent:
        assert option not in help_text, f"`edgeface {command} --help` lists {option}"


def test_inapplicable_option_is_a_usage_error(capsys):
    code, _, err = run(capsys, "info", "--min-face", "40")
    assert code == EXIT_USAGE and "unrecognized arguments: --min-face" in err


def test_unknown_embedder_suggests_embedders_not_detectors(capsys):
    code, out, err = run(capsys, "verify", str(EXAMPLE), str(EXAMPLE), "--embedder", "dlib_resnet")
    assert code == EXIT_USAGE and out == ""
    assert "did you mean 'dlib_resnet_v1'" in err
    assert "mtcnn" not in err
    code, _, err = run(capsys, "verify", str(EXAMPLE), str(EXAMPLE), "--embedder", "foo")
    assert code == EXIT_USAGE and "dlib_resnet_v1_int8" in err and "mtcnn" not in err


def test_error_messages_name_the_path_once(capsys, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 garbage")
    missing = tmp_path / "missing.jpg"
    code, out, err = run(capsys, "detect", str(bad), str(missing), "--json")
    assert code == EXIT_INPUT
    for record in json.loads(out)["images"]:
        assert record["error"].count(record["path"]) == 1, record["error"]
    for line in err.splitlines():
        assert line.count(str(bad)) + line.count(str(missing)) <= 1, line


def test_help_and_version_exit_zero(capsys):
    assert run(capsys, "--help")[0] == EXIT_OK
    assert run(capsys, "detect", "--help")[0] == EXIT_OK
    assert run(capsys, "--version")[0] == EXIT_OK


def test_enroll_names_a_missing_photo_once(capsys, tmp_path):
    missing = str(tmp_path / "x.jpg")
    code, _, err = run(capsys, "enroll", str(tmp_path / "g.db"), "--name", "a", missing)
    assert code == 3 and err.count(missing) == 1, err


def test_gallery_lists_no_detection_options():
    help_text = subcommands()["gallery"].format_help()
    assert "--min-face" not in help_text and "--detector" not in help_text and "--embedder" in help_text
