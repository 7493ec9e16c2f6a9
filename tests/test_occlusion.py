"""edgeface.occlusion: deterministic with a seed, and each occluder covers the region it names."""
from __future__ import annotations

import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import InvalidArgumentError
from edgeface.models import default_model
from edgeface.occlusion import FACE_REGION, KINDS, occlude, occluder

TEMPLATE = np.asarray(default_model("embedder").alignment, np.float64)
GREY = np.full((400, 500, 3), 128, np.uint8)


def face_landmarks(scale: float = 1.2, roll_deg: float = 0.0, at=(250.0, 200.0)) -> np.ndarray:
    """The template face placed in a 500×400 image: scaled, rolled and moved."""
    r = np.radians(roll_deg)
    spin = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return ((TEMPLATE - 75.0) * scale) @ spin.T + at


def covered(original: np.ndarray, occluded: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Which pixels of the canonical 150×150 chip changed, found by warping both images back."""
    m = _core.similarity_transform(landmarks, TEMPLATE)[None]
    before, after = _core.warp_affine(original, m, 150, 150)[0], _core.warp_affine(occluded, m, 150, 150)[0]
    return np.any(before != after, axis=2)


def near(mask: np.ndarray, point: np.ndarray, radius: int = 3) -> bool:
    x, y = int(round(point[0])), int(round(point[1]))
    return bool(mask[y - radius:y + radius + 1, x - radius:x + radius + 1].all())


def untouched(mask: np.ndarray, point: np.ndarray, radius: int = 3) -> bool:
    x, y = int(round(point[0])), int(round(point[1]))
    return not mask[y - radius:y + radius + 1, x - radius:x + radius + 1].any()


@pytest.mark.parametrize("roll", [0.0, 25.0])
def test_mask_covers_nose_and_mouth_not_eyes(roll):
    marks = face_landmarks(roll_deg=roll)
    m = covered(GREY, occlude(GREY, marks, "mask"), marks)
    assert near(m, TEMPLATE[2]) and near(m, TEMPLATE[3]) and near(m, TEMPLATE[4])
    assert untouched(m, TEMPLATE[0]) and untouched(m, TEMPLATE[1])


@pytest.mark.parametrize("roll", [0.0, -30.0])
def test_sunglasses_cover_the_eyes_not_the_mouth(roll):
    marks = face_landmarks(scale=0.6, roll_deg=roll, at=(120.0, 300.0))
    m = covered(GREY, occlude(GREY, marks, "sunglasses"), marks)
    assert near(m, TEMPLATE[0]) and near(m, TEMPLATE[1])
    assert untouched(m, TEMPLATE[2]) and untouched(m, TEMPLATE[3]) and untouched(m, TEMPLATE[4])


@pytest.mark.parametrize("kind,fraction", [("patch25", 0.25), ("patch50", 0.50)])
def test_patch_covers_its_share_of_the_face(kind, fraction):
    marks = face_landmarks(scale=2.0)
    x1, y1, x2, y2 = (int(v) for v in FACE_REGION)
    for seed in range(5):
        polygon, color = occluder(kind, seed)
        image = np.full_like(GREY, 255 - color[0] if color[0] > 127 else 255)  # background unlike the patch
        m = covered(image, occlude(image, marks, kind, seed), marks)
        share = m[y1:y2, x1:x2].mean()
        assert share == pytest.approx(fraction, abs=0.03), (seed, share)
        assert not m[:y1 - 2].any() and not m[y2 + 2:].any()  # inside the face region only


def test_deterministic_with_a_seed(astronaut):
    marks = face_landmarks(scale=1.5)
    for kind in KINDS:
        a = occlude(astronaut, marks, kind, seed=7)
        assert np.array_equal(a, occlude(astronaut, marks, kind, seed=7))
        assert not np.array_equal(a, astronaut)
    assert not np.array_equal(occlude(astronaut, marks, "patch25", seed=1), occlude(astronaut, marks, "patch25", seed=2))
    assert np.array_equal(occlude(astronaut, marks, "mask", seed=1), occlude(astronaut, marks, "mask", seed=2))


def test_input_left_alone_and_bad_kind_refused(astronaut):
    before = astronaut.copy()
    occlude(astronaut, face_landmarks(), "sunglasses")
    assert np.array_equal(before, astronaut)
    with pytest.raises(InvalidArgumentError, match="occlusion kind"):
        occlude(astronaut, face_landmarks(), "scarf")
