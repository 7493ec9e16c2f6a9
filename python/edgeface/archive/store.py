"""The index folder: ``index.json`` plus immutable Parquet parts, each committed atomically.

A part is written to a temporary name made by mkstemp in the folder, fsynced, then renamed to
``part-NNNNNNNN.parquet`` and the folder fsynced: a reader (or a resumed run) sees a whole part or no
part. A part holds every row of the files it covers (faces, or the one row of a file without faces or
with an error), so "this path appears in a part" is exactly "this file is done". One writer at a time
holds ``.lock`` (flock), so two runs cannot index the same files twice.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .schema import (FORMAT, FORMAT_VERSION, META_FILE, ArchiveIndexError, face_schema, read_meta,
                     write_atomic, write_json_atomic)

PART_RE = re.compile(r"^part-(\d{8})\.parquet$")
LOCK_FILE = ".lock"
# Settings that change which faces are found or what their embeddings mean: a resumed run must use the same.
RESULT_SETTINGS = ("model", "embedding_space", "dim", "analyzer")


def part_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if PART_RE.match(p.name))


def open_dataset(folder: Path, meta: dict[str, Any]) -> pads.Dataset:
    files = part_files(folder)
    try:
        return pads.dataset([str(p) for p in files], format="parquet", schema=face_schema(int(meta["dim"])))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArchiveIndexError(f"{folder}: a part is unreadable ({exc}); delete that part file and run "
                                "`edgeface index` again to re-index its images") from None


class IndexWriter:
    """Opens (creating if needed) an index folder for writing; use as a context manager."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ArchiveIndexError(f"{self.folder} exists and is not a folder; pick another --out")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ArchiveIndexError(f"{self.folder} is being written by another `edgeface index` run; "
                                    "wait for it to finish") from None
        try:
            self.meta = self._check_or_create_meta(meta)
            self._remove_stale_temporaries()
            self.schema = face_schema(int(self.meta["dim"]))
            self._next = max((int(PART_RE.match(p.name).group(1)) for p in part_files(self.folder)), default=0) + 1
        except BaseException:
            self.close()
            raise

    def _check_or_create_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        if not (self.folder / META_FILE).exists():
            if part_files(self.folder):
                raise ArchiveIndexError(f"{self.folder} has index parts but no {META_FILE}; pick another --out")
            full = {"format": FORMAT, "version": FORMAT_VERSION, "created": round(time.time(), 3), **meta}
            write_json_atomic(self.folder / META_FILE, full)
            return full
        existing = read_meta(self.folder)
        for key in RESULT_SETTINGS:
            if existing.get(key) != meta.get(key):
                raise ArchiveIndexError(
                    f"{self.folder} was indexed with {key}={existing.get(key)!r}, this run uses {meta.get(key)!r}; "
                    "resume with the same settings, or write a new index with another --out")
        return existing

    def _remove_stale_temporaries(self) -> None:
        """Parts a killed run was still writing: never renamed, so never part of the index."""
        for tmp in self.folder.glob(".part-*.parquet.*.tmp"):
            tmp.unlink(missing_ok=True)

    def done_files(self) -> dict[str, tuple[Optional[int], Optional[int]]]:
        """Every file already in the index → (size, mtime_ns) recorded when it was indexed."""
        table = open_dataset(self.folder, self.meta).to_table(columns=["path", "file_size", "file_mtime_ns"])
        return dict(zip(table["path"].to_pylist(),
                        zip(table["file_size"].to_pylist(), table["file_mtime_ns"].to_pylist())))

    def commit(self, tables: Sequence[pa.Table]) -> Optional[Path]:
        """Write the rows of some finished files as one new part; returns its path (None if no rows)."""
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return None
        table = pa.concat_tables([t.cast(self.schema) for t in tables])
        final = self.folder / f"part-{self._next:08d}.parquet"
        write_atomic(final, lambda f: pq.write_table(table, f, compression="zstd"))
        self._next += 1
        return final

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Committer:
    """Buffers finished files and commits them as a part every ``chunk_files`` files or ``seconds``:
    a crash loses at most that much work, which the next run redoes."""

    def __init__(self, writer: IndexWriter, chunk_files: int, seconds: float) -> None:
        self.writer, self.chunk_files, self.seconds = writer, max(1, int(chunk_files)), float(seconds)
        self._tables: list[pa.Table] = []
        self._files = 0
        self._since = time.monotonic()
        self.parts = 0

    def add(self, table: pa.Table, files: int) -> None:
        self._tables.append(table)
        self._files += files
        if self._files >= self.chunk_files or time.monotonic() - self._since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.writer.commit(self._tables) is not None:
            self.parts += 1
        self._tables, self._files, self._since = [], 0, time.monotonic()


def iter_face_batches(folder: Path, columns: Sequence[str], batch_rows: int = 65536) -> Iterator[pa.RecordBatch]:
    """The face rows of an index (files without faces and errors left out), in bounded batches."""
    meta = read_meta(folder)
    dataset = open_dataset(folder, meta)
    try:
        for batch in dataset.to_batches(columns=list(columns), filter=pads.field("face").is_valid(),
                                        batch_size=batch_rows):
            if batch.num_rows:
                yield batch
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArchiveIndexError(f"{folder}: a part is unreadable ({exc}); delete that part file and run "
                                "`edgeface index` again to re-index its images") from None
