"""The Ray Data engine writes the same index as the local one, on a private local Ray instance (the test
extra brings Ray, so CI runs it; elsewhere it needs pip install 'edgeface[ray]')."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Read when ray is imported (below): no usage report, and a private Ray on loopback only.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
pytest.importorskip("pyarrow", reason="archive indexing needs pyarrow (pip install 'edgeface[index]')")
pytest.importorskip("ray.data", reason="Ray is an optional extra (pip install 'edgeface[ray]', ~240 MB); "
                                       "the Ray engine test runs where it is installed")

from edgeface.archive import build_index  # noqa: E402
from edgeface.archive.schema import read_meta  # noqa: E402
from edgeface.archive.search import index_threshold, search_face, search_gallery  # noqa: E402
from edgeface.gallery import Gallery  # noqa: E402
from test_archive import OPTIONS, assert_each_file_once, read_index, small_folder  # noqa: E402
from conftest import DATA  # noqa: E402


def test_ray_engine_matches_the_single_process_index_and_resumes(tmp_path):
    paths = small_folder(tmp_path / "photos", copies=2)
    knn_test = DATA / "identification" / "knn_examples" / "test"
    if knn_test.is_dir():  # several faces per image, when the shared data is present
        paths += sorted(knn_test.glob("*.jpg"))[:3]
    local = build_index(paths, tmp_path / "local", workers=0, threads=1, analyzer_options=OPTIONS)
    # Half the files first by the local engine, the rest by Ray: Ray resumes from the same index.
    build_index(paths[: len(paths) // 2], tmp_path / "ray", workers=0, threads=1, analyzer_options=OPTIONS)
    summary = build_index(paths, tmp_path / "ray", engine="ray", workers=2, threads=1, analyzer_options=OPTIONS,
                          chunk_files=2)
    assert summary.engine == "ray" and summary.skipped == len(paths) // 2
    assert summary.indexed == len(paths) - len(paths) // 2 and summary.failed == 1  # broken.jpg
    expected, got = read_index(tmp_path / "local"), read_index(tmp_path / "ray")
    assert_each_file_once(got, paths)
    assert got.schema.equals(expected.schema)
    assert got.equals(expected)  # every column, embeddings included, bit for bit
    assert local.faces == sum(e is not None for e in got["embedding"].to_pylist())

    probe = np.float32(next(e for e in got["embedding"].to_pylist() if e is not None))
    threshold = index_threshold(tmp_path / "ray", "far_1e-3")
    assert search_face(tmp_path / "ray", probe, threshold) == search_face(tmp_path / "local", probe, threshold)

    # Who is where: the same identity per face whichever engine wrote the rows; the scores agree to float32
    # rounding (a BLAS product rounds a row by its place in the batch, and the engines batch differently).
    gallery = tmp_path / "people.db"
    with Gallery(gallery, read_meta(tmp_path / "local")["embedding_space"], len(probe)) as people:
        people.enroll("astronaut", probe)
    by_face = {engine: sorted((m.path, m.face, m.identity, m.similarity)
                              for m in search_gallery(tmp_path / engine, gallery, threshold))
               for engine in ("ray", "local")}
    assert [f[:3] for f in by_face["ray"]] == [f[:3] for f in by_face["local"]]
    assert [f[3] for f in by_face["ray"]] == pytest.approx([f[3] for f in by_face["local"]], abs=1e-6)
    assert any(identity == "astronaut" for _, _, identity, _ in by_face["ray"])


def test_private_ray_listens_on_loopback_only():
    import ray
    from edgeface.archive.ray_engine import start_ray
    assert start_ray(None, 1)
    try:
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    finally:
        ray.shutdown()


def test_ray_engine_needs_at_least_one_actor(tmp_path):
    from edgeface.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="workers"):
        build_index([Path("x.jpg")], tmp_path / "idx", engine="ray", workers=0)
