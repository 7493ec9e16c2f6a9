"""``edgeface models import|list|remove``: third-party embedders the user owns, beside the bundled models.

Also ``cmd_reembed``, the handler of ``edgeface gallery reembed OLD.db NEW.db --embedder NAME`` (wired into
the ``gallery`` sub-command by that command's module).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from . import EXIT_INPUT, EXIT_OK, emit_json, output_options


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("models", help="list, import or remove models (e.g. your MobileFaceNet .tflite)")
    sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION",
                           help="import, list or remove")

    q = sub.add_parser("import", parents=[output_options()], help="import a model file you own into your model folder")
    q.add_argument("kind", choices=["mobilefacenet"], help="what the file is")
    q.add_argument("file", help="the file, e.g. MobileFaceNet.tflite")
    q.add_argument("--name", default=None, help="model name (default: the kind; the INT8 one gets _int8)")
    q.add_argument("--calibrate", metavar="PAIRS.tsv", default=None,
                   help="labelled photo pairs (path1, path2, same) to calibrate thresholds for a file edgeface "
                        "does not know")
    q.add_argument("--force", action="store_true", help="replace an imported model of the same name")
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("list", parents=[output_options()], help="bundled and imported models, and where each lives")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("remove", parents=[output_options()], help="remove an imported model")
    q.add_argument("name", help="the imported model's name (see `edgeface models list`)")
    q.set_defaults(func=cmd_remove)


def cmd_import(args: argparse.Namespace) -> int:
    from ..model_import import import_model
    quiet = args.json
    result = import_model(args.kind, args.file, name=args.name, calibrate_pairs=args.calibrate, force=args.force,
                          log=(lambda msg: print(msg, file=sys.stderr)) if quiet else print)
    if args.json:
        emit_json({"command": "models import", "models": result.names, "folder": str(result.folder),
                   "thresholds_from": result.thresholds_from, "parity": result.parity, "caveat": result.caveat,
                   "notes": result.notes})
    else:
        print(f"thresholds: {result.thresholds_from}")
        print(f"use it with: --embedder {result.names[1]} (INT8) or --embedder {result.names[0]} (fp32)")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from ..model_import import model_table
    rows = model_table()
    if args.json:
        emit_json({"command": "models list", "models": rows})
        return EXIT_OK
    for r in rows:
        flags = "" if r["thresholds"] or r["role"] != "embedder" else "  [no calibrated thresholds]"
        note = f"  ({r['note']})" if r["note"] else ""
        print(f"{r['name']:24s} {r['role']:14s} {r['precision']:5s} {r['origin']:20s} {r['path']}{flags}{note}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from ..model_import import remove_model
    path = remove_model(args.name)
    if args.json:
        emit_json({"command": "models remove", "name": args.name, "file": str(path)})
    else:
        print(f"removed {args.name} ({path})")
    return EXIT_OK


def cmd_reembed(args: argparse.Namespace) -> int:
    """``gallery reembed OLD NEW --embedder NAME``: expects args.old, args.new, args.embedder (+ backend, threads)."""
    from ..reembed import reembed_gallery
    report = reembed_gallery(args.old, args.new, embedder=args.embedder, backend=args.backend, threads=args.threads)
    if args.json:
        emit_json({"command": "gallery reembed", **report.to_dict()})
    else:
        print(f"re-enrolled {report.embeddings} photo(s) of {len(report.people)} person(s) into {report.new_path} "
              f"({report.embedding_space})")
        for problem in report.problems:
            print(f"not re-enrolled: {problem}")
    return EXIT_INPUT if report.problems else EXIT_OK
