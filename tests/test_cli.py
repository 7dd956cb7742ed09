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


def test_what_train_builds_is_read_from_the_methods(tmp_path, capsys):
    # Each method says what it trains on; only image methods with a recipe or a for_setting
    # are built, and the refusals name the reason.
    import torch

    from minissl import data, methods, recipes
    from minissl.cli.args import image_methods
    from minissl.cli.commands import make_method
    from minissl.methods.inputs import INPUTS

    assert all(getattr(methods, n).inputs in INPUTS for n in methods.available())
    assert [n for n, recipe in image_methods().items() if not recipe] == ["Supervised"]
    for name, kind in [("gpt", "tokens"), ("cpc", "signals"), ("time_contrastive", "signals")]:
        with pytest.raises(SystemExit, match=f"trains on {kind}, not images"):
            cli.main(["train", name, *TINY])
    for name in ("gan", "pseudo_label"):
        with pytest.raises(SystemExit, match="cannot build .* from the command line"):
            cli.main(["train", name, *TINY])
    # Supervised builds from its for_setting: the same weights as built by hand.
    train = data.load("shapes", "train", n=32, size=16)
    built, config = make_method(methods.Supervised, train, backbone="convnet", width=4, seed=3,
                                lr=None, extra={})
    torch.manual_seed(3)
    encoder = recipes.make_encoder(train, backbone="convnet", width=4)
    by_hand = methods.Supervised(encoder, num_classes=train.num_classes)
    assert config is None and built.head.out_features == train.num_classes
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(),
                                                 by_hand.state_dict().values(), strict=True))
    assert cli.main(["train", "supervised", *TINY, "--epochs", "1"]) == 0
    assert "done:" in capsys.readouterr().out


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


def test_help_lists_every_command_with_a_one_line_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "download", "train", "evaluate", "bench"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(command + " "))
        assert len(line.split(None, 1)[1]) > 10, line  # a help text follows the name


def test_wrong_data_set_names_list_the_valid_ones(tmp_path):
    valid = r"choose one of \['digits', 'shapes', 'cifar10'"
    with pytest.raises(SystemExit, match=rf"unknown data set 'shape'; {valid}"):
        cli.main(["train", "simclr", "--dataset", "shape"])
    with pytest.raises(SystemExit, match=rf"unknown data set 'cifar'; {valid}"):
        cli.main(["bench", "--dataset", "cifar", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--methods: no recipe for method 'simclrr'.*'simclr'"):
        cli.main(["bench", "--methods", "byol,simclrr", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="BERT trains on tokens, not images"):
        cli.main(["train", "bert"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    profiles.use("quick")
    folder = tmp_path_factory.mktemp("simclr")
    assert cli.main(["train", "simclr", *TINY, "--epochs", "1", "--checkpoint-dir",
                     str(folder)]) == 0
    return folder


def test_evaluate_reads_back_a_train_checkpoint(trained, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(trained), "--eval-n", "64", "--labels-per-class", "3"]) == 0
    out = capsys.readouterr().out
    assert "SimCLR from" in out and "128 images" in out  # the training run's data, rebuilt
    knn = float(out.split("kNN (k=20, all 128 training labels): ")[1].split()[0])
    linear = float(out.split("linear probe (3 labels per class): ")[1].split()[0])
    assert 0 <= knn <= 1 and 0 <= linear <= 1
    # The last.pt file itself works too, and gives the same scores.
    assert cli.main(["evaluate", str(trained / "last.pt"), "--eval-n", "64",
                     "--labels-per-class", "3", "--method", "SimCLR"]) == 0
    assert f"{knn:.3f}" in capsys.readouterr().out
    assert cli.main(["evaluate", str(trained), "--eval-n", "64", "--labels-per-class", "3",
                     "--label-draws", "2"]) == 0
    assert "linear probe (3 labels per class, mean of 2 draws): " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(trained), "--label-draws", "0"])
    assert "expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_evaluate_explains_missing_corrupt_and_foreign_checkpoints(trained, tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at .*; make one with `python -m minissl"):
        cli.main(["evaluate", str(tmp_path / "nothing")])
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="damaged or not a checkpoint of `python -m minissl"):
        cli.main(["evaluate", str(bad)])
    with pytest.raises(SystemExit, match="written by `train SimCLR`, not BYOL"):
        cli.main(["evaluate", str(trained), "--method", "byol"])
    with pytest.raises(SystemExit, match="do not fit SimCLR with backbone=convnet, width=8"):
        cli.main(["evaluate", str(trained), "--width", "8"])


def test_bench_command_writes_the_table(tmp_path, capsys):
    args = ["bench", "--methods", "rotation_prediction,denoising_ae", "--dataset", "shapes",
            "--n-train", "64", "--n-test", "32", "--image-size", "16", "--width", "4",
            "--batch-size", "32", "--epochs", "1", "--labels-per-class", "2", "--no-progress",
            "--out", str(tmp_path), "--profile", "quick"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "| RotationPrediction " in out and "| DenoisingAE " in out
    assert "trained 3 run(s), reused 0" in out
    assert all((tmp_path / f).exists() for f in ("results.csv", "results.md", "results.png"))
    assert cli.main(args) == 0
    assert "trained 0 run(s), reused 3" in capsys.readouterr().out
