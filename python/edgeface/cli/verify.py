"""``edgeface verify``: are two photos the same person (1:1)? Says which face of each photo it compared."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..faces import Detections
from ..matching import cosine_similarity
from . import (EXIT_DIFFERENT, EXIT_INPUT, EXIT_OK, detection_options, emit_json, embedding_options,
               make_analyzer, matching_options, output_options, runtime_options, warn)


@dataclass(frozen=True)
class Photo:
    path: str
    detections: Detections
    embeddings: np.ndarray  # one row per face in ``candidates``
    candidates: list[int]  # indices into ``detections`` of the faces that were embedded


def largest(detections: Detections) -> int:
    boxes = detections.boxes
    return int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))


def embed_photo(analyzer: Any, path: str, any_face: bool) -> Optional[Photo]:
    """Detect every face; embed the largest one, or all of them with ``any_face``. None: no face."""
    from ..image_io import load_image
    image = load_image(path)
    detections = analyzer.detect(image)
    if len(detections) == 0:
        return None
    candidates = list(range(len(detections))) if any_face else [largest(detections)]
    return Photo(path, detections, analyzer.embedder.embed(image, detections[candidates]), candidates)


def face_json(photo: Photo, index: int) -> dict[str, Any]:
    return {"path": photo.path, "faces_found": len(photo.detections), "face_index": index,
            "box": [round(v, 2) for v in photo.detections[index].box]}


def describe(photo: Photo, index: int) -> str:
    x1, y1, x2, y2 = photo.detections[index].box
    return (f"{photo.path}: face #{index} of {len(photo.detections)} "
            f"at ({x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f})")


def cmd_verify(args: argparse.Namespace) -> int:
    with make_analyzer(args) as analyzer:
        photos = [embed_photo(analyzer, p, args.any_face) for p in (args.image_a, args.image_b)]
        threshold = analyzer.threshold
    missing = [p for p, photo in zip((args.image_a, args.image_b), photos) if photo is None]
    if missing:
        message = f"no face found in {', '.join(missing)}"
        warn(f"error: {message}")
        if args.json:
            emit_json({"command": "verify", "same": None, "score": None, "threshold": round(threshold, 5),
                       "operating_point": args.operating_point, "a": None, "b": None, "error": message})
        return EXIT_INPUT
    a, b = photos
    assert a is not None and b is not None
    scores = cosine_similarity(a.embeddings, b.embeddings)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    score = float(scores[i, j])
    same = score >= threshold
    index_a, index_b = a.candidates[i], b.candidates[j]
    if not args.any_face:
        for photo in (a, b):
            if len(photo.detections) > 1:
                warn(f"warning: {photo.path} has {len(photo.detections)} faces; compared the largest "
                     f"(#{photo.candidates[0]}); --any-face compares every pair and keeps the best")
    if args.json:
        emit_json({"command": "verify", "same": same, "score": round(score, 5), "threshold": round(threshold, 5),
                   "operating_point": args.operating_point, "any_face": args.any_face,
                   "a": face_json(a, index_a), "b": face_json(b, index_b), "error": None})
    else:
        verdict = "same person" if same else "different people"
        print(f"{verdict} (similarity {score:.3f}, threshold {threshold:.3f} at {args.operating_point})")
        print(f"  {describe(a, index_a)}")
        print(f"  {describe(b, index_b)}")
    return EXIT_OK if same else EXIT_DIFFERENT


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "verify", parents=[runtime_options(), detection_options(), embedding_options(), matching_options(),
                           output_options()],
        help="same person? (1:1)",
        description="Compare the largest face of each photo (or, with --any-face, the best-matching pair) "
                    "and say which faces were compared. Exit 0: same person, 1: different people.")
    p.add_argument("image_a", metavar="IMAGE_A", help="first photo")
    p.add_argument("image_b", metavar="IMAGE_B", help="second photo")
    p.add_argument("--any-face", action="store_true",
                   help="compare every face of one photo with every face of the other and keep the best pair "
                        "(for group photos)")
    p.set_defaults(func=cmd_verify)
