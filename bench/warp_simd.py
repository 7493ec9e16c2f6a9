"""Is the warp's portable scalar path fast enough for aarch64 (which has no SSE2 path)?

Usage: python bench/warp_simd.py --scalar-site build/x86_64-scalar/site [--runs 30] [--rounds 3]

The scalar site is this source built with the SSE2 paths compiled out (the same code aarch64 runs):
    pip wheel . --no-deps --no-build-isolation -C cmake.define.CMAKE_CXX_FLAGS=-U__SSE2__ -w W
    pip install --no-deps --target build/x86_64-scalar/site W/edgeface-*.whl

Alternating child processes time `warp_affine` (16 faces of a 640x480 frame -> 150x150, the
default embedder's input; one thread) with the installed SSE2 build and with the scalar build, check that both give the same
bytes, and time the default INT8 embedder on the same 16 crops (one thread). Emulated aarch64
timings mean nothing, so the answer is a ratio measured natively on x86: the scalar warp's
share of the per-face cost (warp + embedding). Writes docs/benchmarks/warp_simd.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, REPO, machine, median_ms, write_json_atomic  # noqa: E402

SIZE = 150  # the default embedder (dlib ResNet) takes 150x150 crops


def faces_of_a_frame(rng: np.random.Generator, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 frame (the astronaut photo resized) and k face-like similarity transforms."""
    import cv2
    frame = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (640, 480))
    angle = rng.uniform(-0.5, 0.5, k)             # +-30 degrees of roll
    scale = rng.uniform(0.7, 2.0, k)              # faces of 75..215 px -> 150 px
    centre = rng.uniform([60, 60], [580, 420], (k, 2))
    rot = scale[:, None, None] * np.stack([[np.cos(angle), -np.sin(angle)],
                                           [np.sin(angle), np.cos(angle)]]).transpose(2, 0, 1)
    shift = SIZE / 2 - np.einsum("kij,kj->ki", rot, centre)
    return frame, np.concatenate([rot, shift[:, :, None]], axis=2)


def load_core(path: str):
    """edgeface._core from this very file (an editable install would otherwise shadow PYTHONPATH)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("edgeface._core", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["edgeface._core"] = module
    spec.loader.exec_module(module)
    return module


def measure(core: str, runs: int, embed: bool) -> dict:
    """Child process: time the core module at ``core``."""
    _core = load_core(core)
    frame, mats = faces_of_a_frame(np.random.default_rng(0))
    crops = _core.warp_affine(frame, mats, SIZE, SIZE)
    out = {"core": _core.__file__, "sha256": hashlib.sha256(crops.tobytes()).hexdigest(),
           "warp_ms": median_ms(lambda: _core.warp_affine(frame, mats, SIZE, SIZE), runs)}
    if embed:
        from edgeface.embedding import Embedder
        with Embedder(threads=1) as emb:
            out["embed_ms"] = median_ms(lambda: emb.embed_aligned(crops), max(5, runs // 3))
            out["embedder"] = emb.spec.name
    return out


def child(core: str, runs: int, embed: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", core, "--runs", str(runs)] + (["--embed"] if embed else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)


def core_in(site: str) -> str:
    found = sorted(Path(site).glob("edgeface/_core*.so"))
    if not found:
        raise SystemExit(f"no edgeface/_core*.so under {site}")
    return str(found[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scalar-site", help="folder holding the scalar build of edgeface (see above)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--simd-site", help="folder holding the SSE2 build (default: the installed edgeface)")
    ap.add_argument("--child", metavar="CORE", help=argparse.SUPPRESS)
    ap.add_argument("--embed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.runs, args.embed)))
        return 0
    if not args.scalar_site:
        ap.error("--scalar-site is required")
    if args.simd_site:
        simd_core = core_in(args.simd_site)
    else:
        import edgeface._core
        simd_core = edgeface._core.__file__
    scalar_core = core_in(args.scalar_site)
    simd, scalar = [], []
    for r in range(args.rounds):  # alternate, so that the machine's load hits both alike
        simd.append(child(simd_core, args.runs, embed=(r == 0)))
        scalar.append(child(scalar_core, args.runs, embed=False))
    identical = len({s["sha256"] for s in simd + scalar}) == 1
    k = 16
    simd_ms = float(np.median([s["warp_ms"] for s in simd])) / k
    scalar_ms = float(np.median([s["warp_ms"] for s in scalar])) / k
    embed_ms = simd[0]["embed_ms"] / k
    result = {
        "case": "warp_affine, 16 faces of a 640x480 frame -> 150x150, 1 thread; embedder on the same crops, 1 thread",
        "rounds": args.rounds, "runs_per_round": args.runs,
        "warp_sse2_ms_per_face": round(simd_ms, 4), "warp_scalar_ms_per_face": round(scalar_ms, 4),
        "scalar_over_sse2": round(scalar_ms / simd_ms, 2),
        "embedder": simd[0]["embedder"], "embed_ms_per_face": round(embed_ms, 3),
        "scalar_warp_share_of_warp_plus_embed": round(scalar_ms / (scalar_ms + embed_ms), 4),
        "scalar_and_sse2_bit_identical": identical,
    }
    print(json.dumps(result, indent=2))
    write_json_atomic(PUBLISHED / "warp_simd.json", {
        "command": "python bench/warp_simd.py " + " ".join(sys.argv[1:]), "machine": machine(), **result})
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
