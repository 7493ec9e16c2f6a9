"""The shipped dlib ResNet ONNX files reproduce dlib's own descriptors (fixture made by tools/convert_dlib.py
from examples/astronaut.jpg with dlib-bin; no dlib needed here)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"
FIXTURE = Path(__file__).resolve().parent / "data" / "dlib_parity.npz"


def _manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())["models"]


def _fixture(name: str = "dlib_resnet_v1") -> tuple[np.ndarray, np.ndarray]:
    data = np.load(FIXTURE)
    # The manifest says how to feed the graph (for dlib: identity, dlib's (x-mean)/256 is folded into the graph).
    norm = _manifest()[name]["input"]["normalize"]
    x = (data["chips"].astype(np.float32) - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), data["descriptors"]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _ort(name: str, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(MODELS / _manifest()[name]["file"]), so, providers=["CPUExecutionProvider"])
    return sess.run(["embedding"], {"image": x})[0]


def test_fixture_is_meaningful() -> None:
    chips, desc = np.load(FIXTURE)["chips"], np.load(FIXTURE)["descriptors"]
    assert chips.dtype == np.uint8 and chips.shape[1:] == (150, 150, 3) and 6 <= len(chips) <= 10
    assert desc.shape == (len(chips), 128)
    # Variants of one face stay close to each other, as dlib says (same person < 0.6 Euclidean).
    assert np.linalg.norm(desc - desc[0], axis=1).max() < 0.6


@pytest.mark.parametrize("name", ["dlib_resnet_v1", "dlib_resnet_v1_int8"])
def test_manifest_entry_and_sha256(name: str) -> None:
    entry = _manifest().get(name)
    if entry is None:
        pytest.skip(f"{name} not registered")
    path = MODELS / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size == entry["bytes"]
    assert entry["role"] == "embedder" and entry["embedding_dim"] == 128 and entry["license"] == "CC0-1.0"
    assert entry["input"]["color"] == "RGB" and entry["input"]["layout"] == "NCHW"
    assert entry["alignment"]["landmarks"] == "mtcnn5" and len(entry["alignment"]["template"]) == 5
    assert entry["output"]["normalized"] is False


def test_onnxruntime_fp32_matches_dlib() -> None:
    x, desc = _fixture()
    emb = _ort("dlib_resnet_v1", x)
    assert emb.shape == desc.shape
    assert _cosine(emb, desc).min() >= 0.9999
    assert np.abs(emb - desc).max() < 1e-4


def test_dynamic_batch() -> None:
    x, _ = _fixture()
    batched = _ort("dlib_resnet_v1", x)
    single = np.concatenate([_ort("dlib_resnet_v1", x[i:i + 1]) for i in range(len(x))])
    assert np.abs(batched - single).max() < 1e-5


def test_openvino_f32_matches_dlib() -> None:
    ov = pytest.importorskip("openvino")
    x, desc = _fixture()
    core = ov.Core()
    # This CPU defaults to bf16; f32 is what reproduces dlib.
    compiled = core.compile_model(str(MODELS / _manifest()["dlib_resnet_v1"]["file"]), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    emb = np.asarray(compiled([x])[compiled.output(0)])
    assert _cosine(emb, desc).min() >= 0.9999
    assert np.abs(emb - desc).max() < 1e-4


def test_int8_close_to_dlib() -> None:
    if "dlib_resnet_v1_int8" not in _manifest():
        pytest.skip("INT8 model not registered")
    x, desc = _fixture("dlib_resnet_v1_int8")
    emb = _ort("dlib_resnet_v1_int8", x)
    assert _cosine(emb, desc).min() >= 0.99
