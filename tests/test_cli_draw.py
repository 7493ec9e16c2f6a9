"""``--draw OUT`` (issue 12 items 3 and 11): mirrored tree, kept formats, no silent or unsafe overwrite,
labels that scale and stay readable, one colour per kind of face."""
from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from edgeface.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from edgeface.cli.draw import DETECTED_COLOR, KNOWN_COLOR, UNKNOWN_COLOR, draw_faces
from edgeface.errors import InvalidArgumentError
from edgeface.faces import Face
from edgeface.gallery import Identity
from edgeface.image_io import write_image_atomic
from conftest import EXAMPLE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def tree(tmp_path):
    """photos/a/x.jpg and photos/b/x.png: same stem, different folders and formats."""
    for sub, ext in (("a", ".jpg"), ("b", ".png")):
        (tmp_path / "photos" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "photos" / sub / f"x{ext}"), cv2.imread(str(EXAMPLE)))
    return tmp_path / "photos"


def test_draw_mirrors_the_input_tree_and_keeps_each_extension(capsys, tmp_path, tree):
    out = tmp_path / "out"
    code, _, err = run(capsys, "detect", str(tree), "--draw", str(out))
    assert code == EXIT_OK, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a/x.jpg", "b/x.png"]
    assert (out / "b" / "x.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "a" / "x.jpg").read_bytes().startswith(b"\xff\xd8")
    # Files given one by one from different folders are mirrored below their common folder too.
    code, _, _ = run(capsys, "detect", str(tree / "a" / "x.jpg"), str(tree / "b" / "x.png"),
                     "--draw", str(tmp_path / "out2"))
    assert code == EXIT_OK
    assert (tmp_path / "out2" / "a" / "x.jpg").is_file() and (tmp_path / "out2" / "b" / "x.png").is_file()


def test_draw_never_overwrites_silently(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "astronaut.jpg").write_bytes(b"the user's own file")
    code, out_text, err = run(capsys, "detect", str(EXAMPLE), "--draw", str(out), "--json")
    assert code == EXIT_INPUT and "already exists" in err and "--overwrite" in err
    (record,) = json.loads(out_text)["images"]
    assert len(record["faces"]) == 1 and "already exists" in record["error"]  # detection still reported
    assert (out / "astronaut.jpg").read_bytes() == b"the user's own file"
    code, _, _ = run(capsys, "detect", str(EXAMPLE), "--draw", str(out), "--overwrite")
    assert code == EXIT_OK and cv2.imread(str(out / "astronaut.jpg")).shape == (512, 512, 3)


def test_draw_never_replaces_its_input_even_with_overwrite(capsys, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    shutil.copy(EXAMPLE, photo)
    before = photo.read_bytes()
    code, _, err = run(capsys, "detect", str(tmp_path), "--draw", str(tmp_path), "--overwrite")
    assert code == EXIT_INPUT and "input image itself" in err
    assert photo.read_bytes() == before


def test_draw_out_being_a_file_is_a_usage_error(capsys, tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"x")
    code, out, err = run(capsys, "detect", str(EXAMPLE), "--draw", str(target))
    assert code == EXIT_USAGE and out == ""
    assert "not a folder" in err and "Traceback" not in err
    assert target.read_bytes() == b"x"


def test_draw_does_not_write_through_planted_symlinks(capsys, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    # The old code wrote its temp file to OUT/.NAME.tmp, following whatever was planted there.
    os.symlink(victim, out / ".astronaut.jpg.tmp")
    code, _, err = run(capsys, "detect", str(EXAMPLE), "--draw", str(out))
    assert code == EXIT_OK, err
    assert victim.read_text() == "precious"
    # A symlink at the output name itself: refused, then replaced (not followed) with --overwrite.
    (out / "astronaut.jpg").unlink()
    os.symlink(victim, out / "astronaut.jpg")
    assert run(capsys, "detect", str(EXAMPLE), "--draw", str(out))[0] == EXIT_INPUT
    assert run(capsys, "detect", str(EXAMPLE), "--draw", str(out), "--overwrite")[0] == EXIT_OK
    assert victim.read_text() == "precious" and not (out / "astronaut.jpg").is_symlink()
    # A symlinked sub-folder inside OUT is not written through either.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    photos = tmp_path / "photos" / "sub"
    photos.mkdir(parents=True)
    shutil.copy(EXAMPLE, photos / "p.jpg")
    shutil.copy(EXAMPLE, tmp_path / "photos" / "q.jpg")
    out2 = tmp_path / "out2"
    out2.mkdir()
    os.symlink(elsewhere, out2 / "sub")
    code, _, err = run(capsys, "detect", str(tmp_path / "photos"), "--draw", str(out2))
    assert code == EXIT_INPUT and "symbolic link" in err
    assert list(elsewhere.iterdir()) == [] and (out2 / "q.jpg").is_file()


def test_write_image_atomic_is_safe(tmp_path, astronaut):
    target = tmp_path / "a.png"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / ".a.png.tmp")
    write_image_atomic(target, astronaut)
    assert victim.read_text() == "precious" and target.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(InvalidArgumentError, match="already exists"):
        write_image_atomic(target, astronaut, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.png.tmp", "a.png", "victim"]  # no temp left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600: as any new file


def face_at(x1, y1, x2, y2) -> Face:
    w, h = x2 - x1, y2 - y1
    marks = ((x1 + 0.3 * w, y1 + 0.4 * h), (x1 + 0.7 * w, y1 + 0.4 * h), (x1 + 0.5 * w, y1 + 0.6 * h),
             (x1 + 0.35 * w, y1 + 0.8 * h), (x1 + 0.65 * w, y1 + 0.8 * h))
    return Face((x1, y1, x2, y2), 0.99, marks)


def label_height(canvas: np.ndarray, color: tuple[int, int, int]) -> int:
    """Rows holding a long run of the label's background colour (the filled box behind the text)."""
    mask = np.all(canvas == np.array(color, np.uint8), axis=2)
    return int((mask.sum(axis=1) > 30).sum())


@pytest.mark.parametrize("side", [512, 2000])
def test_labels_scale_with_the_image_on_a_filled_background(side):
    white = np.full((side, side, 3), 255, np.uint8)
    f = side / 512
    canvas = draw_faces(white, [face_at(100 * f, 150 * f, 250 * f, 330 * f)])
    height = label_height(canvas, DETECTED_COLOR)
    # A label that is readable: at least 1.5 % of the image's side tall (the old fixed font: 12 px).
    assert height >= 0.015 * side, height
    # Text on its own background: the label box holds white text pixels inside the filled colour.
    top = int(150 * f) - height
    box = canvas[max(0, top):int(150 * f), int(100 * f):int(100 * f) + height * 3]
    assert np.all(box == 255, axis=2).any() and np.all(box == DETECTED_COLOR, axis=2).mean() > 0.3


def test_known_unknown_and_detection_only_faces_have_distinct_colours():
    image = np.full((600, 900, 3), 128, np.uint8)
    faces = [face_at(50, 100, 250, 350), face_at(350, 100, 550, 350), face_at(650, 100, 850, 350)]
    known, unknown = Identity("eileen", 0.95, ()), Identity(None, 0.4, ())
    with_ids = draw_faces(image, faces[:2], [known, unknown])
    detected = draw_faces(image, faces[2:])
    assert len({KNOWN_COLOR, UNKNOWN_COLOR, DETECTED_COLOR}) == 3
    assert label_height(with_ids[:, :300], KNOWN_COLOR) > 0
    assert label_height(with_ids[:, 300:600], UNKNOWN_COLOR) > 0 and label_height(with_ids[:, 300:600], KNOWN_COLOR) == 0
    assert label_height(detected[:, 600:], DETECTED_COLOR) > 0
