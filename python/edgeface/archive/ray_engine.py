"""The same indexing as a Ray Data pipeline: ``read_binary_files`` → ``map_batches`` with one
FaceAnalyzer per actor (``FaceIndexer``) → rows of the same schema, committed by the driver as
Parquet parts exactly like the local engine (so resume and ``edgeface search`` work the same).

The driver writes the parts: the rows are small (~0.7 KB a face) next to the images the cluster reads,
and one writer keeps every part atomic and every file committed once. Local runs bind Ray to loopback
with usage statistics and the dashboard off; on a cluster, ``address`` is passed to ``ray.init``.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional

import pyarrow as pa
import pyarrow.compute as pc

from .rows import RowBuilder
from .schema import ArchiveIndexError
from .store import Committer

# Files per map_batches call: as FILES_PER_TASK in the local engine.
FILES_PER_BATCH = 4
# Files per read block. Each block is one read task, and Ray starts a worker process for every read
# task in flight: 4-file blocks with unbounded reads took 60 s for 600 LFW photos on 2 cores, 16-file
# blocks read by one task per actor 5.3 s (bench/index_scale.py has the whole-folder figures).
FILES_PER_BLOCK = 16


class FaceIndexer:
    """Ray Data callable class: one FaceAnalyzer per actor, made once, then batches of files → rows."""

    def __init__(self, options: dict[str, Any], threads: int) -> None:
        from ..analyzer import FaceAnalyzer
        self.analyzer = FaceAnalyzer(threads=threads, **options)

    def __call__(self, batch: pa.Table) -> pa.Table:
        spec = self.analyzer.embedder.spec
        rows = RowBuilder(self.analyzer.embedder.dim, spec.name, spec.embedding_space)
        for path, data in zip(batch["path"].to_pylist(), batch["bytes"].to_pylist()):
            rows.add(self.analyzer, local_path(path), data)
        return rows.table()


def local_path(path: str) -> str:
    """Ray reports local files as given, or with a ``local://`` scheme: store the plain path."""
    return path[len("local://"):] if path.startswith("local://") else path


def split_complete_files(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Rows of files whose every row is here (a file has ``faces`` rows, or 1 without faces), and the
    rest: a part must never hold half a file, or resuming would skip the missing faces."""
    expected = pc.max_element_wise(pc.fill_null(table["faces"], 1), 1)
    counts = table.group_by("path").aggregate([("path", "count")])
    seen = dict(zip(counts["path"].to_pylist(), counts["path_count"].to_pylist()))
    need = dict(zip(table["path"].to_pylist(), expected.to_pylist()))
    done = pa.array([p for p, n in need.items() if seen[p] == n], pa.string())
    mask = pc.is_in(table["path"], value_set=done)
    return table.filter(mask), table.filter(pc.invert(mask))


def start_ray(address: Optional[str], num_cpus: int) -> bool:
    """Connect to ``address`` or start a private loopback-only Ray; True when this call started it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when ray is imported: no usage report
    if not address:
        # Ray swaps 127.0.0.1 for the host's network address unless "cluster mode" is off (read at import):
        # a private instance then listens on loopback only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ArchiveIndexError("the Ray engine needs Ray: pip install 'edgeface[ray]'") from None
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return True


def run_ray(todo: list[str], options: dict[str, Any], workers: int, threads: int, committer: Committer,
            summary: Any, address: Optional[str] = None) -> None:
    if not todo:
        return
    started = start_ray(address, workers * threads)
    import ray
    import ray.data
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = sys.stderr.isatty()
        # Blocks of a few files, so every actor gets work as soon as some files are read.
        blocks = min(len(todo), max(4 * workers, -(-len(todo) // FILES_PER_BLOCK)))
        # Reading is I/O: its tasks ask for no CPU, else the actors holding every CPU starve them (deadlock);
        # so their number is bounded here instead: one read in flight per actor.
        files = ray.data.read_binary_files(todo, include_paths=True, num_cpus=0, override_num_blocks=blocks,
                                           concurrency=workers)
        rows = files.map_batches(FaceIndexer, fn_constructor_kwargs={"options": options, "threads": threads},
                                 batch_size=FILES_PER_BATCH, batch_format="pyarrow",
                                 compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads)
        carry = None
        for table in rows.iter_batches(batch_size=None, batch_format="pyarrow"):
            complete, carry = split_complete_files(table if carry is None else pa.concat_tables([carry, table]))
            files_in = len(pc.unique(complete["path"]))
            summary.count(complete, files_in)
            committer.add(complete, files_in)
        if carry is not None and carry.num_rows:
            raise ArchiveIndexError(f"Ray returned part of the faces of {carry['path'][0]}; run again to index it")
    finally:
        if started:
            ray.shutdown()
