"""The models edgeface knows: the bundled ones, plus the ones a user imported; where they live, what
their manifests say about them, and checking that a file is the one its manifest describes before it
is loaded.

The bundled ONNX files ship inside the wheel (``edgeface/models/`` next to this module) together with
``manifest.json``; nothing is downloaded at run time. Because the files are large and loaded by
native code, a damaged or swapped file would otherwise fail far from its cause (a parser error,
or worse, silently wrong embeddings), so each file's sha256 is checked against its manifest
before its first load in a process.

Manifests, in order (later ones *add* models, they never hide or replace the bundled ones):

1. the bundled manifest: the installed package's ``models/`` folder, else the source tree's
   ``models/`` folder (editable installs and checkouts keep the models at the repository root);
2. ``EDGEFACE_MODELS_DIR``: a folder with its own ``manifest.json`` (e.g. a fleet's extra models);
   its ``defaults`` may change the default model of a role;
3. the per-user folder of imported models (``edgeface models import``): ``$EDGEFACE_HOME/models``,
   else ``$XDG_DATA_HOME/edgeface/models``, else ``~/.local/share/edgeface/models``.

An overlay entry whose name is already taken (a bundled model, or an earlier overlay) is ignored with a
``UserWarning``: the bundled MTCNN and dlib models stay what the wheel shipped.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from .errors import ModelError, ModelIntegrityError

__all__ = [
    "ENV_HOME",
    "ENV_MODELS_DIR",
    "InputSpec",
    "Manifest",
    "ModelSpec",
    "default_model",
    "get_model",
    "list_models",
    "load_manifest",
    "models_dir",
    "user_models_dir",
    "verify_model",
]

ENV_MODELS_DIR = "EDGEFACE_MODELS_DIR"
ENV_HOME = "EDGEFACE_HOME"
# Where a model came from, shown by `edgeface models list`.
BUNDLED, EXTRA, IMPORTED = "bundled", "EDGEFACE_MODELS_DIR", "imported"
MANIFEST_NAME = "manifest.json"
SUPPORTED_SCHEMA = 1

_PACKAGE_MODELS = Path(__file__).resolve().parent / "models"
_SOURCE_TREE_MODELS = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as its (first) input, as recorded in the manifest.

    ``shape`` has ``None`` for every dimension the model accepts at any size (the batch, or
    H and W of a fully convolutional detector). ``size`` is the fixed ``(height, width)`` in
    pixels, or ``None`` when the model takes images of any size.
    """

    name: str
    shape: tuple[int | None, ...]
    layout: str
    color: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def size(self) -> tuple[int, int] | None:
        h_axis, w_axis = self.layout.index("H"), self.layout.index("W")
        height, width = self.shape[h_axis], self.shape[w_axis]
        if height is None or width is None:
            return None
        return (height, width)


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry, validated. Immutable: the alignment template is a read-only array.

    ``alignment`` is the landmark template (K x 2, pixels of the model input) when the manifest
    gives one; ``alignment_params`` keeps the whole alignment record (e.g. a dlib chip's padding)
    for aligners that are not template based. ``path`` is where the file should be; call
    ``verify_model`` (``Runner`` does) before trusting its contents.
    """

    name: str
    path: Path
    sha256: str
    role: str
    precision: str
    input: InputSpec
    license: str | None
    source: Mapping[str, Any] = field(compare=False)
    alignment: np.ndarray | None = field(default=None, compare=False, repr=False)
    alignment_params: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )
    embedding_dim: int | None = None
    thresholds: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}), compare=False
    )
    size_bytes: int | None = None
    # Detectors whose landmarks the thresholds are valid for (calibrated with, or measured to shift
    # them immaterially); manifests from before detectors were pluggable were calibrated with MTCNN.
    thresholds_detectors: tuple[str, ...] = ("mtcnn",)
    # Models whose embeddings are interchangeable (fp32 and its INT8 quantization) share a space;
    # galleries are bound to the space, not to one file.
    embedding_space: str = ""
    # BUNDLED, EXTRA or IMPORTED: which manifest the entry came from.
    origin: str = BUNDLED


def user_models_dir() -> Path:
    """The per-user folder of imported models: ``$EDGEFACE_HOME/models``, else the XDG data dir."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser() / "models"
    data = os.environ.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(data) / "edgeface" / "models"


def models_dir() -> Path:
    """The folder of the bundled ``manifest.json`` and model files (package, else source tree)."""
    for candidate in (_PACKAGE_MODELS, _SOURCE_TREE_MODELS):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    raise ModelError(
        f"No model manifest found (looked in {_PACKAGE_MODELS} and {_SOURCE_TREE_MODELS}). "
        f"The installation is incomplete: reinstall edgeface (pip install --force-reinstall edgeface)."
    )


def _overlay_dirs() -> list[tuple[str, Path]]:
    """(origin, folder) of every overlay manifest in force, in overlay order."""
    overlays = []
    extra = os.environ.get(ENV_MODELS_DIR)
    if extra:
        path = Path(extra).expanduser()
        if not (path / MANIFEST_NAME).is_file():
            raise ModelError(
                f"{ENV_MODELS_DIR}={extra!r} does not contain a {MANIFEST_NAME}; point it at a folder with "
                f"a manifest and its model files (they are added to the bundled models), or unset it."
            )
        overlays.append((EXTRA, path))
    user = user_models_dir()
    if (user / MANIFEST_NAME).is_file():
        overlays.append((IMPORTED, user))
    return overlays


@dataclass(frozen=True)
class Manifest:
    """The merged manifests: the bundled path, the validated entries, the default model per role,
    and ``imports``: the bundled calibration records of known third-party files that users import
    (keyed by importer, then by the source file's sha256; no weights)."""

    path: Path
    models: Mapping[str, ModelSpec]
    defaults: Mapping[str, str]
    imports: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Overlay entries left out because their name was taken: (name, manifest path, reason).
    shadowed: tuple[tuple[str, Path, str], ...] = ()


# Parsed manifests keyed by path; the stat signature makes an edited manifest reload.
_manifest_cache: dict[Path, tuple[tuple[int, int], tuple[dict[str, ModelSpec], dict[str, str], dict[str, Any]]]] = {}
# Files whose hash matched, keyed by (path, mtime_ns, size, expected sha256): hashing the
# embedder costs tens of milliseconds, which matters when pipelines are built repeatedly.
_verified: set[tuple[str, int, int, str]] = set()
_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


def load_manifest() -> Manifest:
    """The bundled manifest with every overlay added (see the module docstring); each manifest file is
    parsed once and re-read when it changes."""
    bundled = models_dir() / MANIFEST_NAME
    models, defaults, raw_imports = _read_cached(bundled, BUNDLED)
    merged, merged_defaults = dict(models), dict(defaults)
    shadowed = []
    for origin, folder in _overlay_dirs():
        path = folder / MANIFEST_NAME
        extra, extra_defaults, _ = _read_cached(path, origin)
        for name, spec in extra.items():
            if name in merged:
                reason = f"the name is taken by the {merged[name].origin} model in {merged[name].path.parent}"
                shadowed.append((name, path, reason))
                _warn_once(name, path, reason)
                continue
            merged[name] = spec
        if origin == EXTRA:
            merged_defaults.update(extra_defaults)
    for role, name in merged_defaults.items():
        if name not in merged:
            raise ModelError(f"The default {role!r} names unknown model {name!r} (check {ENV_MODELS_DIR}'s manifest).")
    return Manifest(bundled, MappingProxyType(merged), MappingProxyType(merged_defaults),
                    MappingProxyType(raw_imports), tuple(shadowed))


def _read_cached(path: Path, origin: str) -> tuple[dict[str, ModelSpec], dict[str, str], dict[str, Any]]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"Cannot read the model manifest {path}: {exc}") from exc
    signature = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _manifest_cache.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
    parsed = _parse_manifest(path, origin)
    with _lock:
        _manifest_cache[path] = (signature, parsed)
    return parsed


