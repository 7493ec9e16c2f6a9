"""Detection accuracy on ../shared/data/detection: WIDER FACE val subset (easy/medium/hard flags)
and dlib's PASCAL VOC faces; edgeface and the peer detectors on the same images in one run.

Per detector: recall at IoU 0.5 per difficulty, average precision (all valid faces), false positives
per image (detections matching no face, ignored/invalid boxes excepted); for the detectors that
give 5 landmarks (edgeface, facenet-pytorch MTCNN) also the 5-landmark error against dlib's 68-point annotations (eye centres = mean of the eye contours,
nose tip = point 30, mouth corners = 48/54), normalised by the inter-ocular distance.
The 4-image WIDER subset is a sanity check for small crowded faces, not the official benchmark.

    python bench/accuracy_detect.py [--min-face 20] [--no-peers]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import publish, read_tsv, require_data  # noqa: E402
from peer_runs import DETECTORS, run_peer  # noqa: E402

from edgeface.detection import Detector  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def load_ground_truth() -> dict[str, dict[str, list]]:
    """path → {"boxes": x1y1x2y2, "ignore": bool, "difficulty": set of easy/medium/hard}."""
    truth: dict[str, dict[str, list]] = {}
    wider, voc = require_data("detection/wider"), require_data("detection/dlib_voc")
    sources = [(wider, r, r["invalid"] == "1", {l for l in ("easy", "medium", "hard") if r[l] == "1"})
               for r in read_tsv(wider / "boxes.tsv")]
    sources += [(voc, r, r["ignore"] == "1", {"voc"}) for r in read_tsv(voc / "boxes.tsv")]
    for root, r, ignored, levels in sources:
        g = truth.setdefault(str(root / r["path"]), {"boxes": [], "ignore": [], "levels": []})
        x, y, w, h = (float(r[k]) for k in "xywh")
        g["boxes"].append([x, y, x + w, y + h])
        g["ignore"].append(ignored)
        g["levels"].append(levels)
    return truth


def evaluate(truth: dict, detections: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Greedy matching by score at IoU 0.5, per image; then recall per level, AP, FP per image."""
    records, n_valid, found_all, per_level, found_level, fp = [], 0, 0, {}, {}, 0
    for path, g in truth.items():
        gt = np.array(g["boxes"], np.float64)
        ignore = np.array(g["ignore"])
        boxes, scores = detections.get(path, (np.zeros((0, 4)), np.zeros(0)))
        order = np.argsort(-scores, kind="stable")
        boxes, scores = boxes[order], scores[order]
        ious = iou_matrix(boxes, gt) if len(boxes) and len(gt) else np.zeros((len(boxes), len(gt)))
        taken = np.zeros(len(gt), bool)
        for i in range(len(boxes)):
            candidates = np.where((ious[i] >= 0.5) & ~taken)[0]
            if len(candidates) == 0:
                records.append((scores[i], False))
                fp += 1
                continue
            j = candidates[np.argmax(ious[i, candidates])]
            taken[j] = True
            if not ignore[j]:
                records.append((scores[i], True))
        n_valid += int((~ignore).sum())
        found_all += int((taken & ~ignore).sum())
        for j, levels in enumerate(g["levels"]):
            if ignore[j]:
                continue
            for lvl in levels:
                per_level[lvl] = per_level.get(lvl, 0) + 1
                found_level[lvl] = found_level.get(lvl, 0) + int(taken[j])
    records.sort(key=lambda r: -r[0])
    hits = np.array([r[1] for r in records], bool)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1) if len(hits) else np.zeros(0)
    recall = tp / max(n_valid, 1) if len(hits) else np.zeros(0)
    # VOC-style AP: area under the precision envelope.
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope)) if len(recall) else 0.0
    return {"recall": {lvl: found_level[lvl] / per_level[lvl] for lvl in sorted(per_level)},
            "found": {lvl: found_level[lvl] for lvl in sorted(per_level)},
            "total": {lvl: per_level[lvl] for lvl in sorted(per_level)},
            "recall_all": found_all / max(n_valid, 1),
            "ap": ap, "false_positives_per_image": fp / len(truth), "faces": n_valid, "images": len(truth)}


def landmark_error(detections: dict) -> dict:
    """Mean and median 5-point error / inter-ocular distance against dlib's 68-point annotations."""
    voc = require_data("detection/dlib_voc")
    errors = []
    for r in read_tsv(voc / "landmarks68.tsv"):
        pts = np.array(r["points_x0_y0_..._x67_y67"].split(","), float).reshape(68, 2)
        ref = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
        boxes, _, marks = detections.get(str(voc / r["path"]), (None, None, None))
        if marks is None or len(marks) == 0:
            continue
        x, y, w, h = (float(r[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
        gt_box = np.array([[x, y, x + w, y + h]])
        j = int(np.argmax(iou_matrix(boxes.astype(np.float64), gt_box)[:, 0]))
        if iou_matrix(boxes[j:j + 1].astype(np.float64), gt_box)[0, 0] < 0.3:
            continue
        iod = np.linalg.norm(ref[0] - ref[1])
        errors.append(float(np.mean(np.linalg.norm(marks[j] - ref, axis=1)) / iod))
    return {"faces": len(errors), "mean_nme": float(np.mean(errors)), "median_nme": float(np.median(errors))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-face", type=float, default=20.0)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    truth = load_ground_truth()
    paths = sorted(truth)
    results = {}
    with Detector(min_face_size=args.min_face) as det:
        ours, with_marks = {}, {}
        for p in paths:
            d = det.detect(read_image(p))
            ours[p] = (d.boxes.astype(np.float64), d.scores.astype(np.float64))
            with_marks[p] = (d.boxes, d.scores, d.landmarks)
    results[f"edgeface (min face {args.min_face:g})"] = {**evaluate(truth, ours), "landmarks": landmark_error(with_marks)}
    if not args.no_peers:
        for peer in DETECTORS:
            run = run_peer("detect", peer, [Path(p) for p in paths], cache=True)
            if run is None:
                break
            dets, marks = {}, {}
            for im in run["images"]:
                boxes = np.array(im["boxes"], np.float64).reshape(-1, 4)
                scores = np.array([1.0] * len(boxes) if im.get("scores") is None else im["scores"], np.float64)
                dets[im["path"]] = (boxes, scores)
                if im.get("landmarks") is not None:
                    marks[im["path"]] = (boxes, scores, np.array(im["landmarks"], np.float64).reshape(-1, 5, 2))
            results[peer] = {**evaluate(truth, dets), "versions": run["versions"], "settings": run["settings"]}
            if marks:
                results[peer]["landmarks"] = landmark_error(marks)
    for name, r in results.items():
        recall = "  ".join(f"{k} {100 * v:.1f} %" for k, v in r["recall"].items()) + f"  all {100 * r['recall_all']:.1f} %"
        extra = f"  landmarks NME {100 * r['landmarks']['mean_nme']:.2f} %" if "landmarks" in r else ""
        print(f"{name:28s} recall: {recall}  AP {100 * r['ap']:.1f} %  FP/img {r['false_positives_per_image']:.2f}{extra}")
    publish("accuracy_detect.json", {"min_face": args.min_face, "results": results})


if __name__ == "__main__":
    main()
