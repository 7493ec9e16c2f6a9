"""The exceptions edgeface raises. Every error is an ``EdgefaceError``; the ones about bad
arguments are also ``ValueError``/``TypeError`` so generic handlers keep working."""
from __future__ import annotations


class EdgefaceError(Exception):
    """Base class of every error raised by edgeface."""


class InvalidArgumentError(EdgefaceError, ValueError):
    """An argument has the wrong shape, size or value."""


class InvalidDTypeError(EdgefaceError, TypeError):
    """An array has the wrong dtype, or an argument the wrong type."""


class ImageError(EdgefaceError, ValueError):
    """An image is empty, too large, or has an unsupported shape or channel count."""


class ImageDecodeError(ImageError):
    """An image file or buffer could not be read or decoded."""


class ImageTooLargeError(ImageError):
    """An image file, buffer or decoded size is over edgeface's limits (see docs/limits.md)."""


class UnsupportedImageFormatError(ImageDecodeError):
    """The data is not in a format whose size edgeface can check before decoding (JPEG, PNG, BMP, WebP, TIFF, PNM)."""


class ModelError(EdgefaceError):
    """A model is missing, unknown, or cannot be loaded."""


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 recorded in the manifest."""


class BackendError(EdgefaceError):
    """The inference backend is unknown, not installed, or failed."""


class ClosedError(BackendError):
    """An analyzer, detector, embedder or runner was used after ``close()``. (A BackendError so code
    that caught the runner's old "closed" BackendError keeps working.)"""


class GalleryError(EdgefaceError):
    """A gallery file is unusable."""


class GalleryFormatError(GalleryError):
    """The file is not an edgeface gallery (or is corrupt)."""


class GalleryModelMismatchError(GalleryError):
    """The gallery was built with a different embedding model."""


class PersonNotFoundError(GalleryError, KeyError):
    """The named person is not enrolled in the gallery."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
