"""Per-face quality from what the pipeline already has: detection score, face size, head pose from
the five landmarks, sharpness of the aligned crop and how well the landmarks fit the embedder's template.

``score`` is the product of six factors in [0, 1] (1 = no reason for doubt), so any one bad property
(a blurred, tiny, turned or implausible face) pulls it down. It is used to drop non-faces before
embedding (``FaceAnalyzer(min_quality=...)``), to refuse poor enrollment photos
(``check_enrollment``) and as the weight of a photo in "quality" fusion (``enrollment_weight``).
Constants below were chosen from the distributions measured by ``bench/quality.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np

from .alignment import landmarks_array

# A 5-point mean head (scaled orthographic projection), in units of half the inter-eye distance:
# eye centres (±1, 0, 0) and mouth corners in one plane, the nose tip DEPTH in front of it. Fitted to
# the usual 3-D head model of pose estimation (eye corners ±225/-135, mouth corners ±150/-125, nose
# tip at 0): eye centres at ±150, depth 120 -> 0.8. Its frontal view is the dlib template's geometry
# (nose 0.53 of the way from the eye line to the mouth line, eyes-to-mouth 2.13 half-eye-distances).
NOSE_DEPTH = 0.8
EYES_TO_MOUTH = 2.13
NOSE_FRACTION = 0.53

# Each factor is a logistic step: 0.5 at its midpoint, rising (falling for pose and residual) over
# about 4 x its width. Midpoints sit between the true faces and the false detections measured by
# bench/quality.py (../shared/data/detection, LFW): LFW faces score 0.99 (median), 99 % above 0.63.
SCORE_MID, SCORE_WIDTH = 1.73, 0.6      # logit of the detector probability (1.73 = logit 0.85)
SIZE_MID, SIZE_WIDTH = 10.0, 2.5        # inter-eye distance in image pixels (LFW's copies: ~25)
YAW_MID, YAW_WIDTH = 60.0, 6.0          # |yaw| in degrees (profiles are real faces, but poor to match)
PITCH_MID, PITCH_WIDTH = 45.0, 6.0      # |pitch| in degrees
SHARP_MID, SHARP_WIDTH = 1.7, 0.08      # sharpness corrected for upsampling (LFW >= 1.9, typical 2.5)
RESIDUAL_MID, RESIDUAL_WIDTH = 0.35, 0.04  # RMS landmark-to-template distance / template eye distance
# Upsampling a face into the crop lowers the log variance of its Laplacian by ~0.55 per octave
# (median over the true faces of ../shared/data/detection and LFW, 6 to 50 px between the eyes);
# adding it back makes the sharpness of small and large faces comparable, so that blur is judged
# apart from size (which has its own factor).
SHARP_PER_OCTAVE = 0.55

DEFAULT_MIN_QUALITY = 0.10   # FaceAnalyzer: below it a detection is not a usable face (bench/quality.py)
ENROLL_MIN_QUALITY = 0.50    # enrollment photos: below it ask for a better one (~0.5 % of LFW photos)


@dataclass(frozen=True)
class FaceQuality:
    """Quality of one detected face: the measurements and the combined ``score`` in [0, 1]."""

    score: float
    detection: float     # detector score on MTCNN's probability scale (detectors map theirs: face_probability)
    eye_distance: float  # pixels of the input image
    yaw: float           # degrees; > 0: the face turns toward the image's right
    pitch: float         # degrees; > 0: the face looks down
    roll: float          # degrees; > 0: the eye line runs down to the image's right
    sharpness: float     # log10 variance of the Laplacian of the aligned crop, corrected for upsampling
    residual: float      # landmark misfit to the template, in template eye distances

    def to_dict(self) -> dict[str, Any]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Qualities:
    """Array form for K faces (what the pipeline computes); ``qualities[i]`` gives a ``FaceQuality``."""

    score: np.ndarray
    detection: np.ndarray
    eye_distance: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    sharpness: np.ndarray
    residual: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: int) -> FaceQuality:
        return FaceQuality(**{k: float(v[index]) for k, v in self.__dict__.items()})

    def select(self, mask: np.ndarray) -> "Qualities":
        return Qualities(**{k: v[mask] for k, v in self.__dict__.items()})


def _step(value: np.ndarray, mid: float, width: float) -> np.ndarray:
    """Logistic step: 0.5 at ``mid``, towards 1 above it (below it for a negative ``width``)."""
    z = np.clip((np.asarray(value, np.float64) - mid) / width, -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def estimate_pose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) in degrees of K faces from their 5 landmarks (K×5×2, MTCNN order).

    Roll is the angle of the eye line. After undoing it, yaw comes from the nose tip's sideways
    offset from the eyes' midpoint and pitch from its height between the eye and mouth lines, both
    inverted through the mean head of ``NOSE_DEPTH``. Approximate (a mean head, five points), but
    monotonic and exact for that head.
    """
    marks = landmarks_array(landmarks).astype(np.float64)
    left, right, nose = marks[:, 0], marks[:, 1], marks[:, 2]
    mouth = (marks[:, 3] + marks[:, 4]) / 2
    eyes = (left + right) / 2
    d = right - left
    roll = np.arctan2(d[:, 1], d[:, 0])
    cos, sin = np.cos(-roll)[:, None], np.sin(-roll)[:, None]

    def unroll(p: np.ndarray) -> np.ndarray:
        q = p - eyes
        return np.stack([q[:, 0] * cos[:, 0] - q[:, 1] * sin[:, 0], q[:, 0] * sin[:, 0] + q[:, 1] * cos[:, 0]], 1)

    half_eyes = np.maximum(np.hypot(d[:, 0], d[:, 1]) / 2, 1e-6)
    n, m = unroll(nose), unroll(mouth)
    # Yaw shrinks the eye distance by cos(yaw) and moves the nose by DEPTH*sin(yaw): ratio = DEPTH*tan(yaw).
    yaw = np.arctan2(n[:, 0] / half_eyes, NOSE_DEPTH)
    # Pitch: the nose's fraction of the eye-to-mouth height grows by DEPTH/EYES_TO_MOUTH*tan(pitch).
    fraction = n[:, 1] / np.where(np.abs(m[:, 1]) > 1e-6, m[:, 1], 1e-6)
    pitch = np.arctan2((fraction - NOSE_FRACTION) * EYES_TO_MOUTH, NOSE_DEPTH)
    return np.degrees(yaw), np.degrees(pitch), np.degrees(roll)


