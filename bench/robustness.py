"""Robustness of edgeface beside face_recognition: occlusion, pose and resolution on LFW, and what helps.

- Occlusion (edgeface.occlusion, seed = pair index): the second image of each pair is occluded by a
  face mask, a sunglasses band, or a random patch over 25 % / 50 % of the face.
  * after detection: each system embeds the occluded face where it found it on the clean image
    (edgeface: the clean MTCNN landmarks; face_recognition: its clean HOG box, its own landmarks);
  * before detection: detection recall on the occluded images (a face within IoU 0.5 of the clean one).
- Pose: accuracy by yaw bucket (the larger |yaw| of the pair, from the 5 landmarks), all 3,000 pairs;
  and closed-set identification of non-frontal probes (|yaw| >= 25) against galleries enrolled with
  1 photo or 3 photos (fusion max / mean / quality, quality = edgeface.quality vs the old size x score).
- Resolution: the second image downscaled so the inter-eye distance is 8-32 px, then either upscaled
  back (detection rate, accuracy) or left small (detection rate with an upsampled pyramid level:
  MTCNN min_face_size 20 -> 10 -> 6).
- Mitigations: flip test-time augmentation (embedding of crop + mirror), quality-weighted fusion, an
  upsampled pyramid level, and a stricter threshold (far_1e-4) for probes below a quality.

Accuracy "calibrated" = at the shipped best-accuracy threshold (edgeface) / README tolerance 0.6
(face_recognition); "5-fold" = threshold tuned on the other folds of the same condition. A pair
whose face is not found counts as an error. Subsample (--per-fold): the first N/2 genuine and N/2
impostor pairs of each of the 5 folds; pose uses all 3,000 pairs.

    python bench/robustness.py [--per-fold 100] [--no-peers]

Writes docs/benchmarks/robustness.json and docs/benchmarks/robustness.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_detect import iou_matrix  # noqa: E402
from common import CACHE, PUBLISHED, REPO, nearest_to_centre, read_tsv, require_data  # noqa: E402
from lfw_faces import embed_lfw, lfw_pairs, pair_paths  # noqa: E402
from peer_runs import PEER_PYTHON, PEERS_DIR, peers_available, run_peer  # noqa: E402
from quality import save  # noqa: E402

from edgeface import FaceAnalyzer, _core  # noqa: E402
from edgeface.evaluation import kfold_accuracy  # noqa: E402
from edgeface.gallery import Gallery, enrollment_quality  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.matching import threshold_for  # noqa: E402
from edgeface.occlusion import KINDS, occlude  # noqa: E402
from edgeface.quality import FaceQuality, enrollment_weight  # noqa: E402

EYE_SIZES = (8, 12, 16, 24, 32)
SMALL_EYE_SIZES = (4, 5, 6)  # detection of the small image only: where an upsampled pyramid level matters
YAW_BUCKETS = ((0, 15), (15, 30), (30, 45), (45, 90))
OUT_DIR = CACHE / "robustness"


# ---- metrics ------------------------------------------------------------------------------------

def accuracies(scores: np.ndarray, same: np.ndarray, folds: np.ndarray, threshold: float) -> dict[str, float]:
    """Calibrated-threshold and 5-fold accuracy; -inf/+inf scores (a missing face) are always wrong."""
    return {"calibrated": float(np.mean((scores >= threshold) == same)),
            "kfold": kfold_accuracy(scores, same, folds).mean}


def missing_scores(found: np.ndarray, scores: np.ndarray, same: np.ndarray) -> np.ndarray:
    return np.where(found, scores, np.where(same, -np.inf, np.inf))


def subsample(pairs: list[dict[str, str]], per_fold: int) -> list[int]:
    chosen = []
    for fold in sorted({p["fold"] for p in pairs}):
        for same in ("1", "0"):
            idx = [i for i, p in enumerate(pairs) if p["fold"] == fold and p["same"] == same]
            chosen += idx[:per_fold // 2]
    return chosen


# ---- edgeface conditions ------------------------------------------------------------------------

def embed_at(fa: FaceAnalyzer, images: list[np.ndarray], marks: np.ndarray, flip: bool) -> np.ndarray:
    """Embeddings of one face per image at the given landmarks (optionally averaged with the mirror)."""
    spec = fa.embedder.spec
    template = np.ascontiguousarray(spec.alignment, np.float32)
    crops = np.concatenate([_core.align_faces(img, m[None].astype(np.float32), template, *spec.input.size)[0]
                            for img, m in zip(images, marks)])
    vectors = fa.embedder.embed_aligned(crops)
    if flip:
        vectors = vectors + fa.embedder.embed_aligned(np.ascontiguousarray(crops[:, :, ::-1]))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def detect_centre(fa: FaceAnalyzer, image: np.ndarray) -> tuple[Optional[np.ndarray], Optional[np.ndarray], float]:
    """(box, landmarks, quality score) of the face nearest the centre, or (None, None, 0)."""
    dets = fa.detect(image)
    if len(dets) == 0:
        return None, None, 0.0
    kept, qual, _ = fa.usable_faces(image, dets)
    j = nearest_to_centre(kept.boxes, *image.shape[:2])
    return kept.boxes[j], kept.landmarks[j], float(qual.score[j])


def found_near(box: Optional[np.ndarray], clean_box: np.ndarray) -> bool:
    return box is not None and iou_matrix(box[None].astype(np.float64), clean_box[None].astype(np.float64))[0, 0] >= 0.5


def occluded_path(kind: str, index: int) -> Path:
    return OUT_DIR / "occluded" / kind / f"{index:04d}.png"


def store_image(path: Path, image: np.ndarray) -> Path:
    """Write a PNG once (atomically: the peer run may read it from another process)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{id(image)}.tmp.png")
        cv2.imwrite(str(tmp), image)
        tmp.replace(path)
    return path


