"""The one-call API: ``FaceAnalyzer(...).analyze(image)`` detects, aligns, embeds and (with a gallery) identifies."""
from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Real
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np

from . import _core
from .alignment import landmarks_array
from .detection import FaceDetector, create_detector, detector_name
from .embedding import Embedder
from .errors import ClosedError, InvalidArgumentError, ModelError
from .faces import Detections, Face
from .gallery import Fusion, Gallery, Identity
from .image_io import ImageLike, check_color, load_image
from .matching import DEFAULT_OPERATING_POINT, Verification, threshold_for, verify
from .quality import DEFAULT_MIN_QUALITY, FaceQuality, Qualities, assess


@dataclass(frozen=True)
class AnalyzedFace:
    face: Face
    embedding: np.ndarray  # unit-length float32 vector
    identity: Optional[Identity]  # None when no gallery is attached
    quality: Optional[FaceQuality] = None

    def to_dict(self) -> dict[str, Any]:
        out = self.face.to_dict()
        if self.quality is not None:
            out["quality"] = round(self.quality.score, 4)
        if self.identity is not None:
            out["identity"] = self.identity.name
            out["similarity"] = round(self.identity.score, 5)
        return out


@dataclass(frozen=True)
class FrameResult:
    """Everything found in one image; ``embeddings[i]`` belongs to ``detections[i]``."""

    detections: Detections
    embeddings: np.ndarray
    identities: Optional[tuple[Identity, ...]]
    qualities: Optional[Qualities] = None  # per face, see edgeface.quality

    def __len__(self) -> int:
        return len(self.detections)

    def __iter__(self) -> Iterator[AnalyzedFace]:
        for i, face in enumerate(self.detections):
            yield AnalyzedFace(face, self.embeddings[i], self.identities[i] if self.identities else None,
                               self.qualities[i] if self.qualities is not None else None)

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self]


