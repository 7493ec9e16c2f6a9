"""edgeface._core alignment: similarity_transform(s) vs skimage / numpy Umeyama, warp_affine
and align_faces vs cv2.warpAffine."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from edgeface import _core
from edgeface.errors import EdgefaceError, ImageError, InvalidArgumentError, InvalidDTypeError

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"

# ArcFace 112x112 five-point template
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def load_image():
    img = cv2.imread(str(ASTRONAUT)) if ASTRONAUT.exists() else None
    if img is None:
        img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return img


def umeyama(src, dst):
    """Plain numpy Umeyama (1991) with the reflection guard, similarity (2-D)."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    n, dim = src.shape
    ms, md = src.mean(0), dst.mean(0)
    sc, dc = src - ms, dst - md
    cov = dc.T @ sc / n
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    r = u @ np.diag(d) @ vt
    scale = (s * d).sum() / (sc ** 2).sum(1).mean()
    t = md - scale * r @ ms
    return np.hstack([scale * r, t[:, None]])


def skimage_matrix(src, dst):
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):
        tf = SimilarityTransform.from_estimate(src, dst)
    else:
        tf = SimilarityTransform()
        assert tf.estimate(src, dst)
    return np.asarray(tf.params)[:2]


def random_landmarks(rng, k, noise=2.0):
    out = []
    for _ in range(k):
        ang = rng.uniform(-0.6, 0.6)
        s = rng.uniform(0.8, 3.0)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        pts = (TEMPLATE - 56) @ rot.T * s + rng.uniform(100, 400, 2)
        out.append(pts + rng.normal(0, noise, pts.shape))
    return np.array(out, np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_similarity_matches_skimage_and_numpy(seed):
    rng = np.random.default_rng(seed)
    src = random_landmarks(rng, 1)[0]
    m = _core.similarity_transform(src, TEMPLATE)
    assert m.dtype == np.float64 and m.shape == (2, 3)
    np.testing.assert_allclose(m, skimage_matrix(src, TEMPLATE), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m, umeyama(src, TEMPLATE), rtol=1e-9, atol=1e-9)
    # float64 inputs and more points
    src64 = rng.uniform(0, 100, (9, 2))
    dst64 = rng.uniform(0, 100, (9, 2))
    np.testing.assert_allclose(_core.similarity_transform(src64, dst64), umeyama(src64, dst64),
                               rtol=1e-9, atol=1e-9)


def test_reflection_guard():
    src = TEMPLATE.astype(np.float64)
    dst = src * np.array([-1.0, 1.0])  # mirrored: the best similarity must not reflect
    m = _core.similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) > 0
    np.testing.assert_allclose(m, umeyama(src, dst), atol=1e-9)
    np.testing.assert_allclose(m, skimage_matrix(src, dst), atol=1e-9)


def test_exact_recovery_two_points():
    src = np.array([[0, 0], [1, 0]], np.float32)
    dst = np.array([[5, 5], [5, 7]], np.float32)  # rotate 90 deg, scale 2, translate
    np.testing.assert_allclose(_core.similarity_transform(src, dst), [[0, -2, 5], [2, 0, 5]],
                               atol=1e-12)


def test_similarity_errors():
    same = np.full((5, 2), 3.3, np.float32)
    with pytest.raises(InvalidArgumentError) as info:
        _core.similarity_transform(same, TEMPLATE)
    assert isinstance(info.value, EdgefaceError) and "degenerate" in str(info.value)
    with pytest.raises(InvalidArgumentError):
        _core.similarity_transform(TEMPLATE, np.zeros((5, 2), np.float32))  # scale 0
    with pytest.raises(InvalidArgumentError):
        _core.similarity_transform(TEMPLATE[:1], TEMPLATE[:1])
    with pytest.raises(InvalidArgumentError):
        _core.similarity_transform(TEMPLATE, TEMPLATE[:4])
    with pytest.raises(InvalidArgumentError):
        _core.similarity_transform(np.where(TEMPLATE > 50, np.nan, TEMPLATE), TEMPLATE)
    with pytest.raises(InvalidDTypeError):
        _core.similarity_transform(TEMPLATE.astype(np.int32), TEMPLATE)
    with pytest.raises(InvalidArgumentError):
        _core.similarity_transform(np.zeros((5, 3), np.float32), TEMPLATE)


