"""A persistent gallery of enrolled people in one SQLite file, searched in memory by one matrix product.

Durability: every change is one SQLite transaction (synchronous=FULL, rollback journal), so a crash or
power cut mid-write loses nothing already committed and never leaves half an enrollment. Vectors are
stored as raw float32 bytes (never pickled).

Scaling: identification is ``probes @ gallery.T`` over a contiguous float32 matrix: N stored
embeddings of D=128 take N*512 bytes and cost ~N*D multiply-adds per probe (1e6 embeddings: 512 MB,
~10-30 ms per probe on a small CPU). Past a few hundred thousand embeddings, or when memory is tight,
move to an approximate-nearest-neighbour index (e.g. FAISS HNSW/IVF) fed from ``embeddings()``.
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence, Union

import numpy as np

from .errors import (
    GalleryError,
    GalleryFormatError,
    GalleryModelMismatchError,
    InvalidArgumentError,
    PersonNotFoundError,
)

FORMAT = "edgeface-gallery"
SCHEMA_VERSION = 1
Fusion = Literal["max", "mean", "quality"]
FUSIONS = ("max", "mean", "quality")
MAX_NAME = 256

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    quality REAL NOT NULL,
    source TEXT,
    created REAL NOT NULL
);
CREATE INDEX embeddings_person ON embeddings(person_id);
"""


@dataclass(frozen=True)
class Person:
    name: str
    embeddings: int


@dataclass(frozen=True)
class Candidate:
    name: str
    score: float


@dataclass(frozen=True)
class Identity:
    """The answer for one probe: ``name`` is None ("unknown") when the best score is below threshold."""

    name: Optional[str]
    score: float
    candidates: tuple[Candidate, ...]  # top-k people by score, best first, regardless of threshold

    @property
    def known(self) -> bool:
        return self.name is not None


def enrollment_quality(score: float, width: float, height: float) -> float:
    """Weight of a photo in "quality" fusion: a confident detection of a face at least ~100 px
    (the embedders' input size) counts fully; smaller faces count in proportion to their size."""
    return float(score) * min(1.0, min(width, height) / 100.0)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"a person's name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidArgumentError(f"a person's name is limited to {MAX_NAME} characters")
    return name


