"""The int8 search kernels (_core.int8_scores, _core.int8_top) and the in-memory index's top-k."""
from __future__ import annotations

import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import InvalidArgumentError, InvalidDTypeError
from edgeface.gallery_index import VectorIndex, _top_rows, quantize_int8


def unit(n: int, d: int = 128, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("n,q,threads", [(1, 1, 0), (10_000, 3, 0), (10_000, 5, 1), (20_001, 2, 3)])
def test_int8_scores_match_dequantized_float_product(n, q, threads):
    rows, probes = unit(n), unit(q, seed=1)
    codes, scales = quantize_int8(rows)
    got = _core.int8_scores(codes, scales, probes, threads)
    expected = probes @ (codes.astype(np.float32) * scales[:, None]).T
    np.testing.assert_allclose(got, expected, atol=2e-4)  # only the probe's int16 rounding differs
    assert np.abs(got - probes @ rows.T).max() < 0.01


def reference_int8_scores(codes: np.ndarray, scales: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """The kernel's arithmetic in numpy: probes to int16 codes (lround), exact int64 dot products, then
    float32(dot) * scale * probe scale in float32."""
    peak = np.abs(probes).max(axis=1)
    pscales = np.where(peak > 0, np.maximum(peak / np.float32(32767), np.float32(1e-45)), np.float32(1))
    x = (probes / pscales[:, None]).astype(np.float64)
    pcodes = (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)  # lround: halves away from zero
    dots = pcodes @ codes.astype(np.int64).T
    assert np.abs(dots).max(initial=0) < 2**31
    return (dots.astype(np.float32) * scales[None, :]) * pscales[:, None].astype(np.float32)


@pytest.mark.parametrize("d", [1, 15, 16, 17, 33, 128, 130])
@pytest.mark.parametrize("n,q,threads", [(1, 1, 0), (7, 2, 1), (9, 3, 1), (70_003, 2, 2)])
def test_int8_scores_are_exact(d, n, q, threads):
    """Bit-identical to exact integer dot products: D not a multiple of 16, N not a multiple of the
    8-row block, rows split over threads, codes over the full int8 range."""
    rng = np.random.default_rng(d * n)
    codes = rng.integers(-128, 128, (n, d), dtype=np.int8)
    scales = rng.uniform(1e-4, 1, n).astype(np.float32)
    probes = rng.normal(size=(q, d)).astype(np.float32)
    probes[0, 0] = 1e-30  # a value far below the probe's scale: code 0
    got = _core.int8_scores(codes, scales, probes, threads)
    np.testing.assert_array_equal(got, reference_int8_scores(codes, scales, probes))


@pytest.mark.parametrize("n,threads", [(1, 0), (7, 1), (100, 1), (5000, 0), (70_001, 2)])
@pytest.mark.parametrize("k", [1, 5, 64, 4096])
def test_int8_top_equals_a_stable_sort_of_int8_scores(n, threads, k):
    codes, scales = quantize_int8(unit(n, 40, seed=n))
    codes[::5] = codes[0]  # ties: broken by lower row
    scales[::5] = scales[0]
    probes = unit(3, 40, seed=k)
    rows, scores = _core.int8_top(codes, scales, probes, k, threads)
    full = _core.int8_scores(codes, scales, probes, threads)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :min(k, n)]
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(scores, np.take_along_axis(full, expected, axis=1))


@pytest.mark.parametrize("k,scale,error", [
    (0, 1.0, InvalidArgumentError), (4097, 1.0, InvalidArgumentError), (2.0, 1.0, InvalidDTypeError),
    (5, np.nan, InvalidArgumentError), (5, np.inf, InvalidArgumentError),
], ids=["k 0", "k too large", "float k", "nan scale", "inf scale"])
def test_int8_top_bad_inputs_are_typed_errors(k, scale, error):
    codes, scales = quantize_int8(unit(100, 16))
    scales[57] = scale
    with pytest.raises(error):
        _core.int8_top(codes, scales, unit(2, 16), k)


@pytest.mark.parametrize("args,error", [
    ((np.zeros((2, 16), np.float32), np.ones(2, np.float32), np.ones((1, 16), np.float32)), InvalidDTypeError),
    ((np.zeros((2, 16), np.int8), np.ones(3, np.float32), np.ones((1, 16), np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), np.ones((1, 8), np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), np.full((1, 16), np.nan, np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), [[1.0] * 16]), InvalidDTypeError),
    ((np.zeros((2, 513), np.int8), np.ones(2, np.float32), np.ones((1, 513), np.float32)), InvalidArgumentError),
], ids=["float codes", "scales length", "probe dim", "nan probe", "list probe", "dim over int32 range"])
def test_int8_scores_bad_inputs_are_typed_errors(args, error):
    with pytest.raises(error):
        _core.int8_scores(*args)


def test_int8_scores_threads_must_be_an_integer_in_range():
    codes, scales = quantize_int8(unit(4, 16))
    with pytest.raises(InvalidArgumentError):
        _core.int8_scores(codes, scales, unit(1, 16), -1)


@pytest.mark.parametrize("n", [1, 7, 300, 5000, 200_003])
@pytest.mark.parametrize("m", [1, 5, 64])
def test_top_rows_equals_a_full_stable_sort(n, m):
    row = np.random.default_rng(n).normal(size=n).astype(np.float32)
    row[::7] = row[0]  # ties: broken by index, as a stable sort does
    m = min(m, n)
    np.testing.assert_array_equal(_top_rows(row, m)[:m], np.argsort(-row, kind="stable")[:m])


def test_int8_top_people_widen_past_the_shortlist_like_float32():
    """The probe's best 64 rows belong to 2 of 3 people: the int8 store then searches the whole row,
    and answers as the float32 store does."""
    rng = np.random.default_rng(3)
    probe = unit(1, 32, seed=4)
    near = probe + 0.3 * unit(600, 32, seed=5)
    far = -probe + 0.3 * unit(5, 32, seed=6)
    vectors = np.concatenate([near, far]) / np.linalg.norm(np.concatenate([near, far]), axis=1, keepdims=True)
    owners = np.r_[np.repeat([1, 2], 300), np.full(5, 3)].astype(np.int64)
    rng.shuffle(owners[:600])
    answers = []
    for store in ("float32", "int8"):
        index = VectorIndex.build(32, "max", store, np.arange(605, dtype=np.int64), owners, np.ones(605, np.float32),
                                  vectors.astype(np.float32), 605)
        answers.append(index.top_people(probe, 3))
    np.testing.assert_array_equal(answers[1][0], answers[0][0])
    np.testing.assert_allclose(answers[1][1], answers[0][1], atol=1e-6)
    assert answers[0][0][0, 2] == 3
