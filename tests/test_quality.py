"""edgeface.quality: pose from landmarks, sharpness, template fit, the min_quality gate and the JSON field."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import shared_data
from edgeface import FaceAnalyzer
from edgeface.errors import InvalidArgumentError
from edgeface.models import default_model
from edgeface.quality import (DEFAULT_MIN_QUALITY, EYES_TO_MOUTH, NOSE_DEPTH, NOSE_FRACTION, FaceQuality,
                              check_enrollment, enrollment_weight, estimate_pose, template_residual)

TEMPLATE = np.asarray(default_model("embedder").alignment, np.float64)


def synthetic_landmarks(yaw: float, pitch: float, roll: float, scale: float = 30.0) -> np.ndarray:
    """The 5 points of a mean head turned by yaw, then pitch, then rolled in the image plane (degrees)."""
    mouth_half = (TEMPLATE[4, 0] - TEMPLATE[3, 0]) / (TEMPLATE[1, 0] - TEMPLATE[0, 0])
    head = np.array([[-1, 0, 0], [1, 0, 0], [0, NOSE_FRACTION * EYES_TO_MOUTH, NOSE_DEPTH],
                     [-mouth_half, EYES_TO_MOUTH, 0], [mouth_half, EYES_TO_MOUTH, 0]], np.float64)
    y, p, r = np.radians([yaw, pitch, roll])
    # Camera looks along -z (the nose, at +z, points at it); x right, y down in the image.
    turn = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    nod = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    points = (nod @ turn @ head.T).T[:, :2]
    spin = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return (points @ spin.T * scale + [200.0, 150.0])[None].astype(np.float32)


@pytest.mark.parametrize("yaw", [-60, -30, -10, 0, 15, 45, 70])
def test_yaw_from_synthetic_landmarks(yaw):
    est_yaw, est_pitch, est_roll = estimate_pose(synthetic_landmarks(yaw, 0, 0))
    assert est_yaw[0] == pytest.approx(yaw, abs=0.5)
    assert abs(est_pitch[0]) < 0.5 and abs(est_roll[0]) < 0.5


@pytest.mark.parametrize("roll", [-40, -10, 5, 25])
def test_roll_from_synthetic_landmarks(roll):
    est_yaw, est_pitch, est_roll = estimate_pose(synthetic_landmarks(0, 0, roll))
    assert est_roll[0] == pytest.approx(roll, abs=0.5)
    assert abs(est_yaw[0]) < 0.5 and abs(est_pitch[0]) < 0.5


@pytest.mark.parametrize("pitch", [-30, -10, 20, 35])
def test_pitch_from_synthetic_landmarks(pitch):
    est_yaw, est_pitch, _ = estimate_pose(synthetic_landmarks(0, pitch, 0))
    assert est_pitch[0] == pytest.approx(pitch, abs=0.5)
    assert abs(est_yaw[0]) < 0.5


def test_combined_yaw_and_roll():
    est_yaw, _, est_roll = estimate_pose(synthetic_landmarks(30, 0, -20))
    assert est_yaw[0] == pytest.approx(30, abs=2) and est_roll[0] == pytest.approx(-20, abs=0.5)


def test_pose_of_real_faces(analyzer, astronaut):
    q = analyzer.analyze(astronaut).qualities[0]
    assert abs(q.yaw) < 15 and abs(q.pitch) < 30 and abs(q.roll) < 10  # a near-frontal portrait
    turned = cv2.imread(str(shared_data("lfw") / "images" / "Adam_Sandler" / "Adam_Sandler_0002.jpg"))
    t = analyzer.analyze(turned).qualities[0]
    m = analyzer.analyze(np.ascontiguousarray(turned[:, ::-1])).qualities[0]
    assert t.yaw < -25 and m.yaw > 25 and abs(t.yaw + m.yaw) < 8  # turned, and the mirror turns the other way
    assert abs(t.roll + m.roll) < 3


def test_template_residual_zero_on_the_template_and_grows_with_distortion():
    from edgeface import _core
    marks = TEMPLATE[None].astype(np.float32) * 0.5 + 10
    for distortion, expect_zero in ((0.0, True), (4.0, False)):
        moved = marks.copy()
        moved[0, 2, 0] += distortion  # push the nose sideways
        matrices = _core.similarity_transforms(moved.astype(np.float64), TEMPLATE)
        residual = template_residual(moved, matrices, TEMPLATE)[0]
        assert (residual < 1e-6) == expect_zero


@pytest.fixture(scope="module")
def keep_all():
    with FaceAnalyzer(threads=2, min_quality=0.0) as fa:
        yield fa


def test_sharpness_and_quality_fall_as_the_image_blurs(keep_all, astronaut):
    marks = keep_all.detect(astronaut)
    sharp, score = [], []
    for sigma in (0, 0.7, 1.5, 3, 6):
        image = astronaut if sigma == 0 else cv2.GaussianBlur(astronaut, (0, 0), sigma)
        _, q, _ = keep_all.usable_faces(image, marks)  # same landmarks: only the blur changes
        sharp.append(q.sharpness[0]), score.append(q.score[0])
    assert all(a > b for a, b in zip(sharp, sharp[1:])), sharp
    assert all(a >= b for a, b in zip(score, score[1:])) and score[0] > 0.9 and score[-1] < DEFAULT_MIN_QUALITY, score


def test_obama_background_box_dropped_at_the_default():
    """MTCNN finds a 0.934-score box in the background of this photo; the quality gate drops it."""
    image = shared_data("identification") / "test_images" / "obama.jpg"
    with FaceAnalyzer(threads=2, detector="mtcnn", min_quality=0.0) as keep_all, \
            FaceAnalyzer(threads=2, detector="mtcnn") as analyzer:
        everything = keep_all.analyze(str(image))
        result = analyzer.analyze(str(image))
    assert len(everything) == 2  # Obama and a 0.934-score box in the background
    background = int(np.argmin(everything.detections.scores))
    assert 0.9 < everything.detections.scores[background] < 0.95
    assert everything.qualities.score[background] < DEFAULT_MIN_QUALITY
    assert len(result) == 1 and result.detections.scores[0] > 0.99
    assert len(result.embeddings) == 1 and len(result.qualities) == 1


def test_quality_in_results_and_json(analyzer, astronaut):
    result = analyzer.analyze(astronaut)
    row = json.loads(json.dumps(result.to_list()))[0]
    assert 0.9 < row["quality"] <= 1.0
    face = next(iter(result))
    assert isinstance(face.quality, FaceQuality) and face.quality.score == pytest.approx(row["quality"], abs=1e-4)
    largest = analyzer.analyze_largest(astronaut)
    assert largest is not None and largest.quality.score == pytest.approx(face.quality.score)
    np.testing.assert_allclose(largest.embedding, result.embeddings[0], atol=1e-6)


def test_enrollment_gate(analyzer, astronaut):
    good = analyzer.analyze_largest(astronaut).quality
    assert check_enrollment(good) is None
    assert enrollment_weight(good) == pytest.approx(good.score)
    blurred = analyzer.analyze_largest(cv2.GaussianBlur(astronaut, (0, 0), 3))
    reason = check_enrollment(blurred.quality) if blurred is not None else check_enrollment(None)
    assert reason is not None and ("blurred" in reason or reason == "no face found")
    poor = FaceQuality(score=0.2, detection=0.999, eye_distance=8.0, yaw=70.0, pitch=0.0, roll=0.0,
                       sharpness=2.5, residual=0.1)
    reason = check_enrollment(poor)
    assert "small face" in reason and "turned sideways" in reason


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high", True, None])
def test_min_quality_checked(bad):
    with pytest.raises(InvalidArgumentError, match="min_quality"):
        FaceAnalyzer(min_quality=bad)


def test_enroll_refuses_a_blurred_photo_with_the_reason(tmp_path, astronaut, capsys):
    """The enrollment gate: a sharp photo is enrolled, the same face blurred (still detected) is refused."""
    from edgeface.cli import EXIT_INPUT, EXIT_OK, main
    sharp, blurred = tmp_path / "sharp.png", tmp_path / "blurred.png"
    cv2.imwrite(str(sharp), astronaut)
    cv2.imwrite(str(blurred), cv2.GaussianBlur(astronaut, (0, 0), 2))
    gallery = str(tmp_path / "g.db")
    assert main(["enroll", gallery, "--name", "eileen", str(sharp), "--threads", "1"]) == EXIT_OK
    capsys.readouterr()
    assert main(["enroll", gallery, "--name", "blurry", str(blurred), "--threads", "1"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "blurred.png" in err and ("quality" in err) and "Traceback" not in err
