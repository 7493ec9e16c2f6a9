"""Gallery at scale: bulk enroll, the incremental in-memory index, reloads when another process writes,
idempotent enrollment, schema-1 migration, the int8 store and the FAISS path (synthetic unit vectors)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

import edgeface
from edgeface.gallery import Gallery

DIM = 32


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(v: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    w = v + noise * rng.normal(size=v.shape).astype(np.float32)
    return w / np.linalg.norm(w, axis=-1, keepdims=True)


def answers(gallery: Gallery, probes: np.ndarray) -> list[tuple[tuple[str, ...], np.ndarray]]:
    return [(tuple(c.name for c in i.candidates), np.array([c.score for c in i.candidates]))
            for i in gallery.identify(probes, 0.5, top_k=5)]


def test_bulk_enroll_is_one_transaction_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    vectors = unit(rng, 3000)
    names = [f"p{i % 1000:04d}" for i in range(3000)]  # 1000 people, 3 photos each, interleaved
    path = tmp_path / "g.db"
    with Gallery(path, "m", DIM) as g:
        report = g.enroll_many(names, vectors, qualities=rng.uniform(0.5, 1, 3000).tolist())
        assert report.n_added == 3000 and report.n_already_enrolled == 0
        assert len(g) == 1000
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 3000
        assert db.execute("SELECT count(*) FROM blocks").fetchone()[0] == 6  # 512-row blocks, not 3000 rows
    with Gallery(path, "m", DIM) as g:
        assert {p.embeddings for p in g.people()} == {3}
        probes = near(vectors[[5, 1500, 2999]], rng)
        assert [i.name for i in g.identify(probes, 0.8)] == [names[5], names[1500], names[2999]]
    with Gallery(path, "m", DIM) as g:  # a failing bulk enroll leaves nothing behind
        with pytest.raises(edgeface.InvalidArgumentError):
            g.enroll_many(["a", "b"], np.stack([vectors[0], np.zeros(DIM, np.float32)]))
        assert len(g) == 1000


@pytest.mark.parametrize("fusion", ["max", "mean", "quality"])
@pytest.mark.parametrize("store", ["float32", "int8"])
def test_incremental_index_equals_full_reload(tmp_path, fusion, store):
    """Enroll, replace, remove and rename in place; a fresh load of the file must answer identically."""
    rng = np.random.default_rng(1)
    path = tmp_path / "g.db"
    centres = unit(rng, 40)
    with Gallery(path, "m", DIM, fusion=fusion, store=store) as g:
        g.enroll_many([f"p{i}" for i in range(40)], centres, qualities=rng.uniform(0.2, 1, 40).tolist())
        for step in range(60):  # single enrolls, some to existing people, some new
            who = int(rng.integers(0, 50))
            g.enroll(f"p{who}", near(centres[who % 40][None].repeat(2, 0), rng, 0.2), qualities=[0.5, 1.0])
            if step % 15 == 7 and f"p{who}" in g:
                g.remove(f"p{who}")
        g.remove("p3")
        g.rename("p4", "renamed")
        g.enroll("p5", centres[5:6], replace=True)
        probes = near(centres, rng, 0.3)
        live = answers(g, probes)
        live_scores = g.scores(probes)
        live_people = g.people()
    with Gallery(path, "m", DIM, fusion=fusion, store=store) as reloaded:
        again = answers(reloaded, probes)
        assert reloaded.people() == live_people
        np.testing.assert_allclose(reloaded.scores(probes), live_scores, atol=1e-5)
    assert [a[0] for a in again] == [a[0] for a in live]
    for (_, a), (_, b) in zip(again, live):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert "renamed" in [p.name for p in live_people] and "p3" not in [p.name for p in live_people]
    assert dict((p.name, p.embeddings) for p in live_people)["p5"] == 1


def test_top_k_with_many_photos_per_person_equals_brute_force(tmp_path):
    rng = np.random.default_rng(2)
    vectors = unit(rng, 600)
    names = [f"p{i % 7}" for i in range(600)]  # few people, many rows each: argpartition must widen
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        g.enroll_many(names, vectors)
        probes = unit(rng, 5)
        got = g.identify(probes, 0.0, top_k=7)
    sims = probes @ vectors.T
    for row, ident in zip(sims, got):
        best = {n: max(s for s, m in zip(row, names) if m == n) for n in set(names)}
        expected = sorted(best, key=lambda n: -best[n])
        assert [c.name for c in ident.candidates] == expected
        np.testing.assert_allclose([c.score for c in ident.candidates], [best[n] for n in expected], atol=1e-6)


CHILD = """
import sys, numpy as np
from edgeface.gallery import Gallery
with Gallery(sys.argv[1], "m", {dim}) as g:
    v = np.random.default_rng(int(sys.argv[2])).normal(size=(1, {dim})).astype(np.float32)
    g.enroll(sys.argv[3], v)
    if len(sys.argv) > 4:
        g.rename(sys.argv[3], sys.argv[4])