def sharpness(crops: np.ndarray, template: np.ndarray) -> np.ndarray:
    """log10 variance of the Laplacian of each aligned crop (K×S×S×3 uint8) over the face region
    spanned by the template's landmarks (background edges excluded); low = blurred or upsampled."""
    if len(crops) == 0:
        return np.zeros(0)
    x0, y0 = np.floor(template.min(axis=0)).astype(int)
    x1, y1 = np.ceil(template.max(axis=0)).astype(int)
    out = np.empty(len(crops))
    for i, crop in enumerate(crops):
        gray = cv2.cvtColor(crop[y0:y1 + 1, x0:x1 + 1], cv2.COLOR_BGR2GRAY)
        out[i] = np.log10(cv2.Laplacian(gray, cv2.CV_64F).var() + 1.0)
    return out


def upsampling_correction(eye_distance: np.ndarray, template: np.ndarray) -> np.ndarray:
    """What upsampling a face with ``eye_distance`` px between the eyes into the crop took off its sharpness."""
    template_eyes = float(np.linalg.norm(np.asarray(template, np.float64)[1] - template[0]))
    return SHARP_PER_OCTAVE * np.log2(np.maximum(template_eyes / np.maximum(eye_distance, 1e-6), 1.0))


def template_residual(landmarks: np.ndarray, matrices: np.ndarray, template: np.ndarray) -> np.ndarray:
    """RMS distance between each face's landmarks, mapped by its similarity fit (K×2×3, as
    ``_core.align_faces`` returns), and the template, in units of the template's eye distance."""
    marks = landmarks_array(landmarks).astype(np.float64)
    mapped = np.einsum("kij,knj->kni", matrices[:, :, :2], marks) + matrices[:, None, :, 2]
    eye_distance = float(np.linalg.norm(template[1] - template[0]))
    return np.sqrt(np.mean(np.sum((mapped - template[None]) ** 2, axis=2), axis=1)) / eye_distance