def test_batched_similarity_equals_single():
    rng = np.random.default_rng(5)
    lms = random_landmarks(rng, 8)
    ms = _core.similarity_transforms(lms, TEMPLATE)
    assert ms.shape == (8, 2, 3) and ms.dtype == np.float64
    for k in range(8):
        np.testing.assert_array_equal(ms[k], _core.similarity_transform(lms[k], TEMPLATE))
    assert _core.similarity_transforms(np.zeros((0, 5, 2), np.float32), TEMPLATE).shape == (0, 2, 3)
    lms[3] = 7.0
    with pytest.raises(InvalidArgumentError) as info:
        _core.similarity_transforms(lms, TEMPLATE)
    assert "src[3]" in str(info.value)


@pytest.mark.parametrize("seed", range(4))
def test_warp_affine_matches_cv2(seed):
    img = load_image()
    rng = np.random.default_rng(seed)
    lms = random_landmarks(rng, 6)
    lms[0] += 300  # partly outside the image: exercises the border
    ms = _core.similarity_transforms(lms, TEMPLATE)
    bv = int(rng.integers(0, 256))
    out = _core.warp_affine(img, ms, 112, 112, border_value=bv)
    assert out.shape == (6, 112, 112, 3) and out.dtype == np.uint8
    for k in range(6):
        ref = cv2.warpAffine(img, ms[k], (112, 112), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(bv, bv, bv))
        diff = np.abs(out[k].astype(int) - ref.astype(int))
        assert diff.max() <= 1, (k, diff.max())
    # non-square output, float32 matrices
    out2 = _core.warp_affine(img, ms.astype(np.float32)[:2], 150, 120)
    ref = cv2.warpAffine(img, ms[1].astype(np.float32), (120, 150))
    assert out2.shape == (2, 150, 120, 3)
    assert np.abs(out2[1].astype(int) - ref.astype(int)).max() <= 1


def test_warp_affine_errors_and_noncontiguous():
    img = load_image()
    m = np.array([[[1, 0, 0], [0, 1, 0]]], np.float64)
    np.testing.assert_array_equal(_core.warp_affine(img, m, 50, 60)[0], img[:50, :60])
    flipped = img[:, ::-1]
    np.testing.assert_array_equal(_core.warp_affine(flipped, m, 50, 60)[0],
                                  np.ascontiguousarray(flipped)[:50, :60])
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, np.array([[[1, 2, 0], [2, 4, 0]]], np.float64), 10, 10)
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, np.zeros((1, 2, 3)), 10, 10)
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, m * np.nan, 10, 10)
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, m[0], 10, 10)  # (2, 3): a batch is required
    with pytest.raises(InvalidDTypeError):
        _core.warp_affine(img, m.astype(np.int64), 10, 10)
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, m, 0, 10)
    with pytest.raises(InvalidArgumentError):
        _core.warp_affine(img, m, 10, 10, border_value=256)
    with pytest.raises(ImageError):
        _core.warp_affine(img[:, :, 0], m, 10, 10)


def test_align_faces_equals_estimate_plus_warp():
    img = load_image()
    rng = np.random.default_rng(9)
    lms = random_landmarks(rng, 5)
    crops, ms = _core.align_faces(img, lms, TEMPLATE, 112, 112)
    assert crops.shape == (5, 112, 112, 3) and ms.shape == (5, 2, 3)
    np.testing.assert_array_equal(ms, _core.similarity_transforms(lms, TEMPLATE))
    np.testing.assert_array_equal(crops, _core.warp_affine(img, ms, 112, 112))
    # the aligned landmarks land on the template (noise-free case)
    clean = random_landmarks(rng, 1, noise=0.0)
    _, m = _core.align_faces(img, clean, TEMPLATE, 112, 112)
    mapped = clean[0].astype(np.float64) @ m[0, :, :2].T + m[0, :, 2]
    np.testing.assert_allclose(mapped, TEMPLATE, atol=1e-3)
    with pytest.raises(InvalidArgumentError):
        _core.align_faces(img, lms, TEMPLATE[:4], 112, 112)
    empty, em = _core.align_faces(img, np.zeros((0, 5, 2), np.float32), TEMPLATE, 112, 112)
    assert empty.shape == (0, 112, 112, 3) and em.shape == (0, 2, 3)
