"""What ``detect`` and ``identify`` share: go through the images, report each, summarise, survive Ctrl-C."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import EdgefaceError
from ..faces import Detections
from ..gallery import Identity
from . import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, IMAGE_SUFFIXES, emit_json, emit_jsonl, find_images,
               progress, usage_error, warn)
from .draw import check_out_dir, draw_faces, plan_outputs, write_drawing


@dataclass(frozen=True)
class Found:
    """One image's answer: its faces, their identities (identify only) and their JSON form."""

    detections: Detections
    identities: Optional[Sequence[Identity]]
    faces_json: list[dict[str, Any]]


Analyze = Callable[[np.ndarray], Found]


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help=f"image files, or folders searched recursively for {' '.join(sorted(IMAGE_SUFFIXES))}")
    parser.add_argument("--draw", metavar="OUT_DIR",
                        help="write annotated copies into this folder, mirroring the input folders")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --draw: replace annotated copies left by an earlier run (never the inputs)")


class Tally:
    """Counts for the summary line."""

    def __init__(self) -> None:
        self.done = self.failed = self.faces = self.known = 0
        self.started = time.perf_counter()

    def line(self, total: int, with_identities: bool) -> str:
        text = f"{self.done - self.failed}/{total} images, {self.faces} faces"
        if self.failed:
            text += f", {self.failed} failed"
        if with_identities:
            text += f", {self.known} identified, {self.faces - self.known} unknown"
        return f"{text}, {time.perf_counter() - self.started:.2f} s"


def run_images(analyze: Analyze, args: argparse.Namespace, with_identities: bool) -> int:
    """Analyze each image, report it (text, JSON or JSON Lines), draw it, summarise at the end.

    Ctrl-C stops after the current image: what is done is reported (``--json`` gets
    ``"interrupted": true``), then a one-line summary and exit code 130.
    """
    from ..image_io import load_image
    if args.draw and (problem := check_out_dir(args.draw)):
        return usage_error(problem)
    inputs = find_images(args.images)
    outputs = plan_outputs(inputs.paths, args.draw) if args.draw else {}
    records: list[dict[str, Any]] = []
    tally = Tally()

    def report(record: dict[str, Any]) -> None:
        if args.json:
            records.append(record)
        if args.jsonl:
            emit_jsonl({"command": args.command, **record})

    for folder in inputs.empty_folders:
        message = f"{folder}: no images ({' '.join(sorted(IMAGE_SUFFIXES))}) in this folder"
        warn(f"error: {message}")
        report({"path": str(folder), "error": message, "faces": []})
    interrupted = False
    bar = progress(inputs.paths, args.command)
    try:
        for path in bar:
            try:
                image = load_image(path)
                found = analyze(image)
            except EdgefaceError as exc:
                tally.done += 1
                tally.failed += 1
                warn(f"error: {exc}")
                report({"path": str(path), "error": str(exc), "faces": []})
                continue
            tally.done += 1
            tally.faces += len(found.detections)
            tally.known += sum(1 for i in found.identities or () if i.known)
            error = None
            if args.draw:
                try:
                    canvas = draw_faces(image, list(found.detections), found.identities)
                    write_drawing(path, outputs[path], args.draw, canvas, args.overwrite)
                except (EdgefaceError, OSError) as exc:
                    tally.failed += 1
                    error = f"annotated copy not written: {exc}"
                    warn(f"error: {path}: {error}")
            report({"path": str(path), "width": image.shape[1], "height": image.shape[0],
                     "error": error, "faces": found.faces_json})
            if not (args.json or args.jsonl):
                print_result(path, found)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()  # ends the bar's line, so what follows starts on a line of its own
    if args.json:
        emit_json({"command": args.command, "images": records, "interrupted": interrupted})
    summary = tally.line(len(inputs.paths), with_identities)
    if interrupted:
        print(f"interrupted after {summary}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary, file=sys.stderr)
    return EXIT_INPUT if tally.failed or inputs.empty_folders else EXIT_OK


def print_result(path: Path, found: Found) -> None:
    print(f"{path}: {len(found.detections)} face(s)")
    for i, face in enumerate(found.detections):
        x1, y1, x2, y2 = face.box
        line = f"  #{i} box=({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}) score={face.score:.3f}"
        if found.identities is not None:
            who = found.identities[i]
            line += f" -> {who.name or 'unknown'} ({who.score:.3f})"
        print(line)
