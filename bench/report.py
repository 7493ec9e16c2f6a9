"""Renders docs/benchmarks.md from the results the bench scripts store in docs/benchmarks/*.json.

Every bench script calls ``render()`` after storing its own results, so re-running any one script
refreshes its section and keeps the others. Run alone to re-render without measuring:

    python bench/report.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

from common import PUBLISHED, REPO

DOC = REPO / "docs" / "benchmarks.md"
PEER_NAMES = {"facenet_mtcnn": "facenet-pytorch MTCNN", "face_recognition": "face_recognition (dlib HOG)",
              "opencv_haar": "OpenCV Haar cascade"}
ORDER = ("accuracy_lfw", "accuracy_detect", "accuracy_identify", "speed", "bench_core")


def load(name: str) -> Optional[dict[str, Any]]:
    path = PUBLISHED / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f} %"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def provenance(r: dict) -> str:
    return f"Command: `{r['command']}` — {r['date']}, commit `{r['machine']['commit']}`."


# ---- sections -------------------------------------------------------------------------------


def tar_cell(tar: float | None) -> str:
    return "unreachable*" if tar is None else pct(tar)


def section_lfw(r: dict) -> str:
    rows = []
    for x in r["results"]:
        rows.append([x["name"], x["backend"], "yes" if x["flip"] else "no",
                     f"{100 * x['accuracy_mean']:.2f} ± {100 * x['accuracy_std']:.2f} %",
                     tar_cell(x["tar_at_far_1e-2"]), tar_cell(x["tar_at_far_1e-3"]),
                     f"{x['faces_missing']} / {x['images']}"])
    peers = [x for x in r["results"] if "accuracy_at_readme_tolerance" in x]
    extra = "".join(f"\n{x['name']} at its README tolerance {x['readme_tolerance']} (no threshold tuning): "
                    f"{pct(x['accuracy_at_readme_tolerance'])}.\n" for x in peers)
    return f"""## LFW verification

{r['protocol']}. edgeface aligns with its MTCNN landmarks; face_recognition uses its own HOG
detector, 5-point alignment and encoder, exactly as its README shows, and is scored by minus the
euclidean distance. {provenance(r)}

{table(["model", "backend", "flip TTA", "accuracy (5-fold)", "TAR @ FAR 1e-2", "TAR @ FAR 1e-3", "images without a face"], rows)}
{extra}
\* Pairs whose image has no detected face count as errors, so an impostor pair with a missing face
is always accepted; when there are more of those than the FAR allows (1.5 of 1,500 impostor pairs at
1e-3), no threshold reaches that FAR.

![LFW ROC](benchmarks/roc_lfw.png)
"""


def _default_detector(r: dict) -> dict:
    """The default detector's result (its plain name), else the first edgeface detector measured."""
    results = r["results"]
    return results.get(r.get("default_detector", ""), next(v for k, v in results.items() if k not in PEER_NAMES))


def section_detect(r: dict) -> str:
    groups = ("easy", "medium", "hard", "voc", "size <16", "size 16-32", "size 32-64", "size >=64")
    rows = []
    for name, x in r["results"].items():
        marks = x.get("landmarks")
        for tag, rec, fp in (("own threshold", x["recall"], x["false_positives_per_image"]),
                             (f"score ≥ {x['at_max_fp']['score_threshold']:.3f}", x["at_max_fp"]["recall"],
                              x["at_max_fp"]["false_positives_per_image"])):
            rows.append([PEER_NAMES.get(name, name), tag,
                         *(f"{pct(rec[g]['recall'], 1)} ({rec[g]['found']}/{rec[g]['total']})" if g in rec else "–"
                           for g in groups),
                         pct(x["ap"], 1), f"{fp:.2f}",
                         f"{100 * marks['mean_nme']:.2f} % ({marks['faces']})" if marks else "n/a",
                         f"{x['ms_per_image']:.1f}",
                         ", ".join(f"{k}: {v:.1f}" for k, v in x.get("ms_per_frame", {}).items()) or "–"])
    first = next(iter(r["results"].values()))
    return f"""## Detection

`../shared/data/detection`: {first['images']} images, {first['faces']} valid faces (WIDER FACE val
subset with its easy/medium/hard flags, and dlib's PASCAL VOC faces). Recall at IoU 0.5 per difficulty
and per face-size bucket (ground-truth box height), at the detector's own threshold and at the lowest
score that keeps ≤ 0.5 false positives per image; VOC-style average precision over all valid faces,
false positives per image; landmark error is the mean 5-point distance to dlib's 68-point annotations
(eye centres, nose tip, mouth corners) over the inter-ocular distance, for detectors that give
landmarks; median ms per image of this set (one thread) and ms/frame on shared/data/speed photos
resized to 640×480 / 1280×720 at 1 and 2 threads (ONNX Runtime). Default detector:
`{r.get('default_detector', '?')}`. Peers run with the settings their READMEs show (facenet MTCNN min
face 20; HOG upsample 1; Haar scaleFactor 1.1, minNeighbors 5, minSize 20); their ms come from their own
(cached) run. dlib HOG and Haar give no scores, so their AP is that of one operating point. {provenance(r)}

{table(["detector", "operating point", "easy", "medium", "hard", "VOC", "<16 px", "16-32 px", "32-64 px", "≥64 px", "AP", "FP / image", "landmark NME", "ms / image", "ms / frame"], rows)}

WIDER's flags are cumulative (hard ⊇ medium ⊇ easy), so "hard" is the whole WIDER subset.
"""


