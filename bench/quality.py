"""Face quality (edgeface.quality): what a ``min_quality`` gate removes, and whether the score
predicts recognition errors.

1. Detection (../shared/data/detection: WIDER subset + dlib VOC, 371 faces): every MTCNN detection is
   matched to the ground truth (IoU 0.5); per ``min_quality``, the share of false detections removed
   and of true faces lost (all, and faces whose ground-truth box is >= 32 px wide), plus the share of
   LFW faces lost and whether the 0.934-score background box of identification/test_images/obama.jpg
   is dropped.
2. LFW error-versus-reject: the 3,000 pairs ordered by pair quality (the lower of the two faces'
   scores; a pair with a missing face first); accuracy at the calibrated best-accuracy threshold and
   false non-match rate at the far_1e-3 threshold of the pairs kept as the lowest-quality fraction is
   dropped, for the quality score and for each single measurement.

    python bench/quality.py [--embedder dlib_resnet_v1_int8]

Writes docs/benchmarks/quality.json and docs/benchmarks/quality_erc.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_detect import iou_matrix, load_ground_truth  # noqa: E402
from common import PUBLISHED, REPO, machine, require_data, write_json_atomic  # noqa: E402
from lfw_faces import embed_lfw, lfw_pairs, pair_paths  # noqa: E402

from edgeface import FaceAnalyzer  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.matching import threshold_for  # noqa: E402
from edgeface.quality import DEFAULT_MIN_QUALITY, ENROLL_MIN_QUALITY  # noqa: E402

THRESHOLDS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
REJECT = np.round(np.arange(0.0, 0.51, 0.02), 2)


def save(name: str, payload: dict[str, Any]) -> Path:
    record = {"command": "python " + " ".join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), **payload}
    out = write_json_atomic(PUBLISHED / name, record)
    print(f"results: {out.relative_to(REPO)}")
    return out


def detection_labels(fa: FaceAnalyzer) -> dict[str, np.ndarray]:
    """Quality score of every detection with its label: true face (and its ground-truth width) or false."""
    scores, true, width = [], [], []
    for path, g in load_ground_truth().items():
        image = read_image(path)
        dets, qual, _ = fa.usable_faces(image, fa.detect(image))
        gt = np.array(g["boxes"], np.float64)
        ignore = np.array(g["ignore"])
        ious = iou_matrix(dets.boxes.astype(np.float64), gt) if len(dets) else np.zeros((0, len(gt)))
        taken = np.zeros(len(gt), bool)
        for i in range(len(dets)):  # greedy by detector score, as accuracy_detect.py
            candidates = np.where((ious[i] >= 0.5) & ~taken)[0]
            if len(candidates) == 0:
                scores.append(qual.score[i]), true.append(False), width.append(0.0)
                continue
            j = candidates[np.argmax(ious[i, candidates])]
            taken[j] = True
            if not ignore[j]:
                scores.append(qual.score[i]), true.append(True), width.append(gt[j, 2] - gt[j, 0])
    return {"score": np.array(scores), "true": np.array(true), "gt_width": np.array(width)}


def obama_boxes(fa: FaceAnalyzer) -> list[dict[str, Any]]:
    image = read_image(require_data("identification") / "test_images" / "obama.jpg")
    dets, qual, _ = fa.usable_faces(image, fa.detect(image))
    return [{"box": [round(float(v), 1) for v in dets.boxes[i]], **qual[i].to_dict()} for i in range(len(dets))]


def gate_table(det: dict[str, np.ndarray], lfw_scores: np.ndarray, obama: list[dict]) -> list[dict[str, Any]]:
    true, score = det["true"], det["score"]
    large = true & (det["gt_width"] >= 32)
    background = [b["score"] for b in obama if b["detection"] < 0.99]
    rows = []
    for t in THRESHOLDS:
        drop = score < t
        rows.append({
            "min_quality": t,
            "false_removed": int(np.sum(drop & ~true)), "false_total": int(np.sum(~true)),
            "true_lost": int(np.sum(drop & true)), "true_total": int(np.sum(true)),
            "true_32px_lost": int(np.sum(drop & large)), "true_32px_total": int(np.sum(large)),
            "lfw_lost": int(np.sum(lfw_scores < t)), "lfw_total": int(len(lfw_scores)),
            "obama_background_dropped": bool(background) and all(s < t for s in background),
        })
    return rows


def erc(order_key: np.ndarray, scores: np.ndarray, same: np.ndarray, t_acc: float, t_far: float) -> dict[str, list]:
    """Accuracy and FNMR of the pairs kept after dropping the lowest ``order_key`` fractions."""
    order = np.argsort(order_key, kind="stable")
    acc, fnmr = [], []
    for r in REJECT:
        keep = order[int(round(r * len(order))):]
        s, y = scores[keep], same[keep]
        acc.append(float(np.mean((s >= t_acc) == y)))
        fnmr.append(float(np.mean(s[y] < t_far)))
    return {"accuracy": acc, "fnmr_at_far_1e-3": fnmr}


def plot(curves: dict[str, dict], out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib not installed: no {out.name} (pip install '.[bench]')")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, c in curves.items():
        axes[0].plot(100 * REJECT, [100 * (1 - a) for a in c["accuracy"]], label=name)
        axes[1].plot(100 * REJECT, [100 * f for f in c["fnmr_at_far_1e-3"]], label=name)
    axes[0].set_ylabel("error % (best-accuracy threshold)")
    axes[1].set_ylabel("false non-match % (FAR 1e-3 threshold)")
    for ax in axes:
        ax.set_xlabel("lowest-quality pairs rejected (%)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("LFW error versus reject (3,000 pairs, order by the lower-quality face of each pair)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default=None, help="embedder model (default: the package default)")
    args = ap.parse_args()
    fa = FaceAnalyzer(threads=1, embedder=args.embedder, min_quality=0.0)
    root, pairs = lfw_pairs()
    paths = pair_paths(root, pairs)
    lfw = embed_lfw(fa, paths)
    index = {p: i for i, p in enumerate(paths)}
    a = np.array([index[str(root / p["path1"])] for p in pairs])
    b = np.array([index[str(root / p["path2"])] for p in pairs])
    same = np.array([p["same"] == "1" for p in pairs])
    found = lfw["found"][a] & lfw["found"][b]
    scores = np.where(found, np.sum(lfw["embedding"][a] * lfw["embedding"][b], axis=1), np.where(same, -np.inf, np.inf))
    spec = fa.embedder.spec
    t_acc, t_far = threshold_for(spec, "best_accuracy"), threshold_for(spec, "far_1e-3")

    def pair_min(key: str, transform=lambda v: v) -> np.ndarray:
        v = transform(lfw[key])
        return np.where(found, np.minimum(v[a], v[b]), -np.inf)

    curves = {
        "quality score": erc(pair_min("q_score"), scores, same, t_acc, t_far),
        "detection score only": erc(pair_min("q_detection"), scores, same, t_acc, t_far),
        "eye distance only": erc(pair_min("q_eye_distance"), scores, same, t_acc, t_far),
        "sharpness only": erc(pair_min("q_sharpness"), scores, same, t_acc, t_far),
        "frontal pose only (-|yaw|-|pitch|)": erc(pair_min("q_yaw", lambda v: -np.abs(v) - np.abs(lfw["q_pitch"])),
                                                  scores, same, t_acc, t_far),
        "template fit only (-residual)": erc(pair_min("q_residual", lambda v: -v), scores, same, t_acc, t_far),
    }
    det = detection_labels(fa)
    obama = obama_boxes(fa)
    lfw_scores = lfw["q_score"][lfw["found"]]
    table = gate_table(det, lfw_scores, obama)
    out_png = PUBLISHED / "quality_erc.png"
    plot(curves, out_png)
    fa.close()
    for row in table:
        print(f"min_quality {row['min_quality']:.2f}: false removed {row['false_removed']}/{row['false_total']}, "
              f"true lost {row['true_lost']}/{row['true_total']} (>=32 px {row['true_32px_lost']}/{row['true_32px_total']}), "
              f"LFW lost {row['lfw_lost']}/{row['lfw_total']}, obama background dropped {row['obama_background_dropped']}")
    for name, c in curves.items():
        print(f"{name:38s} accuracy at reject 0/10/20/30 %: "
              + " ".join(f"{100 * c['accuracy'][i]:.2f}" for i in (0, 5, 10, 15)))
    save("quality.json", {
        "embedder": spec.name, "thresholds": {"best_accuracy": t_acc, "far_1e-3": t_far},
        "default_min_quality": DEFAULT_MIN_QUALITY, "enroll_min_quality": ENROLL_MIN_QUALITY,
        "gate": table, "obama_detections": obama,
        "lfw_quality_percentiles": {str(q): float(np.percentile(lfw_scores, q)) for q in (0.5, 1, 2, 5, 10, 25, 50)},
        "lfw_pairs": len(pairs), "lfw_faces_missing": int(np.sum(~lfw["found"])),
        "erc": {"reject_fraction": REJECT.tolist(), "curves": curves}, "plot": str(out_png.relative_to(REPO)),
    })


if __name__ == "__main__":
    main()