class FaceAnalyzer:
    """Detector + embedder (+ optional gallery) sharing one backend and thread setting.

    ``backend``: "onnxruntime" (default) or "openvino" (or env EDGEFACE_BACKEND); ``threads``: default
    physical cores. ``detector`` is a name from ``edgeface.detection.DETECTORS`` or a detector instance;
    the remaining keyword options go to the named detector's config (e.g. ``min_face_size``, or YuNet's ``rotations``). ``operating_point`` picks the calibrated threshold used to call a face "unknown".
    ``min_quality``: detections whose quality score (``edgeface.quality``) is below it are dropped
    before embedding, as not usable faces (background boxes, tiny, blurred or profile faces); 0 keeps all.
    """

    def __init__(self, backend: Optional[str] = None, threads: Optional[int] = None,
                 embedder: Optional[str] = None, gallery: Union[Gallery, str, os.PathLike, None] = None,
                 operating_point: str = DEFAULT_OPERATING_POINT, fusion: Fusion = "max",
                 detector: Union[str, FaceDetector, None] = None, min_quality: float = DEFAULT_MIN_QUALITY,
                 **detector_options: Any) -> None:
        if isinstance(min_quality, bool) or not isinstance(min_quality, Real) or not 0.0 <= min_quality <= 1.0:
            raise InvalidArgumentError(f"min_quality must be a number in [0, 1], got {min_quality!r}")
        self.min_quality = float(min_quality)
        self._closed = False
        self.detector = create_detector(detector, backend, threads, **detector_options)
        self.embedder = Embedder(embedder, backend, threads)
        # A detector instance of an unregistered class has no name: its user vouches for the threshold.
        self.threshold = threshold_for(self.embedder.spec, operating_point, detector_name(self.detector))
        self.gallery: Optional[Gallery] = None
        if gallery is not None:
            self.gallery = gallery if isinstance(gallery, Gallery) else self.open_gallery(gallery, fusion=fusion)

    def open_gallery(self, path: Union[str, os.PathLike], fusion: Fusion = "max", create: bool = True) -> Gallery:
        """Open (or create) a gallery file bound to this analyzer's embedding model."""
        spec = self.embedder.spec
        return Gallery(path, spec.embedding_space, self.embedder.dim, fusion=fusion, create=create, model=spec.name)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this FaceAnalyzer is closed; create a new one (or use it inside its `with` block)")

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections:
        self._check_open()
        return self.detector.detect(image, color)

    def usable_faces(self, img: np.ndarray, detections: Detections) -> tuple[Detections, Qualities, np.ndarray]:
        """Align every detection of ``img`` (a loaded uint8 array) once, score its quality, and keep those
        reaching ``min_quality``: the kept detections, their qualities and their aligned crops."""
        spec = self.embedder.spec
        if spec.alignment is None:
            raise ModelError(f"model {spec.name!r} has no alignment template in the manifest")
        out_h, out_w = spec.input.size
        template = np.ascontiguousarray(spec.alignment, np.float32)
        if len(detections):
            crops, matrices = _core.align_faces(img, landmarks_array(detections), template, out_h, out_w)
        else:
            crops, matrices = np.zeros((0, out_h, out_w, 3), np.uint8), np.zeros((0, 2, 3))
        # The quality's detection factor is calibrated on MTCNN's probabilities; other detectors map theirs.
        to_probability = getattr(self.detector, "face_probability", None)
        probability = detections.scores if to_probability is None else to_probability(detections.scores)
        qualities = assess(probability, detections.landmarks, crops, matrices, template)
        keep = qualities.score >= self.min_quality
        return detections[keep], qualities.select(keep), crops[keep]

    def analyze(self, image: ImageLike, color: str = "bgr") -> FrameResult:
        self._check_open()
        order = check_color(color)
        img = load_image(image, order)
        detections, qualities, crops = self.usable_faces(img, self.detector.detect(img, order))
        embeddings = self.embedder.embed_aligned(crops, order)
        identities = None
        if self.gallery is not None:
            identities = tuple(self.gallery.identify(embeddings, self.threshold)) if len(embeddings) else ()
        return FrameResult(detections, embeddings, identities, qualities)

    def stream(self, frames: Iterable[ImageLike], color: str = "bgr") -> Iterator[FrameResult]:
        """Analyze frames one by one (e.g. from cv2.VideoCapture); keeps no per-frame state.

        ``frames`` is checked here, before the first frame is asked for."""
        if (frames is None or isinstance(frames, (str, bytes, bytearray, os.PathLike))
                or (isinstance(frames, np.ndarray) and frames.ndim != 4) or not isinstance(frames, Iterable)):
            raise InvalidArgumentError(
                f"frames must be an iterable of images (a list, a generator, an (N, H, W, 3) array), got "
                f"{type(frames).__name__}; for a single image call analyze()"
            )
        self._check_open()
        check_color(color)
        return (self.analyze(frame, color) for frame in frames)

    def analyze_largest(self, image: ImageLike, color: str = "bgr") -> Optional[AnalyzedFace]:
        """The largest usable face of ``image`` with its embedding and quality (no identification),
        or None; for enrollment: ``edgeface.quality.check_enrollment(result.quality)``."""
        self._check_open()
        order = check_color(color)
        img = load_image(image, order)
        detections, qualities, crops = self.usable_faces(img, self.detector.detect(img, order))
        if len(detections) == 0:
            return None
        areas = (detections.boxes[:, 2] - detections.boxes[:, 0]) * (detections.boxes[:, 3] - detections.boxes[:, 1])
        i = int(np.argmax(areas))
        return AnalyzedFace(detections[i], self.embedder.embed_aligned(crops[i:i + 1], order)[0], None, qualities[i])

    def embed_largest(self, image: ImageLike, color: str = "bgr") -> tuple[Optional[Face], Optional[np.ndarray]]:
        """Embedding of the largest usable face in ``image`` (for enrollment and 1:1 checks), or (None, None)."""
        found = self.analyze_largest(image, color)
        return (None, None) if found is None else (found.face, found.embedding)

    def verify(self, image_a: ImageLike, image_b: ImageLike, color: str = "bgr") -> Optional[Verification]:
        """1:1: are the largest faces of the two images the same person? None if a face is missing."""
        _, a = self.embed_largest(image_a, color)
        _, b = self.embed_largest(image_b, color)
        if a is None or b is None:
            return None
        return verify(a, b, self.threshold)

    def close(self) -> None:
        self._closed = True
        self.detector.close()
        self.embedder.close()
        if self.gallery is not None:
            self.gallery.close()

    def __enter__(self) -> "FaceAnalyzer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
