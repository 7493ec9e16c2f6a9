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
