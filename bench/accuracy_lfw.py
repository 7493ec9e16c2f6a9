"""LFW verification accuracy of every shipped embedder (fp32/INT8, each backend) and of the peers.

Protocol (../shared/data/lfw, folds 1-5 of the 6,000-pair list): 5-fold accuracy with the threshold
picked on the other four folds, mean ± std; TAR at FAR 1e-2/1e-3 over the 3,000 pairs. A pair whose
face was not found counts as an error. Thresholds for the manifest are calibrated on many more
impostor pairs: every cross-identity pair among the embedded images (millions), so FAR 1e-4 is resolved.

The peer is face_recognition (dlib HOG detector + its 5-point alignment + dlib ResNet), run by
bench/peers as its README says; its score is minus the euclidean distance, and it is also reported at
its README tolerance 0.6. facenet-pytorch is not an embedder peer here: its InceptionResnetV1 weights
are downloaded at run time from GitHub, which this machine cannot reach.

    python bench/accuracy_lfw.py --backends onnxruntime,openvino   # all embedders, both backends, peers
    python bench/accuracy_lfw.py --embedders dlib_resnet_v1 --flip --no-peers
    python bench/accuracy_lfw.py --write-thresholds   # store calibrated thresholds in models/manifest.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, REPO, centre_faces, log_x_plot, publish, read_tsv, require_data  # noqa: E402
from peer_runs import run_peer  # noqa: E402

from edgeface.detection import DEFAULT_DETECTOR, DETECTORS, create_detector  # noqa: E402
from edgeface.embedding import Embedder  # noqa: E402
from edgeface.evaluation import best_accuracy_threshold, kfold_accuracy, roc_curve, tar_at_far, threshold_at_far  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.models import get_model, list_models  # noqa: E402


def embed_images(embedder: Embedder, faces: dict[str, tuple[np.ndarray, float] | None]) -> dict[str, np.ndarray]:
    """Embedding of each image's centre face (images without a face are left out)."""
    out = {}
    for path, face in faces.items():
        if face is not None:
            out[path] = embedder.embed(read_image(path), face[0][None])[0]
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def minus_euclidean(a: np.ndarray, b: np.ndarray) -> float:
    return -float(np.linalg.norm(a - b))


def pair_scores(pairs: list[dict[str, str]], root: Path, vectors: dict[str, np.ndarray],
                similarity: Callable[[np.ndarray, np.ndarray], float] = cosine) -> np.ndarray:
    """Similarity per pair; a missing face is scored so that the pair is always decided wrongly."""
    scores = np.empty(len(pairs))
    for i, p in enumerate(pairs):
        a, b = vectors.get(str(root / p["path1"])), vectors.get(str(root / p["path2"]))
        if a is None or b is None:
            scores[i] = -np.inf if p["same"] == "1" else np.inf
        else:
            scores[i] = similarity(a, b)
    return scores


