"""Face detectors behind one interface.

Every detector is one module of this package that defines a class with the ``FaceDetector``
protocol (``detect(image, color) -> Detections``, ``close()``, context manager) and its own frozen
config dataclass (the class's ``config_type``); ``DETECTORS`` maps the public name to it. ``create_detector`` builds one by name.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Optional, Protocol, Union, runtime_checkable

from ..errors import InvalidArgumentError, InvalidDTypeError
from ..faces import Detections
from ..image_io import ImageLike
from .centerface import CenterFace, CenterFaceConfig
from .mtcnn import MTCNN, MTCNNConfig
from .yunet import YuNet, YuNetConfig


@runtime_checkable
class FaceDetector(Protocol):
    """What FaceAnalyzer, the module functions and the CLI need from a detector."""

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


# Public name -> detector class. A new detector is one module here plus one line in this table.
DETECTORS: dict[str, type] = {
    "centerface": CenterFace,
    "mtcnn": MTCNN,
    "yunet": YuNet,
}
# Chosen by measurement (docs/detectors.md): YuNet with O-Net landmarks runs the pipeline 3x faster
# than MTCNN (640x480, ONNX Runtime), finds more faces (AP 76.6 vs 67.4 % on ../shared/data/detection)
# and verifies as well on LFW (dlib fp32 98.60 vs 98.57 %, INT8 98.57 vs 98.73 %, within a fold's std).
DEFAULT_DETECTOR = "yunet"
# Public name -> the config dataclass its keyword options go to (checked before building the detector).
DETECTOR_CONFIGS: dict[str, type] = {name: cls.config_type for name, cls in DETECTORS.items()}

# 0.x names, kept so existing code keeps working.
Detector = MTCNN
DetectorConfig = MTCNNConfig


def create_detector(detector: Union[str, FaceDetector, None] = None, backend: Optional[str] = None,
                    threads: Optional[int] = None, **options: Any) -> FaceDetector:
    """A detector by name (``options`` go to its config), or ``detector`` itself if it is an instance."""
    if detector is None:
        detector = DEFAULT_DETECTOR
    if isinstance(detector, str):
        name = detector.strip().lower()
        cls = DETECTORS.get(name)
        if cls is None:
            raise InvalidArgumentError(
                f"Unknown detector {detector!r}; choose one of: {', '.join(sorted(DETECTORS))}."
            )
        _check_options(name, options)
        return cls(backend=backend, threads=threads, **options)
    if isinstance(detector, FaceDetector):
        if options:
            raise InvalidArgumentError(
                f"Detector options {sorted(options)} apply to a detector created by name, not to an instance."
            )
        return detector
    raise InvalidArgumentError(
        f"detector must be a name ({', '.join(sorted(DETECTORS))}) or a detector instance, "
        f"got {type(detector).__name__}."
    )


def detector_name(detector: FaceDetector) -> Optional[str]:
    """The registered name of a detector instance's class ("mtcnn", ...), None for other classes."""
    return next((name for name, cls in DETECTORS.items() if type(detector) is cls), None)


def _check_options(name: str, options: dict[str, Any]) -> None:
    """Unknown option names, and values of the wrong kind, raise typed errors naming the valid options."""
    defaults = {f.name: f.default for f in dataclasses.fields(DETECTOR_CONFIGS[name])}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise InvalidArgumentError(
            f"Unknown option(s) {', '.join(unknown)} for detector {name!r}; its options are: "
            f"{', '.join(sorted(defaults))}."
        )
    for key, value in options.items():
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise InvalidDTypeError(f"Detector option {key} must be True or False, got {value!r}.")
            continue
        if isinstance(default, numbers.Real) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise InvalidDTypeError(f"Detector option {key} must be a number, got {type(value).__name__}.")
        if isinstance(default, tuple) and not (
                isinstance(value, (tuple, list)) and all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
            raise InvalidDTypeError(
                f"Detector option {key} must be a tuple of {len(default)} numbers, got {value!r}."
            )


__all__ = ["CenterFace", "CenterFaceConfig", "DEFAULT_DETECTOR", "DETECTORS", "Detector", "DetectorConfig",
           "FaceDetector", "MTCNN", "MTCNNConfig", "YuNet", "YuNetConfig", "create_detector", "detector_name"]
