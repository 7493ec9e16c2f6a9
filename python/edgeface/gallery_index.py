"""The in-memory side of a Gallery: every stored embedding as one matrix, searched by one matrix product.

Rows are kept in arrays with spare capacity, so an enrollment appends in O(K) and a removal moves
the last rows into the holes (O(rows removed) after one O(N) scan); nothing is rebuilt per change.
Rows carry their embedding id and owner person id; names stay in SQLite and are looked up only for
the few people a search returns.

Two stores: "float32" (N*D*4 bytes streamed per search) and "int8" (N*D bytes plus a float32 scale
per row: value = code * scale, scale = max|v| / 127), scanned by the C++ kernels ``_core.int8_top``
(the best rows per probe, found during the scan) and ``_core.int8_scores`` (every score); numpy has
no fast int8 or float16 matrix product. int8 scores are within ~0.004 of float32, which flips a few
LFW decisions near a threshold (dlib scores of different people sit close together), so the int8
store keeps the float32 rows too and re-scores the best RERANK candidates exactly: ``identify`` then
answers as float32 does, at int8 bandwidth (the float32 rows are only touched for the candidates).
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np

Store = Literal["float32", "int8"]
STORES = ("float32", "int8")
PROBE_BLOCK = 16  # probes scored together: bounds the (Q, N) similarity buffer to 16 * N floats
TOP_CHUNK = 256  # scores per chunk when bounding the top-k (see _top_rows)
RERANK = 64  # int8 store: candidates re-scored in float32 per probe
# int8 store: up to this many probes the int8 kernel beats float32 BLAS at 1M rows (bench/gallery_scale.py
# q16); larger batches are compute-bound, where BLAS wins.
INT8_MAX_PROBES = 16
SHORTLIST_MAX = 4096  # the largest k of _core.int8_top


def quantize_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 codes and scales (vectors ≈ codes * scales[:, None])."""
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales = np.maximum(scales, np.finfo(np.float32).tiny).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


class _Rows:
    """Growable parallel arrays of one row per stored vector."""

    def __init__(self, dim: int, store: Store) -> None:
        self.dim, self.store, self.n = dim, store, 0
        self.ids = np.zeros(0, np.int64)
        self.owners = np.zeros(0, np.int64)
        self.quality = np.zeros(0, np.float32)
        self.vectors = np.zeros((0, dim), np.int8 if store == "int8" else np.float32)
        self.scales = np.zeros(0, np.float32)  # int8 store only
        self.exact = np.zeros((0, dim), np.float32)  # int8 store only: float32 rows for re-scoring

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self.ids):
            return
        cap = max(need, int(len(self.ids) * 1.5), 1024)
        for name in ("ids", "owners", "quality", "vectors", "scales", "exact"):
            old = getattr(self, name)
            if name in ("scales", "exact") and self.store != "int8":
                continue
            grown = np.zeros((cap,) + old.shape[1:], old.dtype)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)

    def adopt(self, ids: np.ndarray, owners: np.ndarray, quality: np.ndarray, vectors: np.ndarray, n: int) -> None:
        """Take arrays of capacity >= n as storage (float32 store), rows [0, n) being the data."""
        self.ids, self.owners, self.quality, self.vectors, self.n = ids, owners, quality, vectors, n

    def append(self, ids: np.ndarray, owners: np.ndarray, quality: np.ndarray, vectors: np.ndarray) -> None:
        k = len(ids)
        self._reserve(k)
        s = slice(self.n, self.n + k)
        self.ids[s], self.owners[s], self.quality[s] = ids, owners, quality
        if self.store == "int8":
            self.vectors[s], self.scales[s] = quantize_int8(vectors)
            self.exact[s] = vectors
        else:
            self.vectors[s] = vectors
        self.n += k

    def delete(self, positions: np.ndarray) -> None:
        """Fill each hole with one of the last rows (order is not kept; search does not need it)."""
        positions = np.sort(positions)
        k = len(positions)
        tail = np.setdiff1d(np.arange(self.n - k, self.n), positions)  # last rows that survive
        holes = positions[positions < self.n - k]
        for name in ("ids", "owners", "quality", "vectors") + (("scales", "exact") if self.store == "int8" else ()):
            arr = getattr(self, name)
            arr[holes] = arr[tail]
        self.n -= k

    def float_vectors(self) -> np.ndarray:
        return self.exact[: self.n] if self.store == "int8" else self.vectors[: self.n]

    def similarities(self, probes: np.ndarray) -> np.ndarray:
        """(Q, n) dot products of unit probes with every row. The int8 kernel pays off while the scan
        is bandwidth-bound (up to INT8_MAX_PROBES); a larger batch is compute-bound, where BLAS wins."""
        if self.store == "int8" and len(probes) <= INT8_MAX_PROBES:
            from . import _core
            return _core.int8_scores(self.vectors[: self.n], self.scales[: self.n], probes)
        return probes @ self.float_vectors().T

    def shortlists(self, probes: np.ndarray, m: int) -> np.ndarray:
        """int8 store: (Q, min(m, n)) positions of the m best int8 scores per probe, best first (ties by
        position), found during the scan: no (Q, n) matrix, no top-k pass over it."""
        from . import _core
        return _core.int8_top(self.vectors[: self.n], self.scales[: self.n], probes, m)[0]


