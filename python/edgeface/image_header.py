"""Image size from the first bytes of an encoded file, so oversized images are refused before decoding.

Covers the formats edgeface decodes: JPEG, PNG, BMP, WebP, TIFF and PNM (PBM/PGM/PPM). Each parser
reads a few fixed fields (JPEG scans its marker segments up to the frame header, TIFF reads its first
image directory); none decodes pixel data.
"""
from __future__ import annotations

import struct
from typing import Optional

from .errors import ImageDecodeError, UnsupportedImageFormatError

SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "WebP", "TIFF", "PNM")

# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MAX_STEPS = 65536
# Markers without a length field (TEM, RSTn, SOI, EOI).
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` read from the header of encoded image ``data``.

    Raises ``UnsupportedImageFormatError`` for other formats and ``ImageDecodeError`` for a header
    that is truncated or inconsistent.
    """
    for fmt, parse in _PARSERS:
        size = parse(data)
        if size is not None:
            width, height = size
            if width <= 0 or height <= 0:
                raise ImageDecodeError(f"{fmt} header gives an empty image ({width}x{height})")
            return fmt, width, height
    raise UnsupportedImageFormatError(
        f"not a supported image format (supported: {', '.join(SUPPORTED_FORMATS)}); "
        "convert the image to JPEG or PNG"
    )


def _truncated(fmt: str) -> ImageDecodeError:
    return ImageDecodeError(f"{fmt} header is truncated or corrupt")


def _png(data: bytes) -> Optional[tuple[int, int]]:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise _truncated("PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> Optional[tuple[int, int]]:
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    # Real files have a few dozen segments (EXIF, ICC chunks, tables) before the frame header; the cap
    # bounds the scan of a hostile file made of tiny segments or fill bytes.
    for _ in range(_JPEG_MAX_STEPS):
        if pos + 4 > len(data):
            break
        if data[pos] != 0xFF:
            raise _truncated("JPEG")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:  # end of image before any frame header
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            raise _truncated("JPEG")
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    raise _truncated("JPEG")


def _bmp(data: bytes) -> Optional[tuple[int, int]]:
    if not data.startswith(b"BM"):
        return None
    if len(data) < 26:
        raise _truncated("BMP")
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)  # negative height: rows stored top-down


def _webp(data: bytes) -> Optional[tuple[int, int]]:
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return None
    if len(data) < 30:
        raise _truncated("WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit (size - 1) fields after the signature byte
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _truncated("WebP")


def _tiff(data: bytes) -> Optional[tuple[int, int]]:
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (entries,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        size: dict[int, int] = {}
        for i in range(entries):
            tag, kind, _count = struct.unpack(order + "HHI", data[ifd + 2 + 12 * i:ifd + 10 + 12 * i])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
                field = data[ifd + 10 + 12 * i:ifd + 14 + 12 * i]
                size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), field[:2 if kind == 3 else 4])[0]
    except struct.error:
        raise _truncated("TIFF") from None
    if 256 not in size or 257 not in size:
        raise _truncated("TIFF")
    return size[256], size[257]


def _pnm(data: bytes) -> Optional[tuple[int, int]]:
    if len(data) < 2 or data[0:1] != b"P" or data[1:2] not in b"123456":
        return None
    numbers: list[int] = []
    pos = 2
    head = data[:1024]  # width and height come within the first line or two (plus comments)
    while len(numbers) < 2 and pos < len(head):
        ch = head[pos:pos + 1]
        if ch == b"#":
            end = head.find(b"\n", pos)
            pos = len(head) if end < 0 else end + 1
        elif ch.isspace():
            pos += 1
        elif ch.isdigit():
            end = pos
            while end < len(head) and head[end:end + 1].isdigit():
                end += 1
            numbers.append(int(head[pos:end]))
            pos = end
        else:
            break
    if len(numbers) < 2:
        raise _truncated("PNM")
    return numbers[0], numbers[1]


_PARSERS = (("PNG", _png), ("JPEG", _jpeg), ("BMP", _bmp), ("WebP", _webp), ("TIFF", _tiff), ("PNM", _pnm))
