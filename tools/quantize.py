"""Static INT8 (QDQ, per-channel weights) quantization of a registered fp32 embedder, with evaluation and timing.
The quantizer itself is ``edgeface.quantization`` (shared with ``edgeface models import`` and the MTCNN trial).

Generic over embedders: preprocessing (size, layout, normalisation) is read from the model's manifest entry;
calibration / evaluation data are .npz files with `chips` = uint8 [N, H, W, 3] RGB aligned faces.

From a fresh clone (after tools/convert_dlib.py; the chips come from dlib's detector + 5-point chip, made in
the dlib tool venv; LFW is the evaluation set and never used for calibration):

    /work/venv-dlib/bin/python tools/convert_dlib.py --calibration-chips /tmp/edgeface/dlib_calib.npz \\
        --calibration-dirs /work/shared/data/speed /work/shared/data/detection
    /work/venv-dlib/bin/python tools/convert_dlib.py --lfw /work/shared/data/lfw --lfw-chips /tmp/edgeface/lfw_dlib.npz
    /work/venv/bin/python tools/quantize.py --model dlib_resnet_v1 --calibration /tmp/edgeface/dlib_calib.npz \\
        --eval /tmp/edgeface/lfw_dlib.npz --pairs /work/shared/data/lfw/pairs.tsv --compare-methods --bench

Writes models/<model>_int8.onnx and registers it (with the calibration description, cosine to fp32 and, with
--pairs, LFW verification accuracy) in models/manifest.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest_tools  # noqa: E402
from edgeface.quantization import METHODS, QuantConfig, quantize_static  # noqa: E402  (the one quantizer)


def preprocess(entry: dict[str, Any], chips: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB chips -> the model's float input, per its manifest entry."""
    inp = entry["input"]
    size = tuple(inp["shape"][2:4] if inp["layout"] == "NCHW" else inp["shape"][1:3])
    if chips.shape[1:3] != size:
        raise ValueError(f"chips are {chips.shape[1:3]}, model wants {size}")
    x = chips.astype(np.float32)
    if inp["color"] == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(inp["normalize"]["mean"], np.float32)) / np.asarray(inp["normalize"]["std"], np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if inp["layout"] == "NCHW" else x)


def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    # Spinning workers fight the Python around them on 2 shared cores (models-facts.md).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def embed(path: Path, entry: dict[str, Any], x: np.ndarray, threads: int = 2) -> np.ndarray:
    sess = session(path, threads)
    return np.concatenate([sess.run([entry["output"]["name"]], {entry["input"]["name"]: x[i:i + 32]})[0]
                           for i in range(0, len(x), 32)])


def quantize(fp32: Path, out: Path, entry: dict[str, Any], calib: np.ndarray, method: str) -> None:
    # Batches of one chip: the histogram calibrators (percentile, entropy) need equal batch shapes.
    config = QuantConfig(method=method, op_types=None, percentile=99.99)
    quantize_static(fp32, out, ({entry["input"]["name"]: calib[i:i + 1]} for i in range(len(calib))), config)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def lfw_accuracy(emb: np.ndarray, paths: list[str], pairs: Path) -> dict[str, float]:
    """5-fold verification: cosine score, threshold chosen on the other 4 folds (maximum accuracy)."""
    index = {p: i for i, p in enumerate(paths)}
    rows = [line.split("\t") for line in pairs.read_text().splitlines()[1:]]
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    score = np.array([float(e[index[r[0]]] @ e[index[r[1]]]) for r in rows])
    same = np.array([r[2] == "1" for r in rows])
    fold = np.array([int(r[3]) for r in rows])
    accs = []
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        cands = np.unique(score[tr])
        best = max(cands, key=lambda t: np.mean((score[tr] >= t) == same[tr]))
        accs.append(np.mean((score[te] >= best) == same[te]))
    return {"accuracy": round(float(np.mean(accs)), 5), "std": round(float(np.std(accs)), 5), "folds": len(accs)}