class VectorIndex:
    """Rows plus, for "mean"/"quality" fusion, one unit template per person (weighted sum, normalised)."""

    def __init__(self, dim: int, fusion: str, store: Store = "float32") -> None:
        self.dim, self.fusion, self.store = dim, fusion, store
        self.rows = _Rows(dim, store)
        self._pid_buffer = np.zeros(0, np.int64)  # person ids, sorted: slot of a person = searchsorted
        self._pid_count = 0
        self.sums = np.zeros((0, dim), np.float32)  # fused fusions only: weighted sum per person (a view ...)
        self._sums_buffer = self.sums  # ... of this buffer, which has spare rows
        self.templates = _Rows(dim, store)  # fused fusions only: ids = person ids, in slot order
        self._grouped: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None

    @property
    def person_ids(self) -> np.ndarray:
        return self._pid_buffer[: self._pid_count]

    @person_ids.setter
    def person_ids(self, value: np.ndarray) -> None:
        self._pid_buffer, self._pid_count = np.array(value, np.int64), len(value)

    def _append_people(self, new: np.ndarray) -> None:
        """Amortised O(len(new)): a single enroll must not copy a million person ids."""
        need = self._pid_count + len(new)
        if need > len(self._pid_buffer):
            grown = np.zeros(max(need, int(len(self._pid_buffer) * 1.5), 1024), np.int64)
            grown[: self._pid_count] = self.person_ids
            self._pid_buffer = grown
        self._pid_buffer[self._pid_count:need] = new
        self._pid_count = need

    # ---- changes ---------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, owners: np.ndarray, quality: np.ndarray, vectors: np.ndarray) -> None:
        self.rows.append(ids, owners, quality, vectors)
        last = self.person_ids[-1] if len(self.person_ids) else -1
        new = np.unique(owners[owners > last])  # new people get ids above every stored one ...
        older = owners[owners <= last]
        if len(older) and not np.all(self.person_ids[np.searchsorted(self.person_ids, older)] == older):
            self.person_ids = np.union1d(self.person_ids, owners)  # ... except a re-added one (replace)
            self._rebuild_templates()
            return
        if len(new):
            self._append_people(new)
        if self.fusion != "max":
            self._grow_templates(owners, quality, vectors, new)
        self._grouped = None

    def remove_people(self, person_ids: np.ndarray) -> None:
        person_ids = np.intersect1d(person_ids, self.person_ids)
        if len(person_ids) == 0:
            return
        self.rows.delete(np.flatnonzero(np.isin(self.rows.owners[: self.rows.n], person_ids)))
        keep = ~np.isin(self.person_ids, person_ids)
        self.person_ids = self.person_ids[keep]
        if self.fusion != "max":
            self.sums = self._sums_buffer = self.sums[: len(keep)][keep]
            self.templates = _Rows(self.dim, self.store)
            self.templates.append(self.person_ids, self.person_ids, np.ones(len(self.person_ids), np.float32),
                                  _normalise(self.sums))
        self._grouped = None

    def _weights(self, quality: np.ndarray) -> np.ndarray:
        return quality.astype(np.float32) if self.fusion == "quality" else np.ones(len(quality), np.float32)

    def _grow_templates(self, owners: np.ndarray, quality: np.ndarray, vectors: np.ndarray, new: np.ndarray) -> None:
        if len(new):  # grow the per-person sums with spare room: no copy of all of them per new person
            have = len(self.sums)
            if have + len(new) > len(self._sums_buffer):
                grown = np.zeros((max(have + len(new), int(1.5 * len(self._sums_buffer)), 1024), self.dim), np.float32)
                grown[:have] = self.sums
                self._sums_buffer = grown
            self._sums_buffer[have:have + len(new)] = 0
            self.sums = self._sums_buffer[: have + len(new)]
        slots = np.searchsorted(self.person_ids, owners)
        np.add.at(self.sums, slots, vectors * self._weights(quality)[:, None])
        touched = np.unique(slots)
        old = touched[touched < self.templates.n]
        fresh = _normalise(self.sums[touched])
        if len(old):  # replace the templates of people who were already there
            if self.store == "int8":
                self.templates.vectors[old], self.templates.scales[old] = quantize_int8(fresh[: len(old)])
                self.templates.exact[old] = fresh[: len(old)]
            else:
                self.templates.vectors[old] = fresh[: len(old)]
        added = touched[touched >= self.templates.n]
        if len(added):
            self.templates.append(self.person_ids[added], self.person_ids[added],
                                  np.ones(len(added), np.float32), fresh[len(old):])

    def _rebuild_templates(self) -> None:
        self.templates = _Rows(self.dim, self.store)
        self.sums = self._sums_buffer = np.zeros((len(self.person_ids), self.dim), np.float32)
        self._grouped = None
        if self.fusion == "max" or self.rows.n == 0:
            return
        n = self.rows.n
        slots = np.searchsorted(self.person_ids, self.rows.owners[:n])
        order = np.argsort(slots, kind="stable")
        weighted = self.rows.float_vectors()[order] * self._weights(self.rows.quality[:n][order])[:, None]
        starts = np.flatnonzero(np.r_[True, np.diff(slots[order]) != 0])
        self.sums[slots[order][starts]] = np.add.reduceat(weighted, starts, axis=0)
        self.templates.append(self.person_ids, self.person_ids, np.ones(len(self.person_ids), np.float32),
                              _normalise(self.sums))

    @classmethod
    def build(cls, dim: int, fusion: str, store: Store, ids: np.ndarray, owners: np.ndarray,
              quality: np.ndarray, vectors: np.ndarray, n: int) -> "VectorIndex":
        """From arrays whose first ``n`` rows are the data; float32 arrays are adopted, not copied."""
        index = cls(dim, fusion, store)
        if store == "float32":
            index.rows.adopt(ids, owners, quality, vectors, n)
        else:
            index.rows.append(ids[:n], owners[:n], quality[:n], vectors[:n])
        index.person_ids = np.unique(owners[:n])
        index._rebuild_templates()
        return index

    # ---- queries ---------------------------------------------------------------------------------
    @property
    def people(self) -> int:
        return len(self.person_ids)

    def counts(self) -> dict[int, int]:
        pids, counts = np.unique(self.rows.owners[: self.rows.n], return_counts=True)
        return dict(zip(pids.tolist(), counts.tolist()))

    def top_people(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` people per unit probe: person ids (Q, k') and scores (Q, k'), k' = min(k, people)."""
        k = min(k, self.people)
        pids = np.zeros((len(probes), k), np.int64)
        scores = np.zeros((len(probes), k), np.float32)
        if k == 0:
            return pids, scores
        searched = self.rows if self.fusion == "max" else self.templates
        owners = searched.owners[: searched.n]
        for start in range(0, len(probes), PROBE_BLOCK):
            block = probes[start:start + PROBE_BLOCK]
            if self.store == "float32":
                for j, row in enumerate(searched.similarities(block)):
                    pids[start + j], scores[start + j] = _top_distinct(row, owners, k)
                continue
            m = _candidates(searched.n, k, rescored=True)
            shortlists = searched.shortlists(block, m) if m <= SHORTLIST_MAX else None
            exact = searched.float_vectors()
            for j, probe in enumerate(block):
                rescore = (exact, probe)
                found = None if shortlists is None else _ranked(shortlists[j], None, owners, k, rescore)
                if found is None:  # fewer than k people among the m best rows: the whole row, m growing
                    found = _top_distinct(searched.similarities(block[j:j + 1])[0], owners, k, rescore)
                pids[start + j], scores[start + j] = found
        return pids, scores

    def person_scores(self, probes: np.ndarray, order: np.ndarray) -> np.ndarray:
        """(Q, P) score of each probe against each person, columns in the given person-id order."""
        out = np.empty((len(probes), len(order)), np.float32)
        if self.fusion != "max":
            sims = self.templates.similarities(probes)
            out[:] = sims[:, np.searchsorted(self.person_ids, order)]
            return out
        if self._grouped is None:  # rows grouped by person, cached until the next change
            owners = self.rows.owners[: self.rows.n]
            grouping = np.argsort(owners, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(owners[grouping]) != 0]) if len(grouping) else grouping
            self._grouped = (grouping, starts, owners[grouping][starts] if len(grouping) else grouping)
        grouping, starts, group_pids = self._grouped
        for start in range(0, len(probes), PROBE_BLOCK):
            sims = self.rows.similarities(probes[start:start + PROBE_BLOCK])
            best = np.maximum.reduceat(sims[:, grouping], starts, axis=1) if len(starts) else sims[:, :0]
            out[start:start + PROBE_BLOCK] = best[:, np.searchsorted(group_pids, order)]
        return out


def _normalise(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _top_distinct(row: np.ndarray, owners: np.ndarray, k: int,
                  rescore: Optional[tuple[np.ndarray, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best distinct owners of one similarity row, best first, without sorting the row.

    Takes the top m rows (m >= k); if they hold fewer than k distinct owners, m grows. The first
    occurrence of an owner in score order is that owner's best score, so the answer equals a full
    per-person max. ``rescore`` = (float32 rows, probe): the m candidates of an approximate row are
    re-scored exactly and ordered by that.
    """
    n = len(row)
    m = _candidates(n, k, rescore is not None)
    while True:
        top = _top_rows(row, m)
        found = _ranked(top, row[top], owners, k, rescore)
        if found is not None:
            return found
        m = min(n, 4 * m)


def _candidates(n: int, k: int, rescored: bool) -> int:
    """Rows taken first for k people: enough for a few photos per person, RERANK if re-scored."""
    return min(n, max(2 * k + 8, RERANK if rescored else 0))


def _ranked(top: np.ndarray, score: Optional[np.ndarray], owners: np.ndarray, k: int,
            rescore: Optional[tuple[np.ndarray, np.ndarray]]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The first k distinct owners of candidate rows ``top`` (best first, scores ``score``) and their
    scores; None if there are fewer than k and some rows were not candidates. ``rescore`` = (float32
    rows, probe): the candidates are re-scored exactly and re-ordered first."""
    if rescore is not None:
        score = rescore[0][top] @ rescore[1]
        order = np.lexsort((top, -score))
        top, score = top[order], score[order]
    _, first = np.unique(owners[top], return_index=True)
    if len(first) < k and len(top) < len(owners):
        return None
    first = np.sort(first)[:k]
    return owners[top[first]], score[first]


def _top_rows(row: np.ndarray, m: int) -> np.ndarray:
    """Indices of (at least) the m largest values, best first (ties by index).

    The m-th largest of per-chunk maxima is a lower bound of the m-th largest value (m chunks each
    hold a value at least that large), so one vectorised pass over chunk maxima and one comparison
    leave few candidates to sort: ~3x faster than argpartition over a million scores.
    """
    n = len(row)
    if m >= n:
        return np.argsort(-row, kind="stable")
    full = n - n % TOP_CHUNK
    if full // TOP_CHUNK > 4 * m:
        maxima = row[:full].reshape(-1, TOP_CHUNK).max(axis=1)
        if full < n:
            maxima = np.append(maxima, row[full:].max())
        bound = np.partition(maxima, len(maxima) - m)[len(maxima) - m]
        candidates = np.flatnonzero(row >= bound)
    else:
        candidates = np.argpartition(-row, m - 1)[:m]
    return candidates[np.lexsort((candidates, -row[candidates]))]
