# BENCH-ONLY STAND-IN, NOT TORCHVISION. Written for edgeface's peer benchmark (bench/peers) because
# torchvision cannot be installed next to the CPU torch 2.13.0 wheel on the benchmark machine, while
# facenet-pytorch 2.6.0 imports it. It provides only what facenet-pytorch's import chain and MTCNN use:
# torchvision.ops.boxes.batched_nms and torchvision.transforms.functional.to_tensor.
# Put bench/peers/torchvision_shim on sys.path (peer.py does) to use it; never ship or install it.
"""Greedy IoU non-maximum suppression with torchvision's semantics (bench-only; NOT torchvision).

Semantics kept from torchvision.ops: boxes are (x1, y1, x2, y2) with x1 <= x2, y1 <= y2; area is
(x2 - x1) * (y2 - y1) (no +1); a box is dropped when its IoU with an already kept, higher-scoring box
is > iou_threshold; the result is int64 indices sorted by decreasing score. batched_nms never lets
boxes of different idxs suppress each other (same coordinate-offset trick as torchvision, with
the offset taken over the full coordinate range so that negative coordinates are safe too).

Speed: up to 4096 boxes, the IoU of every pair is one vectorised (float32, numpy) n x n matrix and
the greedy pass only ORs precomputed rows; with more boxes the IoU is computed row by row, only
for kept boxes against the boxes after them (memory O(n), work O(kept * n)). Measured on
facenet-pytorch MTCNN over the 27 speed images at 640x480 (crowd photos, ~24 faces per frame) this
took ~41 ms of ~710 ms CPU per frame, i.e. ~6 % of MTCNN's time, 1 thread.
"""
from __future__ import annotations

import numpy as np
import torch

_MATRIX_MAX = 4096  # up to this many boxes, one n x n IoU matrix (~64 MB of float32 at most)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU, (N, 4) x (M, 4) -> (N, M)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def _over_matrix(b: np.ndarray, iou_threshold: float) -> np.ndarray:
    """n x n bool: IoU(i, j) > iou_threshold."""
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1) * (y2 - y1)
    w = np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :])
    np.clip(w, 0, None, out=w)
    h = np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :])
    np.clip(h, 0, None, out=h)
    inter = w * h
    union = area[:, None] + area[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union > iou_threshold


def _greedy_from_matrix(over: np.ndarray) -> list[int]:
    n = over.shape[0]
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= over[i]
    return keep


def _greedy_by_rows(b: np.ndarray, iou_threshold: float) -> list[int]:
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1) * (y2 - y1)
    n = b.shape[0]
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        j = slice(i + 1, n)
        w = np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j])
        h = np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            suppressed[j] |= inter / (area[i] + area[j] - inter) > iou_threshold
    return keep


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy IoU NMS; int64 indices of the kept boxes, by decreasing score."""
    n = boxes.shape[0]
    if n == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].detach().cpu().numpy()
    if n <= _MATRIX_MAX:
        keep = _greedy_from_matrix(_over_matrix(b, iou_threshold))
    else:
        keep = _greedy_by_rows(b, iou_threshold)
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """NMS done independently per category idxs; int64 indices by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    offsets = idxs.to(boxes) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)
