"""A persistent gallery of enrolled people in one SQLite file, searched in memory.

Durability: every change is one SQLite transaction (synchronous=FULL, rollback journal), so a crash or
power cut mid-write loses nothing already committed and never leaves half an enrollment. Vectors are
stored as raw little-endian float32 bytes (never pickled).

Layout (schema 2): ``people`` (one row per name), ``embeddings`` (one row per enrolled photo: owner,
source path, sha256 of the source file's content, the block holding its vector) and ``blocks``
(vectors, ids, owners and qualities of up to BLOCK_ROWS embeddings as four arrays). Loading a
million embeddings reads ~2,000 blobs instead of a million rows. Schema-1 files are migrated in
place, in one transaction, the first time they are opened writable.

Scaling: the in-memory index (gallery_index.VectorIndex) is updated in place by each change; it is
reloaded only when another connection committed (``PRAGMA data_version`` changed). A search is one
matrix product plus ``argpartition``; 1M x 128 float32 takes 512 MB (int8 store: 132 MB). Past
that, ``search="ivf"`` (the ``edgeface[faiss]`` extra) trades exactness for speed.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional, Sequence, TypeVar, Union

import numpy as np

from .errors import (
    GalleryError,
    GalleryFormatError,
    GalleryModelMismatchError,
    InvalidArgumentError,
    InvalidDTypeError,
    PersonNotFoundError,
)
from .gallery_index import STORES, Store, VectorIndex

FORMAT = "edgeface-gallery"
SCHEMA_VERSION = 2
Fusion = Literal["max", "mean", "quality"]
FUSIONS = ("max", "mean", "quality")
Search = Literal["exact", "ivf", "auto"]
SEARCHES = ("exact", "ivf", "auto")
AUTO_IVF_ROWS = 200_000  # "auto" switches to IVF from here (see docs/benchmarks/gallery_scale.json)
MAX_NAME = 256
BLOCK_ROWS = 512  # embeddings per stored block (~270 KB): a million embeddings load from ~2,000 blobs
SMALL_BLOCK = 64  # blocks below this many rows (single enrolls write one each) ...
MAX_SMALL_BLOCKS = 32  # ... are merged once there are more than this many: O(1) amortised per enroll
SQL_CHUNK = 500  # parameters per "IN (...)" query, under SQLite's limit

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE blocks (id INTEGER PRIMARY KEY, rows INTEGER NOT NULL, ids BLOB NOT NULL, owners BLOB NOT NULL,
                     quality BLOB NOT NULL, vectors BLOB NOT NULL);
CREATE INDEX blocks_rows ON blocks(rows);
"""
_EMBEDDINGS = """
CREATE TABLE {table} (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    block INTEGER NOT NULL,
    source TEXT,
    sha256 TEXT,
    created REAL NOT NULL
);
"""
_EMBEDDING_INDEXES = """
CREATE INDEX embeddings_person ON embeddings(person_id);
CREATE UNIQUE INDEX embeddings_photo ON embeddings(sha256, person_id) WHERE sha256 IS NOT NULL;
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


@dataclass(frozen=True)
class EnrollReport:
    """What ``enroll_many`` did with each input row: ``added[i]`` is False when row i's source file
    was already enrolled for that person (same sha256), so nothing was stored twice."""

    added: np.ndarray
    replaced_people: int = 0

    @property
    def n_added(self) -> int:
        return int(self.added.sum())

    @property
    def n_already_enrolled(self) -> int:
        return int((~self.added).sum())


def enrollment_quality(score: float, width: float, height: float) -> float:
    """Weight of a photo in "quality" fusion: a confident detection of a face at least ~100 px
    (the embedders' input size) counts fully; smaller faces count in proportion to their size."""
    return float(score) * min(1.0, min(width, height) / 100.0)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(name: object) -> str:
    """A person's name: a non-empty string of printable text, stored as UTF-8."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"a person's name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidArgumentError(f"a person's name is limited to {MAX_NAME} characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"name {name!r} is not valid text (it holds undecodable bytes, e.g. from a folder name in "
            "another encoding); rename it or pass the name explicitly") from None
    if _CONTROL.search(name):
        raise InvalidArgumentError(f"name {name!r} contains control characters; use printable text")
    return name


_check_name = check_name  # 0.x name


def _as_vectors(data: object, dim: int, what: str) -> np.ndarray:
    """(K, dim) finite float32 rows, or a typed error saying what is wrong."""
    if isinstance(data, (str, bytes)):
        raise InvalidDTypeError(f"{what} must be numeric arrays, got {type(data).__name__}")
    try:
        vecs = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidDTypeError(f"{what} must be numeric arrays of shape (K, {dim}): {exc}") from None
    if vecs.ndim == 1:
        vecs = vecs[None]
    if vecs.ndim != 2 or vecs.shape[1] != dim or len(vecs) == 0:
        raise InvalidArgumentError(f"{what} must have shape (K>=1, {dim}), got {vecs.shape}")
    if not np.all(np.isfinite(vecs)):
        raise InvalidArgumentError(f"{what} contain NaN or infinity; check the embedder's output")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    if np.any(norms < 1e-6):
        raise InvalidArgumentError(f"{what} contain a zero vector, which has no direction to compare; "
                                   "check the embedder's output")
    return (vecs / norms).astype(np.float32)


def _per_row(values: Optional[Sequence[Any]], n: int, what: str) -> Optional[list[Any]]:
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        raise InvalidArgumentError(f"{what} must be a sequence with one entry per embedding, got a string")
    values = list(values)
    if len(values) != n:
        raise InvalidArgumentError(f"{what} must have one entry per embedding ({n}), got {len(values)}")
    return values


def _qualities(values: Optional[Sequence[Any]], n: int) -> np.ndarray:
    given = _per_row(values, n, "qualities")
    if given is None:
        return np.ones(n, np.float32)
    if not all(isinstance(q, numbers.Real) and not isinstance(q, bool) for q in given):
        raise InvalidDTypeError(f"qualities must be numbers, got {[type(q).__name__ for q in given][:5]}")
    q = np.asarray(given, dtype=np.float64)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise InvalidArgumentError("qualities must be finite numbers >= 0 (e.g. enrollment_quality(...))")
    return q.astype(np.float32)


def _texts(values: Optional[Sequence[Any]], n: int, what: str) -> list[Optional[str]]:
    given = _per_row(values, n, what)
    if given is None:
        return [None] * n
    out = []
    for v in given:
        if v is None:
            out.append(None)
            continue
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        if not isinstance(v, str):
            raise InvalidDTypeError(f"{what} must be strings or None, got {type(v).__name__}")
        out.append(v.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))  # undecodable bytes
    return out


def _top_k(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidDTypeError(f"top_k must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise InvalidArgumentError(f"top_k must be >= 1, got {value}")
    return int(value)


def _threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidDTypeError(f"threshold must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise InvalidArgumentError(f"threshold must be finite, got {value}")
    return float(value)


def _chunks(items: Sequence[Any], size: int = SQL_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _database_error(path: Path, exc: sqlite3.Error) -> GalleryError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return GalleryError(f"{path} is read-only: check the file's and its folder's permissions "
                            "(or it was opened with read_only=True)")
    if "locked" in text or "busy" in text:
        return GalleryError(f"{path} is locked by another process for too long; retry when it is done")
    if "unable to open" in text:
        return GalleryError(f"cannot open {path}: check that its folder exists and is writable")
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return GalleryFormatError(f"{path} is corrupt or not an edgeface gallery ({text})")
    return GalleryError(f"{path}: database error: {text}")


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """One call at a time per Gallery (threads may share one: the index is updated in place),
    refuse use after close(), and turn SQLite errors into typed GalleryErrors."""

    @functools.wraps(method)
    def wrapper(self: "Gallery", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._db is None:
                raise GalleryError(f"{self.path} was closed; open the gallery again")
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise _database_error(self.path, exc) from exc

    return wrapper  # type: ignore[return-value]


class Gallery:
    """Enrolled people for one embedding space (model), stored in ``path``.

    ``embedding_space`` and ``dim`` come from the embedder's manifest entry; opening a gallery made
    with another model raises ``GalleryModelMismatchError`` rather than returning meaningless scores.
    ``model`` (the embedder's name, e.g. an INT8 variant) is recorded for display.
    ``fusion`` says how several photos of a person are combined: "max" keeps every embedding and
    scores a person by their best match; "mean" averages them into one template; "quality" weights
    that average by each photo's quality (detection score × face size factor).
    ``store`` is the in-memory template format: "float32" (exact) or "int8" (a quarter of the memory
    and bandwidth; scores within ~0.004). ``search``: "exact" (brute force), "ivf" (FAISS IVF, needs
    ``edgeface[faiss]``) or "auto" (IVF from AUTO_IVF_ROWS rows when FAISS is installed).
    """

    def __init__(self, path: Union[str, os.PathLike], embedding_space: str, dim: int,
                 fusion: Fusion = "max", create: bool = True, *, model: Optional[str] = None,
                 store: Store = "float32", search: Search = "exact", read_only: bool = False) -> None:
        self._db: Optional[sqlite3.Connection] = None
        self._lock = threading.RLock()
        if fusion not in FUSIONS:
            raise InvalidArgumentError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if store not in STORES:
            raise InvalidArgumentError(f"store must be one of {STORES}, got {store!r}")
        if search not in SEARCHES:
            raise InvalidArgumentError(f"search must be one of {SEARCHES}, got {search!r}")
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 1 <= dim <= 65536:
            raise InvalidArgumentError(f"dim must be a positive integer, got {dim!r}")
        if search == "ivf":
            from .faiss_index import require_faiss
            require_faiss()
        self.path = Path(path)
        self.embedding_space, self.dim, self.fusion = embedding_space, int(dim), fusion
        self.store, self.search, self.read_only = store, search, read_only
        self._model = model
        exists = self.path.exists()
        if not exists and (not create or read_only):
            raise GalleryError(f"gallery not found: {self.path}")
        if exists and self.path.is_dir():
            raise GalleryFormatError(f"{self.path} is a directory, not a gallery file")
        if not exists and not self.path.parent.is_dir():
            raise GalleryError(f"cannot create {self.path}: folder {self.path.parent} does not exist; create it first")
        try:
            uri = f"{self.path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            if exists and self.path.stat().st_size > 0:
                self._check_meta()
            else:
                self._create()
            self._load()
        except sqlite3.Error as exc:
            self._close_quietly()
            if isinstance(exc, sqlite3.OperationalError) and "no such table" not in str(exc):
                raise _database_error(self.path, exc) from exc
            raise GalleryFormatError(f"{self.path} is not an edgeface gallery ({exc})") from exc
        except BaseException:
            self._close_quietly()
            raise

    @classmethod
    def open(cls, path: Union[str, os.PathLike], **options: Any) -> "Gallery":
        """Open an existing gallery with whatever model it was made with (e.g. to list or rename)."""
        path = Path(path)
        if not path.is_file():
            raise GalleryError(f"gallery not found: {path}")
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise GalleryFormatError(f"{path} is not an edgeface gallery ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise GalleryFormatError(f"{path} is an SQLite file but not an edgeface gallery")
        return cls(path, meta.get("embedding_space", ""), _meta_int(path, meta, "dim"), create=False, **options)

    # ---- file format -------------------------------------------------------------------------
    def _create(self) -> None:
        with self._transaction():
            for statement in (_SCHEMA + _EMBEDDINGS.format(table="embeddings") + _EMBEDDING_INDEXES).split(";"):
                if statement.strip():
                    self._db.execute(statement)
            meta = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION),
                    "embedding_space": self.embedding_space, "dim": str(self.dim),
                    "created": f"{time.time():.3f}"}
            if self._model:
                meta["model"] = self._model
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())

    def _check_meta(self) -> None:
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:
            raise GalleryFormatError(f"{self.path} is an SQLite file but not an edgeface gallery") from exc
        if meta.get("format") != FORMAT:
            raise GalleryFormatError(f"{self.path} is an SQLite file but not an edgeface gallery")
        version = _meta_int(self.path, meta, "schema_version")
        if version > SCHEMA_VERSION:
            raise GalleryFormatError(
                f"{self.path} was written by a newer edgeface (schema {version}); upgrade edgeface")
        dim = _meta_int(self.path, meta, "dim")
        if meta.get("embedding_space") != self.embedding_space or dim != self.dim:
            raise GalleryModelMismatchError(
                f"{self.path} holds {dim}-d embeddings of model {meta.get('embedding_space')!r}, "
                f"but the current embedder is {self.embedding_space!r} ({self.dim}-d); open it with that "
                "model, or re-enroll the people into a new gallery")
        self.stored_model = meta.get("model")
        if version < SCHEMA_VERSION:
            if self.read_only:
                raise GalleryError(f"{self.path} uses gallery schema {version}; open it once writable to "
                                   f"upgrade it to schema {SCHEMA_VERSION} (nothing is lost)")
            self._migrate_from_1()

    def _migrate_from_1(self) -> None:
        """Schema 1 (one vector per embeddings row) -> 2 (vectors in blocks, source sha256), in one transaction."""
        with self._transaction():
            rows = self._db.execute(
                "SELECT id, person_id, vector, quality, source, created FROM embeddings ORDER BY id").fetchall()
            if any(len(r[2]) != 4 * self.dim for r in rows):
                raise GalleryFormatError(f"{self.path}: a stored embedding does not have {self.dim} float32 values")
            blocks_schema = ";".join(_SCHEMA.split(";")[2:4])
            for statement in (blocks_schema + ";" + _EMBEDDINGS.format(table="embeddings_v2")).split(";"):
                if statement.strip():
                    self._db.execute(statement)
            ids = np.array([r[0] for r in rows], np.int64)
            vectors = np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(-1, self.dim)
            _check_loaded(self.path, vectors)
            blocks = self._append_blocks(ids, np.array([r[1] for r in rows], np.int64),
                                         np.array([r[3] for r in rows], np.float32), vectors)
            self._db.executemany(
                "INSERT INTO embeddings_v2 (id, person_id, block, source, sha256, created) VALUES (?, ?, ?, ?, NULL, ?)",
                [(r[0], r[1], int(b), r[4], r[5]) for r, b in zip(rows, blocks)])
            self._db.execute("DROP TABLE embeddings")
            self._db.execute("ALTER TABLE embeddings_v2 RENAME TO embeddings")
            for statement in _EMBEDDING_INDEXES.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)

    # ---- blocks of vectors -------------------------------------------------------------------
    def _append_blocks(self, ids: np.ndarray, owners: np.ndarray, quality: np.ndarray,
                       vectors: np.ndarray) -> np.ndarray:
        """Store rows in new blocks of up to BLOCK_ROWS; returns the block id of each row."""
        where = np.zeros(len(ids), np.int64)
        next_id = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM blocks").fetchone()[0] + 1
        for lo in range(0, len(ids), BLOCK_ROWS):
            part = slice(lo, min(len(ids), lo + BLOCK_ROWS))
            self._db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                             (next_id, part.stop - part.start, ids[part].astype("<i8").tobytes(),
                              owners[part].astype("<i8").tobytes(), quality[part].astype("<f4").tobytes(),
                              vectors[part].astype("<f4").tobytes()))
            where[part] = next_id
            next_id += 1
        return where

    def _merge_small_blocks(self) -> None:
        """Single enrolls leave one small block each; past MAX_SMALL_BLOCKS they become full blocks."""
        # no ORDER BY: it would make SQLite walk every block by id instead of the covering rows index
        small = sorted(b for (b,) in self._db.execute("SELECT id FROM blocks WHERE rows < ?", (SMALL_BLOCK,)))
        if len(small) <= MAX_SMALL_BLOCKS:
            return
        parts = [self._db.execute("SELECT ids, owners, quality, vectors FROM blocks WHERE id = ?", (b,)).fetchone()
                 for b in small]
        self._db.executemany("DELETE FROM blocks WHERE id = ?", [(b,) for b in small])
        ids = np.frombuffer(b"".join(p[0] for p in parts), "<i8")
        where = self._append_blocks(ids, np.frombuffer(b"".join(p[1] for p in parts), "<i8"),
                                    np.frombuffer(b"".join(p[2] for p in parts), "<f4"),
                                    np.frombuffer(b"".join(p[3] for p in parts), "<f4").reshape(-1, self.dim))
        self._db.executemany("UPDATE embeddings SET block = ? WHERE id = ?",
                             zip(where.tolist(), ids.tolist()))

    def _delete_people_rows(self, person_ids: Sequence[int]) -> None:
        """Drop the embeddings (rows and their slots in blocks) of these people."""
        blocks: set[int] = set()
        for part in _chunks(list(person_ids)):
            marks = ",".join("?" * len(part))
            blocks.update(b for (b,) in self._db.execute(
                f"SELECT DISTINCT block FROM embeddings WHERE person_id IN ({marks})", part))
            self._db.execute(f"DELETE FROM embeddings WHERE person_id IN ({marks})", part)
        gone = np.asarray(list(person_ids), np.int64)
        for block in sorted(blocks):
            ids, owners, quality, vectors = self._db.execute(
                "SELECT ids, owners, quality, vectors FROM blocks WHERE id = ?", (block,)).fetchone()
            keep = ~np.isin(np.frombuffer(owners, "<i8"), gone)
            if not keep.any():
                self._db.execute("DELETE FROM blocks WHERE id = ?", (block,))
                continue
            self._db.execute(
                "UPDATE blocks SET rows = ?, ids = ?, owners = ?, quality = ?, vectors = ? WHERE id = ?",
                (int(keep.sum()), np.frombuffer(ids, "<i8")[keep].tobytes(), np.frombuffer(owners, "<i8")[keep].tobytes(),
                 np.frombuffer(quality, "<f4")[keep].tobytes(),
                 np.frombuffer(vectors, "<f4").reshape(-1, self.dim)[keep].tobytes(), block))

    def _read_blocks(self, spare: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored row, copied once from the blobs into arrays with ``spare`` free rows at the end
        (the in-memory index grows into them without a copy); the arrays' first N rows are the data."""
        total = int(self._db.execute("SELECT COALESCE(SUM(rows), 0) FROM blocks").fetchone()[0])
        ids, owners = np.empty(total + spare, np.int64), np.empty(total + spare, np.int64)
        quality = np.empty(total + spare, np.float32)
        vectors = np.empty((total + spare, self.dim), np.float32)
        at = 0
        for n, *row in self._db.execute("SELECT rows, ids, owners, quality, vectors FROM blocks ORDER BY id"):
            if (at + n > total or len(row[0]) != 8 * n or len(row[1]) != 8 * n or len(row[2]) != 4 * n
                    or len(row[3]) != 4 * n * self.dim):
                raise GalleryFormatError(f"{self.path} is corrupt: a block of embeddings has inconsistent sizes")
            ids[at:at + n] = np.frombuffer(row[0], "<i8")
            owners[at:at + n] = np.frombuffer(row[1], "<i8")
            quality[at:at + n] = np.frombuffer(row[2], "<f4")
            vectors[at:at + n] = np.frombuffer(row[3], "<f4").reshape(n, self.dim)
            at += n
        if at != total:
            raise GalleryFormatError(f"{self.path} is corrupt: a block of embeddings has inconsistent sizes")
        return ids, owners, quality, vectors

    # ---- in-memory index ---------------------------------------------------------------------
    def _load(self) -> None:
        total = int(self._db.execute("SELECT COALESCE(SUM(rows), 0) FROM blocks").fetchone()[0])
        spare = (total // 4 + 1024) if self.store == "float32" else 0  # room to grow without a copy
        ids, owners, quality, vectors = self._read_blocks(spare)
        n = len(ids) - spare
        _check_loaded(self.path, vectors[:n])
        if not np.all(np.isfinite(quality[:n])) or np.any(quality[:n] < 0):
            raise GalleryFormatError(f"{self.path} is corrupt: a stored quality is NaN or negative")
        stored = self._db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        if stored != n:
            raise GalleryFormatError(f"{self.path} is corrupt: {stored} embeddings listed, {n} stored")
        self._index = VectorIndex.build(self.dim, self.fusion, self.store, ids, owners, quality, vectors, n)
        self._names: dict[int, str] = {}
        self._name_order: Optional[np.ndarray] = None
        self._version = self._data_version()
        self._ann = None
        self._ann_checked = False

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _sync(self) -> None:
        """Reload if another connection (process) committed since we last looked."""
        if self._data_version() != self._version:
            self._load()

    def _changed(self) -> None:
        self._name_order = None
        self._ann_checked = False

    def _names_of(self, person_ids: np.ndarray) -> list[str]:
        missing = sorted({int(p) for p in person_ids.ravel()} - self._names.keys())
        for part in _chunks(missing):
            self._names.update(self._db.execute(
                f"SELECT id, name FROM people WHERE id IN ({','.join('?' * len(part))})", part).fetchall())
        return [self._names[int(p)] for p in person_ids]

    def _ordered_people(self) -> tuple[np.ndarray, list[str]]:
        rows = self._db.execute("SELECT id, name FROM people ORDER BY name").fetchall()
        return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]

    # ---- queries -----------------------------------------------------------------------------
    @_guarded
    def __len__(self) -> int:
        self._sync()
        return self._index.people

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._person_id(name.strip()) is not None

    @_guarded
    def _person_id(self, name: str) -> Optional[int]:
        row = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    @_guarded
    def photo_hashes(self, name: str) -> set[str]:
        """sha256 of every source photo enrolled for ``name`` (empty if unknown or none recorded)."""
        return {h for (h,) in self._db.execute(
            "SELECT e.sha256 FROM embeddings e JOIN people p ON p.id = e.person_id "
            "WHERE p.name = ? AND e.sha256 IS NOT NULL", (check_name(name),))}

    @property
    def model(self) -> Optional[str]:
        """The embedder recorded for this gallery (None for galleries made before it was recorded)."""
        return getattr(self, "stored_model", None) or self._model

    @_guarded
    def people(self) -> list[Person]:
        self._sync()
        counts = self._index.counts()
        pids, names = self._ordered_people()
        return [Person(n, counts.get(int(p), 0)) for p, n in zip(pids, names)]

    @_guarded
    def embeddings(self) -> tuple[np.ndarray, list[str]]:
        """All stored embeddings (N×D float32, as stored on disk) and the name owning each row."""
        self._sync()
        _, owners, _, vectors = self._read_blocks()
        return vectors, self._names_of(owners)

    def _probes(self, probes: object) -> np.ndarray:
        return _as_vectors(probes, self.dim, "probes")

    @_guarded
    def scores(self, probes: np.ndarray) -> np.ndarray:
        """Similarity of each probe to each enrolled person: (Q, D) → (Q, P), people in ``people()`` order."""
        q = self._probes(probes)
        self._sync()
        if self._name_order is None:
            self._name_order = self._ordered_people()[0]
        return self._index.person_scores(q, self._name_order)

    @_guarded
    def identify(self, probes: np.ndarray, threshold: float, top_k: int = 1) -> list[Identity]:
        """1:N open-set identification: the best person per probe, or unknown below ``threshold``.
        ``probes`` may be one vector or a (Q, D) batch, searched together."""
        top_k, threshold = _top_k(top_k), _threshold(threshold)
        q = self._probes(probes)
        self._sync()
        ann = self._approximate()
        pids, scores = ann.top_people(q, top_k) if ann is not None else self._index.top_people(q, top_k)
        results = []
        for row_pids, row_scores in zip(pids, scores):
            cands = tuple(Candidate(n, float(s)) for n, s in zip(self._names_of(row_pids), row_scores))
            if cands and cands[0].score >= threshold:
                results.append(Identity(cands[0].name, cands[0].score, cands))
            else:
                results.append(Identity(None, cands[0].score if cands else float("-inf"), cands))
        return results

    def _approximate(self) -> Any:
        """The FAISS index when ``search`` asks for one (built lazily, kept in step with changes)."""
        if self.search == "exact":
            return None
        if not self._ann_checked:
            self._ann_checked = True
            from . import faiss_index
            if self.search == "auto" and (not faiss_index.available() or self._index.rows.n < AUTO_IVF_ROWS):
                self._ann = None
            elif self._ann is None or not self._ann.matches(self._index):
                self._ann = faiss_index.IvfSearch.build(self._index)
        return self._ann

    # ---- changes (each one transaction) ------------------------------------------------------
    @_guarded
    def enroll_many(self, names: Sequence[str], embeddings: np.ndarray,
                    qualities: Optional[Sequence[float]] = None, sources: Optional[Sequence[Optional[str]]] = None,
                    source_sha256: Optional[Sequence[Optional[str]]] = None, replace: bool = False) -> EnrollReport:
        """Enroll many embeddings (row i belongs to ``names[i]``) in one transaction.

        Rows whose ``source_sha256`` (the source photo's content hash) is already enrolled for that
        person are skipped ("already enrolled"). ``replace=True`` first drops everything the named
        people had enrolled, so their photos are exactly these rows afterwards.
        """
        vecs = _as_vectors(embeddings, self.dim, "embeddings")
        if isinstance(names, str):
            raise InvalidArgumentError("names must be a sequence with one name per embedding, got one string")
        given = _per_row(names, len(vecs), "names") or []
        checked = {n: check_name(n) for n in set(given)} if all(isinstance(n, str) for n in given) else {}
        name_list = [checked[n] if n in checked else check_name(n) for n in given]
        quality = _qualities(qualities, len(vecs))
        srcs = _texts(sources, len(vecs), "sources")
        shas = _texts(source_sha256, len(vecs), "source_sha256")
        if self.read_only:
            raise GalleryError(f"{self.path} was opened read-only")
        now = time.time()
        with self._transaction():
            self._sync()
            person_of = self._ensure_people(sorted(set(name_list)), now)
            owners = np.array([person_of[n] for n in name_list], np.int64)
            replaced = sorted(set(owners.tolist())) if replace else []
            if replaced:
                self._delete_people_rows(replaced)
            added = self._new_photos(owners, shas)
            next_id = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM embeddings").fetchone()[0] + 1
            ids = np.arange(next_id, next_id + int(added.sum()), dtype=np.int64)
            blocks = self._append_blocks(ids, owners[added], quality[added], vecs[added])
            rows = np.flatnonzero(added)
            self._db.executemany(
                "INSERT INTO embeddings (id, person_id, block, source, sha256, created) VALUES (?, ?, ?, ?, ?, ?)",
                [(int(i), int(owners[r]), int(b), srcs[r], shas[r], now) for i, r, b in zip(ids, rows, blocks)])
            self._merge_small_blocks()
            if self._model:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('model', ?)", (self._model,))
        if self._model and not self.model:
            self.stored_model = self._model
        if replaced:
            self._index.remove_people(np.array(replaced, np.int64))
        self._index.add(ids, owners[added], quality[added], vecs[added])
        self._changed()
        if self._ann is not None:
            self._ann.update(self._index, removed_people=np.array(replaced, np.int64), added_ids=ids)
        return EnrollReport(added, len(replaced))

    def _ensure_people(self, names: list[str], now: float) -> dict[str, int]:
        person_of: dict[str, int] = {}
        for part in _chunks(names):
            person_of.update(self._db.execute(
                f"SELECT name, id FROM people WHERE name IN ({','.join('?' * len(part))})", part).fetchall())
        new = [n for n in names if n not in person_of]
        if new:
            first = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM people").fetchone()[0] + 1
            self._db.executemany("INSERT INTO people (id, name, created) VALUES (?, ?, ?)",
                                 [(first + i, n, now) for i, n in enumerate(new)])
            person_of.update((n, first + i) for i, n in enumerate(new))
        return person_of

    def _new_photos(self, owners: np.ndarray, shas: list[Optional[str]]) -> np.ndarray:
        """False for rows whose (person, source sha256) is already stored or repeats an earlier row."""
        added = np.ones(len(owners), bool)
        hashed = [i for i, s in enumerate(shas) if s is not None]
        if not hashed:
            return added
        seen: set[tuple[int, str]] = set()
        unique_shas = sorted({shas[i] for i in hashed})
        for part in _chunks(unique_shas):
            seen.update(self._db.execute(
                f"SELECT person_id, sha256 FROM embeddings WHERE sha256 IN ({','.join('?' * len(part))})", part))
        for i in hashed:
            key = (int(owners[i]), shas[i])
            if key in seen:
                added[i] = False
            seen.add(key)
        return added

    @_guarded
    def enroll(self, name: str, embeddings: np.ndarray, qualities: Optional[Sequence[float]] = None,
               sources: Optional[Sequence[Optional[str]]] = None,
               source_sha256: Optional[Sequence[Optional[str]]] = None, replace: bool = False) -> Person:
        """Add one or more embeddings of ``name`` (creating the person if new); see ``enroll_many``."""
        name = check_name(name)
        vecs = _as_vectors(embeddings, self.dim, "embeddings")
        self.enroll_many([name] * len(vecs), vecs, qualities, sources, source_sha256, replace)
        pid = self._person_id(name)
        count = self._db.execute("SELECT count(*) FROM embeddings WHERE person_id = ?", (pid,)).fetchone()[0]
        return Person(name, int(count))

    @_guarded
    def remove(self, name: str) -> None:
        name = check_name(name)
        if self.read_only:
            raise GalleryError(f"{self.path} was opened read-only")
        with self._transaction():
            self._sync()
            pid = self._person_id(name)
            if pid is None:
                raise PersonNotFoundError(f"no person named {name!r} in {self.path}")
            self._delete_people_rows([pid])
            self._db.execute("DELETE FROM people WHERE id = ?", (pid,))
        self._index.remove_people(np.array([pid], np.int64))
        self._names.pop(pid, None)
        self._changed()
        if self._ann is not None:
            self._ann.update(self._index, removed_people=np.array([pid], np.int64), added_ids=np.zeros(0, np.int64))

    @_guarded
    def rename(self, old: str, new: str) -> None:
        old, new = check_name(old), check_name(new)
        if self.read_only:
            raise GalleryError(f"{self.path} was opened read-only")
        with self._transaction():
            self._sync()  # checks below see what other processes committed (we hold the write lock)
            pid = self._person_id(old)
            if pid is None:
                raise PersonNotFoundError(f"no person named {old!r} in {self.path}")
            if new != old and self._person_id(new) is not None:
                raise InvalidArgumentError(f"{new!r} is already enrolled; remove it first or pick another name")
            self._db.execute("UPDATE people SET name = ? WHERE id = ?", (new, pid))
        self._names[pid] = new
        self._changed()

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def _close_quietly(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _meta_int(path: Path, meta: dict[str, str], key: str) -> int:
    try:
        return int(meta.get(key, ""))
    except ValueError:
        raise GalleryFormatError(f"{path} is corrupt: meta {key!r} is {meta.get(key)!r}, not an integer") from None


def _check_loaded(path: Path, vectors: np.ndarray) -> None:
    """Refuse to search vectors that cannot be right: NaN/inf or zero rows mean a damaged file.
    One pass: a NaN or infinite value makes its row's squared norm NaN or infinite."""
    squared = np.einsum("ij,ij->i", vectors, vectors)
    if not np.all(np.isfinite(squared)):
        raise GalleryFormatError(f"{path} is corrupt: a stored embedding holds NaN or infinity; "
                                 "re-enroll into a new gallery")
    if len(vectors) and float(np.min(squared)) < 1e-6:
        raise GalleryFormatError(f"{path} is corrupt: a stored embedding is a zero vector")


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:  # e.g. SQLITE_BUSY at commit: give up the change, keep the lock free
                self._db.execute("ROLLBACK")
            raise
