"""Nothing leaves the machine: no socket connection and no DNS lookup while importing edgeface,
analysing an image, or running the CLI (`info`, `detect`), with and without OpenVINO, and nothing is
written under ~/intel (OpenVINO's telemetry folder).

Each scenario runs in a fresh interpreter whose ``sitecustomize`` installs an audit hook that logs
every network-related audit event of that process and of the Python processes it starts (they
inherit PYTHONPATH), with HOME pointed at an empty folder and ``CI`` unset (OpenVINO's telemetry
is off when CI=true, which would hide the very thing tested).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import EXAMPLE

HOOK = textwrap.dedent('''
    import os, socket, sys
    _LOG = os.environ["EDGEFACE_NET_LOG"]
    _EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
               "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg", "socket.bind"}
    def _hook(event, args):
        if event not in _EVENTS:
            return
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if getattr(sock, "family", None) == socket.AF_UNIX:
                return
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} {event} {args[1:]!r}\\n")
    sys.addaudithook(_hook)
''')

# A meta-path finder that makes `import openvino` fail, as in the default (lean) install.
NO_OPENVINO = textwrap.dedent('''
    import sys
    class _NoOpenVINO:
        def find_spec(self, name, path=None, target=None):
            if name == "openvino" or name.startswith("openvino.") or name.startswith("openvino_telemetry"):
                raise ImportError("OpenVINO hidden by the test (lean install)")
            return None
    sys.meta_path.insert(0, _NoOpenVINO())
''')

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None

ANALYZE = f"import edgeface; fa = edgeface.FaceAnalyzer(); print(len(fa.analyze({str(EXAMPLE)!r})))"
SCENARIOS = {
    "import": ["-c", "import edgeface, edgeface.analyzer, edgeface.runtime"],
    "analyze": ["-c", ANALYZE],
    "info": ["-m", "edgeface.cli", "info", "--json"],
    "detect": ["-m", "edgeface.cli", "detect", str(EXAMPLE)],
    "analyze_openvino": ["-c", ANALYZE.replace("FaceAnalyzer()", "FaceAnalyzer(backend='openvino')")],
    "detect_openvino": ["-m", "edgeface.cli", "detect", "--backend", "openvino", str(EXAMPLE)],
}


def _run(tmp_path: Path, argv: list[str], hide_openvino: bool) -> tuple[subprocess.CompletedProcess, str, Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOOK + (NO_OPENVINO if hide_openvino else ""))
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL", "EDGEFACE_BACKEND")}
    env.update(HOME=str(home), EDGEFACE_NET_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300)
    return proc, log.read_text() if log.exists() else "", home


# Every scenario with OpenVINO installed, and those that do not ask for it in the lean install too.
RUNS = [pytest.param(name, hide, id=f"{name}-{'lean_install' if hide else 'with_openvino'}")
        for name in sorted(SCENARIOS) for hide in (True, False) if not (hide and name.endswith("_openvino"))]


@pytest.mark.parametrize("scenario,hide_openvino", RUNS)
def test_no_network_and_nothing_under_intel(tmp_path: Path, scenario: str, hide_openvino: bool) -> None:
    if not hide_openvino and not HAS_OPENVINO:
        pytest.skip("OpenVINO not installed (pip install 'edgeface[openvino]')")
    proc, network, home = _run(tmp_path, SCENARIOS[scenario], hide_openvino)
    assert proc.returncode == 0, proc.stderr
    assert network == "", f"network activity during {scenario}:\n{network}"
    assert not (home / "intel").exists(), f"{scenario} wrote {sorted(p.name for p in (home / 'intel').iterdir())}"


def test_the_hook_sees_a_dns_lookup(tmp_path: Path) -> None:
    """The guard itself works: a lookup that fails offline is still logged."""
    argv = ["-c", "import socket\ntry:\n    socket.getaddrinfo('example.invalid', 80)\nexcept OSError:\n    pass"]
    _, network, _ = _run(tmp_path, argv, hide_openvino=True)
    assert "socket.getaddrinfo" in network


@pytest.mark.skipif(not HAS_OPENVINO, reason="OpenVINO not installed (pip install 'edgeface[openvino]')")
def test_plain_openvino_import_is_caught(tmp_path: Path) -> None:
    """Without edgeface's opt-out, importing OpenVINO does reach for the network: the test can fail."""
    proc, network, home = _run(tmp_path, ["-c", "import openvino"], hide_openvino=False)
    assert proc.returncode == 0, proc.stderr
    assert network or (home / "intel").exists()