def section_identify(r: dict) -> str:
    c = r["identification"]["counts"]
    multi = r["identification"]["multi_face"]
    multi_rows = [[m["path"], m["faces"], ", ".join(m["expected"]), ", ".join(m["named"]) or "(none)"] for m in multi]
    rows = []
    for enroll, fusions in r["lfw"].items():
        for fusion, x in fusions.items():
            rows.append([enroll, fusion, x["people"], x["known_probes"], x["strangers"], pct(x["rank1_closed_set"]),
                         *(f"{pct(x[op]['top1_known'])} / {pct(x[op]['false_accept_strangers'])}"
                           for op in ("far_1e-2", "far_1e-3", "far_1e-4"))])
    any_row = next(iter(next(iter(r["lfw"].values())).values()))
    caps = (0.01, 0.05, 0.10)
    matched = []
    for enroll, fusions in r["lfw"].items():
        for fusion, x in fusions.items():
            fa, top1 = x["sweep"]["false_accept_strangers"], x["sweep"]["top1_known"]
            matched.append([enroll, fusion, *(pct(max((t for f, t in zip(fa, top1) if f <= cap), default=0.0))
                                              for cap in caps)])
    return f"""## Open-set identification (1:N with "unknown")

Embedder `{r['embedder']}`. {provenance(r)}

**`../shared/data/identification`** (face_recognition's example photos): the people in
`knn_examples/train` enrolled (every photo of each), every other photo identified at the FAR 1e-3
threshold ({r['identification']['threshold']:.4f}): known people named right {c['known_correct']}, named wrong
{c['known_wrong']}, called unknown {c['known_unknown']}; strangers called unknown {c['stranger_unknown']},
accepted as someone {c['stranger_accepted']}; photos without a face {c['no_face']}.

{table(["multi-face photo", "faces found", "people in it", "named"], multi_rows)}

**LFW** (identities.tsv: everyone with more photos than the number enrolled is enrolled with
their first photo(s) and the rest are probes; the {any_row['strangers']} people with a single photo are strangers). Cells: top-1
rate of known probes (right name and above the threshold) / false-accept rate of strangers, at the
manifest's calibrated thresholds.

{table(["photos enrolled", "fusion", "people", "known probes", "strangers", "rank-1 (closed set)", "FAR 1e-2 op.", "FAR 1e-3 op.", "FAR 1e-4 op."], rows)}

Fusions compared fairly, at the same stranger false-accept rate (best top-1 over a sweep of
thresholds 0.80-0.98 whose stranger FA stays under the cap):

{table(["photos enrolled", "fusion", "top-1 at stranger FA ≤ 1 %", "≤ 5 %", "≤ 10 %"], matched)}

A 1:1 threshold is not a 1:N threshold: a stranger is compared with every enrolled person, so at a
per-comparison FAR of 1e-3 and ~800 people about half the strangers match someone. For galleries of
hundreds of people use `far_1e-4` or stricter.

![identification vs threshold](benchmarks/identify_lfw.png)
"""


