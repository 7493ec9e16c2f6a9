"""`--detector` on every sub-command's common options, and --min-face for every detector."""
from __future__ import annotations

import json

import pytest

from edgeface.cli import EXIT_OK, EXIT_USAGE, main
from edgeface.detection import DETECTORS
from conftest import EXAMPLE


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detect_with_each_detector(capsys, name):
    code = main(["detect", str(EXAMPLE), "--json", "--detector", name])
    out, _ = capsys.readouterr()
    assert code == EXIT_OK
    (face,) = json.loads(out)["images"][0]["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 320 and 50 < y1 < y2 < 260


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_min_face_is_taken_by_every_detector(capsys, name):
    # The astronaut's face is about 90 px wide.
    assert main(["detect", str(EXAMPLE), "--json", "--detector", name, "--min-face", "60"]) == EXIT_OK
    assert len(json.loads(capsys.readouterr()[0])["images"][0]["faces"]) == 1


def test_yunet_does_not_report_faces_below_min_face(capsys):
    # MTCNN's min_face_size only sets where its pyramid starts; YuNet's is a filter on the box width.
    assert main(["detect", str(EXAMPLE), "--json", "--detector", "yunet", "--min-face", "150"]) == EXIT_OK
    assert json.loads(capsys.readouterr()[0])["images"][0]["faces"] == []


def test_unknown_detector_is_a_usage_error(capsys):
    code = main(["detect", str(EXAMPLE), "--detector", "nope"])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE and "unknown detector 'nope'" in err and "mtcnn" in err
