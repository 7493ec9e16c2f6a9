"""One small inference interface over ONNX Runtime and OpenVINO, tuned for small edge CPUs.

Why the settings below:

* Threads default to the number of *physical* cores this process may run on. SMT siblings add
  little to convolution throughput and more threads than allowed cores only time-slice.
* ONNX Runtime's worker threads spin between calls by default. In a pipeline that alternates
  small model calls with Python/NumPy work (MTCNN), the spinning threads steal the cores the
  Python code needs (measured: 218 ms vs 95 ms per frame on 2 cores), so spinning is disabled.
* OpenVINO picks bf16 on CPUs that support it; outputs then differ from ONNX Runtime at ~1e-3.
  edgeface asks for f32 by default so both backends give the same answers; ``precision="bf16"``
  or ``"f16"`` trades that parity for speed.

Thread safety: ``Runner.run`` may be called from several threads. ONNX Runtime sessions are
safe to run concurrently. OpenVINO runs use one reusable ``InferRequest``, which is not, so
``run`` serialises them with a lock; for parallel OpenVINO inference create one ``Runner`` per
thread.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping, Union

import numpy as np

from .errors import BackendError, ClosedError, InvalidArgumentError, InvalidDTypeError, ModelError
from .models import ModelSpec, verify_model

__all__ = ["ENV_BACKEND", "Runner", "physical_cores", "resolve_backend"]

ENV_BACKEND = "EDGEFACE_BACKEND"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"

_ALIASES = {"onnxruntime": ONNXRUNTIME, "ort": ONNXRUNTIME, "openvino": OPENVINO, "ov": OPENVINO}
_PACKAGES = {ONNXRUNTIME: ("onnxruntime", "onnxruntime"), OPENVINO: ("openvino", "'edgeface[openvino]'")}
_PRECISIONS = ("f32", "bf16", "f16")

Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]


def resolve_backend(backend: str | None = None) -> str:
    """Canonical backend name: the argument, else ``$EDGEFACE_BACKEND``, else "onnxruntime".

    Raises ``BackendError`` for an unknown name, or when the backend's package cannot be
    imported (saying how to install it), so a misconfiguration fails at construction time.
    """
    origin = "backend argument"
    if backend is None:
        backend = os.environ.get(ENV_BACKEND) or None
        origin = f"${ENV_BACKEND}"
    if backend is None:
        backend, origin = ONNXRUNTIME, "default"
    if not isinstance(backend, str):
        raise BackendError(f"Backend must be a string, got {type(backend).__name__}.")
    name = _ALIASES.get(backend.strip().lower())
    if name is None:
        raise BackendError(
            f"Unknown inference backend {backend!r} (from {origin}); "
            f"use one of: onnxruntime (ort), openvino (ov)."
        )
    module, pip_name = _PACKAGES[name]
    # find_spec, not import: importing OpenVINO here would start its telemetry (see _openvino_core)
    # and cost ~0.5 s for a backend that may never be used.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # ValueError: a module blocked as sys.modules[name] = None
        spec = None
    if spec is None:
        raise BackendError(
            f"Backend {name!r} is not installed (no module {module!r}). Install it with: pip install {pip_name}"
        )
    return name


def _allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


_SYSFS_CPU = Path("/sys/devices/system/cpu")


def physical_cores() -> int:
    """Physical cores this process may run on: the affinity mask with SMT siblings merged.

    Reads ``/sys/devices/system/cpu/cpuN/topology``; if the topology cannot be read, falls back
    to the number of allowed logical CPUs (never more than the process may use).
    """
    cpus = _allowed_cpus()
    cores: set[tuple[str, str]] = set()
    try:
        for cpu in cpus:
            topo = _SYSFS_CPU / f"cpu{cpu}" / "topology"
            package = (topo / "physical_package_id").read_text().strip()
            core_file = topo / "core_id"
            if core_file.exists():
                core = core_file.read_text().strip()
            else:  # identify the core by its sibling set instead
                core = (topo / "thread_siblings_list").read_text().strip()
            cores.add((package, core))
    except OSError:
        return max(1, len(cpus))
    return max(1, min(len(cores), len(cpus)))


class Runner:
    """A loaded model on one backend: ``run(inputs) -> {output name: array}``.

    ``model`` is a ``ModelSpec`` (its file's sha256 is checked before loading) or a path to an
    ONNX file. ``threads`` defaults to ``physical_cores()`` and is capped at the number of CPUs
    the process may use. ``precision`` is the OpenVINO inference precision ("f32", "bf16",
    "f16"); ONNX Runtime on CPU only computes in the model's own precision, so it accepts "f32"
    only. Inputs are validated against the model's declared inputs (float32, rank, fixed
    dimensions); a batch of 0 returns empty outputs without calling the backend.
    """

    def __init__(
        self,
        model: ModelSpec | str | os.PathLike[str],
        backend: str | None = None,
        threads: int | None = None,
        precision: str = "f32",
    ) -> None:
        self.backend: str = resolve_backend(backend)
        self.threads: int = _resolve_threads(threads)
        if precision not in _PRECISIONS:
            raise InvalidArgumentError(f"precision must be one of {', '.join(_PRECISIONS)}; got {precision!r}.")
        if self.backend == ONNXRUNTIME and precision != "f32":
            raise InvalidArgumentError(
                f"precision={precision!r} needs the OpenVINO backend; ONNX Runtime on CPU runs f32 only."
            )
        self.precision: str = precision
        if isinstance(model, ModelSpec):
            self.name: str = model.name
            self.path: Path = verify_model(model)
        elif isinstance(model, (str, os.PathLike)):
            self.path = Path(model)
            self.name = self.path.stem
            if not self.path.is_file():
                raise ModelError(
                    f"Model file {self.path} does not exist "
                    f"(a bundled model is loaded by name with Runner(edgeface.models.get_model(name)))."
                )
        else:
            raise InvalidDTypeError(f"model must be a ModelSpec or a path, got {type(model).__name__}.")

        self._lock = threading.Lock()
        self._closed = False
        load = self._load_onnxruntime if self.backend == ONNXRUNTIME else self._load_openvino
        try:
            load()
        except Exception as exc:
            raise BackendError(f"{self.backend} could not load model {self.path}: {exc}") from exc
        self.input_names: tuple[str, ...] = tuple(self._input_shapes)
        self.output_names: tuple[str, ...] = tuple(self._output_shapes)
        # Declared shapes, None for dynamic dims: callers size their batches/crops from these.
        self.input_shapes: dict[str, tuple[int | None, ...]] = dict(self._input_shapes)

    # ----------------------------------------------------------------------------- loading

    def _load_onnxruntime(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3  # warnings about unused initialisers are noise to users
        # Memory (measured by bench/speed.py, 27 crowd frames at 640x480): each session's own arena
        # keeps its largest allocation and grows by doubling, and memory patterns pre-plan one
        # buffer per input shape; P-Net sees a new shape every frame size. One process-wide arena
        # that grows by what is asked, shared by every session, and no patterns took the peak from
        # ~450 MB to under 200 MB with the frame rate unchanged.
        options.enable_mem_pattern = False
        options.add_session_config_entry("session.use_env_allocators", "1")
        _register_shared_arena(ort)
        self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._input_shapes = {i.name: _ort_shape(i.shape) for i in self._session.get_inputs()}
        self._input_dtypes = {i.name: _ORT_DTYPES.get(i.type) for i in self._session.get_inputs()}
        self._output_shapes = {o.name: _ort_shape(o.shape) for o in self._session.get_outputs()}
        self._output_dtypes = {o.name: _ORT_DTYPES.get(o.type) for o in self._session.get_outputs()}

    def _load_openvino(self) -> None:
        model = _openvino_core().read_model(str(self.path))
        config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": self.precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._compiled = _openvino_core().compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._input_shapes = {_ov_name(p, i, "input"): _ov_shape(p) for i, p in enumerate(self._compiled.inputs)}
        self._input_dtypes = {
            _ov_name(p, i, "input"): _ov_dtype(p) for i, p in enumerate(self._compiled.inputs)
        }
        self._output_shapes = {
            _ov_name(p, i, "output"): _ov_shape(p) for i, p in enumerate(self._compiled.outputs)
        }
        self._output_dtypes = {
            _ov_name(p, i, "output"): _ov_dtype(p) for i, p in enumerate(self._compiled.outputs)
        }

    # ------------------------------------------------------------------------------ running

    def run(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Run the model. ``inputs`` is one array (single-input models) or ``{name: array}``.

        Returns fresh arrays (never views of backend buffers) keyed by output name.
        """
        if self._closed:
            raise ClosedError(
                f"Runner for {self.name!r} is closed; create a new Runner "
                "(or a new Detector/Embedder/FaceAnalyzer, whichever owned it)."
            )
        feeds = self._validate(inputs)
        if any(a.ndim and a.shape[0] == 0 for a in feeds.values()):
            return self._empty_outputs()
        try:
            if self.backend == ONNXRUNTIME:
                values = self._session.run(list(self.output_names), feeds)
                return dict(zip(self.output_names, values))
            with self._lock:
                # Zero-copy in, and one explicit copy out: the request reuses its output
                # buffers, so views would change under the caller on the next run.
                result = self._request.infer(
                    {i: feeds[name] for i, name in enumerate(self.input_names)},
                    share_inputs=True,
                    share_outputs=True,
                )
                values = result.to_tuple()
                return {name: np.array(value, copy=True) for name, value in zip(self.output_names, values)}
        except Exception as exc:
            raise BackendError(f"{self.backend} failed running {self.name!r}: {exc}") from exc

    def _validate(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Map inputs to names in the model's input order, checking type, dtype and shape."""
        if isinstance(inputs, np.ndarray):
            if len(self.input_names) != 1:
                raise InvalidArgumentError(
                    f"Model {self.name!r} has inputs {list(self.input_names)}: pass a dict name -> array."
                )
            named: Mapping[str, Any] = {self.input_names[0]: inputs}
        elif isinstance(inputs, Mapping):
            named = inputs
            missing = [n for n in self.input_names if n not in named]
            extra = [n for n in named if n not in self._input_shapes]
            if missing or extra:
                raise InvalidArgumentError(
                    f"Model {self.name!r} takes inputs {list(self.input_names)}; "
                    f"missing {missing}, unexpected {extra}."
                )
        else:
            raise InvalidDTypeError(
                f"inputs must be a numpy array or a dict of arrays, got {type(inputs).__name__}."
            )

        feeds: dict[str, np.ndarray] = {}
        for name in self.input_names:
            array = named[name]
            if not isinstance(array, np.ndarray):
                raise InvalidDTypeError(f"Input {name!r} must be a numpy array, got {type(array).__name__}.")
            expected_dtype = self._input_dtypes[name]
            if expected_dtype is not None and array.dtype != expected_dtype:
                raise InvalidDTypeError(
                    f"Input {name!r} of model {self.name!r} must be {expected_dtype}, got {array.dtype} "
                    f"(convert with array.astype(np.{expected_dtype}))."
                )
            declared = self._input_shapes[name]
            if array.ndim != len(declared) or any(
                want is not None and got != want and not (axis == 0 and got == 0)
                for axis, (got, want) in enumerate(zip(array.shape, declared))
            ):
                raise InvalidArgumentError(
                    f"Input {name!r} of model {self.name!r} has shape {array.shape}; the model expects "
                    f"{_describe_shape(declared)}."
                )
            feeds[name] = np.ascontiguousarray(array)
        return feeds

    def _empty_outputs(self) -> dict[str, np.ndarray]:
        """Zero-batch results: dims the model fixes keep their size, unknown ones become 0
        (they cannot be known without running the model, and the arrays are empty anyway)."""
        outputs = {}
        for name, shape in self._output_shapes.items():
            dims = [0] + [d if d is not None else 0 for d in shape[1:]]
            outputs[name] = np.zeros(dims, dtype=self._output_dtypes[name] or np.float32)
        return outputs

    # ------------------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Release the backend's session / compiled model. Idempotent."""
        with self._lock:
            self._closed = True
            for attr in ("_session", "_request", "_compiled"):
                if hasattr(self, attr):
                    delattr(self, attr)

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Runner({self.name!r}, backend={self.backend!r}, threads={self.threads}, "
            f"precision={self.precision!r}{', closed' if self._closed else ''})"
        )


_arena_lock = threading.Lock()
_arena_registered = False


def _register_shared_arena(ort: Any) -> None:
    """Register (once per process) the CPU arena every edgeface ONNX Runtime session allocates from."""
    global _arena_registered
    with _arena_lock:
        if _arena_registered:
            return
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        # max_mem 0 = no cap; extend strategy 1 = kSameAsRequested; -1 = ORT's defaults.
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))
        _arena_registered = True