def occlusion_edgeface(fa: FaceAnalyzer, root: Path, pairs: list, sub: list[int], lfw: dict, index: dict,
                       t_acc: float) -> dict[str, Any]:
    same = np.array([pairs[i]["same"] == "1" for i in sub])
    folds = np.array([int(pairs[i]["fold"]) for i in sub])
    a = np.array([index[str(root / pairs[i]["path1"])] for i in sub])
    b = np.array([index[str(root / pairs[i]["path2"])] for i in sub])
    found = lfw["found"][a] & lfw["found"][b]
    out: dict[str, Any] = {}
    clean = {flip: missing_scores(found, np.sum(lfw[key][a] * lfw[key][b], axis=1), same)
             for flip, key in ((False, "embedding"), (True, "embedding_flip_tta"))}
    out["none"] = {"after_detection": accuracies(clean[False], same, folds, t_acc),
                   "after_detection_flip": accuracies(clean[True], same, folds, t_acc)}
    for kind in KINDS:
        images, rows = [], []
        recall_hits = recall_total = 0
        for k, (i, ib) in enumerate(zip(sub, b)):
            if not lfw["found"][ib]:
                continue
            image = occlude(read_image(str(root / pairs[i]["path2"])), lfw["landmarks"][ib], kind, seed=i)
            store_image(occluded_path(kind, i), image)
            images.append(image)
            rows.append(k)
            box, _, _ = detect_centre(fa, image)
            recall_hits += found_near(box, lfw["boxes"][ib])
            recall_total += 1
        rows = np.array(rows)
        entry: dict[str, Any] = {"detection_recall": recall_hits / max(recall_total, 1), "images": recall_total}
        for flip in (False, True):
            vec = embed_at(fa, images, lfw["landmarks"][b[rows]], flip)
            ref = lfw["embedding_flip_tta" if flip else "embedding"][a[rows]]
            scores = np.full(len(sub), np.nan)
            scores[rows] = np.sum(vec * ref, axis=1)
            ok = found & ~np.isnan(scores)
            entry["after_detection_flip" if flip else "after_detection"] = accuracies(
                missing_scores(ok, np.nan_to_num(scores), same), same, folds, t_acc)
        out[kind] = entry
        print(f"  occlusion {kind}: {entry}", flush=True)
    return out


