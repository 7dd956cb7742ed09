"""One command that checks everything that needs a GPU, and reports the figures.

Run it from a checkout on a CUDA machine, without installing the package (its pinned torch
would replace the machine's own)::

    PYTHONPATH=. python3 tools/gpu_check.py --out gpu-report
    python3 tools/gpu_check.py --dry-run --out /tmp/gpu-dry   # the same five steps, tiny, on a CPU

It needs torch, torchvision, numpy, matplotlib and scikit-learn (pytest for step 1); jupyter,
nbval, ipywidgets, lightly and tqdm are optional. ``--budget SECONDS`` (default 480: the whole
kit in 8 minutes) is shared out between the steps; each step is capped at its share (time an
earlier step leaves unused goes to the later ones), and a step that runs out of its share
reports what it finished and marks the rest "skipped: budget":

1. **tests**: ``pytest -m gpu`` over the test files that hold ``gpu``-marked tests
   (``GPU_TEST_FILES``: every method under each precision, ``fit`` with auto/bf16/fp16 and
   ``compile``, exact resume, data on the device, augmentations on CUDA images);
2. **chapters**: every chapter of ``chapters/`` in the default profile, each in its own
   process with an empty result cache of its own, with its time and whether every assert held;
   with nbclient and a kernel present they run in Jupyter, otherwise in a small runner that
   executes the code cells in one namespace (IPython magics are skipped);
3. **throughput**: SimCLR and BYOL steps on a CIFAR ResNet-18, 32x32, batch 512, on images
   generated in memory: fp32/bf16/fp16, channels_last, ``compile`` off and on; images/s, the
   input pipeline's share of the step and the peak memory; against the same step built from
   lightly (its per-image transforms in a ``DataLoader`` with worker processes) when lightly
   is importable;
4. **simclr**: a fixed-time SimCLR run on a large generated set of the book's default data
   (the default profile's data set at its image size, through ``P.load``), with kNN and
   linear-probe accuracy against elapsed training time;
5. **report**: ``report.md`` and ``report.json`` in ``--out`` (hardware, versions, every figure,
   each step's seconds and the total); both are rewritten after every step, so a run cut short
   still leaves its figures.

The comparison in step 3 needs two small wheels, lightly 1.6.0 and lightning-utilities 0.15.3
(about 0.3 MB together): the parts of lightly used here (``lightly.loss``,
``lightly.transforms``, ``lightly.models.modules``, ``lightly.models.utils`` and
``lightly.utils.scheduler``) import nothing else that torch, torchvision and matplotlib do not
already bring (numpy, Pillow, packaging, typing-extensions). Put them in a folder and ``pip
install --no-deps --no-index --find-links FOLDER lightly==1.6.0 lightning-utilities==0.15.3``
(``--no-deps`` so that torch stays the machine's own), or unpack them onto ``PYTHONPATH``.
Nothing else is needed: without nbclient the chapters run in the built-in runner, and without
ipywidgets the widgets draw their static fallback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from the source tree, not from an installed copy
    sys.path.insert(0, str(ROOT))

OPTIONAL = ("nbclient", "nbformat", "ipykernel", "nbval", "ipywidgets", "lightly", "tqdm",
            "pytest")
# What step 3's comparison imports from lightly needs these two wheels and nothing more (its
# declared dependencies, hydra-core and pytorch-lightning among them, are not imported by
# those modules; hydra-core would also register a pytest plugin that breaks step 1).
LIGHTLY_WHEELS = ("lightly==1.6.0", "lightning-utilities==0.15.3")
LIGHTLY_WHEELS_MB = 0.3  # 284 kB + 32 kB
LIGHTLY_MODULES = ("lightly.loss", "lightly.transforms", "lightly.models.modules",
                   "lightly.models.utils", "lightly.utils.scheduler")
# The test files that hold tests marked ``gpu``; step 1 runs ``pytest -m gpu`` over them.
GPU_TEST_FILES = ("tests/test_gpu.py", "tests/test_augment.py")
T4_MEMORY_GIB = 15.0  # Colab's T4: what the default batch sizes must fit

# Sizes of each step: the real check, and the dry run (tiny, on the CPU).
SIZES = {
    False: {"test_timeout": 200, "chapter_timeout": 240, "chapter_jobs": 4, "batch": 512,
            "width": 64, "steps": 12, "warmup": 3, "compile_warmup": 4, "workers": 8,
            "simclr_seconds": 90, "simclr_train": 50_000, "simclr_test": 2_000,
            "simclr_evals": 5},
    True: {"test_timeout": 100, "chapter_timeout": 60, "chapter_jobs": 1, "batch": 8,
           "width": 8, "steps": 2, "warmup": 1, "compile_warmup": 1, "workers": 1,
           "simclr_seconds": 4, "simclr_train": 256, "simclr_test": 128, "simclr_evals": 2},
}


# ----------------------------------------------------------------------------- helpers
def _have(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra or {})
    return env


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def hardware() -> dict:
    """The machine, the library versions and which optional packages are importable."""
    import torch

    info = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available() else None,
        "gpu": None, "optional": {m: _have(m) for m in OPTIONAL},
    }
    with contextlib.suppress(ImportError):
        import torchvision

        info["torchvision"] = torchvision.__version__
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}",
                       "memory_gib": round(p.total_memory / 2**30, 1),
                       "count": torch.cuda.device_count()}
    return info


def lightly_missing() -> str | None:
    """``None`` when the parts of lightly that step 3 uses import, else why they do not."""
    import importlib

    if not _have("lightly"):
        return "lightly is not installed"
    for name in LIGHTLY_MODULES:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure means no comparison
            return f"{name} does not import: {type(err).__name__}: {str(err)[:200]}"
    return None


def bring() -> list[str]:
    """What to bring to this machine for the optional parts, in a sentence each."""
    notes = []
    missing = lightly_missing()
    if missing:
        notes.append(f"lightly (step 3's comparison; {missing}): bring the wheels "
                     + " and ".join(LIGHTLY_WHEELS) + f" (about {LIGHTLY_WHEELS_MB} MB in all)"
                     " and install them with pip install --no-deps --no-index --find-links "
                     "FOLDER " + " ".join(LIGHTLY_WHEELS))
    if not _have("pytest"):
        notes.append("pytest (step 1): bring the wheels of pytest, pluggy, iniconfig and "
                     "packaging (well under 1 MB)")
    return notes


# ------------------------------------------------------------------------ step 1: tests
def step_tests(out: Path, dry: bool, size: dict, deadline: float | None = None) -> dict:
    """``pytest -m gpu`` over ``GPU_TEST_FILES``; counts and the names of failures.

    pytest runs with plugin autoloading off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``): a plugin
    that some package on the machine registers cannot break the run, and these tests need
    none (no ``-n``, and hypothesis works without its plugin). When the step's time is spent,
    pytest is interrupted; it still writes its report of the tests it finished, and the rest
    are counted as "skipped: budget".
    """
    import signal

    if not _have("pytest"):
        return {"not_run": "pytest is not installed"}
    xml = out / "gpu-tests.xml"
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", *(str(ROOT / f) for f in GPU_TEST_FILES),
           "-p", "no:cacheprovider", f"--junitxml={xml}", "-o", "addopts="]
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if dry:  # the same tests on the CPU, a few methods only
        env["MINISSL_GPU_TESTS_ON_CPU"] = "1"
        cmd += ["-k", "not training_step_under or simclr or byol"]
    limit = size["test_timeout"] if deadline is None else max(
        1.0, min(size["test_timeout"], deadline - time.time()))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    stopped = False
    try:
        text, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:  # out of time: stop pytest the way Ctrl-C does
        stopped = True
        proc.send_signal(signal.SIGINT)
        try:
            text, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
    rc = None if stopped else proc.returncode
    result = {"seconds": round(time.perf_counter() - t0, 1), "returncode": rc,
              "files": list(GPU_TEST_FILES), "tail": (text or "")[-3000:]}
    cases = []
    if xml.exists():
        import xml.etree.ElementTree as ET

        cases = list(ET.parse(xml).getroot().iter("testcase"))
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        failed = []
        for case in cases:
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                counts["failed"] += 1
                failed.append(case.get("name"))
            elif "skipped" in kinds:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
        result.update(counts, failures=failed)
    selected = _selected(text or "")
    result["selected"] = selected
    result["ok"] = rc == 0
    if stopped:
        ran = len(cases)
        if selected and ran >= selected:  # every test finished; pytest was wrapping up
            result["ok"] = result.get("failed", 0) == 0
        else:
            if selected and ran:
                result["skipped_budget"] = selected - ran
                rest = f"{selected - ran} of {selected} tests"
            else:
                rest = "the tests after the last one it finished" if ran else "every test"
            result["budget"] = (f"skipped: budget (pytest stopped after {limit:.0f} s; "
                                f"{rest} not run)")
    return result


def _selected(text: str) -> int | None:
    """How many tests pytest selected, from its ``collected N items / M deselected`` line."""
    found = re.search(r"collected (\d+) items?(?: / (\d+) deselected)?(?: / (\d+) selected)?",
                      text)
    if not found:
        return None
    collected, deselected, selected = found.groups()
    if selected is not None:
        return int(selected)
    return int(collected) - int(deselected or 0)


# --------------------------------------------------------------------- step 2: chapters
_MAGIC = re.compile(r"^(\s*)[%!].*$")


def cell_code(source: str) -> str | None:
    """A code cell's source as plain Python: IPython line magics become ``pass``.

    A cell magic (``%%...`` on the first line) gives ``None``: such a cell is skipped.

    Example:
        >>> print(cell_code("try:\\n    import x\\nexcept ImportError:\\n    %pip install x"))
        try:
            import x
        except ImportError:
            pass
    """
    if source.lstrip().startswith("%%"):
        return None
    return "\n".join(_MAGIC.sub(r"\1pass", line) for line in source.splitlines())


def run_notebook_in_namespace(path: Path) -> dict:
    """Execute a notebook's code cells in one namespace, as a kernel would, and time it.

    Returns ``{"ok", "seconds", "cells", "asserts", "error", "failed_assert"}``; execution
    stops at the first cell that raises.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    namespace: dict = {"__name__": "__main__", "display": _display}
    result = {"ok": True, "cells": len(cells), "cells_run": 0, "asserts": 0, "error": None,
              "failed_assert": False, "runner": "namespace", "stubbed": stub_missing_modules()}
    t0 = time.perf_counter()
    os.chdir(Path(path).parent)  # a chapter's relative paths are from its folder
    for i, cell in enumerate(cells):
        src = cell.get("source", "")
        code = cell_code("".join(src) if isinstance(src, list) else src)
        if code is None:
            continue
        result["asserts"] += len(re.findall(r"^\s*assert\b", code, flags=re.M))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"{Path(path).name}[cell {i}]", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001 - a chapter's failure is a result
            result.update(ok=False, failed_assert=isinstance(err, AssertionError),
                          error=f"cell {i}: {type(err).__name__}: {str(err)[:300]}",
                          traceback=traceback.format_exc()[-2000:])
            break
        finally:
            plt.close("all")
        result["cells_run"] += 1
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def _display(*objects, **kwargs) -> None:
    """IPython's ``display`` for the namespace runner: nothing to show, nothing to do."""


