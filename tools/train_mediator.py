"""Train the CDP mediator shipped as python/edgeface/data/cdp_mediator_v1.json (needs scikit-learn).

    python tools/train_mediator.py                 # every view set whose models are installed
    python tools/train_mediator.py --report out.json

Only the "tune" half of the LFW people (bench/cluster_data.py:is_tune_person) is used: the other half
is kept for bench/accuracy_cluster.py. k (neighbours) and the model (logistic regression or a 16-unit
MLP) are chosen on the single-view set; then for each set of committee views the acceptance
threshold and the size limit are chosen by
2-fold cross-validation BY PERSON inside the tune people (fit on one fold's pairs, cluster the
other fold, BCubed F); the shipped model is then refit on all tune people with those choices.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from cluster_data import LabeledViews, lfw_views  # noqa: E402
from cluster_metrics import bcubed_f  # noqa: E402

from edgeface.clustering.graph import candidate_pairs  # noqa: E402
from edgeface.clustering.mediator import (  # noqa: E402
    DEFAULT_PATH, Mediator, build_graphs, pair_features, save_mediators,
)
from edgeface.clustering.propagate import propagate  # noqa: E402
from edgeface.clustering.views import available_views  # noqa: E402

VIEW_SETS = (
    ("dlib_resnet_v1",),
    ("dlib_resnet_v1_int8",),
    ("dlib_resnet_v1", "dlib_resnet_v1+flip"),
    ("dlib_resnet_v1", "dlib_resnet_v1_int8"),
    ("dlib_resnet_v1_int8", "dlib_resnet_v1_int8+flip"),
    ("dlib_resnet_v1", "dlib_resnet_v1+flip", "dlib_resnet_v1_int8", "dlib_resnet_v1_int8+flip"),
    ("dlib_resnet_v1", "mobilefacenet"),
    ("dlib_resnet_v1", "dlib_resnet_v1+flip", "mobilefacenet", "mobilefacenet+flip"),
)
K_GRID = (3, 5, 10, 20)
MODELS = ("logistic", "mlp16")
THRESHOLDS = tuple(np.round(np.arange(0.05, 0.991, 0.0125), 4))
MAX_SIZES = (0, 50, 100, 200)  # 0: no limit
NO_LIMIT = 1_000_000_000


def person_folds(people: np.ndarray) -> np.ndarray:
    """0/1 per image, the same for every image of a person (a second hash, independent of the split)."""
    return np.array([int(hashlib.sha1(f"fold:{p}".encode()).hexdigest()[:8], 16) % 2 for p in people])


def edges(data: LabeledViews, views: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    graphs = build_graphs(data.views, views, k)
    i, j = candidate_pairs([g.indices for g in graphs])
    return i, j, pair_features(graphs, i, j), data.people[i] == data.people[j]


def training_edges(data: LabeledViews, views: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair features and labels from the whole set plus random person subsets of 20, 60 and 200 people.

    Neighbour statistics depend on how many people a collection holds (a folder of 12 photos has no
    close strangers); training on several sizes keeps the mediator from rejecting true pairs in small
    folders. Seeded, so a re-run writes the same file.
    """
    rng = np.random.default_rng(0)
    people = np.array(sorted(set(data.people)))
    _, _, x, y = edges(data, views, k)
    xs, ys = [x], [y]
    for size, repeats in ((20, 20), (60, 8), (200, 3)):
        for _ in range(repeats):
            chosen = rng.choice(people, size=min(size, len(people)), replace=False)
            _, _, x, y = edges(data.subset(np.isin(data.people, chosen)), views, k)
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def fit(kind: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """(mean, scale, weights, biases) of a standardized model trained on pair features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0  # constant features (e.g. a flag that is always set) pass through
    z = (x - mean) / scale
    if kind == "logistic":
        model = LogisticRegression(C=1.0, max_iter=2000).fit(z, y)
        weights, biases = [model.coef_.T], [model.intercept_]
    else:
        model = MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=200, early_stopping=True,
                              random_state=0).fit(z, y)
        weights, biases = list(model.coefs_), list(model.intercepts_)
    return mean, scale, [w.astype(np.float32) for w in weights], [b.astype(np.float32) for b in biases]


def make_mediator(views: Sequence[str], data: LabeledViews, k: int, params: tuple, threshold: float,
                  max_size: int, info: dict[str, Any]) -> Mediator:
    mean, scale, weights, biases = params
    return Mediator(tuple(views), tuple(data.views[v].shape[1] for v in views), k, mean.astype(np.float32),
                    scale.astype(np.float32), tuple(weights), tuple(biases), float(threshold),
                    int(max_size) if max_size else NO_LIMIT, info)


def grid_scores(n: int, i: np.ndarray, j: np.ndarray, prob: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """BCubed F for every (threshold, max size) of the grid."""
    out = np.zeros((len(THRESHOLDS), len(MAX_SIZES)))
    for a, t in enumerate(THRESHOLDS):
        for b, m in enumerate(MAX_SIZES):
            out[a, b] = bcubed_f(propagate(n, i, j, prob, t, m or None), truth)
    return out


def cross_validate(tune: LabeledViews, views: Sequence[str], k: int, kind: str) -> np.ndarray:
    """Mean BCubed F over the two person folds (fit on one, cluster the other) for the whole grid."""
    fold = person_folds(tune.people)
    parts = [tune.subset(fold == f) for f in (0, 1)]
    prepared = [edges(p, views, k) for p in parts]  # clustered as a whole: the collections measured
    total = np.zeros((len(THRESHOLDS), len(MAX_SIZES)))
    for train, test in ((0, 1), (1, 0)):
        x, y = training_edges(parts[train], views, k)
        mean, scale, weights, biases = fit(kind, x, y)
        i, j, xt, _ = prepared[test]
        m = Mediator(tuple(views), (0,) * len(views), k, mean, scale, tuple(weights), tuple(biases), 0.5, 0, {})
        total += grid_scores(len(parts[test].people), i, j, m.predict(xt), parts[test].people)
    return total / 2


def train(views: Sequence[str], tune: LabeledViews, log: list[dict[str, Any]],
          ks: Sequence[int], kinds: Sequence[str]) -> tuple[Mediator, int, str]:
    best: Optional[tuple[float, int, str, float, int]] = None
    for k in ks:
        for kind in kinds:
            grid = cross_validate(tune, views, k, kind)
            a, b = np.unravel_index(int(np.argmax(grid)), grid.shape)
            row = {"views": list(views), "k": k, "model": kind, "cv_bcubed_f": round(float(grid[a, b]), 4),
                   "threshold": float(THRESHOLDS[a]), "max_size": MAX_SIZES[b],
                   "cv_bcubed_f_no_limit": round(float(grid[a, 0]), 4)}
            log.append(row)
            print(json.dumps(row), flush=True)
            if best is None or grid[a, b] > best[0]:
                best = (float(grid[a, b]), k, kind, float(THRESHOLDS[a]), MAX_SIZES[b])
    assert best is not None
    score, k, kind, threshold, max_size = best
    x, y = training_edges(tune, views, k)
    info = {"model": kind, "cv_bcubed_f": round(score, 4), "train_pairs": int(len(y)),
            "train_positive": int(y.sum()), "train_images": len(tune.people),
            "train_people": int(len(set(tune.people)))}
    return make_mediator(views, tune, k, fit(kind, x, y), threshold, max_size, info), k, kind


def preference_order(mediators: list[Mediator]) -> list[Mediator]:
    """The file's order is what ``edgeface cluster`` computes by default (the first whose models are
    installed): repeatedly, the fewest views (network passes per face) within 0.005 BCubed F of the
    best of those left."""
    left, ordered = list(mediators), []
    while left:
        best = max(m.info["cv_bcubed_f"] for m in left)
        good = [m for m in left if m.info["cv_bcubed_f"] >= best - 0.005]
        ordered.append(min(good, key=lambda m: (len(m.views), -m.info["cv_bcubed_f"])))
        left.remove(ordered[-1])
    return ordered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="mediator file to write")
    parser.add_argument("--report", type=Path, help="also write every cross-validation row as JSON")
    args = parser.parse_args()
    data = lfw_views()
    tune, _ = data.split()
    log: list[dict[str, Any]] = []
    usable = [v for v in VIEW_SETS if len(available_views(v)) == len(v) and all(n in tune.views for n in v)]
    # k and the model kind are chosen on the single-view mediator (the full grid costs minutes per view
    # set on two cores), then reused by the committees, whose threshold and size limit are tuned alone.
    first, k, kind = train(usable[0], tune, log, K_GRID, MODELS)
    mediators = [first] + [train(v, tune, log, [k], [kind])[0] for v in usable[1:]]
    save_mediators(args.out, preference_order(mediators), {
        "trained_on": "LFW identities.tsv, tune people only (bench/cluster_data.py:is_tune_person)",
        "selection": "2-fold cross-validation by person inside the tune people, BCubed F",
        "command": "python tools/train_mediator.py"})
    if args.report:
        args.report.write_text(json.dumps(log, indent=1) + "\n")
    print(f"wrote {args.out} ({len(mediators)} mediators)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
