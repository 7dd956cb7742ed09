"""The GAN's discriminator: spectrally normalised residual blocks and a projection head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.gan.biggan import _num_ups, _sn


class _DBlock(nn.Module):
    # residual down-block: (ReLU)-conv-ReLU-conv-avgpool, plus conv1x1-avgpool shortcut
    def __init__(self, cin: int, cout: int, sn: bool, first: bool) -> None:
        super().__init__()
        self.conv1 = _sn(nn.Conv2d(cin, cout, 3, padding=1), sn)
        self.conv2 = _sn(nn.Conv2d(cout, cout, 3, padding=1), sn)
        self.skip = _sn(nn.Conv2d(cin, cout, 1), sn)
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.skip(x), 2)


class DiscriminatorBody(nn.Module):
    """The discriminator's feature extractor: residual down-blocks, ReLU, global sum pooling.

    Maps (B, C, S, S) to (B, feature_dim); a backbone like any other, so its features can be
    probed like an SSL encoder's.

    Example:
        >>> DiscriminatorBody(16, channels=1, width=16)(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 64])
    """

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 64,
                 spectral_norm: bool = True) -> None:
        super().__init__()
        ups = _num_ups(image_size)
        widths = [channels] + [min(width * 2 ** i, 8 * width) for i in range(ups + 1)]
        self.blocks = nn.Sequential(*(_DBlock(widths[i], widths[i + 1], spectral_norm, i == 0)
                                      for i in range(ups)))
        self.last = _sn(nn.Conv2d(widths[ups], widths[ups + 1], 3, padding=1), spectral_norm)
        self.feature_dim = widths[ups + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.last(F.relu(self.blocks(x)))
        return F.relu(h).sum(dim=(2, 3))


class Discriminator(nn.Module):
    """A spectrally normalised residual discriminator with projection conditioning.

    ``D(x, y) = psi(h) + <embed(y), h>`` with ``h = body(x)``: an unconditional linear term
    plus the inner product of a class embedding with the features (Miyato & Koyama, "cGANs
    with Projection Discriminator", 2018, arXiv:1802.05637). Spectral normalisation bounds
    every layer's Lipschitz constant (Miyato et al., 2018, arXiv:1802.05957). With
    ``rotation_head`` a linear layer on ``h`` predicts which of 4 rotations an image went
    through (Chen et al., 2019, arXiv:1811.11212).

    Args:
        image_size: S of the input images.
        channels: C of the input images.
        num_classes: K > 0 adds the projection term; 0 for an unconditional discriminator.
        width: channels of the first block (doubled per block, at most 8x).
        spectral_norm: spectral normalisation on every layer.
        rotation_head: add the 4-way rotation classifier.

    Shapes:
        ``forward(x (B, C, S, S), y (B,) or None)`` -> (B,) logits.

    Example:
        >>> d = Discriminator(16, channels=1, num_classes=3, width=8)
        >>> d(torch.rand(2, 1, 16, 16), torch.tensor([0, 1])).shape
        torch.Size([2])
    """

    def __init__(self, image_size: int = 32, channels: int = 3, num_classes: int = 0,
                 width: int = 64, spectral_norm: bool = True, rotation_head: bool = True) -> None:
        super().__init__()
        self.body = DiscriminatorBody(image_size, channels, width, spectral_norm)
        dim = self.body.feature_dim
        self.num_classes = num_classes
        self.linear = _sn(nn.Linear(dim, 1), spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, dim), spectral_norm) if num_classes else None
        self.rotation = _sn(nn.Linear(dim, 4), spectral_norm) if rotation_head else None

    def logits(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) logits from features ``h`` (B, D): ``linear(h) + <embed(y), h>``."""
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass labels y (B,)")
            out = out + (self.embed(y) * h).sum(1)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.body(x), y)
