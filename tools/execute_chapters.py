"""Execute the book's chapters in parallel into the Jupyter Book execution cache.

Jupyter Book 1 executes notebooks one after another. This script runs them in a process
pool (one notebook per core) and stores the outputs in the same jupyter-cache that
`_config.yml` names, so the book build that follows finds every chapter already executed.
Unchanged chapters are not run again, unless the package itself changed: jupyter-cache keys
a notebook by its code cells only, so a change to `minissl/` would otherwise leave stale
outputs in the book. A hash of the package's sources, kept beside the cache, decides that.

    python tools/execute_chapters.py [--cache _build/.jupyter_cache] [--timeout 900]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor


def package_hash(root: Path = Path("minissl")) -> str:
    """A digest of every source file of the package (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="_build/.jupyter_cache")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--doctrees", default="_build/.doctrees",
                        help="Sphinx's saved state, dropped when a chapter ran again")
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    args = parser.parse_args()

    notebooks = [Path(p) for p in args.notebooks] or sorted(Path("chapters").glob("*.ipynb"))
    stamp = Path(args.cache).with_name("minissl-sources.sha256")
    current = package_hash()
    if Path(args.cache).exists() and (not stamp.exists() or stamp.read_text() != current):
        print("minissl changed since the chapters were last executed: running them all again")
        shutil.rmtree(args.cache)
    cache = get_cache(args.cache)
    for nb in notebooks:
        cache.add_nb_to_project(str(nb.resolve()))
    executor = load_executor("local-parallel", cache=cache)
    result = executor.run_and_cache(filter_uris=[str(nb.resolve()) for nb in notebooks],
                                    timeout=args.timeout, allow_errors=False)
    for uri in result.succeeded:
        print(f"executed: {Path(uri).name}")
    for uri in result.errored:
        print(f"FAILED:   {Path(uri).name}", file=sys.stderr)
    if result.succeeded:
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
