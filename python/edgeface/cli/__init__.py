"""The ``edgeface`` command. JSON output (``--json``) is documented in docs/cli.md and versioned.

Exit codes: 0 everything worked (verify: same person); 1 verify: different people; 2 usage error;
3 some inputs could not be processed (others were, and are reported); 4 a model, backend or gallery
problem stopped the command before it did anything.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from .. import __version__
from ..errors import EdgefaceError, GalleryError, ModelError, BackendError

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE, EXIT_INPUT, EXIT_SETUP = 0, 1, 2, 3, 4
JSON_VERSION = 1
# Sub-commands that live in their own module of this package: each defines
# ``register(subparsers, common_parser)``, which adds its parser and sets ``func``.
COMMAND_MODULES: tuple[str, ...] = ("models",)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files as given; folders expanded to the images below them, sorted."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    return out


def progress(paths: Sequence[Path], label: str) -> Iterator[Path]:
    """A one-line progress bar on stderr when it is a terminal (and nothing otherwise)."""
    tty = sys.stderr.isatty() and len(paths) > 1
    for i, path in enumerate(paths, 1):
        if tty:
            filled = int(30 * i / len(paths))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {i}/{len(paths)}")
            sys.stderr.flush()
        yield path
    if tty:
        sys.stderr.write("\n")


def emit_json(payload: dict[str, Any]) -> None:
    json.dump({"version": JSON_VERSION, **payload}, sys.stdout, indent=2)
    sys.stdout.write("\n")


def make_analyzer(args: argparse.Namespace, gallery: Optional[str] = None, create: bool = True) -> Any:
    from ..analyzer import FaceAnalyzer
    analyzer = FaceAnalyzer(backend=args.backend, threads=args.threads, embedder=args.embedder,
                            min_face_size=args.min_face, operating_point=args.operating_point)
    if gallery is not None:
        analyzer.gallery = analyzer.open_gallery(gallery, create=create)
    return analyzer


def draw(image: Any, result: Any, out_path: Path) -> None:
    import cv2
    from ..image_io import write_image_atomic
    canvas = image.copy()
    for face in result:
        x1, y1, x2, y2 = (int(round(v)) for v in face.face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), 2)
        for x, y in face.face.landmarks:
            cv2.circle(canvas, (int(round(x)), int(round(y))), 2, (0, 0, 255), -1)
        label = f"{face.face.score:.2f}"
        if face.identity is not None:
            label = f"{face.identity.name or 'unknown'} {face.identity.score:.2f}"
        cv2.putText(canvas, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_image_atomic(out_path, canvas)


def run_images(analyzer: Any, paths: list[Path], args: argparse.Namespace, label: str) -> int:
    """Shared by detect and identify: analyze each image, report per image, summarise at the end."""
    from ..image_io import load_image
    records, failed, faces, known = [], 0, 0, 0
    started = time.perf_counter()
    for path in progress(paths, label):
        try:
            image = load_image(path)
            result = analyzer.analyze(image)
        except EdgefaceError as exc:
            failed += 1
            records.append({"path": str(path), "error": str(exc), "faces": []})
            print(f"error: {exc}", file=sys.stderr)
            continue
        faces += len(result)
        known += sum(1 for f in result if f.identity is not None and f.identity.known)
        records.append({"path": str(path), "width": image.shape[1], "height": image.shape[0],
                        "error": None, "faces": result.to_list()})
        if args.draw:
            draw(image, result, Path(args.draw) / f"{path.stem}.jpg")
        if not args.json:
            print_result(path, result)
    elapsed = time.perf_counter() - started
    if args.json:
        emit_json({"command": args.command, "images": records})
    summary = f"{len(paths) - failed}/{len(paths)} images, {faces} faces"
    if analyzer.gallery is not None:
        summary += f", {known} identified, {faces - known} unknown"
    print(f"{summary}, {elapsed:.2f} s", file=sys.stderr)
    return EXIT_INPUT if failed else EXIT_OK


def print_result(path: Path, result: Any) -> None:
    print(f"{path}: {len(result)} face(s)")
    for i, face in enumerate(result):
        x1, y1, x2, y2 = face.face.box
        line = f"  #{i} box=({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}) score={face.face.score:.3f}"
        if face.identity is not None:
            line += f" -> {face.identity.name or 'unknown'} ({face.identity.score:.3f})"
        print(line)


def cmd_detect(args: argparse.Namespace) -> int:
    with make_analyzer(args) as analyzer:
        return run_images(analyzer, expand_images(args.images), args, "detect")


def cmd_identify(args: argparse.Namespace) -> int:
    with make_analyzer(args, args.gallery, create=False) as analyzer:
        return run_images(analyzer, expand_images(args.images), args, "identify")


def enroll_person(analyzer: Any, name: str, paths: list[Path]) -> tuple[int, list[str]]:
    """Embed the largest face of each photo and enroll them all in one transaction."""
    from ..gallery import enrollment_quality
    vectors, qualities, sources, problems = [], [], [], []
    for path in progress(paths, f"enroll {name}"):
        try:
            face, vector = analyzer.embed_largest(path)
        except EdgefaceError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if face is None:
            problems.append(f"{path}: no face found")
            continue
        vectors.append(vector)
        qualities.append(enrollment_quality(face.score, face.width, face.height))
        sources.append(str(path))
    if vectors:
        import numpy as np
        analyzer.gallery.enroll(name, np.stack(vectors), qualities, sources)
    return len(vectors), problems


def cmd_enroll(args: argparse.Namespace) -> int:
    if args.from_dir:
        root = Path(args.from_dir)
        if not root.is_dir():
            return usage_error(f"{root} is not a directory")
        people = [(d.name, expand_images([str(d)])) for d in sorted(root.iterdir()) if d.is_dir()]
    else:
        if not args.name or not args.images:
            return usage_error("give --name NAME and images, or --from-dir DIR")
        people = [(args.name, expand_images(args.images))]
    report, all_problems = [], []
    with make_analyzer(args, args.gallery) as analyzer:
        for name, paths in people:
            added, problems = enroll_person(analyzer, name, paths)
            all_problems.extend(problems)
            report.append({"name": name, "photos": len(paths), "enrolled": added, "problems": problems})
            if not args.json:
                print(f"{name}: {added}/{len(paths)} photos enrolled")
    for problem in all_problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        emit_json({"command": "enroll", "gallery": args.gallery, "people": report})
    print(f"{len(report)} people, {sum(r['enrolled'] for r in report)} photos enrolled, "
          f"{len(all_problems)} skipped", file=sys.stderr)
    return EXIT_INPUT if all_problems else EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    with make_analyzer(args) as analyzer:
        try:
            result = analyzer.verify(args.image_a, args.image_b)
        except EdgefaceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT
    if result is None:
        print("error: no face found in one of the images", file=sys.stderr)
        if args.json:
            emit_json({"command": "verify", "same": None, "score": None, "threshold": analyzer.threshold,
                       "error": "no face found"})
        return EXIT_INPUT
    if args.json:
        emit_json({"command": "verify", "same": result.same, "score": round(result.score, 5),
                   "threshold": round(result.threshold, 5), "operating_point": args.operating_point,
                   "error": None})
    else:
        verdict = "same person" if result.same else "different people"
        print(f"{verdict} (similarity {result.score:.3f}, threshold {result.threshold:.3f} at {args.operating_point})")
    return EXIT_OK if result.same else EXIT_DIFFERENT


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..embedding import Embedder
    from ..gallery import Gallery
    embedder = Embedder(args.embedder, args.backend, 1)
    spec = embedder.spec
    embedder.close()
    with Gallery(args.gallery, spec.embedding_space, spec.embedding_dim, create=False) as gallery:
        if args.action == "list":
            people = gallery.people()
            if args.json:
                emit_json({"command": "gallery list", "gallery": args.gallery, "model": spec.embedding_space,
                           "people": [{"name": p.name, "embeddings": p.embeddings} for p in people]})
            else:
                for p in people:
                    print(f"{p.name}\t{p.embeddings}")
                print(f"{len(people)} people", file=sys.stderr)
        elif args.action == "remove":
            if len(args.names) != 1:
                return usage_error("gallery remove takes one NAME")
            gallery.remove(args.names[0])
            print(f"removed {args.names[0]}", file=sys.stderr)
        else:
            if len(args.names) != 2:
                return usage_error("gallery rename takes OLD NEW")
            gallery.rename(args.names[0], args.names[1])
            print(f"renamed {args.names[0]} to {args.names[1]}", file=sys.stderr)
    return EXIT_OK


def usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    from ..models import default_model, get_model, list_models
    from ..runtime import physical_cores, resolve_backend
    info: dict[str, Any] = {
        "edgeface": __version__, "numpy": np.__version__, "backend": resolve_backend(args.backend),
        "physical_cores": physical_cores(),
        "defaults": {role: default_model(role).name for role in ("embedder",)},
        "models": [{"name": m.name, "role": m.role, "precision": m.precision, "license": m.license}
                   for m in map(get_model, list_models())],
    }
    for module in ("onnxruntime", "openvino", "cv2"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # an optional backend that is not installed is reported, not fatal
            info[module] = None
    if args.json:
        emit_json({"command": "info", **info})
    else:
        for key, value in info.items():
            if key != "models":
                print(f"{key}: {value}")
        for m in info["models"]:
            print(f"model: {m['name']} ({m['role']}, {m['precision']}, {m['license']})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=["onnxruntime", "openvino"], default=None,
                        help="inference backend (default: $EDGEFACE_BACKEND or onnxruntime)")
    common.add_argument("--threads", type=int, default=None, help="inference threads (default: physical cores)")
    common.add_argument("--embedder", default=None, help="embedding model name (see `edgeface info`)")
    common.add_argument("--min-face", type=float, default=20.0, help="smallest face to find, in pixels")
    common.add_argument("--operating-point", default="far_1e-3",
                        choices=["far_1e-2", "far_1e-3", "far_1e-4", "best_accuracy"],
                        help="calibrated threshold for same/unknown decisions")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    parser = argparse.ArgumentParser(prog="edgeface", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"edgeface {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", parents=[common], help="find faces and landmarks")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--draw", metavar="OUT_DIR", help="write annotated copies here")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("enroll", parents=[common], help="add people to a gallery")
    p.add_argument("gallery")
    p.add_argument("images", nargs="*")
    p.add_argument("--name")
    p.add_argument("--from-dir", metavar="DIR", help="one sub-folder of photos per person")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("identify", parents=[common], help="name the faces in images (1:N)")
    p.add_argument("gallery")
    p.add_argument("images", nargs="+")
    p.add_argument("--draw", metavar="OUT_DIR", help="write annotated copies here")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify", parents=[common], help="same person? (1:1, largest face of each image)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("gallery", parents=[common], help="list, remove or rename enrolled people")
    p.add_argument("action", choices=["list", "remove", "rename"])
    p.add_argument("gallery")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("info", parents=[common], help="models, backend and versions")
    p.set_defaults(func=cmd_info)

    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub, common)
    return parser


def main(argv: Optional[Iterable[str]] = None) -> int:
    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        return int(args.func(args))
    except (GalleryError, ModelError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except EdgefaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
