"""Open-set identification on ../shared/data/identification (face_recognition's examples, MIT).

Enroll every photo under knn_examples/train; every other photo of an enrolled person must be
identified correctly at the FAR 1e-3 threshold, and people never enrolled must come out "unknown".
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import shared_data


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def enrolled(analyzer, tmp_path_factory):
    root = shared_data("identification")
    gallery = analyzer.open_gallery(tmp_path_factory.mktemp("ident") / "g.db")
    for person_dir in sorted((root / "knn_examples" / "train").iterdir()):
        vectors = []
        for photo in sorted(person_dir.iterdir()):
            face, vector = analyzer.embed_largest(photo)
            assert face is not None, f"no face in enrollment photo {photo}"
            vectors.append(vector)
        gallery.enroll(person_dir.name, np.stack(vectors))
    yield root, gallery
    gallery.close()


def test_single_person_probes(analyzer, enrolled):
    root, gallery = enrolled
    enrolled_names = {p.name for p in gallery.people()}
    wrong = []
    for row in rows(root / "identities.tsv"):
        if row["path"].startswith("knn_examples/train/"):
            continue
        face, vector = analyzer.embed_largest(root / row["path"])
        assert face is not None, f"no face found in {row['path']}"
        (identity,) = gallery.identify(vector, analyzer.threshold)
        expected = row["person"] if row["person"] in enrolled_names else None
        if identity.name != expected:
            wrong.append((row["path"], expected, identity.name, round(identity.score, 3)))
    assert not wrong, f"misidentified (path, expected, got, score): {wrong}"


def test_multi_face_photos(analyzer, enrolled):
    root, gallery = enrolled
    for row in rows(root / "multi_face.tsv"):
        result = analyzer.analyze(root / row["path"])
        names = [gallery.identify(e, analyzer.threshold)[0].name for e in result.embeddings]
        present = set(row["persons_present"].split(";"))
        assert present <= set(names), f"{row['path']}: expected {present}, got {names}"
        assert set(n for n in names if n) <= present, f"{row['path']}: someone absent was named: {names}"
