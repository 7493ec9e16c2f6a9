"""Speed and memory of edgeface against the peers, on ../shared/data/speed (27 multi-face photos).

Frames are the photos resized (cv2.INTER_AREA, BGR as a camera delivers them) to 640x480 and
1280x720. Figures, each for threads 1 and 2 and for ONNX Runtime and OpenVINO:
- detection ms/frame per detector (every frame, median over 2 passes after a warm-up pass: 54 timed frames);
- alignment ms/face (the C++ warp of every face found at 640x480);
- embedding ms/face at batch 1 and 8 (median of 40 / 20 calls after warm-up), fp32 and INT8;
- end-to-end (detect + align + embed every face) per detector on the frames where MTCNN finds 1-5 faces
  (the same 9 frames as before YuNet became the default), as FPS;
- cold start (fresh process: interpreter, imports, model load, first frame; and in-process: import,
  load, first frame) and peak RSS (VmHWM) of a fresh process that reads and analyses every frame of
  the size one at a time, as a camera loop does (median of 3 processes).
Then the peers (bench/peers/setup.sh) on the same frames: facenet-pytorch MTCNN, face_recognition
(HOG + dlib ResNet), OpenCV Haar; and the ratios edgeface / peer. Peers time every frame once
after 3 warm-up calls (27 timed frames; >= 20 for the 1-5 face set by repeating it).

    python bench/speed.py              # ~15 min on 2 cores; run on a quiet machine
    python bench/speed.py --no-peers
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms, publish, require_data  # noqa: E402
from peer_runs import peers_available, run_peer  # noqa: E402

from edgeface import _core  # noqa: E402
from edgeface.analyzer import FaceAnalyzer  # noqa: E402
from edgeface.detection import DEFAULT_DETECTOR, DETECTORS, create_detector  # noqa: E402
from edgeface.embedding import Embedder  # noqa: E402
from edgeface.models import default_model, get_model, list_models  # noqa: E402
from edgeface.runtime import resolve_backend  # noqa: E402

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
# OpenVINO is an optional extra: measured when installed.
BACKENDS = tuple(b for b in ("onnxruntime", "openvino") if importlib.util.find_spec(b) is not None)
THREADS = (1, 2)
PASSES = 2
COLD_RUNS = 3
MIN_TIMED = 20
FEW_FACES = (1, 5)


def load_frames(paths: list[Path], size: tuple[int, int]) -> list[np.ndarray]:
    return [cv2.resize(cv2.imread(str(p)), size, interpolation=cv2.INTER_AREA) for p in paths]


def per_frame_ms(fn, images: list, passes: int = PASSES) -> float:
    """Median wall time per call over ``passes`` passes of ``images``, after one warm-up pass."""
    for im in images:
        fn(im)
    times = []
    for _ in range(passes):
        for im in images:
            start = time.perf_counter()
            fn(im)
            times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


# The default detector first: the ratios to the peers use it.
DETECTOR_ORDER = (DEFAULT_DETECTOR, *sorted(set(DETECTORS) - {DEFAULT_DETECTOR}))


def detection_speed(by_size: dict[str, list[np.ndarray]]) -> list[dict]:
    rows = []
    for size_name, images in by_size.items():
        for detector in DETECTOR_ORDER:
            for backend in BACKENDS:
                for threads in THREADS:
                    with create_detector(detector, backend=backend, threads=threads) as det:
                        faces = [len(det.detect(im)) for im in images]
                        ms = per_frame_ms(det.detect, images)
                    rows.append({"size": size_name, "detector": detector, "backend": backend, "threads": threads,
                                 "ms": ms, "faces_per_frame": float(np.mean(faces)), "frames_timed": PASSES * len(images)})
                    print(f"detect {size_name:8s} {detector:6s} {backend:11s} t{threads}: {ms:7.1f} ms/frame "
                          f"({np.mean(faces):.1f} faces/frame)", flush=True)
    return rows


def aligned_crops(images: list[np.ndarray]) -> tuple[dict, list[tuple[np.ndarray, np.ndarray]]]:
    """Alignment ms/face over every face found (default embedder's template), and (frame, landmarks)
    pairs from which each embedder's crops are made."""
    spec = default_model("embedder")
    template = np.ascontiguousarray(spec.alignment, np.float32)
    with create_detector(threads=2) as det:
        marks = [(im, np.ascontiguousarray(d.landmarks)) for im in images if len(d := det.detect(im))]
    n_faces = sum(len(m) for _, m in marks)
    ms_per_frame = per_frame_ms(lambda pair: _core.align_faces(pair[0], pair[1], template, *spec.input.size), marks)
    row = {"ms_per_face": ms_per_frame * len(marks) / n_faces, "faces": n_faces, "frames": len(marks),
           "definition": "median ms per frame of align_faces over all its faces, / mean faces per frame"}
    print(f"align: {row['ms_per_face']:.3f} ms/face ({n_faces} faces)", flush=True)
    return row, marks


def embedding_speed(marks: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Every embedder installed (bundled, and imported ones such as MobileFaceNet), on its own crops."""
    rows = []
    for name in (n for n in list_models() if get_model(n).role == "embedder"):
        spec = get_model(name)
        template = np.ascontiguousarray(spec.alignment, np.float32)
        crops = np.concatenate([_core.align_faces(im, m, template, *spec.input.size)[0] for im, m in marks])
        for backend in BACKENDS:
            for threads in THREADS:
                with Embedder(name, backend=backend, threads=threads) as emb:
                    for batch in (1, 8):
                        ms = median_ms(lambda: emb.embed_aligned(crops[:batch]), runs=40 if batch == 1 else 20) / batch
                        rows.append({"embedder": name, "precision": get_model(name).precision, "backend": backend,
                                     "threads": threads, "batch": batch, "ms_per_face": ms})
                        print(f"embed {name:22s} {backend:11s} t{threads} batch {batch}: {ms:6.2f} ms/face", flush=True)
    return rows


def end_to_end(few: dict[str, list[np.ndarray]]) -> list[dict]:
    rows = []
    for size_name, images in few.items():
        for detector in DETECTOR_ORDER:
            for backend in BACKENDS:
                for threads in THREADS:
                    with FaceAnalyzer(backend=backend, threads=threads, detector=detector) as fa:
                        faces = float(np.mean([len(fa.analyze(im)) for im in images]))
                        ms = per_frame_ms(fa.analyze, images, passes=max(PASSES, math.ceil(MIN_TIMED / len(images))))
                        embedder = fa.embedder.spec.name
                    rows.append({"size": size_name, "detector": detector, "backend": backend, "threads": threads,
                                 "ms": ms, "fps": 1000.0 / ms, "frames": len(images), "faces_per_frame": faces,
                                 "embedder": embedder})
                    print(f"end-to-end {size_name:8s} ({len(images)} frames, {faces:.1f} faces) {detector:6s} "
                          f"{backend:11s} t{threads}: {ms:6.1f} ms = {1000 / ms:5.1f} FPS", flush=True)
    return rows


COLD_CHILD = """
import json, sys, time
started = time.perf_counter()
import cv2
import edgeface
backend, threads, w, h, paths = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6:]
read = lambda p: cv2.resize(cv2.imread(p), (w, h), interpolation=cv2.INTER_AREA)
fa = edgeface.FaceAnalyzer(backend=backend, threads=threads)
fa.analyze(read(paths[0]))
first = time.time()
in_process = time.perf_counter() - started
for path in paths:  # one frame at a time, as a camera delivers them
    fa.analyze(read(path))
print(json.dumps({"cold_start_seconds": first - float(sys.argv[1]), "in_process_cold_start_seconds": in_process,
                  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec.
                  "peak_rss_mb": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024}))
"""


def cold_start(paths: list[Path]) -> list[dict]:
    """Fresh processes: time from spawn to the first analysed frame; peak RSS after all frames."""
    rows = []
    for size_name, (w, h) in SIZES.items():
        for backend in BACKENDS:
            runs = []
            for _ in range(COLD_RUNS):
                args = [sys.executable, "-c", COLD_CHILD, repr(time.time()), backend, "2", str(w), str(h), *map(str, paths)]
                runs.append(json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout))
            row = {"size": size_name, "backend": backend, "threads": 2,
                   "cold_start_seconds": float(np.median([r["cold_start_seconds"] for r in runs])),
                   "in_process_cold_start_seconds": float(np.median([r["in_process_cold_start_seconds"] for r in runs])),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": runs}
            rows.append(row)
            print(f"cold start {size_name:8s} {backend:11s}: {row['cold_start_seconds']:.2f} s "
                  f"({row['in_process_cold_start_seconds']:.2f} s in-process: import, load, first frame), "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    return rows


def peer_speed(paths: list[Path], few_paths: list[Path]) -> list[dict]:
    if not peers_available():
        print("peers not installed: run bash bench/peers/setup.sh (peer figures skipped)")
        return []
    rows = []
    for peer in ("facenet_mtcnn", "face_recognition", "opencv_haar"):
        for size_name in SIZES:
            for threads in THREADS:
                extra = ["--size", size_name, "--repeats", "1", "--cold-runs", str(COLD_RUNS)]
                run = run_peer("speed", peer, paths, threads, extra)
                rows.append({**run, "peer": peer, "size_name": size_name, "set": "all"})
                print(f"peer {peer:16s} {size_name:8s} t{threads}: detect {run['detect_ms']['median']:7.1f} ms/frame",
                      flush=True)
    # face_recognition end to end on the same 1-5 face frames as edgeface's end-to-end figure.
    for size_name in SIZES:
        for threads in THREADS:
            repeats = math.ceil(MIN_TIMED / len(few_paths))
            run = run_peer("speed", "face_recognition", few_paths, threads,
                           ["--size", size_name, "--repeats", str(repeats), "--cold-runs", "0"])
            rows.append({**run, "peer": "face_recognition", "size_name": size_name, "set": "1-5 faces"})
            e2e = run["end_to_end_ms"]["median"] if run["end_to_end_ms"] else float("nan")
            print(f"peer face_recognition end-to-end {size_name:8s} t{threads}: {e2e:.1f} ms = {1000 / e2e:.1f} FPS",
                  flush=True)
    return rows


def ratios(out: dict) -> list[dict]:
    """edgeface (default backend, and the faster backend) against each peer, same size and threads."""
    default = resolve_backend(None)
    rows = []
    for p in (p for p in out["peers"] if p["set"] == "all"):
        ours = [d for d in out["detection"] if d["size"] == p["size_name"] and d["threads"] == p["threads"]
                and d["detector"] == DEFAULT_DETECTOR]
        mine = next(d for d in ours if d["backend"] == default)
        best = min(ours, key=lambda d: d["ms"])
        rows.append({"figure": "detection ms/frame", "peer": p["peer"], "size": p["size_name"], "threads": p["threads"],
                     "peer_value": p["detect_ms"]["median"], "edgeface_default": mine["ms"],
                     "edgeface_best": best["ms"], "best_backend": best["backend"],
                     "speedup_default": p["detect_ms"]["median"] / mine["ms"],
                     "speedup_best": p["detect_ms"]["median"] / best["ms"]})
        if p["peer"] == "face_recognition" and p["encode_ms_per_face"] and p["size_name"] == "640x480":
            embed = [e for e in out["embedding"] if e["threads"] == p["threads"] and e["batch"] == 1
                     and e["embedder"] == out["default_embedder"]]
            mine = next(e for e in embed if e["backend"] == default)
            best = min(embed, key=lambda e: e["ms_per_face"])
            peer_ms = p["encode_ms_per_face"]["median"]
            rows.append({"figure": "embedding ms/face", "peer": p["peer"], "size": "", "threads": p["threads"],
                         "peer_value": peer_ms, "edgeface_default": mine["ms_per_face"],
                         "edgeface_best": best["ms_per_face"], "best_backend": best["backend"],
                         "speedup_default": peer_ms / mine["ms_per_face"], "speedup_best": peer_ms / best["ms_per_face"]})
    for p in (p for p in out["peers"] if p["set"] == "1-5 faces" and p["end_to_end_ms"]):
        ours = [e for e in out["end_to_end"] if e["size"] == p["size_name"] and e["threads"] == p["threads"]
                and e["detector"] == DEFAULT_DETECTOR]
        mine = next(e for e in ours if e["backend"] == default)
        best = min(ours, key=lambda e: e["ms"])
        peer_ms = p["end_to_end_ms"]["median"]
        rows.append({"figure": "end-to-end ms/frame (1-5 faces)", "peer": p["peer"], "size": p["size_name"],
                     "threads": p["threads"], "peer_value": peer_ms, "edgeface_default": mine["ms"],
                     "edgeface_best": best["ms"], "best_backend": best["backend"],
                     "speedup_default": peer_ms / mine["ms"], "speedup_best": peer_ms / best["ms"]})
    for r in rows:
        print(f"ratio {r['figure']:32s} vs {r['peer']:16s} {r['size']:8s} t{r['threads']}: "
              f"{r['speedup_default']:5.1f}x ({default}), {r['speedup_best']:5.1f}x ({r['best_backend']})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    paths = sorted(require_data("speed").rglob("*.jpg"))
    by_size = {name: load_frames(paths, size) for name, size in SIZES.items()}
    out: dict = {"images": len(paths), "default_backend": resolve_backend(None), "default_detector": DEFAULT_DETECTOR,
                 "default_embedder": default_model("embedder").name}
    out["detection"] = detection_speed(by_size)
    out["alignment"], marks = aligned_crops(by_size["640x480"])
    out["embedding"] = embedding_speed(marks)
    with create_detector("mtcnn", threads=2) as det:  # the frame set of every earlier run
        few_idx = [i for i, im in enumerate(by_size["640x480"]) if FEW_FACES[0] <= len(det.detect(im)) <= FEW_FACES[1]]
    out["few_faces_frames"] = [paths[i].name for i in few_idx]
    out["end_to_end"] = end_to_end({name: [ims[i] for i in few_idx] for name, ims in by_size.items()})
    out["cold_start"] = cold_start(paths)
    out["peers"] = [] if args.no_peers else peer_speed(paths, [paths[i] for i in few_idx])
    out["ratios"] = ratios(out)
    publish("speed.json", out)


if __name__ == "__main__":
    main()
