"""Approximate 1:N search with FAISS (the ``edgeface[faiss]`` extra), behind ``Gallery.identify``.

IVF-Flat, not HNSW: IVF takes ``add_with_ids`` and ``remove_ids``, so the index follows each
enrollment and removal in place like the exact index does (HNSW cannot delete), it trains in
seconds on a sample, and it stores the float32 vectors unchanged, so a found candidate's score is
exact. Measured recall@1 and speed against exact search: bench/gallery_scale.py.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import BackendError
from .gallery_index import VectorIndex

TRAIN_PER_LIST = 40  # training sample: 40 vectors per list (FAISS warns below 39)
MIN_NPROBE = 64  # lists visited per probe: max(64, nlist / 8); recall/speed per nprobe: bench/gallery_scale.py


def available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def require_faiss() -> None:
    _faiss()


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise BackendError("search='ivf' needs FAISS: pip install 'edgeface[faiss]'") from exc
    return faiss


def nlist_for(rows: int) -> int:
    """About 2*sqrt(N) lists (2,000 at 1M: k-means training stays around a minute on 2 cores),
    at least 1 and at most one per 40 rows."""
    return max(1, min(int(2 * math.sqrt(rows)), rows // TRAIN_PER_LIST))


class IvfSearch:
    """Rows of a VectorIndex (or its person templates) in a FAISS IndexIVFFlat, inner product."""

    def __init__(self, faiss_index: Any, ids: np.ndarray, owners: np.ndarray, fusion: str) -> None:
        self.index, self.fusion = faiss_index, fusion
        order = np.argsort(ids)
        self._ids, self._owners = ids[order], owners[order]  # id -> owner by searchsorted

    @classmethod
    def build(cls, source: VectorIndex, nprobe: int = 0, nlist: int = 0) -> "IvfSearch":
        faiss = _faiss()
        rows = source.rows if source.fusion == "max" else source.templates
        vectors = np.ascontiguousarray(rows.float_vectors(), np.float32)
        ids, owners = rows.ids[: rows.n].copy(), rows.owners[: rows.n].copy()
        nlist = nlist or nlist_for(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(source.dim), source.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if len(vectors) > TRAIN_PER_LIST * nlist:  # a fixed random sample keeps training fast and repeatable
            sample = vectors[np.random.default_rng(0).choice(len(vectors), TRAIN_PER_LIST * nlist, replace=False)]
        if len(sample):
            index.train(sample)
            index.add_with_ids(vectors, ids)
        # Random 128-d vectors at 1M (the hard case) need 1/8 of the lists for ~90 % recall@1
        index.nprobe = min(nprobe or max(MIN_NPROBE, nlist // 8), nlist)
        return cls(index, ids, owners, source.fusion)

    def matches(self, source: VectorIndex) -> bool:
        rows = source.rows if self.fusion == "max" else source.templates
        return self.fusion == source.fusion and len(self._ids) == rows.n and self.index.is_trained

    def update(self, source: VectorIndex, removed_people: np.ndarray, added_ids: np.ndarray) -> None:
        """Follow an enrollment/removal of the exact index: drop removed people's rows, add new rows."""
        if self.fusion != "max":  # a changed template is a remove + add of that person: redo the index
            self._ids = np.zeros(0, np.int64)  # makes matches() fail, so the Gallery rebuilds
            return
        if len(removed_people):
            gone = np.isin(self._owners, removed_people)
            self.index.remove_ids(self._ids[gone])
            self._ids, self._owners = self._ids[~gone], self._owners[~gone]
        if len(added_ids):
            rows = source.rows
            tail = slice(rows.n - len(added_ids), rows.n)
            self.index.add_with_ids(np.ascontiguousarray(rows.float_vectors()[tail], np.float32), added_ids)
            self._ids = np.concatenate([self._ids, added_ids])  # new ids exceed all stored ones: still sorted
            self._owners = np.concatenate([self._owners, rows.owners[tail]])

    def top_people(self, probes: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Best ``k`` distinct people per probe among the rows FAISS finds (fewer if it finds fewer)."""
        n = len(self._ids)
        wanted = min(n, 2 * k + 8)
        all_pids, all_scores = [], []
        while True:
            scores, ids = self.index.search(np.ascontiguousarray(probes, np.float32), max(wanted, 1))
            done = True
            all_pids, all_scores = [], []
            for row_scores, row_ids in zip(scores, ids):
                found = row_ids >= 0
                owners = self._owners[np.searchsorted(self._ids, row_ids[found])]
                _, first = np.unique(owners, return_index=True)
                first = np.sort(first)[:k]
                all_pids.append(owners[first])
                all_scores.append(row_scores[found][first])
                done &= len(first) >= k or found.sum() < wanted
            if done or wanted >= n:
                return all_pids, all_scores
            wanted = min(n, 4 * wanted)
