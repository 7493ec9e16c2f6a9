"""Open-set 1:N identification, and the choice of how several enrollment photos are fused.

1. ../shared/data/identification (face_recognition's examples): enroll knn_examples/train, identify
   every other listed photo; people never enrolled must come out "unknown".
2. LFW (identities.tsv, 5,373 images of 2,086 people): for each person with >= 2 images the first
   ``--enroll`` images are enrolled and the rest are probes; people with one image are strangers.
   Reported per operating point: top-1 rate of known probes (right name and above threshold),
   false-accept rate of strangers; and per fusion ("max", "mean", "quality").
3. The same LFW runs with the compact int8 template store (``Gallery(store="int8")``): the change
   of each figure against float32 templates, in percentage points (target: <= 0.1 pt).

    python bench/accuracy_identify.py [--embedder NAME] [--enroll 1,3] [--stores float32,int8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, centre_faces, log_x_plot, publish, read_tsv, require_data  # noqa: E402

from edgeface.analyzer import FaceAnalyzer  # noqa: E402
from edgeface.gallery import FUSIONS, Gallery  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.matching import threshold_for  # noqa: E402

THRESHOLDS = ("far_1e-2", "far_1e-3", "far_1e-4")


def small_set(analyzer: FaceAnalyzer, tmp: Path) -> dict:
    """The identification folder: counts of right/wrong/unknown at the FAR 1e-3 threshold."""
    root = require_data("identification")
    gallery = analyzer.open_gallery(tmp / "ident.db")
    for person_dir in sorted((root / "knn_examples" / "train").iterdir()):
        vectors = [analyzer.embed_largest(p)[1] for p in sorted(person_dir.iterdir())]
        gallery.enroll(person_dir.name, np.stack([v for v in vectors if v is not None]))
    enrolled = {p.name for p in gallery.people()}
    counts = {"known_correct": 0, "known_wrong": 0, "known_unknown": 0, "stranger_unknown": 0,
              "stranger_accepted": 0, "no_face": 0}
    for row in read_tsv(root / "identities.tsv"):
        if row["path"].startswith("knn_examples/train/"):
            continue
        _, vector = analyzer.embed_largest(root / row["path"])
        if vector is None:
            counts["no_face"] += 1
            continue
        name = gallery.identify(vector, analyzer.threshold)[0].name
        if row["person"] in enrolled:
            key = "known_correct" if name == row["person"] else ("known_unknown" if name is None else "known_wrong")
        else:
            key = "stranger_unknown" if name is None else "stranger_accepted"
        counts[key] += 1
    multi = []
    for row in read_tsv(root / "multi_face.tsv"):
        result = analyzer.analyze(root / row["path"])
        names = sorted(n for n in (gallery.identify(e, analyzer.threshold)[0].name for e in result.embeddings) if n)
        multi.append({"path": row["path"], "expected": sorted(row["persons_present"].split(";")), "named": names,
                      "faces": len(result)})
    gallery.close()
    return {"threshold": analyzer.threshold, "counts": counts, "multi_face": multi}


def lfw_open_set(analyzer: FaceAnalyzer, enroll_n: int, tmp: Path, store: str = "float32") -> dict:
    root = require_data("lfw")
    rows = read_tsv(root / "identities.tsv")
    by_person: dict[str, list[str]] = {}
    for r in rows:
        by_person.setdefault(r["person"], []).append(str(root / r["path"]))
    faces = centre_faces([str(root / r["path"]) for r in rows], analyzer.detector, "mtcnn")
    vectors = {p: analyzer.embedder.embed(read_image(p), f[0][None])[0] for p, f in faces.items() if f is not None}
    spec = analyzer.embedder.spec
    results = {}
    for fusion in FUSIONS:
        gallery = Gallery(tmp / f"lfw-{enroll_n}-{fusion}-{store}.db", spec.embedding_space, analyzer.embedder.dim,
                          fusion=fusion, store=store)
        probes, truth = [], []
        for person, paths in sorted(by_person.items()):
            paths = sorted(paths)
            have = [p for p in paths if p in vectors]
            if len(paths) > enroll_n and len(have) > enroll_n:
                enrolled = have[:enroll_n]
                gallery.enroll(person, np.stack([vectors[p] for p in enrolled]),
                               qualities=[faces[p][1] for p in enrolled])
                probes += have[enroll_n:]
                truth += [person] * (len(have) - enroll_n)
            elif len(paths) == 1 and have:
                probes.append(have[0])
                truth.append(None)
        best = gallery.identify(np.stack([vectors[p] for p in probes]), threshold=-1.0)  # top-1, no threshold
        best_score = np.array([b.score for b in best])
        best_name = np.array([b.name for b in best], dtype=object)
        truth_arr = np.array(truth, dtype=object)
        known = np.array([t is not None for t in truth])
        row = {"people": len(gallery), "known_probes": int(known.sum()), "strangers": int((~known).sum()),
               "rank1_closed_set": float(np.mean(best_name[known] == truth_arr[known]))}
        sweep = np.linspace(0.80, 0.98, 73)
        row["sweep"] = {"threshold": sweep.tolist(),
                        "top1_known": [float(np.mean((best_name[known] == truth_arr[known]) & (best_score[known] >= t)))
                                       for t in sweep],
                        "false_accept_strangers": [float(np.mean(best_score[~known] >= t)) for t in sweep]}
        for op in THRESHOLDS:
            t = threshold_for(spec, op)
            row[op] = {"threshold": t,
                       "top1_known": float(np.mean((best_name[known] == truth_arr[known]) & (best_score[known] >= t))),
                       "false_accept_strangers": float(np.mean(best_score[~known] >= t))}
        results[fusion] = row
        gallery.close()
    return results


def store_change(exact: dict, compact: dict) -> dict:
    """Largest change, in percentage points, of each figure (over fusions and operating points)."""
    keys = [("rank1_closed_set",)] + [(op, m) for op in THRESHOLDS for m in ("top1_known", "false_accept_strangers")]

    def get(r: dict, key: tuple) -> float:
        return r[key[0]] if len(key) == 1 else r[key[0]][key[1]]
    return {"/".join(k): round(max(100 * abs(get(compact[f], k) - get(exact[f], k)) for f in exact), 4) for k in keys}


def plot(lfw: dict, out: Path) -> None:
    """Top-1 rate of known probes against false-accept rate of strangers, sweeping the threshold."""
    curves = [(r["sweep"]["false_accept_strangers"], r["sweep"]["top1_known"], f"enroll {enroll}, fusion {fusion}")
              for enroll, fusions in lfw.items() for fusion, r in fusions.items()]
    points = [(r[op]["false_accept_strangers"], r[op]["top1_known"])
              for fusions in lfw.values() for r in fusions.values() for op in THRESHOLDS]
    log_x_plot(out, curves, "LFW open-set identification",
               "strangers accepted as someone (threshold sweep; dots: far_1e-2/3/4)", "known probes named right", points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--enroll", default="1,3", help="photos enrolled per LFW person, comma-separated")
    parser.add_argument("--stores", default="float32,int8", help="template stores to compare (float32 first)")
    args = parser.parse_args()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp, FaceAnalyzer(backend=args.backend, embedder=args.embedder) as fa:
        out = {"embedder": fa.embedder.spec.name, "identification": small_set(fa, Path(tmp))}
        print("identification set:", out["identification"]["counts"])
        for m in out["identification"]["multi_face"]:
            print("  ", m)
        out["lfw"], out["lfw_int8"], out["int8_change_pt"] = {}, {}, {}
        for n in map(int, args.enroll.split(",")):
            out["lfw"][n] = lfw_open_set(fa, n, Path(tmp))
            if "int8" in args.stores.split(","):
                out["lfw_int8"][n] = lfw_open_set(fa, n, Path(tmp), store="int8")
                out["int8_change_pt"][n] = store_change(out["lfw"][n], out["lfw_int8"][n])
                print(f"LFW enroll {n}: int8 templates change (pt):", out["int8_change_pt"][n], flush=True)
            for fusion, r in out["lfw"][n].items():
                ops = "  ".join(f"{op}: top1 {100 * r[op]['top1_known']:.2f} % FA {100 * r[op]['false_accept_strangers']:.2f} %"
                                for op in THRESHOLDS)
                print(f"LFW enroll {n} fusion {fusion:8s} people {r['people']} probes {r['known_probes']} "
                      f"strangers {r['strangers']} rank1 {100 * r['rank1_closed_set']:.2f} %  {ops}", flush=True)
    plot(out["lfw"], PUBLISHED / "identify_lfw.png")
    publish("accuracy_identify.json", out)


if __name__ == "__main__":
    main()
