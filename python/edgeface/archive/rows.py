"""One image file → its index rows. Shared by every engine (in-process, worker processes, Ray actors),
so they write identical rows for identical inputs."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from ..errors import EdgefaceError
from ..image_io import decode_image
from .schema import BOX_SIZE, LANDMARK_SIZE, face_schema

# Bigger files are recorded as errors instead of being read: reading one would take that much memory.
MAX_FILE_BYTES = 512 << 20


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: Optional[int] = None
    mtime_ns: Optional[int] = None
    sha256: Optional[str] = None


def read_file(path: str) -> tuple[FileInfo, bytes]:
    """The file's bytes and the size/mtime of exactly the file that was read (fstat on the open fd)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size > MAX_FILE_BYTES:
            raise OSError(f"{path}: file is {st.st_size} bytes, more than the {MAX_FILE_BYTES} an image may have")
        data = f.read()
    return FileInfo(path, len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest()), data


def stat_info(path: str, data: bytes) -> FileInfo:
    """For engines that were handed the bytes (Ray): mtime when the path is a local file, else null."""
    try:
        mtime: Optional[int] = os.stat(path).st_mtime_ns
    except OSError:
        mtime = None
    return FileInfo(path, len(data), mtime, hashlib.sha256(data).hexdigest())


class RowBuilder:
    """Accumulates the rows of several files and turns them into one Arrow table of ``face_schema``."""

    def __init__(self, dim: int, model: str, embedding_space: str) -> None:
        self.schema = face_schema(dim)
        self.dim = int(dim)
        self.model, self.embedding_space = model, embedding_space
        self.files = 0
        self._scalars: dict[str, list[Any]] = {name: [] for name in (
            "path", "file_size", "file_mtime_ns", "sha256", "width", "height", "faces", "face", "score",
            "quality", "error")}
        self._boxes: list[np.ndarray] = []
        self._landmarks: list[np.ndarray] = []
        self._embeddings: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []  # False on the one row of a file without faces

    def add(self, analyzer: Any, path: str, data: Optional[bytes] = None) -> None:
        """Index one file (read here when ``data`` is None). Unreadable or undecodable files get one
        row with their error; files without faces one row with ``faces = 0``."""
        self.files += 1
        info = FileInfo(path)
        try:
            info, data = read_file(path) if data is None else (stat_info(path, data), data)
            image = decode_image(data)
            result = analyzer.analyze(image)
        except (EdgefaceError, OSError) as exc:
            self._add_file_row(info, None, None, str(exc))
            return
        height, width = image.shape[:2]
        count = len(result)
        if count == 0:
            self._add_file_row(info, (width, height), 0, None)
            return
        detections = result.detections
        qualities = getattr(result, "qualities", None)  # per-face quality, when the analyzer computes it
        s = self._scalars
        s["path"] += [info.path] * count
        s["file_size"] += [info.size] * count
        s["file_mtime_ns"] += [info.mtime_ns] * count
        s["sha256"] += [info.sha256] * count
        s["width"] += [width] * count
        s["height"] += [height] * count
        s["faces"] += [count] * count
        s["face"] += list(range(count))
        s["score"] += detections.scores.tolist()
        s["quality"] += (np.asarray(qualities.score, np.float32).tolist() if qualities is not None else [None] * count)
        s["error"] += [None] * count
        self._boxes.append(np.asarray(detections.boxes, np.float32).reshape(count, BOX_SIZE))
        self._landmarks.append(np.asarray(detections.landmarks, np.float32).reshape(count, LANDMARK_SIZE))
        self._embeddings.append(np.asarray(result.embeddings, np.float32).reshape(count, self.dim))
        self._valid.append(np.ones(count, bool))

    def _add_file_row(self, info: FileInfo, size: Optional[tuple[int, int]], faces: Optional[int],
                      error: Optional[str]) -> None:
        s = self._scalars
        for key, value in (("path", info.path), ("file_size", info.size), ("file_mtime_ns", info.mtime_ns),
                           ("sha256", info.sha256), ("width", size[0] if size else None),
                           ("height", size[1] if size else None), ("faces", faces), ("face", None),
                           ("score", None), ("quality", None), ("error", error)):
            s[key].append(value)
        self._boxes.append(np.zeros((1, BOX_SIZE), np.float32))
        self._landmarks.append(np.zeros((1, LANDMARK_SIZE), np.float32))
        self._embeddings.append(np.zeros((1, self.dim), np.float32))
        self._valid.append(np.zeros(1, bool))

    def table(self) -> pa.Table:
        rows = len(self._scalars["path"])
        null = ~np.concatenate(self._valid) if rows else np.zeros(0, bool)

        def fixed(parts: list[np.ndarray], width: int) -> pa.Array:
            values = np.concatenate(parts).reshape(-1) if parts else np.zeros(0, np.float32)
            return pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), width, mask=pa.array(null))

        columns: dict[str, Any] = dict(self._scalars)
        columns["box"] = fixed(self._boxes, BOX_SIZE)
        columns["landmarks"] = fixed(self._landmarks, LANDMARK_SIZE)
        columns["embedding"] = fixed(self._embeddings, self.dim)
        columns["model"] = [self.model] * rows
        columns["embedding_space"] = [self.embedding_space] * rows
        return pa.table({f.name: columns[f.name] for f in self.schema}, schema=self.schema)
