"""Turning what users hand us (arrays, paths, bytes, PIL images) into a validated uint8 H×W×3 array."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from .errors import ImageDecodeError, ImageError, InvalidArgumentError, InvalidDTypeError

# Caps decode-time allocations too: OpenCV reads this variable when it is first imported.
MAX_PIXELS = 1 << 28
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
import cv2  # noqa: E402

ColorOrder = Literal["bgr", "rgb"]
ImageLike = Union[np.ndarray, str, os.PathLike, bytes, bytearray, memoryview, Any]

MAX_SIDE = 32768


def check_color(color: str) -> ColorOrder:
    lowered = str(color).lower()
    if lowered not in ("bgr", "rgb"):
        raise InvalidArgumentError(f"color must be 'bgr' or 'rgb', got {color!r}")
    return lowered  # type: ignore[return-value]


def validate_array(image: np.ndarray) -> np.ndarray:
    """Check an in-memory image: uint8, H×W×3, non-empty, not enormous. Returns it unchanged."""
    if not isinstance(image, np.ndarray):
        raise InvalidDTypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidDTypeError(
            f"image must be uint8 (0..255), got {image.dtype}; convert with "
            "np.clip(img, 0, 255).astype(np.uint8) if it is a float image in that range"
        )
    if image.ndim == 2:
        raise ImageError(
            f"image is grayscale {image.shape}; pass a 3-channel image, e.g. "
            "cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)"
        )
    if image.ndim != 3 or image.shape[2] not in (3,):
        hint = " (RGBA/BGRA: drop alpha with img[..., :3])" if image.ndim == 3 and image.shape[2] == 4 else ""
        raise ImageError(f"image must have shape (H, W, 3), got {image.shape}{hint}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ImageError(f"image is empty: shape {image.shape}")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ImageError(f"image {w}x{h} is too large (max side {MAX_SIDE}, max {MAX_PIXELS} pixels)")
    return image


def decode_image(data: bytes | bytearray | memoryview, color: ColorOrder = "bgr") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to uint8 H×W×3 in the requested channel order."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageDecodeError("image data is empty")
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError("image data could not be decoded (corrupt, truncated or unsupported format)")
    validate_array(image)
    return image[:, :, ::-1].copy() if color == "rgb" else image


def read_image(path: str | os.PathLike, color: ColorOrder = "bgr") -> np.ndarray:
    """Read an image file; grayscale and RGBA files are converted to 3 channels (as any viewer would)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(f"image file not found: {p}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"expected an image file, got a directory: {p}") from None
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image file {p}: {exc}") from exc
    try:
        return decode_image(data, color)
    except ImageError as exc:
        raise type(exc)(f"{p}: {exc}") from None


def load_image(source: ImageLike, color: str = "bgr") -> np.ndarray:
    """Any supported image source → validated uint8 H×W×3 array in the given channel order.

    Arrays are taken as they are (their channel order is what ``color`` says); paths and bytes are
    decoded into ``color`` order; PIL images (always RGB) are converted to ``color`` order.
    """
    order = check_color(color)
    if isinstance(source, np.ndarray):
        return validate_array(source)
    if isinstance(source, (str, os.PathLike)):
        return read_image(source, order)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(source, order)
    if type(source).__module__.startswith("PIL."):
        rgb = np.asarray(source.convert("RGB"))
        validate_array(rgb)
        return np.ascontiguousarray(rgb[:, :, ::-1]) if order == "bgr" else rgb
    raise InvalidDTypeError(
        f"unsupported image type {type(source).__name__}: pass a uint8 numpy array, a path, bytes or a PIL image"
    )


def _file_mode() -> int:
    """Mode of a new file under this process's umask (mkstemp creates 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_image_atomic(path: str | os.PathLike, image: np.ndarray, overwrite: bool = True) -> None:
    """Encode by extension and write atomically: readers never see half a file.

    The bytes go to a new temporary file in the target folder (``mkstemp``: O_EXCL, so a planted
    symlink is never followed), then take the target's name in one step: ``os.replace`` (which
    replaces a symlink at the target rather than writing through it) or, with ``overwrite=False``,
    a hard link that fails if the target exists.
    """
    p = Path(path)
    ok, encoded = cv2.imencode(p.suffix or ".jpg", image)
    if not ok:
        raise InvalidArgumentError(f"cannot encode image as {p.suffix!r}")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())
            f.write(encoded.tobytes())
        if overwrite:
            os.replace(tmp, p)
            return
        try:
            os.link(tmp, p, follow_symlinks=False)
        except FileExistsError:
            raise InvalidArgumentError(f"{p} already exists; not overwriting it") from None
        except OSError:  # no hard links here (e.g. FAT on an SD card): check, then rename
            if os.path.lexists(p):
                raise InvalidArgumentError(f"{p} already exists; not overwriting it") from None
            os.replace(tmp, p)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
