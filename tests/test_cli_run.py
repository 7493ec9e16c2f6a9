"""How the CLI runs (issue 12 items 4-7): detect does not embed, Ctrl-C keeps what is done, JSON Lines
stream, closed pipes end quietly, the progress bar is tqdm's with errors on their own lines."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys


from edgeface.cli import EXIT_BROKEN_PIPE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, main
from edgeface.detection import DEFAULT_DETECTOR, DETECTORS
from conftest import EXAMPLE, default_sigint


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def interrupt_on_call(monkeypatch, n: int) -> None:
    """Make the n-th detection raise KeyboardInterrupt, as Ctrl-C during that image would."""
    original = DETECTORS[DEFAULT_DETECTOR].detect
    calls = {"n": 0}

    def detect(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)
    monkeypatch.setattr(DETECTORS[DEFAULT_DETECTOR], "detect", detect)


def test_detect_never_loads_or_runs_the_embedder(capsys, monkeypatch):
    from edgeface import embedding

    def refuse(*args, **kwargs):
        raise AssertionError("detect must not use the embedder")
    monkeypatch.setattr(embedding.Embedder, "__init__", refuse)
    monkeypatch.setattr(embedding.Embedder, "embed", refuse)
    code, out, err = run(capsys, "detect", str(EXAMPLE), "--json")
    assert code == EXIT_OK, err
    assert len(json.loads(out)["images"][0]["faces"]) == 1


def test_ctrl_c_keeps_the_json_of_what_is_done(capsys, monkeypatch):
    interrupt_on_call(monkeypatch, 3)
    code, out, err = run(capsys, "detect", str(EXAMPLE), str(EXAMPLE), str(EXAMPLE), str(EXAMPLE), "--json")
    assert code == EXIT_INTERRUPTED
    doc = json.loads(out)
    assert doc["interrupted"] is True and len(doc["images"]) == 2
    assert all(len(image["faces"]) == 1 for image in doc["images"])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    (summary,) = err.strip().splitlines()
    assert summary.startswith("interrupted after 2/4 images")


def test_jsonl_streams_one_record_per_image(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 garbage")
    code, out, _ = run(capsys, "detect", str(EXAMPLE), str(bad), "--jsonl")
    assert code == EXIT_INPUT
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(EXAMPLE), str(bad)]
    assert records[0]["version"] == 1 and records[0]["command"] == "detect" and len(records[0]["faces"]) == 1
    assert "broken.jpg" in records[1]["error"]

    interrupt_on_call(monkeypatch, 2)
    code, out, err = run(capsys, "detect", str(EXAMPLE), str(EXAMPLE), str(EXAMPLE), "--jsonl")
    assert code == EXIT_INTERRUPTED and len(out.splitlines()) == 1 and "Traceback" not in err


def test_ctrl_c_while_loading_models_exits_130_quietly(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(DETECTORS[DEFAULT_DETECTOR], "__init__", interrupted)
    code, out, err = run(capsys, "detect", str(EXAMPLE))
    assert code == EXIT_INTERRUPTED and out == "" and err.strip() == "interrupted"


def edgeface_command(*argv: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from edgeface.cli import main; sys.exit(main())", *argv]


def test_real_sigint_exits_130_with_a_summary_and_the_records_so_far(tmp_path):
    proc = subprocess.Popen(edgeface_command("detect", *[str(EXAMPLE)] * 200, "--jsonl"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    first = proc.stdout.readline()  # the first image is done: interrupt the rest
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert json.loads(first)["path"] == str(EXAMPLE)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted after ")
    assert all(json.loads(line)["faces"] for line in rest.splitlines())  # whole lines only


def run_into_closed_pipe(argv: list[str]) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader is already gone, as in `edgeface ... | head` once head exits."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_info_into_a_closed_pipe_exits_quietly():
    done = run_into_closed_pipe(edgeface_command("info", "--json"))
    assert done.returncode == EXIT_BROKEN_PIPE and done.stderr == ""


def test_gallery_list_into_a_closed_pipe_exits_quietly(tmp_path):
    import numpy as np
    from edgeface import FaceAnalyzer
    with FaceAnalyzer() as fa, fa.open_gallery(tmp_path / "g.db") as gallery:
        rng = np.random.default_rng(0)
        for i in range(50):
            vector = rng.normal(size=(1, fa.embedder.dim)).astype(np.float32)
            gallery.enroll(f"person{i:02d}", vector / np.linalg.norm(vector))
    done = run_into_closed_pipe(edgeface_command("gallery", "list", str(tmp_path / "g.db")))
    assert done.returncode == EXIT_BROKEN_PIPE and "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_has_rate_and_eta_and_errors_on_their_own_lines(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 garbage")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(["detect", str(EXAMPLE), str(bad), str(EXAMPLE), "--json"])
    text = terminal.getvalue()
    assert code == EXIT_INPUT
    assert "img/s" in text and "<" in text  # tqdm: "[elapsed<remaining, rate img/s]"
    # Each line, as a terminal shows it (the part after the last carriage return):
    shown = [line.split("\r")[-1] for line in text.split("\n")]
    (error,) = [line for line in shown if "broken.jpg" in line]
    assert error.startswith("error: ") and "img/s" not in error
    assert shown[-2].startswith("2/3 images")  # the summary, on its own line after the bar


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys):
    code, _, err = run(capsys, "detect", str(EXAMPLE), str(EXAMPLE))
    assert code == EXIT_OK and "img/s" not in err and "\r" not in err
    assert err.strip().splitlines()[-1].startswith("2/2 images")


def test_ctrl_c_summary_is_not_glued_to_the_progress_bar(monkeypatch):
    interrupt_on_call(monkeypatch, 3)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    code = main(["detect", *[str(EXAMPLE)] * 5])
    shown = [line.split("\r")[-1] for line in terminal.getvalue().split("\n") if line]
    assert code == EXIT_INTERRUPTED
    assert shown[-1].startswith("interrupted after 2/5 images") and "img/s" in shown[-2]
