"""MTCNN pipeline against facenet-pytorch's own detections (recorded by tools/convert_mtcnn.py)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgeface
from edgeface.detection import Detector
from edgeface.faces import Detections

REFERENCE = Path(__file__).parent / "data" / "mtcnn_reference_detections.json"
TRANSFORMS = {
    "original": lambda rgb: rgb,
    "hflip": lambda rgb: rgb[:, ::-1],
    "scale0.5_area": lambda rgb: cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "scale0.75_area": lambda rgb: cv2.resize(rgb, (384, 384), interpolation=cv2.INTER_AREA),
    "hflip_scale0.5_area": lambda rgb: cv2.resize(rgb[:, ::-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector():
    with Detector(threads=2) as d:
        yield d


@pytest.mark.parametrize("case", json.loads(REFERENCE.read_text())["images"], ids=lambda c: c["name"])
def test_matches_facenet_pytorch(detector, astronaut, case):
    rgb = np.ascontiguousarray(TRANSFORMS[case["name"]](astronaut[:, :, ::-1]))
    found = detector.detect(rgb, color="rgb")
    assert len(found) == len(case["faces"])
    for ours, ref in zip(found, case["faces"]):
        width = ref["box"][2] - ref["box"][0]
        assert iou(ours.box, ref["box"]) > 0.85
        assert abs(ours.score - ref["prob"]) < 0.01
        # Crops are resampled bilinearly here, by area in facenet-pytorch: a few % of the face size.
        err = np.linalg.norm(np.array(ours.landmarks) - np.array(ref["landmarks"]), axis=1)
        assert err.max() < 0.05 * width, err


def test_bgr_and_rgb_agree(detector, astronaut):
    a = detector.detect(astronaut, color="bgr")
    b = detector.detect(np.ascontiguousarray(astronaut[:, :, ::-1]), color="rgb")
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)


def test_tiny_faces_need_a_small_min_face_size(astronaut):
    small = cv2.resize(astronaut, None, fx=0.08, fy=0.08, interpolation=cv2.INTER_AREA)  # face ~7x9 px
    frame = np.full((200, 200, 3), 128, np.uint8)
    frame[: small.shape[0], : small.shape[1]] = small
    with Detector(threads=1) as default, Detector(threads=1, min_face_size=6) as tiny:
        assert len(default.detect(frame)) == 0
        found = tiny.detect(frame)
    assert len(found) == 1
    x1, y1, x2, y2 = found.boxes[0]
    assert 10 < x1 < x2 < 25 and 0 <= y1 < y2 < 16


def test_no_faces_and_tiny_images(detector):
    assert len(detector.detect(np.zeros((480, 640, 3), np.uint8))) == 0
    assert len(detector.detect(np.zeros((5, 7, 3), np.uint8))) == 0  # smaller than P-Net's window
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert len(detector.detect(noise)) == 0


def test_bad_configuration():
    with pytest.raises(edgeface.InvalidArgumentError):
        Detector(min_face_size=0)
    with pytest.raises(edgeface.InvalidArgumentError):
        Detector(factor=1.2)
    with pytest.raises(edgeface.InvalidArgumentError):
        Detector(thresholds=(0.6, 0.7))


def test_detections_structure(detector, astronaut):
    found = detector.detect(astronaut)
    assert isinstance(found, Detections) and len(found) == 1
    assert found.boxes.shape == (1, 4) and found.landmarks.shape == (1, 5, 2) and found.scores.dtype == np.float32
    with pytest.raises(ValueError):
        found.boxes[0, 0] = 0  # immutable
    face = found[0]
    le, re = face.landmarks[0], face.landmarks[1]
    assert le[0] < re[0]  # "left" is image left
    assert found[found.scores > 2].boxes.shape == (0, 4)  # masks give Detections
    doc = json.loads(found.to_json())
    assert doc[0]["box"] == [round(v, 2) for v in face.box]
    assert edgeface.detect(astronaut, detector="mtcnn").to_list() == found.to_list()  # module-level shortcut


@pytest.mark.parametrize("size", [1.5, 5.9, 0.0, -3.0, float("nan")])
def test_min_face_size_below_the_bound_is_refused_with_the_bound(size: float) -> None:
    """1.5 px used to build a 5120x3840 first level on a 640x480 frame (51 s, 7.6 GB)."""
    from edgeface.detection import MTCNNConfig
    from edgeface.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match=r"min_face_size must be >= 6 px"):
        MTCNNConfig(min_face_size=size)


def test_min_face_size_at_the_bound_is_accepted() -> None:
    from edgeface.detection import MTCNNConfig
    assert MTCNNConfig(min_face_size=6).min_face_size == 6
