"""The README's Python examples run as written (issue 12 item 18), and the package ships ``py.typed``.

Each ```python block is executed on its own, in a fresh folder that has the repository's ``examples/``
(the blocks use relative paths, as a user in a fresh clone would), so files a block creates
(``people.db``) never land in the repository.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from conftest import REPO

BLOCKS = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(encoding="utf-8"), re.S | re.M)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    if "openvino" in code:
        pytest.importorskip("openvino", reason="this README block uses the OpenVINO backend")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__main__"})
    printed = out.getvalue()
    # What the comments of the blocks promise, where a block's output can be checked.
    if "fa.gallery.people()" in code:
        assert "eileen" in printed and "cameraman" in printed
        # The group photo holds the enrolled pixels, so similarities are near 1 (how near depends on the landmarks).
        assert re.search(r"\) eileen (0\.9\d+|1\.0)\n.*\) cameraman (0\.9\d+|1\.0)", printed), printed
    if "fa.verify(" in code:
        assert printed.startswith("True "), printed
        assert "same=False" in printed
    if "examples/missing.jpg" in code:
        assert printed.strip() == "skipped: image file not found: examples/missing.jpg"


def test_package_ships_py_typed():
    import edgeface
    marker = Path(edgeface.__file__).parent / "py.typed"
    assert marker.is_file(), "PEP 561 marker missing: type checkers would ignore edgeface's annotations"