def resize_to_eyes(image: np.ndarray, eye_distance: float, target: float) -> np.ndarray:
    scale = target / eye_distance
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def impostor_accepts(vectors: np.ndarray, persons: list[str], lfw: dict, person_of: np.ndarray,
                     thresholds: np.ndarray) -> tuple[int, int]:
    """(accepted, compared) over every probe against every clean LFW face of another person."""
    sims = vectors @ lfw["embedding"][lfw["found"]].T
    other = person_of[lfw["found"]][None, :] != np.array(persons)[:, None]
    return int(np.sum((sims >= thresholds[:, None]) & other)), int(other.sum())


def resolution_edgeface(fa: FaceAnalyzer, small_fas: dict[int, FaceAnalyzer], root: Path, pairs: list,
                        sub: list[int], lfw: dict, index: dict, paths: list[str], t_acc: float, t_far3: float,
                        t_far4: float) -> dict[str, Any]:
    same = np.array([pairs[i]["same"] == "1" for i in sub])
    folds = np.array([int(pairs[i]["fold"]) for i in sub])
    a = np.array([index[str(root / pairs[i]["path1"])] for i in sub])
    b = np.array([index[str(root / pairs[i]["path2"])] for i in sub])
    person_of = np.array([Path(p).parent.name for p in paths])
    out: dict[str, Any] = {}
    for size in SMALL_EYE_SIZES + EYE_SIZES:
        scores, quals, found = np.zeros(len(sub)), np.zeros(len(sub)), np.zeros(len(sub), bool)
        probe_vectors = np.zeros((len(sub), fa.embedder.dim), np.float32)
        small_found = {m: 0 for m in small_fas}
        total = 0
        for k, (i, ia, ib) in enumerate(zip(sub, a, b)):
            if not (lfw["found"][ia] and lfw["found"][ib]):
                continue
            total += 1
            image = read_image(str(root / pairs[i]["path2"]))
            small = resize_to_eyes(image, float(lfw["q_eye_distance"][ib]), size)
            scale = small.shape[1] / image.shape[1]
            for m, sfa in small_fas.items():
                box, _, _ = detect_centre(sfa, small)
                small_found[m] += found_near(None if box is None else box / scale, lfw["boxes"][ib])
            if size not in EYE_SIZES:
                continue
            back = cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
            box, marks, q = detect_centre(fa, back)
            if box is None or not found_near(box, lfw["boxes"][ib]):
                continue
            found[k], quals[k] = True, q
            probe_vectors[k] = embed_at(fa, [back], marks[None], False)[0]
            scores[k] = float(probe_vectors[k] @ lfw["embedding"][ia])
        entry: dict[str, Any] = {
            "small_detection_rate": {f"min_face_size_{m}": small_found[m] / max(total, 1) for m in small_fas}}
        if size in EYE_SIZES:
            s = missing_scores(found, scores, same)
            entry["upscaled_back"] = {"detection_rate": float(found.sum() / max(total, 1)),
                                      **accuracies(s, same, folds, t_acc),
                                      "median_quality": float(np.median(quals[found])) if found.any() else None,
                                      "share_below_quality_0.5": float(np.mean(quals[found] < 0.5)) if found.any() else None}
            # Stricter threshold for low-quality probes: far_1e-4 instead of far_1e-3 below quality 0.5.
            # FAR over each probe against every clean face of another person; TAR over the genuine pairs.
            persons = [Path(pairs[i]["path2"]).parent.name for i in sub]
            rows = np.where(found)[0]
            for name, thresholds in (("far_1e-3 for all", np.full(len(sub), t_far3)),
                                     ("far_1e-4 below quality 0.5", np.where(quals < 0.5, t_far4, t_far3))):
                fa_count, compared = impostor_accepts(probe_vectors[rows], [persons[r] for r in rows], lfw, person_of,
                                                      thresholds[rows])
                entry[name] = {"far": fa_count / max(compared, 1), "impostor_comparisons": compared,
                               "tar": float(np.mean(s[same] >= thresholds[same])), "genuine_pairs": int(same.sum())}
        out[str(size)] = entry
        print(f"  resolution {size} px: {entry}", flush=True)
    return out