def bench(path: Path, entry: dict[str, Any], x: np.ndarray) -> dict[str, float]:
    """ms per face: ORT 1/2 threads at batch 1/8, OpenVINO f32 hint and default (bf16 on this CPU)."""
    res: dict[str, float] = {}
    name = entry["input"]["name"]
    for threads in (1, 2):
        sess = session(path, threads)
        for batch in (1, 8):
            xb = x[:batch]
            for _ in range(3):
                sess.run(None, {name: xb})
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 2.0:
                sess.run(None, {name: xb})
                n += 1
            res[f"ort_t{threads}_b{batch}"] = round((time.perf_counter() - t0) / n / batch * 1e3, 2)
    import openvino as ov

    core = ov.Core()
    for label, cfg in (("ov_f32", {"INFERENCE_PRECISION_HINT": "f32"}), ("ov_default", {})):
        compiled = core.compile_model(str(path), "CPU", cfg)
        req = compiled.create_infer_request()
        xb = x[:1]
        for _ in range(3):
            req.infer([xb])
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            req.infer([xb])
            n += 1
        res[f"{label}_b1"] = round((time.perf_counter() - t0) / n * 1e3, 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="fp32 manifest entry, e.g. dlib_resnet_v1")
    ap.add_argument("--calibration", type=Path, required=True, help=".npz with uint8 chips [N,H,W,3] RGB")
    ap.add_argument("--calibration-desc", default="dlib HOG detector (upsample 1) + 5-point shape predictor "
                    "chips (150, padding 0.25) of every face found in data/speed/**/*.jpg and "
                    "data/detection/**/*.jpg (not LFW)")
    ap.add_argument("--method", choices=sorted(METHODS), default="percentile")
    ap.add_argument("--compare-methods", action="store_true", help="try all methods; ship the best by cosine")
    ap.add_argument("--eval", type=Path, help=".npz with chips (and paths for --pairs) to measure cosine to fp32")
    ap.add_argument("--pairs", type=Path, help="LFW pairs.tsv (path1, path2, same, fold) for verification accuracy")
    ap.add_argument("--bench", action="store_true", help="time fp32 and INT8 (ORT, OpenVINO)")
    args = ap.parse_args()

    entry = manifest_tools.load_manifest()["models"][args.model]
    fp32 = manifest_tools.MODELS_DIR / entry["file"]
    out_name = f"{args.model}_int8"
    out = manifest_tools.MODELS_DIR / f"{out_name}.onnx"
    calib_chips = np.load(args.calibration)["chips"]
    calib = preprocess(entry, calib_chips)

    ev = np.load(args.eval) if args.eval else None
    ev_x = preprocess(entry, ev["chips"]) if ev is not None else calib
    ref = embed(fp32, entry, ev_x)
    report: dict[str, Any] = {}
    methods = sorted(METHODS) if args.compare_methods else [args.method]
    for method in methods:
        quantize(fp32, out, entry, calib, method)
        c = cosine(embed(out, entry, ev_x), ref)
        report[method] = {"mean_cosine": round(float(c.mean()), 5), "min_cosine": round(float(c.min()), 5),
                          "p01_cosine": round(float(np.percentile(c, 1)), 5), "n": int(len(c))}
        print(method, report[method], flush=True)
    # Ties go to minmax: on this ORT (1.32) entropy calibration of this net gives a byte-identical model.
    best = max(methods, key=lambda m: (report[m]["mean_cosine"], report[m]["min_cosine"], m == "minmax"))
    if best != methods[-1]:
        quantize(fp32, out, entry, calib, best)  # the last one written is not the best: redo it (deterministic)

    quant: dict[str, Any] = {
        "method": f"onnxruntime quantize_static, QDQ, per-channel weights (S8), U8 activations, calibration {best}",
        "calibration": args.calibration_desc, "n_chips": int(len(calib_chips)),
        "cosine_to_fp32": {**report[best], "eval_set": "LFW dlib chips" if ev is not None else "calibration chips"},
        "methods_tried": report,
    }
    if args.pairs and ev is not None:
        paths = [str(p) for p in ev["paths"]]
        quant["lfw_verification"] = {"fp32": lfw_accuracy(ref, paths, args.pairs),
                                     "int8": lfw_accuracy(embed(out, entry, ev_x), paths, args.pairs),
                                     "protocol": "dlib chips (HOG + 5-pt; centre box when HOG misses), cosine, "
                                                 "5 folds, threshold from the other 4"}
        print(json.dumps(quant["lfw_verification"]), flush=True)
    if args.bench:
        quant["speed_ms_per_face"] = {"fp32": bench(fp32, entry, ev_x), "int8": bench(out, entry, ev_x),
                                      "machine": "2 shared cores; ORT allow_spinning=0"}
        print(json.dumps(quant["speed_ms_per_face"]), flush=True)

    # Re-read: the fp32 entry (alignment check, parity) may have been refreshed while this ran.
    int8_entry = copy.deepcopy(manifest_tools.load_manifest()["models"][args.model])
    for key in ("sha256", "bytes"):
        int8_entry.pop(key, None)
    int8_entry.update({"file": out.name, "precision": "int8", "quantization": quant,
                       "converter": f"tools/quantize.py --model {args.model} (from {entry['file']})"})
    manifest_tools.register_model(out_name, int8_entry)
    print(f"registered {out_name}")


if __name__ == "__main__":
    main()
