"""edgeface._core.nms / batched_nms against a plain numpy greedy NMS and cv2.dnn.NMSBoxes."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import EdgefaceError, InvalidArgumentError, InvalidDTypeError


def ref_nms(boxes, scores, thr, mode="iou"):
    """Independent reference: float64, stable descending order, suppress when overlap > thr."""
    b = boxes.astype(np.float64)
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0)
        ih = np.maximum(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0)
        inter = iw * ih
        denom = area[i] + area[rest] - inter if mode == "iou" else np.minimum(area[i], area[rest])
        with np.errstate(invalid="ignore", divide="ignore"):
            ov = np.where(denom > 0, inter / np.where(denom > 0, denom, 1), 0.0)
        order = rest[ov <= thr]
    return np.array(keep, dtype=np.int64)


def random_boxes(rng, n, extent=500.0, max_size=120.0):
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(1, max_size, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, size=n).astype(np.float32)
    return boxes, scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["iou", "min"])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_matches_numpy_reference(seed, mode, thr):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, 300)
    got = _core.nms(boxes, scores, thr, mode)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref_nms(boxes, scores, thr, mode))


@pytest.mark.parametrize("seed", range(4))
def test_matches_cv2_nmsboxes(seed):
    # cv2.dnn.NMSBoxes takes (x, y, w, h) and, for float rects, computes IoU on continuous
    # coordinates (area = w * h, no +1), suppressing when IoU > threshold; same as ours.
    rng = np.random.default_rng(100 + seed)
    boxes, _ = random_boxes(rng, 400)
    # distinct scores > 0 (cv2 keeps scores > score_threshold, which must be >= 0)
    scores = (rng.permutation(400).astype(np.float32) + 1) / 401.0
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    ref = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), score_threshold=0.0,
                           nms_threshold=0.4)
    ref = np.asarray(ref, dtype=np.int64).reshape(-1)
    got = _core.nms(boxes, scores, 0.4)
    assert len(got) < 400  # the case must actually suppress something
    np.testing.assert_array_equal(got, ref)


def test_empty_and_single():
    e = _core.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert e.dtype == np.int64 and e.shape == (0,)
    one = _core.nms(np.array([[1, 2, 3, 4]], np.float32), np.array([0.1], np.float32), 0.5)
    np.testing.assert_array_equal(one, [0])


def test_all_overlapping_identical_scores_is_stable():
    boxes = np.tile(np.array([[10, 10, 50, 50]], np.float32), (7, 1))
    scores = np.full(7, 0.5, np.float32)
    np.testing.assert_array_equal(_core.nms(boxes, scores, 0.5), [0])
    # threshold 1.0: IoU of identical boxes is exactly 1, not > 1: nothing suppressed
    np.testing.assert_array_equal(_core.nms(boxes, scores, 1.0), np.arange(7))
    # disjoint boxes, equal scores: order is by index
    disj = np.array([[i * 100, 0, i * 100 + 10, 10] for i in range(5)], np.float32)
    np.testing.assert_array_equal(_core.nms(disj, np.ones(5, np.float32), 0.3), np.arange(5))
    # descending score order otherwise
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.3], np.float32)
    np.testing.assert_array_equal(_core.nms(disj, s, 0.3), [1, 3, 2, 4, 0])


def test_min_mode_differs_from_iou():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], np.float32)  # small inside big
    scores = np.array([0.9, 0.8], np.float32)
    np.testing.assert_array_equal(_core.nms(boxes, scores, 0.5, "iou"), [0, 1])
    np.testing.assert_array_equal(_core.nms(boxes, scores, 0.5, mode="min"), [0])


def test_zero_area_boxes_are_not_nan():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    np.testing.assert_array_equal(_core.nms(boxes, scores, 0.5), [0, 1, 2])


def test_non_contiguous_equals_contiguous():
    rng = np.random.default_rng(7)
    boxes, scores = random_boxes(rng, 200)
    wide = np.zeros((200, 8), np.float32)
    wide[:, ::2] = boxes
    nc_boxes = wide[:, ::2]
    nc_scores = np.repeat(scores, 2)[::2]
    assert not nc_boxes.flags.c_contiguous and not nc_scores.flags.c_contiguous
    np.testing.assert_array_equal(_core.nms(nc_boxes, nc_scores, 0.5),
                                  _core.nms(boxes, scores, 0.5))


def _raises(exc, fn, *args, **kw):
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert isinstance(info.value, EdgefaceError)
    return str(info.value)


def test_errors():
    b = np.array([[0, 0, 10, 10]], np.float32)
    s = np.array([1.0], np.float32)
    msg = _raises(InvalidDTypeError, _core.nms, np.zeros((10, 4)), np.zeros(10, np.float32), 0.5)
    assert "boxes" in msg and "float32" in msg and "float64" in msg and "(10, 4)" in msg
    assert issubclass(InvalidDTypeError, TypeError)
    _raises(InvalidDTypeError, _core.nms, b, s.astype(np.float16), 0.5)
    _raises(InvalidDTypeError, _core.nms, b.tolist(), s, 0.5)
    msg = _raises(InvalidArgumentError, _core.nms, np.zeros((3, 3), np.float32), s, 0.5)
    assert "(3, 3)" in msg
    _raises(InvalidArgumentError, _core.nms, b, np.ones(2, np.float32), 0.5)
    _raises(InvalidArgumentError, _core.nms, b, s, 1.5)
    _raises(InvalidArgumentError, _core.nms, b, s, float("nan"))
    _raises(InvalidArgumentError, _core.nms, b, s, 0.5, "giou")
    _raises(InvalidDTypeError, _core.nms, b, s, "0.5")
    _raises(InvalidDTypeError, _core.nms, b, s, 0.5, 3)
    with pytest.raises(ValueError):
        _core.nms(np.array([[10, 0, 0, 10]], np.float32), s, 0.5)  # x2 < x1
    for bad in (np.nan, np.inf, -np.inf):
        bb = b.copy()
        bb[0, 2] = bad
        msg = _raises(InvalidArgumentError, _core.nms, bb, s, 0.5)
        assert "boxes[0]" in msg
    _raises(InvalidArgumentError, _core.nms, b, np.array([np.nan], np.float32), 0.5)


@pytest.mark.parametrize("gdtype", [np.int32, np.int64])
def test_batched_matches_per_group_reference(gdtype):
    rng = np.random.default_rng(3)
    boxes, scores = random_boxes(rng, 600, extent=200)
    groups = rng.integers(-2, 5, size=600).astype(gdtype)
    got = _core.batched_nms(boxes, scores, groups, 0.5)
    keep = np.concatenate([np.flatnonzero(groups == g)[ref_nms(boxes[groups == g],
                                                               scores[groups == g], 0.5)]
                           for g in np.unique(groups)])
    order = np.lexsort((keep, -scores[keep].astype(np.float64)))
    np.testing.assert_array_equal(got, keep[order])
    # batched differs from plain NMS (cross-group overlaps are not suppressed)
    assert len(got) > len(_core.nms(boxes, scores, 0.5))


def test_batched_errors_and_empty():
    b = np.array([[0, 0, 10, 10]], np.float32)
    s = np.array([1.0], np.float32)
    with pytest.raises(InvalidDTypeError):
        _core.batched_nms(b, s, np.zeros(1, np.float32), 0.5)
    with pytest.raises(InvalidArgumentError):
        _core.batched_nms(b, s, np.zeros(2, np.int32), 0.5)
    e = _core.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros(0, np.int64), 0.5)
    assert e.shape == (0,) and e.dtype == np.int64


def test_batched_20k_matches_per_group_nms():
    """20k boxes in 12 groups (speed is measured by bench/bench_core.py, not asserted here)."""
    rng = np.random.default_rng(11)
    boxes, scores = random_boxes(rng, 20000, extent=1900, max_size=200)
    groups = rng.integers(0, 12, size=20000).astype(np.int64)
    keep = _core.batched_nms(boxes, scores, groups, 0.5)
    assert 0 < len(keep) < 20000
    expected = set()
    for g in range(12):
        idx = np.flatnonzero(groups == g)
        expected.update(idx[_core.nms(boxes[idx], scores[idx], 0.5)].tolist())
    assert set(keep.tolist()) == expected
