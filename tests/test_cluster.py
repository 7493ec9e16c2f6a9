"""edgeface.cluster (consensus-driven propagation) and `edgeface cluster`: known answers on a seeded
synthetic committee, the shipped mediator file, component splitting, the CLI on real photos, and an
LFW subset when the data is present."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeface
from edgeface.clustering import components, knn, load_mediators, propagate
from edgeface.clustering.graph import candidate_pairs
from edgeface.clustering.mediator import (DEFAULT_PATH, FORMAT, FORMAT_VERSION, PER_VIEW_FEATURES, Mediator,
                                          build_graphs, pair_features)
from edgeface.errors import InvalidArgumentError, InvalidDTypeError, ModelError
from conftest import EXAMPLE, REPO, shared_data

sys.path.insert(0, str(REPO / "bench"))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def committee(seed: int, people: int = 40, dim: int = 128, views: tuple[str, ...] = ("dlib_resnet_v1",
              "dlib_resnet_v1+flip")) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """dlib-like views: a shared offset (so strangers sit near cosine 0.8, as dlib's do), one centre per
    person (its faces near cosine 0.95), per-face noise shared by the views plus a little per view."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, people)
    truth = np.repeat(np.arange(people), sizes)
    common = rng.normal(size=dim)
    common *= 2.0 / np.linalg.norm(common)
    centres = unit(rng.normal(size=(people, dim)))[truth]
    face = 0.23 * unit(rng.normal(size=(len(truth), dim)))
    out = {v: unit(common + centres + face + 0.08 * unit(rng.normal(size=(len(truth), dim)))) for v in views}
    return out, truth


def same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    """Every person is one group and no group mixes people (labels up to renaming)."""
    pairs = set(zip(labels.tolist(), truth.tolist()))
    return len(pairs) == len(set(labels.tolist())) == len(set(truth.tolist())) and -1 not in labels


def test_knn_is_exact_and_blocked():
    x = unit(np.random.default_rng(0).normal(size=(300, 16)))
    idx, sims = knn(x, 7, block_values=1000)  # 3 rows per block
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    ref = np.argsort(-full, axis=1, kind="stable")[:, :7]
    assert np.array_equal(idx, ref)
    assert np.allclose(sims, np.take_along_axis(full, ref, axis=1))
    assert knn(x[:1], 5)[0].shape == (1, 0)  # one face has no neighbours
    other = knn(unit(np.random.default_rng(1).normal(size=(300, 16))), 7)[0]
    i, j = candidate_pairs([idx, other])
    assert (i < j).all() and len(set(zip(i.tolist(), j.tolist()))) == len(i)


def test_synthetic_committee_is_recovered_exactly():
    views, truth = committee(seed=1)
    labels = edgeface.cluster(views)
    assert same_partition(labels, truth)
    # A plain array is one view of the default embedder, and works as well here.
    assert same_partition(edgeface.cluster(views["dlib_resnet_v1"]), truth)


def test_strangers_stay_apart():
    views, truth = committee(seed=2)
    alone = np.flatnonzero(np.bincount(truth) >= 2)[:5]
    keep = np.isin(truth, alone) & (np.arange(len(truth)) == np.searchsorted(truth, truth))  # one face each
    labels = edgeface.cluster({k: v[keep] for k, v in views.items()})
    assert (labels == -1).all()


def test_labels_are_ordered_largest_first():
    views, truth = committee(seed=3)
    labels = edgeface.cluster(views)
    sizes = np.bincount(labels[labels >= 0])
    assert (np.diff(sizes) <= 0).all()


def test_mediator_file_loads_without_pickle():
    raw = json.loads(DEFAULT_PATH.read_text())
    assert raw["format"] == FORMAT and raw["version"] == FORMAT_VERSION == 1
    mediators = load_mediators()
    assert mediators and all(isinstance(m, Mediator) for m in mediators)
    for m in mediators:
        n_features = len(m.views) * len(PER_VIEW_FEATURES)
        assert m.weights[0].shape[0] == n_features and m.weights[-1].shape[1] == 1
        assert m.mean.shape == m.scale.shape == (n_features,)
        assert 0 < m.threshold < 1 and m.k >= 1 and all(d == 128 for d in m.dims if "mobilefacenet" not in m.views)
    assert ("dlib_resnet_v1",) in [m.views for m in mediators]


def test_damaged_mediator_is_a_model_error(tmp_path):
    bad = tmp_path / "m.json"
    raw = json.loads(DEFAULT_PATH.read_text())
    raw["models"][0]["mean"] = raw["models"][0]["mean"][:-1]
    bad.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="damaged"):
        load_mediators(bad)
    bad.write_bytes(b"\x80\x04\x95")  # a pickle header is just unreadable JSON here
    with pytest.raises(ModelError):
        load_mediators(bad)


