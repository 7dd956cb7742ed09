"""Profiles are chosen once (env var, else quick, with or without a GPU); the CLI reports them."""

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


def test_quick_is_the_default_with_or_without_a_gpu(monkeypatch):
    monkeypatch.delenv("MINISSL_PROFILE", raising=False)
    monkeypatch.delenv("MINISSL_PROFILE_OVERRIDES", raising=False)
    for cuda in (True, False):  # a GPU makes a chapter faster, not different
        profiles._active = None
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert profiles.current() == profiles.PROFILES["quick"]


def test_overrides_change_fields_of_the_chosen_profile(monkeypatch):
    monkeypatch.setenv("MINISSL_PROFILE", "full")
    monkeypatch.setenv("MINISSL_PROFILE_OVERRIDES", "n_train=64, ssl_epochs=1,download=false")
    p = profiles.current()
    assert (p.name, p.n_train, p.ssl_epochs, p.download) == ("full", 64, 1, False)
    assert p.image_dataset == "cifar10" and p.batch_size == profiles.PROFILES["full"].batch_size
    for bad, message in [("epochs=two", "takes an integer"), ("epoch=1", "the fields are"),
                         ("download=maybe", "true or false"), ("n_train", "field=value")]:
        profiles._active = None
        monkeypatch.setenv("MINISSL_PROFILE_OVERRIDES", bad)
        with pytest.raises(ValueError, match=message):
            profiles.current()


def test_load_gives_the_profiles_data_at_its_size():
    quick = profiles.use("quick")
    test = quick.load("test", n=16)
    assert test.name == quick.image_dataset and test.split == "test"
    assert test.images.shape == (16, 3, quick.image_size, quick.image_size)
    assert len(quick.replace(n_test=24).load("test")) == 24
    assert not quick.download and profiles.PROFILES["full"].download


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


def test_claim_asserts_in_the_profile_it_was_measured_in_and_reports_elsewhere(capsys):
    from minissl.notebook import claim

    profiles.use("quick")
    assert claim(True, "fine") is None  # no output of its own at the end of a cell
    with pytest.raises(AssertionError, match="too low"):
        claim(False, "too low")
    profiles.use("full")
    claim(False, "too low")
    claim(True, "high enough")
    out = capsys.readouterr().out
    assert "does not hold here: too low" in out and "holds here: high enough" in out
