"""edgeface: detect, align, embed and match faces on a CPU, offline."""
from __future__ import annotations

from .errors import (
    BackendError,
    EdgefaceError,
    GalleryError,
    GalleryFormatError,
    GalleryModelMismatchError,
    ImageDecodeError,
    ImageError,
    InvalidArgumentError,
    InvalidDTypeError,
    ModelError,
    ModelIntegrityError,
    PersonNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "EdgefaceError",
    "GalleryError",
    "GalleryFormatError",
    "GalleryModelMismatchError",
    "ImageDecodeError",
    "ImageError",
    "InvalidArgumentError",
    "InvalidDTypeError",
    "ModelError",
    "ModelIntegrityError",
    "PersonNotFoundError",
    "__version__",
]
