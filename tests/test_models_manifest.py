"""models/manifest.json and edgeface.models: every shipped model is present, intact, licensed for
redistribution and reproducible from a converter script; the loader validates manifests and
refuses tampered files."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeface import models
from edgeface.errors import ModelError, ModelIntegrityError

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "models" / "manifest.json"

# Licences that allow shipping the weights inside a wheel used commercially.
PERMISSIVE = {"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "BSL-1.0"}
REQUIRED = ("file", "sha256", "role", "precision", "input", "source", "license", "converter")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())["models"]


ENTRIES = _entries()
needs_models = pytest.mark.skipif(not ENTRIES, reason="no models registered in models/manifest.json yet")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.delenv(models.ENV_MODELS_DIR, raising=False)
    # An empty per-user folder: a developer's own imports must not change what these tests see.
    monkeypatch.setenv(models.ENV_HOME, str(tmp_path_factory.mktemp("edgeface_home")))


# ----------------------------------------------------------------- the shipped manifest


def test_manifest_is_well_formed() -> None:
    raw = json.loads(MANIFEST.read_text())
    assert raw["schema"] == 1
    assert isinstance(raw["models"], dict)
    for role, name in raw.get("defaults", {}).items():
        assert name in raw["models"], f"default {role} -> unknown model {name}"


@needs_models
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_has_required_fields(name: str) -> None:
    entry = ENTRIES[name]
    missing = [key for key in REQUIRED if key not in entry]
    assert not missing, f"{name} lacks {missing}"
    source = entry["source"]
    assert source.get("package") and source.get("version"), f"{name}: source needs package and version"


@needs_models
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_file_exists_and_matches_sha256(name: str) -> None:
    entry = ENTRIES[name]
    path = MANIFEST.parent / entry["file"]
    assert path.is_file(), f"{name}: {path} missing"
    assert _sha256(path) == entry["sha256"], f"{name}: {path.name} does not match its sha256"
    if "bytes" in entry:
        assert path.stat().st_size == entry["bytes"]


@needs_models
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_license_is_permissive(name: str) -> None:
    assert ENTRIES[name].get("license") in PERMISSIVE, f"{name}: licence {ENTRIES[name].get('license')!r}"


@needs_models
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_converter_script_exists(name: str) -> None:
    converter = str(ENTRIES[name].get("converter", "")).split()[0] if ENTRIES[name].get("converter") else ""
    tools = REPO / "tools"
    candidates = [REPO / converter, tools / converter]
    found = [c for c in candidates if converter and c.is_file() and c.resolve().parent == tools.resolve()]
    assert found, f"{name}: converter {converter!r} not found in tools/"


@needs_models
def test_loader_reads_the_shipped_manifest() -> None:
    for name in models.list_models():
        spec = models.get_model(name)
        if not spec.path.is_file() and spec.source.get("not_in_wheel"):  # installed from the wheel
            with pytest.raises(ModelError, match="not shipped in the wheel"):
                models.verify_model(spec)
            continue
        assert spec.path.is_file()
        assert models.verify_model(spec) == spec.path
    raw = json.loads(MANIFEST.read_text())
    for role in raw.get("defaults", {}):
        assert models.default_model(role).name == raw["defaults"][role]


@needs_models
def test_tampered_copy_of_a_shipped_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = min(ENTRIES, key=lambda n: ENTRIES[n].get("bytes", 0))  # the smallest, to keep it quick
    entry = ENTRIES[name]
    # An overlay cannot reuse a bundled name, so the copy is registered under a new one.
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": {"copy": entry}}))
    data = bytearray((MANIFEST.parent / entry["file"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / entry["file"]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setenv(models.ENV_MODELS_DIR, str(tmp_path))
    with pytest.raises(ModelIntegrityError) as info:
        models.verify_model(models.get_model("copy"))
    assert entry["sha256"] in str(info.value)
    assert hashlib.sha256(bytes(data)).hexdigest() in str(info.value)


# ------------------------------------------------------------- the loader, on a synthetic manifest


def _entry(file: str, sha: str, **extra: Any) -> dict[str, Any]:
    entry = {
        "file": file,
        "sha256": sha,
        "role": "embedder",
        "precision": "fp32",
        "input": {
            "name": "input",
            "shape": [None, 3, 112, 112],
            "layout": "NCHW",
            "color": "RGB",
            "normalize": {"mean": [127.5, 127.5, 127.5], "std": [128.0]},
        },
        "embedding_dim": 128,
        "thresholds": {"same_person": 0.6},
        "alignment": {"template": [[38.29, 51.69], [73.53, 51.50], [56.02, 71.73], [41.55, 92.36], [70.73, 92.20]]},
        "source": {"package": "example", "version": "1.0"},
        "license": "CC0-1.0",
    }
    entry.update(extra)
    return entry


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user models folder with one fake model file and a manifest that describes it."""
    blob = tmp_path / "emb.onnx"
    blob.write_bytes(os.urandom(4096))
    manifest = {
        "schema": 1,
        "models": {"emb": _entry("emb.onnx", _sha256(blob), bytes=4096)},
        "defaults": {"embedder": "emb"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv(models.ENV_MODELS_DIR, str(tmp_path))
    return tmp_path


def _write_manifest(folder: Path, manifest: Any) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest) if not isinstance(manifest, str) else manifest)


def test_source_tree_fallback_without_env() -> None:
    folder = models.models_dir()
    assert (folder / "manifest.json").is_file()
    assert folder in (Path(models.__file__).resolve().parent / "models", REPO / "models")


