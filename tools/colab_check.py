"""Run a chapter the way Colab would, offline: a fresh environment, minissl installed by the
chapter's own first cell, a clean kernel.

Colab starts a kernel in which PyTorch, torchvision, matplotlib and ipywidgets are installed
and minissl is not. This script reproduces that without downloading anything:

1. it builds a wheel of minissl from this checkout (``pip wheel``, no build isolation);
2. it makes a new virtual environment that sees only those four packages, the kernel
   (ipykernel) and pip, with everything they require, plus what the wheel declares that it
   requires (what ``pip install`` would fetch in Colab). They are not copied: a folder of
   links into this project's ``.venv`` is put on the new environment's path, so it takes
   a second and no disk space;
3. it executes the chapter in a kernel of that environment, with a stand-in for the
   ``%pip`` magic placed before the chapter: when the first cell asks for
   ``minissl @ git+<repository>``, the stand-in checks the repository is the one named in
   ``_config.yml`` and installs the wheel of step 1 instead.

    python tools/colab_check.py [chapters/01_paradigms.ipynb] [--keep DIR]

It prints what the first cell printed and where minissl was imported from, and exits
non-zero when the chapter fails. ``tests/test_colab.py`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a Colab kernel has before the chapter runs (and pip, which %pip uses).
COLAB_PACKAGES = ("torch", "torchvision", "matplotlib", "ipywidgets", "ipykernel", "pip")
# Packages of this project's .venv that must NOT be visible in the Colab-like environment.
NOT_IN_COLAB = ("jupyter_book", "nbval", "pytest", "nbformat", "yaml")
MARK = "COLAB-CHECK "  # prefix of the lines the stand-in and the final cell print


def repository_url(root: Path = ROOT) -> str:
    """The repository that ``_config.yml`` names (the one place it is set)."""
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def build_wheel(out: Path, root: Path = ROOT) -> Path:
    """A wheel of the package in ``root``, built from a copy so the checkout stays clean."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "MANIFEST.in"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        shutil.copytree(root / "minissl", src / "minissl",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                               "--no-build-isolation", "--no-index", "-w", str(out), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(out.glob("minissl-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel made no minissl wheel in {out}")
    return wheels[-1]


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel (without extras)."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(name).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution that ``requirements`` need, transitively (with extras)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{req.name} is needed but not installed in {sys.prefix}; "
                               "run `make setup` first") from None
        found[canonicalize_name(req.name)] = dist
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None:
                todo.append(sub)
                continue
            for extra in {""} | set(req.extras):
                if sub.marker.evaluate({"extra": extra}):
                    todo.append(sub)
                    break
    return found


def make_view(dists: dict[str, metadata.Distribution], view: Path) -> list[str]:
    """A folder of links to the files of ``dists`` (top-level names only); returns the names."""
    view.mkdir(parents=True, exist_ok=True)
    names = set()
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        for file in dist.files or []:
            parts = Path(file).parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
                continue
            names.add((base, parts[0]))
    for base, name in sorted(names):
        link = view / name
        if not link.exists() and (base / name).exists():
            link.symlink_to(base / name)
    return sorted(n for _, n in names)


def make_colab_env(where: Path, wheel: Path) -> Path:
    """A new virtual environment that sees only Colab's packages and the wheel's requirements.

    Returns the environment's Python.
    """
    venv.EnvBuilder(with_pip=False, clear=True).create(where / "venv")
    python = where / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    dists = closure(list(COLAB_PACKAGES) + wheel_requirements(wheel))
    dists.pop("minissl", None)
    make_view(dists, where / "view")
    (site / "_colab_view.pth").write_text(str(where / "view") + "\n")
    kernel = where / "jupyter" / "kernels" / "colab"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python",
    }))
    return python


# Placed before the chapter: %pip is answered by installing the local wheel.
_STAND_IN = '''
import shlex, subprocess, sys
from IPython import get_ipython

def _colab_pip(line):
    args = shlex.split(line)
    wanted = [a for a in args if a.startswith("minissl")]
    print({mark!r} + "pip " + json.dumps(args))
    ok = wanted and wanted[0].replace(" ", "").startswith("minissl@git+" + {url!r})
    if not ok:
        raise RuntimeError(f"the first cell must install minissl from {url}; it asked for {{args}}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                    "--disable-pip-version-check", {wheel!r}], check=True)

import json
get_ipython().register_magic_function(_colab_pip, "line", "pip")
'''

