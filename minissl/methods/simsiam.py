"""SimSiam (Chen & He, 2021): a siamese network, a predictor and a stop-gradient; nothing else."""

from __future__ import annotations

import torch
from torch import nn

from minissl.augment import SimCLRAugment, TwoViews, default_augment
from minissl.losses import negative_cosine
from minissl.methods.inputs import image_batch
from minissl.monitor import embedding_std
from minissl.nn import MLPHead, weight_decay_groups


class SimSiam(nn.Module):
    """Two views through one shared encoder + projector; each predicts the other, stop-gradient.

    Chen & He, "Exploring Simple Siamese Representation Learning", 2021, arXiv:2011.10566.
    ``z = projector(encoder(view))``, ``p = predictor(z)``, and the loss is
    ``D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2`` (eq. 3) with ``D`` the
    :func:`~minissl.losses.negative_cosine`. No negatives, no momentum encoder: the paper shows
    that the stop-gradient (Sec. 4.1) and the predictor (Sec. 4.2) are what prevent collapse,
    and the two flags below build those ablations.

    Args:
        encoder: the backbone, (B, C, H, W) -> (B, encoder.feature_dim).
        augment: ``augment(x) -> (view1, view2)``; default two draws of ``SimCLRAugment``
            (colour jitter 0.4, 0.4, 0.4, 0.1: the MoCo v2 augmentation the paper uses).
        proj_dim: projector output size (2048 in the paper); also the width of the
            projector's hidden layer, as in the paper.
        hidden_dim: the predictor's hidden width, its bottleneck (512 = 2048 / 4 in the
            paper, Sec. 3).
        stop_gradient: ``False`` lets the gradient flow through both branches (collapses).
        predictor: ``False`` compares the projections directly, ``p = z`` (collapses).

    Example:
        >>> from minissl.nn import ConvNet
        >>> model = SimSiam(ConvNet(width=4), proj_dim=16, hidden_dim=4)
        >>> model.training_step((torch.rand(4, 3, 8, 8), None))["loss"].backward()
        >>> [g.get("fixed_lr", False) for g in model.param_groups()]
        [False, False, True, True]
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, encoder: nn.Module, augment: nn.Module | None = None,
        proj_dim: int = 256, hidden_dim: int = 64, stop_gradient: bool = True,
        predictor: bool = True,
    ) -> None:
        super().__init__()
        self.augment = augment
        self.stop_gradient = stop_gradient
        self.encoder = encoder
        # The CIFAR projector has 2 layers (App. D); BN follows every fc layer, the output one
        # included, and the output has no ReLU (Sec. 3, baseline settings).
        self.projector = MLPHead(encoder.feature_dim, proj_dim, proj_dim, num_layers=2,
                                 last_batch_norm=True)  # (B, D) -> (B, P)
        # A bottleneck MLP: 2048 -> 512 -> 2048 in the paper (Sec. 3), so 4x narrower inside.
        self.predictor = (MLPHead(proj_dim, hidden_dim, proj_dim, num_layers=2)
                          if predictor else nn.Identity())  # (B, P) -> (B, P)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, encoder.feature_dim) of a batch of images."""
        return self.encoder(x)

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # (B, C, H, W); labels are ignored
        self.augment = default_augment(  # built on first use
            self.augment, lambda size: TwoViews(SimCLRAugment(size)), x)
        v1, v2 = self.augment(x)
        z1 = self.projector(self.encoder(v1))  # (B, P)
        z2 = self.projector(self.encoder(v2))  # (B, P)
        p1, p2 = self.predictor(z1), self.predictor(z2)  # (B, P) each
        # Symmetrized loss, z treated as a constant on the other branch (eq. 3-4).
        sg = self.stop_gradient
        loss = (negative_cosine(p1, z2, stop_gradient=sg)
                + negative_cosine(p2, z1, stop_gradient=sg)) / 2
        return {"loss": loss, "z_std": embedding_std(z1)}

    def param_groups(self) -> list[dict]:
        """Encoder + projector on the schedule; the predictor in groups with ``fixed_lr``.

        The predictor's learning rate is not decayed: with a constant lr it works as well as or
        better than with the schedule (SimSiam, Sec. 4.2, "Predictor").
        """
        scheduled = [*self.encoder.parameters(), *self.projector.parameters()]
        groups = weight_decay_groups(scheduled)
        for g in weight_decay_groups(self.predictor.parameters()):
            groups.append({**g, "fixed_lr": True})
        return groups
