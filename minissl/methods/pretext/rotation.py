"""Rotation prediction (Gidaris et al., 2018): which way is up?"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead

from ._common import _accuracy


def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in the four rotations 0, 90, 180 and 270 degrees, labelled 0, 1, 2, 3.

    Gidaris, Singh and Komodakis, "Unsupervised Representation Learning by Predicting Image
    Rotations", ICLR 2018, arXiv:1803.07728. As in the paper, all four copies of an image go
    into the same batch (Sec. 2.2): the network must tell them apart, not guess from context.

    Args:
        x: images (B, C, H, W) with H == W.

    Returns:
        ``(x_rot, labels)``: (4B, C, H, W) and (4B,) int64; rows ``k*B .. (k+1)*B - 1`` hold
        the batch rotated by ``k * 90`` degrees counter-clockwise.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> xr, y = rotate_batch(x)
        >>> xr.shape, y.tolist()
        (torch.Size([4, 1, 2, 2]), [0, 1, 2, 3])
        >>> bool(torch.equal(torch.rot90(xr[1], -1, dims=(1, 2)), x[0]))
        True
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotate_batch needs square images (B, C, S, S); got {tuple(x.shape)}")
    x_rot = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # (4B, C, H, W)
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])  # (4B,)
    return x_rot, labels


class RotationPrediction(nn.Module):
    """Classify which of four rotations was applied to an image (RotNet, arXiv:1803.07728).

    To say which way is up, the network has to find the objects and their orientation, which
    is the reason the task teaches something about objects.

    Args:
        encoder: a backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        hidden_dim: hidden width of the MLP head.

    Example:
        >>> from minissl.nn import ConvNet
        >>> out = RotationPrediction(ConvNet(width=4)).training_step((torch.rand(2, 3, 8, 8), None))
        >>> sorted(out)
        ['acc', 'loss']
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(self, encoder: nn.Module, hidden_dim: int = 256):
        super().__init__()
        self.encoder = encoder
        self.head = MLPHead(encoder.feature_dim, hidden_dim, 4, hidden_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, 4) rotation logits

    def training_step(self, batch) -> dict:
        x_rot, y = rotate_batch(image_batch(batch, self))  # (4B, C, H, W), (4B,)
        logits = self(x_rot)  # (4B, 4)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}