def calibration_scores(vectors: dict[str, np.ndarray], person_of: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of every pair among the embedded images (genuine = same person)."""
    paths = sorted(vectors)
    matrix = np.stack([vectors[p] for p in paths])
    people = np.array([person_of[p] for p in paths])
    sims = matrix @ matrix.T
    upper = np.triu_indices(len(paths), k=1)
    return sims[upper], (people[:, None] == people[None, :])[upper]


def tar_if_reachable(scores: np.ndarray, labels: np.ndarray, far: float, forced_accepts: int) -> float | None:
    """TAR at ``far``, or None when the impostor pairs with a missing face (always accepted) already exceed it."""
    if forced_accepts > np.floor(far * np.sum(~labels)):
        return None
    return tar_at_far(scores, labels, far)


def tar_text(tar: float | None) -> str:
    return "unreachable" if tar is None else f"{100 * tar:.2f} %"


def verification_metrics(scores: np.ndarray, pairs: list[dict[str, str]]) -> dict:
    """The LFW protocol figures for one set of pair scores (higher = more alike)."""
    labels = np.array([p["same"] == "1" for p in pairs])
    folds = np.array([int(p["fold"]) for p in pairs])
    kfold = kfold_accuracy(scores, labels, folds)
    far, tar = roc_curve(scores, labels)
    step = max(1, len(far) // 400)
    forced_accepts = int(np.sum(np.isposinf(scores) & ~labels))
    return {
        "accuracy_mean": kfold.mean, "accuracy_std": kfold.std, "fold_accuracies": kfold.fold_accuracies,
        "tar_at_far_1e-2": tar_if_reachable(scores, labels, 1e-2, forced_accepts),
        "tar_at_far_1e-3": tar_if_reachable(scores, labels, 1e-3, forced_accepts),
        "impostor_pairs_missing_a_face": forced_accepts,
        "roc": {"far": far[::step].tolist(), "tar": tar[::step].tolist()},
    }


def evaluate(name: str, backend: str, flip: bool, faces: dict, pairs: list, root: Path,
             person_of: dict[str, str], detector: str) -> dict:
    embedder = Embedder(name, backend=backend, flip=flip)
    started = time.perf_counter()
    vectors = embed_images(embedder, faces)
    elapsed = time.perf_counter() - started
    embedder.close()
    scores = pair_scores(pairs, root, vectors)
    labels = np.array([p["same"] == "1" for p in pairs])
    cal_scores, cal_labels = calibration_scores(vectors, person_of)
    impostors = np.sort(cal_scores[~cal_labels])[::-1]
    return {
        # In memory only (not published): the highest impostor scores, to measure the FAR another
        # detector's thresholds give on this detector's landmarks.
        "_impostors": impostors[:max(1, int(len(impostors) * 0.05))], "_n_impostors": len(impostors),
        "name": f"edgeface {name} ({detector})", "embedder": name, "detector": detector, "backend": backend,
        "flip": flip,
        **verification_metrics(scores, pairs),
        "faces_missing": sum(1 for v in faces.values() if v is None), "images": len(faces),
        "embed_seconds": elapsed,
        "thresholds": {
            "far_1e-2": threshold_at_far(cal_scores, cal_labels, 1e-2),
            "far_1e-3": threshold_at_far(cal_scores, cal_labels, 1e-3),
            "far_1e-4": threshold_at_far(cal_scores, cal_labels, 1e-4),
            "best_accuracy": best_accuracy_threshold(scores, labels),
        },
        "thresholds_calibration": (f"LFW folds 1-5 images ({len(vectors)} embedded); FAR thresholds over "
                            f"{int((~cal_labels).sum())} impostor and {int(cal_labels.sum())} genuine pairs; "
                            f"best_accuracy over the 3,000 protocol pairs; {detector} landmarks"),
    }


def evaluate_peer(paths: list[str], pairs: list, root: Path) -> dict | None:
    """face_recognition on the same images: its own detector, alignment and encoder."""
    run = run_peer("embed", "face_recognition", [Path(p) for p in paths], cache=True)
    if run is None:
        return None
    vectors = {im["path"]: np.array(im["encoding"]) for im in run["images"] if im["encoding"] is not None}
    scores = pair_scores(pairs, root, vectors, minus_euclidean)
    labels = np.array([p["same"] == "1" for p in pairs])
    tolerance = run["tolerance"]
    return {
        "name": "face_recognition (peer)", "embedder": "face_recognition", "backend": "dlib", "flip": False,
        **verification_metrics(scores, pairs),
        "accuracy_at_readme_tolerance": float(np.mean((scores >= -tolerance) == labels)),
        "readme_tolerance": tolerance,
        "faces_missing": len(paths) - len(vectors), "images": len(paths),
        "versions": run["versions"], "settings": run["settings"],
    }


def plot_roc(results: list[dict], out: Path) -> None:
    curves = [(r["roc"]["far"], r["roc"]["tar"],
               f"{r['name']} {r['backend']}{' flip' if r['flip'] else ''} ({100 * r['accuracy_mean']:.2f} %)")
              for r in results]
    log_x_plot(out, curves, "LFW verification, folds 1-5 (3,000 pairs)", "false accept rate", "true accept rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", default=None, help="comma-separated model names (default: all embedders)")
    parser.add_argument("--backends", default="onnxruntime")
    parser.add_argument("--flip", action="store_true", help="also evaluate flip test-time augmentation")
    parser.add_argument("--write-thresholds", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help=f"comma-separated detectors whose landmarks align the faces (default: all; "
                             f"the default detector is {DEFAULT_DETECTOR})")
    args = parser.parse_args()

    root = require_data("lfw")
    pairs = read_tsv(root / "pairs.tsv")
    person_of = {str(root / r["path"]): r["person"] for r in read_tsv(root / "identities.tsv")}
    paths = sorted({str(root / p[k]) for p in pairs for k in ("path1", "path2")})
    faces_by_detector = {}
    for detector_name in args.detectors.split(","):
        with create_detector(detector_name) as detector:
            faces_by_detector[detector_name] = centre_faces(paths, detector, detector_name)

    names = args.embedders.split(",") if args.embedders else [n for n in list_models() if get_model(n).role == "embedder"]
    results = []
    for (detector_name, faces), name in ((f, n) for f in faces_by_detector.items() for n in names):
        for backend in args.backends.split(","):
            for flip in ([False, True] if args.flip else [False]):
                r = evaluate(name, backend, flip, faces, pairs, root, person_of, detector_name)
                results.append(r)
                print(f"{detector_name:6s} {name:24s} {backend:12s} flip={flip!s:5s} acc {100 * r['accuracy_mean']:.2f} ± "
                      f"{100 * r['accuracy_std']:.2f} %  TAR@1e-3 {tar_text(r['tar_at_far_1e-3'])}  "
                      f"TAR@1e-2 {tar_text(r['tar_at_far_1e-2'])}  missing {r['faces_missing']}/{r['images']}  "
                      f"thr@1e-3 {r['thresholds']['far_1e-3']:.4f}", flush=True)
    if not args.no_peers:
        peer = evaluate_peer(paths, pairs, root)
        if peer is not None:
            results.append(peer)
            print(f"{'face_recognition (peer)':37s} acc {100 * peer['accuracy_mean']:.2f} ± {100 * peer['accuracy_std']:.2f} %  "
                  f"TAR@1e-3 {tar_text(peer['tar_at_far_1e-3'])}  TAR@1e-2 {tar_text(peer['tar_at_far_1e-2'])}  "
                  f"missing {peer['faces_missing']}/{peer['images']}  at tolerance 0.6: "
                  f"{100 * peer['accuracy_at_readme_tolerance']:.2f} %", flush=True)
    plot_roc(results, PUBLISHED / "roc_lfw.png")
    publish("accuracy_lfw.json", {"protocol": "LFW folds 1-5 (3,000 pairs), threshold from the other 4 folds; "
                                  "missing faces count as errors",
                                  "results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]})
    if args.write_thresholds:
        write_thresholds([r for r in results if r["backend"] == "onnxruntime" and not r["flip"]
                          and "detector" in r])


# The shipped operating points were calibrated on MTCNN landmarks and are kept (so every published
# figure stays comparable); each other detector is checked against them below.
THRESHOLDS_BASE_DETECTOR = "mtcnn"
# Another detector's landmarks may use the calibrated thresholds when they give at most this multiple
# of each nominal FAR (1e-2, 1e-3, 1e-4) on its own impostor pairs.
MAX_FAR_RATIO = 1.5


def far_of(result: dict, threshold: float) -> float:
    return float(np.sum(result["_impostors"] >= threshold)) / result["_n_impostors"]


def write_thresholds(results: list[dict]) -> None:
    """Per embedder: the thresholds calibrated with THRESHOLDS_BASE_DETECTOR's landmarks (else the first
    measured), each detector's own calibration for the record, and the detectors they are valid for."""
    sys.path.insert(0, str(REPO / "tools"))
    from manifest_tools import load_manifest, write_atomic  # the one manifest writer
    import json
    manifest = load_manifest()
    for embedder in dict.fromkeys(r["embedder"] for r in results):
        mine = {r["detector"]: r for r in results if r["embedder"] == embedder}
        base = mine.get(THRESHOLDS_BASE_DETECTOR, next(iter(mine.values())))
        valid, shifts = [], {}
        for detector, r in mine.items():
            shifts[detector] = {op: far_of(r, base["thresholds"][op]) for op in ("far_1e-2", "far_1e-3", "far_1e-4")}
            if all(far <= MAX_FAR_RATIO * float(op[4:]) for op, far in shifts[detector].items()):
                valid.append(detector)
        spec = get_model(embedder)
        if spec.origin != "bundled":  # an imported model: into the bundled record of its source file
            src = spec.source["sha256"]
            record = manifest["imports"]["mobilefacenet"][src][spec.precision]
            if record.get("sha256") != spec.sha256:
                sys.exit(f"{spec.name} is not the model recorded for {src[:12]}: re-run the record step")
            record["lfw"] = {"accuracy_mean": base["accuracy_mean"], "accuracy_std": base["accuracy_std"],
                             "tar_at_far_1e-3": base["tar_at_far_1e-3"]}
            record["thresholds"] = base["thresholds"]
            record["thresholds_calibration"] = base["thresholds_calibration"]
            record["thresholds_detectors"] = valid
            print(f"{embedder}: thresholds from {base['detector']} landmarks, valid for {', '.join(valid)}; "
                  f"FAR with them: {shifts}")
            continue
        entry = manifest["models"][embedder]
        entry["thresholds"] = base["thresholds"]
        entry["thresholds_calibration"] = base["thresholds_calibration"]
        entry["thresholds_detectors"] = valid
        entry["thresholds_by_detector"] = {
            d: {"thresholds": r["thresholds"], "far_with_the_shipped_thresholds": shifts[d]} for d, r in mine.items()}
        print(f"{embedder}: thresholds from {base['detector']} landmarks, valid for {', '.join(valid)}; "
              f"FAR with them: {shifts}")
    write_atomic(REPO / "models" / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    print("thresholds written to models/manifest.json")


if __name__ == "__main__":
    main()
