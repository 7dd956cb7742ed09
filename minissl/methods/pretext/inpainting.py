"""Inpainting (Pathak et al., 2016): paint back the hidden pixels."""

from __future__ import annotations

import torch
from torch import nn

from minissl.methods.inputs import image_batch

from ._common import _rand


def mask_patches(x: torch.Tensor, patch: int = 8, ratio: float = 0.25, central: bool = False,
                 generator: torch.Generator | None = None, fill: float = 0.5):
    """Hide square patches of each image; return the masked images and the mask.

    Pathak et al., "Context Encoders: Feature Learning by Inpainting", CVPR 2016,
    arXiv:1604.07379, hide a central square or random blocks and fill them with a constant.
    Here the image is a grid of ``patch x patch`` cells and exactly ``round(ratio * cells)``
    of them are hidden in every image (or, with ``central=True``, the centre square of half
    the image's side, a quarter of its area, as in the paper's central-region variant).

    Args:
        x: images (B, C, H, W); H and W divisible by ``patch``.
        patch: side of a hidden square in pixels.
        ratio: fraction of the cells hidden per image.
        central: hide the central square instead of random cells.
        generator: chooses the cells.
        fill: the value hidden pixels are set to.

    Returns:
        ``(x_masked, mask)``: (B, C, H, W) and a float mask (B, 1, H, W), 1 where hidden.

    Example:
        >>> xm, m = mask_patches(torch.rand(2, 3, 8, 8), patch=2, ratio=0.5)
        >>> m.mean().item(), bool((xm[m.expand_as(xm) == 1] == 0.5).all())
        (0.5, True)
    """
    b, _, h, w = x.shape
    if central:
        mask = torch.zeros(b, 1, h, w, device=x.device)
        mask[:, :, h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] = 1.0
    else:
        if h % patch or w % patch:
            raise ValueError(f"image side must be divisible by patch={patch}; got {(h, w)}")
        gh, gw = h // patch, w // patch
        k = round(ratio * gh * gw)
        ranks = _rand((b, gh * gw), generator, x.device).argsort(dim=1).argsort(dim=1)
        cells = (ranks < k).float().view(b, 1, gh, gw)  # exactly k hidden cells per image
        mask = cells.repeat_interleave(patch, 2).repeat_interleave(patch, 3)  # (B, 1, H, W)
    return x * (1 - mask) + fill * mask, mask


class Inpainting(nn.Module):
    """Fill in hidden patches from the visible rest of the image (context encoders, 1604.07379).

    The encoder squeezes the masked image into one feature vector; a small decoder paints the
    whole image back from it; the loss is the squared error *on the hidden pixels only*
    (the paper's reconstruction loss, Eq. 1; its adversarial term is left out).

    Args:
        encoder: a backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        image_size: side of the (square) images.
        channels: image channels.
        patch, ratio, central: how :func:`mask_patches` hides pixels.

    Example:
        >>> from minissl.nn import ConvNet
        >>> m = Inpainting(ConvNet(width=4), image_size=16, patch=4)
        >>> m.training_step((torch.rand(2, 3, 16, 16), None))["loss"].shape
        torch.Size([])
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> Inpainting:
        """Built for the run's image size and channels (see :mod:`minissl.methods.setting`)."""
        kwargs = {"image_size": setting.image_size, "channels": setting.channels, **kwargs}
        return cls(encoder, **kwargs)

    def __init__(self, encoder: nn.Module, image_size: int = 32,
                 channels: int = 3, patch: int = 8, ratio: float = 0.25, central: bool = False,
                 width: int = 32):
        super().__init__()
        self.image_size = image_size  # the one side it takes (its decoder's output)
        if image_size % 8:
            raise ValueError(f"image_size must be divisible by 8; got {image_size}")
        self.encoder, self.patch, self.ratio, self.central = encoder, patch, ratio, central
        s = image_size // 8
        up = nn.Upsample(scale_factor=2)  # no weights: safe to reuse
        self.decoder = nn.Sequential(  # (B, D) -> (B, width, S/8, S/8) -> (B, C, S, S)
            nn.Linear(encoder.feature_dim, width * s * s), nn.Unflatten(1, (width, s, s)),
            up, nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            up, nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            up, nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid(),  # pixels in [0, 1]
        )
        self.generator = None  # set a torch.Generator to make the masks reproducible

    def forward(self, x_masked: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x_masked))  # (B, C, H, W) predicted image

    @staticmethod
    def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over hidden pixels: visible pixels do not count at all."""
        se = (pred - target).pow(2) * mask  # (B, C, H, W), zero where visible
        return se.sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self, self.image_size)
        x_masked, mask = mask_patches(x, self.patch, self.ratio, self.central, self.generator)
        pred = self(x_masked)  # (B, C, H, W)
        return {"loss": self.masked_mse(pred, x, mask)}


#: (row, column) step from the centre cell to neighbour ``label``, in raster order.