def test_mediator_probabilities_follow_agreement():
    views, truth = committee(seed=4)
    m = next(m for m in load_mediators() if m.views == ("dlib_resnet_v1",))
    graphs = build_graphs(views, m.views, m.k)
    i, j = candidate_pairs([g.indices for g in graphs])
    prob = m.predict(pair_features(graphs, i, j))
    same = truth[i] == truth[j]
    assert prob[same].mean() > 0.9 > 0.1 > prob[~same].mean()


def test_components_and_splitting_bound_sizes():
    rng = np.random.default_rng(5)
    n = 500
    i, j = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
    score = rng.random(3000).astype(np.float32)
    roots = components(n, i, j)
    assert (roots[i] == roots[j]).all() and (roots[roots] == roots).all()
    unlimited = propagate(n, i, j, score, 0.0)
    assert np.bincount(unlimited[unlimited >= 0]).max() > 100  # one giant component
    for limit in (2, 10, 60):
        labels = propagate(n, i, j, score, 0.0, max_size=limit)
        sizes = np.bincount(labels[labels >= 0])
        assert sizes.max() <= limit and (sizes >= 2).all()
        # splitting only cuts: faces grouped together were already together without the limit
        assert all(len(set(unlimited[labels == c])) == 1 for c in range(len(sizes)))


def test_splitting_drops_the_weakest_link_first():
    # two tight triangles joined by one weak edge: a size limit of 3 cuts exactly that edge
    i = np.array([0, 1, 0, 3, 4, 3, 2])
    j = np.array([1, 2, 2, 4, 5, 5, 3])
    score = np.array([.9, .9, .9, .9, .9, .9, .6], np.float32)
    labels = propagate(6, i, j, score, 0.5, max_size=3)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_bad_input_is_a_typed_error():
    views, _ = committee(seed=6)
    x = views["dlib_resnet_v1"]
    with pytest.raises(InvalidDTypeError):
        edgeface.cluster(x.astype(np.int32))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        edgeface.cluster(np.where(np.arange(len(x))[:, None] == 3, np.nan, x))
    with pytest.raises(InvalidArgumentError, match="one row per face"):
        edgeface.cluster({"dlib_resnet_v1": x, "dlib_resnet_v1+flip": x[:-1]})
    with pytest.raises(InvalidArgumentError, match="dimensions"):
        edgeface.cluster(x[:, :64])
    with pytest.raises(InvalidArgumentError, match="no mediator"):
        edgeface.cluster({"some_other_model": x})
    assert edgeface.cluster(x[:1]).tolist() == [-1]
    assert edgeface.cluster(x[:0]).shape == (0,)


# --- the command line ------------------------------------------------------------------------------

def photo_folder(tmp_path: Path) -> Path:
    """examples/ plus the face_recognition enrollment photos (two each of four people)."""
    train = shared_data("identification") / "knn_examples" / "train"
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    for person in sorted(train.iterdir()):
        for photo in sorted(person.iterdir()):
            shutil.copy(photo, folder / f"{person.name}__{photo.name}")
    return folder


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    from edgeface.cli import main
    tmp = tmp_path_factory.mktemp("cluster")
    folder = photo_folder(tmp)
    out, links = tmp / "clusters.json", tmp / "people"
    code = main(["cluster", str(folder), "--out", str(out), "--link", str(links), "--threads", "2"])
    return folder, out, links, code


def test_cli_groups_the_photos(clustered):
    folder, out, links, code = clustered
    assert code == 0
    result = json.loads(out.read_text())
    assert result["version"] == 1 and result["command"] == "cluster" and not result["failed"]
    assert result["images"] == len(list(folder.iterdir()))
    listed = [f for c in result["clusters"] for f in c["faces"]] + result["unclustered"]
    assert len(listed) == result["faces"] >= result["images"]
    # people with two photos: each pair ends up in one group of its own
    person = {Path(f["path"]).name.split("__")[0]: c["label"] for c in result["clusters"] for f in c["faces"]}
    for c in result["clusters"]:
        names = {Path(f["path"]).name.split("__")[0] for f in c["faces"]}
        assert len(names) == 1, f"group {c['label']} mixes {names}"
    assert {"obama", "biden"} <= set(person)