class _Quiet:
    """Stands in for a tqdm bar or an IPython display object: accepts anything, shows nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def __iter__(self):
        return iter(self.args[0] if self.args else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def stub_missing_modules() -> list[str]:
    """Put small stand-ins for IPython and tqdm into ``sys.modules`` when they are missing.

    Chapters call ``display`` and show progress bars; without a kernel neither has anywhere
    to go, and a machine without those packages should still run every chapter.
    """
    import types

    added = []
    if not _have("IPython"):
        ipython = types.ModuleType("IPython")
        ipython.get_ipython = lambda: None
        # matplotlib reads IPython's version when it makes a figure (whether IPython older than
        # 8.24 needs its backend2gui fix); a recent version says no fix is needed.
        ipython.version_info = (9, 0, 0, "")
        ipython.__version__ = "9.0.0"
        ipython.display = types.ModuleType("IPython.display")
        ipython.display.display = _display
        for name in ("HTML", "Markdown", "Image", "Math", "SVG", "Javascript"):
            setattr(ipython.display, name, _Quiet)
        sys.modules.update({"IPython": ipython, "IPython.display": ipython.display})
        added.append("IPython")
    if not _have("tqdm"):
        tqdm = types.ModuleType("tqdm")
        tqdm.tqdm = _Quiet
        tqdm.auto = types.ModuleType("tqdm.auto")
        tqdm.auto.tqdm = _Quiet
        sys.modules.update({"tqdm": tqdm, "tqdm.auto": tqdm.auto})
        added.append("tqdm")
    return added


def run_notebook_in_jupyter(path: Path, timeout: int) -> dict:
    """Execute a notebook with nbclient in a real kernel (when nbclient is installed)."""
    import nbclient
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    asserts = sum(len(re.findall(r"^\s*assert\b", c.source, flags=re.M))
                  for c in nb.cells if c.cell_type == "code")
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(Path(path).parent)}})
    result = {"ok": True, "cells": sum(c.cell_type == "code" for c in nb.cells),
              "asserts": asserts, "error": None, "failed_assert": False, "runner": "nbclient"}
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        result.update(ok=False, failed_assert=err.ename == "AssertionError",
                      error=f"{err.ename}: {str(err.evalue)[:300]}")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def _jupyter_ready() -> bool:
    if not (_have("nbclient") and _have("nbformat") and _have("ipykernel")):
        return False
    with contextlib.suppress(Exception):
        from jupyter_client.kernelspec import KernelSpecManager

        return "python3" in KernelSpecManager().find_kernel_specs()
    return False


DRY_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A tiny chapter"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["try:\n", "    import minissl\n", "except ImportError:\n",
                    "    %pip install minissl\n", "import torch\n",
                    "from minissl.nn import ConvNet\n", "P = minissl.profiles.start()\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["net = ConvNet(in_channels=3, width=4)\n",
                    "features = net(torch.rand(2, 3, 8, 8))\n", "features.shape"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["assert features.shape == (2, net.feature_dim)\n",
                    "assert P.name in ('quick', 'full')"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["%matplotlib inline\n", "import matplotlib.pyplot as plt\n",
                    "fig, ax = plt.subplots(figsize=(2, 2))\n",
                    "ax.plot(features[0].detach().numpy())\n", "fig.canvas.draw()\n",
                    "display(fig)\n", "assert len(ax.lines) == 1"]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def step_chapters(out: Path, dry: bool, size: dict, chapters: list[str] | None,
                  runner: str, deadline: float | None = None) -> dict:
    """Every chapter in its own process (``chapter_jobs`` at a time), timed, asserts recorded.

    Each chapter gets an empty result cache of its own (``MINISSL_CACHE`` in a fresh
    temporary folder), so its time is that of a first run, never a cache hit of an earlier
    one. No chapter starts after ``deadline``; one still running then is stopped; both are
    reported as "skipped: budget".
    """
    import shutil
    import tempfile

    if dry:
        path = out / "dry-run-chapter.ipynb"
        path.write_text(json.dumps(DRY_NOTEBOOK, indent=1))
        paths = [path]
    else:
        paths = sorted((ROOT / "chapters").glob("*.ipynb"))
        if chapters:
            paths = [p for p in paths if any(p.stem.startswith(c) for c in chapters)]
    use_jupyter = runner == "jupyter" or (runner == "auto" and _jupyter_ready())
    deadline = float("inf") if deadline is None else deadline
    cache_root = Path(tempfile.mkdtemp(prefix="minissl-gpu-check-cache-"))
    pending = list(paths)
    running: list[tuple[Path, subprocess.Popen, float, Path, float]] = []
    results: dict[str, dict] = {}
    try:
        while pending or running:
            while pending and len(running) < size["chapter_jobs"]:
                left = deadline - time.time()
                if left < 1:
                    break
                path = pending.pop(0)
                timeout = int(max(1, min(size["chapter_timeout"], left)))
                res = out / f"chapter-{path.stem}.json"
                res.unlink(missing_ok=True)
                cmd = [sys.executable, str(Path(__file__).resolve()), "--run-notebook",
                       str(path), "--result", str(res), "--timeout", str(timeout)]
                if use_jupyter:
                    cmd.append("--jupyter")
                env = _env({"MINISSL_CACHE": str(cache_root / path.stem)})
                log = open(out / f"chapter-{path.stem}.log", "w")  # noqa: SIM115 - closed below
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                # Killed after its timeout (and half a minute to start), or at the deadline.
                stop_at = min(time.time() + timeout + 30, deadline)
                running.append((path, proc, time.perf_counter(), res, stop_at))
                log.close()
            if not running:  # out of time before the next chapter could start
                break
            time.sleep(0.2)
            for item in list(running):
                path, proc, started, res, stop_at = item
                elapsed = time.perf_counter() - started
                if proc.poll() is None and time.time() < stop_at:
                    continue
                if proc.poll() is None:
                    _kill_group(proc)
                    error = (f"skipped: budget (stopped after {elapsed:.0f} s)"
                             if stop_at == deadline else f"timed out after {elapsed:.0f} s")
                    results[path.stem] = {"ok": False, "seconds": round(elapsed, 1),
                                          "error": error}
                elif res.exists():
                    results[path.stem] = json.loads(res.read_text())
                else:
                    results[path.stem] = {"ok": False, "seconds": round(elapsed, 1),
                                          "error": f"the runner exited with {proc.returncode}; "
                                                   f"see chapter-{path.stem}.log"}
                running.remove(item)
    finally:
        for _path, proc, *_ in running:  # only when something above raised
            _kill_group(proc)
        shutil.rmtree(cache_root, ignore_errors=True)
    for path in pending:
        results[path.stem] = {"ok": False, "seconds": None, "error": "skipped: budget"}
    results = {p.stem: results[p.stem] for p in paths if p.stem in results}
    times = [r["seconds"] for r in results.values() if r.get("seconds") is not None]
    return {"runner": "nbclient" if use_jupyter else "namespace", "jobs": size["chapter_jobs"],
            "profile": os.environ.get("MINISSL_PROFILE", "default"),
            "chapters": results, "all_ok": all(r["ok"] for r in results.values()),
            "skipped_budget": [n for n, r in results.items()
                               if str(r.get("error", "")).startswith("skipped: budget")],
            "slowest_seconds": max(times) if times else None}


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a chapter's process and what it started (a Jupyter kernel): its process group."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
    proc.wait()


# ------------------------------------------------------------------- step 3: throughput
def _images(n: int, seed: int = 0):
    """``n`` random RGB images, uint8 (N, 32, 32, 3) pixels and float (N, 3, 32, 32) in [0, 1]."""
    import numpy as np
    import torch

    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    return pixels, torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255).contiguous()


def _minissl_step(method: str, width: int, batch: int, images, device, precision: str,
                  channels_last: bool, compile_: bool, steps: int, warmup: int) -> dict:
    """images/s of minissl's end-to-end step (``fit`` on an in-memory set), its input
    pipeline's share and the peak memory."""
    import torch

    from minissl.augment import BYOLAugment, SimCLRAugment, TwoViews
    from minissl.data import ImageDataset
    from minissl.methods.byol import BYOL
    from minissl.methods.simclr import SimCLR
    from minissl.nn import backbone
    from minissl.train import TrainConfig, fit

    torch.manual_seed(0)
    encoder = backbone("resnet18", width=width)
    if method == "simclr":
        model = SimCLR(encoder, TwoViews(SimCLRAugment(32)), proj_dim=128, temperature=0.5)
    else:
        model = BYOL(encoder, BYOLAugment(32), proj_dim=128, hidden_dim=512)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = ImageDataset(images, torch.zeros(len(images), dtype=torch.long), ["none"], "random")
    stamps: list[float] = []

    def stamp(_m, _step):
        _sync(device)
        stamps.append(time.perf_counter())

    _reset_peak(device)
    total = warmup + steps
    fit(model, data, TrainConfig(max_steps=total, batch_size=batch, lr=1e-3, progress=False,
                                 device=str(device), precision=precision, compile=compile_,
                                 eval_every=1, callback=stamp, log_every=total))
    step_s = (stamps[-1] - stamps[warmup - 1]) / steps
    peak = _peak_gib(device)
    # The input pipeline alone: a slice of the on-device set and the views, as fit makes them.
    on_device = images.to(device)
    aug = model.augment
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = on_device[torch.randperm(len(on_device), device=device)[:batch]]
        aug(x)
    _sync(device)
    data_s = (time.perf_counter() - t0) / steps
    return {"images_per_s": round(batch / step_s, 1), "step_ms": round(1000 * step_s, 2),
            "input_share": round(data_s / step_s, 3), "peak_gib": peak and round(peak, 2)}


