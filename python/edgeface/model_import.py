"""Importing third-party embedders the user owns into the per-user model folder (``edgeface models import``).

edgeface cannot ship weights whose licence is unclear (MobileFaceNet); a user who has the file imports it
on their own machine. An import checks the file, converts it to a clean ONNX graph, quantizes it to INT8,
checks parity against the original runtime when one is installed, and writes both precisions plus an
entry in the user manifest (``edgeface.models.user_models_dir()``), which overlays the bundled models.

Thresholds: the converter and the quantizer are deterministic, so for a *known* source file (its sha256
is in the bundled manifest's ``imports``) the operating points calibrated on LFW when edgeface was built
are attached, together with the INT8 activation ranges that reproduce the calibrated INT8 file. An
unknown file needs ``calibrate=PAIRS.tsv``: labelled photo pairs on which the thresholds (and the INT8
ranges) are measured on this machine.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from . import mobilefacenet
from .detection import DEFAULT_DETECTOR
from .errors import EdgefaceError, ModelError
from .models import BUNDLED, IMPORTED, MANIFEST_NAME, SUPPORTED_SCHEMA, load_manifest, user_models_dir
from .quantization import QuantConfig, calibrate, quantize
from .storage import ensure_private_dir, write_atomic

KINDS = ("mobilefacenet",)
MAX_SOURCE_BYTES = 64 << 20  # MobileFaceNet is 5 MB; anything far larger is not this model
PARITY_MIN_COSINE = 0.9999
# The INT8 recipe (measured in docs/mobilefacenet.md): Conv only (the PReLUs stay float between Q/DQ pairs:
# their slopes span -9..+9, which 8-bit QLinearMul/Add cannot represent), percentile ranges, and the first
# conv plus the three linear layers that produce the embedding kept in float.
MFN_QUANT = QuantConfig(method="percentile", op_types=("Conv",), exclude=(
    "MobileFaceNet/MobileFaceNet/Conv2d_0/BatchNorm/FusedBatchNorm",
    "MobileFaceNet/Logits/SeparableConv2d/BatchNorm/FusedBatchNorm",
    "MobileFaceNet/Logits/Conv/BatchNorm/FusedBatchNorm",
    "MobileFaceNet/Logits/LinearConv1x1/BatchNorm/FusedBatchNorm",
))
CALIBRATION_FACES = 256
FAR_POINTS = {"far_1e-2": 1e-2, "far_1e-3": 1e-3, "far_1e-4": 1e-4}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class ImportResult:
    names: list[str]
    folder: Path
    caveat: str
    thresholds_from: str
    parity: Optional[dict[str, float]] = None
    notes: list[str] = field(default_factory=list)


def import_model(kind: str, source: PathLike, *, name: Optional[str] = None, calibrate_pairs: Optional[PathLike] = None,
                 force: bool = False, log: Callable[[str], None] = lambda _msg: None) -> ImportResult:
    """Import ``source`` (a file of ``kind``, e.g. "mobilefacenet") as ``name`` and ``name``_int8.

    Raises ``ModelError`` for a bad file, a name clash, or an unknown file without ``calibrate_pairs``.
    """
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}; edgeface can import: {', '.join(KINDS)}")
    source = Path(source)
    base = name or kind
    names = [base, f"{base}_int8"]
    data = _read_source(source)
    source_sha = hashlib.sha256(data).hexdigest()
    manifest = load_manifest()
    for n in names:
        _check_name(n, manifest, force)
    record = manifest.imports.get(kind, {}).get(source_sha)
    if record is None and calibrate_pairs is None:
        raise ModelError(
            f"{source.name} (sha256 {source_sha}) is not the {kind} file edgeface has calibrated thresholds for, "
            f"so edgeface cannot tell where to put 'same person' for it. Import it with --calibrate PAIRS.tsv "
            f"(Python: calibrate_pairs=...): a TSV with columns path1, path2, same (1/0) of your own labelled "
            f"photo pairs, ideally over 1,000 different-person pairs. Without calibrated thresholds the model "
            f"would be usable only with a numeric cosine threshold."
        )
    log(f"CAVEAT: {mobilefacenet.CAVEAT}")
    folder = ensure_private_dir(user_models_dir())
    with _locked(folder), _staging(folder) as stage:
        fp32_tmp = stage / "fp32.onnx"
        entry = mobilefacenet.convert_mobilefacenet_tflite(source, fp32_tmp)
        log(f"converted {source.name} to a clean NCHW ONNX graph ({entry['bytes']} bytes)")
        parity = _parity(source, fp32_tmp, log)
        pairs_faces = None
        if record is not None:
            ranges = {k: tuple(v) for k, v in record["quantization"]["ranges"].items()}
        else:
            pairs_faces = _pair_faces(Path(calibrate_pairs), log)
            calib = pairs_faces.calibration_inputs(CALIBRATION_FACES)
            ranges = calibrate(fp32_tmp, ({mobilefacenet.INPUT_NAME: x[None]} for x in calib), MFN_QUANT)
        int8_blob = quantize(fp32_tmp, None, ranges, MFN_QUANT)
        log(f"quantized to INT8 ({len(int8_blob)} bytes)")
        fp32_blob = fp32_tmp.read_bytes()
        entries, thresholds_from, notes = _entries(kind, base, entry, fp32_blob, int8_blob, source, source_sha,
                                                   record, pairs_faces, stage, parity, log)
        for n, blob in ((names[0], fp32_blob), (names[1], int8_blob)):
            write_atomic(folder / entries[n]["file"], blob)
        _update_manifest(folder, add=entries)
    for note in notes:
        log(note)
    log(f"imported {', '.join(names)} into {folder}")
    return ImportResult(names, folder, mobilefacenet.CAVEAT, thresholds_from, parity, notes)


def remove_model(name: str) -> Path:
    """Remove an imported model (entry and file); bundled models cannot be removed. Returns the file removed."""
    manifest = load_manifest()
    spec = manifest.models.get(name)
    if spec is not None and spec.origin == BUNDLED:
        raise ModelError(f"{name!r} is bundled with edgeface and cannot be removed; only imported models can.")
    folder = user_models_dir()
    raw = _read_user_manifest(folder)
    if name not in raw["models"]:
        imported = ", ".join(sorted(raw["models"])) or "(none)"
        raise ModelError(f"no imported model called {name!r} in {folder}; imported models: {imported}")
    with _locked(folder):
        raw = _read_user_manifest(folder)
        entry = raw["models"].get(name)
        if entry is None:
            raise ModelError(f"{name!r} was removed meanwhile")
        _update_manifest(folder, remove=[name])
        path = folder / entry["file"]
        still_used = any(e.get("file") == entry["file"] for e in _read_user_manifest(folder)["models"].values())
        if not still_used:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return path


def model_table() -> list[dict[str, Any]]:
    """Every model edgeface can load, bundled and imported, with where each lives (for ``models list``)."""
    manifest = load_manifest()
    rows = [{"name": s.name, "role": s.role, "precision": s.precision, "origin": s.origin, "path": str(s.path),
             "thresholds": bool(s.thresholds), "license": s.license or "", "note": ""}
            for s in sorted(manifest.models.values(), key=lambda s: (s.origin != BUNDLED, s.name))]
    rows += [{"name": n, "role": "", "precision": "", "origin": "ignored", "path": str(p), "thresholds": False,
              "license": "", "note": reason} for n, p, reason in manifest.shadowed]
    return rows


# ------------------------------------------------------------------------------------------ steps


def _read_source(source: Path) -> bytes:
    try:
        size = source.stat().st_size
        if not source.is_file():
            raise ModelError(f"{source} is not a file")
        if size > MAX_SOURCE_BYTES:
            raise ModelError(f"{source} is {size} bytes; a MobileFaceNet .tflite is about 5 MB. Check the file.")
        return source.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {source}: {exc.strerror or exc}") from exc


def _check_name(name: str, manifest: Any, force: bool) -> None:
    if not name or not all(c.isalnum() or c in "_-." for c in name) or name.startswith("."):
        raise ModelError(f"model name {name!r} must use letters, digits, '_', '-' or '.'")
    spec = manifest.models.get(name)
    if spec is None:
        return
    if spec.origin != IMPORTED:
        raise ModelError(f"{name!r} is the name of a {spec.origin} model ({spec.path}); choose another with --name.")
    if not force:
        raise ModelError(f"{name!r} is already imported ({spec.path}); remove it first (edgeface models remove "
                         f"{name}) or pass --force to replace it.")


def _parity(source: Path, fp32: Path, log: Callable[[str], None]) -> Optional[dict[str, float]]:
    """fp32 ONNX vs the original file in LiteRT/TFLite (when installed) on seeded smooth random images."""
    reference = mobilefacenet.tflite_reference(source)
    if reference is None:
        log("parity: skipped (no reference runtime; pip install ai-edge-litert to check the conversion)")
        return None
    rng = np.random.default_rng(0)
    # Low-frequency noise upsampled to 112 px: closer to image statistics than white noise.
    small = rng.uniform(-1, 1, (8, 3, 14, 14)).astype(np.float32)
    x = np.ascontiguousarray(small.repeat(8, axis=2).repeat(8, axis=3))
    from .runtime import Runner
    with Runner(fp32, backend="onnxruntime", threads=1) as runner:
        got = runner.run(x)[mobilefacenet.OUTPUT_NAME]
    ref = reference(x)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    stats = {"min_cosine": float(cos.min()), "max_abs_diff": float(np.abs(ref - got).max()), "n": int(len(x))}
    if stats["min_cosine"] < PARITY_MIN_COSINE:
        raise ModelError(f"the converted model does not match the original (min cosine {stats['min_cosine']:.6f} < "
                         f"{PARITY_MIN_COSINE}); nothing was imported. Please report this with the file's sha256.")
    log(f"parity vs the original runtime on {len(x)} inputs: min cosine {stats['min_cosine']:.7f}")
    return stats


def _entries(kind: str, base: str, entry: dict[str, Any], fp32_blob: bytes, int8_blob: bytes, source: Path,
             source_sha: str, record: Optional[dict[str, Any]], pairs_faces: Optional["_PairFaces"], stage: Path,
             parity: Optional[dict[str, float]], log: Callable[[str], None]) -> tuple[dict[str, Any], str, list[str]]:
    common = {k: v for k, v in entry.items() if k not in ("file", "sha256", "bytes", "precision")}
    common["embedding_space"] = base
    common["source"] = dict(entry["source"], path=str(source.resolve()), sha256=source_sha)
    common["converter"] = "edgeface.model_import (edgeface models import)"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out: dict[str, Any] = {}
    notes: list[str] = []
    for precision, blob, name in (("fp32", fp32_blob, base), ("int8", int8_blob, f"{base}_int8")):
        sha = hashlib.sha256(blob).hexdigest()
        e = dict(common, file=f"{name}-{sha[:12]}.onnx", sha256=sha, bytes=len(blob), precision=precision)
        e["import"] = {"kind": kind, "imported": stamp, "source_sha256": source_sha, "parity": parity}
        if precision == "int8":
            e["quantization"] = {"method": MFN_QUANT.describe(), "ranges_from": "bundled record" if record else "calibrate pairs"}
        out[name] = e
    if record is not None:
        thresholds_from = f"bundled LFW calibration for source sha256 {source_sha[:12]}"
        for precision, name in (("fp32", base), ("int8", f"{base}_int8")):
            ref = record.get(precision, {})
            if not ref.get("thresholds"):  # only while edgeface's own build is calibrating the record
                notes.append(f"note: no bundled thresholds for {name} yet: use it with a numeric threshold")
                thresholds_from = "none yet (use a numeric threshold)"
                continue
            out[name]["thresholds"] = dict(ref["thresholds"])
            out[name]["thresholds_calibration"] = ref.get("thresholds_calibration", "")
            out[name]["thresholds_detectors"] = list(ref.get("thresholds_detectors", ["mtcnn"]))
            if ref.get("lfw"):
                out[name]["lfw"] = ref["lfw"]
            if ref.get("sha256") and ref["sha256"] != out[name]["sha256"]:
                notes.append(f"note: {name} differs in bytes from the model the thresholds were calibrated on "
                             f"(different onnx/onnxruntime version); the thresholds still apply to the same weights.")
    else:
        thresholds_from = f"calibrated on this machine from {pairs_faces.source}"
        for precision, name in (("fp32", base), ("int8", f"{base}_int8")):
            model_path = stage / f"{precision}.onnx"
            model_path.write_bytes(fp32_blob if precision == "fp32" else int8_blob)
            out[name]["thresholds"], out[name]["thresholds_calibration"] = pairs_faces.thresholds(model_path, name)
            out[name]["thresholds_detectors"] = [DEFAULT_DETECTOR]  # the pairs were aligned with its landmarks
            log(f"{name}: thresholds {json.dumps(out[name]['thresholds'])}")
    return out, thresholds_from, notes


# ------------------------------------------------------------------ calibration from labelled pairs


@dataclass
class _PairFaces:
    """Aligned 112-px faces of the photos in a pairs TSV, and the pairs between them."""

    source: str
    chips: np.ndarray  # uint8 N x 112 x 112 x 3 RGB
    index: dict[str, int]
    pairs: list[tuple[str, str, bool]]

    def calibration_inputs(self, limit: int) -> np.ndarray:
        pick = np.linspace(0, len(self.chips) - 1, min(limit, len(self.chips))).astype(int)
        return mobilefacenet.to_input(self.chips[pick])

    def thresholds(self, model_path: Path, name: str) -> tuple[dict[str, float], str]:
        from .evaluation import best_accuracy_threshold, threshold_at_far
        from .runtime import Runner
        x = mobilefacenet.to_input(self.chips)
        with Runner(model_path, backend="onnxruntime") as runner:
            emb = np.concatenate([runner.run(x[i:i + 16])[mobilefacenet.OUTPUT_NAME] for i in range(0, len(x), 16)])
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        kept = [(a, b, s) for a, b, s in self.pairs if a in self.index and b in self.index]
        scores = np.array([float(emb[self.index[a]] @ emb[self.index[b]]) for a, b, _ in kept])
        labels = np.array([s for _, _, s in kept])
        impostors = int((~labels).sum())
        out = {"best_accuracy": best_accuracy_threshold(scores, labels)}
        for point, far in FAR_POINTS.items():
            if impostors * far >= 1:  # at least one impostor may pass: the rate is resolved
                out[point] = threshold_at_far(scores, labels, far)
        how = (f"{self.source}: {len(kept)} pairs with a face in both photos ({impostors} different-person); "
               f"FAR points need >= 1/FAR such pairs; {DEFAULT_DETECTOR} landmarks")
        return out, how


def _pair_faces(pairs_path: Path, log: Callable[[str], None]) -> _PairFaces:
    import csv

    from .detection import create_detector
    from .image_io import read_image
    from . import _core
    try:
        with open(pairs_path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelError(f"cannot read the pairs file {pairs_path}: {exc}") from exc
    if not rows or not {"path1", "path2", "same"} <= set(rows[0]):
        raise ModelError(f"{pairs_path} must be a TSV with a header row: path1, path2, same (1 or 0)")
    root = pairs_path.parent
    pairs = []
    for r in rows:
        if r["same"] not in ("0", "1"):
            raise ModelError(f"{pairs_path}: 'same' must be 1 or 0, got {r['same']!r}")
        pairs.append((str(root / r["path1"]), str(root / r["path2"]), r["same"] == "1"))
    labels = [s for _, _, s in pairs]
    if all(labels) or not any(labels):
        raise ModelError(f"{pairs_path} needs both same-person (1) and different-person (0) pairs")
    paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    template = np.asarray(mobilefacenet.ARCFACE_TEMPLATE, np.float32)
    chips, index = [], {}
    detector = create_detector(DEFAULT_DETECTOR)
    try:
        for i, path in enumerate(paths):
            try:
                image = read_image(path)
            except EdgefaceError as exc:
                log(f"skipping {path}: {exc}")
                continue
            faces = detector.detect(image)
            if len(faces) == 0:
                continue
            areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
            j = int(np.argmax(areas))
            marks = np.ascontiguousarray(faces.landmarks[j:j + 1], np.float32)
            crop, _ = _core.align_faces(image, marks, template, mobilefacenet.SIZE, mobilefacenet.SIZE)
            index[path] = len(chips)
            chips.append(crop[0][:, :, ::-1])  # BGR -> RGB
            if (i + 1) % 200 == 0:
                log(f"calibration: {i + 1}/{len(paths)} photos")
    finally:
        detector.close()
    if len(chips) < 2:
        raise ModelError(f"no faces found in the photos of {pairs_path}")
    return _PairFaces(str(pairs_path), np.stack(chips), index, pairs)


# -------------------------------------------------------------------------------- the user manifest


def _read_user_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return {"schema": SUPPORTED_SCHEMA, "models": {}, "defaults": {}}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the imported-models manifest {path} is unreadable ({exc}); fix or delete it") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ModelError(f"the imported-models manifest {path} is not an edgeface manifest; fix or delete it")
    return raw


def _update_manifest(folder: Path, add: Optional[dict[str, Any]] = None, remove: Optional[list[str]] = None) -> None:
    raw = _read_user_manifest(folder)
    replaced = {raw["models"][n]["file"] for n in (add or {}) if n in raw["models"]}
    for n in remove or []:
        raw["models"].pop(n, None)
    raw["models"].update(add or {})
    raw["models"] = dict(sorted(raw["models"].items()))
    write_atomic(folder / MANIFEST_NAME, (json.dumps(raw, indent=2) + "\n").encode())
    # Files of replaced entries go only after the new manifest is in place.
    live = {e["file"] for e in raw["models"].values()}
    for old in replaced - live:
        with contextlib.suppress(FileNotFoundError):
            (folder / old).unlink()


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One import/remove at a time per folder (two would each rewrite the manifest from a stale copy)."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    import shutil
    import tempfile
    stage = Path(tempfile.mkdtemp(prefix=".import-", dir=folder))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