"""


def test_reload_after_another_process_writes(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "g.db"
    with Gallery(path, "m", DIM) as g:
        g.enroll("local", unit(rng))
        assert len(g) == 1
        subprocess.run([sys.executable, "-c", CHILD.format(dim=DIM), str(path), "7", "remote"], check=True)
        remote = np.random.default_rng(7).normal(size=(1, DIM)).astype(np.float32)
        (ident,) = g.identify(remote, 0.9)  # no reopen: the index noticed the other process's commit
        assert ident.name == "remote" and ident.score > 0.999
        assert [p.name for p in g.people()] == ["local", "remote"]
        g.enroll("local", unit(rng))  # our own write after theirs keeps both
        subprocess.run([sys.executable, "-c", CHILD.format(dim=DIM), str(path), "8", "tmp", "renamed"], check=True)
        assert [(p.name, p.embeddings) for p in g.people()] == [("local", 2), ("remote", 1), ("renamed", 1)]


def test_rename_racing_another_connection_is_a_typed_error(tmp_path):
    """Connection A's index is stale when B enrolls "bob"; A renaming "ann" to "bob" must not crash."""
    rng = np.random.default_rng(4)
    path = tmp_path / "g.db"
    a = Gallery(path, "m", DIM)
    a.enroll("ann", unit(rng))
    b = Gallery(path, "m", DIM)
    b.enroll("bob", unit(rng))
    with pytest.raises(edgeface.InvalidArgumentError, match="already enrolled"):
        a.rename("ann", "bob")
    assert sorted(p.name for p in a.people()) == ["ann", "bob"]
    a.close(), b.close()


def test_enroll_is_idempotent_per_person_and_photo_hash_and_replace_replaces(tmp_path):
    rng = np.random.default_rng(5)
    v = unit(rng, 3)
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        first = g.enroll_many(["a", "a", "b"], v, source_sha256=["h1", "h2", "h1"])
        assert first.n_added == 3
        again = g.enroll_many(["a", "a", "b"], v, source_sha256=["h1", "h2", "h1"])
        assert again.n_added == 0 and again.n_already_enrolled == 3
        dup = g.enroll_many(["c", "c"], v[:2], source_sha256=["h3", "h3"])  # the same photo twice in one call
        assert dup.added.tolist() == [True, False]
        assert [(p.name, p.embeddings) for p in g.people()] == [("a", 2), ("b", 1), ("c", 1)]
        swapped = g.enroll_many(["a"], v[2:], source_sha256=["h9"], replace=True)
        assert swapped.n_added == 1 and swapped.replaced_people == 1
        assert [(p.name, p.embeddings) for p in g.people()] == [("a", 1), ("b", 1), ("c", 1)]
        assert g.identify(v[2], 0.99)[0].name == "a"


def make_schema1(path, rng, people):
    """A gallery file exactly as edgeface 0.1 (schema 1) wrote it."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
        CREATE TABLE embeddings (id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            vector BLOB NOT NULL, quality REAL NOT NULL, source TEXT, created REAL NOT NULL);
        CREATE INDEX embeddings_person ON embeddings(person_id);""")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "edgeface-gallery"), ("schema_version", "1"),
                   ("embedding_space", "m"), ("dim", str(DIM)), ("created", "0")])
    stored = {}
    for pid, (name, n) in enumerate(people, 1):
        db.execute("INSERT INTO people VALUES (?, ?, 0)", (pid, name))
        vecs = unit(rng, n)
        stored[name] = vecs
        for v in vecs:
            db.execute("INSERT INTO embeddings (person_id, vector, quality, source, created) VALUES (?, ?, 0.7, 'x.jpg', 0)",
                       (pid, v.astype("<f4").tobytes()))
    db.commit()
    db.close()
    return stored


