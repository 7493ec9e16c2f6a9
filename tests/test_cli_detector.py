"""`--detector` on every sub-command's common options, and MTCNN's --min-face kept to MTCNN."""
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


def test_min_face_is_refused_for_a_detector_without_it(capsys):
    code = main(["detect", str(EXAMPLE), "--detector", "yunet", "--min-face", "30"])
    _, err = capsys.readouterr()
    assert code != EXIT_OK and "min_face_size" in err


def test_unknown_detector_is_a_usage_error(capsys):
    code = main(["detect", str(EXAMPLE), "--detector", "nope"])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE and "unknown detector 'nope'" in err and "mtcnn" in err