class Gallery:
    """Enrolled people for one embedding space (model), stored in ``path``.

    ``embedding_space`` and ``dim`` come from the embedder's manifest entry; opening a gallery made
    with another model raises ``GalleryModelMismatchError`` rather than returning meaningless scores.
    ``fusion`` says how several photos of a person are combined: "max" keeps every embedding and
    scores a person by their best match; "mean" averages them into one template; "quality" weights
    that average by each photo's quality (detection score × face size factor).
    """

    def __init__(self, path: Union[str, os.PathLike], embedding_space: str, dim: int,
                 fusion: Fusion = "max", create: bool = True) -> None:
        if fusion not in FUSIONS:
            raise InvalidArgumentError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.path = Path(path)
        self.embedding_space = embedding_space
        self.dim = int(dim)
        self.fusion: Fusion = fusion
        exists = self.path.exists()
        if not exists and not create:
            raise GalleryError(f"gallery not found: {self.path}")
        if exists and self.path.is_dir():
            raise GalleryFormatError(f"{self.path} is a directory, not a gallery file")
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            if exists and self.path.stat().st_size > 0:
                self._check_meta()
            else:
                self._create()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise GalleryFormatError(f"{self.path} is not an edgeface gallery ({exc})") from exc
        except BaseException:
            self._db.close()
            raise
        self._load()

    # ---- file format -------------------------------------------------------------------------
    def _create(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            meta = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION),
                    "embedding_space": self.embedding_space, "dim": str(self.dim),
                    "created": f"{time.time():.3f}"}
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())

    def _check_meta(self) -> None:
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:
            raise GalleryFormatError(f"{self.path} is an SQLite file but not an edgeface gallery") from exc
        if meta.get("format") != FORMAT:
            raise GalleryFormatError(f"{self.path} is an SQLite file but not an edgeface gallery")
        if int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
            raise GalleryFormatError(
                f"{self.path} was written by a newer edgeface (schema {meta['schema_version']}); upgrade edgeface")
        if meta.get("embedding_space") != self.embedding_space or int(meta.get("dim", -1)) != self.dim:
            raise GalleryModelMismatchError(
                f"{self.path} holds {meta.get('dim')}-d embeddings of model {meta.get('embedding_space')!r}, "
                f"but the current embedder is {self.embedding_space!r} ({self.dim}-d); open it with that "
                "model, or re-enroll the people into a new gallery")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)

    # ---- in-memory index ---------------------------------------------------------------------
    def _load(self) -> None:
        rows = self._db.execute(
            "SELECT p.name, e.vector, e.quality FROM embeddings e JOIN people p ON p.id = e.person_id "
            "ORDER BY p.name, e.id").fetchall()
        names = [r[0] for r in self._db.execute("SELECT name FROM people ORDER BY name")]
        expected = 4 * self.dim
        if any(len(r[1]) != expected for r in rows):
            raise GalleryFormatError(f"{self.path}: a stored embedding does not have {self.dim} float32 values")
        self._names: list[str] = names
        index = {n: i for i, n in enumerate(names)}
        self._matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(-1, self.dim).copy()
                        if rows else np.zeros((0, self.dim), np.float32))
        self._owner = np.fromiter((index[r[0]] for r in rows), dtype=np.int64, count=len(rows))
        self._quality = np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows))
        self._templates = self._fuse()

    def _fuse(self) -> np.ndarray:
        """Person templates for "mean"/"quality"; for "max" the raw matrix is searched instead."""
        if self.fusion == "max" or len(self._names) == 0:
            return self._matrix
        weights = self._quality if self.fusion == "quality" else np.ones(len(self._owner), np.float32)
        sums = np.zeros((len(self._names), self.dim), np.float32)
        np.add.at(sums, self._owner, self._matrix * weights[:, None])
        return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    # ---- queries -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip() in self._names

    def people(self) -> list[Person]:
        counts = np.bincount(self._owner, minlength=len(self._names))
        return [Person(n, int(c)) for n, c in zip(self._names, counts)]

    def embeddings(self) -> tuple[np.ndarray, list[str]]:
        """All stored embeddings (N×D) and the name owning each row."""
        return self._matrix.copy(), [self._names[i] for i in self._owner]

    def scores(self, probes: np.ndarray) -> np.ndarray:
        """Similarity of each probe to each enrolled person: (Q, D) → (Q, P)."""
        q = np.asarray(probes, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidArgumentError(f"probes must have shape (Q, {self.dim}), got {q.shape}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        sims = q @ self._templates.T
        if self.fusion != "max":
            return sims
        # Rows are grouped by person (see _load), so a segmented max gives each person's best match.
        per_person = np.full((len(q), len(self._names)), -np.inf, np.float32)
        present = np.unique(self._owner)
        if len(present):
            starts = np.searchsorted(self._owner, present)
            per_person[:, present] = np.maximum.reduceat(sims, starts, axis=1)
        return per_person

    def identify(self, probes: np.ndarray, threshold: float, top_k: int = 1) -> list[Identity]:
        """1:N open-set identification: the best person per probe, or unknown below ``threshold``."""
        if top_k < 1:
            raise InvalidArgumentError(f"top_k must be >= 1, got {top_k}")
        sims = self.scores(probes)
        results = []
        for row in sims:
            order = np.argsort(-row, kind="stable")[:top_k]
            cands = tuple(Candidate(self._names[i], float(row[i])) for i in order)
            best = cands[0] if cands else None
            if best is not None and best.score >= threshold:
                results.append(Identity(best.name, best.score, cands))
            else:
                results.append(Identity(None, best.score if best else float("-inf"), cands))
        return results

    # ---- changes (each one transaction) ------------------------------------------------------
    def enroll(self, name: str, embeddings: np.ndarray, qualities: Optional[Sequence[float]] = None,
               sources: Optional[Sequence[Optional[str]]] = None) -> Person:
        """Add one or more embeddings of ``name`` (creating the person if new)."""
        name = _check_name(name)
        vecs = np.asarray(embeddings, dtype=np.float32)
        if vecs.ndim == 1:
            vecs = vecs[None]
        if vecs.ndim != 2 or vecs.shape[1] != self.dim or len(vecs) == 0:
            raise InvalidArgumentError(f"embeddings must have shape (K>=1, {self.dim}), got {vecs.shape}")
        if not np.all(np.isfinite(vecs)):
            raise InvalidArgumentError("embeddings contain NaN or infinity")
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        quals = list(qualities) if qualities is not None else [1.0] * len(vecs)
        srcs = list(sources) if sources is not None else [None] * len(vecs)
        if len(quals) != len(vecs) or len(srcs) != len(vecs):
            raise InvalidArgumentError("qualities and sources must have one entry per embedding")
        now = time.time()
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)", (name, now))
            pid = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
            self._db.executemany(
                "INSERT INTO embeddings (person_id, vector, quality, source, created) VALUES (?, ?, ?, ?, ?)",
                [(pid, v.astype("<f4").tobytes(), float(q), s, now) for v, q, s in zip(vecs, quals, srcs)])
        self._load()
        return next(p for p in self.people() if p.name == name)

    def remove(self, name: str) -> None:
        name = _check_name(name)
        with self._transaction():
            if self._db.execute("DELETE FROM people WHERE name = ?", (name,)).rowcount == 0:
                raise PersonNotFoundError(f"no person named {name!r} in {self.path}")
        self._load()

    def rename(self, old: str, new: str) -> None:
        old, new = _check_name(old), _check_name(new)
        if new in self._names and new != old:
            raise InvalidArgumentError(f"{new!r} is already enrolled; remove it first or pick another name")
        with self._transaction():
            if self._db.execute("UPDATE people SET name = ? WHERE name = ?", (new, old)).rowcount == 0:
                raise PersonNotFoundError(f"no person named {old!r} in {self.path}")
        self._load()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