def _lightly_step(method: str, width: int, batch: int, pixels, device, precision: str,
                  steps: int, warmup: int, workers: int) -> dict:
    """images/s of the same step built from lightly: PIL transforms in a DataLoader."""
    import importlib.util

    import torch

    from minissl.nn import backbone

    spec = importlib.util.spec_from_file_location("bench_steps",
                                                  ROOT / "benchmarks" / "bench_steps.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from lightly.loss import NegativeCosineSimilarity, NTXentLoss
    from lightly.transforms import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
        SimCLRTransform,
    )

    torch.manual_seed(0)
    encoder = backbone("resnet18", width=width)
    if method == "simclr":
        transform = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)
        model = bench._LightlySimCLR(encoder).to(device)
        criterion = NTXentLoss(temperature=0.5)
    else:
        transform = BYOLTransform(
            view_1_transform=BYOLView1Transform(input_size=32, gaussian_blur=0.0),
            view_2_transform=BYOLView2Transform(input_size=32, gaussian_blur=0.0))
        model = bench._LightlyBYOL(encoder).to(device)
        criterion = NegativeCosineSimilarity()
    loader = torch.utils.data.DataLoader(
        bench._PILImages(pixels, transform), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda",
        persistent_workers=workers > 0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                            weight_decay=1e-4)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    _reset_peak(device)

    def one(x0, x1, step):
        x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            if method == "simclr":
                loss = criterion(model(x0), model(x1))
            else:
                from lightly.models.utils import update_momentum
                from lightly.utils.scheduler import cosine_schedule

                m = cosine_schedule(step, 1000, 0.996, 1)
                update_momentum(model.backbone, model.backbone_momentum, m=m)
                update_momentum(model.projection_head, model.projection_head_momentum, m=m)
                p0, p1 = model(x0), model(x1)
                z0, z1 = model.forward_momentum(x0), model.forward_momentum(x1)
                loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        float(loss.detach())

    total, done, t0 = warmup + steps, 0, None
    while done < total:
        for (x0, x1), _ in loader:
            one(x0, x1, done)
            done += 1
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            if done == total:
                break
    _sync(device)
    step_s = (time.perf_counter() - t0) / steps
    peak = _peak_gib(device)
    return {"images_per_s": round(batch / step_s, 1), "step_ms": round(1000 * step_s, 2),
            "peak_gib": peak and round(peak, 2), "workers": workers}


