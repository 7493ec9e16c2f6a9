"""Safe file writes for the files edgeface creates in user folders (imported models, their manifest)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ModelError


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; refuse a symlink planted where the folder should be."""
    if path.is_symlink():
        raise ModelError(f"{path} is a symbolic link; edgeface will not write models through it. Remove it and retry.")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise ModelError(f"cannot create the model folder {path}: {exc}") from exc
    if not path.is_dir():
        raise ModelError(f"{path} exists and is not a folder")
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a new temporary file in the target folder (O_EXCL via mkstemp), fsync, then rename over
    ``path``: readers see the old file or the new one, never half of one, and a symlink planted at
    ``path`` is replaced rather than followed."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; model files are read by whoever runs edgeface
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