_REPORT = '''
import importlib.util, json, sys
import minissl
print({mark!r} + "report " + json.dumps({{
    "minissl_file": minissl.__file__, "version": minissl.__version__,
    "python": sys.executable,
    "visible": {{n: importlib.util.find_spec(n) is not None for n in {names!r}}},
}}))
'''


def run_notebook(nb_path: Path, python: Path, where: Path, wheel: Path, *, first_cell_only=False,
                 timeout: int = 600) -> dict:
    """Execute a copy of ``nb_path`` in the Colab-like kernel; returns what it printed.

    The chapter's first code cell runs again at the end, where minissl is installed.
    Returns ``{"pip_calls": [...], "report": {...}, "first_cell": "its stdout",
    "first_cell_again": "its stdout the second time"}``; ``pip_calls`` holds the arguments
    of every ``%pip`` line the kernel ran.
    """
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    cells = code[:1] if first_cell_only else nb.cells
    stand_in = _STAND_IN.format(mark=MARK, url=repository_url(), wheel=str(wheel))
    report = _REPORT.format(mark=MARK, names=NOT_IN_COLAB)
    # The first cell once more at the end, now that minissl is installed: it must not install.
    again = nbformat.v4.new_code_cell(code[0].source)
    nb.cells = [nbformat.v4.new_code_cell(stand_in), *cells, again,
                nbformat.v4.new_code_cell(report)]
    work = where / "work"
    work.mkdir(parents=True, exist_ok=True)
    copy = work / nb_path.name
    nbformat.write(nb, copy)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(where / "home"),
        "JUPYTER_PATH": str(where / "jupyter"), "JUPYTER_PREFER_ENV_PATH": "0",
        "MINISSL_PROFILE": os.environ.get("MINISSL_PROFILE", "quick"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONNOUSERSITE": "1", "LANG": "C.UTF-8",
    }
    (where / "home").mkdir(exist_ok=True)
    driver = ("import sys, nbformat; from nbclient import NotebookClient\n"
              "nb = nbformat.read(sys.argv[1], as_version=4)\n"
              "NotebookClient(nb, kernel_name='colab', timeout=int(sys.argv[2]),"
              " resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
              "nbformat.write(nb, sys.argv[1])\n")
    proc = subprocess.run([sys.executable, "-c", driver, str(copy), str(timeout), str(work)],
                          env=env, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{nb_path.name} failed in the Colab-like kernel:\n"
                           f"{proc.stderr[-4000:]}")
    done = nbformat.read(copy, as_version=4)
    lines = [line for cell in done.cells if cell.cell_type == "code"
             for out in cell.outputs if out.get("output_type") == "stream"
             for line in out.get("text", "").splitlines()]
    executed = [c for c in done.cells if c.cell_type == "code"]

    def stdout(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    return {
        "pip_calls": [json.loads(line.split(" ", 2)[2]) for line in lines
                      if line.startswith(MARK + "pip ")],
        "report": next(json.loads(line.split(" ", 2)[2]) for line in lines
                       if line.startswith(MARK + "report ")),
        "first_cell": stdout(executed[1]),  # [0] is the stand-in
        "first_cell_again": stdout(executed[-2]),  # [-1] is the report
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path,
                        default=ROOT / "chapters" / "01_paradigms.ipynb")
    parser.add_argument("--keep", type=Path, help="build the environment here and keep it")
    args = parser.parse_args(argv)
    where = args.keep or Path(tempfile.mkdtemp(prefix="minissl-colab-"))
    try:
        wheel = build_wheel(where / "dist")
        python = make_colab_env(where, wheel)
        result = run_notebook(args.notebook.resolve(), python, where, wheel)
    finally:
        if args.keep is None:
            shutil.rmtree(where, ignore_errors=True)
    print(f"wheel: {wheel.name}")
    print(f"%pip calls: {result['pip_calls']}")
    print("first cell printed:\n" + result["first_cell"])
    print(f"minissl imported from: {result['report']['minissl_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
