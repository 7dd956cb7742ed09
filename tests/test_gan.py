"""GAN pieces: losses, projection discriminator, truncation, style mixing, training phases."""

import pytest
import torch

from minissl.methods import GAN
from minissl.methods.gan import (
    Discriminator,
    Generator,
    ModulatedConv2d,
    StyleGenerator,
    d_loss,
    g_loss,
    orthogonal_penalty,
    rotate4,
    truncated_normal,
)


def test_projection_discriminator_is_unconditional_term_plus_embedding_inner_product():
    torch.manual_seed(0)
    d = Discriminator(8, channels=1, num_classes=5, width=8).eval()
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 4, 2])
    with torch.no_grad():
        h = d.body(x)
        expected = d.linear(h).squeeze(1) + (d.embed(y) * h).sum(1)
        out = d(x, y)
        other = d(x, (y + 1) % 5)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, other)  # the class changes the score
    with pytest.raises(ValueError, match="class-conditional"):
        d(x)


def test_spectral_norm_bounds_discriminator_layers():
    torch.manual_seed(0)
    d = Discriminator(8, channels=1, width=8)
    for _ in range(30):  # a few power iterations
        d(torch.rand(4, 1, 8, 8))
    w = d.body.last.weight.flatten(1)
    assert torch.linalg.matrix_norm(w.detach(), ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_losses_hinge_and_nonsaturating():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 1.0])
    assert d_loss(real, fake).item() == pytest.approx((0.5 + 0) / 2 + (0.5 + 2) / 2)
    assert g_loss(fake, "nonsaturating").item() == pytest.approx(
        torch.nn.functional.softplus(-fake).mean().item())
    with pytest.raises(ValueError, match="hinge"):
        d_loss(real, fake, "wasserstein")


def test_truncation_shrinks_the_sample_spread():
    torch.manual_seed(0)
    g = Generator(8, channels=1, z_dim=16, num_classes=3, width=16)
    gan = GAN(g, Discriminator(8, channels=1, num_classes=3, width=8))
    y = torch.zeros(256, dtype=torch.long)
    spread = {t: gan.sample(256, y=y, truncation=t, generator=torch.Generator().manual_seed(0))
              .std(0).mean().item() for t in (None, 1.0, 0.2)}
    assert spread[None] > spread[1.0] > spread[0.2]
    z = truncated_normal((4000, 2), 0.5, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # resampled, not clipped to the edges


def test_style_truncation_pulls_towards_the_mean_style():
    torch.manual_seed(0)
    g = StyleGenerator(8, channels=1, z_dim=8, w_dim=8, width=16)
    for _ in range(20):  # track the mean w
        g.map(torch.randn(64, 8))
    gan = GAN(g, Discriminator(8, channels=1, width=8))
    spread = [gan.sample(128, truncation=psi, generator=torch.Generator().manual_seed(0))
              .std(0).mean().item() for psi in (1.0, 0.5, 0.0)]
    assert spread[0] > spread[1] > spread[2]


def test_style_mixing_takes_coarse_styles_from_w1_and_fine_from_w2():
    torch.manual_seed(0)
    g = StyleGenerator(16, channels=1, z_dim=8, w_dim=8, width=16).eval()
    w1, w2 = g.map(torch.randn(2, 8)), g.map(torch.randn(2, 8))
    seen: list[torch.Tensor] = []
    convs = [layer.conv for layer in g.layers] + [g.to_rgb]
    hooks = [c.register_forward_hook(lambda m, inp, out: seen.append(inp[1])) for c in convs]
    k = 3
    with torch.no_grad():
        mixed = g.mix(w1, w2, k, generator=torch.Generator().manual_seed(0))
    for h in hooks:
        h.remove()
    assert len(seen) == g.num_ws == 6
    for i, w in enumerate(seen):
        torch.testing.assert_close(w, w1 if i < k else w2)
    with torch.no_grad():
        render = [g.synthesis(w, generator=torch.Generator().manual_seed(0)) for w in (w1, w2)]
        torch.testing.assert_close(g.mix(w1, w2, g.num_ws, generator=torch.Generator()
                                         .manual_seed(0)), render[0])
        torch.testing.assert_close(g.mix(w1, w2, 0, generator=torch.Generator().manual_seed(0)),
                                   render[1])
    assert not torch.allclose(mixed, render[0]) and not torch.allclose(mixed, render[1])
    with pytest.raises(ValueError, match="crossover_layer"):
        g.mix(w1, w2, 7)


def test_modulated_conv_demodulates_to_unit_output_scale():
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 8, w_dim=4)
    x = torch.randn(2, 16, 8, 8)
    out_a = conv(x, torch.randn(2, 4))
    out_b = conv(x, 10 * torch.randn(2, 4))
    # demodulation removes the overall scale of the style: outputs stay O(1)
    assert 0.3 < out_a.std() < 3 and 0.3 < out_b.std() < 3


def test_orthogonal_penalty_zero_for_orthogonal_rows():
    lin = torch.nn.Linear(4, 3, bias=False)
    torch.nn.init.orthogonal_(lin.weight)
    assert orthogonal_penalty(lin).item() == pytest.approx(0.0, abs=1e-10)
    torch.nn.init.constant_(lin.weight, 1.0)
    assert orthogonal_penalty(lin).item() == pytest.approx(6 * 16.0)


def test_rotate4_labels_and_quarter_turn():
    x = torch.rand(3, 1, 4, 4)
    xr, r = rotate4(x)
    assert xr.shape == (12, 1, 4, 4) and r.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    torch.testing.assert_close(xr[3:6], torch.rot90(x, 1, dims=(2, 3)))


def test_phases_touch_only_their_networks_and_rotation_switch():
    torch.manual_seed(0)
    g = Generator(8, channels=1, z_dim=4, num_classes=2, width=16)
    d = Discriminator(8, channels=1, num_classes=2, width=8)
    batch = (torch.rand(8, 1, 8, 8), torch.tensor([0, 1] * 4))
    gan = GAN(g, d, rotation=True)
    out = gan.training_step(batch, phase="d")
    out["loss"].backward()
    assert all(p.grad is None for p in g.parameters())  # fakes are made without gradients
    assert "rot_loss" in out and 0 <= out["rot_acc"] <= 1
    gan.zero_grad()
    out = gan.training_step(batch, phase="g")
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert "rot_loss" not in GAN(g, d).training_step(batch, phase="d")
    with pytest.raises(ValueError, match="phase"):
        gan.training_step(batch, phase="x")
    with pytest.raises(ValueError, match="rotation_head"):
        GAN(g, Discriminator(8, channels=1, num_classes=2, width=8, rotation_head=False),
            rotation=True)


def test_gan_trains_in_fit_and_ema_follows():
    from minissl.train import TrainConfig, fit

    torch.manual_seed(0)
    g = Generator(8, channels=1, z_dim=4, width=16)
    gan = GAN(g, Discriminator(8, channels=1, width=8), ema=0.5, lr_d=1e-3, lr_g=5e-4)
    x = torch.rand(64, 1, 8, 8)
    ema_before = [p.clone() for p in gan.generator_ema.parameters()]
    h = fit(gan, x, TrainConfig(max_steps=2, batch_size=16, optimizer="adam", progress=False))
    assert {"d/loss", "g/loss", "d/d_real", "loss"} <= set(h.keys())
    assert h["loss"][-1] == pytest.approx(h["d/loss"][-1] + h["g/loss"][-1], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(ema_before, gan.generator_ema.parameters()))
    opts = gan.optimizers()
    assert opts["d"][0]["lr"] == 1e-3 and opts["g"][0]["lr"] == 5e-4
