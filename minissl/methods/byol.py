"""BYOL (Grill et al., 2020): predict a slowly moving average of yourself, with no negatives."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from minissl.augment import BYOLAugment, default_augment
from minissl.losses import negative_cosine
from minissl.methods.inputs import image_batch
from minissl.monitor import embedding_std
from minissl.nn import MLPHead, ema_update


class BYOL(nn.Module):
    """An online network learns to predict the projection of a target network that is its EMA.

    Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
    2020, arXiv:2006.07733. The online network is encoder -> projector -> predictor; the target
    network is a copy of encoder -> projector that gets no gradient and follows the online
    weights, ``xi <- tau xi + (1 - tau) theta``, after every step (Sec. 3.1), with ``tau``
    raised from ``base_momentum`` to 1 on a cosine schedule (Sec. 3.2). The loss is
    :func:`~minissl.losses.negative_cosine` (the paper's ``2 - 2 cos`` up to an affine map),
    averaged over both directions: view 1 predicts view 2's target and vice versa.

    Args:
        encoder: the online backbone, (B, C, H, W) -> (B, encoder.feature_dim); kept as
            ``self.encoder``.
        augment: ``augment(x) -> (view1, view2)``; default ``BYOLAugment`` at the batch's size.
        proj_dim: projection (and prediction) size (the paper uses 256).
        hidden_dim: hidden width of projector and predictor (the paper uses 4096).
        base_momentum: ``tau_base`` (0.996 in the paper).
        momentum: a constant ``tau`` instead of the schedule; ``0.0`` makes the target a copy of
            the online network after every step, the ablation that collapses (Table 5).

    Example:
        >>> from minissl.nn import ConvNet
        >>> byol = BYOL(ConvNet(width=4), proj_dim=8, hidden_dim=16)
        >>> out = byol.training_step((torch.rand(4, 3, 8, 8), None))
        >>> out["loss"].backward(); byol.on_after_step(1, 10)
        >>> byol.momentum_at(0, 10), byol.momentum_at(10, 10)
        (0.996, 1.0)
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, encoder: nn.Module, augment: nn.Module | None = None,
        proj_dim: int = 128, hidden_dim: int = 512, base_momentum: float = 0.996,
        momentum: float | None = None,
    ) -> None:
        super().__init__()
        self.augment = augment
        self.base_momentum, self.momentum = base_momentum, momentum
        self.encoder = encoder
        self.projector = MLPHead(encoder.feature_dim, hidden_dim, proj_dim)  # (B, D) -> (B, P)
        # the predictor has the projector's architecture (Sec. 3.3)
        self.predictor = MLPHead(proj_dim, hidden_dim, proj_dim)  # (B, P) -> (B, P)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)  # only the EMA moves the target (the optimizer never sees it)
        self.tau = momentum if momentum is not None else base_momentum  # the last tau used

    def target_parameters(self):
        """The target network's parameters (never trained by gradient)."""
        yield from self.target_encoder.parameters()
        yield from self.target_projector.parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The online encoder's features (B, encoder.feature_dim) of a batch of images."""
        return self.encoder(x)

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # (B, C, H, W); labels are ignored
        self.augment = default_augment(self.augment, BYOLAugment, x)  # built on first use
        v1, v2 = self.augment(x)  # two views from BYOL's two (asymmetric) distributions
        z1 = self.projector(self.encoder(v1))  # (B, P)
        z2 = self.projector(self.encoder(v2))  # (B, P)
        p1, p2 = self.predictor(z1), self.predictor(z2)  # (B, P) each
        with torch.no_grad():  # the target only provides regression targets
            t1 = self.target_projector(self.target_encoder(v1))  # (B, P)
            t2 = self.target_projector(self.target_encoder(v2))  # (B, P)
        # the loss is symmetrized: each view goes through the online network once and through
        # the target network once (Sec. 3.1, eq. 2)
        loss = (negative_cosine(p1, t2) + negative_cosine(p2, t1)) / 2
        return {"loss": loss, "tau": self.tau, "z_std": embedding_std(z1)}

    def momentum_at(self, step: int, total_steps: int) -> float:
        """``tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2`` (BYOL, Sec. 3.2), or the constant.

        Args:
            step: the step ``k`` (0 at the start).
            total_steps: ``K``; ``tau`` reaches 1 at ``k = K``.
        """
        if self.momentum is not None:
            return float(self.momentum)
        k = min(step, total_steps) / max(total_steps, 1)
        return 1 - (1 - self.base_momentum) * (math.cos(math.pi * k) + 1) / 2

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """Move the target towards the online network: ``xi <- tau xi + (1 - tau) theta``."""
        self.tau = self.momentum_at(step, total_steps)
        # BN running statistics (the buffers) follow the online network
        ema_update(self.target_encoder, self.encoder, self.tau)
        ema_update(self.target_projector, self.projector, self.tau)
