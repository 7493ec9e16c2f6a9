"""Shared by the benchmark scripts: where the evaluation data lives, TSV reading, cached landmarks."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "results" / "cache"  # git-ignored: reusable intermediate results
PUBLISHED = REPO / "docs" / "benchmarks"  # committed: the results docs/benchmarks.md is made from


def data_root() -> Path:
    """Third-party evaluation data: $EDGEFACE_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("EDGEFACE_DATA", REPO.parent / "shared" / "data"))


def require_data(sub: str) -> Path:
    path = data_root() / sub
    if not path.exists():
        sys.exit(f"evaluation data not found: {path} (set EDGEFACE_DATA; see ../shared/README.md)")
    return path


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def nearest_to_centre(boxes: np.ndarray, height: int, width: int) -> int:
    """Index of the box whose centre is closest to the image centre (LFW faces are centred)."""
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    return int(np.argmin(np.sum((centres - [width / 2, height / 2]) ** 2, axis=1)))


def centre_faces(paths: Iterable[Path], detector: Any, tag: str) -> dict[str, Optional[tuple[np.ndarray, float]]]:
    """Landmarks (5×2) and enrollment quality of the centre-most face of each image (None: no face).

    Cached in bench/results/cache by detector tag and the list of paths, since every embedder
    evaluation over the same images needs the same landmarks.
    """
    from edgeface.gallery import enrollment_quality
    from edgeface.image_io import read_image
    paths = sorted(set(Path(p) for p in paths))
    key = hashlib.sha1(("\n".join(map(str, paths)) + tag).encode()).hexdigest()[:16]
    cache = CACHE / f"faces-{tag}-{key}.npz"
    if cache.exists():
        stored = np.load(cache)
        marks, quality, found = stored["landmarks"], stored["quality"], stored["found"]
    else:
        marks = np.zeros((len(paths), 5, 2), np.float32)
        quality = np.zeros(len(paths), np.float32)
        found = np.zeros(len(paths), bool)
        for i, path in enumerate(paths):
            image = read_image(path)
            dets = detector.detect(image)
            if len(dets):
                j = nearest_to_centre(dets.boxes, *image.shape[:2])
                face = dets[j]
                marks[i], found[i] = dets.landmarks[j], True
                quality[i] = enrollment_quality(face.score, face.width, face.height)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, landmarks=marks, quality=quality, found=found)
    return {str(p): ((marks[i], float(quality[i])) if found[i] else None) for i, p in enumerate(paths)}


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, OS, library versions, commit."""
    import importlib.metadata as md
    import platform
    import subprocess
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    versions = {}
    for dist in ("edgeface", "numpy", "onnxruntime", "openvino", "opencv-python-headless"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions,
            "commit": commit}


def publish(name: str, payload: dict[str, Any]) -> Path:
    """Store one benchmark's results in docs/benchmarks/ (with the machine and the command that
    produced them) and regenerate docs/benchmarks.md from every stored result."""
    import time
    from report import render
    record = {"command": "python " + " ".join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), **payload}
    out = write_json_atomic(PUBLISHED / name, record)
    print(f"results: {out.relative_to(REPO)}; report: {render().relative_to(REPO)}")
    return out


def write_json_atomic(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def log_x_plot(out: Path, curves: list[tuple[Any, Any, str]], title: str, xlabel: str, ylabel: str,
               points: Iterable[tuple[float, float]] = ()) -> None:
    """Curves (x, y, label) on a log x axis (x clipped at 1e-4) saved as a PNG; skipped without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib not installed: no {out.name} (pip install '.[bench]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for x, y, label in curves:
        ax.plot(np.maximum(x, 1e-4), y, label=label)
    for x, y in points:
        ax.plot(max(x, 1e-4), y, "k.", ms=4)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def median_ms(fn: Any, runs: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds, after warm-up calls."""
    import time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))
