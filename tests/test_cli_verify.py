"""``edgeface verify`` on group photos (issue 12 item 9): it says which face it compared, warns when a
photo has several, and ``--any-face`` compares the best pair."""
from __future__ import annotations

import json

from edgeface.cli import EXIT_DIFFERENT, EXIT_INPUT, EXIT_OK, main
from conftest import REPO, shared_data

GROUP = REPO / "examples" / "group.jpg"          # Eileen Collins (larger face, #0) and the cameraman (#1)
CAMERAMAN = REPO / "examples" / "cameraman.jpg"
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_says_which_face_it_compared_and_warns_about_group_photos(capsys):
    code, out, err = run(capsys, "verify", str(GROUP), str(CAMERAMAN))
    assert code == EXIT_DIFFERENT  # the largest face of the group is Eileen Collins, not the cameraman
    assert f"{GROUP}: face #0 of 2 at (" in out and f"{CAMERAMAN}: face #0 of 1 at (" in out
    assert "has 2 faces; compared the largest (#0)" in err and "--any-face" in err

    code, out, _ = run(capsys, "verify", str(GROUP), str(CAMERAMAN), "--json")
    doc = json.loads(out)
    assert code == EXIT_DIFFERENT and doc["same"] is False and doc["any_face"] is False
    assert doc["a"]["faces_found"] == 2 and doc["a"]["face_index"] == 0
    x1, y1, x2, y2 = doc["a"]["box"]
    assert x2 < 512  # the left half of the group photo: the astronaut


def test_any_face_compares_the_best_pair(capsys):
    code, out, err = run(capsys, "verify", str(GROUP), str(CAMERAMAN), "--any-face", "--json")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["same"] is True and doc["any_face"] is True
    assert doc["a"]["face_index"] == 1 and doc["a"]["box"][0] > 512  # the right half: the cameraman
    assert doc["b"] == {**doc["b"], "faces_found": 1, "face_index": 0}
    assert "warning" not in err
    code, _, _ = run(capsys, "verify", str(GROUP), str(ASTRONAUT), "--any-face")
    assert code == EXIT_OK


def test_verify_group_photo_of_obama_and_biden(capsys):
    root = shared_data("identification") / "knn_examples"
    group, biden = root / "test" / "obama_and_biden.jpg", root / "train" / "biden" / "biden.jpg"
    code, out, err = run(capsys, "verify", str(group), str(biden), "--json")
    doc = json.loads(out)
    assert doc["a"]["faces_found"] >= 2 and "--any-face" in err  # the user is told, whatever the verdict
    code, out, _ = run(capsys, "verify", str(group), str(biden), "--any-face", "--json")
    assert code == EXIT_OK and json.loads(out)["same"] is True


def test_verify_missing_face_is_an_input_error(capsys, tmp_path):
    import cv2
    import numpy as np
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((200, 200, 3), np.uint8))
    code, out, err = run(capsys, "verify", str(ASTRONAUT), str(blank), "--json")
    doc = json.loads(out)
    assert code == EXIT_INPUT and doc["same"] is None and str(blank) in doc["error"]
    assert "no face found" in err
