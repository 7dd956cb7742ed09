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
    assert method.augment.aug1[0].scale == recipes.crop_scale("shapes") == (0.5, 1.0)
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


# The image methods a benchmark compares: every one has a recipe.
IMAGE_METHODS = ["RotationPrediction", "Jigsaw", "Inpainting", "RelativePosition", "SimCLR",
                 "MoCo", "BYOL", "SimSiam", "DeepCluster", "SwAV", "DenoisingAE", "VAE", "MAE"]


def test_every_image_method_has_a_recipe_with_a_family():
    assert sorted(recipes.get(n).method for n in recipes.available()) == sorted(IMAGE_METHODS)
    families = {recipes.get(n).family for n in recipes.available()}
    assert families == {"pretext task", "contrastive", "self-distillation", "clustering",
                        "autoencoding"}
    # The four two-view recipes the chapters were measured with keep their values.
    assert [recipes.RECIPES[n].lr for n in ("simclr", "moco", "byol", "simsiam")] == \
        [4e-3, 8e-3, 2e-3, 2e-3]
    assert recipes.RECIPES["moco"].kwargs["queue_size"] == 1024


@pytest.mark.parametrize("name", ["rotationprediction", "inpainting", "deepcluster", "swav",
                                  "denoisingae", "vae"])
def test_every_family_trains_the_same_initial_backbone(name, tiny):
    # Comparable encoders: with one seed every recipe starts from SimCLR's backbone weights,
    # the autoencoders included (their own ConvNet is replaced by the common backbone).
    train, _ = tiny
    ref, _ = recipes.build("simclr", train, width=4, seed=5)
    method, _ = recipes.build(name, train, width=4, seed=5)
    a, b = ref.encoder.state_dict(), recipes.backbone_of(method).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_mae_always_trains_a_vit_and_the_vae_scores_its_backbone(tiny):
    train, _ = tiny
    mae, cfg = recipes.build("mae", train, width=4, batch_size=16)  # a ConvNet profile
    vit = mae.encoder.vit
    assert type(vit).__name__ == "TinyViT" and vit.image_size == 32
    assert cfg.weight_decay == 0.05 and cfg.warmup_steps == round(0.05 * cfg.epochs * 48 // 16)
    same, _ = recipes.build("simclr", train, backbone="vit_tiny", seed=0)
    assert all(torch.equal(v, same.encoder.state_dict()[k]) for k, v in vit.state_dict().items())
    vae, _ = recipes.build("vae", train, width=4)
    x = train.images[:4]
    assert recipes.backbone_of(vae)(x).shape == (4, 32)  # the backbone, not the 16-d code
    assert vae.encoder(x).shape == (4, 16)


def test_small_images_get_a_narrower_relative_position_gap():
    digits = data.load("digits", "train", n=40)  # 8x8: cells of 2 pixels
    method, cfg = recipes.build("relativeposition", digits, width=4, batch_size=16)
    assert method.gap < 2 and 2 * method.jitter <= method.gap
    history = fit(method, digits, dataclasses.replace(cfg, max_steps=1))
    assert torch.isfinite(torch.tensor(history["loss"])).all()


def test_compare_scores_the_vae_backbone(tiny):
    train, test = tiny
    rows = recipes.compare(["vae"], train, test, epochs=1, width=4, batch_size=16,
                           labels_per_class=2)
    assert rows[0]["method"] == "VAE" and 0 <= rows[0]["linear"][0] <= 1


def test_swav_keeps_its_feature_queue_only_for_small_batches(tiny):
    # Caron et al. 2020 add the queue when the batch is under 256; an explicit value wins.
    train, _ = tiny
    queue = {b: recipes.build("swav", train, width=4, batch_size=b)[0].queue.shape[1]
             for b in (16, 256)}
    assert queue == {16: recipes.RECIPES["swav"].kwargs["queue_size"], 256: 0}
    forced, _ = recipes.build("swav", train, width=4, batch_size=256, queue_size=64)
    assert forced.queue.shape[1] == 64


def test_backbone_of_a_method_without_a_recipe_is_its_encoder(tiny):
    from minissl.methods import Supervised

    train, _ = tiny
    encoder = recipes.make_encoder(train, width=4)
    model = Supervised(encoder, num_classes=train.num_classes)
    assert recipes.backbone_of(model) is encoder
    with pytest.raises(ValueError, match="no recipe for method 'supervised'"):
        recipes.backbone_of(model, "supervised")  # a name given explicitly must be a recipe


def test_generic_modules_never_branch_on_a_method_or_data_set_name():
    # Methods build themselves (minissl.methods.setting) and say what they train on
    # (minissl.methods.inputs); recipes are data. A comparison with a method's or a data set's
    # name anywhere else (the command line included) would be knowledge out of place; only the
    # modules of minissl.data know their data sets by name.
    import ast
    from pathlib import Path

    import minissl
    from minissl import data, methods

    names = {*methods.available(), *recipes.RECIPES, *data.available()}
    root = Path(minissl.__file__).parent
    for path in sorted(root.rglob("*.py")):
        known = names - set(data.available()) if path.parent.name == "data" else names
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant) and side.value in known:
                        raise AssertionError(f"{path.relative_to(root)}:{node.lineno} compares "
                                             f"with {side.value!r}")
