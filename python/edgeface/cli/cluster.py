"""``edgeface cluster``: group the faces of a photo collection by person, without labels (CDP).

Every face of every photo is embedded by each committee view, clustered by ``edgeface.cluster``,
and written as ``clusters.json``; ``--link OUT_DIR`` adds one folder per person holding symbolic
links to (or, with ``--copy``, copies of) the photos, created without ever following a planted
symbolic link or replacing a file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import EdgefaceError, InvalidArgumentError
from . import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, JSON_VERSION, detection_options, emit_json, find_images,
               make_detector, positive, progress, runtime_options, usage_error, warn)

UNCLUSTERED = "unclustered"  # --link folder for photos with a face that joined no group


def person_folder(label: int) -> str:
    return f"person_{label + 1:04d}"


def embed_collection(args: argparse.Namespace, paths: Sequence[Path], views: Sequence[str]
                     ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], list[dict[str, str]]]:
    """(one record per face, {view: F×D}, failures): every face of every photo, in input order."""
    from ..clustering import Committee
    from ..image_io import load_image
    faces: list[dict[str, Any]] = []
    vectors: dict[str, list[np.ndarray]] = {v: [] for v in views}
    failed: list[dict[str, str]] = []
    with make_detector(args) as detector, \
            Committee(views, args.backend, args.threads) as committee:
        for path in progress(paths, "cluster: embed"):
            try:
                image = load_image(path)
                detections = detector.detect(image)
                embedded = committee.embed(image, detections)
            except EdgefaceError as exc:
                warn(f"error: {exc}")
                failed.append({"path": str(path), "error": str(exc)})
                continue
            for n, face in enumerate(detections):
                faces.append({"path": str(path), "face": n, "box": [round(float(v), 1) for v in face.box],
                              "score": round(float(face.score), 4)})
            for v in views:
                vectors[v].append(embedded[v])
    return faces, {v: np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
                   for v, parts in vectors.items()}, failed


def read_index(path: Path) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Faces of an ``edgeface index`` Parquet file or folder: its ``embedding`` column (and ``path``/
    ``face`` when present). Needs pyarrow."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidArgumentError(f"{path}: reading a Parquet index needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(str(path))
    except Exception as exc:  # pyarrow raises its own error classes
        raise InvalidArgumentError(f"{path}: not a readable Parquet index ({exc})") from None
    if "embedding" not in table.column_names:
        raise InvalidArgumentError(f"{path}: the index has no 'embedding' column")
    vectors = np.asarray(table.column("embedding").to_pylist(), np.float32)
    columns = {c: table.column(c).to_pylist() for c in ("path", "face") if c in table.column_names}
    faces = [{"row": r, **{c: columns[c][r] for c in columns}} for r in range(len(vectors))]
    return faces, {"dlib_resnet_v1": vectors.reshape(len(vectors), -1)}


def is_index(path: Path) -> bool:
    """A Parquet file, or a folder of them (a dataset written by ``edgeface index``)."""
    return path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet")))


def open_dir_nofollow(name: str, parent_fd: Optional[int] = None) -> int:
    """Open a folder for *at() calls, failing on a symbolic link instead of following it."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot use {name!r} as an output folder ({exc.strerror}); "
                                   f"it must be a real folder, not a symbolic link") from None


def place(source: Path, folder_fd: int, name: str, copy: bool) -> None:
    """A symbolic link to (or copy of) ``source`` named ``name`` in the folder; never replaces anything."""
    if copy:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder_fd)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        except BaseException:
            os.unlink(name, dir_fd=folder_fd)  # no half copy left behind (the name is ours: O_EXCL made it)
            raise
    else:
        os.symlink(os.path.abspath(source), name, dir_fd=folder_fd)


def link_clusters(out: Path, groups: dict[str, list[str]], copy: bool) -> int:
    """One new sub-folder of OUT per group; returns the number of links (or copies) made."""
    out.mkdir(parents=True, exist_ok=True)
    root = open_dir_nofollow(str(out))
    made = 0
    try:
        for folder, sources in progress(list(groups.items()), "cluster: link"):  # type: ignore[arg-type]
            try:
                os.mkdir(folder, dir_fd=root)
            except FileExistsError:
                raise InvalidArgumentError(f"{out / folder} already exists; give --link a new or empty folder") from None
            sub = open_dir_nofollow(folder, root)
            try:
                used: set[str] = set()
                for source in sources:
                    name = unique_name(Path(source).name, used)
                    place(Path(source), sub, name, copy)
                    made += 1
            finally:
                os.close(sub)
    finally:
        os.close(root)
    return made


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``stem_2.ext``, ``stem_3.ext`` ... when photos from different folders share a name."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}_{n}{suffix}"
    used.add(candidate)
    return candidate


