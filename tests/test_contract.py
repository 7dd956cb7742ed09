"""The contract every two-view method keeps (CONTRIBUTING.md, "Contracts")."""

from __future__ import annotations

import inspect

import pytest
import torch

from minissl import data, methods, recipes
from minissl.nn import ConvNet

# Constructor arguments small enough for a quick step; SwAV without local crops makes a pair.
TWO_VIEW = {
    "SimCLR": {},
    "MoCo": {"queue_size": 16},
    "BYOL": {"proj_dim": 8, "hidden_dim": 16},
    "SimSiam": {"proj_dim": 8, "hidden_dim": 4},
    "SwAV": {"num_prototypes": 4, "n_local": 0},
}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(TWO_VIEW))
def test_two_view_methods_share_one_contract(name, device):
    cls = getattr(methods, name)
    params = list(inspect.signature(cls).parameters)
    # The encoder (whose .feature_dim sizes the heads), then the pair maker; one name per size.
    assert params[:2] == ["encoder", "augment"] and "feature_dim" not in params
    assert {p for p in params if "dim" in p or "hidden" in p} <= {"proj_dim", "hidden_dim"}
    assert {p for p in params if "queue" in p} <= {"queue_size", "queue_start_step"}

    torch.manual_seed(0)
    encoder = ConvNet(in_channels=3, width=4)
    x = torch.rand(4, 3, 16, 16, device=device)
    built = cls(encoder, **TWO_VIEW[name]).to(device)
    built.training_step((x, None))  # builds the default augmentation for this batch
    shapes = data.load("shapes", "train", n=16, size=16)
    recipe, _ = recipes.build(name, shapes, width=4, seed=0, **TWO_VIEW[name])
    for method in (built, recipe.to(device)):
        views = method.augment(x)
        if name == "SwAV":  # multi-crop: the two global crops, then the recipe's local crops
            views = views[:2]
        assert len(views) == 2, type(method.augment).__name__
        for v in views:
            assert isinstance(v, torch.Tensor) and v.shape == x.shape and v.device == x.device
        method.eval()
        with torch.no_grad():
            features = method(x)
        assert features.shape == (4, method.encoder.feature_dim)
        torch.testing.assert_close(features, method.encoder(x))