# The settings of step 3, most important first: when its time runs out, the rest are skipped.
# (side, method, precision, channels_last, compile)
GPU_SETTINGS = [
    ("minissl", "simclr", "fp32", False, False), ("minissl", "simclr", "bf16", False, False),
    ("minissl", "simclr", "bf16", True, False), ("minissl", "simclr", "fp16", False, False),
    ("lightly", "simclr", "fp32", False, False), ("lightly", "simclr", "bf16", False, False),
    ("minissl", "simclr", "bf16", True, True), ("minissl", "byol", "fp32", False, False),
    ("minissl", "byol", "bf16", False, False), ("minissl", "byol", "bf16", True, False),
    ("lightly", "byol", "fp32", False, False), ("lightly", "byol", "bf16", False, False),
    ("minissl", "simclr", "fp32", True, False), ("minissl", "simclr", "fp16", True, False),
    ("minissl", "byol", "fp32", True, False), ("minissl", "byol", "fp16", False, False),
    ("minissl", "simclr", "fp32", True, True), ("minissl", "byol", "bf16", True, True),
]
DRY_SETTINGS = [  # one of each kind, to keep the dry run short (no compile on a CPU)
    ("minissl", "simclr", "fp32", False, False), ("minissl", "simclr", "bf16", True, False),
    ("minissl", "byol", "fp32", False, False), ("lightly", "simclr", "fp32", False, False),
]


