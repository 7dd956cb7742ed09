"""The loss of the self-prediction methods (BYOL, SimSiam): predict one view from the other."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(
    p: torch.Tensor, z: torch.Tensor, stop_gradient: bool = True
) -> torch.Tensor:
    """The mean over the batch of ``-cos(p, z)``, with ``z`` detached (stop-gradient).

    Chen & He, "Exploring Simple Siamese Representation Learning", 2021, arXiv:2011.10566,
    eq. 1-2: ``D(p, z) = -p/||p|| . z/||z||`` and ``z`` is treated as a constant,
    ``D(p, stopgrad(z))``, so gradients reach the predictor's branch only. BYOL (Grill et al.,
    "Bootstrap Your Own Latent", 2020, arXiv:2006.07733, eq. 2) writes the same loss as the
    squared distance of the normalised vectors, ``||p/||p|| - z/||z||||^2 = 2 - 2 cos(p, z)``:
    an affine map of this one, so both have the same minimisers and gradients up to a factor 2.
    The value lies in [-1, 1]; -1 means every prediction points exactly at its target.

    Args:
        p: predictions (N, D), the branch that learns.
        z: targets (N, D), the branch that is held fixed; it is detached here.
        stop_gradient: detach ``z``. ``False`` only for the ablation that shows collapse
            (SimSiam, Sec. 4.1, Fig. 2).

    Returns:
        A scalar tensor.

    Example:
        >>> p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
        >>> z = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
        >>> loss = negative_cosine(p, z)
        >>> round(loss.item(), 4)  # (-1 + 0) / 2
        -0.5
        >>> loss.backward(); z.grad is None
        True
    """
    if p.dim() != 2 or p.shape != z.shape:
        raise ValueError(
            f"negative_cosine needs p and z of the same shape (N, D); "
            f"got p {tuple(p.shape)} and z {tuple(z.shape)}"
        )
    if p.shape[0] == 0:
        raise ValueError("negative_cosine got an empty batch (N = 0); the loss needs a batch")
    # "z is treated as a constant" (SimSiam, eq. 2): the stop-gradient is the whole trick.
    if stop_gradient:
        z = z.detach()
    cos = F.cosine_similarity(p, z, dim=1)  # (N,)
    return -cos.mean()
