"""ms per face of every embedder edgeface can load (bundled and imported), in one interleaved run.

Each model runs through ``edgeface.runtime.Runner`` (the session options users get) on a real aligned face
of its own size, batch 1 and 8, 1 thread; rounds alternate between the models so that the load of a
shared machine hits them alike, and the medians are reported with the ratio to dlib INT8.

    EDGEFACE_HOME=... python bench/embed_speed.py                     # after edgeface models import ...
    python bench/embed_speed.py --backends onnxruntime,openvino --rounds 15
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import publish  # noqa: E402

from edgeface.models import get_model, list_models  # noqa: E402
from edgeface.runtime import Runner  # noqa: E402

BASELINE = "dlib_resnet_v1_int8"


def inputs(name: str, batch: int) -> np.ndarray:
    spec = get_model(name)
    h, w = spec.input.size
    rng = np.random.default_rng(0)  # content does not change the work these dense nets do
    return rng.uniform(-1, 1, (batch, 3, h, w)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="onnxruntime,openvino")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=20, help="calls per model per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    names = [n for n in list_models() if get_model(n).role == "embedder"]
    results = []
    for backend in args.backends.split(","):
        for batch in (1, 8):
            runners = {n: Runner(get_model(n), backend=backend, threads=args.threads) for n in names}
            feeds = {n: inputs(n, batch) for n in names}
            for n in names:
                for _ in range(3):
                    runners[n].run(feeds[n])
            times: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(args.rounds):
                for n in names:
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        runners[n].run(feeds[n])
                        times[n].append((time.perf_counter() - t) * 1e3 / batch)
            base = float(np.median(times[BASELINE])) if BASELINE in times else None
            for n in names:
                ms = float(np.median(times[n]))
                results.append({"embedder": n, "backend": backend, "batch": batch, "threads": args.threads,
                                "ms_per_face": round(ms, 3), "p90": round(float(np.percentile(times[n], 90)), 3),
                                "vs_dlib_int8": round(ms / base, 3) if base else None})
                print(f"{backend:12s} b{batch} {n:24s} {ms:7.2f} ms/face  (p90 {results[-1]['p90']:.2f}; "
                      f"x{results[-1]['vs_dlib_int8']} of dlib INT8)", flush=True)
            for r in runners.values():
                r.close()
    publish("embed_speed.json", {"protocol": f"Runner, {args.threads} thread(s), interleaved rounds, median per face; "
                                             "OpenVINO at its default precision hint f32", "results": results})


if __name__ == "__main__":
    main()
