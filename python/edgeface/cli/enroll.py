"""``edgeface enroll``: add people's photos to a gallery, idempotently, in one transaction."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import EXIT_INPUT, EXIT_OK, emit_json, expand_images, make_analyzer, progress, usage_error
from ..errors import EdgefaceError

# A photo is ambiguous when its second-largest face has at least this fraction of the largest one's
# area (a face ~70 % as wide): enrolling "the largest" would then be a guess, so the photo is refused.
SIMILAR_FACE_AREA = 0.5

USAGE = "edgeface enroll GALLERY --name NAME IMG|DIR... | edgeface enroll GALLERY --from-dir DIR"


@dataclass
class PersonReport:
    name: str
    photos: int = 0
    enrolled: int = 0
    already_enrolled: int = 0
    problems: list[str] = field(default_factory=list)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "enroll", parents=[common], help="add people to a gallery", usage=USAGE,
        description="Enroll the largest face of each photo. Re-running is safe: a photo already enrolled "
                    "for that person (same file content) is skipped and reported as already enrolled.")
    p.add_argument("gallery", help="gallery file (created if missing)")
    p.add_argument("images", nargs="*", help="photos or folders of photos of NAME (before or after --name)")
    # NAME and the photos may follow --name directly (the documented form); argparse cannot take
    # positionals after an option once the first positional group was consumed, so --name takes them.
    p.add_argument("--name", nargs="+", metavar=("NAME", "IMG"), help="the person in the photos")
    p.add_argument("--from-dir", metavar="DIR",
                   help="one sub-folder of photos per person; each folder's name is the person's name")
    p.add_argument("--replace", action="store_true",
                   help="replace what each person had enrolled with these photos (default: add to it)")
    p.set_defaults(func=cmd_enroll)


def plan(args: argparse.Namespace) -> Union[list[tuple[str, list[Path]]], str]:
    """(person, photos) pairs, or a usage error message."""
    if args.from_dir:
        if args.name or args.images:
            return "--from-dir takes no --name and no images: each sub-folder's name is the person's name"
        root = Path(args.from_dir)
        if not root.is_dir():
            return f"{root} is not a directory"
        folders = sorted(d for d in root.iterdir() if d.is_dir())
        if not folders:
            return (f"{root} has no sub-folders; --from-dir wants one sub-folder of photos per person "
                    f"(e.g. {root}/alice/1.jpg), or use --name NAME {root}")
        people = [(folder.name, expand_images([str(folder)])) for folder in folders]
        where = str(root)
    else:
        if not args.name:
            return f"give --name NAME and images, or --from-dir DIR (usage: {USAGE})"
        name, images = args.name[0], list(args.images) + args.name[1:]
        if not images:
            return f"no images given for {name!r} (usage: {USAGE})"
        people, where = [(name, expand_images(images))], " ".join(images)
    if not any(paths for _, paths in people):
        return f"no images found in {where}"
    return people


def embed_photo(analyzer: Any, path: Path) -> tuple[Optional[np.ndarray], float, str]:
    """(embedding, quality weight, problem) of the one clear face of a photo: refused when several faces are of
    similar size, or when the face's quality is below the enrollment gate (edgeface.quality.check_enrollment)."""
    from ..image_io import read_image
    from ..quality import check_enrollment, enrollment_weight
    image = read_image(path)
    faces = analyzer.detector.detect(image)
    if len(faces) == 0:
        return None, 0.0, "no face found"
    areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    order = np.argsort(-areas)
    if len(faces) > 1 and areas[order[1]] >= SIMILAR_FACE_AREA * areas[order[0]]:
        similar = int(np.sum(areas >= SIMILAR_FACE_AREA * areas[order[0]]))
        return None, 0.0, (f"{similar} faces of similar size, so which one is the person is a guess; "
                           "crop the photo to that person")
    kept, qualities, crops = analyzer.usable_faces(image, faces[[int(order[0])]])
    if len(kept) == 0:
        return None, 0.0, (f"the face is not usable (quality below {analyzer.min_quality:.2f}: blurred, tiny, "
                           "turned away or not a face); use a sharp, frontal photo")
    problem = check_enrollment(qualities[0])
    if problem is not None:
        return None, 0.0, problem
    return analyzer.embedder.embed_aligned(crops, "bgr")[0], enrollment_weight(qualities[0]), ""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cmd_enroll(args: argparse.Namespace) -> int:
    from ..gallery import Gallery, check_name
    people = plan(args)
    if isinstance(people, str):
        return usage_error(people)
    reports = [PersonReport(name) for name, _ in people]
    jobs: list[tuple[PersonReport, Path]] = []
    for report, (name, paths) in zip(reports, people):
        try:
            report.name = check_name(name)
        except EdgefaceError as exc:  # e.g. a folder name in another encoding: skip that person, say why
            report.name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            report.problems.append(f"folder {os.fsencode(name)!r}: {exc}")
            continue
        report.photos = len(paths)
        if not paths:
            report.problems.append(f"no images in the folder of {report.name}")
        jobs += [(report, p) for p in paths]

    names, vectors, qualities, sources, hashes = [], [], [], [], []
    with make_analyzer(args) as analyzer:
        spec = analyzer.embedder.spec
        analyzer.gallery = Gallery(args.gallery, spec.embedding_space, analyzer.embedder.dim, model=spec.name)
        known = {r.name: analyzer.gallery.photo_hashes(r.name) for r in reports} if not args.replace else {}
        for (report, path), _ in zip(jobs, progress([p for _, p in jobs], "enroll")):
            try:
                sha = file_sha256(path)
                if sha in known.get(report.name, ()):
                    report.already_enrolled += 1
                    continue
                vector, quality, problem = embed_photo(analyzer, path)
            except (EdgefaceError, OSError) as exc:
                # most image errors already name the file: say it once
                report.problems.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
                continue
            if vector is None:
                report.problems.append(f"{path}: {problem}")
                continue
            names.append(report.name), vectors.append(vector), qualities.append(quality)
            sources.append(str(path)), hashes.append(sha)
        if vectors:
            done = analyzer.gallery.enroll_many(names, np.stack(vectors), qualities, sources, hashes,
                                                replace=args.replace)
            by_name = {r.name: r for r in reports}
            for name, added in zip(names, done.added):
                if added:
                    by_name[name].enrolled += 1
                else:
                    by_name[name].already_enrolled += 1
    problems = [p for r in reports for p in r.problems]
    for r in reports:
        if not args.json:
            extra = f", {r.already_enrolled} already enrolled" if r.already_enrolled else ""
            print(f"{r.name}: {r.enrolled}/{r.photos} photos enrolled{extra}")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        emit_json({"command": "enroll", "gallery": args.gallery,
                   "people": [{"name": r.name, "photos": r.photos, "enrolled": r.enrolled,
                               "already_enrolled": r.already_enrolled, "problems": r.problems} for r in reports]})
    print(f"{len(reports)} people, {sum(r.enrolled for r in reports)} photos enrolled, "
          f"{sum(r.already_enrolled for r in reports)} already enrolled, {len(problems)} skipped", file=sys.stderr)
    return EXIT_INPUT if problems else EXIT_OK
