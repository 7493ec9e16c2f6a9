"""Immutable results of detection: ``Face`` (one) and ``Detections`` (many, array-backed)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union, overload

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _frozen(array: np.ndarray, dtype: type, shape_tail: tuple[int, ...]) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True).reshape((-1,) + shape_tail)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Face:
    """One detected face. Coordinates are pixels of the input image; "left" means image left."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: tuple[tuple[float, float], ...]  # 5 points, in LANDMARK_NAMES order

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": {n: [round(x, 2), round(y, 2)] for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)},
        }


class Detections(Sequence[Face]):
    """The faces found in one image, sorted by descending score.

    Backed by read-only arrays (``boxes`` N×4, ``scores`` N, ``landmarks`` N×5×2, float32), so
    slicing and boolean masks are cheap; ``faces[i]`` gives a ``Face``.
    """

    __slots__ = ("boxes", "scores", "landmarks", "image_size")

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray,
                 image_size: tuple[int, int]) -> None:
        self.boxes = _frozen(boxes, np.float32, (4,))
        self.scores = _frozen(scores, np.float32, ())
        self.landmarks = _frozen(landmarks, np.float32, (5, 2))
        self.image_size = image_size  # (height, width)
        if not (len(self.boxes) == len(self.scores) == len(self.landmarks)):
            raise ValueError("boxes, scores and landmarks must have the same length")

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), image_size)

    def __len__(self) -> int:
        return len(self.scores)

    @overload
    def __getitem__(self, index: int) -> Face: ...
    @overload
    def __getitem__(self, index: Union[slice, np.ndarray, Sequence[int]]) -> "Detections": ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            return Face(
                box=tuple(float(v) for v in self.boxes[i]),  # type: ignore[arg-type]
                score=float(self.scores[i]),
                landmarks=tuple((float(x), float(y)) for x, y in self.landmarks[i]),
            )
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index], self.image_size)

    def __iter__(self) -> Iterator[Face]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Detections({len(self)} faces, image {self.image_size[1]}x{self.image_size[0]})"

    def to_list(self) -> list[dict[str, Any]]:
        return [face.to_dict() for face in self]

    def to_json(self) -> str:
        return json.dumps(self.to_list())