def write_json_new(path: Path, payload: dict[str, Any], overwrite: bool) -> None:
    """Atomic write (temporary file in the same folder, then rename); refuses to replace without ``overwrite``."""
    if os.path.lexists(path) and not overwrite:
        raise InvalidArgumentError(f"{path} already exists; not overwriting it (pass --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"version": JSON_VERSION, **payload}, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def group_photos(faces: list[dict[str, Any]], labels: np.ndarray) -> dict[str, list[str]]:
    """--link folders: each person's photos (a photo with two people is in both), then the photos with
    a face that joined no group."""
    groups: dict[str, dict[str, None]] = {}  # ordered sets
    for face, label in sorted(zip(faces, labels.tolist()), key=lambda fl: (fl[1] < 0, fl[1])):
        if "path" in face:
            groups.setdefault(person_folder(label) if label >= 0 else UNCLUSTERED, {})[face["path"]] = None
    return {folder: list(photos) for folder, photos in groups.items()}


def cmd_cluster(args: argparse.Namespace) -> int:
    from ..clustering import cluster, default_views
    if args.link and os.path.lexists(args.link) and (os.path.islink(args.link) or not os.path.isdir(args.link)):
        return usage_error(f"--link {args.link}: exists and is not a folder; give a new or empty folder")
    if args.link and os.path.isdir(args.link) and os.listdir(args.link):
        return usage_error(f"--link {args.link}: the folder is not empty; give a new or empty folder")
    if os.path.lexists(args.out) and not args.overwrite:
        return usage_error(f"--out {args.out} already exists; pass --overwrite to replace it")
    indexes = [p for p in args.inputs if is_index(Path(p))]
    failed: list[dict[str, str]] = []
    try:
        if indexes:
            if len(args.inputs) != 1:
                return usage_error("give one Parquet index, or image files and folders, not both")
            faces, views = read_index(Path(args.inputs[0]))
            n_images = len({f.get("path") for f in faces})
        else:
            inputs = find_images(args.inputs)
            for folder in inputs.empty_folders:
                warn(f"error: {folder}: no images in this folder")
            chosen = tuple(args.views.split(",")) if args.views else default_views()
            faces, views, failed = embed_collection(args, inputs.paths, chosen)
            n_images = len(inputs.paths)
        labels = cluster(views, threshold=args.threshold, max_size=args.max_size)
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    clusters: dict[int, list[dict[str, Any]]] = {}
    for face, label in zip(faces, labels.tolist()):
        clusters.setdefault(label, []).append(face)
    payload = {"command": "cluster", "views": list(views), "images": n_images, "faces": len(faces),
               "clusters": [{"label": c, "folder": person_folder(c), "faces": clusters[c]}
                            for c in sorted(c for c in clusters if c >= 0)],
               "unclustered": clusters.get(-1, []), "failed": failed}
    write_json_new(Path(args.out), payload, args.overwrite)
    made = link_clusters(Path(args.link), group_photos(faces, labels), args.copy) if args.link else 0
    if args.json:
        emit_json({**payload, "out": args.out, "link": args.link})
    people = len(payload["clusters"])
    print(f"{n_images} images, {len(faces)} faces: {people} people, {len(payload['unclustered'])} faces in no "
          f"group, {len(failed)} images failed; wrote {args.out}"
          + (f" and {made} {'copies' if args.copy else 'links'} in {args.link}" if args.link else ""), file=sys.stderr)
    return EXIT_INPUT if failed else EXIT_OK


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "cluster", parents=[runtime_options(), detection_options()],
        help="group a photo collection by person (no labels needed)",
        description="Find every face in the photos, group the faces by person with consensus-driven "
                    "propagation, and write the groups as JSON (and, with --link, one folder per person).")
    p.add_argument("inputs", nargs="+", metavar="DIR|INDEX",
                   help="photos (files or folders, searched recursively) or one Parquet index with an "
                        "'embedding' column")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the groups (JSON)")
    p.add_argument("--link", metavar="OUT_DIR", help="also make one folder per person with links to its photos")
    p.add_argument("--copy", action="store_true", help="with --link: copy the photos instead of linking them")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--views", metavar="V1,V2",
                   help="committee views to compute, e.g. dlib_resnet_v1,dlib_resnet_v1+flip "
                        "(default: the best set whose models are installed)")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="mediator probability needed to join two faces (default: tuned, stored with the mediator)")
    p.add_argument("--max-size", type=positive(int), metavar="N",
                   help="split groups larger than this at their weakest links (default: stored with the mediator)")
    p.add_argument("--json", action="store_true", help="also print the groups as one JSON document on stdout")
    p.set_defaults(func=cmd_cluster)
