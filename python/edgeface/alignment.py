"""5-point similarity alignment of detected faces to an embedder's template (C++ core, GIL released)."""
from __future__ import annotations

from typing import Union

import numpy as np

from . import _core
from .errors import InvalidArgumentError, ModelError
from .faces import Detections
from .models import ModelSpec


def landmarks_array(faces: Union[Detections, np.ndarray]) -> np.ndarray:
    """Detections or a K×5×2 array → contiguous float32 K×5×2."""
    marks = faces.landmarks if isinstance(faces, Detections) else np.asarray(faces)
    if marks.ndim != 3 or marks.shape[1:] != (5, 2):
        raise InvalidArgumentError(f"landmarks must have shape (K, 5, 2), got {marks.shape}")
    return np.ascontiguousarray(marks, dtype=np.float32)


def align(image: np.ndarray, faces: Union[Detections, np.ndarray], spec: ModelSpec) -> np.ndarray:
    """Warp each face to ``spec``'s alignment template: K×S×S×3 uint8, same channel order as ``image``."""
    if spec.alignment is None:
        raise ModelError(f"model {spec.name!r} has no alignment template in the manifest")
    marks = landmarks_array(faces)
    out_h, out_w = spec.input.size
    if len(marks) == 0:
        return np.zeros((0, out_h, out_w, 3), np.uint8)
    crops, _ = _core.align_faces(image, marks, np.ascontiguousarray(spec.alignment, np.float32), out_h, out_w)
    return crops
