"""Every registered detector through the same contract: result structure, BGR/RGB agreement, every input
form, empty / tiny / huge images, and typed errors for bad options and bad images."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeface.detection import DETECTORS, FaceDetector, create_detector
from edgeface.errors import EdgefaceError, ImageError, InvalidArgumentError, InvalidDTypeError
from edgeface.faces import Detections

NAMES = sorted(DETECTORS)


@pytest.fixture(scope="module", params=NAMES)
def detector(request):
    with create_detector(request.param, threads=1) as det:
        yield det


def check_structure(dets: Detections, shape: tuple[int, ...]) -> None:
    height, width = shape[:2]
    assert isinstance(dets, Detections) and dets.image_size == (height, width)
    n = len(dets)
    assert dets.boxes.shape == (n, 4) and dets.scores.shape == (n,) and dets.landmarks.shape == (n, 5, 2)
    assert dets.boxes.dtype == dets.scores.dtype == dets.landmarks.dtype == np.float32
    assert np.all(np.isfinite(dets.boxes)) and np.all(np.isfinite(dets.landmarks))
    assert np.all(np.diff(dets.scores) <= 0), "sorted by descending score"
    assert np.all((dets.scores >= 0) & (dets.scores <= 1))
    assert np.all(dets.boxes[:, 0] >= 0) and np.all(dets.boxes[:, 1] >= 0)
    assert np.all(dets.boxes[:, 2] <= width) and np.all(dets.boxes[:, 3] <= height)
    assert np.all(dets.boxes[:, 2] > dets.boxes[:, 0]) and np.all(dets.boxes[:, 3] > dets.boxes[:, 1])


def test_registered_detectors_follow_the_protocol(detector):
    assert isinstance(detector, FaceDetector)


def test_finds_the_astronaut_with_plausible_landmarks(detector, astronaut):
    dets = detector.detect(astronaut)
    check_structure(dets, astronaut.shape)
    assert len(dets) == 1
    box, marks = dets.boxes[0], dets.landmarks[0]
    assert np.all((marks >= box[:2] - 5) & (marks <= box[2:] + 5)), "landmarks inside the face box"
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0], "image-left point first"
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_bgr_and_rgb_agree_for_every_input_form(detector, astronaut, tmp_path):
    reference = detector.detect(astronaut, "bgr")
    rgb = np.ascontiguousarray(astronaut[:, :, ::-1])
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)
    for dets in (detector.detect(rgb, "rgb"), detector.detect(astronaut[:, :, ::-1], "RGB"),
                 detector.detect(str(path)), detector.detect(path.read_bytes(), "rgb")):
        assert len(dets) == len(reference)
        np.testing.assert_allclose(dets.boxes, reference.boxes, atol=1e-3)
        np.testing.assert_allclose(dets.landmarks, reference.landmarks, atol=1e-3)
        np.testing.assert_allclose(dets.scores, reference.scores, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 7, 3), (11, 11, 3), (31, 33, 3), (480, 640, 3)])
def test_blank_and_tiny_images_give_no_faces(detector, shape):
    for value in (0, 128, 255):
        dets = detector.detect(np.full(shape, value, np.uint8))
        check_structure(dets, shape)
        assert len(dets) == 0


def test_huge_image_keeps_its_face(detector, astronaut):
    canvas = np.full((2400, 3200, 3), 90, np.uint8)
    face = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    canvas[700:1724, 1100:2124] = face
    dets = detector.detect(canvas)
    check_structure(dets, canvas.shape)
    assert len(dets) >= 1
    expected = detector.detect(face).boxes[0] + np.array([1100, 700, 1100, 700], np.float32)
    assert np.abs(dets.boxes[0] - expected).max() < 0.08 * 1024


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((0, 10, 3), np.uint8),
    np.zeros((10, 10, 3), np.float32), "not/an/image.jpg", b"not an image",
])
def test_bad_images_raise_typed_errors(detector, bad):
    with pytest.raises((ImageError, InvalidDTypeError, InvalidArgumentError, EdgefaceError)):
        detector.detect(bad)


def test_bad_color_raises(detector, astronaut):
    with pytest.raises(InvalidArgumentError):
        detector.detect(astronaut, "yuv")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_raises_a_typed_error(name):
    with pytest.raises(InvalidArgumentError, match=r"Unknown option\(s\) no_such_option for detector"):
        create_detector(name, no_such_option=1)


BAD_OPTIONS = {
    "centerface": [{"score_threshold": -0.1}, {"nms_threshold": 1.5}, {"max_side": 31}, {"max_side": 4097},
                   {"min_face_size": float("inf")}],
    "mtcnn": [{"min_face_size": 0}, {"factor": 1.5}, {"thresholds": (0.5, 2.0, 0.7)}],
    "yunet": [{"score_threshold": 1.5}, {"nms_threshold": -0.1}, {"max_side": 16}, {"max_side": 640.5},
              {"rotations": (45,)}, {"rotations": ()}, {"rotations": (0, 0)}],
}


@pytest.mark.parametrize("name,options", [(n, o) for n in NAMES for o in BAD_OPTIONS.get(n, [])])
def test_bad_option_values_raise_typed_errors(name, options):
    with pytest.raises(InvalidArgumentError):
        create_detector(name, **options)


def test_every_registered_detector_has_bad_option_cases():
    assert set(BAD_OPTIONS) == set(NAMES), "add the new detector's bad options to BAD_OPTIONS"


def test_unknown_detector_name_lists_the_choices():
    with pytest.raises(InvalidArgumentError, match="choose one of"):
        create_detector("nope")


@pytest.mark.parametrize("name", NAMES)
def test_module_functions_take_the_detector_by_name(name, astronaut):
    import edgeface
    with create_detector(name, threads=1) as det:
        expected = det.detect(astronaut)
    found = edgeface.detect(astronaut, detector=name)
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-3)
    assert edgeface.embed(astronaut, detector=name).shape[0] == len(expected)
    with pytest.raises(InvalidArgumentError):
        edgeface.detect(astronaut, detector="nope")
