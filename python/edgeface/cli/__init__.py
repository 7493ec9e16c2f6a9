"""The ``edgeface`` command. JSON output (``--json``, ``--jsonl``) is documented in docs/cli.md and versioned.

Exit codes: 0 everything worked (verify: same person); 1 verify: different people; 2 usage error;
3 some inputs could not be processed (others were, and are reported); 4 a model, backend or gallery
problem stopped the command before it did anything; 130 interrupted (Ctrl-C); 141 stdout closed early.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Optional, Sequence

from .. import __version__
from ..errors import BackendError, EdgefaceError, GalleryError, ModelError

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE, EXIT_INPUT, EXIT_SETUP = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `yes | head` reports
JSON_VERSION = 1
# Sub-commands that live in their own module of this package: each defines
# ``register(subparsers, common_parser)``, which adds its parser and sets ``func``.
COMMAND_MODULES: tuple[str, ...] = ("detect", "enroll", "identify", "verify", "gallery", "index", "search",
                                   "cluster", "models", "info")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageInputs:
    """What the image arguments expand to: the image files, and the folders that held none."""

    paths: list[Path]
    empty_folders: list[Path]


def find_images(items: Sequence[str]) -> ImageInputs:
    """Files as given; folders expanded to the images below them, sorted; empty folders noted."""
    paths: list[Path] = []
    empty: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            paths.extend(found)
            if not found:
                empty.append(p)
        else:
            paths.append(p)
    return ImageInputs(paths, empty)


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files as given; folders expanded to the images below them, sorted."""
    return find_images(items).paths


def progress(paths: Sequence[Path], label: str) -> Generator[Path, None, None]:
    """A tqdm bar (count, rate, ETA) on stderr when it is a terminal, nothing otherwise."""
    from tqdm import tqdm
    yield from tqdm(paths, desc=label, unit="img", file=sys.stderr, dynamic_ncols=True,
                    disable=not (sys.stderr.isatty() and len(paths) > 1))


def warn(message: str) -> None:
    """A line on stderr that never lands inside a progress bar."""
    from tqdm import tqdm
    tqdm.write(message, file=sys.stderr)


def emit_json(payload: dict[str, Any]) -> None:
    json.dump({"version": JSON_VERSION, **payload}, sys.stdout, indent=2)
    sys.stdout.write("\n")


def emit_jsonl(payload: dict[str, Any]) -> None:
    """One JSON Lines record, flushed at once so a reader sees each result as it arrives."""
    sys.stdout.write(json.dumps({"version": JSON_VERSION, **payload}) + "\n")
    sys.stdout.flush()


def detector_options(args: argparse.Namespace) -> dict[str, Any]:
    """--min-face is passed only when given, so each detector keeps its own default."""
    return {} if args.min_face is None else {"min_face_size": args.min_face}


def make_detector(args: argparse.Namespace) -> Any:
    """A detector alone: for commands that never embed (``detect``)."""
    from ..detection import create_detector
    return create_detector(getattr(args, "detector", None), args.backend, args.threads, **detector_options(args))


def make_analyzer(args: argparse.Namespace, gallery: Optional[str] = None, create: bool = True) -> Any:
    from ..analyzer import FaceAnalyzer
    analyzer = FaceAnalyzer(backend=args.backend, threads=args.threads, embedder=args.embedder,
                            detector=getattr(args, "detector", None),
                            operating_point=getattr(args, "operating_point", "far_1e-3"),
                            **detector_options(args))
    if gallery is not None:
        analyzer.gallery = analyzer.open_gallery(gallery, create=create)
    return analyzer




def usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where there is a default worth showing (not None, not a False flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action) or ""


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: a number > 0 (0 threads or a 0-pixel face make no sense)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def min_face_px(text: str) -> float:
    """An argparse type: the smallest face, at least MTCNN's MIN_FACE_SIZE (a usage error, exit 2)."""
    from ..detection.mtcnn import MIN_FACE_SIZE
    value = positive(float)(text)
    if not value >= MIN_FACE_SIZE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_FACE_SIZE:g} px, got {text}")
    return value


def detector_name(text: str) -> str:
    """An argparse type: a registered detector (edgeface.detection.DETECTORS)."""
    from ..detection import DETECTORS
    if text.strip().lower() in DETECTORS:
        return text.strip().lower()
    raise argparse.ArgumentTypeError(f"unknown detector {text!r} (detectors: {', '.join(sorted(DETECTORS))})")


def embedder_name(text: str) -> str:
    """An argparse type: a manifest model whose role is "embedder", with a did-you-mean otherwise."""
    from ..models import get_model, list_models
    names = [n for n in list_models() if get_model(n).role == "embedder"]
    if text in names:
        return text
    close = difflib.get_close_matches(text, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(f"unknown embedder {text!r}{hint} (embedders: {', '.join(names)})")


def default_embedder() -> str:
    from ..models import default_model
    return default_model("embedder").name


def runtime_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--backend", choices=["onnxruntime", "openvino"], default=None,
                   help="inference backend (default: $EDGEFACE_BACKEND, else onnxruntime)")
    p.add_argument("--threads", type=positive(int), default=None, metavar="N",
                   help="inference threads (default: the physical cores this process may use)")
    return p


def detection_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--detector", default=None, type=detector_name, metavar="NAME",
                   help="face detector: yunet or mtcnn (default: yunet, edgeface.detection.DEFAULT_DETECTOR)")
    p.add_argument("--min-face", type=min_face_px, default=None, metavar="PX",
                   help="smallest face to report, in pixels (default: every size for YuNet; "
                        "default 20 for MTCNN, where larger is faster)")
    return p


def embedding_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--embedder", type=embedder_name, default=None, metavar="NAME",
                   help=f"embedding model (default: {default_embedder()}; `edgeface info` lists them)")
    return p


def matching_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--operating-point", default="far_1e-3",
                   choices=["far_1e-2", "far_1e-3", "far_1e-4", "best_accuracy"],
                   help="calibrated threshold for same/unknown decisions (false-accept rate on LFW)")
    return p


def output_options(jsonl: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    if not jsonl:
        p.add_argument("--json", action="store_true", help="one JSON document on stdout")
        return p
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true",
                       help="one JSON document on stdout at the end (with what was done if interrupted)")
    group.add_argument("--jsonl", action="store_true",
                       help="JSON Lines on stdout: one record per image as soon as it is done")
    return p


def build_parser() -> argparse.ArgumentParser:
    # Every option, for sub-commands that take all of them; the commands of this package pick
    # only the option groups that apply to them.
    common = argparse.ArgumentParser(add_help=False, parents=[
        runtime_options(), detection_options(), embedding_options(), matching_options(), output_options()])

    parser = Parser(prog="edgeface", description="Face detection, identification (1:N) and verification (1:1) "
                    "on the CPU, offline. `edgeface COMMAND --help` shows the options of each command.",
                    epilog="Exit codes and JSON output: docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"edgeface {__version__}")
    sub: Any = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")


    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub, common)
    return parser


def silence_stdout() -> None:
    """After a reader closed the pipe: point stdout at /dev/null so the exit-time flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (e.g. under a test)
        pass


def main(argv: Optional[Iterable[str]] = None) -> int:
    try:
        try:
            args = build_parser().parse_args(None if argv is None else list(argv))
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        return code
    except (GalleryError, ModelError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except EdgefaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE

