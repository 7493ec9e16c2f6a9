"""The archive index format: one Parquet row per face (plus one row per file without faces), and
``index.json`` saying which model and detector settings made it.

Columns (``face_schema(dim)``):
  path            string     the image file (absolute path as listed when indexing)
  file_size       int64      bytes; with file_mtime_ns, says whether the file changed since indexing
  file_mtime_ns   int64      modification time (null when the engine cannot stat the file, e.g. object stores)
  sha256          string     of the file's bytes (null when they could not be read)
  width, height   int32      image size in pixels (null when it could not be decoded)
  faces           int32      faces found in the file (0: none; null: the file failed, see ``error``)
  face            int32      index of this face in the file, best detection score first; null on the
                             one row recorded for a file with no faces or an error
  box             float32[4] x1, y1, x2, y2 in pixels
  score           float32    detection score
  landmarks       float32[10] x, y of left eye, right eye, nose, left and right mouth corner
  quality         float32    per-face quality score in [0, 1] when the analyzer gives one, else null
  embedding       float32[dim] unit-length embedding
  model           string     embedder that made the embedding
  embedding_space string     embeddings are comparable within one space (fp32 and INT8 dlib share one)
  error           string     why the file could not be indexed (null otherwise)
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import pyarrow as pa

from ..errors import EdgefaceError

FORMAT = "edgeface-index"
FORMAT_VERSION = 1
META_FILE = "index.json"
BOX_SIZE, LANDMARK_SIZE = 4, 10


class ArchiveIndexError(EdgefaceError):
    """An archive index is missing, corrupt, locked, or was made with other settings."""


def face_schema(dim: int) -> pa.Schema:
    f32 = pa.float32()
    return pa.schema([
        pa.field("path", pa.string(), nullable=False),
        pa.field("file_size", pa.int64()),
        pa.field("file_mtime_ns", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("faces", pa.int32()),
        pa.field("face", pa.int32()),
        pa.field("box", pa.list_(f32, BOX_SIZE)),
        pa.field("score", f32),
        pa.field("landmarks", pa.list_(f32, LANDMARK_SIZE)),
        pa.field("quality", f32),
        pa.field("embedding", pa.list_(f32, int(dim))),
        pa.field("model", pa.string()),
        pa.field("embedding_space", pa.string()),
        pa.field("error", pa.string()),
    ])


def _file_mode() -> int:
    """What open() would give a new file (mkstemp makes 0600, too strict for an index others read)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a new temporary file beside ``path`` (mkstemp: O_EXCL, so never a planted link;
    usual permissions), fsync, rename over ``path``, fsync the folder: readers see all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, lambda f: f.write(json.dumps(payload, indent=2, sort_keys=True).encode()))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchiveIndexError(f"{folder} is not an edgeface index (no {META_FILE}); build one with "
                                "`edgeface index DIR --out INDEX`") from None
    except (OSError, ValueError) as exc:
        raise ArchiveIndexError(f"{path} is unreadable ({exc}); rebuild the index") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArchiveIndexError(f"{path} is not an edgeface index description")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise ArchiveIndexError(f"{folder} was written by a newer edgeface (format {meta['version']}); upgrade edgeface")
    return meta
