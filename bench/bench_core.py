"""Benchmark edgeface._core kernels against their OpenCV / numpy equivalents.

Usage: python bench/bench_core.py [--runs 25] [--image PATH]

Each case times the edgeface kernel and its peer on the same input: median of --runs calls
after warm-up, single thread (the peers' OpenCV threading is disabled so that both sides use
one core). Prints kernel, input, edgeface ms, peer ms and ratio (peer / edgeface: > 1 means
edgeface is faster).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms, publish  # noqa: E402

from edgeface import _core  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def load(path, h, w):
    img = cv2.imread(str(path))
    if img is None:
        img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))


# ---------------------------------------------------------------- NMS
def pnet_like_boxes(n, seed=0):
    """Candidate boxes like P-Net's on a 1080p frame: clusters around ~40 faces + clutter."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([0, 0], [1920, 1080], (40, 2))
    sizes = rng.uniform(20, 250, 40)
    k = rng.integers(0, 40, n)
    c = centres[k] + rng.normal(0, 0.15, (n, 2)) * sizes[k, None]
    s = sizes[k] * rng.uniform(0.7, 1.3, n)
    clutter = rng.random(n) < 0.3
    c[clutter] = rng.uniform([0, 0], [1920, 1080], (clutter.sum(), 2))
    boxes = np.concatenate([c - s[:, None] / 2, c + s[:, None] / 2], 1).astype(np.float32)
    scores = rng.uniform(0.6, 1.0, n).astype(np.float32)
    return boxes, scores


def numpy_nms(boxes, scores, thr):
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        r = order[1:]
        iw = np.maximum(np.minimum(x2[i], x2[r]) - np.maximum(x1[i], x1[r]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[r]) - np.maximum(y1[i], y1[r]), 0)
        inter = iw * ih
        order = r[inter <= thr * (area[i] + area[r] - inter)]
    return np.array(keep)


def bench_nms(runs, rows):
    for n in (2000, 20000):
        boxes, scores = pnet_like_boxes(n)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64)
        xywh_list = xywh.tolist()
        score_list = scores.tolist()
        ours = median_ms(lambda: _core.nms(boxes, scores, 0.5), runs)
        peer = median_ms(lambda: cv2.dnn.NMSBoxes(xywh_list, score_list, 0.0, 0.5), runs)
        rows.append(("nms", f"{n} boxes", ours, "cv2.dnn.NMSBoxes", peer))
        peer = median_ms(lambda: numpy_nms(boxes, scores, 0.5), max(5, runs // 4) if n > 5000 else runs)
        rows.append(("nms", f"{n} boxes", ours, "numpy greedy", peer))
    boxes, scores = pnet_like_boxes(20000)
    groups = np.random.default_rng(1).integers(0, 12, 20000).astype(np.int32)
    ours = median_ms(lambda: _core.batched_nms(boxes, scores, groups, 0.5), runs)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64)
    peer = median_ms(lambda: cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(),
                                                     groups.tolist(), 0.0, 0.5), runs)
    rows.append(("batched_nms", "20000 boxes, 12 groups", ours, "cv2.dnn.NMSBoxesBatched", peer))


# ---------------------------------------------------------------- pyramid
def peer_pyramid(img, scales):
    h, w = img.shape[:2]
    out = []
    for s in scales:
        hs, ws = int(np.ceil(h * s)), int(np.ceil(w * s))
        lvl = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_LINEAR)
        lvl = (lvl[:, :, ::-1].astype(np.float32) - 127.5) * 0.0078125
        out.append(np.ascontiguousarray(lvl.transpose(2, 0, 1)))
    return out


def bench_pyramid(runs, rows, image):
    for h, w in ((480, 640), (1080, 1920)):
        img = load(image, h, w)
        scales = _core.pyramid_scales(h, w, 20.0)
        ours = median_ms(lambda: _core.pyramid(img, scales), runs)
        peer = median_ms(lambda: peer_pyramid(img, scales), runs)
        rows.append(("pyramid", f"{w}x{h}, {len(scales)} levels", ours,
                     "cv2.resize/level + normalize + transpose", peer))


