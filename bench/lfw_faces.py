"""The LFW pair images run once through edgeface (detect, centre face, align, quality, embed plain and
mirrored), cached in bench/results/cache, for bench/quality.py and bench/robustness.py."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from common import CACHE, nearest_to_centre, read_tsv, require_data

# Raw measurements cached; pose and the score are recomputed from them on load, so that tuning the
# constants of edgeface.quality does not re-embed LFW.
RAW_FIELDS = ("detection", "eye_distance", "residual")


def lfw_pairs() -> tuple[Path, list[dict[str, str]]]:
    root = require_data("lfw")
    return root, read_tsv(root / "pairs.tsv")


def pair_paths(root: Path, pairs: list[dict[str, str]]) -> list[str]:
    return sorted({str(root / p[k]) for p in pairs for k in ("path1", "path2")})


def centre_face(analyzer: Any, image: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """(detections, qualities, crops) of the face nearest the image centre, all faces scored, none
    dropped; (None, ...) when nothing is detected."""
    dets = analyzer.detect(image)
    if len(dets) == 0:
        return None, None, None, None
    kept, qualities, crops = analyzer.usable_faces(image, dets)
    j = nearest_to_centre(kept.boxes, *image.shape[:2])
    return kept[[j]], qualities.select(np.array([j])), crops[j:j + 1], j


def embed_lfw(analyzer: Any, paths: list[str]) -> dict[str, np.ndarray]:
    """Arrays over ``paths``: found, landmarks, boxes, quality fields, embedding, embedding_flip.
    The analyzer must have ``min_quality=0`` (every face kept, so that the curves see all of them)."""
    from edgeface.image_io import read_image
    from edgeface.quality import sharpness
    key = hashlib.sha1(("\n".join(paths) + analyzer.embedder.spec.name).encode()).hexdigest()[:16]
    cache = CACHE / f"lfw-faces2-{analyzer.embedder.spec.name}-{key}.npz"
    if cache.exists():
        return with_scores(dict(np.load(cache)))
    n, dim = len(paths), analyzer.embedder.dim
    out = {"found": np.zeros(n, bool), "landmarks": np.zeros((n, 5, 2), np.float32),
           "boxes": np.zeros((n, 4), np.float32), "embedding": np.zeros((n, dim), np.float32),
           "embedding_flip": np.zeros((n, dim), np.float32),
           "q_sharpness_raw": np.zeros(n), **{f"q_{k}": np.zeros(n) for k in RAW_FIELDS}}
    template = np.asarray(analyzer.embedder.spec.alignment, np.float64)
    out["template"] = template
    for i, path in enumerate(paths):
        if i % 500 == 0:
            print(f"  lfw {i}/{n}", flush=True)
        det, qual, crops, _ = centre_face(analyzer, read_image(path))
        if det is None:
            continue
        out["found"][i] = True
        out["landmarks"][i], out["boxes"][i] = det.landmarks[0], det.boxes[0]
        out["embedding"][i] = analyzer.embedder.embed_aligned(crops)[0]
        out["embedding_flip"][i] = analyzer.embedder.embed_aligned(np.ascontiguousarray(crops[:, :, ::-1]))[0]
        for k in RAW_FIELDS:
            out[f"q_{k}"][i] = getattr(qual, k)[0]
        out["q_sharpness_raw"][i] = sharpness(crops, template)[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return with_scores(out)


def with_scores(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Adds q_yaw/q_pitch/q_roll and q_score (0 where no face was found) from the raw measurements."""
    from edgeface.quality import combine, estimate_pose, upsampling_correction
    yaw, pitch, roll = estimate_pose(arrays["landmarks"])
    sharp = arrays["q_sharpness_raw"] + upsampling_correction(arrays["q_eye_distance"], arrays["template"])
    score = combine(arrays["q_detection"], arrays["q_eye_distance"], yaw, pitch, sharp, arrays["q_residual"])
    return {**arrays, "q_yaw": yaw, "q_pitch": pitch, "q_roll": roll, "q_sharpness": sharp,
            "q_score": np.where(arrays["found"], score, 0.0)}
