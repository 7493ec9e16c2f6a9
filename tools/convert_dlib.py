"""Convert dlib's face-recognition ResNet (PyPI face-recognition-models 0.3.0, CC0) to ONNX and prove parity.

Run from a fresh clone (dlib-bin is the reference runtime; it is a tool dependency, never a runtime one):

    python3 -m venv /work/venv-dlib
    /work/venv-dlib/bin/pip install dlib-bin face-recognition-models numpy opencv-python-headless onnx onnxruntime
    /work/venv-dlib/bin/python tools/convert_dlib.py --lfw /work/shared/data/lfw
    # data for tools/quantize.py (kept outside the repo):
    /work/venv-dlib/bin/python tools/convert_dlib.py --calibration-chips /tmp/edgeface/dlib_calib.npz \
        --calibration-dirs /work/shared/data/speed /work/shared/data/detection
    /work/venv-dlib/bin/python tools/convert_dlib.py --lfw /work/shared/data/lfw --lfw-chips /tmp/edgeface/lfw_dlib.npz

Steps, all idempotent (same inputs give byte-identical outputs):
1. `pip download --no-deps face-recognition-models==0.3.0` (an sdist), check its sha256, read the .dat member.
2. Parse the .dat with tools/dlib_reader.py (consumes the stream exactly to EOF).
3. Build models/dlib_resnet_v1.onnx with onnx.helper: input normalisation and every affine (frozen BN) are
   folded into the convolutions; dlib's zero-padded add_prev becomes Pad + Add.
4. tests/data/dlib_parity.npz: chips from examples/astronaut.jpg only + dlib's own descriptors.
5. Parity vs dlib on the fixture and, with --lfw, on LFW chips (measured only; LFW never enters the repo), plus
   the MTCNN 5-point template check; the numbers go into the models/manifest.json entry `dlib_resnet_v1`.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest_tools  # noqa: E402
from dlib_reader import Node, read_net  # noqa: E402

REPO = manifest_tools.REPO
PACKAGE, VERSION = "face-recognition-models", "0.3.0"
SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
DAT_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
SP5_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
MODEL_NAME, MODEL_FILE = "dlib_resnet_v1", "dlib_resnet_v1.onnx"
FIXTURE = REPO / "tests" / "data" / "dlib_parity.npz"
CHIP_SIZE, CHIP_PADDING = 150, 0.25

# dlib's normalized 68-point mean face (points 17..67), from get_face_chip_details() in
# dlib/image_transforms/interpolation.h; index = point - 17.
MEAN_FACE_X = [
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689]
MEAN_FACE_Y = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182]

# dlib's 5-point chip template (get_face_chip_details, num_parts == 5): image-right eye outer/inner corner,
# image-left eye outer/inner corner, nose base; normalised like the mean face above.
DLIB_5PT = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                     [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                     [0.4901123135679, 0.6277975316475]])


# ----------------------------------------------------------------------------- source


def fetch_sdist(workdir: Path) -> Path:
    """Download the pinned sdist with pip (registry client) and verify its hash."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    f"{PACKAGE}=={VERSION}", "-d", str(workdir)], check=True, stdout=subprocess.DEVNULL)
    sdist = workdir / f"face_recognition_models-{VERSION}.tar.gz"
    got = manifest_tools.sha256_of(sdist)
    if got != SDIST_SHA256:
        raise RuntimeError(f"{sdist.name}: sha256 {got} != pinned {SDIST_SHA256}")
    return sdist


def read_member(sdist: Path, member: str, sha256: str | None = None) -> bytes:
    with tarfile.open(sdist, "r:gz") as tar:
        f = tar.extractfile(member)
        assert f is not None, member
        data = f.read()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"{member}: unexpected sha256")
    return data


# ----------------------------------------------------------------------------- ONNX graph


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1  # dlib and ONNX (ceil_mode=0) both floor


