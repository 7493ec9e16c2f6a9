"""Speed and memory of edgeface against the peers, on ../shared/data/speed (27 multi-face photos).

Frames are the photos resized (INTER_AREA) to 640x480 and 1280x720. Medians over every frame,
two passes after a warm-up pass (>= 54 runs per figure). Figures: detection ms/frame, alignment
ms/face, embedding ms/face (batch 1 and 8), end-to-end FPS on frames with 1-5 faces, cold start
(process start → first frame analysed) and peak RSS; threads 1 and 2; ONNX Runtime vs OpenVINO;
fp32 vs INT8; then the same for the peers (bench/peers/setup.sh) and the ratios.

    python bench/speed.py [--quick] [--no-peers]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms, require_data, write_json  # noqa: E402
from peer_runs import run_peer  # noqa: E402

from edgeface import _core  # noqa: E402
from edgeface.analyzer import FaceAnalyzer  # noqa: E402
from edgeface.detection import Detector  # noqa: E402
from edgeface.embedding import Embedder  # noqa: E402
from edgeface.image_io import read_image  # noqa: E402
from edgeface.models import get_model, list_models  # noqa: E402

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
BACKENDS = ("onnxruntime", "openvino")


def frames(size: tuple[int, int]) -> list[np.ndarray]:
    root = require_data("speed")
    return [cv2.resize(read_image(p), size, interpolation=cv2.INTER_AREA) for p in sorted(root.rglob("*.jpg"))]


def per_frame_ms(fn, images: list[np.ndarray], passes: int) -> float:
    for im in images:
        fn(im)
    times = []
    for _ in range(passes):
        for im in images:
            start = time.perf_counter()
            fn(im)
            times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def cold_start(backend: str, threads: int, image: Path) -> dict:
    """A fresh interpreter: import, model load, first frame; and peak RSS after 20 frames."""
    code = (
        "import time, resource, sys; t0 = time.perf_counter()\n"
        "import edgeface\n"
        f"fa = edgeface.FaceAnalyzer(backend={backend!r}, threads={threads})\n"
        f"r = fa.analyze({str(image)!r}); t1 = time.perf_counter()\n"
        f"for _ in range(20): fa.analyze({str(image)!r})\n"
        "print(t1 - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    wall = time.perf_counter() - start
    return {"seconds_in_process": float(out[0]), "seconds_wall": wall, "peak_rss_mb": float(out[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one pass, 640x480 only")
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    passes = 1 if args.quick else 2
    sizes = {"640x480": SIZES["640x480"]} if args.quick else SIZES
    out: dict = {"detection": [], "embedding": [], "end_to_end": [], "cold_start": [], "alignment": {}, "peers": []}

    by_size = {name: frames(size) for name, size in sizes.items()}
    for size_name, images in by_size.items():
        for backend in BACKENDS:
            for threads in (1, 2):
                with Detector(backend=backend, threads=threads) as det:
                    faces = [len(det.detect(im)) for im in images]
                    ms = per_frame_ms(det.detect, images, passes)
                out["detection"].append({"size": size_name, "backend": backend, "threads": threads, "ms": ms,
                                         "faces_per_frame": float(np.mean(faces))})
                print(f"detect {size_name} {backend:11s} t{threads}: {ms:6.1f} ms/frame "
                      f"({np.mean(faces):.1f} faces/frame)", flush=True)

    images = by_size["640x480"]
    with Detector(threads=2) as det:
        found = [(im, det.detect(im)) for im in images]
    spec = get_model("dlib_resnet_v1")
    marks = [(im, np.ascontiguousarray(d.landmarks)) for im, d in found if len(d)]
    n_faces = sum(len(m) for _, m in marks)
    template = np.ascontiguousarray(spec.alignment, np.float32)
    size = spec.input.size
    align_ms = per_frame_ms(lambda pair: _core.align_faces(pair[0], pair[1], template, *size), marks, passes)
    out["alignment"] = {"ms_per_face": align_ms * len(marks) / n_faces, "faces": n_faces}
    print(f"align: {out['alignment']['ms_per_face']:.3f} ms/face", flush=True)
    crops = np.concatenate([_core.align_faces(im, m, template, *size)[0] for im, m in marks])

    embedders = [n for n in list_models() if get_model(n).role == "embedder"]
    for name in embedders:
        for backend in BACKENDS:
            for threads in (1, 2):
                emb = Embedder(name, backend=backend, threads=threads)
                for batch in (1, 8):
                    ms = median_ms(lambda: emb.embed_aligned(crops[:batch]), runs=40 if batch == 1 else 20) / batch
                    out["embedding"].append({"embedder": name, "backend": backend, "threads": threads,
                                             "batch": batch, "ms_per_face": ms})
                    print(f"embed {name:22s} {backend:11s} t{threads} batch {batch}: {ms:6.2f} ms/face", flush=True)
                emb.close()

    few = [im for im, d in found if 1 <= len(d) <= 5]
    for backend in BACKENDS:
        for threads in (1, 2):
            with FaceAnalyzer(backend=backend, threads=threads) as fa:
                ms = per_frame_ms(fa.analyze, few, passes)
            out["end_to_end"].append({"size": "640x480", "backend": backend, "threads": threads, "ms": ms,
                                      "fps": 1000.0 / ms, "frames": len(few), "embedder": fa.embedder.spec.name})
            print(f"end-to-end 640x480 (1-5 faces, {len(few)} frames) {backend:11s} t{threads}: "
                  f"{ms:6.1f} ms = {1000 / ms:5.1f} FPS", flush=True)

    sample = sorted(require_data("speed").rglob("*.jpg"))[0]
    for backend in BACKENDS:
        cs = {"backend": backend, **cold_start(backend, 2, sample)}
        out["cold_start"].append(cs)
        print(f"cold start {backend}: {cs['seconds_wall']:.2f} s, peak RSS {cs['peak_rss_mb']:.0f} MB", flush=True)

    if not args.no_peers:
        paths = sorted(require_data("speed").rglob("*.jpg"))
        for peer in ("facenet_mtcnn", "face_recognition", "opencv_haar"):
            for size_name in sizes:
                for threads in (1, 2):
                    run = run_peer("speed", peer, paths, threads, ["--size", size_name, "--repeats", str(passes)])
                    if run is None:
                        break
                    run.update({"peer": peer, "size": size_name, "threads": threads})
                    out["peers"].append(run)
                    print(f"peer {peer} {size_name} t{threads}: {run}", flush=True)
    write_json("speed.json", out)


if __name__ == "__main__":
    main()