def _warn_once(name: str, path: Path, reason: str) -> None:
    with _lock:
        if (name, str(path)) in _warned:
            return
        _warned.add((name, str(path)))
    warnings.warn(f"Model {name!r} in {path} is ignored: {reason}. Rename it in that manifest.", UserWarning,
                  stacklevel=3)


def list_models() -> list[str]:
    """Names of the models in the manifest, sorted."""
    return sorted(load_manifest().models)


def get_model(name: str) -> ModelSpec:
    """The manifest entry called ``name``; ``ModelError`` listing the known names otherwise."""
    manifest = load_manifest()
    try:
        return manifest.models[name]
    except KeyError:
        available = ", ".join(sorted(manifest.models)) or "(none)"
        raise ModelError(
            f"Unknown model {name!r}. Available models in {manifest.path}: {available}."
        ) from None


def default_model(role: str) -> ModelSpec:
    """The model the manifest names as the default for ``role`` (e.g. "detector", "embedder")."""
    manifest = load_manifest()
    name = manifest.defaults.get(role)
    if name is None:
        roles = ", ".join(sorted(manifest.defaults)) or "(none)"
        raise ModelError(f"No default model for role {role!r} in {manifest.path}; roles with a default: {roles}.")
    return get_model(name)


def verify_model(spec: ModelSpec) -> Path:
    """Check that ``spec.path`` exists and has the manifest's sha256; return the path.

    Hashes once per process per (path, mtime, size): a file replaced or edited after the check
    gets a new signature and is hashed again on its next load.
    """
    path = spec.path
    try:
        stat = path.stat()
    except OSError as exc:
        if spec.source.get("not_in_wheel"):  # a bundled model kept out of the wheel on purpose
            raise ModelError(f"Model {spec.name!r}: {spec.source['not_in_wheel']}") from exc
        raise ModelError(
            f"Model {spec.name!r}: file {path} is missing or unreadable ({exc.strerror}). {_restore_hint(spec)}"
        ) from exc
    key = (str(path), stat.st_mtime_ns, stat.st_size, spec.sha256)
    with _lock:
        if key in _verified:
            return path
    actual = _sha256_of(path)
    if actual != spec.sha256:
        raise ModelIntegrityError(
            f"Model {spec.name!r}: file {path} does not match the manifest "
            f"(expected sha256 {spec.sha256}, got {actual}; {stat.st_size} bytes"
            + (f", expected {spec.size_bytes}" if spec.size_bytes is not None else "")
            + f"). The file is damaged or was replaced. {_restore_hint(spec)}"
        )
    with _lock:
        _verified.add(key)
    return path