def factors(detection: np.ndarray, eye_distance: np.ndarray, yaw: np.ndarray, pitch: np.ndarray,
            sharp: np.ndarray, residual: np.ndarray) -> dict[str, np.ndarray]:
    """Each factor of the quality score, in [0, 1] (1 = no doubt)."""
    return {
        "detection": _step(_logit(detection), SCORE_MID, SCORE_WIDTH),
        "size": _step(eye_distance, SIZE_MID, SIZE_WIDTH),
        "yaw": _step(np.abs(yaw), YAW_MID, -YAW_WIDTH),
        "pitch": _step(np.abs(pitch), PITCH_MID, -PITCH_WIDTH),
        "sharpness": _step(sharp, SHARP_MID, SHARP_WIDTH),
        "residual": _step(residual, RESIDUAL_MID, -RESIDUAL_WIDTH),
    }


def combine(detection: np.ndarray, eye_distance: np.ndarray, yaw: np.ndarray, pitch: np.ndarray,
            sharp: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The quality score: the product of the six factors."""
    return np.prod(np.stack(list(factors(detection, eye_distance, yaw, pitch, sharp, residual).values())), axis=0)


def assess(scores: np.ndarray, landmarks: np.ndarray, crops: np.ndarray, matrices: np.ndarray,
           template: np.ndarray) -> Qualities:
    """Quality of K faces from their detector scores, landmarks (K×5×2), aligned crops and the
    alignment matrices that produced them (``_core.align_faces``), for the template ``template``."""
    marks = landmarks_array(landmarks)
    template = np.asarray(template, np.float64)
    detection = np.asarray(scores, np.float64).reshape(-1)
    eye_distance = np.linalg.norm(marks[:, 1].astype(np.float64) - marks[:, 0], axis=1)
    yaw, pitch, roll = estimate_pose(marks)
    sharp = sharpness(crops, template) + upsampling_correction(eye_distance, template)
    residual = template_residual(marks, np.asarray(matrices, np.float64), template)
    score = combine(detection, eye_distance, yaw, pitch, sharp, residual)
    return Qualities(score, detection, eye_distance, yaw, pitch, roll, sharp, residual)


_PROBLEMS = {
    "detection": "uncertain detection",
    "size": "small face",
    "yaw": "head turned sideways",
    "pitch": "head tilted up or down",
    "sharpness": "blurred",
    "residual": "unusual landmark layout (occluded, or not a face)",
}


def check_enrollment(quality: Optional[FaceQuality], min_quality: float = ENROLL_MIN_QUALITY) -> Optional[str]:
    """Why a photo should not be enrolled (one line for the user), or None when it is good enough."""
    if quality is None:
        return "no face found"
    if quality.score >= min_quality:
        return None
    parts = factors(np.array([quality.detection]), np.array([quality.eye_distance]), np.array([quality.yaw]),
                    np.array([quality.pitch]), np.array([quality.sharpness]), np.array([quality.residual]))
    worst = sorted(parts, key=lambda k: float(parts[k][0]))
    problems = [_PROBLEMS[k] for k in worst if parts[k][0] < 0.9] or [_PROBLEMS[worst[0]]]
    return (f"face quality {quality.score:.2f} is below {min_quality:.2f} ({', '.join(problems)}); "
            "use a sharp, frontal photo with at least ~40 px between the eyes")


def enrollment_weight(quality: FaceQuality) -> float:
    """Weight of a photo in "quality" fusion (``Gallery.enroll(qualities=...)``): its quality score,
    floored so that an accepted photo never counts for nothing."""
    return max(float(quality.score), 1e-3)
