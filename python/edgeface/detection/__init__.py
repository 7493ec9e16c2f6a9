"""Face detectors behind one interface.

Every detector is one module of this package that defines a class with the ``FaceDetector``
protocol (``detect(image, color) -> Detections``, ``close()``, context manager) and its own frozen
config dataclass; ``DETECTORS`` maps the public name to it. ``create_detector`` builds one by name.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Union, runtime_checkable

from ..errors import InvalidArgumentError
from ..faces import Detections
from ..image_io import ImageLike
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
    "mtcnn": MTCNN,
    "yunet": YuNet,
}
DEFAULT_DETECTOR = "mtcnn"

# 0.x names, kept so existing code keeps working.
Detector = MTCNN
DetectorConfig = MTCNNConfig


def create_detector(detector: Union[str, FaceDetector, None] = None, backend: Optional[str] = None,
                    threads: Optional[int] = None, **options: Any) -> FaceDetector:
    """A detector by name (``options`` go to its config), or ``detector`` itself if it is an instance."""
    if detector is None:
        detector = DEFAULT_DETECTOR
    if isinstance(detector, str):
        cls = DETECTORS.get(detector.strip().lower())
        if cls is None:
            raise InvalidArgumentError(
                f"Unknown detector {detector!r}; choose one of: {', '.join(sorted(DETECTORS))}."
            )
        try:
            return cls(backend=backend, threads=threads, **options)
        except TypeError as exc:  # an option the detector's config does not have
            raise InvalidArgumentError(
                f"Detector {detector!r} does not take options {sorted(options)} ({exc}); see the fields of its "
                f"config class ({cls.__name__}Config)."
            ) from exc
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


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detector", "DetectorConfig", "FaceDetector", "MTCNN",
           "MTCNNConfig", "YuNet", "YuNetConfig", "create_detector", "detector_name"]
