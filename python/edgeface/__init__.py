"""edgeface: detect, align, embed and match faces on a CPU, offline.

Quick start::

    import edgeface
    faces = edgeface.detect("photo.jpg")              # boxes, scores, 5 landmarks
    vectors = edgeface.embed("photo.jpg", faces)      # unit-length embeddings
    with edgeface.FaceAnalyzer(gallery="people.db") as fa:
        for face in fa.analyze("frame.jpg"):
            print(face.identity.name or "unknown")
"""
from __future__ import annotations

from typing import Any

from .errors import (
    BackendError,
    ClosedError,
    EdgefaceError,
    GalleryError,
    GalleryFormatError,
    GalleryModelMismatchError,
    ImageDecodeError,
    ImageError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidDTypeError,
    ModelError,
    ModelIntegrityError,
    PersonNotFoundError,
    UnsupportedImageFormatError,
)

__version__ = "0.1.0"

# Heavy parts (the C++ core, ONNX Runtime) load on first use, so `import edgeface` stays cheap and
# the error classes are usable without them.
_LAZY = {
    "FaceAnalyzer": "analyzer", "FrameResult": "analyzer", "AnalyzedFace": "analyzer",
    "Detector": "detection", "DetectorConfig": "detection",
    "Embedder": "embedding",
    "Face": "faces", "Detections": "faces",
    "Gallery": "gallery", "Identity": "gallery", "Candidate": "gallery", "Person": "gallery",
    "cosine_similarity": "matching", "verify": "matching", "threshold_for": "matching", "Verification": "matching",
    "detect": "api", "align": "api", "embed": "api", "match": "api",
    "load_image": "image_io",
    "get_model": "models", "list_models": "models",
    "cluster": "clustering",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeface' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = [
    "BackendError", "ClosedError", "EdgefaceError", "GalleryError", "GalleryFormatError", "GalleryModelMismatchError",
    "ImageDecodeError", "ImageError", "ImageTooLargeError", "InvalidArgumentError", "InvalidDTypeError", "ModelError",
    "ModelIntegrityError", "PersonNotFoundError", "UnsupportedImageFormatError", "__version__", *_LAZY,
]
