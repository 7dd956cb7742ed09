"""Every chapter runs to the end in the full profile, on tiny CIFAR-10 files in the real format.

The full profile is what a reader opts into on a GPU (CIFAR-10, real budgets); here its code
paths run with every budget cut to seconds (see tools/full_profile_check.py), one chapter per
test, each in a fresh process. `make full-check` does the same from the command line.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import full_profile_check  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_every_chapter_is_checked():
    assert len(CHAPTERS) == 11


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_the_chapter_runs_to_the_end_in_the_full_profile(chapter, capsys):
    assert full_profile_check.main([str(chapter)]) == 0
    assert "1 of 1 chapters ran in the full profile" in capsys.readouterr().out


def test_the_tiny_cifar10_is_in_the_real_format(tmp_path):
    from minissl import data

    full_profile_check.write_tiny_cifar10(tmp_path, per_batch=20, n_test=10)
    train = data.load("cifar10", "train", root=tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and len(data.load("cifar10", "test",
                                                                    root=tmp_path)) == 10
