"""YuNet against the yuface wheel's own detector (recorded by tools/convert_yunet.py), its manifest entry,
the input-size policy and the rotations option."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.detection import YuNet
from edgeface.detection.yunet import unrotate
from edgeface.models import get_model, verify_model

REFERENCE = Path(__file__).parent / "data" / "yunet_reference.json"
VARIANTS = {
    "astronaut": lambda bgr: bgr,
    "astronaut_flip": lambda bgr: bgr[:, ::-1],
    "astronaut_333x257": lambda bgr: cv2.resize(bgr, (333, 257), interpolation=cv2.INTER_AREA),
}


@pytest.fixture(scope="module")
def yunet():
    with YuNet(threads=1, score_threshold=0.5, refine_landmarks=False) as det:  # the wheel's own landmarks
        yield det


@pytest.mark.parametrize("name,rows", json.loads(REFERENCE.read_text())["detections"].items())
def test_matches_the_wheels_detector(yunet, astronaut, name, rows):
    """The wheel reports integer pixels (truncated) and integer percent scores."""
    dets = yunet.detect(np.ascontiguousarray(VARIANTS[name](astronaut)))
    assert len(dets) == len(rows) >= 1
    for row, box, score, marks in zip(rows, dets.boxes, dets.scores, dets.landmarks):
        x, y, w, h = row[1:5]
        np.testing.assert_allclose(box, [x, y, x + w, y + h], atol=2.0)
        np.testing.assert_allclose(marks.reshape(-1), row[5:15], atol=1.0)
        assert abs(score * 100 - row[0]) <= 1.0


def test_manifest_entry_is_pinned_and_licensed():
    spec = get_model("yunet")
    verify_model(spec)
    assert spec.role == "detector" and spec.license == "BSD-3-Clause"
    assert spec.source["package"] == "yuface" and spec.source["version"] == "2023.5.1"
    assert len(spec.source["wheel_sha256"]) == 64 and len(spec.source["sha256"]) == 64
    licence = spec.path.parent / "LICENSE_yunet.txt"
    assert "3-clause BSD" in licence.read_text()
    assert spec.path.stat().st_size < 400_000


def test_large_frames_are_downscaled_to_max_side(astronaut):
    big = cv2.resize(astronaut, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)  # 1280x1280
    with YuNet(threads=1, max_side=512) as small, YuNet(threads=1, max_side=1280) as full:
        reference = small.detect(astronaut).boxes[0] * 2.5
        for det in (small, full):
            dets = det.detect(big)
            assert len(dets) == 1
            assert np.abs(dets.boxes[0] - reference).max() < 0.05 * (reference[2] - reference[0])


@pytest.mark.parametrize("angle", [90, 180, 270])
def testunrotate_inverts_cv2_rotate(angle):
    height, width = 30, 50
    img = np.zeros((height, width, 3), np.uint8)
    img[7, 11] = 255
    code = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}[angle]
    ys, xs = np.nonzero(cv2.rotate(img, code)[:, :, 0])
    centre = np.array([[xs[0] + 0.5, ys[0] + 0.5]], np.float32)  # pixel centre, continuous coordinates
    np.testing.assert_allclose(unrotate(centre, angle, (height, width)), [[11.5, 7.5]])


@pytest.mark.parametrize("angle,code", [(90, cv2.ROTATE_90_COUNTERCLOCKWISE), (270, cv2.ROTATE_90_CLOCKWISE)])
def test_rotations_find_a_face_lying_on_its_side(astronaut, angle, code):
    """The astronaut turned on its side: the upright pass alone misses it or finds it worse; with the
    matching rotation its landmarks land where the upright landmarks go under the same turn."""
    lying = np.ascontiguousarray(cv2.rotate(astronaut, code))
    with YuNet(threads=1) as upright_only, YuNet(threads=1, rotations=(0, 90, 270)) as rotating:
        upright = upright_only.detect(astronaut)
        found = rotating.detect(lying)
        assert len(found) == 1
        assert len(upright_only.detect(lying)) == 0 or upright_only.detect(lying).scores[0] < found.scores[0]
    # Where the upright landmarks go when the frame is turned by `code`.
    marks = unrotate(upright.landmarks[0], angle, lying.shape[:2])
    np.testing.assert_allclose(found.landmarks[0], marks, atol=4.0)


def test_refined_landmarks_follow_mtcnn(astronaut):
    """refine_landmarks: O-Net's points on the YuNet box land where MTCNN puts them (within 3 px here)."""
    from edgeface.detection import create_detector
    with create_detector("yunet", refine_landmarks=True) as refined, create_detector("mtcnn") as mtcnn:
        got, want = refined.detect(astronaut), mtcnn.detect(astronaut)
    assert len(got) == len(want) == 1
    assert np.abs(got.landmarks - want.landmarks).max() < 3.0


def test_refine_landmarks_must_be_a_bool():
    from edgeface.detection import create_detector
    from edgeface.errors import InvalidDTypeError
    with pytest.raises(InvalidDTypeError, match="refine_landmarks must be True or False"):
        create_detector("yunet", refine_landmarks="yes")
