"""Module-level shortcuts (``edgeface.detect(img)`` ...) backed by lazily created, shared default models.

For control over backend, threads or models, create ``FaceAnalyzer``/``Detector``/``Embedder`` yourself.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Optional, Union

import numpy as np

from .alignment import align as _align
from .detection import FaceDetector, create_detector
from .embedding import Embedder
from .errors import InvalidArgumentError
from .faces import Detections
from .image_io import ImageLike, check_color, load_image
from .matching import cosine_similarity

_lock = threading.Lock()


@lru_cache(maxsize=None)
def _detector(name: Optional[str]) -> FaceDetector:
    return create_detector(name)


@lru_cache(maxsize=None)
def _embedder(model: Optional[str]) -> Embedder:
    return Embedder(model)


def detect(image: ImageLike, color: str = "bgr", detector: Optional[str] = None) -> Detections:
    """Faces (boxes, scores, 5 landmarks) in ``image``; ``detector`` is a name from
    ``edgeface.detection.DETECTORS`` with its default settings (default: ``DEFAULT_DETECTOR``)."""
    if detector is not None and not isinstance(detector, str):
        raise InvalidArgumentError("detector must be a detector name; use the instance's own detect() instead")
    with _lock:
        instance = _detector(detector.strip().lower() if detector else None)
    return instance.detect(image, color)


def align(image: ImageLike, faces: Union[Detections, np.ndarray], model: Optional[str] = None,
          color: str = "bgr") -> np.ndarray:
    """Crops of ``faces`` aligned to the template of embedding model ``model`` (default embedder)."""
    with _lock:
        embedder = _embedder(model)
    return _align(load_image(image, check_color(color)), faces, embedder.spec)


def embed(image: ImageLike, faces: Union[Detections, np.ndarray, None] = None, model: Optional[str] = None,
          color: str = "bgr", detector: Optional[str] = None) -> np.ndarray:
    """Unit-length embeddings of ``faces`` in ``image`` (all faces ``detector`` finds when ``faces`` is None)."""
    order = check_color(color)
    img = load_image(image, order)
    if faces is None:
        faces = detect(img, order, detector)
    with _lock:
        embedder = _embedder(model)
    return embedder.embed(img, faces, order)


def match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity between embeddings: (N, D) × (M, D) → (N, M)."""
    return cosine_similarity(a, b)