def _resolve_threads(threads: int | None) -> int:
    if threads is None:
        return physical_cores()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise InvalidDTypeError(f"threads must be an int or None, got {type(threads).__name__}.")
    if threads < 1:
        raise InvalidArgumentError(f"threads must be >= 1, got {threads}.")
    # More threads than usable CPUs only time-slice against each other.
    return min(int(threads), len(_allowed_cpus()))


_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
}


def _ort_shape(shape: list[Any]) -> tuple[int | None, ...]:
    """ORT reports dynamic dims as None or a symbolic name; keep only fixed positive sizes."""
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


_core: Any = None
_core_lock = threading.Lock()


def _openvino_core() -> Any:
    """One shared ``openvino.Core``: creating it loads the plugins, which costs time per Runner."""
    global _core
    with _core_lock:
        if _core is None:
            _core = import_openvino().Core()
        return _core


def import_openvino() -> Any:
    """Import OpenVINO with its usage telemetry declined, so nothing is sent and nothing is written.

    ``import openvino`` imports ``openvino.tools.ovc``, which starts openvino-telemetry: a DNS query
    for Google Analytics and files under ``~/intel``. Its documented opt-out, ``opt_in_out --opt_out``,
    itself writes ``~/intel/openvino_telemetry``. The other opt-out the library supports is the one
    OpenVINO's import uses (``disable_in_ci=True``): consent is declined when ``CI=true``. edgeface
    sets that for the duration of the first import only (callers hold ``_core_lock``), and the
    declined consent holds for the process: edgeface never calls OpenVINO's model converter, the
    only other place that sends telemetry.
    """
    import sys

    if "openvino" in sys.modules:
        import openvino

        return openvino
    previous = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        import openvino
    finally:
        if previous is None:
            del os.environ["CI"]
        else:
            os.environ["CI"] = previous
    return openvino


def _ov_name(port: Any, index: int, kind: str) -> str:
    names = port.get_names()
    return port.get_any_name() if names else f"{kind}{index}"


def _ov_shape(port: Any) -> tuple[int | None, ...]:
    shape = port.get_partial_shape()
    return tuple(d.get_length() if d.is_static else None for d in shape)


def _ov_dtype(port: Any) -> np.dtype | None:
    try:
        return np.dtype(port.get_element_type().to_dtype())
    except (RuntimeError, TypeError, ValueError):
        return None


def _describe_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")" + (
        " (? = any size)" if None in shape else ""
    )
