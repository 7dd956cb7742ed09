"""`python -m minissl train`: the path a GPU runs, exercised on the CPU with a tiny budget."""

import pytest

from minissl import cli, profiles
from minissl.utils import MinisslError

TINY = ["--dataset", "shapes", "--n-train", "128", "--eval-n", "64", "--epochs", "2",
        "--batch-size", "32", "--width", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def quick():
    profiles.use("quick")


def test_train_reports_every_epoch_and_resumes(tmp_path, capsys):
    args = ["train", "rotation_prediction", *TINY, "--checkpoint-dir", str(tmp_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2 and all("images/s" in e and "kNN" in e for e in epochs)
    assert (tmp_path / "last.pt").exists()
    # Run again: the checkpoint says the run is complete, so nothing is trained twice.
    assert cli.main(args) == 0
    again = capsys.readouterr().out
    assert "done:" in again
    assert not [line for line in again.splitlines() if line.startswith("epoch")]


def test_method_arguments_are_passed_through(capsys):
    assert cli.main(["train", "Jigsaw", *TINY, "--epochs", "1", "--method-arg", "grid=2",
                     "--method-arg", "n_permutations=6"]) == 0
    assert "done:" in capsys.readouterr().out


def test_unknown_method_and_missing_data_say_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="unknown method 'simclrr'; choose one of"):
        cli.main(["train", "simclrr", *TINY])
    with pytest.raises(MinisslError, match="download=True"):
        cli.main(["train", "rotation_prediction", "--dataset", "cifar10",
                  "--data-root", str(tmp_path)])