def _restore_hint(spec: ModelSpec) -> str:
    if spec.origin == IMPORTED:
        return (f"Import it again: edgeface models remove {spec.name}, then edgeface models import "
                f"(your original file).")
    if spec.origin == EXTRA:
        return f"Restore the file in {spec.path.parent}, or update its sha256 in that folder's manifest."
    return "Reinstall edgeface (pip install --force-reinstall edgeface) to restore it."


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"Cannot read model file {path}: {exc}") from exc
    return digest.hexdigest()


# ----------------------------------------------------------------------------------- parsing


def _parse_manifest(path: Path, origin: str) -> tuple[dict[str, ModelSpec], dict[str, str], dict[str, Any]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"The model manifest {path} is unreadable or not valid JSON ({exc}). "
            f"Reinstall edgeface, or fix the file if you maintain it."
        ) from exc
    if not isinstance(raw, dict):
        raise ModelError(f"The model manifest {path} must be a JSON object.")
    if raw.get("schema") != SUPPORTED_SCHEMA:
        raise ModelError(
            f"The model manifest {path} has schema {raw.get('schema')!r}; this edgeface reads schema "
            f"{SUPPORTED_SCHEMA}. Use the edgeface version the models were packaged for."
        )
    entries = raw.get("models")
    if not isinstance(entries, dict):
        raise ModelError(f"The model manifest {path} has no 'models' object.")
    folder = path.parent
    models = {name: _parse_entry(path, folder, name, entry, origin) for name, entry in entries.items()}
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict) or not all(isinstance(v, str) for v in defaults.values()):
        raise ModelError(f"The model manifest {path}: 'defaults' must map roles to model names.")
    for role, name in defaults.items():
        if name not in models:
            raise ModelError(f"The model manifest {path}: default {role!r} names unknown model {name!r}.")
    imports = raw.get("imports", {})
    if not isinstance(imports, dict):
        raise ModelError(f"The model manifest {path}: 'imports' must be an object.")
    return models, dict(defaults), imports


