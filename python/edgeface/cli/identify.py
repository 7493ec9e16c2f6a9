"""``edgeface identify``: name the faces in images against a gallery (1:N), "unknown" below the threshold."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from . import (detection_options, embedding_options, make_analyzer, matching_options, output_options,
               runtime_options)
from .images import Found, add_image_arguments, run_images


def cmd_identify(args: argparse.Namespace) -> int:
    with make_analyzer(args, args.gallery, create=False) as analyzer:
        def analyze(image: np.ndarray) -> Found:
            result = analyzer.analyze(image)
            return Found(result.detections, result.identities, result.to_list())
        return run_images(analyze, args, with_identities=True)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "identify", parents=[runtime_options(), detection_options(), embedding_options(), matching_options(),
                             output_options(jsonl=True)],
        help="name the faces in images (1:N)",
        description="Name every face in the images against a gallery; faces below the threshold are unknown.")
    p.add_argument("gallery", help="gallery file made by `edgeface enroll`")
    add_image_arguments(p)
    p.set_defaults(func=cmd_identify)
