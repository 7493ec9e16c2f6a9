"""MTCNN face detection: P-Net over the whole pyramid in one call, then R-Net and O-Net on batched crops.

The geometry (pyramid, candidate boxes, NMS, regression, crops) runs in the C++ core with the GIL
released; the three networks run through ``runtime.Runner``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _core
from ..errors import InvalidArgumentError
from ..faces import Detections
from ..image_io import ImageLike, check_color, load_image
from ..models import get_model
from ..runtime import Runner

# Crops per network call, so a crowded frame stays bounded in memory: an O-Net crop holds ~1 MB of
# activations (a 24 px R-Net crop ~0.1 MB) and the runtimes keep their peak allocation. With 512 O-Net
# crops a call, an ONNX Runtime process analysing 1280x720 crowd photos peaked at 1.4 GB; with 64 (and the
# embedder's cap) at ~0.6 GB. With R-Net 64 and O-Net 32 (and the shared arena in runtime.py) a process
# analysing the 27 crowd frames at 640x480 peaks under 200 MB at the same frame rate (bench/speed.py).
RNET_MAX_BATCH = 64
ONET_MAX_BATCH = 32


# P-Net looks at 12 px cells, so the first pyramid level is scaled by 12 / min_face_size. Below 6 px that
# enlarges the image more than 2x per side: 1.5 px on a 640x480 frame meant a 5120x3840 level, 51 s and
# 7.6 GB. Faces that small carry no identity anyway (LFW accuracy falls apart below ~12 px between the eyes).
P_NET_CELL = 12.0
MIN_FACE_SIZE = 6.0


def run_batched(runner: Runner, crops: np.ndarray, max_batch: int) -> dict[str, np.ndarray]:
    """``runner`` over ``crops`` at most ``max_batch`` at a time (the runtime keeps its largest allocation)."""
    if len(crops) <= max_batch:
        return runner.run(crops)
    parts = [runner.run(crops[i:i + max_batch]) for i in range(0, len(crops), max_batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def onet_landmarks(onet: Runner, image: np.ndarray, boxes: np.ndarray, bgr: bool = True) -> np.ndarray:
    """O-Net's five landmarks (N, 5, 2) on the squared ``boxes`` of another detector's faces (48 px crops of
    ``image``, BGR or RGB; the net takes RGB). Capped at ONET_MAX_BATCH crops a call: one call for all faces
    of a frame took the peak of a process analysing the 27 crowd photos at 640x480 from 150 to 243 MB."""
    square = _core.square_boxes(np.ascontiguousarray(boxes, np.float32))
    marks = run_batched(onet, _core.crop_resize(image, square, 48, bgr), ONET_MAX_BATCH)["landmarks"]
    w = (square[:, 2] - square[:, 0] + 1)[:, None]
    h = (square[:, 3] - square[:, 1] + 1)[:, None]
    xs = marks[:, 0:5] * w + square[:, 0:1] - 1
    ys = marks[:, 5:10] * h + square[:, 1:2] - 1
    return np.stack([xs, ys], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class MTCNNConfig:
    """MTCNN parameters; defaults are the paper's (Zhang et al. 2016)."""

    min_face_size: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    max_levels: int = 32

    def __post_init__(self) -> None:
        if not self.min_face_size >= MIN_FACE_SIZE:
            raise InvalidArgumentError(
                f"min_face_size must be >= {MIN_FACE_SIZE:g} px (the first pyramid level may enlarge the image "
                f"at most {P_NET_CELL / MIN_FACE_SIZE:g}x), got {self.min_face_size}"
            )
        if not 0.0 < self.factor < 1.0:
            raise InvalidArgumentError(f"factor must be in (0, 1), got {self.factor}")
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise InvalidArgumentError(f"thresholds must be three probabilities, got {self.thresholds}")


def _canvas_groups(height: int, width: int, scales: list[float]) -> list[tuple[int, list[float]]]:
    """Consecutive pyramid levels packed per P-Net call, each canvas at most the first level's area.

    One canvas for the whole pyramid (about twice the first level's area) means one network call
    but twice the activation memory, which the runtime then keeps; two canvases of about the first
    level's size halve that peak for one extra call. Returns (index of the first level, scales).
    """
    budget = (height * scales[0]) * (width * scales[0])
    groups: list[tuple[int, list[float]]] = []
    area = budget + 1.0
    for level, scale in enumerate(scales):
        level_area = (height * scale) * (width * scale)
        if area + level_area > budget:
            groups.append((level, []))
            area = 0.0
        groups[-1][1].append(scale)
        area += level_area
    return groups


