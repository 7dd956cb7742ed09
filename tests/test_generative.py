"""Fréchet distance and precision/recall in a feature space."""

import pytest
import torch

from minissl.generative import compare_samples, frechet_distance, precision_recall


def test_frechet_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=g) @ torch.randn(8, 8, generator=g)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shifts = [frechet_distance(x, x + s) for s in (0.5, 1.0, 2.0)]
    # a pure shift by s in every one of 8 dims adds exactly 8 s^2
    assert shifts == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances: sum (sa - sb)^2 over the standard deviations.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g)
    b = torch.randn(20000, 3, generator=g) * torch.tensor([1.0, 2.0, 3.0])
    assert frechet_distance(a, b) == pytest.approx(0 + 1 + 4, rel=0.05)
    with pytest.raises(ValueError, match="feature size"):
        frechet_distance(a, b[:, :2])


def test_precision_recall_separates_fidelity_from_coverage():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, generator=g)
    collapsed = real[:100] * 0.05  # realistic but covers only the centre
    far = torch.randn(500, 2, generator=g) + 10  # nowhere near the data
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.3
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    same = precision_recall(real, real.clone())
    assert same["precision"] == 1.0 and same["recall"] == 1.0


def test_compare_samples_in_an_encoder_feature_space():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    x = torch.rand(200, 1, 4, 4)
    same = compare_samples(enc, x, x)
    shifted = compare_samples(enc, x, (x + 0.5).clamp(0, 1))
    assert same["frechet"] < 1e-6 < shifted["frechet"]
    assert set(same) == {"frechet", "precision", "recall"}
