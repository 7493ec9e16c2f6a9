"""Detection accuracy on ../shared/data/detection: WIDER FACE val subset (easy/medium/hard flags)
and dlib's PASCAL VOC faces; every edgeface detector and the peer detectors on the same images in one run.

Per detector: recall at IoU 0.5 per difficulty and per face-size bucket (ground-truth box height < 16,
16-32, 32-64, >= 64 px), both at the detector's own threshold and at the lowest score that keeps
<= 0.5 false positives per image; average precision (all valid faces); false positives per image
(detections matching no face, ignored/invalid boxes excepted); for the detectors that give 5 landmarks
the 5-landmark error against dlib's 68-point annotations (eye centres = mean of the eye contours,
nose tip = point 30, mouth corners = 48/54), normalised by the inter-ocular distance; median ms per
image of the set, and ms/frame on shared/data/speed photos resized to 640x480 and 1280x720 at 1 and 2
threads (ONNX Runtime). WIDER "medium" includes "easy" (and "hard" includes both).
The 4-image WIDER subset is a sanity check for small crowded faces, not the official benchmark.

    python bench/accuracy_detect.py                       # every registered detector + peers
    python bench/accuracy_detect.py --detector mtcnn --detector yunet:max_side=640 --no-peers
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, publish, read_tsv, require_data, write_json_atomic  # noqa: E402
from peer_runs import DETECTORS as PEER_DETECTORS  # noqa: E402
from peer_runs import run_peer  # noqa: E402
from speed import SIZES, THREADS, load_frames, per_frame_ms  # noqa: E402

from edgeface.detection import DETECTORS as DETECTOR_CLASSES  # noqa: E402
from edgeface.detection import DEFAULT_DETECTOR, create_detector  # noqa: E402
from edgeface.detection.yunet import unrotate  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402

ROTATE_CODES = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


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


SIZE_BUCKETS = ((0, 16, "<16"), (16, 32, "16-32"), (32, 64, "32-64"), (64, float("inf"), ">=64"))
MAX_FP_PER_IMAGE = 0.5


def size_bucket(box: list[float]) -> str:
    """Bucket of a ground-truth face by its box height (WIDER's scale convention)."""
    height = box[3] - box[1]
    return next(name for lo, hi, name in SIZE_BUCKETS if lo <= height < hi)


def match_scores(truth: dict, detections: dict[str, tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[list[tuple[set, float]], np.ndarray]:
    """Greedy matching by score at IoU 0.5, per image.

    Returns, per valid face, (its groups, score of the detection that found it or -inf), and the
    scores of the false positives (detections matching no face; ignored/invalid faces excepted). Matching
    in descending score order means the result at any higher score threshold is the same matching cut.
    """
    faces, false_positives = [], []
    for path, g in truth.items():
        gt = np.array(g["boxes"], np.float64)
        ignore = np.array(g["ignore"])
        boxes, scores = detections.get(path, (np.zeros((0, 4)), np.zeros(0)))
        order = np.argsort(-scores, kind="stable")
        boxes, scores = boxes[order], scores[order]
        ious = iou_matrix(boxes, gt) if len(boxes) and len(gt) else np.zeros((len(boxes), len(gt)))
        found = np.full(len(gt), -np.inf)
        for i in range(len(boxes)):
            candidates = np.where((ious[i] >= 0.5) & np.isinf(found))[0]
            if len(candidates) == 0:
                false_positives.append(scores[i])
                continue
            found[candidates[np.argmax(ious[i, candidates])]] = scores[i]
        for j, levels in enumerate(g["levels"]):
            if not ignore[j]:
                faces.append((levels | {"size " + size_bucket(g["boxes"][j])}, float(found[j])))
    return faces, np.array(false_positives, np.float64)


def evaluate(truth: dict, detections: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Recall per group (difficulty, VOC, size bucket) at the detector's own threshold and at the
    lowest score keeping <= 0.5 false positives per image; AP over all valid faces; FP per image."""
    faces, fp_scores = match_scores(truth, detections)
    n_images = len(truth)
    groups = sorted({grp for levels, _ in faces for grp in levels})
    # Lowest score threshold with at most MAX_FP_PER_IMAGE false positives per image.
    allowed = int(np.floor(MAX_FP_PER_IMAGE * n_images))
    fp_sorted = np.sort(fp_scores)[::-1]
    op_threshold = -np.inf if len(fp_sorted) <= allowed else float(np.nextafter(fp_sorted[allowed], np.inf))

    def recall_at(threshold: float) -> dict[str, dict[str, float]]:
        out = {}
        for grp in groups:
            members = [s for levels, s in faces if grp in levels]
            hit = sum(bool(np.isfinite(s) and s >= threshold) for s in members)
            out[grp] = {"recall": hit / len(members), "found": hit, "total": len(members)}
        return out

    # VOC-style AP over every valid face: area under the precision envelope.
    scores = np.array([s for _, s in faces if np.isfinite(s)] + list(fp_scores))
    hits = np.array([True] * sum(np.isfinite(s) for _, s in faces) + [False] * len(fp_scores))
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    precision = tp / np.arange(1, len(order) + 1) if len(order) else np.zeros(0)
    recall = tp / max(len(faces), 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope)) if len(recall) else 0.0
    at_op = recall_at(op_threshold)
    return {"recall": recall_at(-np.inf),
            "recall_all": sum(np.isfinite(s) for _, s in faces) / max(len(faces), 1),
            "ap": ap, "false_positives_per_image": len(fp_scores) / n_images,
            "at_max_fp": {"max_fp_per_image": MAX_FP_PER_IMAGE, "score_threshold": op_threshold,
                          "false_positives_per_image": int(np.sum(fp_scores >= op_threshold)) / n_images,
                          "recall": at_op},
            "faces": len(faces), "images": n_images}


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


def parse_detector(spec: str) -> tuple[str, str, dict[str, Any]]:
    """"yunet" or "yunet:max_side=640,rotations=(0,90,270)" -> (label, name, options)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, re.split(r",(?=\w+=)", rest)):  # commas inside tuples stay
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    return spec, name, options


def frame_speed(name: str, options: dict[str, Any], frames: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Median ms per frame at each frame size and thread count (ONNX Runtime)."""
    out = {}
    for size, images in frames.items():
        for threads in THREADS:
            with create_detector(name, backend="onnxruntime", threads=threads, **options) as det:
                out[f"{size} t{threads}"] = per_frame_ms(det.detect, images)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", action="append", metavar="NAME[:KEY=VALUE,...]",
                        help=f"detector and options, repeatable (default: each of {', '.join(DETECTOR_CLASSES)})")
    parser.add_argument("--speed-frames", type=int, default=12,
                        help="photos of shared/data/speed timed at 640x480 and 1280x720 (0: skip)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--rotate", type=int, choices=sorted(ROTATE_CODES), default=0,
                        help="turn every image clockwise by this angle first (faces lying on their side; "
                             "edgeface detectors only, no peers, no frame timing)")
    args = parser.parse_args()
    if args.rotate:
        args.no_peers, args.speed_frames = True, 0
    truth = load_ground_truth()
    paths = sorted(truth)
    speed_paths = sorted(require_data("speed").rglob("*.jpg"))[:args.speed_frames]
    frames = {size: load_frames(speed_paths, wh) for size, wh in SIZES.items()} if speed_paths else {}
    results = {}
    for label, name, options in map(parse_detector, args.detector or list(DETECTOR_CLASSES)):
        with create_detector(name, backend="onnxruntime", threads=1, **options) as det:
            boxes, with_marks, seconds = {}, {}, []
            for p in paths:
                image = read_image(p)
                upright_shape = image.shape[:2]
                if args.rotate:
                    image = cv2.rotate(image, ROTATE_CODES[args.rotate])
                start = time.perf_counter()
                d = det.detect(image)
                seconds.append(time.perf_counter() - start)
                found, marks = d.boxes, d.landmarks
                if args.rotate:  # back to the upright image's pixels, where the annotations are
                    corners = unrotate(found.reshape(-1, 2, 2), args.rotate, upright_shape)
                    found = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
                    marks = unrotate(marks, args.rotate, upright_shape)
                boxes[p] = (found.astype(np.float64), d.scores.astype(np.float64))
                with_marks[p] = (found, d.scores, marks)
            config = {k: v for k, v in vars(det.config).items()}
        results[label] = {**evaluate(truth, boxes), "landmarks": landmark_error(with_marks), "config": config,
                          "ms_per_image": 1000 * float(np.median(seconds)),
                          "ms_per_frame": frame_speed(name, options, frames)}
    if not args.no_peers:
        for peer in PEER_DETECTORS:
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
            results[peer] = {**evaluate(truth, dets), "versions": run["versions"], "settings": run["settings"],
                             "ms_per_image": 1000 * float(np.median([im["seconds"] for im in run["images"]])),
                             "ms_note": "from the peer run (cached accuracy run; timed on one thread)"}
            if marks:
                results[peer]["landmarks"] = landmark_error(marks)
    print_table(results)
    if args.rotate:  # a measurement of the rotations option, not the published table
        write_json_atomic(PUBLISHED / f"accuracy_detect_rotate{args.rotate}.json",
                          {"command": " ".join(["python bench/accuracy_detect.py", *sys.argv[1:]]),
                           "rotate": args.rotate, "results": results})
        return
    publish("accuracy_detect.json", {"default_detector": DEFAULT_DETECTOR, "size_buckets": "ground-truth box height, px", "results": results})


def print_table(results: dict[str, dict]) -> None:
    groups = ["easy", "medium", "hard", "voc"] + [f"size {b[2]}" for b in SIZE_BUCKETS]
    header = f"{'detector':36s} {'':8s}" + "".join(f"{g.replace('size ', ''):>8s}" for g in groups)
    print(header + f"{'AP':>7s}{'FP/img':>8s}{'NME':>7s}{'ms/img':>8s}  ms/frame")
    for name, r in results.items():
        for tag, rec, fp in (("own thr", r["recall"], r["false_positives_per_image"]),
                             ("FP<=0.5", r["at_max_fp"]["recall"], r["at_max_fp"]["false_positives_per_image"])):
            cells = "".join(f"{100 * rec[g]['recall']:7.1f}%" if g in rec else f"{'-':>8s}" for g in groups)
            nme = f"{100 * r['landmarks']['mean_nme']:6.2f}%" if "landmarks" in r else f"{'-':>7s}"
            speed = "  ".join(f"{k} {v:.1f}" for k, v in r.get("ms_per_frame", {}).items()) if tag == "own thr" else \
                f"(score >= {r['at_max_fp']['score_threshold']:.3f})"
            print(f"{name[:36]:36s} {tag:8s}{cells}{100 * r['ap']:6.1f}%{fp:8.2f}{nme}{r['ms_per_image']:8.1f}  {speed}")


if __name__ == "__main__":
    main()