class MTCNN:
    """Finds faces and their five landmarks.

    ``min_face_size`` below 12 px upsamples the first pyramid level to find tiny faces (slower).
    """

    config_type = MTCNNConfig

    def __init__(self, backend: Optional[str] = None, threads: Optional[int] = None,
                 config: Optional[MTCNNConfig] = None, **overrides: object) -> None:
        self.config = config or MTCNNConfig(**overrides)  # type: ignore[arg-type]
        self.pnet = Runner(get_model("mtcnn_pnet"), backend=backend, threads=threads)
        self.rnet = Runner(get_model("mtcnn_rnet"), backend=backend, threads=threads)
        self.onet = Runner(get_model("mtcnn_onet"), backend=backend, threads=threads)

    def close(self) -> None:
        for runner in (self.pnet, self.rnet, self.onet):
            runner.close()

    def __enter__(self) -> "MTCNN":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections:
        """Detect faces in one image (array in ``color`` order, path, bytes or PIL image)."""
        order = check_color(color)
        img = load_image(image, order)
        swap_rb = order == "bgr"  # the networks take RGB
        height, width = img.shape[:2]
        cfg = self.config
        empty = Detections.empty((height, width))

        scales = _core.pyramid_scales(height, width, cfg.min_face_size, cfg.factor, cfg.max_levels)
        if not scales:
            return empty
        boxes = self._propose(img, scales, swap_rb)
        if len(boxes) == 0:
            return empty
        boxes = self._refine(img, boxes, swap_rb)
        if len(boxes) == 0:
            return empty
        boxes, scores, landmarks = self._output(img, boxes, swap_rb)
        if len(boxes) == 0:
            return empty
        boxes = _core.clip_boxes(boxes, width, height)
        return Detections(boxes, scores, landmarks, (height, width))

    def _propose(self, img: np.ndarray, scales: list[float], swap_rb: bool) -> np.ndarray:
        """Stage 1: candidate squares from P-Net, run over the pyramid packed into a few canvases."""
        found, found_levels = [], []
        for first, group in _canvas_groups(img.shape[0], img.shape[1], scales):
            canvas, rects = _core.pyramid(img, group, swap_rb)
            out = self.pnet.run(canvas[None])
            prob = np.ascontiguousarray(out["prob"][0, 1])
            reg = np.ascontiguousarray(out["reg"][0])
            cands, levels = _core.pnet_candidates(prob, reg, rects, group, self.config.thresholds[0])
            found.append(cands)
            found_levels.append(levels + first)
        cands, levels = np.concatenate(found), np.concatenate(found_levels).astype(np.int32)
        if len(cands) == 0:
            return cands[:, :4]
        # IoU 0.5 within each scale, then 0.7 across scales (the paper's NMS schedule).
        keep = _core.batched_nms(cands[:, :4], cands[:, 4], levels, 0.5, "iou")
        cands = cands[keep]
        keep = _core.nms(cands[:, :4], cands[:, 4], 0.7, "iou")
        cands = cands[keep]
        boxes = _core.calibrate_boxes(np.ascontiguousarray(cands[:, :4]), np.ascontiguousarray(cands[:, 5:9]))
        return _core.square_boxes(boxes)

    def _refine(self, img: np.ndarray, boxes: np.ndarray, swap_rb: bool) -> np.ndarray:
        """Stage 2: R-Net on 24 px crops rejects most false candidates and refines the rest."""
        out = run_batched(self.rnet, _core.crop_resize(img, boxes, 24, swap_rb), RNET_MAX_BATCH)
        scores = out["prob"][:, 1]
        passed = scores > self.config.thresholds[1]
        boxes, scores, reg = boxes[passed], scores[passed], out["reg"][passed]
        if len(boxes) == 0:
            return boxes
        keep = _core.nms(boxes, np.ascontiguousarray(scores), 0.7, "iou")
        boxes = _core.calibrate_boxes(np.ascontiguousarray(boxes[keep]), np.ascontiguousarray(reg[keep]))
        return _core.square_boxes(boxes)

    def _output(self, img: np.ndarray, boxes: np.ndarray, swap_rb: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 3: O-Net on 48 px crops gives the final score, box and five landmarks."""
        out = run_batched(self.onet, _core.crop_resize(img, boxes, 48, swap_rb), ONET_MAX_BATCH)
        scores = out["prob"][:, 1]
        passed = scores > self.config.thresholds[2]
        boxes, scores = boxes[passed], np.ascontiguousarray(scores[passed])
        reg, marks = out["reg"][passed], out["landmarks"][passed]
        # Landmarks are fractions of the (pre-regression) box: x1..x5 then y1..y5.
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = marks[:, 0:5] * w + boxes[:, 0:1] - 1
        ys = marks[:, 5:10] * h + boxes[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=-1).astype(np.float32)
        boxes = _core.calibrate_boxes(np.ascontiguousarray(boxes), np.ascontiguousarray(reg))
        keep = _core.nms(boxes, scores, 0.7, "min")
        return boxes[keep], scores[keep], landmarks[keep]
