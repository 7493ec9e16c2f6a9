"""Queries over an archive index: who is where (every indexed face against a gallery) and where is
this person (the indexed faces most similar to one probe embedding). Both stream the index in
bounded batches, so memory does not grow with the archive."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import pyarrow as pa

from ..errors import InvalidArgumentError
from ..gallery import Gallery
from ..matching import threshold_for
from ..models import get_model
from .schema import read_meta
from .store import iter_face_batches

_COLUMNS = ("path", "face", "box", "embedding")


@dataclass(frozen=True)
class FaceMatch:
    """One indexed face: where it is, and its similarity to the gallery person / probe it matched.
    ``identity`` is the gallery person (None: unknown, or a probe search)."""

    path: str
    face: int
    box: tuple[float, float, float, float]
    similarity: float
    identity: Optional[str] = None

    def to_dict(self, with_identity: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "face": self.face, "box": [round(v, 2) for v in self.box]}
        if with_identity:
            out["identity"] = self.identity
        out["similarity"] = round(self.similarity, 5) if np.isfinite(self.similarity) else None  # empty gallery
        return out


def index_threshold(index: Union[str, os.PathLike], operating_point: str) -> float:
    """The calibrated threshold of the index's embedding model at ``operating_point``."""
    return threshold_for(get_model(read_meta(Path(index))["model"]), operating_point)


def _vectors(column: Union[pa.Array, pa.ChunkedArray], dim: int) -> np.ndarray:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return arr.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def _faces(batch: pa.RecordBatch, dim: int) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    boxes = _vectors(batch.column("box"), 4)
    return (batch.column("path").to_pylist(), batch.column("face").to_pylist(), boxes,
            _vectors(batch.column("embedding"), dim))


def search_gallery(index: Union[str, os.PathLike], gallery: Union[str, os.PathLike], threshold: float,
                   known_only: bool = False, fusion: str = "max") -> Iterator[FaceMatch]:
    """Identify every face of the index against ``gallery`` at ``threshold`` (``index_threshold``),
    in index order. ``identity`` is None for faces below the threshold (left out with ``known_only``)."""
    folder = Path(index)
    meta = read_meta(folder)
    dim = int(meta["dim"])
    with Gallery(gallery, meta["embedding_space"], dim, fusion=fusion, create=False) as people:
        for batch in iter_face_batches(folder, _COLUMNS):
            paths, faces, boxes, vectors = _faces(batch, dim)
            for i, who in enumerate(people.identify(vectors, threshold)):
                if known_only and not who.known:
                    continue
                yield FaceMatch(paths[i], int(faces[i]), tuple(map(float, boxes[i])),  # type: ignore[arg-type]
                                float(who.score), who.name)


def search_face(index: Union[str, os.PathLike], probe: np.ndarray, threshold: float, top: int = 100) -> list[FaceMatch]:
    """The indexed faces whose similarity to ``probe`` (one embedding) is at least ``threshold``,
    best first, at most ``top``."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidArgumentError(f"top must be an integer >= 1, got {top!r}")
    folder = Path(index)
    dim = int(read_meta(folder)["dim"])
    q = np.asarray(probe, np.float32).reshape(-1)
    if q.shape != (dim,) or not np.all(np.isfinite(q)):
        raise InvalidArgumentError(f"probe must be one finite {dim}-d embedding, got shape {np.shape(probe)}")
    q = (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float64)
    best: list[FaceMatch] = []
    for batch in iter_face_batches(folder, _COLUMNS):
        paths, faces, boxes, vectors = _faces(batch, dim)
        # float64 sums rounded to float32: a float32 BLAS product rounds a row differently by its place in
        # the batch (1.0 vs 0.99999994 measured), so two indexes of the same photos would rank ties apart.
        sims = (vectors.astype(np.float64) @ q).astype(np.float32)
        hits = np.flatnonzero(sims >= threshold)
        if len(hits) > top:  # only the batch's own top can reach the overall top
            hits = hits[np.argpartition(-sims[hits], top - 1)[:top]]
        best += [FaceMatch(paths[i], int(faces[i]), tuple(map(float, boxes[i])), float(sims[i]))  # type: ignore[arg-type]
                 for i in hits]
        best = sorted(best, key=lambda m: (-m.similarity, m.path, m.face))[:top]
    return best
