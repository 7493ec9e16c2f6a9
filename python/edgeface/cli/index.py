"""``edgeface index DIR... --out INDEX``: one Parquet row per face of every image, resumable."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import EXIT_INPUT, EXIT_OK, EXIT_SETUP, detector_options, emit_json, expand_images, progress, usage_error

EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("index", parents=[common], help="index the faces of a photo archive (Parquet)",
                              description="Detect and embed every face of the images below DIR into an index "
                                          "folder of Parquet parts; a rerun skips files already indexed. "
                                          "--threads is per worker.")
    p.add_argument("folders", nargs="+", metavar="DIR", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, metavar="INDEX", help="index folder (created, or resumed)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (Ray: actors); 0 = in this process (default 1)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local processes, or a Ray Data pipeline (pip install 'edgeface[ray]')")
    p.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="Ray cluster to join (e.g. ray://head:10001 or auto); default: a private local Ray")
    p.add_argument("--chunk-files", type=int, default=256, metavar="N",
                   help="commit a Parquet part every N files (and at least every 30 s)")
    p.set_defaults(func=cmd_index)


def archive_missing() -> int:
    """pyarrow is an optional extra: say how to get it instead of a traceback."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("error: archive indexes need pyarrow: pip install 'edgeface[index]'", file=sys.stderr)
        return EXIT_SETUP
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    if archive_missing():
        return EXIT_SETUP
    from ..archive import ArchiveIndexError, build_index
    if args.workers < 0 or args.chunk_files < 1:
        return usage_error("--workers must be >= 0 and --chunk-files >= 1")
    if args.engine == "ray" and args.workers < 1:
        return usage_error("--engine ray needs --workers >= 1 (the number of actors)")
    missing = [f for f in args.folders if not os.path.exists(f)]
    if missing:
        return usage_error(f"not found: {', '.join(missing)}")
    paths = [os.path.abspath(p) for p in expand_images(args.folders)]
    options = {"backend": args.backend, "embedder": args.embedder, **detector_options(args)}
    if args.detector is not None:
        options["detector"] = args.detector
    try:
        summary = build_index(paths, args.out, workers=args.workers, threads=args.threads,
                              analyzer_options=options, engine=args.engine, chunk_files=args.chunk_files,
                              ray_address=args.ray_address, progress=lambda ps: progress(ps, "index"))
    except ArchiveIndexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("\ninterrupted: the files finished so far are committed; run the same command to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for failure in summary.errors:
        print(f"warning: {failure['path']}: {failure['error']}", file=sys.stderr)
    if args.json:
        emit_json({"command": "index", "index": args.out, **summary.to_dict()})
    rate = summary.indexed / summary.seconds if summary.seconds > 0 else 0.0
    print(f"{summary.indexed} images indexed ({summary.faces} faces, {summary.no_face} without a face, "
          f"{summary.failed} failed), {summary.skipped} already indexed, {summary.seconds:.1f} s "
          f"({rate:.2f} images/s, {summary.workers} workers x {summary.threads} threads)", file=sys.stderr)
    if summary.changed:
        print(f"warning: {summary.changed} indexed files changed on disk since; they were not re-indexed "
              "(write a new index to pick them up)", file=sys.stderr)
    return EXIT_INPUT if summary.failed else EXIT_OK
