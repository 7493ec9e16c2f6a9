"""Archive indexing and search: `edgeface index` rows, resume after SIGKILL, worker processes, search."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="archive indexing needs pyarrow (pip install 'edgeface[index]')")
import pyarrow.dataset as pads  # noqa: E402

from edgeface.archive import ArchiveIndexError, build_index, face_schema, search_face, search_gallery  # noqa: E402
from edgeface.archive.search import index_threshold  # noqa: E402
from edgeface.archive.store import IndexWriter, part_files  # noqa: E402
from edgeface.cli import EXIT_INPUT, EXIT_OK, EXIT_SETUP, main  # noqa: E402
from conftest import EXAMPLE, REPO, default_sigint, shared_data  # noqa: E402

OPTIONS = {"min_face_size": 20.0}


def read_index(folder: Path) -> pa.Table:
    table = pads.dataset([str(p) for p in part_files(folder)], format="parquet").to_table()
    return table.sort_by([("path", "ascending"), ("face", "ascending")])


def small_folder(root: Path, copies: int = 1) -> list[Path]:
    """The bundled portrait (``copies`` times), a blank image (no face) and an undecodable file."""
    import cv2
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(copies):
        paths.append(root / f"astronaut_{i:03d}.jpg")
        shutil.copy(EXAMPLE, paths[-1])
    paths.append(root / "blank.png")
    cv2.imwrite(str(paths[-1]), np.zeros((96, 128, 3), np.uint8))
    paths.append(root / "broken.jpg")
    paths[-1].write_bytes(b"\xff\xd8 not really a jpeg")
    return sorted(paths)


def assert_each_file_once(table: pa.Table, paths: list[Path]) -> None:
    """Every file is in the index, with exactly its own rows: no file twice, none missing."""
    rows: dict[str, list] = {}
    for path, faces, face in zip(table["path"].to_pylist(), table["faces"].to_pylist(), table["face"].to_pylist()):
        rows.setdefault(path, []).append((faces, face))
    assert sorted(rows) == sorted(str(p) for p in paths)
    for path, entries in rows.items():
        faces = entries[0][0]
        expected = [(faces, i) for i in range(faces)] if faces else [(faces, None)]
        assert sorted(entries, key=lambda e: (e[1] is None, e[1])) == expected, path


def test_index_rows_match_the_analyzer_and_record_every_file(tmp_path, analyzer):
    paths = small_folder(tmp_path / "photos")
    summary = build_index(paths, tmp_path / "idx", workers=0, threads=2, analyzer_options=OPTIONS)
    assert (summary.files, summary.indexed, summary.faces, summary.no_face, summary.failed) == (3, 3, 1, 1, 1)
    assert "corrupt" in summary.errors[0]["error"] and summary.errors[0]["path"].endswith("broken.jpg")
    table = read_index(tmp_path / "idx")
    assert table.schema.equals(face_schema(128))
    assert_each_file_once(table, paths)
    by_path = {Path(r["path"]).name: r for r in table.to_pylist()}
    blank, broken, face = by_path["blank.png"], by_path["broken.jpg"], by_path["astronaut_000.jpg"]
    assert blank["faces"] == 0 and blank["face"] is None and blank["embedding"] is None and blank["error"] is None
    assert (blank["width"], blank["height"]) == (128, 96)
    assert broken["faces"] is None and broken["embedding"] is None and "corrupt" in broken["error"]
    assert broken["file_size"] == len(b"\xff\xd8 not really a jpeg") and broken["sha256"] is not None
    expected = analyzer.analyze(str(EXAMPLE))  # same model, same threads: the same numbers
    np.testing.assert_array_equal(np.float32(face["embedding"]), expected.embeddings[0])
    np.testing.assert_array_equal(np.float32(face["box"]), expected.detections.boxes[0])
    np.testing.assert_array_equal(np.float32(face["landmarks"]), expected.detections.landmarks[0].reshape(-1))
    assert face["model"] == analyzer.embedder.spec.name and face["sha256"] and face["file_mtime_ns"] > 0
    assert face["error"] is None and (face["width"], face["height"]) == (512, 512)

    again = build_index(paths, tmp_path / "idx", workers=0, threads=2, analyzer_options=OPTIONS)
    assert (again.skipped, again.indexed, again.parts) == (3, 0, 0)
    assert read_index(tmp_path / "idx").equals(table)


def test_worker_processes_write_the_same_rows_as_one_process(tmp_path):
    paths = small_folder(tmp_path / "photos", copies=3)
    one = build_index(paths, tmp_path / "one", workers=0, threads=1, analyzer_options=OPTIONS)
    two = build_index(paths, tmp_path / "two", workers=2, threads=1, analyzer_options=OPTIONS, chunk_files=1)
    assert (one.indexed, two.indexed, two.workers) == (5, 5, 2) and two.parts >= 1
    assert read_index(tmp_path / "two").equals(read_index(tmp_path / "one"))


def _session_alive(sid: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: session id
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_resume_after_a_killed_run_indexes_every_file_once(tmp_path, sig):
    paths = small_folder(tmp_path / "photos", copies=24)
    out = tmp_path / "idx"
    cmd = [sys.executable, "-c", "import sys; from edgeface.cli import main; sys.exit(main())",
           "index", str(tmp_path / "photos"), "--out", str(out), "--workers", "1", "--threads", "1",
           "--chunk-files", "1", "--min-face", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "tests")}, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 300
        while not (out.exists() and part_files(out)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"index ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)  # 130: Ctrl-C, finished files committed
    # The worker notices its parent is gone and exits: nothing of the killed run is left running.
    deadline = time.monotonic() + 20
    while _session_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _session_alive(proc.pid)

    partial = read_index(out)
    done_before = set(partial["path"].to_pylist())
    assert 0 < len(done_before) < len(paths)
    assert_each_file_once(partial, [p for p in paths if str(p) in done_before])  # committed parts are whole

    summary = build_index(paths, out, workers=0, threads=1, analyzer_options=OPTIONS)
    assert summary.skipped == len(done_before) and summary.indexed == len(paths) - len(done_before)
    final = read_index(out)
    assert_each_file_once(final, paths)
    assert not list(out.glob(".part-*.tmp"))
    embeddings = np.array([e for e in final["embedding"].to_pylist() if e is not None], np.float32)
    assert len(embeddings) == 24 and np.allclose(embeddings, embeddings[0], atol=1e-6)  # 24 copies of one face


def test_resume_refuses_other_settings_and_concurrent_writers(tmp_path, capsys):
    paths = small_folder(tmp_path / "photos")
    build_index(paths[:1], tmp_path / "idx", workers=0, threads=1, analyzer_options=OPTIONS)
    with pytest.raises(ArchiveIndexError, match="min_face_size"):
        build_index(paths, tmp_path / "idx", workers=0, threads=1, analyzer_options={"min_face_size": 40.0})
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    with IndexWriter(tmp_path / "idx", {k: meta[k] for k in ("model", "embedding_space", "dim", "analyzer")}):
        with pytest.raises(ArchiveIndexError, match="another"):
            build_index(paths, tmp_path / "idx", workers=0, threads=1, analyzer_options=OPTIONS)
    code = main(["index", str(tmp_path / "photos"), "--out", str(tmp_path / "idx"), "--workers", "0",
                 "--min-face", "40"])
    assert code == EXIT_SETUP and "min_face_size" in capsys.readouterr().err


def test_unreadable_part_is_a_clear_error(tmp_path, capsys):
    paths = small_folder(tmp_path / "photos")
    build_index(paths, tmp_path / "idx", workers=0, threads=1, analyzer_options=OPTIONS)
    (part,) = part_files(tmp_path / "idx")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    probe = np.ones(128, np.float32)
    with pytest.raises(ArchiveIndexError, match="delete that part"):
        search_face(tmp_path / "idx", probe, 0.0)
    assert main(["search", str(tmp_path / "idx"), "--image", str(EXAMPLE)]) == EXIT_SETUP
    assert main(["search", str(tmp_path / "nothing"), "--image", str(EXAMPLE)]) == EXIT_SETUP
    assert "not an edgeface index" in capsys.readouterr().err


def test_search_by_gallery_and_by_image(tmp_path, capsys):
    knn = shared_data("identification") / "knn_examples"
    gallery, index = str(tmp_path / "people.db"), str(tmp_path / "idx")
    assert main(["enroll", gallery, "--from-dir", str(knn / "train")]) == EXIT_OK
    capsys.readouterr()
    assert main(["index", str(knn / "test"), "--out", index, "--workers", "0", "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (report["indexed"], report["failed"]) == (5, 0)

    assert main(["search", index, "--gallery", gallery, "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "search" and doc["operating_point"] == "far_1e-3"
    found: dict[str, set] = {}
    for face in doc["faces"]:
        found.setdefault(Path(face["path"]).name, set()).add(face["identity"])
        assert (face["identity"] is None) == (face["similarity"] < doc["threshold"])
    assert found["obama1.jpg"] == {"obama"} and found["alex_lacamoire1.jpg"] == {"alex_lacamoire"}
    assert {"obama", "biden"} <= found["obama_and_biden.jpg"]
    assert found["kit_with_rose.jpg"] == {"kit_harington", "rose_leslie"}
    assert found["johnsnow_test1.jpg"] == {"kit_harington"}
    assert main(["search", index, "--gallery", gallery, "--known-only", "--json"]) == EXIT_OK
    known = json.loads(capsys.readouterr().out)["faces"]
    assert len(known) == sum(f["identity"] is not None for f in doc["faces"]) and all(f["identity"] for f in known)

    assert main(["search", index, "--image", str(knn / "train" / "obama" / "obama2.jpg"), "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    sims = [m["similarity"] for m in doc["matches"]]
    assert sims == sorted(sims, reverse=True) and min(sims) >= doc["threshold"]
    assert {Path(m["path"]).name for m in doc["matches"]} == {"obama1.jpg", "obama_and_biden.jpg"}

    # The library calls agree with the command.
    threshold = index_threshold(index, "far_1e-3")
    names = {m.identity for m in search_gallery(index, gallery, threshold, known_only=True)}
    assert names == {"obama", "biden", "alex_lacamoire", "kit_harington", "rose_leslie"}
    top = search_face(index, _embedding_of(index, doc["matches"][0]), -1.0, top=3)
    assert len(top) == 3 and top[0].similarity == pytest.approx(1.0, abs=1e-5)


def _embedding_of(index: str, match: dict) -> np.ndarray:
    table = read_index(Path(index))
    for path, face, emb in zip(table["path"].to_pylist(), table["face"].to_pylist(), table["embedding"].to_pylist()):
        if path == match["path"] and face == match["face"]:
            return np.float32(emb)
    raise AssertionError("match not in the index")


def test_search_image_without_a_face_and_bad_arguments(tmp_path, capsys):
    paths = small_folder(tmp_path / "photos")
    build_index(paths, tmp_path / "idx", workers=0, threads=1, analyzer_options=OPTIONS)
    blank = next(p for p in paths if p.name == "blank.png")
    assert main(["search", str(tmp_path / "idx"), "--image", str(blank)]) == EXIT_INPUT
    assert "no face" in capsys.readouterr().err
    with pytest.raises(Exception, match="top"):
        search_face(tmp_path / "idx", np.ones(128, np.float32), 0.5, top=0)
    with pytest.raises(Exception, match="128"):
        search_face(tmp_path / "idx", np.ones(64, np.float32), 0.5)
