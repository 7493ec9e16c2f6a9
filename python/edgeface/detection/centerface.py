"""CenterFace face detection (Star-Clouds, MIT): one network pass, an anchor-free stride-4 heatmap of face
centres with each face's size and 5 landmarks.

Heavier than YuNet (1.8 M parameters, a MobileNetV2 backbone and an upsampling neck; 3.5-4x its time) and
more precise: at <= 0.5 false positives per image it finds more of the ordinary faces of crowd photos (WIDER
easy+medium subset: 63 vs 56 %), so it suits photo archives rather than frame loops (docs/detectors.md). The frame is downscaled only if its longer side exceeds ``max_side``, zero-padded
bottom/right to a multiple of 32, and run once; heatmap cells above ``score_threshold`` are decoded here
(numpy) and merged with the C++ NMS.
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

STRIDE = 4  # heatmap cell size in input pixels
PAD = 32  # the backbone halves the resolution five times
# Candidates kept before NMS: bounds the NMS cost on a pathological frame (as YuNet's).
MAX_CANDIDATES = 5000
# CenterFace's scores mapped onto MTCNN's probability scale, on which edgeface.quality is calibrated: linear
# in logits, as YuNet's (yunet.py): its own threshold 0.5 goes to MTCNN's 0.85. At the default min_quality
# the gate keeps 202 of its 247 true and 1 of its 5 false detections of ../shared/data/detection (YuNet:
# 222 of 287 and 5 of 34; MTCNN: 224 of 250 and 6 of 13).
PROBABILITY_MID_LOGIT, MTCNN_MID_LOGIT, PROBABILITY_SLOPE = 0.0, float(np.log(0.85 / 0.15)), 2.0


@dataclass(frozen=True)
class CenterFaceConfig:
    """CenterFace parameters.

    ``max_side``: frames whose longer side is larger are downscaled to it (area resampling) before the
    network; smaller frames run at their own size (never upscaled). ``min_face_size``: faces whose box is
    narrower than this many pixels are not reported (0 reports all); it does not change the cost.
    ``refine_landmarks``: replace CenterFace's landmarks by MTCNN O-Net's on the squared boxes (one 48 px crop
    a face), as YuNet does: CenterFace's own are 10.4 % of the eye distance off on the VOC faces, O-Net's 6.2 %.
    """

    score_threshold: float = 0.5
    nms_threshold: float = 0.3
    max_side: int = 1280
    min_face_size: float = 0.0
    refine_landmarks: bool = True

    def __post_init__(self) -> None:
        check_common_options(self.min_face_size, self.score_threshold, self.nms_threshold, self.max_side)
        if not isinstance(self.refine_landmarks, bool):
            raise InvalidArgumentError(f"refine_landmarks must be True or False, got {self.refine_landmarks!r}")


class CenterFace(OnePassDetector):
    """Finds faces and their five landmarks (image-left eye first, as ``Face.landmarks``)."""

    config_type = CenterFaceConfig

    def __init__(self, backend: Optional[str] = None, threads: Optional[int] = None,
                 config: Optional[CenterFaceConfig] = None, **overrides: object) -> None:
        self.config = config or CenterFaceConfig(**overrides)  # type: ignore[arg-type]
        super().__init__("centerface", backend, threads)

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections:
        """Detect faces in one image (array in ``color`` order, path, bytes or PIL image)."""
        order = check_color(color)
        img = load_image(image, order)
        if order == "bgr":  # the network was trained on RGB
            img = img[:, :, ::-1]
        rgb = img
        height, width = img.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        if scale < 1.0:
            img = cv2.resize(img, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        padded = np.zeros((1, 3, -(-h // PAD) * PAD, -(-w // PAD) * PAD), np.float32)
        padded[0, :, :h, :w] = img.transpose(2, 0, 1)
        boxes, scores, marks = decode(self.net.run(padded), self.config.score_threshold)
        if len(scores) == 0:
            return Detections.empty((height, width))
        keep = _core.nms(boxes, scores, self.config.nms_threshold, "iou")
        keep = keep[(boxes[keep, 2] - boxes[keep, 0]) >= self.config.min_face_size * scale]
        if len(keep) == 0:
            return Detections.empty((height, width))
        # Back to the frame's pixels (the padding is bottom/right, so only the scale changes them).
        sx, sy = width / w, height / h
        boxes = np.ascontiguousarray(boxes[keep] * np.array([sx, sy, sx, sy], np.float32))
        if self.config.refine_landmarks:
            marks = self._onet_landmarks(rgb, boxes, bgr=False)
        else:
            marks = marks[keep] * np.array([sx, sy], np.float32)
        return Detections(_core.clip_boxes(boxes, width, height), scores[keep], marks, (height, width))

    @staticmethod
    def face_probability(scores: np.ndarray) -> np.ndarray:
        """Scores on MTCNN's probability scale (what edgeface.quality's detection factor expects)."""
        s = np.clip(np.asarray(scores, np.float64), 1e-6, 1 - 1e-6)
        logit = MTCNN_MID_LOGIT + PROBABILITY_SLOPE * (np.log(s / (1 - s)) - PROBABILITY_MID_LOGIT)
        return 1.0 / (1.0 + np.exp(-logit))


def decode(out: dict[str, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap cells scoring >= threshold → boxes x1y1x2y2, scores, landmarks (N, 5, 2) (x, y), in the
    padded input's pixels, before NMS. Landmarks are placed from the unclipped box (the upstream decoder
    clips the box's corner first, which moves the landmarks of faces cut by the frame's left or top edge)."""
    heat = out["heatmap"][0, 0]
    rows, cols = np.nonzero(heat >= threshold)
    if len(rows) > MAX_CANDIDATES:
        top = np.argsort(-heat[rows, cols], kind="stable")[:MAX_CANDIDATES]
        rows, cols = rows[top], cols[top]
    size = np.exp(np.minimum(out["scale"][0][:, rows, cols], 20.0)).T * STRIDE  # (n, 2) h, w; no inf
    centre = (np.stack([rows, cols], axis=1) + out["offset"][0][:, rows, cols].T + 0.5) * STRIDE  # (n, 2) y, x
    corner = centre - size / 2  # y1, x1
    boxes = np.concatenate([corner[:, ::-1], (corner + size)[:, ::-1]], axis=1).astype(np.float32)
    fractions = out["landmarks"][0][:, rows, cols].T.reshape(-1, 5, 2)  # (y, x) per point
    marks = (fractions[:, :, ::-1] * size[:, None, ::-1] + corner[:, None, ::-1]).astype(np.float32)
    scores = heat[rows, cols].astype(np.float32)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(marks).all(axis=(1, 2))
    return np.ascontiguousarray(boxes[finite]), np.ascontiguousarray(scores[finite]), marks[finite]
