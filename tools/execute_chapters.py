"""Execute the book's chapters in parallel into the Jupyter Book execution cache.

Jupyter Book 1 executes notebooks one after another. This script runs them in a process
pool (one notebook per core) and stores the outputs in the same jupyter-cache that
`_config.yml` names, so the book build that follows finds every chapter already executed.
Unchanged chapters are not run again, unless the package itself changed: jupyter-cache keys
a notebook by its code cells only, so a change to `minissl/` would otherwise leave stale
outputs in the book. A hash of the package's sources, kept beside the cache, decides that.

`make test` runs each chapter only once: nbval executes it as a test and, with
``pytest --save-executed _build/executed`` (see conftest.py), keeps the executed notebook;
this script caches those notebooks instead of running them again.

    python tools/execute_chapters.py [--cache _build/.jupyter_cache] [--timeout 900]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path


def package_hash(root: Path = Path("minissl")) -> str:
    """A digest of every source file of the package (names relative to it, and contents)."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def adopt_executed(cache, notebooks: list[Path], folder: Path, digest: str) -> list[Path]:
    """Cache the notebooks in ``folder`` that nbval executed with the current package.

    A notebook is taken only if it was made from the same package sources (``digest``) and
    carries exactly the chapter's current code cells; jupyter-cache keys it by those cells, so
    the book build finds it and nothing runs twice. Returns the chapters it took.
    """
    import nbformat
    from jupyter_cache.cache.main import CacheBundleIn

    taken = []
    for nb_path in notebooks:
        saved = folder / nb_path.name
        if not saved.exists():
            continue
        executed = nbformat.read(saved, as_version=4)
        source = nbformat.read(nb_path, as_version=4)
        code = [[c.source, c.metadata] for c in source.cells if c.cell_type == "code"]
        if (executed.metadata.get("minissl", {}).get("package_sha256") != digest
                or code != [[c.source, c.metadata] for c in executed.cells
                            if c.cell_type == "code"]):
            continue
        cache.cache_notebook_bundle(CacheBundleIn(executed, str(nb_path.resolve())),
                                    overwrite=True)
        print(f"from nbval: {nb_path.name}")
        taken.append(nb_path)
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="_build/.jupyter_cache")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--doctrees", default="_build/.doctrees",
                        help="Sphinx's saved state, dropped when a chapter ran again")
    parser.add_argument("--executed", default="_build/executed",
                        help="notebooks that nbval executed (pytest --save-executed): those "
                             "made with the current package are cached, not run again")
    parser.add_argument("notebooks", nargs="*",
                        help="default: chapters/*.ipynb and the notebook pages of book/")
    args = parser.parse_args()

    notebooks = [Path(p) for p in args.notebooks] or [
        *sorted(Path("chapters").glob("*.ipynb")), *sorted(Path("book").glob("*.ipynb"))]
    stamp = Path(args.cache).with_name("minissl-sources.sha256")
    current = package_hash()
    if Path(args.cache).exists() and (not stamp.exists() or stamp.read_text() != current):
        print("minissl changed since the chapters were last executed: running them all again")
        shutil.rmtree(args.cache)
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(args.cache)
    for nb in notebooks:
        cache.add_nb_to_project(str(nb.resolve()))
    adopted = adopt_executed(cache, notebooks, Path(args.executed), current)
    executor = load_executor("local-parallel", cache=cache)
    result = executor.run_and_cache(filter_uris=[str(nb.resolve()) for nb in notebooks],
                                    timeout=args.timeout, allow_errors=False)
    for uri in result.succeeded:
        print(f"executed: {Path(uri).name}")
    for uri in result.errored:
        print(f"FAILED:   {Path(uri).name}", file=sys.stderr)
    if result.succeeded or adopted:
        # Sphinx re-reads a page only when its source file changed; new outputs in the cache
        # are not such a change, so drop its saved state and let it read every page again.
        shutil.rmtree(args.doctrees, ignore_errors=True)
    if not result.errored:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(current)
    # Failures are reported again, with the traceback, by the book build that follows.
    return 1 if result.errored else 0


if __name__ == "__main__":
    sys.exit(main())