def pose_section(root: Path, pairs: list, lfw: dict, index: dict, t_acc: float) -> dict[str, Any]:
    same = np.array([p["same"] == "1" for p in pairs])
    a = np.array([index[str(root / p["path1"])] for p in pairs])
    b = np.array([index[str(root / p["path2"])] for p in pairs])
    found = lfw["found"][a] & lfw["found"][b]
    yaw = np.maximum(np.abs(lfw["q_yaw"][a]), np.abs(lfw["q_yaw"][b]))
    out = {}
    for lo, hi in YAW_BUCKETS:
        m = found & (yaw >= lo) & (yaw < hi)
        row = {"pairs": int(m.sum())}
        for key, name in (("embedding", "accuracy"), ("embedding_flip_tta", "accuracy_flip")):
            s = np.sum(lfw[key][a[m]] * lfw[key][b[m]], axis=1)
            row[name] = float(np.mean((s >= t_acc) == same[m]))
        out[f"{lo}-{hi}"] = row
    out["pairs_missing_a_face"] = int((~found).sum())
    return out


def degraded_enrollment(fa: FaceAnalyzer, root: Path, paths: list[str], lfw: dict, ids: list[int]) -> dict[int, tuple]:
    """Each given photo downscaled to 8 px between the eyes and back, re-detected: (embedding, quality, box)."""
    out = {}
    for i in ids:
        image = read_image(paths[i])
        back = cv2.resize(resize_to_eyes(image, float(lfw["q_eye_distance"][i]), 8), (image.shape[1], image.shape[0]),
                          interpolation=cv2.INTER_LINEAR)
        dets = fa.detect(back)
        if len(dets) == 0:
            continue
        kept, qual, crops = fa.usable_faces(back, dets)
        j = nearest_to_centre(kept.boxes, *back.shape[:2])
        out[i] = (fa.embedder.embed_aligned(crops[j:j + 1])[0], qual[j], kept.boxes[j], float(kept.scores[j]))
    return out


