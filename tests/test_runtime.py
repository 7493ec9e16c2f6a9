"""edgeface.runtime: both backends give the same numbers, honour the thread settings, and reject
bad input with typed errors. Tiny ONNX models are built here, so these tests need no shipped
model; the last section runs every shipped model on both backends when they are present."""
from __future__ import annotations

import os
import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeface import models as edge_models  # noqa: E402
from edgeface import runtime  # noqa: E402
from edgeface.errors import (  # noqa: E402
    BackendError,
    InvalidArgumentError,
    InvalidDTypeError,
    ModelError,
)
from edgeface.runtime import Runner, physical_cores, resolve_backend  # noqa: E402

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="OpenVINO not installed (pip install 'edgeface[openvino]')")
# OpenVINO is an optional extra: without it the backend-comparison tests cover ONNX Runtime alone.
BACKENDS = ["onnxruntime"] + (["openvino"] if HAS_OPENVINO else [])

_rng = np.random.default_rng(1234)
CONV_W = (_rng.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float32)
CONV_B = _rng.standard_normal(4).astype(np.float32)
SLOPE = (_rng.random((4, 1, 1)) * 0.5).astype(np.float32)


def _build_tiny_model(path: Path) -> Path:
    """Conv 3x3 (valid) -> PRelu -> Softmax over channels, P-Net style: dynamic N, H, W.
    Two outputs ("prob", and the intermediate "feat") so output naming/ordering is exercised."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("PRelu", ["c", "slope"], ["feat"]),
        helper.make_node("Softmax", ["feat"], ["prob"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 4, None, None]),
            helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", 4, None, None]),
        ],
        [
            numpy_helper.from_array(CONV_W, "w"),
            numpy_helper.from_array(CONV_B, "b"),
            numpy_helper.from_array(SLOPE, "slope"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _reference(x: np.ndarray) -> dict[str, np.ndarray]:
    """The same network in float64 NumPy."""
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    conv = np.einsum("nchwij,ocij->nohw", windows, CONV_W.astype(np.float64)) + CONV_B[None, :, None, None]
    feat = np.where(conv >= 0, conv, conv * SLOPE[None])
    e = np.exp(feat - feat.max(axis=1, keepdims=True))
    return {"prob": e / e.sum(axis=1, keepdims=True), "feat": feat}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.ENV_BACKEND, raising=False)


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- numerical parity


@pytest.mark.parametrize("shape", [(1, 3, 12, 12), (3, 3, 17, 29), (2, 3, 48, 31)])
def test_backends_agree_with_each_other_and_numpy(tiny_model: Path, shape: tuple[int, ...]) -> None:
    x = _input(shape)
    want = _reference(x)
    got = {b: Runner(tiny_model, backend=b).run(x) for b in BACKENDS}
    for name in ("prob", "feat"):
        ort_out, ov_out = got["onnxruntime"][name], got["openvino"][name]
        assert ort_out.shape == ov_out.shape == want[name].shape
        assert ort_out.dtype == ov_out.dtype == np.float32
        np.testing.assert_allclose(ort_out, ov_out, rtol=0, atol=1e-5)
        np.testing.assert_allclose(ort_out, want[name], rtol=0, atol=1e-5)
        np.testing.assert_allclose(ov_out, want[name], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_runner_takes_varying_shapes(tiny_model: Path, backend: str) -> None:
    """P-Net sees every pyramid level (varying H x W); R/O-Net and embedders varying batches."""
    with Runner(tiny_model, backend=backend) as runner:
        for i, shape in enumerate([(1, 3, 40, 30), (1, 3, 13, 12), (5, 3, 24, 24), (1, 3, 24, 24), (2, 3, 61, 3)]):
            x = _input(shape, seed=i)
            out = runner.run(x)
            np.testing.assert_allclose(out["prob"], _reference(x)["prob"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_names_and_declared_shapes(tiny_model: Path, backend: str) -> None:
    runner = Runner(tiny_model, backend=backend)
    assert runner.backend == backend
    assert runner.input_names == ("x",)
    assert runner.output_names == ("prob", "feat")
    assert runner.input_shapes == {"x": (None, 3, None, None)}
    out = runner.run({"x": _input((1, 3, 8, 8))})
    assert list(out) == ["prob", "feat"]


@needs_openvino
def test_openvino_outputs_are_not_aliased_between_calls(tiny_model: Path) -> None:
    """OpenVINO reuses its output buffers: results must be copies that later calls leave alone."""
    runner = Runner(tiny_model, backend="openvino")
    x1, x2 = _input((2, 3, 10, 10), seed=1), _input((2, 3, 10, 10), seed=2)
    first = runner.run(x1)
    snapshot = {k: v.copy() for k, v in first.items()}
    second = runner.run(x2)
    for name in first:
        assert not np.shares_memory(first[name], second[name])
        np.testing.assert_array_equal(first[name], snapshot[name])
        assert not np.array_equal(first[name], second[name])
        first[name][...] = 0  # writable, and writing must not disturb the backend
    np.testing.assert_allclose(runner.run(x1)["prob"], snapshot["prob"], rtol=0, atol=0)


@needs_openvino
def test_openvino_concurrent_runs_are_serialised(tiny_model: Path) -> None:
    runner = Runner(tiny_model, backend="openvino", threads=1)
    inputs = [_input((1 + i % 3, 3, 9 + i, 11), seed=i) for i in range(8)]
    results: list[np.ndarray | None] = [None] * len(inputs)

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = runner.run(inputs[i])["prob"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, got in zip(inputs, results):
        np.testing.assert_allclose(got, _reference(x)["prob"], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------ threads


def test_onnxruntime_session_options(tiny_model: Path) -> None:
    runner = Runner(tiny_model, backend="onnxruntime", threads=1)
    assert runner.threads == 1
    options = runner._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert runner._session.get_providers() == ["CPUExecutionProvider"]


@needs_openvino
def test_openvino_compiled_properties(tiny_model: Path) -> None:
    runner = Runner(tiny_model, backend="openvino", threads=1)
    assert runner.threads == 1
    assert runner._compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert str(runner._compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    # f32 by default: OpenVINO would otherwise pick bf16 on bf16-capable CPUs.
    assert runner._compiled.get_property("INFERENCE_PRECISION_HINT").to_dtype() == np.float32


@needs_openvino
def test_openvino_bf16_is_opt_in(tiny_model: Path) -> None:
    runner = Runner(tiny_model, backend="openvino", precision="bf16")
    import openvino

    hint = runner._compiled.get_property("INFERENCE_PRECISION_HINT")
    # A CPU without bf16 support silently keeps f32; either way the run must still work.
    assert hint in (openvino.Type.bf16, openvino.Type.f32)
    x = _input((1, 3, 12, 12))
    np.testing.assert_allclose(runner.run(x)["prob"], _reference(x)["prob"], rtol=0, atol=5e-2)


def test_precision_other_than_f32_needs_openvino(tiny_model: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="OpenVINO"):
        Runner(tiny_model, backend="onnxruntime", precision="bf16")
    with pytest.raises(InvalidArgumentError, match="precision"):
        Runner(tiny_model, backend="openvino", precision="int4")


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_threads_are_physical_cores_and_capped(tiny_model: Path, backend: str) -> None:
    assert Runner(tiny_model, backend=backend).threads == physical_cores()
    allowed = len(os.sched_getaffinity(0))
    assert Runner(tiny_model, backend=backend, threads=1000).threads == allowed


@pytest.mark.parametrize("bad", [0, -1])
def test_threads_must_be_positive(tiny_model: Path, bad: int) -> None:
    with pytest.raises(InvalidArgumentError):
        Runner(tiny_model, threads=bad)
    with pytest.raises(InvalidDTypeError):
        Runner(tiny_model, threads=1.5)  # type: ignore[arg-type]


def test_physical_cores_is_within_affinity() -> None:
    n = physical_cores()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_physical_cores_merges_smt_siblings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake sysfs: 2 packages x 2 cores x 2 threads; the process may use cpus 0,1,2,4."""
    for cpu in range(8):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{cpu // 4}\n")
        (topo / "core_id").write_text(f"{(cpu % 4) // 2}\n")
    monkeypatch.setattr(runtime, "_SYSFS_CPU", tmp_path)
    monkeypatch.setattr(runtime, "_allowed_cpus", lambda: {0, 1, 2, 4})
    assert physical_cores() == 3  # (pkg0,core0) for cpus 0+1, (pkg0,core1), (pkg1,core0)
    # Unreadable topology: fall back to the allowed logical CPUs.
    monkeypatch.setattr(runtime, "_SYSFS_CPU", tmp_path / "missing")
    assert physical_cores() == 4


# ---------------------------------------------------------------------------- backend choice


def test_backend_default_and_aliases() -> None:
    assert resolve_backend(None) == "onnxruntime"
    assert resolve_backend("ort") == "onnxruntime"
    assert resolve_backend("ONNXRuntime") == "onnxruntime"


@needs_openvino
def test_backend_openvino_aliases() -> None:
    assert resolve_backend("ov") == "openvino"
    assert resolve_backend("openvino") == "openvino"


@needs_openvino
def test_backend_from_environment(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.ENV_BACKEND, "ov")
    assert resolve_backend(None) == "openvino"
    assert Runner(tiny_model).backend == "openvino"
    assert Runner(tiny_model, backend="ort").backend == "onnxruntime"  # explicit argument wins
    monkeypatch.setenv(runtime.ENV_BACKEND, "tensorrt")
    with pytest.raises(BackendError, match=runtime.ENV_BACKEND):
        resolve_backend(None)


def test_unknown_backend(tiny_model: Path) -> None:
    with pytest.raises(BackendError, match="Unknown inference backend 'tflite'.*onnxruntime.*openvino"):
        Runner(tiny_model, backend="tflite")


def test_missing_backend_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` fail
    with pytest.raises(BackendError, match=r"pip install 'edgeface\[openvino\]'"):
        resolve_backend("openvino")


# ------------------------------------------------------------------------------ input checks


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_dtype_is_typed(tiny_model: Path, backend: str) -> None:
    runner = Runner(tiny_model, backend=backend)
    for dtype in (np.float64, np.uint8, np.float16):
        with pytest.raises(InvalidDTypeError, match="float32"):
            runner.run(np.zeros((1, 3, 12, 12), dtype=dtype))
    with pytest.raises(InvalidDTypeError):
        runner.run([[0.0]])  # type: ignore[arg-type]
    with pytest.raises(InvalidDTypeError):
        runner.run({"x": [[0.0]]})  # type: ignore[dict-item]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(3, 12, 12), (1, 1, 12, 12), (1, 4, 12, 12), (1, 3, 12, 12, 1)])
def test_wrong_shape_is_typed(tiny_model: Path, backend: str, shape: tuple[int, ...]) -> None:
    runner = Runner(tiny_model, backend=backend)
    with pytest.raises(InvalidArgumentError, match=r"expects \(\?, 3, \?, \?\)"):
        runner.run(np.zeros(shape, dtype=np.float32))


def test_wrong_input_names(tiny_model: Path) -> None:
    runner = Runner(tiny_model)
    with pytest.raises(InvalidArgumentError, match="missing \\['x'\\], unexpected \\['y'\\]"):
        runner.run({"y": np.zeros((1, 3, 12, 12), np.float32)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_input_is_accepted(tiny_model: Path, backend: str) -> None:
    x = _input((2, 3, 20, 30))[:, :, ::2, ::3]
    np.testing.assert_allclose(Runner(tiny_model, backend=backend).run(x)["prob"], _reference(x)["prob"], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_batch_returns_empty_without_calling_backend(
    tiny_model: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(tiny_model, backend=backend)

    class Boom:
        def __getattr__(self, name: str) -> None:
            raise AssertionError("the backend must not be called for an empty batch")

    monkeypatch.setattr(runner, "_session" if backend == "onnxruntime" else "_request", Boom())
    out = runner.run(np.zeros((0, 3, 24, 24), np.float32))
    assert list(out) == ["prob", "feat"]
    for value in out.values():
        assert value.shape[:2] == (0, 4) and value.size == 0 and value.dtype == np.float32


# ------------------------------------------------------------------------ errors and lifecycle


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_load_failure_is_chained(tmp_path: Path, backend: str) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    with pytest.raises(BackendError, match="broken.onnx") as info:
        Runner(broken, backend=backend)
    assert info.value.__cause__ is not None


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Runner(tmp_path / "nope.onnx")


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_and_context_manager(tiny_model: Path, backend: str) -> None:
    with Runner(tiny_model, backend=backend) as runner:
        runner.run(_input((1, 3, 12, 12)))
    with pytest.raises(BackendError, match="closed"):
        runner.run(_input((1, 3, 12, 12)))
    runner.close()  # idempotent


# ----------------------------------------------------------------- the shipped models, if any


def _shipped_models() -> list[str]:
    try:
        return edge_models.list_models()
    except ModelError:
        return []


# Models whose graph takes only image sizes that are multiples of this (their detector pads the frame).
SIZE_MULTIPLE = {"centerface": 32}


def _fill_shape(declared: tuple[int | None, ...], layout: str, multiple: int = 1) -> tuple[int, ...]:
    """A concrete shape for a declared one: batch 2 (catches batch-mixing bugs), and an odd,
    non-square image size for fully convolutional models (P-Net), rounded up to ``multiple``."""
    fill = {"N": 2, "H": -(-53 // multiple) * multiple, "W": -(-41 // multiple) * multiple, "C": 3}
    axes = layout if len(layout) == len(declared) else "?" * len(declared)
    return tuple(d if d is not None else fill.get(axes[i], 2) for i, d in enumerate(declared))


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


SHIPPED = _shipped_models()


@pytest.mark.skipif(not SHIPPED, reason="no models registered in the manifest yet (models/ is being converted)")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_same_outputs_from_both_backends(name: str) -> None:
    spec = edge_models.get_model(name)
    if not spec.path.exists():
        pytest.skip(f"{spec.path.name} is listed in the manifest but not present yet")
    ort_runner = Runner(spec, backend="onnxruntime")
    ov_runner = Runner(spec, backend="openvino")
    assert ort_runner.input_names == ov_runner.input_names
    assert ort_runner.output_names == ov_runner.output_names
    rng = np.random.default_rng(20240607)
    feeds = {}
    for input_name, declared in ort_runner.input_shapes.items():
        shape = _fill_shape(declared, spec.input.layout, SIZE_MULTIPLE.get(name, 1))
        # Random 8-bit pixels through the manifest's normalisation: in the range the model was
        # trained on, so activations (and any INT8 scales) are exercised as in real use.
        pixels = rng.uniform(0.0, 255.0, size=shape)
        if "C" in spec.input.layout and len(shape) == len(spec.input.layout):
            axis = spec.input.layout.index("C")
            stats_shape = [1] * len(shape)
            stats_shape[axis] = -1
            mean = np.reshape(spec.input.mean, stats_shape) if len(spec.input.mean) > 1 else spec.input.mean[0]
            std = np.reshape(spec.input.std, stats_shape) if len(spec.input.std) > 1 else spec.input.std[0]
            pixels = (pixels - mean) / std
        feeds[input_name] = pixels.astype(np.float32)
    a, b = ort_runner.run(feeds), ov_runner.run(feeds)
    quantized = "int8" in spec.precision.lower()
    for output in ort_runner.output_names:
        assert a[output].shape == b[output].shape, output
        if quantized:
            # The backends' integer kernels round differently: compare direction, not digits.
            assert _cosine_rows(a[output], b[output]).min() > 0.99, output
        else:
            diff = float(np.abs(a[output] - b[output]).max())
            assert diff < 1e-4, f"{name}.{output}: max abs diff {diff:.3g}"