def test_cli_links_point_at_the_photos(clustered):
    folder, out, links, _ = clustered
    result = json.loads(out.read_text())
    for c in result["clusters"]:
        sub = links / c["folder"]
        assert sub.is_dir() and not sub.is_symlink()
        targets = {os.readlink(p) for p in sub.iterdir()}
        assert targets == {os.path.abspath(f["path"]) for f in c["faces"]}


def test_cli_never_overwrites_or_follows_planted_links(clustered, tmp_path, capsys):
    from edgeface.cli import EXIT_USAGE, main
    folder, out, links, _ = clustered
    assert main(["cluster", str(folder), "--out", str(out)]) == EXIT_USAGE  # --out exists
    assert main(["cluster", str(folder), "--out", str(tmp_path / "a.json"), "--link", str(links)]) == EXIT_USAGE
    victim = tmp_path / "victim"
    victim.mkdir()
    planted = tmp_path / "planted"
    planted.symlink_to(victim)
    assert main(["cluster", str(folder), "--out", str(tmp_path / "b.json"), "--link", str(planted)]) == EXIT_USAGE
    assert list(victim.iterdir()) == []
    capsys.readouterr()


def test_cli_copies_are_written_exclusively(tmp_path):
    from edgeface.cli.cluster import link_clusters
    source = tmp_path / "a.jpg"
    source.write_bytes(b"jpeg")
    out = tmp_path / "out"
    assert link_clusters(out, {"person_0001": [str(source), str(source)]}, copy=True) == 2
    assert sorted(p.name for p in (out / "person_0001").iterdir()) == ["a.jpg", "a_2.jpg"]
    assert (out / "person_0001" / "a.jpg").read_bytes() == b"jpeg"
    with pytest.raises(InvalidArgumentError, match="already exists"):
        link_clusters(out, {"person_0001": [str(source)]}, copy=True)


# --- LFW -----------------------------------------------------------------------------------------

def test_lfw_subset_is_clustered_well():
    """A fixed small subset (the first 40 test-half people with 3+ photos, 4 photos each at most, ~150
    faces: seconds to embed) clustered with the shipped single-view mediator."""
    root = shared_data("lfw")
    from cluster_data import is_tune_person
    from cluster_metrics import scores
    from common import read_tsv
    rows = read_tsv(root / "identities.tsv")
    by_person: dict[str, list[str]] = {}
    for r in rows:
        by_person.setdefault(r["person"], []).append(r["path"])
    people = sorted(p for p, paths in by_person.items() if len(paths) >= 3 and not is_tune_person(p))[:40]
    paths = [(p, path) for p in people for path in sorted(by_person[p])[:4]]
    from edgeface.clustering import Committee
    from edgeface.detection import create_detector
    from edgeface.image_io import read_image
    vectors, truth = [], []
    # the INT8 model: the one the wheel ships (its vectors share the fp32 model's embedding space)
    with create_detector(threads=2) as det, Committee(["dlib_resnet_v1_int8"], threads=2) as com:
        for person, path in paths:
            image = read_image(root / path)
            faces = det.detect(image)
            if len(faces):
                centre = np.argmin(np.abs(faces.boxes[:, [0, 2]].mean(1) - image.shape[1] / 2))
                vectors.append(com.embed(image, faces[[int(centre)]])["dlib_resnet_v1_int8"][0])
                truth.append(person)
    labels = edgeface.cluster(np.stack(vectors))
    result = scores(labels, np.array(truth), nmi=False)
    assert result["bcubed_f"] > 0.93, result  # 0.981 when written (precision 1.0)


def test_cli_reads_a_parquet_index(tmp_path, capsys):
    """An index file with an 'embedding' column (the format `edgeface index` is to write) is clustered
    without embedding anything."""
    pa = pytest.importorskip("pyarrow", reason="reading a Parquet index needs pyarrow")
    import pyarrow.parquet as pq
    from edgeface.cli import main
    views, truth = committee(seed=7)
    x = views["dlib_resnet_v1"]
    paths = [f"photo_{n:03d}.jpg" for n in range(len(x))]
    pq.write_table(pa.table({"path": paths, "face": [0] * len(x), "embedding": [list(map(float, v)) for v in x]}),
                   tmp_path / "faces.parquet")
    out = tmp_path / "clusters.json"
    assert main(["cluster", str(tmp_path / "faces.parquet"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    label_of = {f["path"]: c["label"] for c in result["clusters"] for f in c["faces"]}
    labels = np.array([label_of.get(p, -1) for p in paths])
    assert same_partition(labels, truth)
    capsys.readouterr()