def multi_photo(fa: FaceAnalyzer, root: Path, paths: list[str], lfw: dict, index: dict, t_far3: float) -> dict[str, Any]:
    """Rank-1 identification: one probe per person with >= 4 photos (the most turned photo if |yaw| >= 25,
    else the most frontal one), the person enrolled from 1 or 3 of their other photos among everybody
    else of the LFW pairs enrolled from one photo (distractors); then again with
    the third enrolled photo of each person degraded (8 px between the eyes, upscaled back)."""
    people: dict[str, list[int]] = {}
    for r in read_tsv(require_data("lfw") / "identities.tsv"):
        i = index.get(str(root / r["path"]))
        if i is not None and lfw["found"][i]:
            people.setdefault(r["person"], []).append(i)
    distractors = {p: v[0] for p, v in people.items() if len(v) < 4}  # enrolled from one photo each
    people = {p: v for p, v in people.items() if len(v) >= 4}
    probes, enrolled = {}, {}
    for person, imgs in people.items():
        turn = np.abs(lfw["q_yaw"][imgs])
        probe = imgs[int(np.argmax(turn))] if turn.max() >= 25 else imgs[int(np.argmin(turn))]
        probes[person] = (probe, bool(turn.max() >= 25))
        enrolled[person] = [i for i in imgs if i != probe][:3]

    def quality_of(i: int) -> FaceQuality:
        return FaceQuality(**{k: float(lfw[f"q_{k}"][i]) for k in ("score", "detection", "eye_distance", "yaw",
                                                                  "pitch", "roll", "sharpness", "residual")})

    def old_weight(i: int) -> float:
        box = lfw["boxes"][i]
        return enrollment_quality(float(lfw["q_detection"][i]), float(box[2] - box[0]), float(box[3] - box[1]))

    names = sorted(people)
    third = [enrolled[p][2] for p in names]
    degraded = degraded_enrollment(fa, root, paths, lfw, third)

    def vectors(ids: list[int], degrade: bool) -> np.ndarray:
        return np.stack([degraded[i][0] if degrade and i in degraded else lfw["embedding"][i] for i in ids])

    def new_weight(i: int, degrade: bool) -> float:
        return enrollment_weight(degraded[i][1] if degrade and i in degraded else quality_of(i))

    def old(i: int, degrade: bool) -> float:
        if degrade and i in degraded:
            box, score = degraded[i][2], degraded[i][3]
            return enrollment_quality(score, float(box[2] - box[0]), float(box[3] - box[1]))
        return old_weight(i)

    configs = [("1 photo", "max", 1, None), ("3 photos, max", "max", 3, None), ("3 photos, mean", "mean", 3, None),
               ("3 photos, quality (edgeface.quality)", "quality", 3, new_weight),
               ("3 photos, quality (old: score x size)", "quality", 3, old)]
    configs += [(f"{label}, third photo degraded", fusion, n, weight) for label, fusion, n, weight in configs[1:]]
    probe_vecs = np.stack([lfw["embedding"][probes[p][0]] for p in names])
    turned = np.array([probes[p][1] for p in names])
    distractor_best = (probe_vecs @ lfw["embedding"][list(distractors.values())].T).max(axis=1)
    out: dict[str, Any] = {"people": len(names), "distractor_people": len(distractors),
                           "non_frontal_probes": int(turned.sum()),
                           "degraded_third_photos_detected": len(degraded)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, fusion, n, weight in configs:
            degrade = label.endswith("degraded")
            g = Gallery(Path(tmp) / f"{len(out)}.db", "lfw", probe_vecs.shape[1], fusion=fusion)
            for p in names:
                ids = [i for i in enrolled[p][:n] if not degrade or i != enrolled[p][2] or i in degraded]
                g.enroll(p, vectors(ids, degrade), qualities=[weight(i, degrade) for i in ids] if weight else None)
            found = g.identify(probe_vecs, t_far3, top_k=1)
            # A one-photo distractor scores the same under every fusion: its single cosine.
            beats = np.array([f.candidates[0].score > d for f, d in zip(found, distractor_best)])
            best = np.array([f.candidates[0].name == p for f, p in zip(found, names)]) & beats
            named = np.array([f.name == p for f, p in zip(found, names)]) & beats
            out[label] = {"rank1_non_frontal": float(best[turned].mean()), "rank1_frontal": float(best[~turned].mean()),
                          "named_at_far_1e-3_non_frontal": float(named[turned].mean())}
            g.close()
    return out


# ---- face_recognition ---------------------------------------------------------------------------

def peer_section(root: Path, pairs: list, sub: list[int], lfw: dict, index: dict) -> Optional[dict[str, Any]]:
    if not peers_available():
        print("peers not installed: run bash bench/peers/setup.sh")
        return None
    same = np.array([pairs[i]["same"] == "1" for i in sub])
    folds = np.array([int(pairs[i]["fold"]) for i in sub])
    paths = sorted({str(root / pairs[i][k]) for i in sub for k in ("path1", "path2")})
    clean = run_peer("embed", "face_recognition", [Path(p) for p in paths], cache=True)
    by_path = {e["path"]: e for e in clean["images"]}

    def enc(entry: dict) -> Optional[np.ndarray]:
        return None if entry is None or entry.get("encoding") is None else np.array(entry["encoding"])

    def scores_against(vectors: list[Optional[np.ndarray]]) -> np.ndarray:
        s = np.zeros(len(sub))
        for k, (i, v) in enumerate(zip(sub, vectors)):
            ref = enc(by_path[str(root / pairs[i]["path1"])])
            s[k] = (-np.inf if same[k] else np.inf) if ref is None or v is None else -float(np.linalg.norm(ref - v))
        return s

    def acc(s: np.ndarray) -> dict[str, float]:
        return accuracies(s, same, folds, -0.6)

    out: dict[str, Any] = {"none": {"after_detection": acc(scores_against([enc(by_path[str(root / pairs[i]["path2"])])
                                                                            for i in sub]))}}
    for kind in KINDS:
        jobs, det_paths = [], []
        for i in sub:
            p2, ib = str(root / pairs[i]["path2"]), index[str(root / pairs[i]["path2"])]
            usable = bool(lfw["found"][ib])  # occlusion placed from edgeface's clean landmarks
            path = occluded_path(kind, i)
            if usable:
                store_image(path, occlude(read_image(p2), lfw["landmarks"][ib], kind, seed=i))
            jobs.append({"path": str(path) if usable else p2, "box": by_path[p2]["box"] if usable else None})
            if usable:
                det_paths.append(path)
        vectors = [None if e is None else np.array(e) for e in encode_at(jobs)]
        detected = run_peer("detect", "face_recognition", det_paths, cache=True)
        hits = 0
        for e in detected["images"]:
            k = int(Path(e["path"]).stem)
            clean_box = by_path[str(root / pairs[k]["path2"])]["box"]
            boxes = np.array(e["boxes"], float).reshape(-1, 4)
            hits += bool(clean_box is not None and len(boxes) and
                         iou_matrix(boxes, np.array([clean_box], float)).max() >= 0.5)
        with_clean_face = sum(1 for e in detected["images"] if by_path[str(root / pairs[int(Path(e["path"]).stem)]["path2"])]["box"])
        out[kind] = {"after_detection": acc(scores_against(vectors)),
                     "detection_recall": hits / max(with_clean_face, 1), "images": with_clean_face}
        print(f"  face_recognition {kind}: {out[kind]}", flush=True)
    out["resolution"] = {}
    for size in EYE_SIZES:
        listing = []
        for i in sub:
            ib = index[str(root / pairs[i]["path2"])]
            path = OUT_DIR / "resolution" / str(size) / f"{i:04d}.png"
            if lfw["found"][ib]:
                if not path.exists():
                    image = read_image(str(root / pairs[i]["path2"]))
                    small = resize_to_eyes(image, float(lfw["q_eye_distance"][ib]), size)
                    store_image(path, cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR))
                listing.append(path)
        run = run_peer("embed", "face_recognition", listing, cache=True)
        got = {int(Path(e["path"]).stem): enc(e) for e in run["images"]}
        s = scores_against([got.get(i) for i in sub])
        out["resolution"][str(size)] = {"detection_rate": float(np.mean([got.get(i) is not None for i in got])), **acc(s)}
        print(f"  face_recognition resolution {size}: {out['resolution'][str(size)]}", flush=True)
    out["subsample_images_clean_found"] = sum(1 for p in paths if by_path[p]["box"] is not None)
    return out


