"""Running the peers (face_recognition, facenet-pytorch MTCNN, OpenCV Haar) in their own virtual
environment (bench/peers/setup.sh) and reading back their JSON, so every benchmark compares
edgeface and the peers on the same images in one run."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from common import REPO

PEERS_DIR = REPO / "bench" / "peers"
PEER_PYTHON = PEERS_DIR / ".venv" / "bin" / "python"
DETECTORS = ("facenet_mtcnn", "face_recognition", "opencv_haar")


def peers_available() -> bool:
    return PEER_PYTHON.exists()


def run_peer(command: str, peer: str, images: Sequence[Path], threads: int = 1,
             extra: Sequence[str] = ()) -> Optional[dict[str, Any]]:
    """One peer sub-command over ``images``; None (with a note) when the peers are not set up."""
    if not peers_available():
        print(f"peers not installed ({PEER_PYTHON} missing): run bash bench/peers/setup.sh")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "images.txt"
        listing.write_text("\n".join(str(p) for p in images) + "\n")
        out = Path(tmp) / "out.json"
        subprocess.run([str(PEER_PYTHON), str(PEERS_DIR / "peer.py"), command, "--peer", peer,
                        "--images", str(listing), "--threads", str(threads), "--out", str(out), *extra],
                       check=True)
        return json.loads(out.read_text())
