"""Profiles are chosen once (env var, else CUDA, else quick); the CLI reports them."""

import pytest
import torch

from minissl import cli, profiles


@pytest.fixture(autouse=True)
def fresh_profile(monkeypatch):
    monkeypatch.setattr(profiles, "_active", None)
    yield
    profiles._active = None


def test_env_var_chooses_the_profile(monkeypatch):
    monkeypatch.setenv("MINISSL_PROFILE", "full")
    assert profiles.current().name == "full"
    assert profiles.current() is profiles.current()  # chosen once


def test_cuda_means_full_and_cpu_means_quick(monkeypatch):
    monkeypatch.delenv("MINISSL_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.current().name == "full"
    profiles._active = None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.current().name == "quick"


def test_a_wrong_profile_name_says_which_exist(monkeypatch):
    monkeypatch.setenv("MINISSL_PROFILE", "medium")
    with pytest.raises(ValueError, match=r"'medium' is not a profile; use one of"):
        profiles.current()


def test_budgets_and_overrides():
    quick, full = profiles.PROFILES["quick"], profiles.PROFILES["full"]
    assert quick.image_dataset == "shapes" and full.image_dataset == "cifar10"
    assert quick.n_train < 10_000 and full.n_train is None  # full uses every image
    assert quick.width <= full.width and quick.epochs < full.epochs
    p = profiles.use("quick", epochs=1)
    assert p.epochs == 1 and profiles.current() is p
    with pytest.raises(TypeError):
        profiles.use("quick", epoch=1)  # a typo in a budget name is an error, not ignored


def test_start_seeds_and_prints(capsys):
    profiles.use("quick")
    profiles.start(seed=5)
    a = torch.rand(3)
    profiles.start(seed=5)
    assert torch.equal(a, torch.rand(3))
    out = capsys.readouterr().out
    assert "minissl profile 'quick'" in out and "device: cpu" in out


def test_cli_info_lists_profile_and_data_sets(capsys):
    profiles.use("quick")
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "minissl profile 'quick'" in out
    for name in ("digits", "shapes", "cifar10", "stl10", "mnist"):
        assert name in out
