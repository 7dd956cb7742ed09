"""Watch for collapse: are all the embeddings turning into the same vector?

A method without negatives can reach zero loss by mapping every image to one constant vector.
Two numbers catch it during training, whatever the method:

- :func:`embedding_std`, the per-dimension standard deviation of the l2-normalised embeddings
  over a batch: about ``1/sqrt(D)`` when the embeddings spread over the sphere, 0 when they all
  coincide (SimSiam, Chen & He, 2021, arXiv:2011.10566, Sec. 4.1 and Fig. 2);
- :func:`effective_rank`, how many directions the embeddings really use (Roy & Vetterli, 2007).

:class:`CollapseMonitor` computes both on a fixed batch as ``fit``'s callback and warns when
collapse is detected.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from minissl.utils import check_shape


class CollapseWarning(UserWarning):
    """The embeddings of a run have (nearly) collapsed to a single vector."""


def embedding_std(z: torch.Tensor) -> float:
    """The mean over dimensions of the std over the batch of the l2-normalised embeddings.

    SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", 2021,
    arXiv:2011.10566, Sec. 4.1): "if the outputs collapse to a constant vector, their std over
    all samples should be zero for each channel"; if they are spread like an isotropic Gaussian,
    the std is ``1/sqrt(D)``.

    Args:
        z: embeddings (N, D), N >= 2.

    Returns:
        A float in [0, 1].

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> round(embedding_std(torch.randn(4000, 16, generator=g)) * 4, 1)  # 1/sqrt(16) = 1/4
        1.0
        >>> embedding_std(torch.ones(10, 16))
        0.0
    """
    check_shape(z, ("N", "D"), "embedding_std input")
    z = F.normalize(z.detach().float(), dim=1)  # (N, D) on the unit sphere
    return float(z.std(dim=0).mean())  # std over the batch (D,), then the mean over dims


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """The exponential of the entropy of the normalised singular values of ``z``.

    Roy & Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007:
    with ``p_k = s_k / sum(s)``, ``erank = exp(-sum p_k log p_k)``. It lies between 1 and the
    rank, and equals the rank when every non-zero singular value is the same; a collapsed set of
    embeddings has an effective rank close to 1.

    Args:
        z: embeddings (N, D).
        eps: guards ``log 0``.

    Returns:
        A float in [1, min(N, D)].

    Example:
        >>> round(effective_rank(torch.eye(5)), 3)
        5.0
        >>> round(effective_rank(torch.ones(8, 4)), 3)
        1.0
    """
    check_shape(z, ("N", "D"), "effective_rank input")
    s = torch.linalg.svdvals(z.detach().double())  # (min(N, D),)
    p = s / (s.sum() + eps)  # (min(N, D),) a probability distribution over directions
    return float(torch.exp(-(p * torch.log(p + eps)).sum()))


class CollapseMonitor:
    """A ``fit`` callback that embeds a fixed batch and warns when the embeddings collapse.

    Use it with ``fit(method, data, cfg, callback=monitor, eval_every=monitor.every)``: each
    call returns ``{"emb_std", "emb_std_healthy", "eff_rank"}``, which ``fit`` logs, and raises
    a :class:`CollapseWarning` naming the step when ``emb_std < threshold / sqrt(D)``.

    Args:
        data: images to embed: an ``ImageDataset``, a tensor (N, C, H, W) or ``(images, labels)``;
            the first ``num_images`` are used, the same ones at every call.
        every: the suggested ``eval_every`` (steps between calls).
        threshold: collapse is declared below this fraction of the healthy ``1/sqrt(D)``.
        embed: ``embed(method, images) -> (N, D)``. By default the projector's output,
            ``method.projector(method.encoder(images))``, when the method has a projector (as
            the SimSiam paper watches), else ``method.encoder(images)``: backbone features
            after a ReLU are all positive, so even a random encoder sits well below
            ``1/sqrt(D)`` there (about 0.2 of it for ConvNet) and would raise false alarms.
        num_images: size of the fixed batch.

    Attributes:
        records: every call's values, with the step under ``"step"``.
        collapsed_at: the first step at which collapse was detected, or ``None``.

    Example:
        >>> class Constant(nn.Module):  # an encoder that has collapsed completely
        ...     def forward(self, x):
        ...         return x.new_ones(len(x), 8)
        >>> method = nn.Module(); method.encoder = Constant()
        >>> monitor = CollapseMonitor(torch.rand(16, 3, 8, 8))
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = monitor(method, step=7)
        >>> out["emb_std"], round(out["emb_std_healthy"], 4), str(caught[0].message)[:31]
        (0.0, 0.3536, 'embeddings collapsed at step 7:')
    """

    def __init__(
        self, data, every: int = 50, threshold: float = 0.2,
        embed: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
        num_images: int = 256,
    ) -> None:
        images = getattr(data, "images", data)
        if isinstance(images, (tuple, list)):
            images = images[0]
        self.images = images[:num_images]  # (n, C, H, W), fixed for the whole run
        self.every, self.threshold, self.embed = every, threshold, embed
        self.records: list[dict] = []
        self.collapsed_at: int | None = None

    def _embed(self, method: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            return self.embed(method, x)
        if isinstance(getattr(method, "projector", None), nn.Module):
            return method.projector(method.encoder(x))
        return method.encoder(x)

    @torch.no_grad()
    def __call__(self, method: nn.Module, step: int) -> dict:
        was_training = method.training
        method.eval()  # running BN statistics: the embedding of an image must not see its batch
        try:
            param = next(method.parameters(), None)
            x = self.images.to(param.device) if param is not None else self.images
            z = self._embed(method, x)  # (n, D)
        finally:
            method.train(was_training)
        healthy = 1.0 / math.sqrt(z.shape[1])
        out = {"emb_std": embedding_std(z), "emb_std_healthy": healthy,
               "eff_rank": effective_rank(z)}
        self.records.append({"step": step, **out})
        if out["emb_std"] < self.threshold * healthy:
            if self.collapsed_at is None:
                self.collapsed_at = step
            warnings.warn(
                f"embeddings collapsed at step {step}: std {out['emb_std']:.4f} is below "
                f"{self.threshold} x the healthy 1/sqrt(D) = {healthy:.4f} "
                f"(effective rank {out['eff_rank']:.2f})",
                CollapseWarning, stacklevel=2,
            )
        return out
