"""Shared pytest set-up: a non-interactive plotting backend, the quick profile for tests, and
``--save-executed DIR``, which keeps the notebooks that nbval executed.

nbval runs every chapter as a test; with ``--save-executed``, each chapter whose cells all
passed is also written to ``DIR`` with the outputs nbval received from the kernel.
``tools/execute_chapters.py`` then hands those notebooks to the book's execution cache instead
of running every chapter a second time for the HTML.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # in this process only: notebook kernels keep their inline backend
os.environ.setdefault("MINISSL_PROFILE", "quick")
# Unit tests train for real; the Makefile points the notebooks at the shared run cache.
os.environ.setdefault("MINISSL_CACHE", "off")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
from execute_chapters import package_hash  # noqa: E402  (one digest for both sides)

# notebook path -> {code cell number: (passed, outputs)}, filled as nbval runs cells
_RUNS: dict[str, dict[int, tuple[bool, list]]] = {}


def pytest_addoption(parser):
    parser.addoption("--save-executed", metavar="DIR", default=None,
                     help="write each notebook that nbval ran without a failure to DIR, "
                          "with its outputs (the book build reuses them)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not item.config.getoption("save_executed"):
        return
    outputs = getattr(item, "test_outputs", None)
    cell_num = getattr(item, "cell_num", None)
    if outputs is None or cell_num is None:  # not an nbval cell
        return
    report = outcome.get_result()
    _RUNS.setdefault(str(item.fspath), {})[cell_num] = (report.passed, list(outputs))


def pytest_sessionfinish(session):
    target = session.config.getoption("save_executed")
    if not target or not _RUNS:
        return
    import nbformat

    out_dir = Path(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = package_hash(ROOT / "minissl")
    for path, cells in _RUNS.items():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        saved = out_dir / Path(path).name
        if len(cells) != len(code) or not all(ok for ok, _ in cells.values()):
            saved.unlink(missing_ok=True)  # a failed or partial run must not reach the book
            continue
        for number, cell in enumerate(code):
            outputs = [nbformat.from_dict(dict(o)) for o in cells[number][1]]
            for o in outputs:
                if o.output_type == "execute_result":
                    o.execution_count = number + 1
            cell.outputs = outputs
            cell.execution_count = number + 1
        nb.metadata["minissl"] = {"package_sha256": digest, "executed_by": "nbval"}
        nbformat.validate(nb)
        nbformat.write(nb, saved)