def step_throughput(out: Path, dry: bool, size: dict, device, deadline: float) -> dict:
    """minissl's step under each setting, and lightly's, on in-memory generated images."""
    batch, width = size["batch"], size["width"]
    pixels, images = _images(4 * batch)
    settings = DRY_SETTINGS if dry or device.type != "cuda" else GPU_SETTINGS
    rows, notes, skipped = [], [], []
    if device.type != "cuda":
        notes.append("compile is measured on the GPU only (on a CPU it needs a C++ compiler)")
    missing = lightly_missing()
    if missing:
        notes.append(f"no comparison with lightly ({missing}; see 'bring')")
        settings = [s for s in settings if s[0] != "lightly"]
    longest: dict[tuple, float] = {}  # seconds of the slowest setting of each (side, compile)
    for side, method, precision, cl, comp in settings:
        left = deadline - time.time()
        if left <= 0 or longest.get((side, comp), 0.0) > left:  # would not finish in time
            skipped.append(f"{side} {method} {precision} channels_last={cl} compile={comp}")
            continue
        row = {"side": side, "method": method, "precision": precision,
               "channels_last": cl, "compile": comp, "batch": batch}
        started = time.perf_counter()
        try:
            if side == "minissl":
                row.update(_minissl_step(method, width, batch, images, device, precision, cl,
                                         comp, size["steps"], size["compile_warmup"] if comp
                                         else size["warmup"]))
            else:
                row.update(_lightly_step(method, width, batch, pixels, device, precision,
                                         size["steps"], size["warmup"], size["workers"]))
        except Exception as err:  # noqa: BLE001 - one failed setting is a result
            row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        took = time.perf_counter() - started
        longest[side, comp] = max(longest.get((side, comp), 0.0), took)
        row["seconds"] = round(took, 1)
        rows.append(row)
    if skipped:
        notes.append(f"skipped: budget ({len(skipped)} settings): " + "; ".join(skipped))
    return {"network": f"CIFAR ResNet-18 (width {width}), 32x32", "batch": batch,
            "rows": rows, "speed_ups": _speed_ups(rows), "notes": notes,
            "skipped_budget": skipped}


def _speed_ups(rows: list[dict]) -> list[dict]:
    """minissl over lightly, per method and precision: default settings and the best one."""
    out = []
    for theirs in (r for r in rows if r["side"] == "lightly" and "images_per_s" in r):
        ours = [r for r in rows if r["side"] == "minissl" and r["method"] == theirs["method"]
                and r["precision"] == theirs["precision"] and "images_per_s" in r]
        plain = [r for r in ours if not r["channels_last"] and not r["compile"]]
        if not ours:
            continue
        best = max(ours, key=lambda r: r["images_per_s"])
        out.append({"method": theirs["method"], "precision": theirs["precision"],
                    "default": plain and round(plain[0]["images_per_s"]
                                               / theirs["images_per_s"], 2),
                    "best": round(best["images_per_s"] / theirs["images_per_s"], 2),
                    "best_setting": {k: best[k] for k in ("channels_last", "compile")}})
    return out


