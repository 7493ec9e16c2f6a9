#!/usr/bin/env python3
"""Seeded fuzzer of every ``edgeface._core`` function.

Each input is a valid call (small random images, boxes, landmarks, scales ...) in which, half of the
time, one or two arguments are replaced by junk: wrong types, wrong dtypes, wrong shapes, empty and
non-contiguous arrays, NaN/inf, huge or negative numbers, lone-surrogate strings. A call must either
return a result that passes cheap invariant checks, or raise an ``EdgefaceError``. Anything else (an
untyped exception, a broken invariant) is a finding; a crash or a sanitizer report ends the process
(run under tools/sanitize.sh to catch memory errors and undefined behaviour).

    python tools/fuzz_core.py --iterations 1000000 --seed 0
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any, Callable

import numpy as np

from edgeface import _core
from edgeface.errors import EdgefaceError

TEMPLATE = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], np.float32)
Call = tuple[str, Callable[..., Any], list[Any], Callable[[Any, list[Any]], None]]


# ------------------------------------------------------------------------------------------ valid parts

def image(rng: np.random.Generator) -> np.ndarray:
    h, w = rng.integers(1, 41, 2)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return img[:, ::-1] if rng.random() < 0.2 else img  # sometimes non-contiguous


def boxes(rng: np.random.Generator, k: int) -> np.ndarray:
    xy = rng.uniform(-20, 60, (k, 2)).astype(np.float32)
    wh = rng.uniform(0, 40, (k, 2)).astype(np.float32)
    return np.concatenate([xy, xy + wh], axis=1)


def count(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 9))


def real_dtype(rng: np.random.Generator) -> type:
    return np.float32 if rng.random() < 0.5 else np.float64


def landmarks(rng: np.random.Generator, k: int, n: int = 5) -> np.ndarray:
    centre = rng.uniform(0, 40, (k, 1, 2))
    scale = rng.uniform(0.05, 0.5, (k, 1, 1))
    return (TEMPLATE[:n] * scale + centre).astype(real_dtype(rng))


# ------------------------------------------------------------------------------------------- junk

def junk(rng: np.random.Generator) -> Any:
    """A value that no argument of any kernel accepts as is (or only at its edge)."""
    choice = int(rng.integers(0, 22))
    shape = tuple(int(d) for d in rng.integers(0, 6, int(rng.integers(0, 4))))
    if choice == 0:
        return None
    if choice == 1:
        return "\ud800" if rng.random() < 0.5 else "iou "
    if choice == 2:
        return float(rng.choice([np.nan, np.inf, -np.inf, 1e300, -1e300]))
    if choice == 3:
        return int(rng.choice([-1, 0, 2**31, 2**63, 2**70, -2**70]))
    if choice == 4:
        return bool(rng.random() < 0.5)
    if choice == 5:
        return [] if rng.random() < 0.5 else [[1.0, 2.0], [3.0]]
    if choice == 6:
        return object()
    if choice == 7:
        return rng.standard_normal(shape).astype(np.float32)
    if choice == 8:
        return np.zeros(shape, dtype=rng.choice([object, bool, np.complex64, np.int8, np.float16, np.uint16]))
    if choice == 9:
        return np.float32(rng.standard_normal())
    if choice == 10:
        a = rng.standard_normal((6, 8)).astype(np.float32)
        return a[:, ::2]
    if choice == 11:
        return np.full(shape, np.nan, np.float32)
    if choice == 12:
        return np.full(shape, 3e38, np.float32)
    if choice == 13:
        return np.zeros((0,) + shape, np.float32)
    if choice == 14:
        return rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    if choice == 15:
        return np.zeros((int(rng.integers(0, 3)), int(rng.integers(0, 3)), 3), np.uint8)  # empty image
    if choice == 16:
        return np.zeros((1, 40000, 3), np.uint8)[:, :1]  # non-contiguous view of a long row
    if choice == 17:
        return b"\x00\x01"
    if choice == 18:
        return rng.integers(-5, 5, shape).astype(np.int64)
    if choice == 19:
        return memoryview(b"abc")
    if choice == 20:
        return -float(rng.uniform(0, 10))
    return float(rng.uniform(-1e6, 1e6))


# ------------------------------------------------------------------------------------------- checks

def _check_indices(out: Any, args: list[Any]) -> None:
    n = len(args[0])
    assert out.dtype == np.int64 and out.ndim == 1, out.dtype
    assert len(np.unique(out)) == len(out) and np.all((out >= 0) & (out < n)), out


def _check_boxes(out: Any, args: list[Any]) -> None:
    assert out.dtype == np.float32 and out.shape == (len(args[0]), 4), out.shape
    assert np.all(np.isfinite(out)) or not np.all(np.isfinite(args[0])), out


def _check_scales(out: Any, args: list[Any]) -> None:
    assert isinstance(out, list) and all(np.isfinite(s) and s > 0 for s in out), out


def _check_pyramid(out: Any, args: list[Any]) -> None:
    canvas, rects = out
    assert canvas.dtype == np.float32 and canvas.ndim == 3 and canvas.shape[0] == 3, canvas.shape
    assert rects.dtype == np.int32 and rects.shape == (len(args[1]), 4), rects.shape
    assert np.all(np.isfinite(canvas))


def _check_candidates(out: Any, args: list[Any]) -> None:
    rows, levels = out
    assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 9, rows.shape
    assert levels.shape == (len(rows),) and np.all((levels >= 0) & (levels < len(args[2])))


def _check_crops(out: Any, args: list[Any]) -> None:
    k, size = len(args[1]), int(args[2])
    assert out.dtype == np.float32 and out.shape == (k, 3, size, size), out.shape
    assert np.all(np.isfinite(out))


def _check_matrix(out: Any, args: list[Any]) -> None:
    assert out.dtype == np.float64 and out.shape[-2:] == (2, 3) and np.all(np.isfinite(out)), out


def _check_warp(out: Any, args: list[Any]) -> None:
    assert out.dtype == np.uint8 and out.shape == (len(args[1]), int(args[2]), int(args[3]), 3), out.shape


def _check_align(out: Any, args: list[Any]) -> None:
    crops, mats = out
    assert crops.dtype == np.uint8 and crops.shape == (len(args[1]), int(args[3]), int(args[4]), 3)
    _check_matrix(mats, args)


def _check_int8_scores(out: Any, args: list[Any]) -> None:
    codes, scales, probes = args[0], args[1], args[2]
    expected = (probes.astype(np.float64) @ codes.T.astype(np.float64)) * scales[None, :]
    # the kernel's reduced-precision accumulation (gallery.py re-scores its best candidates in float32):
    # error relative to the largest score, not to each one
    assert out.shape == expected.shape and np.all(np.abs(out - expected) <= 2e-3 * (1.0 + np.abs(expected).max(initial=0)))


def _check_int8_top(out: Any, args: list[Any]) -> None:
    rows, scores = out
    full = _core.int8_scores(*args[:3])
    expected = np.argsort(-full, axis=1, kind="stable")[:, :min(int(args[3]), full.shape[1])]
    assert rows.dtype == np.int64 and np.array_equal(rows, expected), (rows, expected)
    assert np.array_equal(scores, np.take_along_axis(full, expected, axis=1))


def _no_check(out: Any, args: list[Any]) -> None:
    pass


# ------------------------------------------------------------------------------------------- calls

def valid_call(rng: np.random.Generator) -> Call:
    """One valid call of a randomly chosen kernel: (name, function, args, invariant check)."""
    which = int(rng.integers(0, 15))
    k = count(rng)
    thr = float(rng.uniform(0, 1))
    mode = "iou" if rng.random() < 0.5 else "min"
    if which == 0:
        b = boxes(rng, k)
        return "nms", _core.nms, [b, rng.random(k).astype(np.float32), thr, mode], _check_indices
    if which == 1:
        b = boxes(rng, k)
        groups = rng.integers(0, 3, k).astype(np.int32 if rng.random() < 0.5 else np.int64)
        return "batched_nms", _core.batched_nms, [b, rng.random(k).astype(np.float32), groups, thr, mode], \
            _check_indices
    if which == 2:
        args = [int(rng.integers(1, 2000)), int(rng.integers(1, 2000)), float(rng.uniform(1, 100)),
                float(rng.uniform(0.1, 0.95)), int(rng.integers(0, 40)), int(rng.integers(1, 25))]
        return "pyramid_scales", _core.pyramid_scales, args, _check_scales
    if which == 3:
        scales = [float(s) for s in rng.uniform(0.05, 2.0, int(rng.integers(0, 5)))]
        args = [image(rng), scales, bool(rng.random() < 0.5), float(rng.uniform(0, 255)), float(rng.uniform(-1, 1))]
        return "pyramid", _core.pyramid, args, _check_pyramid
    if which == 4:
        scales = [float(s) for s in rng.uniform(0.3, 2.0, int(rng.integers(1, 4)))]
        canvas, rects = _core.pyramid(image(rng), scales)
        mh, mw = max(0, (canvas.shape[1] - 12) // 2 + 1), max(0, (canvas.shape[2] - 12) // 2 + 1)
        prob = rng.random((mh, mw)).astype(np.float32)
        reg = rng.uniform(-0.3, 0.3, (4, mh, mw)).astype(np.float32)
        return "pnet_candidates", _core.pnet_candidates, [prob, reg, rects, scales, thr], _check_candidates
    if which == 5:
        reg = rng.uniform(-0.5, 0.5, (k, 4)).astype(np.float32)
        return "calibrate_boxes", _core.calibrate_boxes, [boxes(rng, k), reg], _check_boxes
    if which == 6:
        return "square_boxes", _core.square_boxes, [boxes(rng, k)], _check_boxes
    if which == 7:
        args = [boxes(rng, k), int(rng.integers(1, 100)), int(rng.integers(1, 100))]
        return "clip_boxes", _core.clip_boxes, args, _check_boxes
    if which == 8:
        args = [image(rng), boxes(rng, k), int(rng.integers(1, 49)), bool(rng.random() < 0.5), 127.5, 0.0078125]
        return "crop_resize", _core.crop_resize, args, _check_crops
    if which == 9:
        n = int(rng.integers(2, 7))
        src = rng.uniform(0, 50, (n, 2)).astype(real_dtype(rng))
        dst = rng.uniform(0, 50, (n, 2)).astype(real_dtype(rng))
        return "similarity_transform", _core.similarity_transform, [src, dst], _check_matrix
    if which == 10:
        return "similarity_transforms", _core.similarity_transforms, \
            [landmarks(rng, k), TEMPLATE.astype(real_dtype(rng))], _check_matrix
    size = [int(rng.integers(1, 49)), int(rng.integers(1, 49)), int(rng.integers(0, 256))]
    if which == 11:
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 3)
        mats = np.zeros((k, 2, 3))
        mats[:, 0, :2] = [scale * np.cos(angle), -scale * np.sin(angle)]
        mats[:, 1, :2] = [scale * np.sin(angle), scale * np.cos(angle)]
        mats[:, :, 2] = rng.uniform(-40, 40, (k, 2))
        return "warp_affine", _core.warp_affine, [image(rng), mats.astype(real_dtype(rng)), *size], _check_warp
    if which in (12, 13):
        n, q, d = int(rng.integers(0, 300)), int(rng.integers(0, 5)), int(rng.integers(1, 200))
        codes = rng.integers(-127, 128, (n, d)).astype(np.int8)
        scales = rng.uniform(0, 0.02, n).astype(np.float32)
        probes = rng.standard_normal((q, d)).astype(np.float32)
        if which == 13:
            return "int8_top", _core.int8_top, [codes, scales, probes, int(rng.integers(1, 70)),
                                                int(rng.integers(0, 3))], _check_int8_top
        return "int8_scores", _core.int8_scores, [codes, scales, probes, int(rng.integers(0, 3))], _check_int8_scores
    return "align_faces", _core.align_faces, [image(rng), landmarks(rng, k), TEMPLATE, *size], _check_align


def fuzz_input(rng: np.random.Generator) -> tuple[str, Callable[..., Any], list[Any], Callable[..., None], bool]:
    """A valid call, or (half of the time) the same call with one or two arguments replaced by junk."""
    name, fn, args, check = valid_call(rng)
    mutated = bool(rng.random() < 0.5) and len(args) > 0
    if mutated:
        for _ in range(int(rng.integers(1, 3))):
            args[int(rng.integers(0, len(args)))] = junk(rng)
    return name, fn, args, (_no_check if mutated else check), mutated


def run(iterations: int, seed: int, report_every: int = 0) -> dict[str, Any]:
    """Run ``iterations`` inputs from ``seed``; returns counts, and the findings (at most 20 kept)."""
    rng = np.random.default_rng(seed)
    calls: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    findings: list[str] = []
    n_findings = 0
    start = time.perf_counter()
    for i in range(iterations):
        name, fn, args, check, mutated = fuzz_input(rng)
        calls[name] += 1
        try:
            out = fn(*args)
        except EdgefaceError as exc:
            outcomes[f"{type(exc).__name__}{' (valid input!)' if not mutated else ''}"] += 1
            if not mutated and "would have" not in str(exc):
                n_findings += 1
                if len(findings) < 20:
                    findings.append(f"#{i} {name}: valid input raised {type(exc).__name__}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - an untyped exception is exactly what we look for
            n_findings += 1
            outcomes[f"UNTYPED {type(exc).__name__}"] += 1
            if len(findings) < 20:
                findings.append(f"#{i} {name}({_describe(args)}): untyped {type(exc).__name__}: {exc}")
            continue
        try:
            check(out, args)
            outcomes["ok"] += 1
        except AssertionError as exc:
            n_findings += 1
            outcomes["BROKEN INVARIANT"] += 1
            if len(findings) < 20:
                findings.append(f"#{i} {name}({_describe(args)}): invariant broken: {exc}")
        if report_every and (i + 1) % report_every == 0:
            print(f"{i + 1} inputs, {time.perf_counter() - start:.0f} s, {n_findings} findings", flush=True)
    return {"iterations": iterations, "seed": seed, "seconds": time.perf_counter() - start,
            "calls": dict(calls), "outcomes": dict(outcomes), "n_findings": n_findings, "findings": findings}


def _describe(args: list[Any]) -> str:
    parts = []
    for a in args:
        if isinstance(a, np.ndarray):
            parts.append(f"array{a.shape}:{a.dtype}{'' if a.flags.c_contiguous else ':noncontig'}")
        else:
            parts.append(ascii(a)[:40])
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-every", type=int, default=100_000)
    args = parser.parse_args(argv)
    result = run(args.iterations, args.seed, args.report_every)
    print(f"{result['iterations']} inputs (seed {result['seed']}) in {result['seconds']:.1f} s; "
          f"{result['n_findings']} findings")
    print("calls:", dict(sorted(result["calls"].items())))
    print("outcomes:", dict(sorted(result["outcomes"].items())))
    for line in result["findings"]:
        print("FINDING", line)
    return 1 if result["n_findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
