"""A real accuracy check on LFW pairs (../shared/data/lfw; skipped where that data is absent).

The full protocol runs in bench/accuracy_lfw.py; here 600 pairs (60 same + 60 different of each fold) keep CI short.
"""
from __future__ import annotations

import csv

import numpy as np

from conftest import shared_data
from edgeface.evaluation import kfold_accuracy


def test_default_embedder_on_lfw_pairs(analyzer):
    root = shared_data("lfw")
    with open(root / "pairs.tsv", newline="") as f:
        pairs = [r for r in csv.DictReader(f, delimiter="\t")]
    # 60 same and 60 different pairs of each fold (the list holds each fold's same pairs first).
    pairs = [p for fold in sorted({p["fold"] for p in pairs}) for same in "10"
             for p in [q for q in pairs if q["fold"] == fold and q["same"] == same][:60]]
    cache: dict[str, np.ndarray | None] = {}

    def vector(rel: str):
        if rel not in cache:
            cache[rel] = analyzer.embed_largest(root / rel)[1]
        return cache[rel]

    scores, labels, folds, missing = [], [], [], 0
    for p in pairs:
        a, b = vector(p["path1"]), vector(p["path2"])
        same = p["same"] == "1"
        if a is None or b is None:
            missing += 1
            score = -np.inf if same else np.inf  # a missed face counts as an error
        else:
            score = float(a @ b)
        scores.append(score)
        labels.append(same)
        folds.append(p["fold"])
    result = kfold_accuracy(np.array(scores), np.array(labels), np.array(folds))
    assert missing <= 3, f"{missing} LFW images without a detected face"
    assert result.mean >= 0.97, f"LFW accuracy {result.mean:.4f} on {len(pairs)} pairs"
    # The calibrated FAR 1e-3 threshold must keep false accepts rare on these pairs too.
    s, y = np.array(scores), np.array(labels)
    assert np.mean(s[~y] >= analyzer.threshold) <= 0.01