def build_onnx(info: dict[str, Any], nodes: list[Node]) -> onnx.ModelProto:
    """Walk the parsed net bottom-up and emit an equivalent NCHW graph."""
    inits: list[TensorProto] = []
    graph_nodes: list[onnx.NodeProto] = []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def init(prefix: str, arr: np.ndarray) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(arr, n))
        return n

    # Bottom (input) to top. A convolution is emitted lazily so that the affine above it folds into it.
    order = list(reversed(nodes))
    cur, shape = "image", (3, *info["input"]["size"])  # (C, H, W); batch stays symbolic
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    pending: dict[str, Any] | None = None  # conv waiting for its affine

    def flush() -> None:
        nonlocal cur, pending
        if pending is None:
            return
        out = name("conv")
        graph_nodes.append(helper.make_node(
            "Conv", [cur, init("W", pending["w"].astype(np.float32)), init("B", pending["b"].astype(np.float32))],
            [out], kernel_shape=list(pending["k"]), strides=list(pending["s"]),
            pads=[pending["p"][0], pending["p"][1], pending["p"][0], pending["p"][1]]))
        cur, pending = out, None

    mean = np.asarray(info["input"]["mean_rgb"], np.float64)
    for node in order:
        d = node.details
        if node.op == "con":
            flush()
            w = d["weight"].astype(np.float64)
            b = d["bias"].astype(np.float64)
            if node.kind == "input_layer":
                # dlib feeds (pixel - mean_c)/256; the first conv has no padding, so folding is exact.
                assert d["padding"] == (0, 0)
                b = b - np.einsum("ochw,c->o", w, mean / 256.0)
                w = w / 256.0
            pending = {"w": w, "b": b, "k": (d["nr"], d["nc"]), "s": d["stride"], "p": d["padding"]}
            shape = (d["num_filters"], _out_size(shape[1], d["nr"], d["stride"][0], d["padding"][0]),
                     _out_size(shape[2], d["nc"], d["stride"][1], d["padding"][1]))
        elif node.op == "affine":
            assert pending is not None, "every affine in anet_type follows a con"
            g, beta = d["gamma"].astype(np.float64), d["beta"].astype(np.float64)
            pending["w"] = pending["w"] * g[:, None, None, None]
            pending["b"] = pending["b"] * g + beta
            flush()
        elif node.op == "relu":
            flush()
            out = name("relu")
            graph_nodes.append(helper.make_node("Relu", [cur], [out]))
            cur = out
        elif node.op in ("max_pool", "avg_pool"):
            flush()
            out = name(node.op)
            (wy, wx), (sy, sx), (py, px) = d["window"], d["stride"], d["padding"]
            if node.op == "avg_pool" and wy == 0:  # avg_pool_everything
                graph_nodes.append(helper.make_node("GlobalAveragePool", [cur], [out]))
                shape = (shape[0], 1, 1)
            else:
                assert (py, px) == (0, 0), "only unpadded pooling occurs in anet_type"
                op = "MaxPool" if node.op == "max_pool" else "AveragePool"
                graph_nodes.append(helper.make_node(op, [cur], [out], kernel_shape=[wy, wx], strides=[sy, sx]))
                shape = (shape[0], _out_size(shape[1], wy, sy, 0), _out_size(shape[2], wx, sx, 0))
            cur = out
        elif node.kind == "tag":
            flush()
            tags[node.tag] = (cur, shape)
        elif node.kind == "skip":
            flush()
            cur, shape = tags[node.tag]
        elif node.op == "add_prev":
            flush()
            other, oshape = tags[node.tag]
            target = tuple(max(a, b) for a, b in zip(shape, oshape))
            # dlib's tt::add zero-pads the smaller operand at the end of each of C, H, W.
            a = _pad_to(cur, shape, target, graph_nodes, init, name)
            b = _pad_to(other, oshape, target, graph_nodes, init, name)
            out = name("add")
            graph_nodes.append(helper.make_node("Add", [a, b], [out]))
            cur, shape = out, target
        elif node.op == "fc":
            flush()
            flat = name("flatten")
            graph_nodes.append(helper.make_node("Flatten", [cur], [flat], axis=1))
            assert d["num_inputs"] == shape[0] * shape[1] * shape[2]
            graph_nodes.append(helper.make_node("MatMul", [flat, init("fc_W", d["weight"])], ["embedding"]))
            cur = "embedding"
        elif node.kind == "loss":
            pass  # loss_metric has no inference-time computation
        else:
            raise ValueError(f"unhandled node {node}")

    assert cur == "embedding"
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, *info["input"]["size"]])
    outp = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])
    graph = helper.make_graph(graph_nodes, "dlib_resnet_v1", [inp], [outp], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="edgeface tools/convert_dlib.py")
    model.ir_version = 8  # readable by ORT >= 1.10 and OpenVINO 2022+
    model.doc_string = ("dlib_face_recognition_resnet_model_v1 (face-recognition-models 0.3.0, CC0). Input: RGB "
                        "0..255 float NCHW 150x150 dlib chip; dlib's (x-mean)/256 is folded into the first Conv.")
    onnx.checker.check_model(model, full_check=True)
    return model


