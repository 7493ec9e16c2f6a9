"""Synthetic occluders for robustness testing: a face mask over nose and mouth, a sunglasses band over
the eyes, and a random patch over a given share of the face, placed from a face's five landmarks.

Shapes are defined once in the canonical face frame (the default embedder's 150 px alignment chip, where
the mean face's landmarks span 25..125 px) and mapped into the image by the similarity transform of
the face's landmarks, so they follow the face's position, size and roll. Deterministic: the random
patch depends only on ``seed``.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from . import _core
from .alignment import landmarks_array
from .errors import InvalidArgumentError
from .image_io import validate_array
from .models import default_model

# The mean face in the canonical chip: landmark hull (brow to chin, ear to ear) and the occluders.
FACE_REGION = (25.0, 25.0, 125.0, 125.0)  # x1, y1, x2, y2
MASK = np.array([[25, 64], [74, 58], [125, 64], [123, 100], [102, 128], [74, 136], [46, 128], [27, 100]],
                np.float64)  # nose bridge (below the eyes) to chin
SUNGLASSES = np.array([[22, 33], [128, 33], [128, 60], [22, 60]], np.float64)  # eye line ± 13 px
COLORS = {"mask": (230, 215, 190), "sunglasses": (20, 20, 20)}  # BGR: light blue-grey surgical mask, black
KINDS = ("mask", "sunglasses", "patch25", "patch50")


def _canonical_points() -> np.ndarray:
    return np.asarray(default_model("embedder").alignment, np.float64)


def random_patch(fraction: float, seed: int) -> np.ndarray:
    """A rectangle (4×2, canonical frame) covering ``fraction`` of FACE_REGION, aspect ratio drawn in
    [1/2, 2] and position drawn uniformly inside the region, from ``seed``."""
    if not 0.0 < fraction <= 1.0:
        raise InvalidArgumentError(f"patch fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    x1, y1, x2, y2 = FACE_REGION
    width, height = x2 - x1, y2 - y1
    area = fraction * width * height
    w = min(width, np.sqrt(area * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))))
    h = area / w
    if h > height:
        h, w = height, area / height
    x = x1 + rng.uniform(0, width - w)
    y = y1 + rng.uniform(0, height - h)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])


def occluder(kind: str, seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Polygon (canonical frame) and BGR colour of one occlusion kind: "mask", "sunglasses",
    "patch25" or "patch50" (a random patch over 25 % / 50 % of the face, grey level from ``seed``)."""
    if kind in ("mask", "sunglasses"):
        return (MASK if kind == "mask" else SUNGLASSES), COLORS[kind]
    if kind in ("patch25", "patch50"):
        grey = int(np.random.default_rng([seed, 1]).integers(0, 256))
        return random_patch(int(kind[5:]) / 100.0, seed), (grey, grey, grey)
    raise InvalidArgumentError(f"occlusion kind must be one of {', '.join(KINDS)}, got {kind!r}")


def to_image(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Canonical-frame points → image coordinates of the face with these 5 landmarks."""
    marks = landmarks_array(np.asarray(landmarks, np.float64).reshape(1, 5, 2))[0]
    m = _core.similarity_transform(_canonical_points(), marks.astype(np.float64))
    return points @ m[:, :2].T + m[:, 2]


def occlude(image: np.ndarray, landmarks: np.ndarray, kind: str, seed: int = 0,
            color: Optional[tuple[int, int, int]] = None) -> np.ndarray:
    """A copy of ``image`` (uint8 H×W×3, BGR) with the face at ``landmarks`` (5×2) occluded by ``kind``."""
    validate_array(image)
    polygon, default_color = occluder(kind, seed)
    out = image.copy()
    corners = np.round(to_image(polygon, landmarks) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(out, [corners], color or default_color, lineType=cv2.LINE_8, shift=4)
    return out
