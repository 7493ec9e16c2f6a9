"""``edgeface detect``: faces and landmarks only (no embedding model is loaded or run)."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from . import detection_options, output_options, runtime_options
from .images import Found, add_image_arguments, run_images


def cmd_detect(args: argparse.Namespace) -> int:
    from . import make_detector
    with make_detector(args) as detector:
        def analyze(image: np.ndarray) -> Found:
            detections = detector.detect(image)
            return Found(detections, None, detections.to_list())
        return run_images(analyze, args, with_identities=False)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("detect", parents=[runtime_options(), detection_options(), output_options(jsonl=True)],
                              help="find faces and landmarks", description="Find faces and their five landmarks.")
    add_image_arguments(p)
    p.set_defaults(func=cmd_detect)
