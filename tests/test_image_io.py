from __future__ import annotations

import numpy as np
import pytest

import edgeface
from edgeface.image_io import load_image


def test_paths_bytes_arrays_and_pil_agree(astronaut, tmp_path):
    from conftest import EXAMPLE
    from_path = load_image(EXAMPLE)
    from_bytes = load_image(EXAMPLE.read_bytes())
    np.testing.assert_array_equal(from_path, astronaut)
    np.testing.assert_array_equal(from_bytes, astronaut)
    np.testing.assert_array_equal(load_image(EXAMPLE, color="rgb"), astronaut[:, :, ::-1])
    PIL = pytest.importorskip("PIL.Image")
    np.testing.assert_array_equal(load_image(PIL.open(EXAMPLE)), astronaut)


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.zeros((10, 10), np.uint8), edgeface.ImageError),           # grayscale
        (np.zeros((10, 10, 4), np.uint8), edgeface.ImageError),        # RGBA
        (np.zeros((10, 10, 3), np.float32), edgeface.InvalidDTypeError),
        (np.zeros((0, 10, 3), np.uint8), edgeface.ImageError),         # empty
        (np.zeros((1, 40000, 3), np.uint8), edgeface.ImageError),      # enormous side
        (b"", edgeface.ImageDecodeError),
        (b"not an image at all", edgeface.ImageDecodeError),
        ([1, 2, 3], edgeface.InvalidDTypeError),
    ],
)
def test_bad_images_raise_typed_errors(bad, error):
    with pytest.raises(error) as info:
        load_image(bad)
    assert isinstance(info.value, edgeface.EdgefaceError)


def test_corrupt_and_missing_files(tmp_path):
    from conftest import EXAMPLE
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(EXAMPLE.read_bytes()[:200])
    with pytest.raises(edgeface.ImageDecodeError, match="truncated.jpg"):
        load_image(truncated)
    with pytest.raises(edgeface.ImageDecodeError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(edgeface.ImageDecodeError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(edgeface.InvalidArgumentError):
        load_image(EXAMPLE, color="bgra")


# ---------------------------------------------------------------------- bounds (issue 12 items 12 and 14)

import os  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zlib  # noqa: E402

import cv2  # noqa: E402

from edgeface.image_header import image_size  # noqa: E402
from edgeface.image_io import MAX_DECODE_PIXELS, MAX_FILE_BYTES  # noqa: E402


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height, and a tiny IDAT (a decompression-bomb shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _load_in_subprocess(path: str, timeout: float = 60) -> subprocess.CompletedProcess:
    code = ("import sys, edgeface\n"
            "try:\n    edgeface.load_image(sys.argv[1])\nexcept edgeface.EdgefaceError as e:\n"
            "    print(type(e).__name__, e); sys.exit(0)\nsys.exit(5)\n")
    return subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    done = _load_in_subprocess(str(fifo))  # before the fix: blocked in open() until the timeout
    assert done.returncode == 0 and "ImageDecodeError" in done.stdout and "not a regular file" in done.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_refused_without_reading_it():
    done = _load_in_subprocess("/dev/zero", timeout=30)  # before the fix: read without limit
    assert done.returncode == 0 and "not a regular file" in done.stdout


def test_file_over_the_size_cap_is_refused_unread(tmp_path):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(edgeface.ImageTooLargeError, match="bytes"):
        load_image(big)


def test_bytes_over_the_size_cap_are_refused():
    with pytest.raises(edgeface.ImageTooLargeError):
        load_image(memoryview(np.zeros(MAX_FILE_BYTES + 1, np.uint8)))


@pytest.mark.parametrize("width, height", [(20000, 20000), (9000, 9000), (40000, 10)])
def test_png_claiming_huge_size_is_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(width, height))
    with pytest.raises(edgeface.ImageTooLargeError, match=f"{width}x{height}"):
        load_image(path)
    with pytest.raises(edgeface.ImageTooLargeError):
        load_image(path.read_bytes())


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm"])
def test_header_size_matches_the_decoder(ext):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, img)
    assert ok
    assert image_size(encoded.tobytes())[1:] == (53, 37)
    assert load_image(encoded.tobytes()).shape == (37, 53, 3)


def _patched(ext: str, width: int, height: int) -> bytes:
    """A real small image of format ``ext`` whose header is rewritten to claim width x height."""
    ok, encoded = cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    if ext == ".jpg":
        sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
        data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    elif ext == ".bmp":
        data[18:26] = struct.pack("<ii", width, -height)
    elif ext == ".ppm":
        return b"P6\n# comment\n%d %d\n255\n" % (width, height) + bytes(64)
    return bytes(data)


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".ppm"])
def test_other_formats_claiming_huge_size_are_refused(ext):
    with pytest.raises(edgeface.ImageTooLargeError):
        load_image(_patched(ext, 12000, 12000))


def test_decode_pixel_cap_allows_an_8k_square():
    # The documented limit: 8192 x 8192 passes the header check (2**26 pixels).
    from edgeface.image_io import check_decoded_size
    check_decoded_size(8192, 8192)
    assert 8192 * 8192 == MAX_DECODE_PIXELS
    with pytest.raises(edgeface.ImageTooLargeError):
        check_decoded_size(8192, 8193)


def test_unsupported_format_is_typed():
    ok, encoded = cv2.imencode(".jp2", np.zeros((8, 8, 3), np.uint8))
    if not ok:
        pytest.skip("this OpenCV cannot write JPEG 2000")
    with pytest.raises(edgeface.ImageDecodeError, match="supported"):
        load_image(encoded.tobytes())


def test_surrogate_path_gives_a_printable_typed_error():
    with pytest.raises(edgeface.ImageDecodeError) as info:
        load_image("/tmp/\ud800-face.jpg")
    str(info.value).encode("utf-8")  # printable: no lone surrogate in the message


def test_pil_image_size_is_checked_before_converting(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(9000, 9000))
    with PIL.open(path) as lazy:  # PIL reads only the header here
        with pytest.raises(edgeface.ImageTooLargeError):
            load_image(lazy)
