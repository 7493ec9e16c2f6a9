"""Archive indexing throughput: images/s of `edgeface index` with 1 and 2 worker processes (and 1 process
× 2 threads), and of the Ray Data engine, on the same folder in one run. Writes docs/benchmarks/index_scale.json.

    python bench/index_scale.py [--folder DIR] [--rounds N] [--no-ray]

Each configuration indexes the whole folder into a fresh index; the time includes starting the workers
and loading their models (as a user sees it), not starting the Ray instance (measured separately: a
cluster is already running). Configurations alternate for ``--rounds`` rounds and the median is kept,
so load from other jobs on a shared machine hits them alike. The CPU time of the local workers is
recorded too (CPU-seconds per image: the cost, whatever the load). Every configuration must write the
same rows as the first.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PUBLISHED, machine, require_data, write_json_atomic  # noqa: E402

# (engine, workers, threads per worker)
CONFIGS = [("local", 1, 1), ("local", 2, 1), ("local", 1, 2), ("ray", 2, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=None,
                        help="images to index (default: ../shared/data/identification, 1-3 faces an image)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import pyarrow.dataset as pads
    from edgeface.archive import build_index
    from edgeface.archive.store import part_files
    from edgeface.cli import expand_images

    folder = args.folder or require_data("identification")
    paths = [os.path.abspath(p) for p in expand_images([str(folder)])]
    configs = [c for c in CONFIGS if not (args.no_ray and c[0] == "ray")]
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    reference, ray_start = None, None
    with tempfile.TemporaryDirectory(prefix="edgeface-index-scale-") as tmp:
        for round_ in range(args.rounds):
            for engine, workers, threads in configs:
                if engine == "ray" and ray_start is None:
                    from edgeface.archive.ray_engine import start_ray
                    started = time.perf_counter()
                    start_ray(None, workers * threads)
                    ray_start = time.perf_counter() - started
                out = Path(tmp) / f"{engine}-{workers}x{threads}-{round_}"
                cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
                summary = build_index(paths, out, engine=engine, workers=workers, threads=threads,
                                      analyzer_options={"min_face_size": 20.0}, chunk_files=64)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers are reaped by now
                table = pads.dataset([str(p) for p in part_files(out)]).to_table().sort_by(
                    [("path", "ascending"), ("face", "ascending")])
                reference = table if reference is None else reference
                run = {"seconds": summary.seconds, "images": summary.indexed, "faces": summary.faces,
                       "worker_cpu_seconds": (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)
                       if engine == "local" else None, "same_rows_as_first": table.equals(reference)}
                runs[(engine, workers, threads)].append(run)
                print(engine, workers, threads, {k: round(v, 2) if isinstance(v, float) else v
                                                 for k, v in run.items()}, flush=True)
    if ray_start is not None:
        import ray
        ray.shutdown()
    results = []
    for (engine, workers, threads), done in runs.items():
        seconds = statistics.median(r["seconds"] for r in done)
        cpu_s = [r["worker_cpu_seconds"] for r in done if r["worker_cpu_seconds"] is not None]
        results.append({"engine": engine, "workers": workers, "threads": threads, "images": done[0]["images"],
                        "faces": done[0]["faces"], "seconds_per_round": [round(r["seconds"], 2) for r in done],
                        "median_seconds": round(seconds, 2),
                        "images_per_second": round(done[0]["images"] / seconds, 3),
                        "worker_cpu_seconds_per_image": round(statistics.median(cpu_s) / done[0]["images"], 3)
                        if cpu_s else None,
                        "same_rows_as_first": all(r["same_rows_as_first"] for r in done)})
    base = results[0]["images_per_second"]
    for row in results:
        row["speedup_vs_1x1"] = round(row["images_per_second"] / base, 3)
    payload = {"command": "python " + " ".join(["bench/index_scale.py", *sys.argv[1:]]),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
               "folder": str(folder), "images": len(paths), "rounds": args.rounds, "ray_start_seconds": None if ray_start is None
               else round(ray_start, 2), "load_average_1_5_15_min_at_end": [round(x, 2) for x in os.getloadavg()],
               "note": "compare the ratios within one run; absolute rates depend on the machine's load",
               "results": results}
    out = write_json_atomic(PUBLISHED / "index_scale.json", payload)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