def _parse_entry(manifest: Path, folder: Path, name: str, entry: Any, origin: str) -> ModelSpec:
    def bad(what: str) -> ModelError:
        return ModelError(f"The model manifest {manifest}: entry {name!r} {what}.")

    if not isinstance(entry, dict):
        raise bad("is not an object")
    for key in ("file", "sha256", "role", "precision", "input"):
        if key not in entry:
            raise bad(f"lacks the required field {key!r}")
    file = entry["file"]
    if not isinstance(file, str) or not file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise bad(f"has file {file!r}; it must be a relative path inside the models folder")
    sha = entry["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise bad(f"has sha256 {sha!r}; expected 64 lowercase hex digits")
    for key in ("role", "precision"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise bad(f"has an empty or non-string {key!r}")

    embedding_dim = entry.get("embedding_dim")
    if embedding_dim is not None and (not _is_int(embedding_dim) or embedding_dim <= 0):
        raise bad(f"has embedding_dim {embedding_dim!r}; expected a positive integer")
    thresholds = entry.get("thresholds", {})
    if not isinstance(thresholds, dict) or not all(_is_number(v) for v in thresholds.values()):
        raise bad("has 'thresholds' that are not a name -> number object")
    detectors = entry.get("thresholds_detectors", ["mtcnn"])
    if not isinstance(detectors, list) or not all(isinstance(d, str) and d for d in detectors):
        raise bad("has 'thresholds_detectors' that is not a list of detector names")
    source = entry.get("source", {})
    if not isinstance(source, dict):
        raise bad("has a 'source' that is not an object")
    license_ = entry.get("license")
    if license_ is not None and not isinstance(license_, str):
        raise bad("has a non-string 'license'")
    size_bytes = entry.get("bytes")
    if size_bytes is not None and (not _is_int(size_bytes) or size_bytes < 0):
        raise bad(f"has bytes {size_bytes!r}; expected a non-negative integer")
    template, alignment_params = _parse_alignment(entry.get("alignment"), bad)

    return ModelSpec(
        name=name,
        path=folder / file,
        sha256=sha,
        role=entry["role"],
        precision=entry["precision"],
        input=_parse_input(entry["input"], bad),
        license=license_,
        source=MappingProxyType(dict(source)),
        alignment=template,
        alignment_params=MappingProxyType(alignment_params),
        embedding_dim=embedding_dim,
        thresholds=MappingProxyType({k: float(v) for k, v in thresholds.items()}),
        size_bytes=size_bytes,
        thresholds_detectors=tuple(detectors),
        embedding_space=str(entry.get("embedding_space") or name),
        origin=origin,
    )


def _parse_input(raw: Any, bad: Callable[[str], ModelError]) -> InputSpec:
    if not isinstance(raw, dict):
        raise bad("has an 'input' that is not an object")
    shape_raw = raw.get("shape")
    if not isinstance(shape_raw, list) or not shape_raw:
        raise bad("has no input 'shape' list")
    # Converters write dynamic dims as null, -1/0 or a symbolic name ("N", "height").
    shape = tuple(d if _is_int(d) and d > 0 else None for d in shape_raw)
    layout = raw.get("layout")
    if not isinstance(layout, str) or len(layout) != len(shape) or "H" not in layout or "W" not in layout:
        raise bad(f"has input layout {layout!r}; expected a string like 'NCHW' with one letter per dimension")
    color = raw.get("color")
    if not isinstance(color, str) or not color:
        raise bad("has no input 'color' (e.g. 'RGB')")
    normalize = raw.get("normalize")
    if not isinstance(normalize, dict):
        raise bad("has no input 'normalize' object with 'mean' and 'std'")
    mean, std = normalize.get("mean"), normalize.get("std")
    channels = shape[layout.index("C")] if "C" in layout else None
    for label, values in (("mean", mean), ("std", std)):
        if not isinstance(values, list) or not values or not all(_is_number(v) for v in values):
            raise bad(f"has input normalize.{label} {values!r}; expected a list of numbers")
        if len(values) not in (1, channels):
            raise bad(f"has {len(values)} normalize.{label} values for {channels} channels")
    if any(float(s) == 0.0 for s in std):
        raise bad("has a zero in normalize.std")
    return InputSpec(
        name=str(raw.get("name", "")),
        shape=shape,
        layout=layout,
        color=color,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )


def _parse_alignment(raw: Any, bad: Callable[[str], ModelError]) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Accept either a bare list of points or an object with an optional 'template' list."""
    if raw is None:
        return None, {}
    if isinstance(raw, list):
        points, params = raw, {"template": raw}
    elif isinstance(raw, dict):
        points, params = raw.get("template"), dict(raw)
    else:
        raise bad("has an 'alignment' that is neither a list of points nor an object")
    if points is None:
        return None, params
    try:
        template = np.asarray(points, dtype=np.float32)
    except (TypeError, ValueError):
        raise bad("has an alignment template that is not a list of [x, y] points") from None
    if template.ndim != 2 or template.shape[1] != 2 or template.shape[0] < 2 or not np.isfinite(template).all():
        raise bad(f"has an alignment template of shape {template.shape}; expected K x 2 finite points, K >= 2")
    template.setflags(write=False)
    return template, params


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
