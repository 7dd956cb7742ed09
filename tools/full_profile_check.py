"""Run every chapter in the `full` profile on tiny CIFAR-10 files, with every budget cut down.

The `full` profile is what a reader opts into on a GPU: CIFAR-10 and real budgets. Running it
for real takes hours, so this check runs the same code paths in seconds: it writes a small
CIFAR-10 in the real on-disk format (the pickled `cifar-10-batches-py/` batches), points
`MINISSL_DATA` at it, sets `MINISSL_PROFILE=full` and cuts every budget down with
`MINISSL_PROFILE_OVERRIDES`. Then it executes each chapter's code cells, each chapter in a
fresh process, and reports which ran to the end. A chapter passes when it runs without an
error: a threshold measured on the quick profile's data must be guarded by the data set's
name, so on CIFAR-10 it is skipped rather than failed.

    python tools/full_profile_check.py [chapters/03_contrastive.ipynb ...] [--timeout 600]

Exit status 0 when every chapter ran to the end, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The full profile with every budget cut to seconds; text chapters use the embedded corpus.
OVERRIDES = ("n_train=1200,n_test=120,epochs=1,ssl_epochs=1,probe_epochs=5,batch_size=32,"
             "width=8,backbone=convnet,text_dataset=pydoc,seq_len=32,download=false")


def write_tiny_cifar10(root: Path, per_batch: int = 240, n_test: int = 120) -> None:
    """A CIFAR-10 of ``5 * per_batch`` training and ``n_test`` test images, real format."""
    sys.path.insert(0, str(ROOT))
    from tests.test_data import write_cifar10

    write_cifar10(root, n_train_per_batch=per_batch, n_test=n_test)


def run_one(chapter: Path, env: dict, timeout: int) -> dict:
    """Execute one chapter in a fresh interpreter with ``env``; returns the runner's result."""
    code = ("import json, sys; sys.path.insert(0, 'tools'); import gpu_check; "
            f"print('RESULT ' + json.dumps(gpu_check.run_notebook_in_namespace("
            f"__import__('pathlib').Path({str(chapter.resolve())!r}))))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=timeout,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout} s", "seconds": timeout}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"ok": False, "error": (proc.stderr or proc.stdout)[-1500:], "seconds": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="default: chapters/*.ipynb")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per chapter")
    args = parser.parse_args(argv)
    chapters = [Path(c) for c in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="minissl-full-") as data_root:
        write_tiny_cifar10(Path(data_root))
        env = {**os.environ, "MINISSL_PROFILE": "full", "MINISSL_DATA": data_root,
               "MINISSL_PROFILE_OVERRIDES": OVERRIDES, "MINISSL_CACHE": "off",
               "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
        for chapter in chapters:
            result = run_one(chapter, env, args.timeout)
            failed += not result["ok"]
            status = "ran to the end" if result["ok"] else f"FAILED: {result['error']}"
            print(f"{chapter.name}: {status} ({result.get('seconds')} s)", flush=True)
            if not result["ok"] and result.get("traceback"):
                print("    " + "\n    ".join(result["traceback"].strip().splitlines()[-4:]))
    print(f"{len(chapters) - failed} of {len(chapters)} chapters ran in the full profile")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
