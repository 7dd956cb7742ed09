"""Colab, reproduced offline: the chapters start and run where minissl is not installed.

A fresh virtual environment sees only what a Colab kernel has (torch, torchvision, matplotlib,
ipywidgets, the kernel, pip) and what minissl's wheel declares it needs; a chapter runs in it
from a clean kernel, and its own first cell installs minissl (a stand-in for ``%pip`` installs
the wheel built from this checkout instead of cloning the repository). See
``tools/colab_check.py``. Set ``MINISSL_COLAB_CHAPTER`` to run another chapter than the first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab_check  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CHAPTER = ROOT / os.environ.get("MINISSL_COLAB_CHAPTER", "chapters/01_paradigms.ipynb")
# What the first cell of a chapter prints (minissl.profiles.start): the profile, the device
# and the data in use.
STARTUP_LINES = (r"^minissl profile '(quick|full)'", r"^device: \w+", r"^data: \w+")


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    where = tmp_path_factory.mktemp("colab")
    wheel = colab_check.build_wheel(where / "dist")
    python = colab_check.make_colab_env(where, wheel)
    run = colab_check.run_notebook(CHAPTER, python, where, wheel)
    return {"where": where, "wheel": wheel, "python": python, "run": run}


def test_chapter_installs_minissl_and_runs_in_a_fresh_kernel(colab):
    run = colab["run"]
    url = colab_check.repository_url()
    assert run["pip_calls"] == [["install", "--quiet", f"minissl @ git+{url}@main"]], (
        "the first cell should install minissl from the repository in _config.yml, once"
    )
    installed = Path(run["report"]["minissl_file"]).resolve()
    assert installed.is_relative_to(colab["where"] / "venv"), (
        f"minissl was imported from {installed}, not from the wheel installed in the new env"
    )
    leaked = [name for name, seen in run["report"]["visible"].items() if seen]
    assert not leaked, f"the Colab-like environment can see {leaked} from the project's .venv"


def test_first_cell_prints_profile_device_and_data(colab):
    printed = colab["run"]["first_cell"]
    for pattern in STARTUP_LINES:
        assert re.search(pattern, printed, re.M), f"{pattern!r} not in the first cell's output:\n"\
                                                  f"{printed}"


def test_first_cell_does_nothing_when_minissl_is_present(colab):
    # The chapter's first cell ran a second time at the end, with minissl installed.
    assert len(colab["run"]["pip_calls"]) == 1, colab["run"]["pip_calls"]
    again = colab["run"]["first_cell_again"]
    assert "COLAB-CHECK pip" not in again
    assert re.search(STARTUP_LINES[0], again, re.M), again


def test_wheel_has_the_version_and_a_working_command_line(colab):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                        re.M).group(1)
    assert colab["wheel"].name.startswith(f"minissl-{version}-")
    assert colab["run"]["report"]["version"] == version
    cli = subprocess.run([str(colab["python"]), "-m", "minissl", "--help"], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 0, cli.stderr
    assert "train" in cli.stdout


_FIRST_CELLS = r'''
import contextlib, io, json, sys
import nbformat
from IPython.core.inputtransformer2 import TransformerManager

results = {}
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if c.cell_type == "code")
    code = TransformerManager().transform_cell(source)  # %pip -> a call, run only if missing
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, path, "exec"), {"__name__": "__main__"})
    results[path] = out.getvalue()
print(json.dumps(results))
'''


def test_every_chapter_starts_by_printing_profile_device_and_data():
    """Each chapter's first cell, run where minissl is installed: no install, three lines."""
    env = {**os.environ, "MINISSL_PROFILE": "quick", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _FIRST_CELLS, *map(str, CHAPTERS)],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    # get_ipython() exists only in a kernel: a first cell that tried to %pip install minissl
    # although it is installed fails here with a NameError.
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, text in printed.items():
        for pattern in STARTUP_LINES:
            assert re.search(pattern, text, re.M), f"{Path(path).name}: {pattern!r} not in\n{text}"

