"""The int8 search kernel (_core.int8_scores) and the in-memory index's top-k."""
from __future__ import annotations

import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import InvalidArgumentError, InvalidDTypeError
from edgeface.gallery_index import _top_rows, quantize_int8


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


@pytest.mark.parametrize("args,error", [
    ((np.zeros((2, 16), np.float32), np.ones(2, np.float32), np.ones((1, 16), np.float32)), InvalidDTypeError),
    ((np.zeros((2, 16), np.int8), np.ones(3, np.float32), np.ones((1, 16), np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), np.ones((1, 8), np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), np.full((1, 16), np.nan, np.float32)), InvalidArgumentError),
    ((np.zeros((2, 16), np.int8), np.ones(2, np.float32), [[1.0] * 16]), InvalidDTypeError),
], ids=["float codes", "scales length", "probe dim", "nan probe", "list probe"])
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
