"""Turning what users hand us (arrays, paths, bytes, PIL images) into a validated uint8 H×W×3 array.

Limits (docs/limits.md), so a bad or hostile input fails fast with a typed error instead of hanging or
exhausting memory:

* Paths must be regular files (a FIFO, a device such as ``/dev/zero`` or a socket is refused without
  reading it) of at most ``MAX_FILE_BYTES`` (128 MiB); encoded bytes have the same cap.
* Encoded images must be JPEG, PNG, BMP, WebP, TIFF or PNM. Their width and height are read from the header
  before decoding; more than ``MAX_DECODE_PIXELS`` (2**26 = 67,108,864 pixels, e.g. 8192×8192, 192 MiB
  decoded) or a side above ``MAX_SIDE`` (32768) is refused with ``ImageTooLargeError``.
* Arrays (already in memory) may have up to ``MAX_PIXELS`` (2**28) pixels and sides up to ``MAX_SIDE``.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from .errors import ImageDecodeError, ImageError, ImageTooLargeError, InvalidArgumentError, InvalidDTypeError
from .image_header import image_size

MAX_PIXELS = 1 << 28
MAX_DECODE_PIXELS = 1 << 26
MAX_FILE_BYTES = 128 << 20
# A second guard inside OpenCV's own decoders (it reads this variable when cv2 is first imported).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_DECODE_PIXELS))
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


def check_decoded_size(width: int, height: int, what: str = "image") -> None:
    """Refuse an image whose decoded size would exceed ``MAX_DECODE_PIXELS`` or ``MAX_SIDE``."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_DECODE_PIXELS:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} pixels, over the limit of {MAX_DECODE_PIXELS} pixels "
            f"(max side {MAX_SIDE}); downscale it first, e.g. to 4096 px on the long side"
        )


def decode_image(data: bytes | bytearray | memoryview, color: ColorOrder = "bgr") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, BMP, WebP, TIFF, PNM) to uint8 H×W×3 in the requested channel
    order. The size in the header is checked against ``MAX_DECODE_PIXELS`` before decoding."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageDecodeError("image data is empty")
    if buf.size > MAX_FILE_BYTES:
        raise ImageTooLargeError(
            f"image data is {buf.size} bytes, over the limit of {MAX_FILE_BYTES} bytes; "
            "re-encode it as JPEG or downscale it first"
        )
    fmt, width, height = image_size(data if isinstance(data, bytes) else buf.tobytes())
    check_decoded_size(width, height, f"{fmt} image")
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own size guard, or a decoder failure
        raise ImageDecodeError(f"{fmt} image could not be decoded: {str(exc).strip().splitlines()[-1]}") from None
    if image is None:
        raise ImageDecodeError(f"{fmt} image data could not be decoded (corrupt, truncated or unsupported variant)")
    validate_array(image)
    return image[:, :, ::-1].copy() if color == "rgb" else image


def display_path(path: str | os.PathLike) -> str:
    """``path`` as text that can be printed, even when it holds lone surrogates (undecodable bytes)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def read_file_bounded(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``. FIFOs, devices and sockets are refused
    before reading (opened non-blocking, so a FIFO without a writer cannot hang the open)."""
    p = Path(path)
    shown = display_path(p)
    try:
        os.fsencode(p)
    except UnicodeEncodeError:
        raise ImageDecodeError(
            f"image path {shown} cannot be encoded for the file system (it contains a lone surrogate); "
            "pass the path as bytes, or as the str that os.listdir returned for it"
        ) from None
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageDecodeError(f"image file not found: {shown}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"expected an image file, got a directory: {shown}") from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte
        raise ImageDecodeError(f"cannot open image file {shown}: {exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageDecodeError(f"expected an image file, got a directory: {shown}")
        if not stat.S_ISREG(info.st_mode):
            raise ImageDecodeError(f"{shown} is not a regular file (a FIFO, device or socket); pass an image file")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageTooLargeError(
                f"{shown} is {info.st_size} bytes, over the limit of {MAX_FILE_BYTES} bytes for an image file"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image file {shown}: {exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"{shown} is over the limit of {MAX_FILE_BYTES} bytes for an image file")
    return data


def read_image(path: str | os.PathLike, color: ColorOrder = "bgr") -> np.ndarray:
    """Read an image file; grayscale and RGBA files are converted to 3 channels (as any viewer would)."""
    data = read_file_bounded(path)
    try:
        return decode_image(data, color)
    except ImageError as exc:
        raise type(exc)(f"{display_path(path)}: {exc}") from None


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
        width, height = source.size
        check_decoded_size(width, height, "PIL image")
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
