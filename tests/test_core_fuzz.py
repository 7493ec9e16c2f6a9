"""A short seeded run of tools/fuzz_core.py: every _core function, valid and junk arguments; each call
returns a result that passes its invariants or raises an EdgefaceError (tools/sanitize.sh runs it, and
the long run, against an ASan+UBSan build)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgeface import _core
from edgeface.errors import InvalidArgumentError

_FUZZER = Path(__file__).resolve().parents[1] / "tools" / "fuzz_core.py"
_spec = importlib.util.spec_from_file_location("fuzz_core", _FUZZER)
fuzz_core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_core)


@pytest.mark.parametrize("seed", [0, 1])
def test_short_seeded_fuzz_run_has_no_findings(seed):
    result = fuzz_core.run(3000, seed)
    assert result["n_findings"] == 0, result["findings"]
    assert set(result["calls"]) == {name for name in dir(_core) if not name.startswith("_")}
    assert result["outcomes"].get("ok", 0) > 1000  # the valid half really runs the kernels


def test_fuzzer_reports_untyped_exceptions(monkeypatch):
    """The fuzzer can fail: a kernel that raises an untyped exception is a finding."""
    def broken(*args):
        raise RuntimeError("boom")
    monkeypatch.setattr(fuzz_core._core, "nms", broken)
    assert fuzz_core.run(200, 0)["n_findings"] > 0


def test_surrogate_mode_string_raises_typed_error():
    boxes = np.array([[0, 0, 10, 10]], np.float32)
    with pytest.raises(InvalidArgumentError, match="UTF-8"):
        _core.nms(boxes, np.ones(1, np.float32), 0.5, "\ud800")


def test_warp_affine_with_zero_matrices():
    """K = 0 used to memcpy from a null pointer (UBSan); it must give an empty batch."""
    img = np.zeros((8, 8, 3), np.uint8)
    for dtype in (np.float64, np.float32):
        out = _core.warp_affine(img, np.zeros((0, 2, 3), dtype), 4, 5)
        assert out.shape == (0, 4, 5, 3) and out.dtype == np.uint8
