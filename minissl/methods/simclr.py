"""SimCLR (Chen et al., 2020): pull two views of an image together, push the batch apart."""

from __future__ import annotations

import torch
from torch import nn

from minissl.augment import SimCLRAugment, TwoViews, default_augment
from minissl.losses.contrastive import nt_xent, nt_xent_accuracy
from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead


class SimCLR(nn.Module):
    """SimCLR: two augmented views, encoder, projection head, NT-Xent over the batch.

    Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive Learning of
    Visual Representations", 2020, arXiv:2002.05709. The encoder's features are what we
    evaluate; the loss is computed on a projection of them, because "a nonlinear projection
    head improves the representation quality of the layer before it" (Sec. 4.2).

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        augment: ``augment(x) -> (view1, view2)``; ``None`` builds two independent draws of
            :class:`minissl.augment.SimCLRAugment` (``TwoViews``) for the image size on the
            first step.
        proj_dim: output size of the projection head (128 in the paper).
        hidden_dim: hidden width of the head; ``None`` = ``encoder.feature_dim`` (as in the
            paper).
        temperature: NT-Xent's tau (0.5 is the paper's choice for CIFAR-10, App. B.9).

    Example:
        >>> from minissl.nn import ConvNet
        >>> enc = ConvNet(in_channels=3, width=4)
        >>> out = SimCLR(enc).training_step((torch.rand(4, 3, 8, 8), None))
        >>> sorted(out), out["loss"].shape
        (['loss', 'pos_acc'], torch.Size([]))
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, encoder: nn.Module, augment: nn.Module | None = None,
        proj_dim: int = 128, hidden_dim: int | None = None, temperature: float = 0.5,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.encoder = encoder
        d = encoder.feature_dim
        # Linear -> BN -> ReLU -> Linear: the paper's g(.) with the BN its code uses.
        self.head = MLPHead(d, hidden_dim or d, proj_dim)
        self.augment = augment
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, encoder.feature_dim) of a batch of images."""
        return self.encoder(x)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Projections (B, proj_dim) of a batch of images: what the loss compares."""
        return self.head(self.encoder(x))

    def training_step(self, batch) -> dict:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch  # labels are ignored
        custom = self.augment is not None and isinstance(x, torch.Tensor) and x.dim() >= 2
        if not custom or x.dim() == 4:  # a custom augmentation may take other shapes
            x = image_batch(batch, self)  # (N, C, H, W)
        if len(x) < 2:
            # Each image's negatives are the other images of the batch: one image has none,
            # and the loss would be a constant 0 that teaches nothing.
            raise ValueError(f"SimCLR needs at least 2 images per batch (the other images are "
                             f"each image's negatives); got {len(x)}. Use batch_size >= 2")
        # Built on the first batch: only now do we know the image size and the device.
        # Two independent draws of the same augmentation family give the two views (Sec. 2.1).
        self.augment = default_augment(self.augment, lambda size: TwoViews(SimCLRAugment(size)), x)
        v1, v2 = self.augment(x)  # (N, C, H', W') each
        # One pass over both views: BN statistics are then those of all 2N views.
        z = self.project(torch.cat([v1, v2]))  # (2N, proj_dim)
        z1, z2 = z.chunk(2)  # (N, proj_dim) each
        loss = nt_xent(z1, z2, self.temperature)
        return {"loss": loss, "pos_acc": nt_xent_accuracy(z1, z2)}
