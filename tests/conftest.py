"""Shared fixtures: the bundled example image, the third-party evaluation data (optional), a shared analyzer."""
from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Tests see only the bundled models (and those a test imports itself), never the models a developer
# imported into their own per-user folder; subprocesses inherit this.
os.environ["EDGEFACE_HOME"] = tempfile.mkdtemp(prefix="edgeface-test-home-")
EXAMPLE = REPO / "examples" / "astronaut.jpg"
DATA = Path(os.environ.get("EDGEFACE_DATA", REPO.parent / "shared" / "data"))


def shared_data(sub: str) -> Path:
    """A folder of ../shared/data, or skip: that data may not be redistributed, so it is not in the repo."""
    path = DATA / sub
    if not path.exists():
        pytest.skip(f"evaluation data {path} not present (third-party data lives in ../shared/data)")
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import cv2
    image = cv2.imread(str(EXAMPLE), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {EXAMPLE}"
    return image


@pytest.fixture(scope="session")
def analyzer():
    from edgeface import FaceAnalyzer
    with FaceAnalyzer(threads=2) as fa:
        yield fa


def default_sigint() -> None:
    """preexec_fn for a child that a test interrupts with SIGINT. A shell starts background jobs with
    SIGINT ignored, and a Python started that way keeps ignoring it (no KeyboardInterrupt): restore the
    default so the test does not depend on how pytest itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