def encode_at(jobs: list[dict]) -> list:
    import hashlib
    key = hashlib.sha1(json.dumps(jobs).encode() + (PEERS_DIR / "encode_at.py").read_bytes()).hexdigest()[:16]
    cached = CACHE / f"peer-encode-at-{key}.json"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
            subprocess.run([str(PEER_PYTHON), str(PEERS_DIR / "encode_at.py"), "--jobs", str(Path(tmp) / "jobs.json"),
                            "--out", str(Path(tmp) / "out.json")], check=True)
            CACHE.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / "out.json").replace(cached)
    return json.loads(cached.read_text())["encodings"]


# ---- main ---------------------------------------------------------------------------------------

def plot(result: dict, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib not installed: no {out.name} (pip install '.[bench]')")
        return
    if not {"pose", "occlusion", "resolution"} <= set(result) or "edgeface" not in result["occlusion"]:
        return
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    occ = result["occlusion"]["edgeface"]
    peer = result["occlusion"].get("face_recognition") or {}
    kinds = ["none", *KINDS]
    x = np.arange(len(kinds))
    axes[0].bar(x - 0.27, [100 * occ[k]["after_detection"]["kfold"] for k in kinds], 0.27, label="edgeface")
    axes[0].bar(x, [100 * occ[k]["after_detection_flip"]["kfold"] for k in kinds], 0.27, label="edgeface + flip")
    if peer:
        axes[0].bar(x + 0.27, [100 * peer[k]["after_detection"]["kfold"] for k in kinds], 0.27, label="face_recognition")
    axes[0].set_xticks(x, kinds)
    axes[0].set_ylim(50, 100)
    axes[0].set_ylabel("LFW pair accuracy % (5-fold)")
    axes[0].set_title("Occlusion after detection")
    axes[0].legend(fontsize=7)
    pose = result["pose"]["edgeface"]
    buckets = [f"{lo}-{hi}" for lo, hi in YAW_BUCKETS]
    axes[1].plot(buckets, [100 * pose[b]["accuracy"] for b in buckets], "o-", label="edgeface")
    axes[1].plot(buckets, [100 * pose[b]["accuracy_flip"] for b in buckets], "o-", label="edgeface + flip")
    axes[1].set_xlabel("larger |yaw| of the pair (degrees)")
    axes[1].set_title("Pose (calibrated threshold)")
    axes[1].legend(fontsize=7)
    sizes = [str(s) for s in EYE_SIZES]
    if "edgeface" in result["resolution"]:
        res = result["resolution"]["edgeface"]
        axes[2].plot(EYE_SIZES, [100 * res[s]["upscaled_back"]["kfold"] for s in sizes], "o-", label="edgeface")
    peer_res = (result["resolution"].get("face_recognition") or {})
    if peer_res:
        axes[2].plot(EYE_SIZES, [100 * peer_res[s]["kfold"] for s in sizes], "o-", label="face_recognition")
    axes[2].set_xlabel("inter-eye distance (px), upscaled back")
    axes[2].set_title("Resolution (5-fold accuracy)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-fold", type=int, default=100, help="pairs per fold in the occlusion/resolution subsample")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--sections", default="pose,occlusion,resolution,peers",
                    help="comma list; a subset re-measures only those and keeps the rest of robustness.json "
                         "(e.g. run 'pose,occlusion,resolution' and 'peers' as two processes)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    fa = FaceAnalyzer(threads=1, min_quality=0.0)
    spec = fa.embedder.spec
    t_acc, t_far3, t_far4 = (threshold_for(spec, op) for op in ("best_accuracy", "far_1e-3", "far_1e-4"))
    root, pairs = lfw_pairs()
    paths = pair_paths(root, pairs)
    lfw = embed_lfw(fa, paths)
    flip = lfw["embedding"] + lfw["embedding_flip"]
    lfw["embedding_flip_tta"] = flip / np.maximum(np.linalg.norm(flip, axis=1, keepdims=True), 1e-12)
    index = {p: i for i, p in enumerate(paths)}
    sub = subsample(pairs, args.per_fold)
    result: dict[str, Any] = {}
    result.update({"embedder": spec.name, "subsample_pairs": len(sub), "all_pairs": len(pairs),
                   "thresholds": {"best_accuracy": t_acc, "far_1e-3": t_far3, "far_1e-4": t_far4}})
    measured: dict[str, Any] = {}
    if "pose" in sections:
        result["pose"] = {"edgeface": pose_section(root, pairs, lfw, index, t_acc),
                          "multi_photo": multi_photo(fa, root, paths, lfw, index, t_far3)}
        print("pose", json.dumps(result["pose"], indent=1), flush=True)
    if "occlusion" in sections:
        measured[("occlusion", "edgeface")] = occlusion_edgeface(fa, root, pairs, sub, lfw, index, t_acc)
    if "resolution" in sections:
        small_fas = {m: FaceAnalyzer(threads=1, min_quality=0.0, min_face_size=m) for m in (20, 10, 6)}
        measured[("resolution", "edgeface")] = resolution_edgeface(
            fa, small_fas, root, pairs, sub, lfw, index, paths, t_acc, t_far3, t_far4)
        for sfa in small_fas.values():
            sfa.close()
    fa.close()
    if not args.no_peers and "peers" in sections:
        peer = peer_section(root, pairs, sub, lfw, index)
        if peer is not None:
            measured[("resolution", "face_recognition")] = peer.pop("resolution")
            measured[("occlusion", "face_recognition")] = peer
    # Merge into the stored results (another process may have written its sections meanwhile).
    previous = PUBLISHED / "robustness.json"
    stored: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if stored.get("subsample_pairs") != result["subsample_pairs"]:
        stored = {k: v for k, v in stored.items() if k == "pose"}
    for key in ("command", "date", "machine"):
        stored.pop(key, None)
    stored.update(result)
    for (section, system), value in measured.items():
        stored.setdefault(section, {})[system] = value
    result = stored
    out_png = PUBLISHED / "robustness.png"
    plot(result, out_png)
    result["plot"] = str(out_png.relative_to(REPO))
    result.setdefault("commands", {})[args.sections] = "python " + " ".join(["bench/robustness.py", *sys.argv[1:]])
    save("robustness.json", result)


if __name__ == "__main__":
    main()
