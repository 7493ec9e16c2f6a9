"""Static INT8 quantization of edgeface's ONNX models: the one quantizer behind ``edgeface models import``,
``tools/quantize.py`` (dlib ResNet) and the MTCNN INT8 trial of ``tools/convert_mtcnn.py``.

ONNX Runtime's QDQ format (per-channel S8 weights, U8 activations): ONNX Runtime fuses DQ→Conv→Q into
QLinearConv and OpenVINO reads the same Q/DQ pairs as FakeQuantize, so one file serves both backends.
Quantizing is split in two steps so that a result can be reproduced without the calibration photos:
``calibrate`` measures the activation ranges (a few hundred floats, no weights) and ``quantize`` turns a
model plus those ranges into bytes. The same fp32 file and the same ranges always give the same bytes
(with the same onnxruntime version), which is how an imported model can carry thresholds calibrated
on LFW elsewhere. Needs ``onnx`` besides onnxruntime: ``pip install 'edgeface[convert]'``.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from .errors import ModelError
from .storage import write_atomic

METHODS = ("minmax", "percentile", "entropy")
Ranges = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize. ``op_types`` None quantizes every op ONNX Runtime can (its QDQ registry)."""

    method: str = "minmax"
    op_types: Optional[tuple[str, ...]] = None
    per_channel: bool = True
    percentile: float = 99.999
    # Nodes left in float (by name): the layers too sensitive for 8 bits.
    exclude: tuple[str, ...] = ()

    def describe(self) -> str:
        ops = "all quantizable ops" if self.op_types is None else "+".join(self.op_types)
        extra = f" {self.percentile}" if self.method == "percentile" else ""
        kept = f", float: {', '.join(self.exclude)}" if self.exclude else ""
        return (f"onnxruntime QDQ, {'per-channel' if self.per_channel else 'per-tensor'} S8 weights, U8 activations, "
                f"{ops}, calibration {self.method}{extra}{kept}")


def _ort_quant() -> Any:
    try:
        from onnxruntime import quantization
        from onnxruntime.quantization import calibrate, qdq_quantizer, quant_utils, shape_inference
    except ImportError as exc:
        raise ModelError(f"quantizing needs onnxruntime's quantization tools and onnx: pip install 'edgeface[convert]' ({exc})") from exc
    return quantization, calibrate, qdq_quantizer, quant_utils, shape_inference


def _method(name: str) -> Any:
    if name not in METHODS:
        raise ModelError(f"calibration method must be one of {METHODS}, got {name!r}")
    quantization = _ort_quant()[0]
    return {"minmax": quantization.CalibrationMethod.MinMax, "percentile": quantization.CalibrationMethod.Percentile,
            "entropy": quantization.CalibrationMethod.Entropy}[name]


def _op_types(config: QuantConfig) -> list[str]:
    if config.op_types is not None:
        return list(config.op_types)
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def _preprocess(fp32: Path, out: Path) -> None:
    # Shape inference + ORT's basic fusions, as onnxruntime recommends before quantizing.
    _ort_quant()[4].quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def calibrate(fp32: Path, batches: Iterable[Mapping[str, np.ndarray]], config: QuantConfig = QuantConfig()) -> Ranges:
    """Activation ranges of ``fp32`` over the calibration ``batches`` (feeds {input name: array}).

    Feed batches of one sample: the histogram methods stack per-batch outputs and need equal shapes.
    """
    quantization, calib, *_ = _ort_quant()
    items = iter(batches)

    class Reader(quantization.CalibrationDataReader):
        def get_next(self) -> Optional[dict[str, np.ndarray]]:
            item = next(items, None)
            return None if item is None else dict(item)

    extra: dict[str, Any] = {"moving_average": False}
    if config.method == "percentile":
        extra["percentile"] = config.percentile
    with tempfile.TemporaryDirectory(prefix="edgeface-calib-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _preprocess(Path(fp32), pre)
        calibrator = calib.create_calibrator(pre, _op_types(config), augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                             calibrate_method=_method(config.method), extra_options=extra)
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
        del calibrator
    ranges = {}
    for name, value in data.items():
        low, high = value.range_value
        ranges[name] = (float(np.asarray(low).reshape(-1)[0]), float(np.asarray(high).reshape(-1)[0]))
    if not ranges:
        raise ModelError(f"calibration of {fp32} produced no activation ranges (no quantizable ops?)")
    return dict(sorted(ranges.items()))


def quantize(fp32: Path, out: Path, ranges: Mapping[str, Sequence[float]], config: QuantConfig = QuantConfig()) -> bytes:
    """Quantize ``fp32`` with the given activation ``ranges``; returns the model bytes (also written to
    ``out`` when it is not None, atomically)."""
    quantization, calib, qdq, quant_utils, _ = _ort_quant()
    tensors = calib.TensorsData(quantization.CalibrationMethod.MinMax,
                                {k: (np.float32(v[0]), np.float32(v[1])) for k, v in ranges.items()})
    with tempfile.TemporaryDirectory(prefix="edgeface-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _preprocess(Path(fp32), pre)
        model = quant_utils.load_model_with_shape_infer(pre)
        quantizer = qdq.QDQQuantizer(model, config.per_channel, False, quantization.QuantType.QInt8,
                                     quantization.QuantType.QUInt8, tensors, [], list(config.exclude),
                                     _op_types(config), {})
        quantizer.quantize_model()
        q = Path(tmp) / "q.onnx"
        quantizer.model.save_model_to_file(str(q), False)
        blob = q.read_bytes()
    if out is not None:
        write_atomic(Path(out), blob)
    return blob


def quantize_static(fp32: Path, out: Optional[Path], batches: Iterable[Mapping[str, np.ndarray]],
                    config: QuantConfig = QuantConfig()) -> tuple[bytes, Ranges]:
    """``calibrate`` then ``quantize``: the usual one-shot call. Returns (model bytes, ranges)."""
    ranges = calibrate(fp32, batches, config)
    return quantize(fp32, out, ranges, config), ranges
