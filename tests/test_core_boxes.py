"""edgeface._core box kernels: pnet_candidates, calibrate/square/clip_boxes, crop_resize."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import EdgefaceError, ImageError, InvalidArgumentError, InvalidDTypeError

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def load_image():
    img = cv2.imread(str(ASTRONAUT)) if ASTRONAUT.exists() else None
    if img is None:
        img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(img, (160, 120)))


def ref_candidates(prob, reg, rects, scales, thr, stride=2, cell=12):
    rows, levels = [], []
    for lvl, ((x, y, w, h), s) in enumerate(zip(rects, scales)):
        for i in range(prob.shape[0]):
            for j in range(prob.shape[1]):
                wx, wy = stride * j, stride * i
                inside = x <= wx and wx + cell <= x + w and y <= wy and wy + cell <= y + h
                if not inside or not prob[i, j] > thr:
                    continue
                ci, cj = (wy - y) // stride, (wx - x) // stride
                rows.append([(stride * cj + 1) / s, (stride * ci + 1) / s,
                             (stride * cj + cell) / s, (stride * ci + cell) / s,
                             prob[i, j], *reg[:, i, j]])
                levels.append(lvl)
    return np.array(rows, np.float32).reshape(-1, 9), np.array(levels, np.int32)


def pnet_maps(canvas, rng):
    _, ch, cw = canvas.shape
    mh, mw = (ch - 12) // 2 + 1, (cw - 12) // 2 + 1
    prob = rng.uniform(0, 1, (mh, mw)).astype(np.float32)
    reg = rng.normal(0, 0.1, (4, mh, mw)).astype(np.float32)
    return prob, reg


@pytest.mark.parametrize("hw,min_face", [((120, 160), 20.0), ((40, 30), 8.0)])
def test_pnet_candidates_match_reference(hw, min_face):
    rng = np.random.default_rng(1)
    scales = _core.pyramid_scales(*hw, min_face_size=min_face)
    canvas, rects = _core.pyramid(np.zeros((*hw, 3), np.uint8), scales)
    prob, reg = pnet_maps(canvas, rng)
    got, lv = _core.pnet_candidates(prob, reg, rects, scales, 0.9)
    ref, rlv = ref_candidates(prob, reg, rects, scales, 0.9)
    assert got.dtype == np.float32 and got.shape[1] == 9 and lv.dtype == np.int32
    assert len(ref) > 0
    np.testing.assert_array_equal(lv, rlv)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # cells straddling two levels or lying in gaps are never reported
    assert len(got) < int((prob > 0.9).sum())


def test_pnet_candidates_single_level_full_map():
    # one level filling the canvas: every cell of the map belongs to it
    prob = np.zeros((3, 4), np.float32)
    prob[2, 3] = 0.95
    reg = np.arange(48, dtype=np.float32).reshape(4, 3, 4)
    rects = np.array([[0, 0, 18, 16]], np.int32)  # 4 x 3 cells (stride 2, cell 12)
    rows, lv = _core.pnet_candidates(prob, reg, rects, [0.5], 0.6)
    np.testing.assert_allclose(rows, [[14, 10, 36, 32, 0.95, 11, 23, 35, 47]])
    np.testing.assert_array_equal(lv, [0])
    empty, lv = _core.pnet_candidates(prob, reg, rects, [0.5], 0.99)
    assert empty.shape == (0, 9) and lv.shape == (0,)


def test_pnet_candidates_errors():
    prob = np.zeros((3, 4), np.float32)
    reg = np.zeros((4, 3, 4), np.float32)
    rects = np.array([[0, 0, 18, 16]], np.int32)
    with pytest.raises(InvalidArgumentError):
        _core.pnet_candidates(prob, np.zeros((4, 3, 5), np.float32), rects, [1.0], 0.5)
    with pytest.raises(InvalidArgumentError):
        _core.pnet_candidates(prob, reg, rects, [1.0, 0.5], 0.5)
    with pytest.raises(InvalidArgumentError):  # level needs 5 cell columns, map has 4
        _core.pnet_candidates(prob, reg, np.array([[0, 0, 20, 16]], np.int32), [1.0], 0.5)
    with pytest.raises(InvalidArgumentError):  # odd offset breaks the stride-2 grid
        _core.pnet_candidates(prob, reg, np.array([[1, 0, 12, 12]], np.int32), [1.0], 0.5)
    with pytest.raises(InvalidDTypeError):
        _core.pnet_candidates(prob.astype(np.float64), reg, rects, [1.0], 0.5)
    with pytest.raises(InvalidDTypeError):
        _core.pnet_candidates(prob, reg, rects.astype(np.float32), [1.0], 0.5)
    bad = prob.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidArgumentError):
        _core.pnet_candidates(bad, reg, rects, [1.0], 0.5)


def rand_boxes(rng, k):
    xy = rng.uniform(-20, 200, (k, 2))
    wh = rng.uniform(0, 80, (k, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_calibrate_square_clip_match_numpy():
    rng = np.random.default_rng(2)
    b = rand_boxes(rng, 50)
    r = rng.normal(0, 0.2, (50, 4)).astype(np.float32)
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    ref = b + r * np.stack([w, h, w, h], 1)
    np.testing.assert_allclose(_core.calibrate_boxes(b, r), ref, rtol=1e-5, atol=1e-4)

    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    l = np.maximum(w, h)
    x1 = b[:, 0] + w * 0.5 - l * 0.5
    y1 = b[:, 1] + h * 0.5 - l * 0.5
    sq = _core.square_boxes(b)
    np.testing.assert_allclose(sq, np.stack([x1, y1, x1 + l, y1 + l], 1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sq[:, 2] - sq[:, 0], sq[:, 3] - sq[:, 1], rtol=1e-5, atol=1e-4)

    c = _core.clip_boxes(b, 100, 80)
    ref = np.stack([np.clip(b[:, 0], 0, 100), np.clip(b[:, 1], 0, 80),
                    np.clip(b[:, 2], 0, 100), np.clip(b[:, 3], 0, 80)], 1)
    np.testing.assert_array_equal(c, ref)
    for fn in (_core.square_boxes, lambda x: _core.calibrate_boxes(x, x),
               lambda x: _core.clip_boxes(x, 10, 10)):
        assert fn(np.zeros((0, 4), np.float32)).shape == (0, 4)
        with pytest.raises(InvalidArgumentError):
            fn(np.array([[0, 0, np.inf, 1]], np.float32))
        with pytest.raises(InvalidDTypeError):
            fn(np.zeros((1, 4), np.float64))
        with pytest.raises(InvalidArgumentError):
            fn(np.zeros((1, 5), np.float32))
    with pytest.raises(InvalidArgumentError):
        _core.calibrate_boxes(b, r[:3])
    with pytest.raises(InvalidArgumentError):
        _core.clip_boxes(b, 0, 10)


def ref_crop(img, box, size):
    """Classic MTCNN crop: zero-pad the image, cut the integer box, cv2.resize INTER_LINEAR."""
    x1, y1, x2, y2 = (int(v) for v in box)
    pad = 300
    padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    patch = padded[y1 + pad:y2 + pad, x1 + pad:x2 + pad]
    out = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)
    return out[:, :, ::-1].transpose(2, 0, 1).astype(np.float64)  # RGB planes


@pytest.mark.parametrize("size", [24, 48])
def test_crop_resize_matches_padded_cv2(size):
    img = load_image()  # 120 x 160
    boxes = np.array([
        [10, 20, 70, 80],      # inside, downscale
        [30, 30, 45, 45],      # inside, upscale (15 px -> 24/48)
        [-20, -10, 40, 50],    # top-left outside
        [130, 90, 190, 150],   # bottom-right outside
        [-100, -100, -40, -40],  # fully outside -> black
        [0, 0, 160, 120],      # whole image, non-square
        [5, 7, 6, 8],          # 1 px box
    ], np.float32)
    got = _core.crop_resize(img, boxes, size)
    assert got.shape == (len(boxes), 3, size, size) and got.dtype == np.float32
    for k, box in enumerate(boxes):
        ref = ref_crop(img, box, size)
        diff = np.abs(got[k].astype(np.float64) / 0.0078125 + 127.5 - ref)
        assert diff.max() <= 1.0 + 1e-3, (k, diff.max())
    np.testing.assert_allclose(got[4], -127.5 * 0.0078125)


def test_crop_resize_options_noncontiguous_and_errors():
    img = load_image()
    boxes = np.array([[10.5, 20.25, 70.75, 80.0], [0, 0, 50, 50]], np.float32)
    a = _core.crop_resize(img, boxes, 24, swap_rb=False, mean=0.0, scale=1.0)
    b = _core.crop_resize(img, boxes, 24)
    np.testing.assert_allclose((a[:, ::-1] - 127.5) * 0.0078125, b, atol=1e-5)
    flipped = img[:, :, ::-1]
    np.testing.assert_array_equal(_core.crop_resize(flipped, boxes, 24),
                                  _core.crop_resize(np.ascontiguousarray(flipped), boxes, 24))
    # swapping on the flipped view == not swapping on the original
    np.testing.assert_array_equal(_core.crop_resize(flipped, boxes, 24),
                                  _core.crop_resize(img, boxes, 24, swap_rb=False))
    assert _core.crop_resize(img, np.zeros((0, 4), np.float32), 24).shape == (0, 3, 24, 24)
    with pytest.raises(InvalidArgumentError):
        _core.crop_resize(img, np.array([[10, 10, 5, 20]], np.float32), 24)  # x2 < x1
    with pytest.raises(InvalidArgumentError):
        _core.crop_resize(img, np.array([[np.nan, 10, 5, 20]], np.float32), 24)
    with pytest.raises(InvalidArgumentError):
        _core.crop_resize(img, boxes, 0)
    with pytest.raises(InvalidDTypeError):
        _core.crop_resize(img, boxes, 24.0)
    with pytest.raises(ImageError) as info:
        _core.crop_resize(img[:, :, :2], boxes, 24)
    assert isinstance(info.value, EdgefaceError) and isinstance(info.value, ValueError)
    # huge but finite boxes do not crash: they just read padding / a few pixels
    huge = np.array([[-1e30, -1e30, 1e30, 1e30], [1e20, 1e20, 2e20, 2e20]], np.float32)
    out = _core.crop_resize(img, huge, 24)
    assert np.isfinite(out).all()
