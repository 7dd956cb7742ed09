"""Autoencoders (DAE, VAE, MAE): the losses match references, the invariants hold, they train."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from minissl.losses import gaussian_kl, masked_patch_mse, vae_elbo
from minissl.methods import MAE, VAE, DenoisingAE
from minissl.methods.dae import CORRUPTIONS, corrupt
from minissl.methods.mae import random_masking
from minissl.methods.vae import reparameterize
from minissl.train import TrainConfig, fit


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_mae(**kw):
    kw = {"image_size": 16, "patch_size": 4, "in_channels": 3, "dim": 16, "depth": 1,
          "heads": 2, "decoder_dim": 16, "decoder_heads": 2, **kw}
    return MAE(**kw)


# ------------------------------------------------------------------------------------ losses

def test_closed_form_kl_equals_torch_kl_of_the_two_normals():
    mu, logvar = torch.randn(5, 4, generator=gen()), torch.randn(5, 4, generator=gen(1))
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)
    out = vae_elbo(torch.zeros(5, 1, 2, 2), torch.rand(5, 1, 2, 2), mu, logvar)
    torch.testing.assert_close(out["kl"], ref.mean())


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_is_recon_plus_beta_kl_per_example_averaged(likelihood):
    x, out = torch.rand(3, 1, 4, 4, generator=gen()), torch.randn(3, 1, 4, 4, generator=gen(1))
    mu, logvar = torch.randn(3, 2, generator=gen(2)), torch.randn(3, 2, generator=gen(3))
    res = vae_elbo(out, x, mu, logvar, beta=2.5, likelihood=likelihood, sigma=0.2)
    recon = 0.0
    for i in range(3):  # slow reference, one example at a time
        if likelihood == "bernoulli":
            p = torch.sigmoid(out[i])
            recon += -(x[i] * p.log() + (1 - x[i]) * (1 - p).log()).sum() / 3
        else:
            recon += 0.5 * ((out[i] - x[i]) ** 2).sum() / 0.2**2 / 3
    torch.testing.assert_close(res["recon"], recon)
    torch.testing.assert_close(res["loss"], res["recon"] + 2.5 * res["kl"])


def test_elbo_rejects_unknown_likelihood_and_wrong_shapes():
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="bernoulli"):
        vae_elbo(x, x, torch.zeros(2, 2), torch.zeros(2, 2), likelihood="poisson")
    with pytest.raises(ValueError, match="must match"):
        vae_elbo(x[:, :, :2], x, torch.zeros(2, 2), torch.zeros(2, 2))


def test_reparameterised_sample_has_the_right_mean_and_variance():
    n = 40_000
    mu = torch.tensor([1.0, -2.0]).repeat(n, 1).requires_grad_()
    logvar = torch.tensor([math.log(0.25), math.log(4.0)]).repeat(n, 1).requires_grad_()
    z = reparameterize(mu, logvar, gen())  # (n, 2)
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.04, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0]), rtol=0.04, atol=0)
    z.sum().backward()  # the whole point of the trick: gradients reach mu and logvar
    assert torch.equal(mu.grad, torch.ones_like(mu)) and logvar.grad.abs().sum() > 0


def test_masked_patch_mse_gradient_is_zero_on_visible_patches():
    pred = torch.randn(2, 6, 12, generator=gen(), requires_grad=True)
    target = torch.rand(2, 6, 12, generator=gen(1))
    _, mask = random_masking(2, 6, 0.5, gen(2))
    for norm_pix in (False, True):
        pred.grad = None
        masked_patch_mse(pred, target, mask, norm_pix).backward()
        g = pred.grad.abs().sum(-1)  # (B, L)
        assert (g[mask == 0] == 0).all() and (g[mask == 1] > 0).all()


# -------------------------------------------------------------------------------- corruption

def test_masking_zeroes_exactly_the_stated_fraction():
    x = 0.1 + 0.9 * torch.rand(4, 3, 8, 8, generator=gen())  # no zero pixels to start with
    y = corrupt(x, "masking", 0.3, gen(1))
    zeroed = (y == 0).flatten(1).sum(1)
    assert zeroed.tolist() == [round(0.3 * 192)] * 4
    assert torch.equal(y[y != 0], x[y != 0])  # the rest is untouched


def test_salt_and_pepper_sets_the_stated_fraction_to_zero_or_one():
    x = torch.full((4, 1, 16, 16), 0.5)
    y = corrupt(x, "salt_pepper", 0.25, gen())
    changed = y != 0.5
    assert changed.flatten(1).sum(1).tolist() == [64] * 4
    assert ((y[changed] == 0) | (y[changed] == 1)).all()
    assert 0.35 < (y[changed] == 1).float().mean() < 0.65  # a fair coin


def test_gaussian_adds_noise_of_the_stated_std_and_clamps():
    x = torch.full((8, 1, 32, 32), 0.5)
    noise = corrupt(x, "gaussian", 0.1, gen()) - x  # clamping is rare 5 std away
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.1) < 0.005
    y = corrupt(x, "gaussian", 2.0, gen())
    assert y.min() == 0 and y.max() == 1


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruption_is_reproducible_with_a_generator(kind):
    x = torch.rand(2, 3, 8, 8, generator=gen())
    assert torch.equal(corrupt(x, kind, 0.3, gen(5)), corrupt(x, kind, 0.3, gen(5)))


def test_unknown_corruption_lists_the_valid_ones():
    with pytest.raises(ValueError, match="salt_pepper"):
        corrupt(torch.rand(1, 1, 4, 4), "blur", 0.1)
    with pytest.raises(ValueError, match="masking"):
        DenoisingAE(in_channels=1, width=4, image_size=8, corruption="blur")


# ------------------------------------------------------------------------------------- MAE

def test_random_masking_hides_the_ratio_per_sample():
    keep_idx, mask = random_masking(64, 16, 0.75, gen())
    assert keep_idx.shape == (64, 4) and (mask.sum(1) == 12).all()
    assert (mask.gather(1, keep_idx) == 0).all()  # keep_idx and mask agree
    assert len({tuple(k.tolist()) for k in keep_idx}) > 1  # a different mask per sample
    again = random_masking(3, 16, 0.75, gen(1))[0]
    assert torch.equal(random_masking(3, 16, 0.75, gen(1))[0], again)


def test_mae_encoder_never_sees_the_masked_patches():
    mae = tiny_mae().eval()
    x = torch.rand(2, 3, 16, 16, generator=gen())
    keep_idx, mask = random_masking(2, 16, 0.75, gen(1))
    patches = mae.vit.patchify(x)  # (2, 16, 48)
    changed = patches + 5.0 * mask[..., None]  # scramble every hidden patch
    x2 = mae.vit.unpatchify(changed)
    with torch.no_grad():
        torch.testing.assert_close(mae.vit.forward_tokens(x, keep_idx),
                                   mae.vit.forward_tokens(x2, keep_idx))
        torch.testing.assert_close(mae(x, keep_idx), mae(x2, keep_idx))  # nor does the decoder
        assert not torch.allclose(mae.encoder(x), mae.encoder(x2))  # the probe sees everything


def test_mae_loss_ignores_visible_patches():
    mae = tiny_mae()
    x = torch.rand(2, 3, 16, 16, generator=gen())
    keep_idx, mask = random_masking(2, 16, 0.75, gen(1))
    pred = mae(x, keep_idx)
    pred.retain_grad()
    masked_patch_mse(pred, mae.vit.patchify(x), mask, norm_pix=True).backward()
    g = pred.grad.abs().sum(-1)  # (B, L)
    assert (g[mask == 0] == 0).all() and (g[mask == 1] > 0).all()


# ------------------------------------------------------------------------------------- VAE

def test_vae_with_beta_zero_is_a_plain_autoencoder():
    vae = VAE(in_channels=1, image_size=8, latent_dim=4, width=4, beta=0.0)
    out = vae.training_step((torch.rand(4, 1, 8, 8, generator=gen()), None))
    assert out["kl"] > 0 and torch.equal(out["loss"], out["recon"])


def test_vae_sample_interpolate_traverse_shapes_with_a_2d_latent():
    vae = VAE(in_channels=1, image_size=8, latent_dim=2, width=4, likelihood="gaussian")
    x = torch.rand(4, 1, 8, 8, generator=gen())
    vae.training_step((x, None))["loss"].backward()
    assert vae.training  # the helpers below must leave the mode as it was
    s = vae.sample(6, generator=gen(1))
    assert s.shape == (6, 1, 8, 8) and 0 <= s.min() and s.max() <= 1
    assert torch.equal(s, vae.sample(6, generator=gen(1)))
    line = vae.interpolate(x[0], x[1], steps=5)
    assert line.shape == (5, 1, 8, 8)
    trav = vae.traverse(x[0], dim=1, values=[-2.0, 0.0, 2.0])
    assert trav.shape == (3, 1, 8, 8) and vae.training
    vae.eval()
    with torch.no_grad():  # the ends of the line are the two images' mean codes, decoded
        torch.testing.assert_close(line[[0, -1]], vae.decode(vae.encoder(x[:2])))
        assert vae.encoder(x).shape == (4, vae.encoder.feature_dim)
    with pytest.raises(ValueError, match="dim"):
        vae.traverse(x[0], dim=2, values=[0.0])


# ------------------------------------------------------------------------- every method trains

METHODS = {
    "dae": (lambda: DenoisingAE(in_channels=1, width=8, image_size=8, strength=0.2), (1, 8)),
    "dae_sp": (lambda: DenoisingAE(in_channels=3, width=8, image_size=8,
                                   corruption="salt_pepper", strength=0.2), (3, 8)),
    "vae": (lambda: VAE(in_channels=1, image_size=8, latent_dim=4, width=8), (1, 8)),
    "vae_gauss": (lambda: VAE(in_channels=3, image_size=8, latent_dim=2, width=8,
                              likelihood="gaussian"), (3, 8)),
    "mae": (lambda: tiny_mae(norm_pix_loss=False, mask_ratio=0.5), (3, 16)),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_trains_on_a_fixed_batch(name):
    torch.manual_seed(0)
    build, (c, s) = METHODS[name]
    method = build()
    # Four blocky binary images: structure to learn, unlike uniform noise (whose BCE floor
    # is its entropy, so a loss on it can hardly fall).
    coarse = (torch.rand(4, c, 2, 2, generator=gen()) > 0.5).float()
    x = F.interpolate(coarse, size=(s, s))  # (4, C, S, S)
    out = method.training_step((x, None))
    out["loss"].backward()  # forward and backward on a batch of 4
    assert out["loss"].ndim == 0 and all(p.grad is not None for p in method.parameters()
                                         if p.requires_grad)
    feats = method.encoder(x)
    assert feats.shape == (4, method.encoder.feature_dim)
    h = fit(method, x, TrainConfig(max_steps=50, batch_size=4, lr=1e-2, device="cpu",
                                   progress=False, seed=0))
    first, last = sum(h["loss"][:3]) / 3, sum(h["loss"][-3:]) / 3
    assert last < 0.8 * first, (first, last)


def test_methods_are_registered():
    import minissl.methods as m

    assert {"DenoisingAE", "VAE", "MAE"} <= set(m.available())