# ---------------------------------------------------------------- crop_resize
def peer_crops(img, boxes, size):
    pad = 256
    padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64) + pad):
        out[k] = cv2.resize(padded[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
    return ((out[..., ::-1].astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


def bench_crops(runs, rows, image):
    img = load(image, 1080, 1920)
    rng = np.random.default_rng(2)
    xy = rng.uniform([-30, -30], [1800, 950], (100, 2))
    s = rng.uniform(20, 200, (100, 1))
    boxes = np.round(np.concatenate([xy, xy + s], 1)).astype(np.float32)
    for size in (24, 48):
        ours = median_ms(lambda: _core.crop_resize(img, boxes, size), runs)
        peer = median_ms(lambda: peer_crops(img, boxes, size), runs)
        rows.append(("crop_resize", f"100 boxes -> {size}", ours,
                     "pad + cv2.resize/box + normalize", peer))


# ---------------------------------------------------------------- align
def bench_align(runs, rows, image):
    from skimage.transform import SimilarityTransform

    img = load(image, 1080, 1920)
    rng = np.random.default_rng(3)
    lms = []
    for _ in range(16):
        a = rng.uniform(-0.4, 0.4)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        lms.append((TEMPLATE - 56) @ r.T * rng.uniform(0.5, 2.5) + rng.uniform(150, 900, 2)
                   + rng.normal(0, 1.5, (5, 2)))
    lms = np.array(lms, np.float32)

    def skimage_sim(src, dst):
        if hasattr(SimilarityTransform, "from_estimate"):
            return SimilarityTransform.from_estimate(src, dst).params[:2]
        t = SimilarityTransform()
        t.estimate(src, dst)
        return t.params[:2]

    for size in (112, 150):
        tpl = TEMPLATE * (size / 112.0)
        ours = median_ms(lambda: _core.align_faces(img, lms, tpl, size, size), runs)

        def peer_cv2():
            return [cv2.warpAffine(img, cv2.estimateAffinePartial2D(l, tpl, method=cv2.LMEDS)[0],
                                   (size, size)) for l in lms]

        def peer_sk():
            return [cv2.warpAffine(img, skimage_sim(l, tpl), (size, size)) for l in lms]

        rows.append(("align_faces", f"16 faces -> {size}", ours,
                     "cv2.estimateAffinePartial2D + warpAffine", median_ms(peer_cv2, runs)))
        rows.append(("align_faces", f"16 faces -> {size}", ours,
                     "skimage SimilarityTransform + warpAffine", median_ms(peer_sk, runs)))
        mats = _core.similarity_transforms(lms, tpl)
        ours = median_ms(lambda: _core.warp_affine(img, mats, size, size), runs)
        peer = median_ms(lambda: [cv2.warpAffine(img, m, (size, size)) for m in mats], runs)
        rows.append(("warp_affine", f"16 faces -> {size}", ours, "cv2.warpAffine loop", peer))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--image", default=str(ROOT / "examples" / "astronaut.jpg"))
    ap.add_argument("--only", default="", help="comma list: nms,pyramid,crop,align")
    args = ap.parse_args()
    runs = max(20, args.runs)
    cv2.setNumThreads(1)
    rows = []
    only = set(filter(None, args.only.split(",")))
    if not only or "nms" in only:
        bench_nms(runs, rows)
    if not only or "pyramid" in only:
        bench_pyramid(runs, rows, args.image)
    if not only or "crop" in only:
        bench_crops(runs, rows, args.image)
    if not only or "align" in only:
        bench_align(runs, rows, args.image)
    print(f"median of {runs} runs after warm-up, single thread (cv2.setNumThreads(1))")
    print(f"| {'kernel':<12} | {'input':<24} | {'edgeface ms':>11} | {'peer':<42} | "
          f"{'peer ms':>9} | {'ratio':>6} |")
    print(f"|{'-' * 14}|{'-' * 26}|{'-' * 13}|{'-' * 44}|{'-' * 11}|{'-' * 8}|")
    for kernel, inp, ours, peer_name, peer in rows:
        print(f"| {kernel:<12} | {inp:<24} | {ours:11.3f} | {peer_name:<42} | {peer:9.3f} | "
              f"{peer / ours:5.1f}x |")
    if not only:
        publish("bench_core.json", {"runs": runs, "threads": 1, "rows": [
            {"kernel": k, "input": i, "edgeface_ms": o, "peer": n, "peer_ms": p, "speedup": p / o}
            for k, i, o, n, p in rows]})


if __name__ == "__main__":
    main()
