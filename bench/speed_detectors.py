"""End-to-end speed of FaceAnalyzer with each registered detector, measured in one run (interleaved per
thread count) on the shared/data/speed photos resized to 640x480 that have 1-5 faces (counted with
MTCNN): detect + align + embed (default embedder, ONNX Runtime). Written to
docs/benchmarks/speed_detectors.json (bench/speed.py covers the default pipeline and the peers).

    python bench/speed_detectors.py [--sizes 640x480,1280x720]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, machine, require_data, write_json_atomic  # noqa: E402
from speed import FEW_FACES, MIN_TIMED, THREADS, load_frames, per_frame_ms  # noqa: E402

from edgeface.analyzer import FaceAnalyzer  # noqa: E402
from edgeface.detection import DEFAULT_DETECTOR, DETECTORS, create_detector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="640x480")
    args = parser.parse_args()
    paths = sorted(require_data("speed").rglob("*.jpg"))
    rows = []
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        frames = load_frames(paths, (w, h))
        with create_detector("mtcnn", threads=2) as det:
            few = [f for f in frames if FEW_FACES[0] <= len(det.detect(f)) <= FEW_FACES[1]]
        passes = max(2, -(-MIN_TIMED // len(few)))
        for threads in THREADS:
            for name in DETECTORS:
                with FaceAnalyzer(detector=name, backend="onnxruntime", threads=threads) as fa:
                    faces = float(np.mean([len(fa.analyze(f)) for f in few]))
                    ms = per_frame_ms(fa.analyze, few, passes=passes)
                rows.append({"size": size, "threads": threads, "detector": name, "ms": ms, "fps": 1000 / ms,
                             "frames": len(few), "faces_per_frame": faces})
                print(f"{size} t{threads} {name:6s}: {ms:6.1f} ms/frame ({faces:.1f} faces/frame)", flush=True)
    write_json_atomic(PUBLISHED / "speed_detectors.json",
                      {"command": " ".join(["python bench/speed_detectors.py", *sys.argv[1:]]),
                       "machine": machine(), "default_detector": DEFAULT_DETECTOR, "rows": rows})


if __name__ == "__main__":
    main()
