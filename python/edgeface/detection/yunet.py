"""YuNet face detection (libfacedetection, BSD-3): one anchor-free network pass, 5 landmarks per face.

The frame is downscaled only if its longer side exceeds ``max_side``, then run once (the graph zero-pads
it bottom/right to a multiple of 32, the network's largest stride). Each of the three output levels (strides 8,
16, 32) scores every cell; cells above ``score_threshold`` are decoded here (numpy, a few hundred cells)
and merged with the C++ NMS. ``rotations`` runs the same network on rotated copies of the frame too, for
faces lying on their side, and merges all detections in the frame's coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .. import _core
from ..errors import InvalidArgumentError
from ..faces import Detections
from ..image_io import ImageLike, check_color, load_image
from .one_pass import OnePassDetector, check_common_options

STRIDES = (8, 16, 32)
PAD = 32  # the network halves the resolution five times
# Candidates kept before NMS: bounds the NMS cost on a pathological frame (OpenCV uses the same cap).
MAX_CANDIDATES = 5000
ROTATIONS = (0, 90, 180, 270)
# YuNet's scores (sqrt(cls * obj)) mapped onto MTCNN's probability scale, on which edgeface.quality is
# calibrated: linear in logits, YuNet's 0.74 (just above most of its false detections, 0.63-0.80 on
# ../shared/data/detection; LFW faces' median is 0.93) goes to MTCNN's 0.85, and YuNet's logits span half
# of MTCNN's (LFW 5th percentile 0.875 vs 0.998), hence the factor 2. At the default min_quality this keeps
# 222 true / 5 false detections of that set, against MTCNN's 224 / 6 (bench/quality.py, /tmp sweep of
# mid 0.70-0.78 and factor 1-2: 0.70 keeps 243 / 8, 0.78 keeps 199 / 2).
PROBABILITY_MID_LOGIT, MTCNN_MID_LOGIT, PROBABILITY_SLOPE = float(np.log(0.74 / 0.26)), float(np.log(0.85 / 0.15)), 2.0
_CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class YuNetConfig:
    """YuNet parameters.

    ``max_side``: frames whose longer side is larger are downscaled to it (area resampling) before the
    network; smaller frames run at their own size (never upscaled). ``rotations``: clockwise angles of
    the frame copies to run (``(0, 90, 270)`` also finds faces lying on their side, at 3x the cost).
    ``refine_landmarks``: replace YuNet's landmarks by MTCNN O-Net's on the squared YuNet boxes (one 48 px
    crop a face): landmark error on the VOC faces 14.8 % -> 6.0 % of the eye distance (MTCNN 6.7 %), LFW
    TAR at FAR 1e-3 95.2 % -> 96.4 % (MTCNN 96.8 %), accuracy 98.73 -> 98.57 % (within one fold's std).
    ``min_face_size``: faces whose box is narrower than this many pixels are not reported (0 reports all);
    unlike MTCNN's option of the same name it does not change the cost, which depends on the frame size.
    """

    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    max_side: int = 1280
    rotations: tuple[int, ...] = (0,)
    refine_landmarks: bool = True
    min_face_size: float = 0.0

    def __post_init__(self) -> None:
        check_common_options(self.min_face_size, self.score_threshold, self.nms_threshold, self.max_side)
        rotations = tuple(self.rotations) if isinstance(self.rotations, (tuple, list)) else None
        if not rotations or len(set(rotations)) != len(rotations) or any(r not in ROTATIONS for r in rotations):
            raise InvalidArgumentError(
                f"rotations must be distinct angles from {ROTATIONS}, e.g. (0,) or (0, 90, 270); got {self.rotations!r}")
        object.__setattr__(self, "rotations", tuple(int(r) for r in rotations))


class YuNet(OnePassDetector):
    """Finds faces and their five landmarks (image-left eye first, as ``Face.landmarks``)."""

    config_type = YuNetConfig

    def __init__(self, backend: Optional[str] = None, threads: Optional[int] = None,
                 config: Optional[YuNetConfig] = None, **overrides: object) -> None:
        self.config = config or YuNetConfig(**overrides)  # type: ignore[arg-type]
        super().__init__("yunet", backend, threads)

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections:
        """Detect faces in one image (array in ``color`` order, path, bytes or PIL image)."""
        order = check_color(color)
        img = load_image(image, order)
        if order == "rgb":  # the network was trained on BGR
            img = img[:, :, ::-1]
        height, width = img.shape[:2]
        parts = [self._detect_rotated(img, angle) for angle in self.config.rotations]
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        landmarks = np.concatenate([p[2] for p in parts])
        if len(scores) == 0:
            return Detections.empty((height, width))
        keep = _core.nms(boxes, scores, self.config.nms_threshold, "iou")
        keep = keep[(boxes[keep, 2] - boxes[keep, 0]) >= self.config.min_face_size]
        boxes, landmarks = np.ascontiguousarray(boxes[keep]), landmarks[keep]
        scores = scores[keep]
        if len(scores) == 0:
            return Detections.empty((height, width))
        boxes = _core.clip_boxes(np.ascontiguousarray(boxes), width, height)
        return Detections(boxes, scores, landmarks, (height, width))

    @staticmethod
    def face_probability(scores: np.ndarray) -> np.ndarray:
        """Scores on MTCNN's probability scale (what edgeface.quality's detection factor expects)."""
        s = np.clip(np.asarray(scores, np.float64), 1e-6, 1 - 1e-6)
        logit = MTCNN_MID_LOGIT + PROBABILITY_SLOPE * (np.log(s / (1 - s)) - PROBABILITY_MID_LOGIT)
        return 1.0 / (1.0 + np.exp(-logit))

    def _detect_rotated(self, img: np.ndarray, angle: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        turned = img if angle == 0 else cv2.rotate(img, _CV2_ROTATE[angle])
        boxes, scores, marks = self._detect_upright(turned)
        if self.config.refine_landmarks and len(scores):
            # O-Net needs the face upright, so refine in the turned frame, on this rotation's NMS survivors
            # (the final NMS over all rotations then keeps a subset of them).
            keep = _core.nms(boxes, scores, self.config.nms_threshold, "iou")
            boxes, scores = np.ascontiguousarray(boxes[keep]), scores[keep]
            marks = self._onet_landmarks(turned, boxes, bgr=True)
        if angle == 0:
            return boxes, scores, marks
        corners = unrotate(boxes.reshape(-1, 2, 2), angle, img.shape[:2])
        boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
        return np.ascontiguousarray(boxes, np.float32), scores, unrotate(marks, angle, img.shape[:2])

    def _detect_upright(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), scores (N,), landmarks (N, 5, 2) in img's pixels, before the final NMS."""
        height, width = img.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        out = self.net.run(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)[None])
        # The graph zero-pads bottom/right to a multiple of 32: its cells cover the padded width.
        boxes, scores, marks = _decode(out, -(-w // PAD) * PAD, self.config.score_threshold)
        if len(scores) > MAX_CANDIDATES:
            top = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
            boxes, scores, marks = boxes[top], scores[top], marks[top]
        # Back to the frame's pixels (the padding is bottom/right, so only the scale changes them).
        sx, sy = width / w, height / h
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32)
        marks = marks * np.array([sx, sy], np.float32)
        return np.ascontiguousarray(boxes, np.float32), np.ascontiguousarray(scores, np.float32), marks


def _decode(out: dict[str, np.ndarray], padded_width: int, threshold: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells scoring >= threshold on every level → boxes x1y1x2y2, scores sqrt(cls*obj), landmarks."""
    boxes, scores, marks = [], [], []
    for stride in STRIDES:
        cls = np.clip(out[f"cls_{stride}"][0, :, 0], 0.0, 1.0)
        obj = np.clip(out[f"obj_{stride}"][0, :, 0], 0.0, 1.0)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= threshold)[0]
        if len(idx) == 0:
            continue
        cols = padded_width // stride
        cell = np.stack([idx % cols, idx // cols], axis=1).astype(np.float32)
        reg = out[f"bbox_{stride}"][0, idx]
        centre = (cell + reg[:, :2]) * stride
        size = np.exp(np.minimum(reg[:, 2:4], 20.0)) * stride  # clamp: no inf from a wild output
        boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
        marks.append((out[f"kps_{stride}"][0, idx].reshape(-1, 5, 2) + cell[:, None, :]) * stride)
        scores.append(score[idx])
    if not scores:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    boxes_all, scores_all, marks_all = np.concatenate(boxes), np.concatenate(scores), np.concatenate(marks)
    finite = np.isfinite(boxes_all).all(axis=1) & np.isfinite(marks_all).all(axis=(1, 2))
    return boxes_all[finite], scores_all[finite], marks_all[finite]


def unrotate(points: np.ndarray, angle: int, shape: tuple[int, int]) -> np.ndarray:
    """(..., 2) points of the frame rotated clockwise by ``angle`` → points of the frame (height, width)."""
    height, width = shape
    x, y = points[..., 0], points[..., 1]
    if angle == 90:
        orig = (y, height - x)
    elif angle == 180:
        orig = (width - x, height - y)
    else:  # 270
        orig = (width - y, x)
    return np.stack(orig, axis=-1).astype(np.float32)