def _pad_to(t: str, shape: tuple[int, ...], target: tuple[int, ...], graph_nodes: list[onnx.NodeProto],
            init: Callable[[str, np.ndarray], str], name: Callable[[str], str]) -> str:
    if shape == target:
        return t
    # ONNX pads = [begins for N,C,H,W] + [ends for N,C,H,W]; dlib pads only at the ends.
    pads = [0, 0, 0, 0, 0] + [tgt - cur for cur, tgt in zip(shape, target)]
    out = name("pad")
    graph_nodes.append(helper.make_node("Pad", [t, init("pads", np.asarray(pads, np.int64))], [out], mode="constant"))
    return out


# ----------------------------------------------------------------------------- dlib side


class DlibFaces:
    """dlib's HOG detector + 5-point predictor + chip extractor + the reference ResNet."""

    def __init__(self, sp5: Path, net: Path) -> None:
        import dlib  # tool-only dependency

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(str(sp5))
        self.rec = dlib.face_recognition_model_v1(str(net))

    def shape(self, img: np.ndarray):
        """5-point shape of the face nearest the image centre, or None."""
        for upsample in (0, 1):
            dets = self.detector(img, upsample)
            if len(dets):
                break
        else:
            return None
        cy, cx = img.shape[0] / 2, img.shape[1] / 2
        det = min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        return self.sp(img, det)

    def chip(self, img: np.ndarray, shape) -> np.ndarray:
        return np.asarray(self.dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING))

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        return np.asarray([np.asarray(self.rec.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips],
                          np.float32)


def ort_embed(model_path: Path, chips: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    x = chips.astype(np.float32).transpose(0, 3, 1, 2)
    return np.concatenate([sess.run(["embedding"], {"image": x[i:i + 16]})[0] for i in range(0, len(x), 16)])


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"n": int(len(a)), "max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min()),
            "mean_cosine": float(cos.mean())}


def fixture_chips(faces: DlibFaces) -> tuple[np.ndarray, list[str]]:
    """The dlib chip of examples/astronaut.jpg and deterministic photometric/geometric variants."""
    import cv2

    img = faces.dlib.load_rgb_image(str(REPO / "examples" / "astronaut.jpg"))
    shape = faces.shape(img)
    assert shape is not None, "no face found in examples/astronaut.jpg"
    base = faces.chip(img, shape)
    centre = (CHIP_SIZE / 2, CHIP_SIZE / 2)

    def rotate(c: np.ndarray, deg: float) -> np.ndarray:
        m = cv2.getRotationMatrix2D(centre, deg, 1.0)
        return cv2.warpAffine(c, m, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def scale(c: np.ndarray, k: float, offset: float) -> np.ndarray:
        return np.clip(c.astype(np.float32) * k + offset, 0, 255).round().astype(np.uint8)

    variants = {
        "chip": base,
        "flip": base[:, ::-1],
        "rot+5": rotate(base, 5.0),
        "rot-5": rotate(base, -5.0),
        "darker": scale(base, 0.7, 0.0),
        "brighter": scale(base, 1.1, 25.0),
        "gray": np.repeat(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2),
        "blur": cv2.GaussianBlur(base, (5, 5), 1.2),
    }
    return np.stack([np.ascontiguousarray(v) for v in variants.values()]).astype(np.uint8), list(variants)


# ----------------------------------------------------------------------------- MTCNN 5-point template


def mtcnn_template() -> np.ndarray:
    """dlib chip geometry (size 150, padding 0.25) expressed at MTCNN's 5 landmarks, in chip pixels."""
    x, y = np.asarray(MEAN_FACE_X), np.asarray(MEAN_FACE_Y)

    def pt(idx: list[int]) -> np.ndarray:
        i = np.asarray(idx) - 17
        return np.array([x[i].mean(), y[i].mean()])

    pts = np.stack([pt(list(range(36, 42))),  # image-left eye centre (subject's right eye)
                    pt(list(range(42, 48))),  # image-right eye centre
                    pt([30]),  # nose tip
                    pt([48]), pt([54])])  # mouth corners, image-left then image-right
    return (CHIP_PADDING + pts) / (2 * CHIP_PADDING + 1) * CHIP_SIZE


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping src points onto dst; 2x3 matrix."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ e @ vt
    c = np.trace(np.diag(sig) @ e) / (s ** 2).sum(1).mean()
    return np.hstack([c * r, (md - c * r @ ms)[:, None]])


def template_check(faces: DlibFaces, images: list[np.ndarray], shapes: list, dlib_desc: np.ndarray,
                   model: Path) -> dict[str, Any]:
    """Warp with the template from 5-pt-predictor-implied points; compare embeddings with dlib's own chips.

    The 5-point predictor gives eye corners and the nose base (subnasale, 68-point #33), not MTCNN's points, so
    this is a sanity check of the eye geometry: eye centre = midpoint of the two corners, mapped to the
    template's eye centres, plus the nose base mapped to dlib's mean position of point 33.
    """
    import cv2

    tpl = mtcnn_template()
    nose_base = (CHIP_PADDING + np.array([MEAN_FACE_X[33 - 17], MEAN_FACE_Y[33 - 17]])) / (
        2 * CHIP_PADDING + 1) * CHIP_SIZE
    dst = np.stack([tpl[0], tpl[1], nose_base])
    dlib5 = (CHIP_PADDING + DLIB_5PT) / (2 * CHIP_PADDING + 1) * CHIP_SIZE
    ours, baseline = [], []
    for img, sh in zip(images, shapes):
        p = np.array([[sh.part(i).x, sh.part(i).y] for i in range(5)], np.float64)
        src = np.stack([(p[2] + p[3]) / 2, (p[0] + p[1]) / 2, p[4]])  # parts 2,3 = image-left eye
        for pts, tgt, bucket in ((src, dst, ours), (p, dlib5, baseline)):
            bucket.append(cv2.warpAffine(img, similarity(pts, tgt), (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT))
    res = compare(ort_embed(model, np.stack(ours)), dlib_desc)
    # Baseline: dlib's own 5-point template warped the same way; isolates interpolation from template geometry.
    base = compare(ort_embed(model, np.stack(baseline)), dlib_desc)
    return {"method": "similarity warp (cv2 bilinear) of [eye centre = mid of 5-pt eye corners] x2 + 5-pt nose base "
                      "onto the template eyes + dlib mean point 33; ONNX embedding vs dlib compute_face_descriptor",
            "n": res["n"], "mean_cosine": round(res["mean_cosine"], 5), "min_cosine": round(res["min_cosine"], 5),
            "baseline_dlib5_template_cv2": {"mean_cosine": round(base["mean_cosine"], 5),
                                            "min_cosine": round(base["min_cosine"], 5)}}


# ----------------------------------------------------------------------------- main


def lfw_images(lfw: Path, limit: int) -> list[Path]:
    """LFW images in pair-list order (deterministic), unique, up to limit."""
    seen: dict[str, None] = {}
    for line in (lfw / "pairs.tsv").read_text().splitlines()[1:]:
        for rel in line.split("\t")[:2]:
            seen.setdefault(rel, None)
    return [lfw / rel for rel in list(seen)[:limit]]


def export_calibration_chips(faces: DlibFaces, dirs: list[Path], out: Path) -> None:
    """Every face dlib finds (upsample 1) in the *.jpg under dirs, as dlib chips: INT8 calibration data."""
    chips, sources = [], []
    for path in sorted(p for d in dirs for p in d.rglob("*.jpg")):
        img = faces.dlib.load_rgb_image(str(path))
        for det in faces.detector(img, 1):
            chips.append(faces.chip(img, faces.sp(img, det)))
            sources.append(str(path))
    buf = io.BytesIO()
    np.savez_compressed(buf, chips=np.stack(chips), sources=np.asarray(sources))
    manifest_tools.write_atomic(out, buf.getvalue())
    print(f"{len(chips)} calibration chips from {len(set(sources))} images -> {out}")


def export_lfw_chips(faces: DlibFaces, lfw: Path, out: Path) -> None:
    """dlib chips for every image of pairs.tsv; when HOG finds no face, the 5-pt predictor runs on LFW's
    centred 250x250 layout (box 75..175), the usual convention, and the image is flagged."""
    paths = lfw_images(lfw, 10 ** 9)
    chips, fallback = [], []
    for path in paths:
        img = faces.dlib.load_rgb_image(str(path))
        shape = faces.shape(img)
        fallback.append(shape is None)
        if shape is None:
            shape = faces.sp(img, faces.dlib.rectangle(75, 75, 175, 175))
        chips.append(faces.chip(img, shape))
    buf = io.BytesIO()
    np.savez_compressed(buf, chips=np.stack(chips), paths=np.asarray([str(p.relative_to(lfw)) for p in paths]),
                        fallback=np.asarray(fallback))
    manifest_tools.write_atomic(out, buf.getvalue())
    print(f"{len(chips)} LFW chips ({sum(fallback)} with the centre-box fallback) -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, help="LFW folder (pairs.tsv, images/) for measuring parity; never copied")
    ap.add_argument("--lfw-n", type=int, default=200, help="LFW images to use for parity")
    ap.add_argument("--calibration-chips", type=Path, help="only export INT8 calibration chips to this .npz")
    ap.add_argument("--calibration-dirs", type=Path, nargs="+", help="image folders for --calibration-chips")
    ap.add_argument("--lfw-chips", type=Path, help="only export dlib chips of all LFW pair images (needs --lfw)")
    args = ap.parse_args()

    out = manifest_tools.MODELS_DIR / MODEL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        sdist = fetch_sdist(Path(tmp))
        if args.calibration_chips or args.lfw_chips:
            (Path(tmp) / "net.dat").write_bytes(read_member(sdist, DAT_MEMBER, DAT_SHA256))
            (Path(tmp) / "sp5.dat").write_bytes(read_member(sdist, SP5_MEMBER))
            faces = DlibFaces(Path(tmp) / "sp5.dat", Path(tmp) / "net.dat")
            if args.calibration_chips:
                export_calibration_chips(faces, args.calibration_dirs, args.calibration_chips)
            if args.lfw_chips:
                export_lfw_chips(faces, args.lfw, args.lfw_chips)
            return
        dat = read_member(sdist, DAT_MEMBER, DAT_SHA256)
        info, nodes = read_net(dat)
        print(f"parsed {info['bytes_consumed']} bytes to EOF; input mean {info['input']['mean_rgb']}")
        model = build_onnx(info, nodes)
        manifest_tools.write_atomic(out, model.SerializeToString())
        print(f"wrote {out} ({out.stat().st_size} bytes)")

        (Path(tmp) / "net.dat").write_bytes(dat)
        (Path(tmp) / "sp5.dat").write_bytes(read_member(sdist, SP5_MEMBER))
        faces = DlibFaces(Path(tmp) / "sp5.dat", Path(tmp) / "net.dat")

        chips, names = fixture_chips(faces)
        desc = faces.descriptors(chips)
        buf = io.BytesIO()
        np.savez_compressed(buf, chips=chips, descriptors=desc, names=np.asarray(names))
        manifest_tools.write_atomic(FIXTURE, buf.getvalue())
        fixture_parity = compare(ort_embed(out, chips), desc)
        print("fixture parity", fixture_parity)

        parity: dict[str, Any] = {"reference": "dlib-bin compute_face_descriptor on the same 150x150 chips",
                                  "astronaut_fixture": _rounded(fixture_parity)}
        alignment_check = None
        if args.lfw:
            images, shapes, lfw_chips = [], [], []
            for path in lfw_images(args.lfw, args.lfw_n * 2):
                img = faces.dlib.load_rgb_image(str(path))
                sh = faces.shape(img)
                if sh is None:
                    continue
                images.append(img)
                shapes.append(sh)
                lfw_chips.append(faces.chip(img, sh))
                if len(lfw_chips) == args.lfw_n:
                    break
            lfw_desc = faces.descriptors(np.stack(lfw_chips))
            lfw_parity = compare(ort_embed(out, np.stack(lfw_chips)), lfw_desc)
            print("LFW parity", lfw_parity)
            parity["lfw_chips"] = _rounded(lfw_parity)
            alignment_check = template_check(faces, images, shapes, lfw_desc, out)
            print("template check", alignment_check)
        elif (old := manifest_tools.load_manifest()["models"].get(MODEL_NAME)):
            # Keep previously measured LFW numbers when re-running without the (non-shipped) data set.
            parity = {**old.get("parity", {}), **parity}
            alignment_check = old.get("alignment", {}).get("check")

    manifest_tools.register_model(MODEL_NAME, manifest_entry(info, parity, alignment_check))
    print(f"registered {MODEL_NAME} in {manifest_tools.MANIFEST}")


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: (v if isinstance(v, int) else float(f"{v:.7g}")) for k, v in d.items()}


def manifest_entry(info: dict[str, Any], parity: dict[str, Any], alignment_check: dict[str, Any] | None,
                   ) -> dict[str, Any]:
    mean = [round(v, 3) for v in info["input"]["mean_rgb"]]
    alignment: dict[str, Any] = {
        "template": [[round(float(v), 3) for v in p] for p in mtcnn_template()],
        "size": [CHIP_SIZE, CHIP_SIZE],
        "landmarks": "mtcnn5",
        "derivation": "dlib get_face_chip_details(size=150, padding=0.25) mean face: eye centres = mean of 68-pt "
                      "36-41 / 42-47, nose tip = 30, mouth corners = 48 / 54; chip = (0.25 + m)/1.5*150",
    }
    if alignment_check:
        alignment["check"] = alignment_check
    return {
        "file": MODEL_FILE,
        "role": "embedder",
        "precision": "fp32",
        "embedding_dim": 128,
        "input": {"name": "image", "shape": ["N", 3, CHIP_SIZE, CHIP_SIZE], "layout": "NCHW", "color": "RGB",
                  "dtype": "float32", "range": [0, 255],
                  "normalize": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                  "normalize_in_graph": {"mean": mean, "std": [256.0, 256.0, 256.0],
                                         "note": "dlib's (x - mean)/256 is folded into the first Conv (it has no "
                                                 "padding, so the fold is exact): feed raw 0..255 RGB"}},
        "alignment": alignment,
        "output": {"name": "embedding", "shape": ["N", 128], "normalized": False,
                   "note": "dlib's raw descriptor (norm ~1); L2-normalise in the pipeline; dlib's own threshold "
                           "is Euclidean distance 0.6 on raw descriptors"},
        "source": {"registry": "pypi", "package": PACKAGE, "version": VERSION,
                   "path": DAT_MEMBER.split("/", 1)[1], "sha256": DAT_SHA256, "sdist_sha256": SDIST_SHA256},
        "license": "CC0-1.0",
        "converter": "tools/convert_dlib.py (own dlib DNN reader tools/dlib_reader.py; onnx.helper graph, opset 17)",
        "parity": parity,
    }


if __name__ == "__main__":
    main()
