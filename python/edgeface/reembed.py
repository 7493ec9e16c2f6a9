"""Re-enrolling a gallery with another embedder (``edgeface gallery reembed OLD NEW --embedder NAME``).

A gallery is bound to its embedding space, so switching embedders (e.g. dlib -> an imported
MobileFaceNet) means embedding the enrolled photos again. The old gallery records the photo each
embedding came from; this module reads those sources, embeds the largest face of each photo with the
new embedder and writes a new gallery. The old file is only read; the new one appears complete or not
at all (built under a temporary name beside it, then renamed). Photos that are gone, unreadable or
faceless, and embeddings enrolled without a recorded source, are reported, never silently dropped.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .errors import EdgefaceError, GalleryError, GalleryFormatError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Source:
    """One stored embedding's person and photo path (None if it was enrolled without one)."""

    name: str
    path: Optional[str]


@dataclass
class ReembedReport:
    new_path: str
    embedding_space: str
    embeddings: int = 0
    people: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def sources(gallery_path: PathLike) -> list[Source]:
    """The recorded source photo of every embedding in a gallery file, read-only (the file is not changed,
    and no Gallery object, which would create a missing file, is opened)."""
    path = Path(gallery_path)
    if not path.is_file():
        raise GalleryError(f"gallery not found: {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT p.name, e.source FROM embeddings e JOIN people p "
                              "ON p.id = e.person_id ORDER BY p.name, e.id").fetchall()
    except sqlite3.DatabaseError as exc:
        raise GalleryFormatError(f"{path} is not an edgeface gallery ({exc})") from exc
    return [Source(str(n), None if s is None else str(s)) for n, s in rows]


def _locate(source: str, gallery_dir: Path) -> Optional[Path]:
    """The photo as recorded (absolute, or relative to the working directory), else beside the gallery."""
    for candidate in (Path(source), gallery_dir / source):
        if candidate.is_file():
            return candidate
    return None


def reembed_gallery(old_path: PathLike, new_path: PathLike, embedder: str, backend: Optional[str] = None,
                    threads: Optional[int] = None, **detector_options: object) -> ReembedReport:
    """Build ``new_path`` from the source photos of ``old_path`` with ``embedder``; return what was done."""
    from .analyzer import FaceAnalyzer
    from .gallery import Gallery, enrollment_quality

    old, new = Path(old_path), Path(new_path)
    recorded = sources(old)
    if new.exists() or new.is_symlink():
        raise GalleryError(f"{new} already exists; give a new file name (the old gallery {old} is never changed)")
    if old.resolve() == new.resolve():
        raise GalleryError("the new gallery must be a different file from the old one")
    report = None
    fd, tmp_name = tempfile.mkstemp(dir=new.parent if str(new.parent) else ".", prefix=f".{new.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # Gallery creates the SQLite file itself; mkstemp only reserved a unique name
    try:
        with FaceAnalyzer(backend=backend, threads=threads, embedder=embedder, **detector_options) as analyzer:
            spec = analyzer.embedder.spec
            report = ReembedReport(str(new), spec.embedding_space)
            with Gallery(tmp, spec.embedding_space, analyzer.embedder.dim, model=spec.name) as gallery:
                by_person: dict[str, list[Source]] = {}
                for s in recorded:
                    by_person.setdefault(s.name, []).append(s)
                for name, items in by_person.items():
                    vectors, qualities, paths = [], [], []
                    for s in items:
                        if s.path is None:
                            report.problems.append(f"{name}: an embedding was enrolled without a source photo")
                            continue
                        photo = _locate(s.path, old.parent)
                        if photo is None:
                            report.problems.append(f"{name}: {s.path}: photo not found")
                            continue
                        try:
                            face, vector = analyzer.embed_largest(str(photo))
                        except EdgefaceError as exc:
                            report.problems.append(f"{name}: {s.path}: {exc}")
                            continue
                        if face is None:
                            report.problems.append(f"{name}: {s.path}: no face found with the new detector settings")
                            continue
                        vectors.append(vector)
                        qualities.append(enrollment_quality(face.score, face.width, face.height))
                        paths.append(s.path)
                    if vectors:
                        gallery.enroll(name, np.stack(vectors), qualities, paths)
                        report.people.append(name)
                        report.embeddings += len(vectors)
                    else:
                        report.problems.append(f"{name}: no photo could be re-enrolled; this person is not in {new}")
        os.replace(tmp, new)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return report
