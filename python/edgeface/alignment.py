"""5-point similarity alignment of detected faces to an embedder's template (C++ core, GIL released)."""
from __future__ import annotations

from typing import Union

import numpy as np

from . import _core
from .errors import InvalidArgumentError, InvalidDTypeError, ModelError
from .faces import Detections
from .image_io import validate_array
from .models import ModelSpec


def landmarks_array(faces: Union[Detections, np.ndarray]) -> np.ndarray:
    """Detections or a numeric K×5×2 array → contiguous float32 K×5×2 (finite)."""
    if isinstance(faces, Detections):
        marks = faces.landmarks
    else:
        try:
            marks = np.asarray(faces)
        except (TypeError, ValueError):  # ragged nested lists
            marks = np.empty(0, dtype=object)
        if not (np.issubdtype(marks.dtype, np.floating) or np.issubdtype(marks.dtype, np.integer)):
            raise InvalidDTypeError(
                f"landmarks must be a numeric (float or int) array of shape (K, 5, 2), got dtype {marks.dtype}; "
                "pass Detections from a detector or np.asarray(points, np.float32)"
            )
    if marks.ndim != 3 or marks.shape[1:] != (5, 2):
        raise InvalidArgumentError(f"landmarks must have shape (K, 5, 2), got {marks.shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf, refused just below
        marks = np.ascontiguousarray(marks, dtype=np.float32)
    if not np.all(np.isfinite(marks)):
        raise InvalidArgumentError("landmarks contain NaN or infinity (or values beyond float32)")
    return marks


def check_inside(marks: np.ndarray, height: int, width: int) -> None:
    """Refuse faces whose landmarks lie far outside the image: their aligned crop would be mostly the
    black border, and its embedding a confident but meaningless vector.

    Rule: the midpoint between the eyes must lie inside the image, or at most half the distance between
    the eyes outside it. A face cut by the image border passes; landmarks in another image's
    coordinates (or of another scale) do not.
    """
    eyes = marks[:, 0:2]
    mid = eyes.mean(axis=1)
    margin = 0.5 * np.linalg.norm(eyes[:, 0] - eyes[:, 1], axis=1)
    outside = ((mid[:, 0] < -margin) | (mid[:, 0] > width + margin)
               | (mid[:, 1] < -margin) | (mid[:, 1] > height + margin))
    if np.any(outside):
        k = int(np.argmax(outside))
        raise InvalidArgumentError(
            f"face {k}: its eyes' midpoint ({mid[k, 0]:.1f}, {mid[k, 1]:.1f}) lies outside the {width}x{height} "
            "image; pass landmarks in this image's pixel coordinates (as the detector returns them)"
        )


def align(image: np.ndarray, faces: Union[Detections, np.ndarray], spec: ModelSpec) -> np.ndarray:
    """Warp each face to ``spec``'s alignment template: K×S×S×3 uint8, same channel order as ``image``."""
    if spec.alignment is None:
        raise ModelError(f"model {spec.name!r} has no alignment template in the manifest")
    validate_array(image)
    marks = landmarks_array(faces)
    out_h, out_w = spec.input.size
    if len(marks) == 0:
        return np.zeros((0, out_h, out_w, 3), np.uint8)
    check_inside(marks, image.shape[0], image.shape[1])
    crops, _ = _core.align_faces(image, marks, np.ascontiguousarray(spec.alignment, np.float32), out_h, out_w)
    return crops
