"""tools/gpu_check.py: its dry run does all five steps on the CPU and writes a full report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.py"


@pytest.fixture(scope="module")
def kit():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-dry")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--runner", "namespace"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, json.loads((out / "report.json").read_text())


def test_dry_run_reports_every_step(dry_report):
    out, report = dry_report
    assert report["dry_run"] is True
    assert {"hardware", "bring", "tests", "chapters", "throughput", "simclr", "goals",
            "seconds"} <= set(report)
    for step in ("tests", "chapters", "throughput", "simclr"):
        assert "error" not in report[step], report[step].get("traceback")
    assert {"torch", "python", "cpus", "optional", "gpu"} <= set(report["hardware"])
    tests = report["tests"]
    assert tests["ok"] and tests["passed"] > 0 and tests["failed"] == 0
    chapters = report["chapters"]
    assert chapters["runner"] == "namespace" and chapters["all_ok"]
    (chapter,) = chapters["chapters"].values()
    assert chapter["ok"] and chapter["asserts"] == 2 and chapter["seconds"] >= 0
    rows = report["throughput"]["rows"]
    assert {"simclr", "byol"} <= {r["method"] for r in rows}
    for row in rows:
        assert "error" not in row, row
        assert row["images_per_s"] > 0 and {"precision", "channels_last", "compile"} <= set(row)
    ours = [r for r in rows if r["side"] == "minissl"]
    assert ours and all(0 <= r["input_share"] for r in ours)
    simclr = report["simclr"]
    assert simclr["points"] and {"seconds", "step", "knn", "linear"} <= set(simclr["points"][0])
    assert {"knn", "linear"} <= set(simclr["random_encoder"])
    goals = {g["goal"] for g in report["goals"]}
    assert any("chapter" in g for g in goals) and any("input pipeline" in g for g in goals)
    md = (out / "report.md").read_text()
    for heading in ("# GPU check (dry run on the CPU)", "## Tests marked gpu", "## Chapters",
                    "## Throughput", "## Fixed-time SimCLR"):
        assert heading in md


def test_magics_are_skipped_and_cell_magics_drop_the_cell(kit):
    assert kit.cell_code("x = 1\n%matplotlib inline\n  !ls") == "x = 1\npass\n  pass"
    assert kit.cell_code("%%time\nx = 1") is None


def test_namespace_runner_shares_names_and_stops_at_a_failed_assert(kit, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)  # the runner changes into the notebook's folder

    def notebook(*sources):
        cells = [{"cell_type": "code", "source": s, "metadata": {}, "outputs": []}
                 for s in sources]
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                                    "metadata": {}}))
        return path

    ok = kit.run_notebook_in_namespace(notebook("a = 2", ["b = a * 3\n", "print(b)"],
                                                "assert b == 6"))
    assert ok["ok"] and ok["cells_run"] == 3 and ok["asserts"] == 1
    bad = kit.run_notebook_in_namespace(notebook("a = 2", "assert a == 3, 'not three'",
                                                 "never = 1"))
    assert not bad["ok"] and bad["failed_assert"] and bad["cells_run"] == 1
    assert "cell 1: AssertionError: not three" in bad["error"]


def test_stand_ins_for_missing_ipython_and_tqdm(kit, monkeypatch):
    monkeypatch.setattr(kit, "_have", lambda name: name not in ("IPython", "tqdm"))
    names = ("IPython", "IPython.display", "tqdm", "tqdm.auto")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        assert kit.stub_missing_modules() == ["IPython", "tqdm"]
        from IPython.display import HTML, display
        from tqdm.auto import tqdm

        display(HTML("<b>x</b>"))
        bar = tqdm(total=3, desc="train")
        bar.update(1)
        bar.set_postfix(loss="1.0")
        bar.close()
        assert list(tqdm([1, 2])) == [1, 2]
    finally:  # the real modules back, for the tests that follow
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
