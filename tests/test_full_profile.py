"""The full profile's code path runs on tiny CIFAR-10 files in the real format (no download).

`make full-check` runs every chapter this way (minutes); here one short chapter keeps the
path tested on every run of the unit tests.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import full_profile_check  # noqa: E402


def test_a_chapter_runs_to_the_end_in_the_full_profile(capsys):
    assert full_profile_check.main([str(ROOT / "chapters" / "10_beyond.ipynb")]) == 0
    assert "1 of 1 chapters ran in the full profile" in capsys.readouterr().out


def test_the_tiny_cifar10_is_in_the_real_format(tmp_path):
    from minissl import data

    full_profile_check.write_tiny_cifar10(tmp_path, per_batch=20, n_test=10)
    train = data.load("cifar10", "train", root=tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and len(data.load("cifar10", "test",
                                                                    root=tmp_path)) == 10
