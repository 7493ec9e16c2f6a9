"""Bad input to the Gallery API: each case must raise a typed EdgefaceError (never an untyped exception,
never a silently wrong answer), and must leave the gallery as it was."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import edgeface
from edgeface.errors import (
    EdgefaceError,
    GalleryError,
    GalleryFormatError,
    InvalidArgumentError,
    InvalidDTypeError,
)
from edgeface.gallery import Gallery

DIM = 16
SURROGATE = "caf\udce9"  # what os.fsdecode gives for the latin-1 folder name b"caf\xe9"


def unit(seed: int = 0, n: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def gallery(tmp_path):
    g = Gallery(tmp_path / "g.db", "m", DIM)
    g.enroll("ann", unit(1))
    yield g
    g.close()


def closed(tmp_path: Path) -> Gallery:
    g = Gallery(tmp_path / "c.db", "m", DIM)
    g.close()
    return g


CALLS: list[tuple[str, Callable[[Gallery], object], type]] = [
    ("surrogate name", lambda g: g.enroll(SURROGATE, unit()), InvalidArgumentError),
    ("surrogate name in bulk", lambda g: g.enroll_many(["ok", SURROGATE], unit(0, 2)), InvalidArgumentError),
    ("surrogate new name", lambda g: g.rename("ann", SURROGATE), InvalidArgumentError),
    ("control characters in name", lambda g: g.enroll("a\nb", unit()), InvalidArgumentError),
    ("name not a string", lambda g: g.enroll(42, unit()), InvalidArgumentError),
    ("qualities nan", lambda g: g.enroll("x", unit(), qualities=[float("nan")]), InvalidArgumentError),
    ("qualities negative", lambda g: g.enroll("x", unit(), qualities=[-1.0]), InvalidArgumentError),
    ("qualities string", lambda g: g.enroll("x", unit(), qualities=["high"]), InvalidDTypeError),
    ("qualities wrong length", lambda g: g.enroll("x", unit(), qualities=[1.0, 1.0]), InvalidArgumentError),
    ("vectors a string", lambda g: g.enroll("x", "0.1, 0.2"), InvalidDTypeError),
    ("vectors of strings", lambda g: g.enroll("x", [["a"] * DIM]), InvalidDTypeError),
    ("vectors of objects", lambda g: g.enroll("x", np.array([{}] * DIM, dtype=object)), InvalidDTypeError),
    ("vectors ragged", lambda g: g.enroll("x", [[0.1] * DIM, [0.1]]), InvalidDTypeError),
    ("vectors wrong dim", lambda g: g.enroll("x", np.ones((1, DIM + 1), np.float32)), InvalidArgumentError),
    ("vectors empty", lambda g: g.enroll("x", np.zeros((0, DIM), np.float32)), InvalidArgumentError),
    ("zero vector enrolled", lambda g: g.enroll("x", np.zeros(DIM, np.float32)), InvalidArgumentError),
    ("nan vector enrolled", lambda g: g.enroll("x", np.full(DIM, np.nan, np.float32)), InvalidArgumentError),
    ("sources not text", lambda g: g.enroll("x", unit(), sources=[3]), InvalidDTypeError),
    ("sha256 one string for many", lambda g: g.enroll("x", unit(0, 2), source_sha256="ab"), InvalidArgumentError),
    ("names one string", lambda g: g.enroll_many("ann", unit()), InvalidArgumentError),
    ("names wrong length", lambda g: g.enroll_many(["a", "b"], unit()), InvalidArgumentError),
    ("nan probe", lambda g: g.identify(np.full(DIM, np.nan, np.float32), 0.5), InvalidArgumentError),
    ("inf probe", lambda g: g.identify(np.full(DIM, np.inf, np.float32), 0.5), InvalidArgumentError),
    ("zero probe", lambda g: g.identify(np.zeros(DIM, np.float32), 0.5), InvalidArgumentError),
    ("string probe", lambda g: g.identify("face", 0.5), InvalidDTypeError),
    ("probe wrong dim", lambda g: g.identify(np.ones(3, np.float32), 0.5), InvalidArgumentError),
    ("nan probe to scores", lambda g: g.scores(np.full(DIM, np.nan, np.float32)), InvalidArgumentError),
    ("top_k a string", lambda g: g.identify(unit(), 0.5, top_k="3"), InvalidDTypeError),
    ("top_k a float", lambda g: g.identify(unit(), 0.5, top_k=2.5), InvalidDTypeError),
    ("top_k zero", lambda g: g.identify(unit(), 0.5, top_k=0), InvalidArgumentError),
    ("threshold nan", lambda g: g.identify(unit(), float("nan")), InvalidArgumentError),
    ("threshold a string", lambda g: g.identify(unit(), "0.5"), InvalidDTypeError),
    ("remove a ghost", lambda g: g.remove("ghost"), edgeface.PersonNotFoundError),
    ("rename onto an existing name", lambda g: (g.enroll("bob", unit(2)), g.rename("ann", "bob")), InvalidArgumentError),
]


@pytest.mark.parametrize("case,call,expected", CALLS, ids=[c[0] for c in CALLS])
def test_bad_call_raises_typed_error_and_changes_nothing(gallery, case, call, expected):
    before = gallery.people()
    with pytest.raises(expected) as info:
        call(gallery)
    assert isinstance(info.value, EdgefaceError) and str(info.value)
    if case != "rename onto an existing name":
        assert gallery.people() == before


@pytest.mark.parametrize("call", [
    lambda g: g.identify(unit(), 0.5), lambda g: g.enroll("x", unit()), lambda g: g.people(),
    lambda g: len(g), lambda g: "ann" in g, lambda g: g.remove("ann"), lambda g: g.scores(unit()),
], ids=["identify", "enroll", "people", "len", "contains", "remove", "scores"])
def test_use_after_close_is_a_gallery_error(tmp_path, call):
    with pytest.raises(GalleryError, match="closed"):
        call(closed(tmp_path))


def test_gallery_in_a_missing_folder(tmp_path):
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery(tmp_path / "nowhere" / "g.db", "m", DIM)


def test_read_only_gallery_reads_and_refuses_writes_with_a_typed_error(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, "m", DIM) as g:
        g.enroll("ann", unit(1))
    with Gallery(path, "m", DIM, read_only=True) as ro:
        assert ro.identify(unit(1), 0.9)[0].name == "ann"
        with pytest.raises(GalleryError, match="read-only"):
            ro.enroll("bob", unit(2))
        ro.read_only = False  # what a file without write permission looks like to SQLite
        with pytest.raises(GalleryError, match="read-only"):
            ro.enroll("bob", unit(2))
        with pytest.raises(GalleryError, match="read-only"):
            ro.rename("ann", "anna")


def tamper(path: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


@pytest.mark.parametrize("sql,params,match", [
    ("UPDATE meta SET value = 'two' WHERE key = 'schema_version'", (), "schema_version"),
    ("UPDATE meta SET value = '16.0x' WHERE key = 'dim'", (), "dim"),
    ("UPDATE meta SET value = '99' WHERE key = 'schema_version'", (), "newer"),
    ("UPDATE blocks SET vectors = ?", (np.full(DIM, np.nan, "<f4").tobytes(),), "NaN"),
    ("UPDATE blocks SET vectors = ?", (np.zeros(DIM, "<f4").tobytes(),), "zero"),
    ("UPDATE blocks SET vectors = x'0000'", (), "inconsistent"),
    ("UPDATE blocks SET quality = ?", (np.array([np.nan], "<f4").tobytes(),), "quality"),
    ("DELETE FROM embeddings", (), "listed"),
], ids=["schema_version text", "dim text", "schema newer", "nan vector", "zero vector", "truncated block",
        "nan quality", "rows missing"])
def test_damaged_gallery_file_does_not_load_silently(tmp_path, sql, params, match):
    path = tmp_path / "g.db"
    with Gallery(path, "m", DIM) as g:
        g.enroll("ann", unit(1))
    tamper(path, sql, *params)
    with pytest.raises(GalleryFormatError, match=match):
        Gallery(path, "m", DIM)


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": "16"}, {"store": "fp8"}, {"fusion": "median"},
                                    {"search": "hnsw"}], ids=["dim 0", "dim text", "store", "fusion", "search"])
def test_bad_constructor_arguments(tmp_path, kwargs):
    options = {"dim": DIM, **kwargs}
    with pytest.raises(InvalidArgumentError):
        Gallery(tmp_path / "g.db", "m", **options)
    assert not (tmp_path / "g.db").exists()


def test_source_paths_with_undecodable_bytes_are_stored(gallery):
    gallery.enroll("cafe", unit(3), sources=[SURROGATE + ".jpg"])
    assert "cafe" in gallery


@pytest.mark.parametrize("name", ["a#b?c%20.db", "caf\udce9.db", "sp ace.db"], ids=["uri chars", "undecodable", "space"])
def test_odd_gallery_file_names_open_that_exact_file(tmp_path, name):
    path = tmp_path / name
    with Gallery(path, "m", DIM) as g:
        g.enroll("ann", unit(1))
    with Gallery(path, "m", DIM, create=False) as g:
        assert len(g) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
