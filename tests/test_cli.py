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


@pytest.mark.parametrize("method", ["simclr", "moco"])
def test_gpu_command_path_on_cifar10_files_with_a_tiny_budget(method, tmp_path, capsys):
    # The full-profile command of the contrastive chapter (ResNet-18, bf16 autocast,
    # channels_last, the recipe's augmentations), on real CIFAR-10 files written by the test.
    from tests.test_data import write_cifar10

    write_cifar10(tmp_path, n_train_per_batch=8, n_test=8)
    args = ["train", method, "--dataset", "cifar10", "--data-root", str(tmp_path),
            "--backbone", "resnet18", "--epochs", "2", "--batch-size", "8", "--eval-n", "8",
            "--precision", "bf16", "--channels-last", "--no-progress",
            "--method-arg", "temperature=0.2"]
    if method == "moco":
        args += ["--method-arg", "queue_size=16"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2 and all("images/s" in e and "kNN" in e for e in epochs), out
    assert "done:" in out
