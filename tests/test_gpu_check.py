"""tools/gpu_check.py: its dry run does all five steps on the CPU and writes a full report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
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
    assert report["seconds"] < 120, f"the dry run took {report['seconds']} s"
    budget = report["budget"]
    assert budget["seconds"] == 480 and budget["within"] and budget["total"] == report["seconds"]
    assert list(budget["steps"]) == ["tests", "chapters", "throughput", "simclr", "report"]
    assert sum(budget["steps"].values()) <= report["seconds"]
    assert all(budget["steps"][s] <= budget["allowed"][s] + 20 for s in budget["steps"])
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
    assert chapter["ok"] and chapter["asserts"] == 3 and chapter["seconds"] >= 0
    assert chapter["cells_run"] == 4  # the figure's cell too
    assert set(tests["files"]) == {"tests/test_gpu.py", "tests/test_augment.py"}
    assert tests["passed"] + tests["skipped"] == tests["selected"]
    rows = report["throughput"]["rows"]
    assert {"simclr", "byol"} <= {r["method"] for r in rows}
    for row in rows:
        assert "error" not in row, row
        assert row["images_per_s"] > 0 and {"precision", "channels_last", "compile"} <= set(row)
    ours = [r for r in rows if r["side"] == "minissl"]
    assert ours and all(0 <= r["input_share"] for r in ours)
    simclr = report["simclr"]
    from minissl import profiles

    P = profiles.current()  # the default profile's data, at its own image size
    assert simclr["dataset"].startswith(P.image_dataset) and simclr["image_size"] == P.image_size
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


def test_bring_lists_the_lightly_wheels_when_lightly_is_missing(kit, monkeypatch):
    monkeypatch.setattr(kit, "_have", lambda name: name not in ("lightly", "pytest"))
    notes = kit.bring()
    (lightly,) = [n for n in notes if n.startswith("lightly")]
    assert "lightly==1.6.0" in lightly and "lightning-utilities==0.15.3" in lightly
    assert "0.3 MB" in lightly and "--no-deps" in lightly
    for unwanted in ("hydra", "omegaconf", "antlr4", "pytorch-lightning", "torchmetrics"):
        assert unwanted not in lightly
    assert any(n.startswith("pytest") for n in notes)
    monkeypatch.setattr(kit, "lightly_missing", lambda: None)
    monkeypatch.setattr(kit, "_have", lambda name: True)
    assert kit.bring() == []


def test_step_1_runs_every_test_file_that_holds_gpu_tests(kit):
    import re

    marked = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
              if re.search(r"pytest\.mark\.gpu\b", p.read_text(encoding="utf-8"))}
    assert marked == set(kit.GPU_TEST_FILES)


# A notebook that draws, run by the namespace runner in a process where IPython cannot be
# imported: the runner's stand-in for IPython has to satisfy matplotlib.
_NO_IPYTHON = """
import importlib.abc, importlib.util, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("IPython", "ipykernel", "ipywidgets"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("gpu_check", sys.argv[1])
kit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kit)
print(json.dumps(kit.run_notebook_in_namespace(sys.argv[2])))
"""


def test_namespace_runner_draws_figures_without_ipython(tmp_path):
    cells = [
        "from IPython.display import display\nimport matplotlib.pyplot as plt",
        "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([0, 1], [1, 0])\n"
        "fig.canvas.draw()\ndisplay(fig)\nplt.show()",
        "assert len(ax.lines) == 1",
    ]
    path = tmp_path / "figure.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c, "metadata": {},
                                            "outputs": []} for c in cells],
                                "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", _NO_IPYTHON, str(SCRIPT), str(path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "IPython" in result["stubbed"]
    assert result["ok"], result.get("traceback")
    assert result["cells_run"] == 3 and result["asserts"] == 1


def test_budget_shares_and_what_a_spent_step_reports(kit, tmp_path):
    steps = ["tests", "chapters", "throughput", "simclr", "report"]
    first = kit.allowance(480, "tests", steps)
    assert first == round(480 * kit.SHARES["tests"], 1)
    # Shares of what is left: time an earlier step did not use goes to the later ones.
    assert kit.allowance(400, "chapters", steps[1:]) > 480 * kit.SHARES["chapters"]
    assert kit.allowance(0, "simclr", steps[3:]) == 0
    assert abs(sum(kit.SHARES.values()) - 1) < 1e-9
    # No time left: no chapter starts, every setting of step 3 is skipped.
    size = dict(kit.SIZES[True])
    chapters = kit.step_chapters(tmp_path, True, size, None, "namespace", time.time() - 1)
    assert chapters["chapters"]["dry-run-chapter"]["error"] == "skipped: budget"
    assert chapters["skipped_budget"] == ["dry-run-chapter"] and not chapters["all_ok"]
    import torch

    tp = kit.step_throughput(tmp_path, True, size, torch.device("cpu"), time.time() - 1)
    assert not tp["rows"] and tp["skipped_budget"]
    assert any(n.startswith("skipped: budget") for n in tp["notes"])


def test_a_chapter_still_running_at_the_deadline_is_stopped(kit, tmp_path, monkeypatch):
    sleeper = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                          "source": "import time\ntime.sleep(120)"}],
               "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    monkeypatch.setattr(kit, "DRY_NOTEBOOK", sleeper)
    t0 = time.time()
    result = kit.step_chapters(tmp_path, True, dict(kit.SIZES[True]), None, "namespace",
                               time.time() + 3)
    assert time.time() - t0 < 30
    chapter = result["chapters"]["dry-run-chapter"]
    assert chapter["error"].startswith("skipped: budget (stopped after")
    assert result["skipped_budget"] == ["dry-run-chapter"]


def test_the_dry_run_leaves_the_thread_count_to_the_environment():
    source = SCRIPT.read_text(encoding="utf-8")
    assert "set_num_threads" not in source


def test_each_chapter_starts_with_an_empty_cache_of_its_own(kit, tmp_path, monkeypatch):
    envs = {}

    class Finished:  # stands in for a chapter's process: writes its result, exits at once
        returncode = 0

        def __init__(self, cmd, env, **kwargs):
            envs[Path(cmd[cmd.index("--run-notebook") + 1]).stem] = env["MINISSL_CACHE"]
            Path(cmd[cmd.index("--result") + 1]).write_text(json.dumps({"ok": True,
                                                                         "seconds": 0.0}))

        def poll(self):
            return 0

    monkeypatch.setattr(kit.subprocess, "Popen", Finished)
    monkeypatch.setenv("MINISSL_CACHE", str(tmp_path / "an-old-cache"))
    result = kit.step_chapters(tmp_path, True, dict(kit.SIZES[True]), None, "namespace")
    assert result["all_ok"]
    cache = Path(envs["dry-run-chapter"])
    assert cache.name == "dry-run-chapter" and "an-old-cache" not in str(cache)
    assert not cache.parent.exists()  # the temporary folder is gone once the step is done
