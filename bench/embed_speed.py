"""ms per face of every embedder edgeface can load (bundled and imported), in one interleaved run.

Each model runs through ``edgeface.runtime.Runner`` (the session options users get) on an input of its
own size (random values: these dense nets do the same work whatever the content), batch 1 and 8, 1 thread;
rounds alternate between the models so that the load of a shared machine hits them alike, and the medians
are reported with the ratio to dlib INT8.

``--prelu-free`` adds a speed ceiling for an imported MobileFaceNet: the same network with every PReLU
replaced by a Relu and every conv and Relu in INT8 (ONNX Runtime fuses Relu into QLinearConv, so this is
what INT8 would cost if PReLU were free). Its outputs are meaningless; only its time is.

    EDGEFACE_HOME=... python bench/embed_speed.py                     # after edgeface models import ...
    EDGEFACE_HOME=... python bench/embed_speed.py --prelu-free
    python bench/embed_speed.py --backends onnxruntime,openvino --rounds 15
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import publish  # noqa: E402

from edgeface.models import get_model, list_models  # noqa: E402
from edgeface.runtime import Runner  # noqa: E402

BASELINE = "dlib_resnet_v1_int8"
CEILING = "mobilefacenet_int8 with Relu for PReLU (ceiling)"


def prelu_free_variant(fp32: Path, folder: Path) -> Path:
    """``fp32`` (edgeface's MobileFaceNet conversion) with each PReLU, emitted by the converter as
    Add(Mul(x, a), Mul(Relu(x), 1 - a)), cut down to its Relu; quantized: every Conv and Relu INT8."""
    import onnx
    from edgeface.quantization import QuantConfig, quantize_static
    model = onnx.load(fp32)
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    dropped, relu_of = set(), {}
    for node in graph.node:
        if node.op_type == "Add" and node.input[0].endswith("_ax"):
            scaled_x, scaled_relu = producer[node.input[0]], producer[node.input[1]]
            relu_of[node.output[0]] = scaled_relu.input[0]
            dropped.update(id(n) for n in (node, scaled_x, scaled_relu))
    if not relu_of:
        raise SystemExit(f"{fp32} has no PReLU of edgeface's MobileFaceNet form")
    kept = [n for n in graph.node if id(n) not in dropped]
    for node in kept:
        node.input[:] = [relu_of.get(name, name) for name in node.input]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    variant = folder / "prelu_free_fp32.onnx"
    onnx.save(model, variant)
    rng = np.random.default_rng(0)
    feeds = ({"image": rng.uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32)} for _ in range(8))
    out = folder / "prelu_free_int8.onnx"
    quantize_static(variant, out, feeds, QuantConfig(method="minmax", op_types=("Conv", "Relu")))
    return out


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
    ap.add_argument("--prelu-free", action="store_true", help="add the MobileFaceNet INT8 speed ceiling (needs "
                    "an imported mobilefacenet and the convert extra)")
    args = ap.parse_args()
    names = [n for n in list_models() if get_model(n).role == "embedder"]
    models: dict[str, Any] = {n: get_model(n) for n in names}
    tmp = tempfile.TemporaryDirectory(prefix="edgeface-ceiling-")
    if args.prelu_free:
        if "mobilefacenet" not in names:
            raise SystemExit("--prelu-free needs an imported model: edgeface models import mobilefacenet FILE.tflite")
        models[CEILING] = prelu_free_variant(get_model("mobilefacenet").path, Path(tmp.name))
        names.append(CEILING)
    results = []
    for backend in args.backends.split(","):
        for batch in (1, 8):
            runners = {n: Runner(models[n], backend=backend, threads=args.threads) for n in names}
            feeds = {n: inputs("mobilefacenet" if n == CEILING else n, batch) for n in names}
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
    tmp.cleanup()
    publish("embed_speed.json", {"protocol": f"Runner, {args.threads} thread(s), interleaved rounds, median per face; "
                                             "OpenVINO at its default precision hint f32", "results": results})


if __name__ == "__main__":
    main()
