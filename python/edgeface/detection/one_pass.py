"""What the one-pass detectors (YuNet, CenterFace) share: the checks of their common options, and one
network plus MTCNN's O-Net, loaded on first use, to place the five landmarks on their boxes."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InvalidArgumentError
from ..models import get_model
from ..runtime import Runner
from .mtcnn import onet_landmarks


def check_common_options(min_face_size: float, score_threshold: float, nms_threshold: float, max_side: object) -> None:
    """Raises InvalidArgumentError naming the first out-of-range option."""
    if not 0.0 <= min_face_size < float("inf"):
        raise InvalidArgumentError(f"min_face_size must be a finite number of pixels >= 0, got {min_face_size}")
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidArgumentError(f"score_threshold must be in [0, 1], got {score_threshold}")
    if not 0.0 <= nms_threshold <= 1.0:
        raise InvalidArgumentError(f"nms_threshold must be in [0, 1], got {nms_threshold}")
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or not 32 <= max_side <= 4096:
        raise InvalidArgumentError(f"max_side must be an integer in [32, 4096] pixels, got {max_side!r}")


class OnePassDetector:
    """Owns the detector's network and, once landmarks are refined, O-Net; closes both."""

    def __init__(self, model: str, backend: Optional[str], threads: Optional[int]) -> None:
        self.net = Runner(get_model(model), backend=backend, threads=threads)
        self._backend, self._threads = backend, threads
        self._onet: Optional[Runner] = None

    def close(self) -> None:
        self.net.close()
        if self._onet is not None:
            self._onet.close()

    def __enter__(self) -> "OnePassDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _onet_landmarks(self, image: np.ndarray, boxes: np.ndarray, bgr: bool) -> np.ndarray:
        if self._onet is None:
            self._onet = Runner(get_model("mtcnn_onet"), backend=self._backend, threads=self._threads)
        return onet_landmarks(self._onet, image, boxes, bgr=bgr)
