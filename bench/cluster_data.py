"""LFW identity embeddings for every committee view, computed once and cached (bench/results/cache).

Shared by bench/accuracy_cluster.py and tools/train_mediator.py. Face: MTCNN, the one nearest the
image centre (``common.centre_faces``); images with no face keep a NaN row and ``found=False``.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, centre_faces, read_tsv, require_data  # noqa: E402

LFW_VIEWS = ("dlib_resnet_v1", "dlib_resnet_v1+flip", "dlib_resnet_v1_int8", "dlib_resnet_v1_int8+flip",
             "mobilefacenet", "mobilefacenet+flip")


def is_tune_person(name: str) -> bool:
    """The person-disjoint split: half of the people (by a hash of the name) tune every method's
    parameters and train the mediator; the other half only ever measure."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 2 == 0


@dataclass
class LabeledViews:
    paths: list[str]
    people: np.ndarray  # person name per image
    found: np.ndarray  # bool: a face was detected
    views: dict[str, np.ndarray]  # view name → N×D float32 (NaN rows where no face)

    def subset(self, mask: np.ndarray) -> "LabeledViews":
        return LabeledViews([p for p, m in zip(self.paths, mask) if m], self.people[mask], self.found[mask],
                            {k: v[mask] for k, v in self.views.items()})

    def split(self) -> tuple["LabeledViews", "LabeledViews"]:
        """(tune people, test people), only images with a face."""
        tune = np.array([is_tune_person(p) for p in self.people])
        return self.subset(tune & self.found), self.subset(~tune & self.found)


def lfw_views(views: Optional[Sequence[str]] = None) -> LabeledViews:
    from edgeface.clustering.views import Committee, available_views
    from edgeface.detection import create_detector
    from edgeface.image_io import read_image
    root = require_data("lfw")
    rows = read_tsv(root / "identities.tsv")
    paths = sorted(str(root / r["path"]) for r in rows)
    person = {str(root / r["path"]): r["person"] for r in rows}
    people = np.array([person[p] for p in paths])
    wanted = available_views(views or LFW_VIEWS)
    with create_detector() as detector:
        faces = centre_faces(paths, detector, "mtcnn")
    found = np.array([faces[p] is not None for p in paths])
    out: dict[str, np.ndarray] = {}
    missing = []
    for name in wanted:
        key = hashlib.sha1(("\n".join(paths) + name).encode()).hexdigest()[:16]
        cache = CACHE / f"views-{name.replace('+', '_')}-{key}.npy"
        if cache.exists():
            out[name] = np.load(cache, allow_pickle=False)
        else:
            missing.append((name, cache))
    if missing:
        with Committee([n for n, _ in missing]) as committee:
            dims = {n: committee.embedders[committee.views[i].model].dim for i, (n, _) in enumerate(missing)}
            computed = {n: np.full((len(paths), dims[n]), np.nan, np.float32) for n, _ in missing}
            for i, path in enumerate(paths):
                if faces[path] is None:
                    continue
                marks = faces[path][0][None]
                for n, vec in committee.embed(read_image(path), marks).items():
                    computed[n][i] = vec[0]
                if i % 500 == 0:
                    print(f"  embedded {i}/{len(paths)}", file=sys.stderr, flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        for n, cache in missing:
            np.save(cache, computed[n])
            out[n] = computed[n]
    return LabeledViews(paths, people, found, {n: out[n] for n in wanted})


if __name__ == "__main__":
    data = lfw_views()
    print(len(data.paths), "images,", int(data.found.sum()), "with a face; views:", list(data.views))
