"""``edgeface search INDEX --gallery G | --image FACE.jpg``: who is where, or where is this person."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_INPUT, EXIT_OK, EXIT_SETUP, emit_json, make_analyzer, usage_error
from .index import archive_missing


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("search", parents=[common], help="search an index made by `edgeface index`",
                              description="--gallery: identify every indexed face against a gallery; "
                                          "--image: the indexed faces of the person in an image, best first.")
    p.add_argument("index", metavar="INDEX", help="index folder written by `edgeface index`")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--gallery", metavar="G", help="gallery file (who is where)")
    what.add_argument("--image", metavar="FACE", help="photo of one person, largest face used (find this person)")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine threshold (default: the --operating-point of the index's model)")
    p.add_argument("--top", type=int, default=100, help="--image: at most this many faces (default 100)")
    p.add_argument("--known-only", action="store_true", help="--gallery: list identified faces only")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    if archive_missing():
        return EXIT_SETUP
    from ..archive import ArchiveIndexError, read_meta
    from ..archive.search import index_threshold
    if args.top < 1:
        return usage_error("--top must be >= 1")
    try:
        meta = read_meta(Path(args.index))
        threshold = args.threshold if args.threshold is not None else index_threshold(args.index, args.operating_point)
        if args.gallery:
            return _who_is_where(args, threshold)
        return _find_person(args, meta, threshold)
    except ArchiveIndexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP


def _header(args: argparse.Namespace, threshold: float) -> dict[str, Any]:
    return {"command": "search", "index": args.index, "operating_point": None if args.threshold is not None
            else args.operating_point, "threshold": round(threshold, 5)}


def _who_is_where(args: argparse.Namespace, threshold: float) -> int:
    from ..archive import search_gallery
    faces, known, listed = [], 0, 0
    for match in search_gallery(args.index, args.gallery, threshold, known_only=args.known_only):
        known += match.identity is not None
        listed += 1
        if args.json:
            faces.append(match.to_dict(with_identity=True))
        else:
            x1, y1, x2, y2 = match.box
            print(f"{match.path}\t#{match.face}\t({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f})\t"
                  f"{match.identity or 'unknown'}\t{match.similarity:.3f}")
    if args.json:
        emit_json({**_header(args, threshold), "gallery": args.gallery, "faces": faces})
    print(f"{known} faces identified" + ("" if args.known_only else f", {listed - known} unknown"), file=sys.stderr)
    return EXIT_OK


def _find_person(args: argparse.Namespace, meta: dict[str, Any], threshold: float) -> int:
    from ..archive import search_face
    from ..errors import EdgefaceError
    args.embedder = args.embedder or meta["model"]
    with make_analyzer(args) as analyzer:
        if analyzer.embedder.spec.embedding_space != meta["embedding_space"]:
            return usage_error(f"--embedder {args.embedder} makes {analyzer.embedder.spec.embedding_space} "
                               f"embeddings; the index holds {meta['embedding_space']} ones (leave --embedder out)")
        try:
            face, probe = analyzer.embed_largest(args.image)
        except EdgefaceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT
    if face is None:
        print(f"error: no face found in {args.image}", file=sys.stderr)
        return EXIT_INPUT
    matches = search_face(args.index, probe, threshold, args.top)
    if args.json:
        emit_json({**_header(args, threshold), "image": args.image, "probe": face.to_dict(),
                   "matches": [m.to_dict(with_identity=False) for m in matches]})
    else:
        for m in matches:
            x1, y1, x2, y2 = m.box
            print(f"{m.path}\t#{m.face}\t({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f})\t{m.similarity:.3f}")
    print(f"{len(matches)} faces at similarity >= {threshold:.3f}", file=sys.stderr)
    return EXIT_OK
