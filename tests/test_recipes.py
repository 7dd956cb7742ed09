"""Recipes: every method builds from one call, with the profile's budgets, and compares fairly."""

import dataclasses

import pytest
import torch

from minissl import data, profiles, recipes
from minissl.train import fit


@pytest.fixture(scope="module")
def tiny():
    return data.load("shapes", "train", n=48, seed=0), data.load("shapes", "test", n=32, seed=0)


@pytest.fixture(autouse=True)
def quick():
    profiles.use("quick")


@pytest.mark.parametrize("name", recipes.available())
def test_every_recipe_builds_and_trains_one_step(name, tiny):
    train, _ = tiny
    method, cfg = recipes.build(name, train, width=4, batch_size=16)
    assert type(method).__name__ == recipes.RECIPES[name].method
    assert cfg.epochs == profiles.current().ssl_epochs and cfg.batch_size == 16
    assert cfg.lr == recipes.RECIPES[name].lr
    history = fit(method, train, dataclasses.replace(cfg, max_steps=1))
    assert torch.isfinite(torch.tensor(history["loss"])).all()


def test_same_seed_same_initial_encoder_across_methods(tiny):
    train, _ = tiny
    a, _ = recipes.build("simclr", train, width=4, seed=3)
    b, _ = recipes.build("moco", train, width=4, seed=3)
    c, _ = recipes.build("moco", train, width=4, seed=4)
    sa, sb, sc = (m.encoder.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_overrides_reach_the_method_and_the_config(tiny):
    train, _ = tiny
    method, cfg = recipes.build("SimCLR", train, width=4, epochs=3, lr=0.1, temperature=1.0)
    assert method.temperature == 1.0 and cfg.epochs == 3 and cfg.lr == 0.1
    assert method.augment[0].scale == recipes.crop_scale("shapes") == (0.5, 1.0)
    assert recipes.crop_scale("cifar10") == (0.08, 1.0)


def test_unknown_recipe_suggests_the_right_name(tiny):
    with pytest.raises(ValueError, match=r"'simclrr'.*Did you mean 'simclr'"):
        recipes.build("simclrr", tiny[0])


def test_compare_gives_one_row_per_method_with_per_seed_scores(tiny):
    train, test = tiny
    rows = recipes.compare(["simclr", "byol"], train, test, epochs=1, seeds=(0, 1), width=4,
                           batch_size=16, labels_per_class=2)
    assert [r["method"] for r in rows] == ["SimCLR", "BYOL"]
    for row in rows:
        assert len(row["knn"]) == len(row["linear"]) == 2
        assert all(0 <= v <= 1 for v in row["knn"] + row["linear"]) and row["seconds"] > 0
