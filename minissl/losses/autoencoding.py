"""Losses of the autoencoders: the VAE's negative ELBO and MAE's masked-patch error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


def _check(loss: str, pattern: str, **tensors: torch.Tensor) -> None:
    """Float tensors of ``len(pattern)`` dimensions, none of them empty, all of one shape."""
    first_name, first = next(iter(tensors.items()))
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{loss}: {name} must be a tensor {pattern}; got "
                            f"{type(t).__name__}")
        if t.dim() != len(pattern.strip("()").split(",")):
            raise ValueError(f"{loss}: {name} must have shape {pattern}; got {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError(f"{loss}: {name} is empty (shape {tuple(t.shape)}); the loss "
                             "needs at least one example with at least one value")
        if not t.is_floating_point():
            raise TypeError(f"{loss}: {name} must be a floating-point tensor; got dtype "
                            f"{t.dtype}")
        if t.shape != first.shape:
            raise ValueError(f"{loss}: {first_name} and {name} must have the same shape; got "
                             f"{tuple(first.shape)} and {tuple(t.shape)}")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, in closed form.

    Kingma & Welling, "Auto-Encoding Variational Bayes", 2013, arXiv:1312.6114, Appendix B:
    ``-0.5 * sum_j (1 + logvar_j - mu_j**2 - exp(logvar_j))``.

    Args:
        mu: posterior means (B, Z).
        logvar: posterior log-variances (B, Z).

    Returns:
        (B,) non-negative KL divergences, in nats.

    Example:
        >>> gaussian_kl(torch.ones(1, 3), torch.zeros(1, 3)).tolist()  # 3 * 0.5 * 1**2
        [1.5]
    """
    _check("gaussian_kl", "(B, Z)", mu=mu, logvar=logvar)
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)  # (B,)


def vae_elbo(
    x_hat_or_logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    beta: float = 1.0, likelihood: str = "bernoulli", sigma: float = 0.1,
) -> dict[str, torch.Tensor]:
    """The VAE's negative ELBO, ``recon + beta * kl``, per example averaged over the batch.

    Kingma & Welling, "Auto-Encoding Variational Bayes", 2013, arXiv:1312.6114 (Eq. 10);
    ``beta`` weighs the KL as in Higgins et al., "beta-VAE", ICLR 2017 (``beta=0`` leaves a
    plain autoencoder with a noisy code). The reconstruction term is ``-log p(x | z)``
    summed over pixels:

    - ``"bernoulli"``: binary cross-entropy of the decoder's *logits* with the pixels (which
      may be grey levels in [0, 1], as is usual);
    - ``"gaussian"``: ``0.5 * ||x - x_hat||**2 / sigma**2`` for a decoder *mean* ``x_hat``
      with fixed variance ``sigma**2``, dropping the constant. With pixels in [0, 1],
      ``sigma=1`` would make the reconstruction term negligible next to the KL and the
      code would collapse to the prior; a small ``sigma`` is a sharper likelihood.

    Args:
        x_hat_or_logits: decoder output (B, C, H, W): logits (Bernoulli) or means (Gaussian).
        x: the input images (B, C, H, W) in [0, 1].
        mu: posterior means (B, Z).
        logvar: posterior log-variances (B, Z).
        beta: weight of the KL term.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        sigma: standard deviation of the Gaussian likelihood (ignored for Bernoulli).

    Returns:
        ``{"loss", "recon", "kl"}``: 0-d tensors, each a per-example sum averaged over B.

    Example:
        >>> x = torch.full((2, 1, 2, 2), 0.5)
        >>> out = vae_elbo(torch.zeros(2, 1, 2, 2), x, torch.zeros(2, 3), torch.zeros(2, 3))
        >>> round(out["recon"].item(), 4), out["kl"].item()  # 4 pixels * log 2
        (2.7726, 0.0)
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; use one of {list(LIKELIHOODS)}")
    if x_hat_or_logits.shape != x.shape:
        raise ValueError(
            f"decoder output has shape {tuple(x_hat_or_logits.shape)} but the images "
            f"{tuple(x.shape)}; they must match"
        )
    _check("vae_elbo", "(B, C, H, W)", x=x, x_hat_or_logits=x_hat_or_logits)
    _check("vae_elbo", "(B, Z)", mu=mu, logvar=logvar)
    if len(mu) != len(x):
        raise ValueError(f"vae_elbo: mu and logvar hold {len(mu)} examples but x holds "
                         f"{len(x)}; give one code per image")
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(x_hat_or_logits, x, reduction="none")
    else:
        nll = 0.5 * (x_hat_or_logits - x).pow(2) / sigma**2  # (B, C, H, W)
    recon = nll.flatten(1).sum(dim=1).mean()  # sum over pixels, mean over the batch
    kl = gaussian_kl(mu, logvar).mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def masked_patch_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = False,
) -> torch.Tensor:
    """Mean squared error over the *hidden* patches only (MAE's loss).

    He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021, arXiv:2111.06377:
    "we compute the loss only on masked patches"; with ``norm_pix`` each target patch is
    first normalised by its own mean and standard deviation, which the paper finds gives
    better representations.

    Args:
        pred: predicted patches (B, L, P*P*C).
        target: true patches (B, L, P*P*C), e.g. from ``TinyViT.patchify``.
        mask: (B, L), 1 where the patch was hidden, 0 where visible.
        norm_pix: normalise every target patch before comparing.

    Returns:
        0-d tensor: the error per pixel, averaged over hidden patches.

    Example:
        >>> pred, target = torch.zeros(1, 2, 4), torch.ones(1, 2, 4)
        >>> masked_patch_mse(pred, target, torch.tensor([[1.0, 0.0]])).item()
        1.0
    """
    _check("masked_patch_mse", "(B, L, D)", pred=pred, target=target)
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(pred.shape[:2]):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"masked_patch_mse: mask must have shape (B, L) = "
                         f"{tuple(pred.shape[:2])}, one entry per patch; got {got}")
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()  # (B, L, P*P*C)
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (B, L)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
