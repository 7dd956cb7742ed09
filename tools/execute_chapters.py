"""Execute the book's chapters in parallel into the Jupyter Book execution cache.

Jupyter Book 1 executes notebooks one after another. This script runs them in a process
pool (one notebook per core) and stores the outputs in the same jupyter-cache that
`_config.yml` names, so the book build that follows finds every chapter already executed.
Unchanged chapters are not run again.

    python tools/execute_chapters.py [--cache _build/.jupyter_cache] [--timeout 900]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="_build/.jupyter_cache")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    args = parser.parse_args()

    notebooks = [Path(p) for p in args.notebooks] or sorted(Path("chapters").glob("*.ipynb"))
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
    # Failures are reported again, with the traceback, by the book build that follows.
    return 1 if result.errored else 0


if __name__ == "__main__":
    sys.exit(main())
