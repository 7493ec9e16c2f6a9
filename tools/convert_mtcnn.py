"""Convert facenet-pytorch 2.6.0's MTCNN (P-Net, R-Net, O-Net) to ONNX, check parity, record references.

Run from the repository root of a fresh clone (needs PyPI for torch, the runtimes and facenet-pytorch):

    python3 -m venv /tmp/venv-mtcnn && \
    /tmp/venv-mtcnn/bin/pip install torch==2.13.0 onnx onnxruntime openvino opencv-python-headless pillow && \
    /tmp/venv-mtcnn/bin/python tools/convert_mtcnn.py

Optional: `--data /path/to/shared/data` (default `../shared/data` next to the repo, skipped if absent)
adds third-party photos to the parity, INT8 and speed measurements; they are only read, never copied.

What it does (idempotent; every file is written atomically):
1. `pip download --no-deps facenet-pytorch==2.6.0` and reads `facenet_pytorch/data/{p,r,o}net.pt` from
   the wheel (a zip) without importing the package (it pins torch<2.3, numpy<2, torchvision).
2. Rebuilds the nets here (same layer names, strict state-dict load) and exports ONNX opset 17 with the
   TorchScript exporter (`dynamo=False`) to models/mtcnn_{pnet,rnet,onet}.onnx.
3. Parity torch vs ONNX Runtime vs OpenVINO f32 on real stage inputs (pyramid levels, 24/48 crops).
4. Runs facenet-pytorch's own `MTCNN.detect` (unpacked from the wheel; torchvision replaced by the
   test-reference shims in tools/reference_shims) on examples/astronaut.jpg and variants, writing
   tests/data/mtcnn_reference_detections.json, and checks that the numpy pipeline below driving the
   exported ONNX files reproduces it.
5. Writes tests/data/mtcnn_parity.npz (inputs from examples/astronaut.jpg only, torch outputs).
6. Static INT8 (QDQ, per-channel) trial, calibrated on crops from shared/data/speed: parity, detection
   agreement and ms per call vs fp32. INT8 files are shipped only if SHIP_INT8 says so (decided from
   these measurements, see models/card_mtcnn.md).
7. Registers the shipped files in models/manifest.json.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest_tools import MODELS_DIR, REPO, register_model, write_atomic  # noqa: E402
from edgeface.quantization import QuantConfig, quantize_static  # noqa: E402  (the one quantizer)

PACKAGE = "facenet-pytorch"
VERSION = "2.6.0"
# sha256 of the .pt files inside the 2.6.0 wheel: a changed upload must not slip into the product.
PT_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
NETS = ("pnet", "rnet", "onet")
OPSET = 17
EXAMPLE = REPO / "examples" / "astronaut.jpg"
TEST_DATA = REPO / "tests" / "data"
SHIMS = Path(__file__).resolve().parent / "reference_shims"
# Measured (see models/card_mtcnn.md): INT8 is not shipped for any of the three nets.
SHIP_INT8: dict[str, bool] = {"pnet": False, "rnet": False, "onet": False}
MIN_FACE, THRESHOLDS, FACTOR = 20, (0.6, 0.7, 0.7), 0.709
NORMALIZE = {"mean": [127.5, 127.5, 127.5], "std": [128.0, 128.0, 128.0]}
OUTPUTS = {
    "pnet": {
        "prob": "[1,2,h,w] softmax over (background, face) per 12x12 window, stride 2 in the input level",
        "reg": "[1,4,h,w] box offsets (dx1,dy1,dx2,dy2) as fractions of the window size",
    },
    "rnet": {
        "prob": "[N,2] softmax (background, face)",
        "reg": "[N,4] box offsets (dx1,dy1,dx2,dy2) as fractions of the box width/height",
    },
    "onet": {
        "prob": "[N,2] softmax (background, face)",
        "reg": "[N,4] box offsets (dx1,dy1,dx2,dy2) as fractions of the box width/height",
        "landmarks": "[N,10] x1..x5 then y1..y5 (eye with the smaller x, other eye, nose, mouth corner with the "
        "smaller x, other mouth corner), fractions of the box width/height; facenet maps them to pixels as "
        "x = x1 - 1 + fx * (x2 - x1 + 1), y = y1 - 1 + fy * (y2 - y1 + 1) with the box before the O-Net's reg",
    },
}


# ---------------------------------------------------------------- nets (mirror facenet_pytorch/models/mtcnn.py)
class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.softmax4_1(self.conv4_1(x)), self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights come from a net run on transposed images: flatten in (W, H, C) order.
        # flatten(1) == .contiguous().view(N, -1) and exports as one Flatten op (no Shape/Gather chain).
        x = torch.flatten(x.permute(0, 3, 2, 1), 1)
        x = self.prelu4(self.dense4(x))
        return self.softmax5_1(self.dense5_1(x)), self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = torch.flatten(x.permute(0, 3, 2, 1), 1)  # see RNet.forward
        x = self.prelu5(self.dense5(x))
        return self.softmax6_1(self.dense6_1(x)), self.dense6_2(x), self.dense6_3(x)


NET_CLASSES: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
INPUT_SHAPES = {"pnet": [1, 3, "H", "W"], "rnet": ["N", 3, 24, 24], "onet": ["N", 3, 48, 48]}
OUTPUT_NAMES = {"pnet": ["prob", "reg"], "rnet": ["prob", "reg"], "onet": ["prob", "reg", "landmarks"]}


# ---------------------------------------------------------------- source
def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         f"{PACKAGE}=={VERSION}", "-d", str(dest), "-q"],
        check=True,
    )
    (wheel,) = dest.glob("facenet_pytorch-*.whl")
    return wheel


def load_state_dicts(wheel: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, str]]:
    """State dicts and .pt sha256 straight from the wheel zip (the package itself is never imported)."""
    states, hashes = {}, {}
    with zipfile.ZipFile(wheel) as zf:
        for name in NETS:
            raw = zf.read(f"facenet_pytorch/data/{name}.pt")
            hashes[name] = hashlib.sha256(raw).hexdigest()
            if hashes[name] != PT_SHA256[name]:
                raise SystemExit(f"{name}.pt sha256 {hashes[name]} != pinned {PT_SHA256[name]}")
            states[name] = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return states, hashes


def build_nets(states: dict[str, dict[str, torch.Tensor]]) -> dict[str, nn.Module]:
    nets = {}
    for name in NETS:
        net = NET_CLASSES[name]()
        net.load_state_dict(states[name], strict=True)
        nets[name] = net.eval()
    return nets


def export_onnx(name: str, net: nn.Module) -> bytes:
    size = {"pnet": (1, 3, 64, 80), "rnet": (2, 3, 24, 24), "onet": (2, 3, 48, 48)}[name]
    outputs = OUTPUT_NAMES[name]
    if name == "pnet":
        axes = {"image": {2: "H", 3: "W"}} | {o: {2: "h", 3: "w"} for o in outputs}
    else:
        axes = {"image": {0: "N"}} | {o: {0: "N"} for o in outputs}
    buf = io.BytesIO()
    torch.onnx.export(
        net, (torch.zeros(size),), buf, dynamo=False, opset_version=OPSET, do_constant_folding=True,
        input_names=["image"], output_names=outputs, dynamic_axes=axes,
    )
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model, full_check=True)
    ops = sorted({n.op_type for n in model.graph.node})
    prelus = sum(n.op_type == "PRelu" for n in model.graph.node)
    print(f"  {name}: ops {ops}, {prelus} PRelu nodes, {len(model.graph.node)} nodes")
    model.producer_name, model.doc_string = "edgeface tools/convert_mtcnn.py", (
        f"MTCNN {name} from PyPI {PACKAGE}=={VERSION} facenet_pytorch/data/{name}.pt (MIT)"
    )
    return model.SerializeToString()


# ---------------------------------------------------------------- runtimes
Outputs = tuple[np.ndarray, ...]
Runner = Callable[[np.ndarray], Outputs]


def torch_runner(net: nn.Module) -> Runner:
    def run(x: np.ndarray) -> Outputs:
        with torch.no_grad():
            return tuple(t.numpy() for t in net(torch.from_numpy(x)))
    return run


def ort_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Spinning workers fight the Python code around them on 2 cores (models-facts.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_runner(session: ort.InferenceSession) -> Runner:
    return lambda x: tuple(session.run(None, {"image": x}))


def ov_runner(path: Path) -> Runner:
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    names = [o.get_any_name() for o in compiled.outputs]

    def run(x: np.ndarray) -> Outputs:
        result = compiled(x)
        return tuple(np.asarray(result[n]) for n in names)
    return run


# ---------------------------------------------------------------- numpy MTCNN (mirrors facenet_pytorch detect_face)
class Stage(NamedTuple):
    """What each net saw while detecting (and the R-Net's boxes): for parity, calibration and fixtures."""
    pnet: list[np.ndarray]
    rnet: list[np.ndarray]
    onet: list[np.ndarray]
    rnet_boxes: list[np.ndarray]


def new_stage() -> Stage:
    return Stage([], [], [], [])


class Detections(NamedTuple):
    boxes: np.ndarray  # [K,4] x1,y1,x2,y2 in pixels, largest box first (facenet select_largest)
    probs: np.ndarray  # [K]
    points: np.ndarray  # [K,5,2] x,y


def area_resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # facenet uses torch "area" interpolation (adaptive average pooling), not cv2.INTER_AREA.
    return nn.functional.interpolate(img, size=size, mode="area")


def nms_union(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """torchvision CPU nms: areas without +1, suppress IoU > thr, stable-by-torch descending sort."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = torch.from_numpy(scores).sort(0, descending=True)[1].numpy()
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2) - np.maximum(x1[i], x1))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2) - np.maximum(y1[i], y1))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            suppressed |= inter / (areas[i] + areas - inter) > thr
    return np.asarray(keep, np.int64)


def nms_min(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """facenet's nms_numpy 'Min' (areas with +1, keep overlap <= thr) used after the O-Net."""
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[(w * h) / np.minimum(area[i], area[rest]) <= thr]
    return np.asarray(keep, np.int64)


def rerec(b: np.ndarray) -> np.ndarray:
    b = b.copy()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    b[:, 1] = b[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = b.copy()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = np.stack([b[:, 0] + reg[:, 0] * w, b[:, 1] + reg[:, 1] * h,
                         b[:, 2] + reg[:, 2] * w, b[:, 3] + reg[:, 3] * h], 1)
    return b


def crops(img: torch.Tensor, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops (boxes are 1-based inclusive like MATLAB MTCNN, clipped to the image, not zero-padded)."""
    h, w = img.shape[2:]
    bi = np.trunc(boxes[:, :4]).astype(np.int32)
    x, y = np.maximum(bi[:, 0], 1), np.maximum(bi[:, 1], 1)
    ex, ey = np.minimum(bi[:, 2], w), np.minimum(bi[:, 3], h)
    valid = (ey > y - 1) & (ex > x - 1)
    out = [area_resize(img[:, :, y[k] - 1:ey[k], x[k] - 1:ex[k]], (size, size))
           for k in np.flatnonzero(valid)]
    data = (torch.cat(out).numpy() - np.float32(127.5)) * np.float32(0.0078125) if out else None
    return data, valid


def detect(rgb: np.ndarray, pnet: Runner, rnet: Runner, onet: Runner, seen: Stage | None = None) -> Detections:
    img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    h, w = rgb.shape[:2]
    m = 12.0 / MIN_FACE
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * FACTOR, minl * FACTOR
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    per_scale = []
    for scale in scales:
        level = area_resize(img, (int(h * scale + 1), int(w * scale + 1)))
        level = ((level - 127.5) * 0.0078125).numpy()
        if seen is not None:
            seen.pnet.append(level)
        prob, reg = pnet(level)
        ys, xs = np.nonzero(prob[0, 1] >= THRESHOLDS[0])
        bb = np.stack([xs, ys], 1).astype(np.float32)  # (x, y) of each passing window
        q1 = np.floor((2 * bb + 1) / np.float32(scale))
        q2 = np.floor((2 * bb + 12) / np.float32(scale))
        cand = np.concatenate([q1, q2, prob[0, 1, ys, xs][:, None], reg[0][:, ys, xs].T], 1)
        per_scale.append(cand[nms_union(cand[:, :4], cand[:, 4], 0.5)])
    boxes = np.concatenate(per_scale) if per_scale else np.zeros((0, 9), np.float32)
    boxes = boxes[nms_union(boxes[:, :4], boxes[:, 4], 0.7)]
    if len(boxes) == 0:
        return empty
    rw, rh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = rerec(np.stack([boxes[:, 0] + boxes[:, 5] * rw, boxes[:, 1] + boxes[:, 6] * rh,
                            boxes[:, 2] + boxes[:, 7] * rw, boxes[:, 3] + boxes[:, 8] * rh, boxes[:, 4]], 1))

    data, valid = crops(img, boxes, 24)
    if data is None:
        return empty
    boxes = boxes[valid]
    if seen is not None:
        seen.rnet.append(data)
        seen.rnet_boxes.append(boxes)
    prob, reg = rnet(data)
    ok = prob[:, 1] > THRESHOLDS[1]
    boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], 1)
    reg = reg[ok]
    keep = nms_union(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = rerec(bbreg(boxes[keep], reg[keep]))
    if len(boxes) == 0:
        return empty

    data, valid = crops(img, boxes, 48)
    if data is None:
        return empty
    boxes = boxes[valid]
    if seen is not None:
        seen.onet.append(data)
    prob, reg, marks = onet(data)
    ok = prob[:, 1] > THRESHOLDS[2]
    boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], 1)
    reg, marks = reg[ok], marks[ok]
    bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points = np.stack([bw[:, None] * marks[:, :5] + boxes[:, 0:1] - 1,
                       bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2)
    boxes = bbreg(boxes, reg)
    keep = nms_min(boxes[:, :4], boxes[:, 4], 0.7) if len(boxes) else np.zeros(0, np.int64)
    boxes, points = boxes[keep], points[keep]
    order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
    return Detections(boxes[order, :4], boxes[order, 4], points[order])


# ---------------------------------------------------------------- facenet-pytorch reference
def import_facenet_mtcnn(wheel: Path, unpack_dir: Path) -> types.ModuleType:
    """facenet_pytorch.models.mtcnn from the unpacked wheel, skipping the package __init__ (which pulls
    requests and InceptionResnetV1) and with torchvision replaced by the test-reference shims."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpack_dir)
    sys.path.insert(0, str(SHIMS))
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = [str(unpack_dir / "facenet_pytorch")]
    sys.modules["facenet_pytorch"] = pkg
    return importlib.import_module("facenet_pytorch.models.mtcnn")


def facenet_detect(mtcnn: nn.Module, rgb: np.ndarray) -> Detections:
    boxes, probs, points = mtcnn.detect(rgb, landmarks=True)
    if boxes is None:  # facenet returns None when nothing is found
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
    # With NumPy 2 these come back as object arrays: cast explicitly.
    return Detections(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(probs, np.float64).reshape(-1),
                      np.asarray(points, np.float64).reshape(-1, 5, 2))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda im: im,
    "hflip": lambda im: np.ascontiguousarray(im[:, ::-1]),
    "scale0.5_area": lambda im: cv2.resize(im, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "scale0.75_area": lambda im: cv2.resize(im, (384, 384), interpolation=cv2.INTER_AREA),
    "hflip_scale0.5_area": lambda im: cv2.resize(np.ascontiguousarray(im[:, ::-1]), None, fx=0.5, fy=0.5,
                                                 interpolation=cv2.INTER_AREA),
}
VARIANT_DOC = {
    "original": "as decoded",
    "hflip": "rgb[:, ::-1]",
    "scale0.5_area": "cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)",
    "scale0.75_area": "cv2.resize(rgb, (384, 384), interpolation=cv2.INTER_AREA)",
    "hflip_scale0.5_area": "cv2.resize(rgb[:, ::-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)",
}


def det_json(d: Detections) -> list[dict[str, object]]:
    return [{"box": [round(float(v), 4) for v in b], "prob": round(float(p), 7),
             "landmarks": [[round(float(x), 4), round(float(y), 4)] for x, y in pts]}
            for b, p, pts in zip(d.boxes, d.probs, d.points)]


def compare_dets(a: Detections, b: Detections) -> dict[str, float]:
    """Greedy IoU>0.5 matching; max coordinate / prob / landmark differences over matched faces."""
    def iou(p: np.ndarray, q: np.ndarray) -> float:
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = iw * ih
        return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)
    used, box_d, prob_d, pt_d, matched = set(), 0.0, 0.0, 0.0, 0
    for i in range(len(a.boxes)):
        best = max(((iou(a.boxes[i], b.boxes[j]), j) for j in range(len(b.boxes)) if j not in used), default=(0, -1))
        if best[0] > 0.5:
            j = best[1]
            used.add(j)
            matched += 1
            box_d = max(box_d, float(np.abs(a.boxes[i] - b.boxes[j]).max()))
            prob_d = max(prob_d, abs(float(a.probs[i]) - float(b.probs[j])))
            pt_d = max(pt_d, float(np.abs(a.points[i] - b.points[j]).max()))
    return {"a": len(a.boxes), "b": len(b.boxes), "matched": matched, "box": box_d, "prob": prob_d, "points": pt_d}


def reference_detections(wheel: Path, tmp: Path, onnx_paths: dict[str, Path]) -> None:
    mod = import_facenet_mtcnn(wheel, tmp / "facenet_unpacked")
    mtcnn = mod.MTCNN(min_face_size=MIN_FACE, thresholds=list(THRESHOLDS), factor=FACTOR, keep_all=True).eval()
    runners = [ort_runner(ort_session(onnx_paths[n])) for n in NETS]
    base = read_rgb(EXAMPLE)
    images = []
    for name, make in VARIANTS.items():
        rgb = make(base)
        ref = facenet_detect(mtcnn, rgb)
        ours = detect(rgb, *runners)
        print(f"  {name:22s} facenet {len(ref.boxes)} faces; ONNX pipeline vs facenet {compare_dets(ref, ours)}")
        images.append({
            "name": name, "source": "examples/astronaut.jpg", "transform": VARIANT_DOC[name],
            "shape": list(rgb.shape), "rgb_sha256": hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest(),
            "faces": det_json(ref),
        })
    doc = {
        "generator": "tools/convert_mtcnn.py",
        "reference": f"PyPI {PACKAGE}=={VERSION} MTCNN(keep_all=True).detect(rgb_uint8_hwc, landmarks=True), "
                     "torch CPU fp32; torchvision stood in by tools/reference_shims",
        "params": {"min_face_size": MIN_FACE, "thresholds": list(THRESHOLDS), "factor": FACTOR},
        "decode": "cv2.imread(path, IMREAD_COLOR) then cv2.cvtColor(BGR2RGB); rgb_sha256 is over the HxWx3 uint8 "
                  "array after the transform, so a test can tell a decoder difference from a detector one",
        "conventions": {
            "color": "RGB",
            "box": "[x1, y1, x2, y2] floats as facenet-pytorch returns them: MATLAB-style 1-based inclusive "
                   "(the crop fed to the next net is rgb[int(y1)-1:int(y2), int(x1)-1:int(x2)], clipped to the "
                   "image, not zero-padded); boxes may extend past the image border",
            "landmarks": "5 x [x, y] in 0-based pixels (x = x1 - 1 + fx * (x2 - x1 + 1) with the pre-regression "
                         "box): eye with the smaller x (the subject's right eye in a frontal photo), other eye, "
                         "nose tip, mouth corner with the smaller x, other mouth corner (image order, not semantic: "
                         "a mirrored face keeps the smaller-x point first)",
            "order": "largest box area first (facenet select_largest=True)",
        },
        "images": images,
    }
    write_atomic(TEST_DATA / "mtcnn_reference_detections.json", (json.dumps(doc, indent=1) + "\n").encode())


# ---------------------------------------------------------------- parity
def measure_images(data: Path | None) -> dict[str, list[Path]]:
    """Photos to measure on: the bundled example always; third-party ones only if the folder exists."""
    sets: dict[str, list[Path]] = {"example": [EXAMPLE]}
    if data is not None and data.is_dir():
        sets["speed"] = sorted((data / "speed").rglob("*.jpg"))
        lfw = sorted((data / "lfw" / "images").rglob("*.jpg"))
        sets["lfw"] = lfw[:: max(1, len(lfw) // 40)]
        sets["detection"] = sorted((data / "detection").rglob("*.jpg"))
    return sets


def collect_stage_inputs(paths: Sequence[Path], nets: dict[str, nn.Module]) -> Stage:
    seen = new_stage()
    for path in paths:
        detect(read_rgb(path), *(torch_runner(nets[n]) for n in NETS), seen=seen)
    return seen


def stage_batches(seen: Stage, name: str) -> list[np.ndarray]:
    return getattr(seen, name) if name == "pnet" else [np.concatenate(getattr(seen, name))]


def max_abs_diffs(name: str, batches: Sequence[np.ndarray], ref: Runner, run: Runner) -> dict[str, float]:
    diffs = dict.fromkeys(OUTPUT_NAMES[name], 0.0)
    for x in batches:
        for out, a, b in zip(OUTPUT_NAMES[name], ref(x), run(x)):
            diffs[out] = max(diffs[out], float(np.abs(a - b).max()))
    return diffs


def parity(nets: dict[str, nn.Module], onnx_paths: dict[str, Path], seen: Stage) -> dict[str, dict[str, object]]:
    result = {}
    for name in NETS:
        batches = stage_batches(seen, name)
        count = len(batches) if name == "pnet" else len(batches[0])
        ref = torch_runner(nets[name])
        result[name] = {
            "max_abs_diff": max_abs_diffs(name, batches, ref, ort_runner(ort_session(onnx_paths[name]))),
            "max_abs_diff_openvino_f32": max_abs_diffs(name, batches, ref, ov_runner(onnx_paths[name])),
            "measured_on": f"{count} real {'pyramid levels' if name == 'pnet' else 'stage-input crops'}",
        }
        print(f"  {name}: {result[name]}")
    return result


# ---------------------------------------------------------------- test fixture (examples/astronaut.jpg only)
def write_parity_fixture(nets: dict[str, nn.Module]) -> None:
    rgb = read_rgb(EXAMPLE)
    seen = new_stage()
    runners = [torch_runner(nets[n]) for n in NETS]
    detect(rgb, *runners, seen=seen)
    # A mid pyramid level (~100 px) keeps the file small but still covers the face.
    level = min(seen.pnet, key=lambda x: abs(x.shape[2] - 100))
    rnet_in, rnet_boxes = seen.rnet[0], seen.rnet_boxes[0]
    rnet_prob = runners[1](rnet_in)[0][:, 1]
    by_prob = np.argsort(-rnet_prob)
    rng = np.random.default_rng(0)
    pick = np.concatenate([by_prob[:8], rng.choice(by_prob[8:], 12, replace=False)])
    onet_crops, _ = crops(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), rnet_boxes[pick], 48)
    onet_in = np.concatenate([seen.onet[0], onet_crops])[:20]
    arrays: dict[str, np.ndarray] = {"pnet_image": level, "rnet_image": rnet_in[pick], "onet_image": onet_in}
    for name in NETS:
        for out, value in zip(OUTPUT_NAMES[name], runners[NETS.index(name)](arrays[f"{name}_image"])):
            arrays[f"{name}_{out}"] = value
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(TEST_DATA / "mtcnn_parity.npz", buf.getvalue())
    print(f"  mtcnn_parity.npz {len(buf.getvalue()) / 1e6:.2f} MB, max O-Net face prob "
          f"{arrays['onet_prob'][:, 1].max():.4f}, shapes { {k: v.shape for k, v in arrays.items()} }")


# ---------------------------------------------------------------- INT8 trial
def quantize(fp32: Path, calib: Sequence[np.ndarray], out: Path) -> None:
    # Only Conv/Gemm: a uint8 softmax would put the face probability on a 1/255 grid right at the thresholds.
    quantize_static(fp32, out, ({"image": x} for x in calib), QuantConfig(method="minmax", op_types=("Conv", "Gemm")))


def median_ms(run: Runner, x: np.ndarray, seconds: float = 1.0) -> float:
    run(x)
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def chunks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(x), size):
        yield x[i:i + size]


def int8_trial(onnx_paths: dict[str, Path], nets: dict[str, nn.Module], calib: Stage, evaluation: Stage,
               eval_paths: Sequence[Path], tmp: Path) -> dict[str, Path]:
    int8 = {n: tmp / f"mtcnn_{n}_int8.onnx" for n in NETS}
    for name in NETS:
        batches = calib.pnet[::max(1, len(calib.pnet) // 60)] if name == "pnet" else list(
            chunks(np.concatenate(getattr(calib, name))[:2048], 64))
        quantize(onnx_paths[name], batches, int8[name])
        fp32_run = ort_runner(ort_session(onnx_paths[name]))
        diffs = max_abs_diffs(name, stage_batches(evaluation, name), fp32_run, ort_runner(ort_session(int8[name])))
        print(f"  {name} INT8 vs fp32 on held-out stage inputs: {diffs}, "
              f"{int8[name].stat().st_size} bytes vs {onnx_paths[name].stat().st_size}")

    fp32 = {n: ort_runner(ort_session(onnx_paths[n])) for n in NETS}
    q8 = {n: ort_runner(ort_session(int8[n])) for n in NETS}
    configs = {f"{n} int8": {**fp32, n: q8[n]} for n in NETS} | {"all int8": q8}
    for label, runners in configs.items():
        same, total, worst = 0, 0, {"box": 0.0, "prob": 0.0, "points": 0.0}
        for path in eval_paths:
            rgb = read_rgb(path)
            c = compare_dets(detect(rgb, *(fp32[n] for n in NETS)), detect(rgb, *(runners[n] for n in NETS)))
            total += 1
            same += c["a"] == c["b"] == c["matched"]
            worst = {k: max(v, c[k]) for k, v in worst.items()}
        print(f"  detections {label:10s}: same face set on {same}/{total} photos; worst matched diffs {worst}")

    rgb = read_rgb(EXAMPLE)
    seen = new_stage()
    detect(rgb, *(torch_runner(nets[n]) for n in NETS), seen=seen)
    inputs = {"pnet 1x3x308x308": ("pnet", seen.pnet[0]),
              "rnet N=1": ("rnet", seen.rnet[0][:1]), "rnet N=64": ("rnet", np.resize(seen.rnet[0], (64, 3, 24, 24))),
              "onet N=1": ("onet", seen.onet[0][:1]), "onet N=8": ("onet", np.resize(seen.onet[0], (8, 3, 48, 48)))}
    for label, (name, x) in inputs.items():
        print(f"  ORT 1 thread {label:18s}: fp32 {median_ms(fp32[name], x):7.3f} ms, "
              f"INT8 {median_ms(q8[name], x):7.3f} ms")
    for label, runners in {"fp32": fp32, "all int8": q8}.items():
        pipe = median_ms(lambda im: detect(im, *(runners[n] for n in NETS)), rgb, 3.0)
        print(f"  whole numpy pipeline on astronaut.jpg 512x512, {label}: {pipe:.1f} ms")
    return int8


def time_fp32(onnx_paths: dict[str, Path], seen: Stage) -> None:
    for threads in (1, 2):
        for name, x in (("pnet", seen.pnet[0]), ("rnet", seen.rnet[0][:64]), ("onet", seen.onet[0][:8])):
            ms = median_ms(ort_runner(ort_session(onnx_paths[name], threads)), x)
            print(f"  ORT fp32 {threads} thread(s) {name} {list(x.shape)}: {ms:.3f} ms")
    for name, x in (("pnet", seen.pnet[0]), ("rnet", seen.rnet[0][:64]), ("onet", seen.onet[0][:8])):
        print(f"  OpenVINO f32 {name} {list(x.shape)}: {median_ms(ov_runner(onnx_paths[name]), x):.3f} ms")


# ---------------------------------------------------------------- manifest
def register(name: str, file: str, precision: str, pt_sha: dict[str, str], par: dict[str, object]) -> None:
    shape = INPUT_SHAPES[name]
    register_model(f"mtcnn_{name}" + ("_int8" if precision == "int8" else ""), {
        "file": file,
        "role": f"detector/{name}",
        "precision": precision,
        "input": {"name": "image", "shape": shape, "layout": "NCHW", "color": "RGB", "normalize": NORMALIZE},
        "outputs": OUTPUTS[name],
        "source": {"registry": "pypi", "package": PACKAGE, "version": VERSION,
                   "path": f"facenet_pytorch/data/{name}.pt", "sha256": pt_sha[name]},
        "license": "MIT",
        "license_note": "facenet-pytorch (Tim Esler) is MIT; the original MTCNN weights by Kaipeng Zhang "
                        "(kpzhang93/MTCNN_face_detection_alignment) are MIT, ported via davidsandberg/facenet (MIT).",
        "converter": "tools/convert_mtcnn.py",
        "parity": par,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="third-party evaluation photos (read only); skipped if absent")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic reductions and fair to the shared cores
    images = measure_images(args.data)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"downloading {PACKAGE}=={VERSION}")
        wheel = download_wheel(tmp)
        states, pt_sha = load_state_dicts(wheel)
        print(f"  .pt sha256 {pt_sha}")
        nets = build_nets(states)

        print("exporting ONNX")
        onnx_paths = {n: MODELS_DIR / f"mtcnn_{n}.onnx" for n in NETS}
        for name in NETS:
            write_atomic(onnx_paths[name], export_onnx(name, nets[name]))

        print(f"parity torch vs ORT / OpenVINO f32 on {sum(len(v) for v in images.values())} photos")
        measured = collect_stage_inputs([p for k, v in images.items() for p in v], nets)
        par = parity(nets, onnx_paths, measured)

        print("facenet-pytorch reference detections")
        reference_detections(wheel, tmp, onnx_paths)
        print("parity fixture")
        write_parity_fixture(nets)

        print("speed")
        time_fp32(onnx_paths, collect_stage_inputs([EXAMPLE], nets))
        int8: dict[str, Path] = {}
        if "speed" in images:
            print("INT8 trial (calibrated on shared/data/speed, evaluated on the other photos)")
            calib = collect_stage_inputs(images["speed"], nets)
            held_out = [p for k in ("example", "lfw", "detection") for p in images[k]]
            int8 = int8_trial(onnx_paths, nets, calib, collect_stage_inputs(held_out, nets), held_out, tmp)

        for name in NETS:
            register(name, onnx_paths[name].name, "fp32", pt_sha, par[name])
            target = MODELS_DIR / f"mtcnn_{name}_int8.onnx"
            if SHIP_INT8[name]:
                write_atomic(target, int8[name].read_bytes())
                register(name, target.name, "int8", pt_sha, {})
        print("done:", ", ".join(sorted(p.name for p in MODELS_DIR.glob("mtcnn_*"))))


if __name__ == "__main__":
    main()
