"""Face embeddings: aligned crops → L2-normalized vectors, batched through ``runtime.Runner``."""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .alignment import align
from .errors import ClosedError, ImageError, InvalidDTypeError
from .faces import Detections
from .image_io import check_color, validate_array
from .models import ModelSpec, default_model, get_model
from .runtime import Runner

# Crops per network call: throughput per face is flat beyond ~8 (bench/speed.py), while the runtimes
# keep the activations of their largest call (~4 MB a 150 px dlib crop), so 8 bounds memory on crowds.
MAX_BATCH = 8


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder:
    """Maps aligned faces to unit vectors; compare them with a dot product (cosine similarity).

    ``flip=True`` averages the embeddings of each crop and its mirror image (twice the cost).
    """

    def __init__(self, model: Optional[str] = None, backend: Optional[str] = None,
                 threads: Optional[int] = None, flip: bool = False) -> None:
        self.spec: ModelSpec = get_model(model) if model else default_model("embedder")
        self.runner = Runner(self.spec, backend=backend, threads=threads)
        self._closed = False
        self.flip = flip
        self._mean = np.asarray(self.spec.input.mean, np.float32)
        self._inv_std = 1.0 / np.asarray(self.spec.input.std, np.float32)

    @property
    def dim(self) -> int:
        return int(self.spec.embedding_dim)

    def close(self) -> None:
        self._closed = True
        self.runner.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this Embedder is closed; create a new Embedder (or use it inside its `with` block)")

    def __enter__(self) -> "Embedder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _to_tensor(self, crops: np.ndarray, color: str) -> np.ndarray:
        rgb = crops[..., ::-1] if (color == "bgr") != (self.spec.input.color.lower() == "bgr") else crops
        x = (rgb.astype(np.float32) - self._mean) * self._inv_std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def embed_aligned(self, crops: np.ndarray, color: str = "bgr") -> np.ndarray:
        """K×S×S×3 uint8 crops already aligned to this model's template → K×D float32, unit length."""
        self._check_open()
        order = check_color(color)
        if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8:
            raise InvalidDTypeError("aligned crops must be a uint8 numpy array of shape (K, S, S, 3)")
        size = tuple(self.spec.input.size)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[1:3] != size or crops.shape[3] != 3:
            raise ImageError(f"aligned crops must have shape (K, {size[0]}, {size[1]}, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        for start in range(0, len(crops), MAX_BATCH):
            batch = crops[start:start + MAX_BATCH]
            vectors = self._run(self._to_tensor(batch, order))
            if self.flip:
                vectors = l2_normalize(vectors) + l2_normalize(self._run(self._to_tensor(batch[:, :, ::-1], order)))
            parts.append(vectors)
        return l2_normalize(np.concatenate(parts))

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        outputs = self.runner.run(tensor)
        return next(iter(outputs.values())).reshape(len(tensor), -1)

    def embed(self, image: np.ndarray, faces: Union[Detections, np.ndarray], color: str = "bgr") -> np.ndarray:
        """Align the given faces of ``image`` to this model's template and embed them."""
        self._check_open()
        validate_array(image)
        return self.embed_aligned(align(image, faces, self.spec), color)
