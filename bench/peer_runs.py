"""Running the peers (face_recognition, facenet-pytorch MTCNN, OpenCV Haar) in their own virtual
environment (bench/peers/setup.sh) and reading back their JSON, so every benchmark compares
edgeface and the peers on the same images in one run."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from common import CACHE, REPO

PEERS_DIR = REPO / "bench" / "peers"
PEER_PYTHON = PEERS_DIR / ".venv" / "bin" / "python"
DETECTORS = ("facenet_mtcnn", "face_recognition", "opencv_haar")


def peers_available() -> bool:
    return PEER_PYTHON.exists()


def run_peer(command: str, peer: str, images: Sequence[Path], threads: int = 1,
             extra: Sequence[str] = (), cache: bool = False) -> Optional[dict[str, Any]]:
    """One peer sub-command over ``images``; None (with a note) when the peers are not set up.

    ``cache=True`` (accuracy runs only: their output does not depend on machine load) reuses the
    JSON of an identical earlier call from bench/results/cache, since embedding LFW with dlib
    takes ~15 minutes. Timing runs are never cached.
    """
    if not peers_available():
        print(f"peers not installed ({PEER_PYTHON} missing): run bash bench/peers/setup.sh")
        return None
    listing_text = "\n".join(str(p) for p in images) + "\n"
    key = hashlib.sha1(json.dumps([command, peer, threads, list(extra), listing_text,
                                   (PEERS_DIR / "peer.py").read_text()]).encode()).hexdigest()[:16]
    cached = CACHE / f"peer-{command}-{peer}-{key}.json"
    if cache and cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "images.txt"
        listing.write_text(listing_text)
        out = Path(tmp) / "out.json"
        subprocess.run([str(PEER_PYTHON), str(PEERS_DIR / "peer.py"), command, "--peer", peer,
                        "--images", str(listing), "--threads", str(threads), "--out", str(out), *extra],
                       check=True)
        text = out.read_text()
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp_path = cached.with_suffix(".tmp")
        tmp_path.write_text(text)
        os.replace(tmp_path, cached)
    return json.loads(text)
