"""Clustering an unlabeled LFW collection by person: edgeface's CDP against Chinese whispers (dlib),
DBSCAN, HDBSCAN and average-linkage agglomerative clustering, all on the same embeddings.

    python bench/accuracy_cluster.py        # needs scikit-learn and dlib (pip install scikit-learn dlib-bin)
    python bench/accuracy_cluster.py --scale 100000   # time and memory of edgeface.cluster on synthetic faces

Person-disjoint: every method's parameters are chosen on the "tune" half of the LFW people
(bench/cluster_data.py:is_tune_person), then measured once on the other half. The CDP mediator
shipped in the package was trained on the tune people only (tools/train_mediator.py). Average
linkage also runs at the embedder's calibrated threshold, and tuned on the test people themselves
(an oracle no user has, shown for scale). Writes docs/benchmarks/accuracy_cluster.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_data import LabeledViews, lfw_views  # noqa: E402
from cluster_metrics import bcubed_f, scores  # noqa: E402
from common import PUBLISHED, machine, write_json_atomic  # noqa: E402

from edgeface.clustering import cluster, default_views, load_mediators  # noqa: E402
from edgeface.matching import threshold_for  # noqa: E402
from edgeface.models import get_model  # noqa: E402

BASE = "dlib_resnet_v1"
Method = Callable[[np.ndarray, Any], np.ndarray]  # (unit vectors, parameter) → labels


def chinese_whispers(x: np.ndarray, threshold: float) -> np.ndarray:
    import dlib
    labels = np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in x], float(threshold)))
    return np.where(np.bincount(labels)[labels] >= 2, labels, -1)


def dbscan(x: np.ndarray, params: tuple[float, int]) -> np.ndarray:
    from sklearn.cluster import DBSCAN
    return DBSCAN(eps=params[0], min_samples=params[1], metric="cosine").fit_predict(x)


def hdbscan(x: np.ndarray, params: tuple[int, int, float]) -> np.ndarray:
    from sklearn.cluster import HDBSCAN
    return HDBSCAN(min_cluster_size=params[0], min_samples=params[1], cluster_selection_epsilon=params[2],
                   metric="euclidean").fit_predict(x)


def average_linkage(x: np.ndarray, cosine_threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=1.0 - cosine_threshold, metric="cosine",
                                     linkage="average").fit_predict(x)
    return np.where(np.bincount(labels)[labels] >= 2, labels, -1)


def tune(method: Method, data: LabeledViews, grid: Iterable[Any]) -> tuple[Any, float]:
    """The grid value with the best BCubed F on ``data`` (the tune people)."""
    x = data.views[BASE]
    results = [(p, bcubed_f(method(x, p), data.people)) for p in grid]
    return max(results, key=lambda r: r[1])


def measure(name: str, labels_of: Callable[[], np.ndarray], truth: np.ndarray, params: Any, note: str) -> dict[str, Any]:
    start = time.perf_counter()
    labels = labels_of()
    seconds = time.perf_counter() - start
    row = {"method": name, "params": params, "note": note, **scores(labels, truth), "seconds": round(seconds, 2)}
    print(f"{name:42s} BCubed F {row['bcubed_f']:.4f}  pairwise F {row['pairwise_f']:.4f}  NMI {row['nmi']:.4f}  "
          f"clusters {row['clusters']}  ({seconds:.1f} s)", flush=True)
    return row


def scale_check(n: int) -> dict[str, Any]:
    """Time and peak memory of edgeface.cluster on n synthetic dlib-like faces (clusters of 2-8)."""
    import resource
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(n), rng.integers(2, 9, n))[:n]
    common = rng.normal(size=128)
    common *= 2.0 / np.linalg.norm(common)
    centres = rng.normal(size=(truth[-1] + 1, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = (common + centres[truth] + 0.23 * rng.normal(size=(n, 128)) / np.sqrt(128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    labels = cluster(x)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = {"faces": n, "seconds": round(seconds, 1), "peak_rss_mb": round(peak / 1024, 1),
           "rss_growth_mb": round((peak - before) / 1024, 1), "bcubed_f": scores(labels, truth, nmi=False)["bcubed_f"]}
    print(f"scale: {row}", flush=True)
    return row


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--scale":
        row = scale_check(int(sys.argv[2]))
        write_json_atomic(PUBLISHED / f"cluster_scale_{row['faces']}.json",
                          {"command": f"python bench/accuracy_cluster.py --scale {row['faces']}",
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), **row})
        return 0
    data = lfw_views()
    tune_set, test = data.split()
    print(f"{len(data.paths)} images ({int((~data.found).sum())} without a face, left out); tune: "
          f"{len(tune_set.paths)} images of {len(set(tune_set.people))} people; test: {len(test.paths)} images "
          f"of {len(set(test.people))} people", flush=True)
    x = test.views[BASE]
    rows = []
    views_default = default_views()
    for m in load_mediators():
        if all(v in test.views for v in m.views):
            note = "default views" if m.views == views_default else "view ablation"
            rows.append(measure("CDP " + " + ".join(m.views), lambda m=m: cluster({v: test.views[v] for v in m.views}),
                                test.people, {"k": m.k, "threshold": m.threshold, "max_size": m.max_size,
                                              "model": m.info.get("model")}, note))
    cw_t, _ = tune(chinese_whispers, tune_set, np.round(np.arange(0.30, 0.71, 0.02), 3))
    rows.append(measure("Chinese whispers (dlib), tuned", lambda: chinese_whispers(x, cw_t), test.people,
                        {"euclidean_threshold": cw_t}, "tuned on tune people"))
    rows.append(measure("Chinese whispers (dlib), 0.5", lambda: chinese_whispers(x, 0.5), test.people,
                        {"euclidean_threshold": 0.5}, "face_recognition/dlib examples' default"))
    db_p, _ = tune(dbscan, tune_set, [(round(e, 3), s) for e in np.arange(0.04, 0.16, 0.005) for s in (1, 2, 3)])
    rows.append(measure("DBSCAN (scikit-learn), tuned", lambda: dbscan(x, db_p), test.people,
                        {"eps_cosine": db_p[0], "min_samples": db_p[1]}, "tuned on tune people"))
    hd_p, _ = tune(hdbscan, tune_set, [(c, s, e) for c in (2, 3, 4) for s in (1, 2, 3) for e in (0.0, 0.3, 0.4, 0.5)])
    rows.append(measure("HDBSCAN (scikit-learn), tuned", lambda: hdbscan(x, hd_p), test.people,
                        {"min_cluster_size": hd_p[0], "min_samples": hd_p[1], "cluster_selection_epsilon": hd_p[2]},
                        "tuned on tune people"))
    calibrated = threshold_for(get_model(BASE), "far_1e-3")
    rows.append(measure("Average linkage, calibrated (FAR 1e-3)", lambda: average_linkage(x, calibrated), test.people,
                        {"cosine_threshold": round(calibrated, 4)}, "the embedder's calibrated threshold"))
    grid = np.round(np.arange(0.86, 0.95, 0.0025), 4)
    al_t, _ = tune(average_linkage, tune_set, grid)
    rows.append(measure("Average linkage, tuned", lambda: average_linkage(x, al_t), test.people,
                        {"cosine_threshold": float(al_t)}, "tuned on tune people"))
    oracle_t, _ = tune(average_linkage, test, grid)
    rows.append(measure("Average linkage, oracle", lambda: average_linkage(x, oracle_t), test.people,
                        {"cosine_threshold": float(oracle_t)}, "tuned on the TEST people (not a fair method)"))
    out = write_json_atomic(PUBLISHED / "accuracy_cluster.json", {
        "command": "python bench/accuracy_cluster.py",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
        "data": {"images": len(data.paths), "without_face": int((~data.found).sum()),
                 "tune_images": len(tune_set.paths), "tune_people": len(set(tune_set.people)),
                 "test_images": len(test.paths), "test_people": len(set(test.people))},
        "embedding": BASE, "default_views": list(views_default), "rows": rows})
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