def test_env_overlay_and_spec_contents(model_dir: Path) -> None:
    assert models.models_dir() != model_dir  # the bundled folder stays the bundled folder
    assert "emb" in models.list_models() and set(ENTRIES) <= set(models.list_models())
    spec = models.get_model("emb")
    assert spec.origin == models.EXTRA
    assert spec.path == model_dir / "emb.onnx"
    assert spec.role == "embedder" and spec.precision == "fp32" and spec.embedding_dim == 128
    assert spec.input.size == (112, 112)
    assert spec.input.shape == (None, 3, 112, 112)
    assert spec.input.mean == (127.5, 127.5, 127.5) and spec.input.std == (128.0,)
    assert spec.alignment is not None and spec.alignment.shape == (5, 2) and spec.alignment.dtype == np.float32
    assert spec.thresholds == {"same_person": 0.6}
    assert spec.license == "CC0-1.0" and spec.source["package"] == "example"
    assert models.default_model("embedder") == spec


def test_spec_is_immutable(model_dir: Path) -> None:
    spec = models.get_model("emb")
    with pytest.raises(AttributeError):
        spec.role = "detector"  # type: ignore[misc]
    with pytest.raises(ValueError):
        spec.alignment[0, 0] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.thresholds["same_person"] = 0.1  # type: ignore[index]


def test_dynamic_input_has_no_size(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["models"]["emb"]["input"]["shape"] = ["N", 3, -1, None]
    _write_manifest(model_dir, manifest)
    spec = models.get_model("emb")
    assert spec.input.shape == (None, 3, None, None) and spec.input.size is None


def test_unknown_model_lists_available(model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"Unknown model 'nope'.*emb"):
        models.get_model("nope")
    with pytest.raises(ModelError, match="No default model for role 'detector'.*embedder"):
        models.default_model("detector")


def test_overlay_cannot_replace_a_bundled_model(model_dir: Path) -> None:
    """EDGEFACE_MODELS_DIR used to replace the bundled manifest (MTCNN disappeared); now it only adds."""
    bundled = sorted(ENTRIES)[0]
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["models"][bundled] = manifest["models"]["emb"]
    _write_manifest(model_dir, manifest)
    with pytest.warns(UserWarning, match=f"{bundled}.*taken by the bundled model"):
        spec = models.get_model(bundled)
    assert spec.origin == models.BUNDLED and spec.sha256 == ENTRIES[bundled]["sha256"]
    assert [s[0] for s in models.load_manifest().shadowed] == [bundled]


def test_env_dir_without_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.ENV_MODELS_DIR, str(tmp_path))
    with pytest.raises(ModelError, match=models.ENV_MODELS_DIR):
        models.list_models()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"schema": 2, "models": {}}, "schema 2"),
        ({"schema": 1}, "no 'models'"),
        ({"schema": 1, "models": {"m": {"file": "m.onnx"}}}, "lacks the required field 'sha256'"),
        ({"schema": 1, "models": {"m": _entry("m.onnx", "abc")}}, "64 lowercase hex"),
        ({"schema": 1, "models": {"m": _entry("../m.onnx", "0" * 64)}}, "relative path inside"),
        ({"schema": 1, "models": {"m": _entry("m.onnx", "0" * 64, embedding_dim=-3)}}, "embedding_dim"),
        ({"schema": 1, "models": {"m": _entry("m.onnx", "0" * 64, alignment=[[1, 2, 3]])}}, "K x 2"),
        ({"schema": 1, "models": {}, "defaults": {"embedder": "ghost"}}, "unknown model 'ghost'"),
    ],
)
def test_corrupt_manifest_is_a_model_error(model_dir: Path, content: Any, message: str) -> None:
    _write_manifest(model_dir, content)
    with pytest.raises(ModelError, match=message):
        models.list_models()


def test_bad_normalize_is_rejected(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["models"]["emb"]["input"]["normalize"]["std"] = [1.0, 0.0, 1.0]
    _write_manifest(model_dir, manifest)
    with pytest.raises(ModelError, match="zero in normalize.std"):
        models.list_models()


def test_tampered_file_raises_integrity_error(model_dir: Path) -> None:
    spec = models.get_model("emb")
    data = bytearray((model_dir / "emb.onnx").read_bytes())
    data[100] ^= 0xFF
    (model_dir / "emb.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as info:
        models.verify_model(spec)
    message = str(info.value)
    assert "emb.onnx" in message
    assert spec.sha256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert "Restore the file" in message


def test_tampered_file_is_refused_by_runner(model_dir: Path) -> None:
    from edgeface.runtime import Runner

    (model_dir / "emb.onnx").write_bytes(b"swapped")
    with pytest.raises(ModelIntegrityError):
        Runner(models.get_model("emb"))


def test_missing_model_file(model_dir: Path) -> None:
    (model_dir / "emb.onnx").unlink()
    with pytest.raises(ModelError, match="missing.*Restore the file"):
        models.verify_model(models.get_model("emb"))


def test_hash_is_checked_once_until_the_file_changes(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = models._sha256_of

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(models, "_sha256_of", counting)
    spec = models.get_model("emb")
    models.verify_model(spec)
    models.verify_model(spec)
    assert len(calls) == 1
    # Same size, new content and mtime: must be hashed again (and fail).
    path = model_dir / "emb.onnx"
    stat = path.stat()
    path.write_bytes(os.urandom(4096))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelIntegrityError):
        models.verify_model(spec)
    assert len(calls) == 2


def test_edited_manifest_is_reloaded(model_dir: Path) -> None:
    assert "emb2" not in models.list_models()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["models"]["emb2"] = manifest["models"]["emb"]
    _write_manifest(model_dir, manifest)
    path = model_dir / "manifest.json"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert {"emb", "emb2"} <= set(models.list_models())
