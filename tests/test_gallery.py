"""Gallery storage and search, with synthetic unit vectors (no models needed)."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import edgeface
from edgeface.gallery import Gallery

DIM = 16


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(v: np.ndarray, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    w = v + noise * rng.normal(size=v.shape).astype(np.float32)
    return w / np.linalg.norm(w, axis=-1, keepdims=True)


def test_round_trip_enroll_close_reopen_identify(tmp_path):
    rng = np.random.default_rng(0)
    alice, bob = unit(rng, 3), unit(rng, 1)
    path = tmp_path / "people.db"
    with Gallery(path, "test-model", DIM) as g:
        g.enroll("alice", alice, sources=["a1.jpg", "a2.jpg", "a3.jpg"])
        g.enroll("bob", bob)
    with Gallery(path, "test-model", DIM, create=False) as g:
        assert [(p.name, p.embeddings) for p in g.people()] == [("alice", 3), ("bob", 1)]
        probes = np.concatenate([near(alice[1:2], rng), near(bob, rng), unit(rng)])
        ids = g.identify(probes, threshold=0.7, top_k=2)
    assert [i.name for i in ids] == ["alice", "bob", None]
    assert ids[0].score > 0.7 and not ids[2].known and len(ids[0].candidates) == 2
    assert ids[0].candidates[0].name == "alice" and ids[0].candidates[0].score >= ids[0].candidates[1].score


@pytest.mark.parametrize("fusion", ["max", "mean", "quality"])
def test_fusions_rank_the_right_person(tmp_path, fusion):
    rng = np.random.default_rng(1)
    centres = unit(rng, 5)
    with Gallery(tmp_path / "g.db", "m", DIM, fusion=fusion) as g:
        for i, c in enumerate(centres):
            g.enroll(f"p{i}", near(np.repeat(c[None], 4, 0), rng, 0.3), qualities=[1, 0.5, 0.2, 1])
        scores = g.scores(near(centres, rng, 0.1))
    assert scores.shape == (5, 5)
    assert list(np.argmax(scores, axis=1)) == [0, 1, 2, 3, 4]


def test_max_fusion_equals_brute_force(tmp_path):
    rng = np.random.default_rng(2)
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        for name, n in [("c", 2), ("a", 3), ("b", 1)]:
            g.enroll(name, unit(rng, n))
        probes = unit(rng, 4)
        matrix, owners = g.embeddings()
        expected = np.array([[max(float(p @ m) for m, o in zip(matrix, owners) if o == name)
                              for name in ["a", "b", "c"]] for p in probes])
        np.testing.assert_allclose(g.scores(probes), expected, atol=1e-6)


def test_foreign_model_gallery_is_refused(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, "model-a", DIM) as g:
        g.enroll("x", unit(np.random.default_rng(3)))
    with pytest.raises(edgeface.GalleryModelMismatchError, match="model-a"):
        Gallery(path, "model-b", DIM)
    with pytest.raises(edgeface.GalleryModelMismatchError):
        Gallery(path, "model-a", DIM * 2)


def test_non_gallery_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database" * 100)
    with pytest.raises(edgeface.GalleryFormatError):
        Gallery(text, "m", DIM)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(edgeface.GalleryFormatError, match="not an edgeface gallery"):
        Gallery(other, "m", DIM)
    with pytest.raises(edgeface.GalleryFormatError):
        Gallery(tmp_path, "m", DIM)  # a directory
    with pytest.raises(edgeface.GalleryError, match="not found"):
        Gallery(tmp_path / "missing.db", "m", DIM, create=False)
    assert text.read_text().startswith("hello")  # never overwritten


def test_rename_remove_and_missing_person(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "g.db"
    with Gallery(path, "m", DIM) as g:
        g.enroll("ann", unit(rng))
        g.enroll("ben", unit(rng))
        g.rename("ann", "anna")
        g.remove("ben")
        with pytest.raises(edgeface.PersonNotFoundError, match="ben"):
            g.remove("ben")
        with pytest.raises(edgeface.PersonNotFoundError):
            g.rename("nobody", "x")
        with pytest.raises(edgeface.InvalidArgumentError):
            g.enroll("  ", unit(rng))
    with Gallery(path, "m", DIM) as g:
        assert [p.name for p in g.people()] == ["anna"]


def test_failed_write_loses_nothing(tmp_path):
    """A change that fails half-way is rolled back; what was committed before survives."""
    rng = np.random.default_rng(5)
    path = tmp_path / "g.db"
    g = Gallery(path, "m", DIM)
    g.enroll("kept", unit(rng, 2))
    with pytest.raises(edgeface.InvalidArgumentError):
        g.enroll("bad", np.full((2, DIM), np.nan, np.float32))
    with pytest.raises(sqlite3.IntegrityError):
        with g._transaction():  # simulate a crash between the two inserts of an enrollment
            g._db.execute("INSERT INTO people (name, created) VALUES ('half', 0)")
            g._db.execute("INSERT INTO embeddings (person_id, block, created) VALUES (NULL, 1, 0)")
    g.close()
    with Gallery(path, "m", DIM) as reopened:
        assert [(p.name, p.embeddings) for p in reopened.people()] == [("kept", 2)]


def test_bad_arguments(tmp_path):
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        with pytest.raises(edgeface.InvalidArgumentError):
            g.enroll("x", np.zeros((1, DIM + 1), np.float32))
        with pytest.raises(edgeface.InvalidArgumentError):
            g.identify(np.zeros((1, 3), np.float32), 0.5)
        with pytest.raises(edgeface.InvalidArgumentError):
            g.identify(unit(np.random.default_rng(6)), 0.5, top_k=0)
        empty = g.identify(unit(np.random.default_rng(7)), 0.5)
        assert empty[0].name is None and empty[0].candidates == ()
    with pytest.raises(edgeface.InvalidArgumentError):
        Gallery(tmp_path / "h.db", "m", DIM, fusion="median")