def _ms(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def section_speed(r: dict) -> str:
    det = r["detection"]
    det_rows = [[d["size"], d.get("detector", "mtcnn"), d["backend"], d["threads"], _ms(d["ms"]),
                 f"{d['faces_per_frame']:.1f}"] for d in det]
    peer_rows = [[p["size_name"], PEER_NAMES[p["peer"]], p["threads"], _ms(p["detect_ms"]["median"]),
                  _ms(p["detect_cpu_ms"]["median"]), f"{p['faces_per_frame_mean']:.1f}"]
                 for p in r["peers"] if p["set"] == "all"]
    emb_rows = [[e["embedder"], e["precision"], e["backend"], e["threads"], e["batch"], _ms(e["ms_per_face"])]
                for e in r["embedding"]]
    fr = [p for p in r["peers"] if p["set"] == "all" and p["peer"] == "face_recognition" and p["encode_ms_per_face"]]
    emb_rows += [["face_recognition (peer)", "fp32 (dlib, no BLAS)", "dlib", p["threads"], "all faces of a frame",
                  _ms(p["encode_ms_per_face"]["median"])] for p in fr if p["size_name"] == "640x480"]
    e2e_rows = [[e["size"], f"edgeface {e.get('detector', 'mtcnn')} + {e['embedder']}", e["backend"], e["threads"],
                 _ms(e["ms"]), f"{e['fps']:.1f}"] for e in r["end_to_end"]]
    e2e_rows += [[p["size_name"], "face_recognition (peer)", "dlib", p["threads"], _ms(p["end_to_end_ms"]["median"]),
                  f"{1000 / p['end_to_end_ms']['median']:.1f}"]
                 for p in r["peers"] if p["set"] == "1-5 faces" and p["end_to_end_ms"]]
    cold_rows = [[c["size"], "edgeface (detect + embed)", c["backend"], f"{c['cold_start_seconds']:.2f}", f"{c['peak_rss_mb']:.0f}"]
                 for c in r["cold_start"]]
    cold_rows += [[p["size_name"], PEER_NAMES[p["peer"]], f"t{p['threads']}", f"{p['cold_start']['median_seconds']:.2f}",
                   f"{p['peak_rss_mb']:.0f}"] for p in r["peers"] if p["set"] == "all" and p["cold_start"] and p["threads"] == 2]
    ratio_rows = [[x["figure"], PEER_NAMES.get(x["peer"], x["peer"]), x["size"], x["threads"], _ms(x["peer_value"]),
                   f"{_ms(x['edgeface_default'])} / {_ms(x['edgeface_best'])} ({x['best_backend']})",
                   f"**{x['speedup_default']:.1f}×** / {x['speedup_best']:.1f}×"] for x in r["ratios"]]
    a = r["alignment"]
    return f"""## Speed and memory

`../shared/data/speed`: {r['images']} multi-face photos resized to 640×480 and 1280×720 (BGR frames,
as a camera gives them). edgeface: median per frame over {det[0]['frames_timed']} timed frames after a warm-up
pass; peers: every frame once after 3 warm-up calls (median of {r['images']}). Default backend
`{r['default_backend']}`, default detector `{r.get('default_detector', 'mtcnn')}`, default embedder
`{r['default_embedder']}`. {provenance(r)}

### Ratios (peer time / edgeface time; > 1 means edgeface is faster)

edgeface with its default backend / with the faster backend.

{table(["figure", "peer", "size", "threads", "peer ms", "edgeface ms", "speed-up"], ratio_rows)}

### Detection, ms per frame

{table(["size", "detector", "backend", "threads", "ms / frame", "faces / frame"], det_rows)}

Peers (wall-clock median, and process CPU time):

{table(["size", "peer", "threads", "ms / frame", "CPU ms / frame", "faces / frame"], peer_rows)}

### Alignment and embedding

Alignment (C++ similarity fit + warp to the crop): **{a['ms_per_face']:.3f} ms per face** ({a['faces']} faces
of {a['frames']} frames at 640×480).

{table(["embedder", "precision", "backend", "threads", "batch", "ms / face"], emb_rows)}

### End to end (detect + align + embed every face), frames with 1-5 faces

{len(r['few_faces_frames'])} frames in which edgeface finds 1-5 faces at 640×480; the same photos at 1280×720.
face_recognition: `face_locations` + `face_encodings` of every face it finds.

{table(["size", "pipeline", "backend", "threads", "ms / frame", "FPS"], e2e_rows)}

### Cold start and memory

Cold start: seconds from spawning a fresh Python process to its first analysed frame (interpreter,
imports, model load, first frame); median of 3 processes. Peak RSS: maximum resident memory of a
process holding all frames of the size and analysing each (edgeface: threads 2; peers: their timing
process at threads 2).

{table(["size", "what", "backend / threads", "cold start s", "peak RSS MB"], cold_rows)}
"""


def section_core(r: dict) -> str:
    rows = [[x["kernel"], x["input"], f"{x['edgeface_ms']:.3f}", x["peer"], f"{x['peer_ms']:.3f}", f"{x['speedup']:.1f}×"]
            for x in r["rows"]]
    return f"""## C++ core kernels

Median of {r['runs']} calls after warm-up, one thread (OpenCV's threading off). {provenance(r)}

{table(["kernel", "input", "edgeface ms", "peer", "peer ms", "speed-up"], rows)}
"""


# ---- targets and shortfalls -----------------------------------------------------------------


def targets(res: dict[str, dict]) -> list[list[str]]:
    rows = []
    speed, detect, lfw = res.get("speed"), res.get("accuracy_detect"), res.get("accuracy_lfw")
    if speed and detect:
        ratios = [x for x in speed["ratios"] if x["figure"] == "detection ms/frame" and x["peer"] == "facenet_mtcnn"]
        ours = _default_detector(detect)
        peer = detect["results"].get("facenet_mtcnn")
        if ratios and peer:
            behind = [f"{lvl} {ours['recall'][lvl]['found']} vs {peer['recall'][lvl]['found']} of {ours['recall'][lvl]['total']}"
                      for lvl in ours["recall"] if ours["recall"][lvl]["recall"] < peer["recall"][lvl]["recall"]]
            speedups = ", ".join(f"{x['size']} t{x['threads']}: {x['speedup_default']:.1f}× ({x['speedup_best']:.1f}× {x['best_backend']})"
                                 for x in ratios)
            fast = all(x["speedup_default"] >= 4 for x in ratios)
            recall_ok = ours["recall_all"] >= peer["recall_all"]
            recall = (f"recall on all faces {pct(ours['recall_all'], 1)} vs {pct(peer['recall_all'], 1)}"
                      + (f"; fewer faces found on {', '.join(behind)}" if behind else ""))
            met = "yes" if fast and recall_ok and not behind else ("overall recall yes, per subset no" if fast and recall_ok else "no")
            rows.append(["detection ≥ 4× faster than facenet-pytorch MTCNN at equal or better recall",
                         f"{speedups}; {recall}", met])
    if speed:
        emb = speed["embedding"]
        pairs = []
        for fp in (e for e in emb if e["precision"] == "fp32"):
            # an fp32 model against its own quantization (name + "_int8"), same backend, threads and batch
            q = next((e for e in emb if e["embedder"] == fp["embedder"] + "_int8" and e["backend"] == fp["backend"]
                      and e["threads"] == fp["threads"] and e["batch"] == fp["batch"]), None)
            if q:
                pairs.append((fp, fp["ms_per_face"] / q["ms_per_face"]))
        if pairs:
            text = ", ".join(f"{f['embedder']} {f['backend']} t{f['threads']} b{f['batch']}: {x:.2f}×" for f, x in pairs)
            rows.append(["INT8 embedding ≥ 1.8× faster than fp32", text,
                         "yes" if all(x >= 1.8 for _, x in pairs) else f"on {sum(x >= 1.8 for _, x in pairs)} of {len(pairs)}"])
        e2e = [e for e in speed["end_to_end"] if e["size"] == "640x480" and e["threads"] == 2
               and e.get("detector", "mtcnn") == speed.get("default_detector", "mtcnn")]
        if e2e:
            default = next(e for e in e2e if e["backend"] == speed["default_backend"])
            best = max(e2e, key=lambda e: e["fps"])
            rows.append(["end to end ≥ 30 FPS at 640×480, 1-5 faces, 2 threads",
                         f"{default['fps']:.1f} FPS ({default['backend']})"
                         + ("" if best is default else f", {best['fps']:.1f} FPS ({best['backend']})"),
                         "yes" if default["fps"] >= 30 else ("with OpenVINO" if best["fps"] >= 30 else "no")])
    if lfw:
        ours = [x for x in lfw["results"] if x["name"].startswith("edgeface") and not x["flip"]]
        peers = [x for x in lfw["results"] if "(peer)" in x["name"]]
        if ours and peers:
            worst = min(ours, key=lambda x: x["accuracy_mean"])
            best_peer = max(peers, key=lambda x: x["accuracy_mean"])
            rows.append(["LFW accuracy above every peer measured",
                         f"edgeface {pct(worst['accuracy_mean'])} (lowest of its models/backends) vs "
                         f"{best_peer['name']} {pct(best_peer['accuracy_mean'])}",
                         "yes" if worst["accuracy_mean"] > best_peer["accuracy_mean"] else "no"])
    return rows


def shortfalls(res: dict[str, dict]) -> list[str]:
    """Every measured figure where a peer does better than edgeface."""
    out = []
    detect = res.get("accuracy_detect")
    if detect:
        ours = _default_detector(detect)
        for name, peer in detect["results"].items():
            if name not in PEER_NAMES:
                continue
            for lvl, value in peer["recall"].items():
                if value["recall"] > ours["recall"][lvl]["recall"]:
                    out.append(f"Detection recall on {lvl}: {PEER_NAMES[name]} {pct(value['recall'], 1)} "
                               f"({value['found']}/{value['total']}) vs edgeface {pct(ours['recall'][lvl]['recall'], 1)} "
                               f"({ours['recall'][lvl]['found']}/{ours['recall'][lvl]['total']}).")
            if peer["false_positives_per_image"] < ours["false_positives_per_image"]:
                out.append(f"False positives per image: {PEER_NAMES[name]} {peer['false_positives_per_image']:.2f} "
                           f"vs edgeface {ours['false_positives_per_image']:.2f}.")
            if "landmarks" in peer and peer["landmarks"]["mean_nme"] < ours["landmarks"]["mean_nme"]:
                out.append(f"Landmark error: {PEER_NAMES[name]} {pct(peer['landmarks']['mean_nme'])} vs edgeface "
                           f"{pct(ours['landmarks']['mean_nme'])}.")
    speed = res.get("speed")
    if speed:
        for x in speed["ratios"]:
            if x["speedup_default"] < 1:
                out.append(f"{x['figure']} at {x['size'] or 'any size'}, {x['threads']} thread(s): "
                           f"{PEER_NAMES.get(x['peer'], x['peer'])} {_ms(x['peer_value'])} ms vs edgeface "
                           f"{_ms(x['edgeface_default'])} ms (default backend).")
        for c in speed["cold_start"]:
            for p in speed["peers"]:
                if p["set"] == "all" and p["cold_start"] and p["threads"] == 2 and p["size_name"] == c["size"]:
                    if p["cold_start"]["median_seconds"] < c["cold_start_seconds"]:
                        out.append(f"Cold start {c['size']} ({c['backend']}): {PEER_NAMES[p['peer']]} "
                                   f"{p['cold_start']['median_seconds']:.2f} s vs edgeface {c['cold_start_seconds']:.2f} s.")
                    if p["peak_rss_mb"] < c["peak_rss_mb"]:
                        out.append(f"Peak memory {c['size']} ({c['backend']}): {PEER_NAMES[p['peer']]} "
                                   f"{p['peak_rss_mb']:.0f} MB vs edgeface {c['peak_rss_mb']:.0f} MB.")
    core = res.get("bench_core")
    if core:
        for x in (x for x in core["rows"] if x["speedup"] < 1):
            out.append(f"C++ kernel {x['kernel']} ({x['input']}): {x['peer']} {x['peer_ms']:.3f} ms vs edgeface "
                       f"{x['edgeface_ms']:.3f} ms.")
    lfw = res.get("accuracy_lfw")
    if lfw:
        peers = [x for x in lfw["results"] if "(peer)" in x["name"]]
        for x in (x for x in lfw["results"] if x["name"].startswith("edgeface")):
            for p in peers:
                if p["accuracy_mean"] >= x["accuracy_mean"]:
                    out.append(f"LFW: {p['name']} {pct(p['accuracy_mean'])} vs {x['name']} {x['backend']} "
                               f"{pct(x['accuracy_mean'])}.")
    return out


KNOWN_LIMITS = """Not measured by these scripts, or measured on too little data to rank:
- The WIDER FACE subset is a handful of crowded images, a sanity check for small faces, not the
  official benchmark; MTCNN-class detectors miss most faces under ~20 px by design (`--min-face`).
- facenet-pytorch's face embedder (InceptionResnetV1) is not compared: its weights are downloaded
  at run time from GitHub, which this machine cannot reach. Its MTCNN is compared.
- No aarch64 speed: this machine is x86_64. The warp's SIMD path is SSE2 only; aarch64 runs the
  portable path. The aarch64 wheel's C++ kernels (warp included) give bit-identical outputs to the
  x86_64 wheel's, checked under qemu (`tools/build_wheels.sh --test`, docs/edge.md; the core is
  built with `-ffp-contract=off`). The portable warp is 2.3x slower than SSE2 on x86
  (`bench/warp_simd.py`); its speed on a Pi or Jetson is not measured.
- The machine is 2 cores shared with other jobs: wall-clock figures move by ±20 % between runs;
  ratios measured in one run are the stable part."""


# Results whose scripts write their own page (each with its commands and the JSON beside it).
MORE_RESULTS = """## More results

| topic | page | script | stored results |
|---|---|---|---|
| detectors compared (MTCNN, YuNet, rotations, input size), end to end per detector | [docs/detectors.md](detectors.md), [models/card_yunet.md](../models/card_yunet.md) | `bench/accuracy_detect.py --detector ...`, `bench/speed_detectors.py` | `accuracy_detect.json`, `speed_detectors.json`, `accuracy_detect_rotate90.json` |
| face quality gate and error-versus-reject | [docs/robustness.md](robustness.md) (Face quality) | `bench/quality.py` | `quality.json`, `quality_erc.png` |
| robustness: occlusion, pose, resolution, what helps, beside face_recognition | [docs/robustness.md](robustness.md) | `bench/robustness.py` | `robustness.json`, `robustness.png` |
| clustering (CDP) against Chinese whispers, DBSCAN, HDBSCAN, average linkage | [docs/clustering.md](clustering.md) | `bench/accuracy_cluster.py`, `tools/train_mediator.py` | `accuracy_cluster.json`, `cluster_mediator_cv.json`, `cluster_scale_100000.json` |
| gallery at 10k-1M: bulk enroll, open, single enroll, search vs numpy, int8, FAISS | [docs/gallery.md](gallery.md) | `bench/gallery_scale.py` | `gallery_scale.json`, `gallery_scale_1m_after_fix.json` |
| photo-archive indexing: workers and Ray | [docs/archive.md](archive.md) | `bench/index_scale.py` | `index_scale.json` |
| MobileFaceNet (user import): LFW and ms/face beside dlib | [docs/mobilefacenet.md](mobilefacenet.md), [models/card_mobilefacenet.md](../models/card_mobilefacenet.md) | `bench/accuracy_lfw.py --embedders ...`, `bench/embed_speed.py` | `accuracy_lfw_mobilefacenet.json`, `embed_speed.json` |
| aarch64: emulated test run, scalar vs SSE2 warp | [docs/edge.md](edge.md) | `tools/build_wheels.sh --test`, `bench/warp_simd.py` | `warp_simd.json` |
"""


def render() -> Path:
    res = {name: r for name in ORDER if (r := load(name)) is not None}
    sections: dict[str, Callable[[dict], str]] = {
        "accuracy_lfw": section_lfw, "accuracy_detect": section_detect, "accuracy_identify": section_identify,
        "speed": section_speed, "bench_core": section_core}
    newest = max(res.values(), key=lambda r: r["date"]) if res else None
    m = newest["machine"] if newest else None
    machine = (f"{m['cpu']}, {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB, {m['os']}, Python {m['python']}; "
               + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)) if m else "(no results yet)"
    target_rows = targets(res)
    behind = shortfalls(res)
    parts = [f"""# edgeface benchmarks

Generated by the scripts in `bench/` from their stored results in `docs/benchmarks/*.json`; do not
edit by hand. Each script re-measures its part and re-renders this page (`python bench/report.py`
re-renders only). Evaluation data: `../shared/data` (not redistributed; see `../shared/README.md`).
Peers: `bash bench/peers/setup.sh` (versions and how each is called: `bench/peers/README.md`).

**Machine:** {machine}.

Reproduce (from a clone, after `pip install ".[bench]"` and `bash bench/peers/setup.sh`):

```bash
python bench/accuracy_lfw.py --backends onnxruntime,openvino
python bench/accuracy_detect.py
python bench/accuracy_identify.py
python bench/speed.py          # alone on a quiet machine
python bench/bench_core.py
```

## Targets

{table(["target", "measured", "met"], target_rows) if target_rows else "(not all results present)"}

## Where edgeface is behind

{chr(10).join("- " + b for b in behind) if behind else "- No measured figure where a peer is ahead."}

{KNOWN_LIMITS}
"""]
    parts += [sections[name](r) for name, r in res.items()]
    parts.append(MORE_RESULTS)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    tmp = DOC.with_suffix(".tmp")
    tmp.write_text("\n".join(parts))
    os.replace(tmp, DOC)
    return DOC


if __name__ == "__main__":
    print(render())
