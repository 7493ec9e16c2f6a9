"""edgeface._core.pyramid_scales / pyramid against a Python reference and cv2.resize."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import EdgefaceError, ImageError, InvalidArgumentError, InvalidDTypeError

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def frame(h, w, seed=0):
    img = cv2.imread(str(ASTRONAUT)) if ASTRONAUT.exists() else None
    if img is None:
        img = np.random.default_rng(seed).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))


def ref_scales(h, w, min_face=20.0, factor=0.709, max_levels=32, min_size=12):
    m = min_size / min_face
    minl = min(h, w) * m
    out, s = [], m
    while minl >= min_size and len(out) < max_levels:
        out.append(s)
        s *= factor
        minl *= factor
    return out


@pytest.mark.parametrize("hw", [(480, 640), (1080, 1920), (12, 12), (100, 37)])
@pytest.mark.parametrize("min_face", [20.0, 6.0, 48.0])
def test_scales_match_reference(hw, min_face):
    got = _core.pyramid_scales(*hw, min_face_size=min_face)
    assert isinstance(got, list)
    np.testing.assert_allclose(got, ref_scales(*hw, min_face), rtol=1e-12)


def test_scales_small_images_and_limits():
    assert _core.pyramid_scales(11, 11) == []  # smaller than 12 px, min face 20
    up = _core.pyramid_scales(11, 11, min_face_size=6.0)
    assert up and up[0] == pytest.approx(2.0) and all(min(11, 11) * s >= 12 for s in up)
    assert len(_core.pyramid_scales(1080, 1920, max_levels=3)) == 3
    assert _core.pyramid_scales(480, 640, max_levels=0) == []
    for kw in (dict(factor=1.0), dict(factor=0.0), dict(min_face_size=0.0),
               dict(min_face_size=float("nan")), dict(min_size=0)):
        with pytest.raises(InvalidArgumentError):
            _core.pyramid_scales(480, 640, **kw)
    with pytest.raises(InvalidArgumentError):
        _core.pyramid_scales(0, 640)
    with pytest.raises(InvalidDTypeError):
        _core.pyramid_scales(480.0, 640)


def check_layout(canvas, rects, h, w, scales):
    assert canvas.dtype == np.float32 and canvas.shape[0] == 3
    assert rects.dtype == np.int32 and rects.shape == (len(scales), 4)
    _, ch, cw = canvas.shape
    covered = np.zeros((ch, cw), bool)
    for (x, y, rw, rh), s in zip(rects, scales):
        assert (rw, rh) == (int(math.ceil(w * s)), int(math.ceil(h * s)))
        assert x % 2 == 0 and y % 2 == 0
        assert 0 <= x and x + rw <= cw and 0 <= y and y + rh <= ch
        # >= 2 px gap: the level grown by 2 px on each side does not touch any other level
        assert not covered[max(y - 2, 0):y + rh + 2, max(x - 2, 0):x + rw + 2].any()
        covered[y:y + rh, x:x + rw] = True
    assert np.all(canvas[:, ~covered] == 0.0)  # gaps are grey (0.0 after normalization)
    return covered


def denorm(levels, mean=127.5, scale=0.0078125):
    return levels / scale + mean


@pytest.mark.parametrize("hw,min_face", [((480, 640), 20.0), ((97, 131), 20.0),
                                         ((30, 40), 6.0), ((64, 48), 9.0)])
def test_levels_match_cv2_resize(hw, min_face):
    h, w = hw
    img = frame(h, w)
    scales = _core.pyramid_scales(h, w, min_face_size=min_face)
    canvas, rects = _core.pyramid(img, scales)
    check_layout(canvas, rects, h, w, scales)
    for x, y, rw, rh in rects:
        ref = cv2.resize(img, (int(rw), int(rh)), interpolation=cv2.INTER_LINEAR)
        ref = ref[:, :, ::-1].transpose(2, 0, 1).astype(np.float64)  # BGR -> RGB planes
        got = denorm(canvas[:, y:y + rh, x:x + rw].astype(np.float64))
        assert np.abs(got - ref).max() <= 1.0 + 1e-3


def test_swap_rb_and_normalization_params():
    img = frame(60, 80)
    scales = [1.0, 0.5]
    rgb, rects = _core.pyramid(img, scales)
    bgr, rects2 = _core.pyramid(img, scales, swap_rb=False, mean=0.0, scale=1.0)
    np.testing.assert_array_equal(rects, rects2)
    x, y, w, h = rects[0]
    # scale 1.0 is an identity resize: exact pixels
    np.testing.assert_array_equal(bgr[:, y:y + h, x:x + w], img.transpose(2, 0, 1).astype(np.float32))
    for x, y, w, h in rects:
        np.testing.assert_allclose(rgb[::-1, y:y + h, x:x + w],
                                   (bgr[:, y:y + h, x:x + w] - 127.5) * 0.0078125, atol=1e-5)
    assert np.all(bgr[:, :, rects[0, 2]:rects[1, 0]] == 0.0)  # gaps are 0 whatever mean/scale


@pytest.mark.parametrize("hw", [(480, 640), (1080, 1920)])
def test_canvas_is_tight(hw):
    h, w = hw
    scales = _core.pyramid_scales(h, w)
    canvas, rects = _core.pyramid(np.zeros((h, w, 3), np.uint8), scales)
    level_area = float(np.sum(rects[:, 2].astype(np.int64) * rects[:, 3]))
    assert canvas.shape[1] * canvas.shape[2] <= 1.6 * level_area


def test_non_contiguous_image():
    img = frame(120, 160)
    flipped = img[:, :, ::-1]
    assert not flipped.flags.c_contiguous
    scales = _core.pyramid_scales(120, 160)
    a, ra = _core.pyramid(flipped, scales)
    b, rb = _core.pyramid(np.ascontiguousarray(flipped), scales)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra, rb)
    # swap_rb on the flipped view == no swap on the original
    c, _ = _core.pyramid(img, scales, swap_rb=False)
    np.testing.assert_array_equal(a, c)


def test_empty_scales_and_tiny_image():
    canvas, rects = _core.pyramid(np.zeros((8, 8, 3), np.uint8), [])
    assert canvas.shape == (3, 0, 0) and rects.shape == (0, 4)
    img = np.full((5, 7, 3), 200, np.uint8)
    canvas, rects = _core.pyramid(img, np.array([3.0]))
    assert tuple(rects[0]) == (0, 0, 21, 15)
    np.testing.assert_allclose(canvas, (200 - 127.5) * 0.0078125, rtol=1e-6)


def _raises(exc, fn, *args, **kw):
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert isinstance(info.value, EdgefaceError)
    return str(info.value)


def test_image_errors():
    ok = np.zeros((20, 20, 3), np.uint8)
    assert issubclass(ImageError, ValueError)
    assert "(20, 20, 4)" in _raises(ImageError, _core.pyramid, np.zeros((20, 20, 4), np.uint8), [1.0])
    _raises(ImageError, _core.pyramid, np.zeros((20, 20), np.uint8), [1.0])
    assert "float32" in _raises(ImageError, _core.pyramid, ok.astype(np.float32), [1.0])
    _raises(ImageError, _core.pyramid, np.zeros((0, 20, 3), np.uint8), [1.0])
    _raises(InvalidDTypeError, _core.pyramid, ok.tolist(), [1.0])
    # huge images are rejected from the shape alone (broadcast views: no memory behind them)
    _raises(ImageError, _core.pyramid, np.broadcast_to(ok[:1, :1], (40000, 10, 3)), [0.1])
    _raises(ImageError, _core.pyramid, np.broadcast_to(ok[:1, :1], (20000, 20000, 3)), [0.01])


def test_scale_errors():
    ok = np.zeros((20, 20, 3), np.uint8)
    _raises(InvalidArgumentError, _core.pyramid, ok, [1.0, -0.5])
    _raises(InvalidArgumentError, _core.pyramid, ok, [float("nan")])
    _raises(InvalidArgumentError, _core.pyramid, ok, [0.0])
    _raises(InvalidArgumentError, _core.pyramid, ok, [5000.0])  # level > 32768 px
    _raises(InvalidArgumentError, _core.pyramid, ok, np.ones((2, 2)))
    _raises(InvalidDTypeError, _core.pyramid, ok, "1.0")
    _raises(InvalidDTypeError, _core.pyramid, ok, [1.0], swap_rb="yes")
    _raises(InvalidArgumentError, _core.pyramid, ok, [1.0], mean=float("inf"))