# ----------------------------------------------------------------- step 4: fixed-time SimCLR
class _TimeUp(Exception):
    pass


def step_simclr(out: Path, dry: bool, size: dict, device, deadline: float | None = None) -> dict:
    """SimCLR for a fixed training time on the book's default data; accuracy against time.

    The data are the default profile's (``P.load``: its data set at its image size). The
    training time is ``simclr_seconds``, or less when the step's share of the budget would not
    hold it and the evaluations; past ``deadline`` the run stops at its next evaluation and the
    evaluations it did not reach are reported as "skipped: budget".
    """
    import torch

    from minissl import evaluate, profiles, recipes
    from minissl.train import fit

    P = profiles.current()
    deadline = float("inf") if deadline is None else deadline
    train = P.load("train", n=size["simclr_train"])
    test = P.load("test", n=size["simclr_test"])
    probe_train = train.subset(torch.arange(min(len(train), 5 * size["simclr_test"])))

    # The rate first (a few steps of a throw-away copy), so the schedule spans the budget.
    method, cfg = recipes.build("simclr", train, profile=P)
    stamps: list[float] = []
    probe_steps = 3 if dry else 20

    def stamp(_m, _s):
        _sync(device)
        stamps.append(time.perf_counter())

    fit(method, train, cfg, max_steps=probe_steps + 2, progress=False, device=str(device),
        eval_every=1, callback=stamp)
    rate = probe_steps / max(stamps[-1] - stamps[1], 1e-6)  # steps per second

    method, cfg = recipes.build("simclr", train, profile=P)
    t_eval = time.perf_counter()
    random_scores = evaluate.evaluate_encoder(recipes.backbone_of(method, "simclr"),
                                              probe_train, test,
                                              labels_per_class=P.labels_per_class)
    t_eval = time.perf_counter() - t_eval
    evals = size["simclr_evals"]
    # What is left of the share pays for the training and the evaluations along the way.
    budget = size["simclr_seconds"]
    room = deadline - time.time() - (evals + 1) * t_eval
    if room < budget:
        budget = max(1.0, room)
    steps = max(2, int(rate * budget))
    points: list[dict] = []
    clock = {"train": 0.0, "since": time.perf_counter()}
    stopped = {"budget": False}

    def score(m, step):
        _sync(device)
        clock["train"] += time.perf_counter() - clock["since"]
        scores = evaluate.evaluate_encoder(recipes.backbone_of(m, "simclr"), probe_train, test,
                                           labels_per_class=P.labels_per_class)
        points.append({"seconds": round(clock["train"], 1), "step": step,
                       "epoch": round(step * cfg.batch_size / len(train), 2),
                       "knn": round(scores["knn"], 4), "linear": round(scores["linear"], 4)})
        clock["since"] = time.perf_counter()
        if step < steps and time.time() > deadline:
            stopped["budget"] = True
            raise _TimeUp
        if clock["train"] > 1.25 * budget and step < steps:
            raise _TimeUp
        return None

    every = max(1, steps // evals)
    with contextlib.suppress(_TimeUp):
        fit(method, train, cfg, max_steps=steps, progress=False, device=str(device),
            eval_every=every, callback=score)
    result = {"dataset": train.name, "image_size": int(train.images.shape[-1]),
              "n_train": len(train), "n_test": len(test),
              "backbone": P.backbone, "width": P.width, "batch": cfg.batch_size,
              "budget_seconds": round(budget, 1), "planned_steps": steps,
              "random_encoder": {k: round(v, 4) for k, v in random_scores.items()},
              "points": points}
    if stopped["budget"]:
        left = steps // every + (steps % every > 0) - len(points)
        result["budget"] = f"skipped: budget (stopped at step {points[-1]['step']} of {steps}; " \
                           f"{max(left, 0)} evaluations not run)"
    return result


# ---------------------------------------------------------------------- step 5: report
def _goals(report: dict) -> list[dict]:
    goals = []
    tp = report.get("throughput") or {}
    for s in tp.get("speed_ups", []):
        if s["method"] == "simclr":
            goals.append({"goal": f"minissl's end-to-end SimCLR step >= 3x lightly's "
                                  f"({s['precision']}, best setting)",
                          "value": s["best"], "met": s["best"] >= 3})
    shares = [r["input_share"] for r in tp.get("rows", [])
              if r.get("side") == "minissl" and r.get("method") == "simclr"
              and "input_share" in r and not r["compile"]]
    if shares:
        goals.append({"goal": "input pipeline <= 20% of minissl's SimCLR step (worst setting)",
                      "value": max(shares), "met": max(shares) <= 0.2})
    fp16 = [r for r in tp.get("rows", []) if r.get("side") == "minissl"
            and r.get("method") == "simclr" and r.get("precision") == "fp16"
            and r.get("peak_gib") is not None]
    if fp16:
        peak = max(r["peak_gib"] for r in fp16)
        goals.append({"goal": f"SimCLR/ResNet-18 at batch {tp['batch']} in fp16 fits a "
                              f"{T4_MEMORY_GIB:.0f} GB T4 (peak memory, GiB)",
                      "value": peak, "met": peak < T4_MEMORY_GIB * 1e9 / 2**30})
    ch = report.get("chapters") or {}
    if ch.get("chapters"):
        goals.append({"goal": "each chapter <= 60 s (slowest, seconds)",
                      "value": ch["slowest_seconds"],
                      "met": ch["slowest_seconds"] is not None and ch["slowest_seconds"] <= 60})
        goals.append({"goal": "every chapter's asserts hold", "value": ch["all_ok"],
                      "met": bool(ch["all_ok"])})
    t = report.get("tests") or {}
    if "ok" in t:
        goals.append({"goal": "the gpu tests pass", "value": t.get("failures", []),
                      "met": bool(t["ok"])})
    budget = report.get("budget") or {}
    if "total" in budget:
        goals.append({"goal": f"the whole kit within its budget of {budget['seconds']:.0f} s "
                              "(seconds)", "value": budget["total"], "met": budget["within"]})
    return goals


def write_report(out: Path, report: dict) -> None:
    report["goals"] = _goals(report)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.md").write_text(markdown(report))


def markdown(report: dict) -> str:
    """The report as Markdown, to paste into the README."""
    hw = report["hardware"]
    gpu = hw.get("gpu") or {}
    lines = ["# GPU check" + (" (dry run on the CPU)" if report["dry_run"] else ""), "",
             f"{gpu.get('name', 'no GPU')} (compute capability {gpu.get('capability', '-')}, "
             f"{gpu.get('memory_gib', '-')} GiB), {hw['cpus']} CPUs; torch {hw['torch']}, "
             f"torchvision {hw.get('torchvision', '-')}, CUDA {hw['cuda']}, Python "
             f"{hw['python']}; {report.get('seconds', '?')} s in all.", ""]
    budget = report.get("budget") or {}
    if budget.get("steps"):
        lines += [f"Budget {budget['seconds']:.0f} s; seconds taken (allowed) by each step: "
                  + ", ".join(f"{name} {took} ({budget['allowed'].get(name, '-')})"
                              for name, took in budget["steps"].items()) + ".", ""]
    skipped = [f"{name}: {(report.get(name) or {}).get('budget')}"
               for name in STEPS if (report.get(name) or {}).get("budget")]
    if skipped:
        lines += [f"- {line}" for line in skipped] + [""]
    if report["goals"]:
        lines += ["| goal | value | met |", "|---|---|---|"]
        lines += [f"| {g['goal']} | {g['value']} | {'yes' if g['met'] else '**no**'} |"
                  for g in report["goals"]]
        lines.append("")
    t = report.get("tests")
    if t:
        lines += ["## Tests marked gpu", ""]
        lines.append(t.get("not_run") or f"{t.get('passed', 0)} passed, {t.get('failed', 0)} "
                     f"failed, {t.get('skipped', 0)} skipped in {t['seconds']} s"
                     + (f"; failed: {', '.join(t['failures'])}" if t.get("failures") else ""))
        lines.append("")
    ch = report.get("chapters")
    if ch and ch.get("chapters"):
        lines += ["## Chapters", "", f"Runner: {ch['runner']}, {ch['jobs']} at a time.", "",
                  "| chapter | seconds | asserts | result |", "|---|---|---|---|"]
        for name, r in ch["chapters"].items():
            lines.append(f"| {name} | {r.get('seconds')} | {r.get('asserts', '-')} | "
                         f"{'ok' if r['ok'] else r.get('error')} |")
        lines.append("")
    tp = report.get("throughput")
    if tp and tp.get("rows"):
        lines += ["## Throughput", "", f"{tp['network']}, batch {tp['batch']}, two views per "
                  "image, AdamW; images/s (one image = two views).", "",
                  "| side | method | precision | channels_last | compile | images/s | "
                  "input share | peak GiB |", "|---|---|---|---|---|---|---|---|"]
        for r in tp["rows"]:
            lines.append(f"| {r['side']} | {r['method']} | {r['precision']} | "
                         f"{r['channels_last']} | {r['compile']} | "
                         f"{r.get('images_per_s', r.get('error'))} | "
                         f"{r.get('input_share', '-')} | {r.get('peak_gib', '-')} |")
        for s in tp.get("speed_ups", []):
            lines.append(f"\n{s['method']} {s['precision']}: minissl over lightly {s['default']}x "
                         f"with default settings, {s['best']}x at best ({s['best_setting']})")
        lines += [f"\n{n}" for n in tp.get("notes", [])] + [""]
    sc = report.get("simclr")
    if sc and sc.get("points"):
        lines += ["## Fixed-time SimCLR", "",
                  f"{sc['dataset']} ({sc['n_train']} training images, {sc['n_test']} test), "
                  f"{sc['backbone']} width {sc['width']}, batch {sc['batch']}, "
                  f"{sc['budget_seconds']} s of training; random encoder: kNN "
                  f"{sc['random_encoder']['knn']}, linear {sc['random_encoder']['linear']}.", "",
                  "| seconds | step | epoch | kNN | linear probe |", "|---|---|---|---|---|"]
        lines += [f"| {p['seconds']} | {p['step']} | {p['epoch']} | {p['knn']} | "
                  f"{p['linear']} |" for p in sc["points"]]
        lines.append("")
    for name in ("tests", "chapters", "throughput", "simclr"):
        err = (report.get(name) or {}).get("error")
        if err:
            lines += [f"**{name} failed**: {err}", ""]
    if report.get("bring"):
        lines += ["## To bring for the optional parts", ""]
        lines += [f"- {b}" for b in report["bring"]] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- main
STEPS = ("tests", "chapters", "throughput", "simclr")
# Each step's share of --budget (the report's own writing takes a second or two of "report").
# A step gets its share of what is left, among the steps still to run, so the time an early
# step does not use goes to the later ones.
SHARES = {"tests": 0.20, "chapters": 0.40, "throughput": 0.22, "simclr": 0.15, "report": 0.03}
DEFAULT_BUDGET = 480.0  # the whole kit in 8 minutes on one GPU


def allowance(left: float, step: str, to_run: list[str]) -> float:
    """Seconds that ``step`` may take out of the ``left`` seconds of the budget, when the steps
    ``to_run`` (``step`` first, then the later ones, "report" last) are still to run.

    Example:
        >>> allowance(480, "tests", ["tests", "chapters", "throughput", "simclr", "report"])
        96.0
        >>> allowance(100, "simclr", ["simclr", "report"])
        83.3
    """
    total = sum(SHARES[s] for s in to_run)
    return round(max(0.0, left) * SHARES[step] / total, 1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="gpu-report", help="folder of report.md and report.json")
    ap.add_argument("--dry-run", action="store_true",
                    help="every step with tiny sizes on the CPU (a test of the kit itself)")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                    help="seconds for the whole kit, shared out between the steps "
                         f"(default {DEFAULT_BUDGET:.0f})")
    ap.add_argument("--only", default=",".join(STEPS),
                    help=f"comma-separated steps to run, of {list(STEPS)}")
    ap.add_argument("--chapters", default=None,
                    help="comma-separated chapter prefixes (e.g. 01,03); default: all")
    ap.add_argument("--runner", choices=("auto", "jupyter", "namespace"), default="auto",
                    help="how chapters run: nbclient when present (auto), or the built-in one")
    ap.add_argument("--simclr-seconds", type=float, default=None,
                    help="training time of the fixed-time SimCLR run (default 90, less when "
                         "the budget's share of step 4 does not hold it)")
    ap.add_argument("--throughput-seconds", type=float, default=None,
                    help="time allowed for step 3 (default: its share of the budget); "
                         "settings left when it is spent are skipped")
    ap.add_argument("--run-notebook", help=argparse.SUPPRESS)  # the chapter runner's process
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=int, default=240, help=argparse.SUPPRESS)
    ap.add_argument("--jupyter", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.run_notebook:  # one chapter, in this process
        path = Path(args.run_notebook).resolve()
        result = (run_notebook_in_jupyter(path, args.timeout) if args.jupyter
                  else run_notebook_in_namespace(path))
        Path(args.result).write_text(json.dumps(result, indent=1))
        return result

    t0, wall0 = time.perf_counter(), time.time()  # the budget counts from here
    if args.budget <= 0:
        ap.error("--budget: give a positive number of seconds")
    import torch

    dry = args.dry_run
    size = dict(SIZES[dry])
    if args.simclr_seconds is not None:
        size["simclr_seconds"] = args.simclr_seconds
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(STEPS):
        ap.error(f"--only: unknown {sorted(only - set(STEPS))}; use some of {list(STEPS)}")
    if not dry and not torch.cuda.is_available():
        ap.error("no CUDA GPU is visible to torch; use --dry-run to test the kit on a CPU")
    device = torch.device("cpu" if dry else "cuda")  # threads: torch's own (OMP_NUM_THREADS)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    end = wall0 + args.budget
    report: dict = {"dry_run": dry, "hardware": hardware(), "bring": bring(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "budget": {"seconds": args.budget, "allowed": {}, "steps": {}}}
    write_report(out, report)
    chapters = args.chapters.split(",") if args.chapters else None
    to_run = [s for s in STEPS if s in only] + ["report"]
    for i, name in enumerate(to_run[:-1]):
        allowed = allowance(end - time.time(), name, to_run[i:])
        report["budget"]["allowed"][name] = allowed
        deadline = time.time() + allowed
        print(f"[gpu_check] {name} (up to {allowed:.0f} s) ...", flush=True)
        started = time.perf_counter()
        try:
            if allowed < 1:
                report[name] = {"budget": "skipped: budget (no time left for this step)"}
            elif name == "tests":
                report[name] = step_tests(out, dry, size, deadline)
            elif name == "chapters":
                report[name] = step_chapters(out, dry, size, chapters, args.runner, deadline)
            elif name == "throughput":
                if args.throughput_seconds is not None:
                    deadline = min(deadline, time.time() + args.throughput_seconds)
                report[name] = step_throughput(out, dry, size, device, deadline)
            else:
                report[name] = step_simclr(out, dry, size, device, deadline)
        except Exception as err:  # noqa: BLE001 - the report says what broke, the rest runs
            report[name] = {"error": f"{type(err).__name__}: {err}",
                            "traceback": traceback.format_exc()[-3000:]}
        report[name]["step_seconds"] = round(time.perf_counter() - started, 1)
        report["budget"]["steps"][name] = report[name]["step_seconds"]
        report["seconds"] = round(time.perf_counter() - t0, 1)
        write_report(out, report)
        print(f"[gpu_check] {name}: {report[name]['step_seconds']} s", flush=True)
    started = time.perf_counter()
    report["budget"]["allowed"]["report"] = allowance(end - time.time(), "report", ["report"])
    write_report(out, report)
    report["budget"]["steps"]["report"] = round(time.perf_counter() - started, 1)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["budget"]["total"] = report["seconds"]
    report["budget"]["within"] = report["seconds"] <= args.budget
    write_report(out, report)
    print(f"[gpu_check] done in {report['seconds']} s (budget {args.budget:.0f} s); wrote "
          f"{out / 'report.md'} and {out / 'report.json'}")
    for goal in report["goals"]:
        print(f"  {'ok ' if goal['met'] else 'NO '} {goal['goal']}: {goal['value']}")
    return report


if __name__ == "__main__":
    main()
