"""The shipped MTCNN ONNX files reproduce facenet-pytorch's torch nets (fixture made by tools/convert_mtcnn.py
from examples/astronaut.jpg: a P-Net pyramid level, 20 R-Net and 20 O-Net stage inputs; no torch needed here)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"
FIXTURE = Path(__file__).resolve().parent / "data" / "mtcnn_parity.npz"
OUTPUTS = {"pnet": ["prob", "reg"], "rnet": ["prob", "reg"], "onet": ["prob", "reg", "landmarks"]}
TOLERANCE = 1e-4


def _manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())["models"]


def _fixture(net: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    data = np.load(FIXTURE)
    return data[f"{net}_image"], {out: data[f"{net}_{out}"] for out in OUTPUTS[net]}


def _ort(net: str) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(MODELS / _manifest()[f"mtcnn_{net}"]["file"]), so,
                                providers=["CPUExecutionProvider"])
    return lambda x: dict(zip(OUTPUTS[net], sess.run(OUTPUTS[net], {"image": x})))


def _openvino(net: str) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    ov = pytest.importorskip("openvino")
    # f32 explicitly: this CPU would otherwise run bf16 (close, not exact).
    compiled = ov.Core().compile_model(str(MODELS / _manifest()[f"mtcnn_{net}"]["file"]), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: {out: np.asarray(compiled(x)[compiled.output(out)]) for out in OUTPUTS[net]}


def test_fixture_is_meaningful() -> None:
    image, ref = _fixture("pnet")
    assert image.shape[:2] == (1, 3) and ref["prob"].shape[:2] == (1, 2) and ref["reg"].shape[:2] == (1, 4)
    assert ref["prob"][0, 1].max() > 0.9  # the face is in this pyramid level
    for net, size in (("rnet", 24), ("onet", 48)):
        image, ref = _fixture(net)
        assert image.shape == (20, 3, size, size) and image.dtype == np.float32
        assert np.abs(image).max() <= 1.0  # already normalized (x - 127.5) / 128
        assert ref["prob"][:, 1].max() > 0.99 and ref["prob"][:, 1].min() < 0.5  # face and background
    assert _fixture("onet")[1]["landmarks"].shape == (20, 10)


@pytest.mark.parametrize("net", list(OUTPUTS))
def test_manifest_entry_and_sha256(net: str) -> None:
    entry = _manifest()[f"mtcnn_{net}"]
    path = MODELS / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size == entry["bytes"]
    assert entry["role"] == f"detector/{net}" and entry["license"] == "MIT" and entry["precision"] == "fp32"
    assert entry["input"]["color"] == "RGB" and entry["input"]["layout"] == "NCHW"
    assert entry["input"]["normalize"] == {"mean": [127.5] * 3, "std": [128.0] * 3}
    assert list(entry["outputs"]) == OUTPUTS[net]
    assert entry["source"]["package"] == "facenet-pytorch" and entry["source"]["version"] == "2.6.0"


@pytest.mark.parametrize("net", list(OUTPUTS))
def test_shipped_int8_is_registered(net: str) -> None:
    # Either there is no INT8 file, or it is in the manifest with a matching hash.
    path = MODELS / f"mtcnn_{net}_int8.onnx"
    entry = _manifest().get(f"mtcnn_{net}_int8")
    assert path.exists() == (entry is not None)
    if entry is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("runtime", [_ort, _openvino], ids=["onnxruntime", "openvino_f32"])
@pytest.mark.parametrize("net", list(OUTPUTS))
def test_matches_torch(net: str, runtime: Callable[[str], Callable[[np.ndarray], dict[str, np.ndarray]]]) -> None:
    image, ref = _fixture(net)
    got = runtime(net)(image)
    for out in OUTPUTS[net]:
        assert got[out].shape == ref[out].shape, out
        assert np.abs(got[out] - ref[out]).max() < TOLERANCE, out


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_dynamic_batch(net: str) -> None:
    image, _ = _fixture(net)
    run = _ort(net)
    batched = run(image)
    for i in (0, 7, 19):
        single = run(image[i:i + 1])
        for out in OUTPUTS[net]:
            assert np.abs(single[out][0] - batched[out][i]).max() < 1e-5


def test_pnet_dynamic_size() -> None:
    image, _ = _fixture("pnet")
    crop = np.ascontiguousarray(image[:, :, :37, :52])  # odd sizes exercise the ceil_mode pooling
    out = _ort("pnet")(crop)
    # conv 3x3 -> max-pool 2/2 with ceil_mode -> conv 3x3 -> conv 3x3: ceil((n - 2) / 2) - 4
    expect = [-(-(n - 2) // 2) - 4 for n in (37, 52)]
    assert list(out["prob"].shape) == [1, 2, *expect] and list(out["reg"].shape) == [1, 4, *expect]
    np.testing.assert_allclose(out["prob"].sum(1), 1.0, atol=1e-5)
