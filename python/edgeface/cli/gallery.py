"""``edgeface gallery list|remove|rename``: look after the people in a gallery file, whatever model made it."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from . import EXIT_OK, embedding_options, emit_json, output_options, runtime_options, usage_error
from ..errors import InvalidArgumentError, PersonNotFoundError


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # list/remove/rename need no model options; reembed needs the embedder and the runtime options.
    p = subparsers.add_parser("gallery", parents=[runtime_options(), embedding_options(), output_options()], help="list, remove, rename or re-embed enrolled people",
                              description="The gallery is opened with the model it was made with.")
    p.add_argument("action", choices=["list", "remove", "rename", "reembed"],
                   help="list: everyone and their photo count; remove NAME; rename OLD NEW; reembed NEW_GALLERY "
                        "--embedder NAME: a new gallery re-enrolled from the recorded source photos")
    p.add_argument("gallery", help="gallery file")
    p.add_argument("names", nargs="*", help="NAME (remove), OLD NEW (rename) or NEW_GALLERY (reembed)")
    p.set_defaults(func=cmd_gallery)


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..gallery import Gallery
    if args.action == "reembed":
        if len(args.names) != 1 or args.embedder is None:
            return usage_error("gallery reembed OLD NEW --embedder NAME")
        from .models import cmd_reembed
        return cmd_reembed(argparse.Namespace(**{**vars(args), "old": args.gallery, "new": args.names[0]}))
    expected = {"list": 0, "remove": 1, "rename": 2}[args.action]
    if len(args.names) != expected:
        return usage_error({0: "gallery list takes no NAME", 1: "gallery remove takes one NAME",
                            2: "gallery rename takes OLD NEW"}[expected])
    with Gallery.open(args.gallery, read_only=args.action == "list") as gallery:
        if args.action == "list":
            people = gallery.people()
            if args.json:
                emit_json({"command": "gallery list", "gallery": args.gallery, "model": gallery.model,
                           "embedding_space": gallery.embedding_space, "dim": gallery.dim,
                           "people": [{"name": p.name, "embeddings": p.embeddings} for p in people]})
            else:
                for p in people:
                    print(f"{p.name}\t{p.embeddings}")
                print(f"{len(people)} people", file=sys.stderr)
            return EXIT_OK
        try:  # a NAME that is not enrolled, or taken, is a bad argument (exit 2), not a broken gallery
            if args.action == "remove":
                gallery.remove(args.names[0])
                print(f"removed {args.names[0]}", file=sys.stderr)
            else:
                gallery.rename(args.names[0], args.names[1])
                print(f"renamed {args.names[0]} to {args.names[1]}", file=sys.stderr)
        except (PersonNotFoundError, InvalidArgumentError) as exc:
            return usage_error(f"{exc}; `edgeface gallery list {args.gallery}` shows who is enrolled")
    return EXIT_OK
