"""Alignment + embedding through the shipped default embedder, on the bundled photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import edgeface
from edgeface.alignment import align
from edgeface.embedding import Embedder


@pytest.fixture(scope="module")
def embedder():
    e = Embedder(threads=2)
    yield e
    e.close()


@pytest.fixture(scope="module")
def faces(astronaut):
    return edgeface.detect(astronaut)


def test_aligned_crop_puts_landmarks_on_the_template(embedder, astronaut, faces):
    crops = align(astronaut, faces, embedder.spec)
    assert crops.shape == (1, *embedder.spec.input.size, 3) and crops.dtype == np.uint8
    from edgeface import _core
    _, matrices = _core.align_faces(astronaut, np.ascontiguousarray(faces.landmarks),
                                    np.ascontiguousarray(embedder.spec.alignment, np.float32), *embedder.spec.input.size)
    moved = faces.landmarks[0] @ matrices[0][:, :2].T + matrices[0][:, 2]
    residual = np.linalg.norm(moved - embedder.spec.alignment, axis=1)  # pixels of the crop
    # A similarity fit cannot match 5 points of a real face exactly; eyes land close, all points within 6 %.
    assert residual[:2].max() < 3.0 and residual.max() < 0.06 * embedder.spec.input.size[0], residual


def test_embeddings_are_unit_length_and_stable_under_photometric_change(embedder, astronaut, faces):
    v = embedder.embed(astronaut, faces)
    assert v.shape == (1, embedder.dim) and v.dtype == np.float32
    assert abs(float(np.linalg.norm(v)) - 1) < 1e-5
    darker = cv2.convertScaleAbs(astronaut, alpha=0.7, beta=-10)
    blurred = cv2.GaussianBlur(astronaut, (5, 5), 1.5)
    for variant in (darker, blurred, np.ascontiguousarray(astronaut[:, ::-1])):
        w = embedder.embed(variant, edgeface.detect(variant))
        assert float(v[0] @ w[0]) > 0.9


def test_different_face_is_far(embedder, astronaut, faces):
    from conftest import shared_data
    root = shared_data("identification")
    other = cv2.imread(str(root / "knn_examples/train/biden/biden.jpg"))
    w = embedder.embed(other, edgeface.detect(other))
    v = embedder.embed(astronaut, faces)
    assert float(v[0] @ w[0]) < embedder.spec.thresholds["far_1e-2"]


def test_color_order_matters_and_is_honoured(embedder, astronaut, faces):
    bgr = embedder.embed(astronaut, faces, color="bgr")
    rgb = embedder.embed(np.ascontiguousarray(astronaut[:, :, ::-1]), faces, color="rgb")
    np.testing.assert_allclose(bgr, rgb, atol=1e-5)


def test_batch_equals_single(embedder, astronaut, faces):
    crops = align(astronaut, faces, embedder.spec)
    batch = np.concatenate([crops, crops[:, :, ::-1], crops])
    vs = embedder.embed_aligned(batch)
    np.testing.assert_allclose(vs[0], vs[2], atol=1e-6)
    np.testing.assert_allclose(vs[0], embedder.embed_aligned(crops)[0], atol=1e-4)


def test_bad_crops(embedder):
    with pytest.raises(edgeface.InvalidDTypeError):
        embedder.embed_aligned(np.zeros((1, *embedder.spec.input.size, 3), np.float32))
    with pytest.raises(edgeface.ImageError):
        embedder.embed_aligned(np.zeros((1, 10, 10, 3), np.uint8))
    assert embedder.embed_aligned(np.zeros((0, *embedder.spec.input.size, 3), np.uint8)).shape == (0, embedder.dim)
    with pytest.raises(edgeface.InvalidArgumentError):
        align(np.zeros((50, 50, 3), np.uint8), np.zeros((1, 4, 2), np.float32), embedder.spec)


def test_embedder_as_context_manager_releases_its_session(astronaut, faces):
    from edgeface.errors import BackendError
    with Embedder(threads=1) as e:
        assert e.embed(astronaut, faces).shape == (1, e.dim)
    with pytest.raises(BackendError, match="closed"):
        e.embed(astronaut, faces)