def test_schema1_gallery_is_migrated_without_loss(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "old.db"
    stored = make_schema1(path, rng, [("ann", 2), ("bob", 1), ("cy", 700)])
    with Gallery(path, "m", DIM) as g:
        assert [(p.name, p.embeddings) for p in g.people()] == [("ann", 2), ("bob", 1), ("cy", 700)]
        matrix, owners = g.embeddings()
        for name, vecs in stored.items():
            got = matrix[[i for i, o in enumerate(owners) if o == name]]
            np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(vecs, axis=0))
        g.enroll("dee", unit(rng), source_sha256=["abc"])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert db.execute("SELECT count(*) FROM embeddings WHERE source = 'x.jpg'").fetchone()[0] == 703


def test_model_name_is_recorded(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, "dlib_resnet_v1", DIM, model="dlib_resnet_v1_int8") as g:
        g.enroll("a", unit(np.random.default_rng(7)))
    with Gallery.open(path) as g:
        assert g.model == "dlib_resnet_v1_int8" and g.embedding_space == "dlib_resnet_v1" and g.dim == DIM


def test_int8_store_scores_are_close_to_float32(tmp_path):
    rng = np.random.default_rng(8)
    vectors = unit(rng, 2000)
    names = [f"p{i}" for i in range(2000)]
    probes = near(vectors[:50], rng, 0.5)
    exact = Gallery(tmp_path / "g.db", "m", DIM)
    exact.enroll_many(names, vectors)
    compact = Gallery(tmp_path / "g.db", "m", DIM, store="int8")
    np.testing.assert_allclose(compact.scores(probes), exact.scores(probes), atol=0.01)
    got, want = compact.identify(probes, 0.0, top_k=3), exact.identify(probes, 0.0, top_k=3)
    assert [[c.name for c in i.candidates] for i in got] == [[c.name for c in i.candidates] for i in want]
    # the best candidates are re-scored in float32: identify's scores are float32's, not int8's
    np.testing.assert_allclose([[c.score for c in i.candidates] for i in got],
                               [[c.score for c in i.candidates] for i in want], atol=1e-6)
    exact.close(), compact.close()


def test_faiss_ivf_search_follows_changes(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(9)
    vectors = unit(rng, 4000)
    names = [f"p{i}" for i in range(4000)]
    with Gallery(tmp_path / "g.db", "m", DIM, search="ivf") as g:
        g.enroll_many(names, vectors)
        probes = near(vectors[:200], rng, 0.05)
        hits = [i.name for i in g.identify(probes, 0.5)]
        assert np.mean([h == n for h, n in zip(hits, names[:200])]) >= 0.95
        g.remove("p0")
        g.enroll("new", vectors[0])
        assert g.identify(probes[0], 0.5)[0].name == "new"
        (ident,) = g.identify(probes[1], 0.5, top_k=3)
        assert ident.name == "p1" and len(ident.candidates) == 3
    with pytest.raises(edgeface.InvalidArgumentError):
        Gallery(tmp_path / "h.db", "m", DIM, search="hnsw")


def test_identify_batches_probes(tmp_path):
    rng = np.random.default_rng(10)
    vectors = unit(rng, 100)
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        g.enroll_many([f"p{i}" for i in range(100)], vectors)
        batch = g.identify(near(vectors[:40], rng), 0.8, top_k=2)  # more probes than one search block
        assert [i.name for i in batch] == [f"p{i}" for i in range(40)]


def test_threads_sharing_a_gallery_while_it_changes(tmp_path):
    """Identify from 4 threads while another enrolls: every answer is a consistent, known person."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(11)
    vectors = unit(rng, 200)
    with Gallery(tmp_path / "g.db", "m", DIM) as g:
        g.enroll_many([f"p{i}" for i in range(100)], vectors[:100])
        probes = near(vectors[:100], rng, 0.02)

        def search(i: int) -> str:
            return g.identify(probes[i % 100], 0.9)[0].name

        def grow() -> None:
            for i in range(100, 200, 10):
                g.enroll_many([f"p{j}" for j in range(i, i + 10)], vectors[i:i + 10])
        with ThreadPoolExecutor(5) as pool:
            writer = pool.submit(grow)
            names = list(pool.map(search, range(400)))
            writer.result()
        assert names == [f"p{i % 100}" for i in range(400)]
        assert len(g) == 200
