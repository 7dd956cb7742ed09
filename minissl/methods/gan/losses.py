"""The adversarial losses of a GAN and BigGAN's orthogonal regularisation of the generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("hinge", "nonsaturating")


# ------------------------------------------------------------------------------ losses


def d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The discriminator's loss on its logits for real and generated images.

    ``"nonsaturating"`` is the binary cross-entropy with real = 1 and generated = 0
    (Goodfellow et al., 2014, arXiv:1406.2661); ``"hinge"`` is
    ``relu(1 - D(x)) + relu(1 + D(G(z)))`` (Miyato et al., 2018, arXiv:1802.05957).

    Args:
        real: (B,) logits on real images.
        fake: (B',) logits on generated images.
        kind: ``"hinge"`` or ``"nonsaturating"``.

    Example:
        >>> round(d_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item(), 3)
        0.0
        >>> round(d_loss(torch.zeros(1), torch.zeros(1), "nonsaturating").item(), 3)
        1.386
    """
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "nonsaturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {list(LOSSES)}")


def g_loss(fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated images.

    ``"nonsaturating"``: ``-log sigmoid(D(G(z)))``, whose gradient stays large while the
    discriminator wins (Goodfellow et al., 2014); ``"hinge"``: ``-D(G(z))`` (Miyato et al., 2018).

    Args:
        fake: (B,) logits on generated images.
        kind: ``"hinge"`` or ``"nonsaturating"``.

    Example:
        >>> g_loss(torch.tensor([1.0, 3.0])).item()
        -2.0
    """
    if kind == "hinge":
        return -fake.mean()
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {list(LOSSES)}")


def orthogonal_penalty(module: nn.Module) -> torch.Tensor:
    """BigGAN's orthogonal regularisation: ``sum_W ||W W^T * (1 - I)||_F^2`` over weights.

    Only the off-diagonal of the Gram matrix is penalised, so filters are pushed to be
    orthogonal without constraining their norms (Brock et al., 2019, arXiv:1809.11096, Sec. 3.1).
    Every weight with two or more dimensions is flattened to (out, rest); embeddings and a
    StyleGAN mapping network (whose stored weights are rescaled at run time) are skipped.

    Args:
        module: the network whose weights are penalised (usually a generator).

    Example:
        >>> lin = nn.Linear(3, 3, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.eye(3))
        >>> orthogonal_penalty(lin).item()
        0.0
    """
    total = None
    for name, p in module.named_parameters():
        if p.dim() < 2 or not p.requires_grad or "embed" in name or "mapping" in name:
            continue
        w = p.flatten(1)
        gram = w @ w.t()
        off = gram * (1 - torch.eye(len(w), device=w.device, dtype=w.dtype))
        term = (off ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros((), device=next(module.parameters()).device)
    return total
