"""``build_index``: index image files into an archive index, in this process, in N worker processes,
or on Ray (``engine="ray"``, see ``ray_engine``). Already indexed files are skipped, so a run that was
killed or interrupted continues where its last committed part ended."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidArgumentError
from ..runtime import physical_cores
from .rows import RowBuilder
from .store import Committer, IndexWriter

Progress = Callable[[Sequence[Path]], Iterable[Path]]
ENGINES = ("local", "ray")
# Files per task sent to a worker: enough to amortise the round trip, few enough to balance the load.
FILES_PER_TASK = 4
# Tasks queued per worker: keeps every worker busy while bounding memory in flight.
TASKS_PER_WORKER = 2


@dataclass
class IndexSummary:
    """What a run did. ``skipped``: already in the index; ``changed``: of those, files whose size or
    mtime differs from when they were indexed (not re-indexed: write a new index to pick them up)."""

    files: int
    skipped: int
    changed: int
    indexed: int = 0
    faces: int = 0
    no_face: int = 0
    failed: int = 0
    parts: int = 0
    seconds: float = 0.0
    engine: str = "local"
    workers: int = 0
    threads: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)  # {"path", "error"} of each failed file

    def count(self, table: pa.Table, files: int) -> None:
        self.indexed += files
        self.faces += int(pc.sum(pc.is_valid(table["face"])).as_py() or 0)
        self.no_face += int(pc.sum(pc.equal(table["faces"], 0)).as_py() or 0)
        failed = table.filter(pc.is_valid(table["error"]))
        self.failed += failed.num_rows
        self.errors += [{"path": p, "error": e} for p, e in zip(failed["path"].to_pylist(), failed["error"].to_pylist())]

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["seconds"] = round(self.seconds, 3)
        out["images_per_second"] = round(self.indexed / self.seconds, 3) if self.seconds > 0 else None
        return out


def describe_analyzer(analyzer: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The index.json settings for an analyzer made from ``options`` (FaceAnalyzer keyword arguments)."""
    spec = analyzer.embedder.spec
    settings = {k: v for k, v in sorted(options.items()) if k not in ("backend", "threads", "embedder")}
    return {"model": spec.name, "embedding_space": spec.embedding_space, "dim": analyzer.embedder.dim,
            "analyzer": settings, "backend": analyzer.embedder.runner.backend}


def rows_for(analyzer: Any) -> RowBuilder:
    spec = analyzer.embedder.spec
    return RowBuilder(analyzer.embedder.dim, spec.name, spec.embedding_space)


def build_index(paths: Sequence[os.PathLike | str], out: os.PathLike | str, *, workers: int = 1,
                threads: Optional[int] = None, analyzer_options: Optional[dict[str, Any]] = None,
                engine: str = "local", chunk_files: int = 256, commit_seconds: float = 30.0,
                ray_address: Optional[str] = None, progress: Optional[Progress] = None) -> IndexSummary:
    """Index ``paths`` (image files) into the index folder ``out``.

    ``workers``: processes (local engine; 0 runs in this process) or Ray actors; ``threads``: inference
    threads of each (default: physical cores / workers). ``analyzer_options``: FaceAnalyzer keyword
    arguments (backend, embedder, min_face_size, ...); a resumed run must use the same. Rows are
    committed as a Parquet part every ``chunk_files`` files or ``commit_seconds``.
    """
    from ..analyzer import FaceAnalyzer
    if engine not in ENGINES:
        raise InvalidArgumentError(f"engine must be one of {ENGINES}, got {engine!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0 or (engine == "ray" and workers < 1):
        raise InvalidArgumentError(f"workers must be an integer >= {1 if engine == 'ray' else 0}, got {workers!r}")
    options = dict(analyzer_options or {})
    threads = threads or max(1, physical_cores() // max(1, workers))
    # Made here first even when workers do the work: a bad model or backend fails now, with its own error.
    analyzer = FaceAnalyzer(threads=threads, **options)
    try:
        with IndexWriter(Path(out), describe_analyzer(analyzer, options)) as writer:
            done = writer.done_files()
            todo, changed = _plan([str(p) for p in paths], done)
            summary = IndexSummary(files=len(paths), skipped=len(paths) - len(todo), changed=changed,
                                   engine=engine, workers=workers, threads=threads)
            committer = Committer(writer, chunk_files, commit_seconds)
            started = time.perf_counter()
            try:
                if engine == "ray":
                    analyzer.close()
                    from .ray_engine import run_ray
                    run_ray(todo, options, workers, threads, committer, summary, ray_address)
                elif workers == 0:
                    _run_here(analyzer, _walk(todo, progress), committer, summary)
                else:
                    analyzer.close()
                    _run_pool(_walk(todo, progress), options, workers, threads, committer, summary)
            finally:
                committer.flush()  # everything finished so far, also on Ctrl-C or a worker failure
                summary.parts = committer.parts
                summary.seconds = time.perf_counter() - started
    finally:
        analyzer.close()
    return summary


def _plan(paths: list[str], done: dict[str, tuple[Optional[int], Optional[int]]]) -> tuple[list[str], int]:
    """Paths still to index (each once, in order) and how many done ones changed on disk since."""
    todo, seen, changed = [], set(), 0
    for path in paths:
        if path in seen:
            continue
        seen.add(path)
        if path not in done:
            todo.append(path)
            continue
        size, mtime = done[path]
        try:
            st = os.stat(path)
        except OSError:
            continue
        if size is not None and (st.st_size != size or (mtime is not None and st.st_mtime_ns != mtime)):
            changed += 1
    return todo, changed


def _walk(todo: list[str], progress: Optional[Progress]) -> Iterator[list[str]]:
    items: Iterable[Any] = progress([Path(p) for p in todo]) if progress else todo
    it = iter(str(p) for p in items)
    while batch := list(islice(it, FILES_PER_TASK)):
        yield batch


def _run_here(analyzer: Any, batches: Iterable[list[str]], committer: Committer, summary: IndexSummary) -> None:
    for batch in batches:
        rows = rows_for(analyzer)
        for path in batch:
            rows.add(analyzer, path)
        table = rows.table()
        summary.count(table, len(batch))
        committer.add(table, len(batch))


# ---- worker processes ---------------------------------------------------------------------------
_worker_analyzer: Any = None


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed (SIGKILL: no cleanup ran) exits instead of idling forever."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(options: dict[str, Any], threads: int, parent: int) -> None:
    global _worker_analyzer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it commits, then stops us)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    from ..analyzer import FaceAnalyzer
    _worker_analyzer = FaceAnalyzer(threads=threads, **options)


def _index_batch(paths: list[str]) -> pa.Table:
    rows = rows_for(_worker_analyzer)
    for path in paths:
        rows.add(_worker_analyzer, path)
    return rows.table()


def _run_pool(batches: Iterable[list[str]], options: dict[str, Any], workers: int, threads: int,
              committer: Committer, summary: IndexSummary) -> None:
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(options, threads, os.getpid()))
    pending: dict[Future, int] = {}
    source = iter(batches)
    try:
        while True:
            while len(pending) < TASKS_PER_WORKER * workers and (batch := next(source, None)) is not None:
                pending[pool.submit(_index_batch, batch)] = len(batch)
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                files = pending.pop(future)
                table = future.result()
                summary.count(table, files)
                committer.add(table, files)
    except BrokenProcessPool as exc:
        from .schema import ArchiveIndexError
        raise ArchiveIndexError(f"a worker process died or could not start ({exc}); the files finished so far "
                                "are committed: run the same command again to continue") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
