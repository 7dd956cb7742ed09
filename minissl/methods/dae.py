"""Denoising autoencoder (Vincent et al., 2008): rebuild the clean image from a corrupted one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.inputs import image_batch
from minissl.nn import ConvNet
from minissl.utils import draw

CORRUPTIONS = ("gaussian", "masking", "salt_pepper")


def corrupt(x: torch.Tensor, kind: str, strength: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt images with one of the three noises of the denoising-autoencoder paper.

    Vincent et al., "Extracting and Composing Robust Features with Denoising Autoencoders",
    ICML 2008 (and JMLR 2010, Sec. 4.3):

    - ``"gaussian"``: add N(0, strength**2) noise to every pixel;
    - ``"masking"``: set a fraction ``strength`` of each image's values to 0;
    - ``"salt_pepper"``: set a fraction ``strength`` of each image's values to 0 or 1, by a
      fair coin flip.

    For masking and salt-and-pepper exactly ``round(strength * C*H*W)`` values per image are
    hit, as in the paper ("a fixed number of components"). The result is clamped to [0, 1].

    Args:
        x: images (B, C, H, W) in [0, 1].
        kind: one of :data:`CORRUPTIONS`.
        strength: the noise std (gaussian) or the fraction of values hit (the others).
        generator: makes the noise reproducible.

    Returns:
        corrupted images (B, C, H, W) in [0, 1].

    Example:
        >>> x = torch.full((2, 1, 4, 4), 0.5)
        >>> (corrupt(x, "masking", 0.25) == 0).float().mean().item()
        0.25
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; use one of {list(CORRUPTIONS)}")
    if kind == "gaussian":
        return (x + strength * draw(torch.randn, x.shape, generator, x.device)).clamp(0, 1)
    b, d = x.shape[0], x[0].numel()
    k = round(strength * d)
    ranks = draw(torch.rand, (b, d), generator, x.device).argsort(1).argsort(1)
    hit = (ranks < k).view_as(x)  # (B, C, H, W), exactly k True per image
    if kind == "masking":
        value = torch.zeros_like(x)
    else:  # salt and pepper: 0 or 1 with probability 1/2 each
        value = (draw(torch.rand, x.shape, generator, x.device) < 0.5).to(x.dtype)
    return torch.where(hit, value, x).clamp(0, 1)


class ConvDecoder(nn.Module):
    """Map a code (B, D) back to an image of logits (B, C, S, S) with upsampling convolutions.

    A linear layer paints a small ``width``-channel map of side ``S / 2**n`` (``n`` <= 3, the
    number of times S halves evenly), then ``n`` rounds of 2x upsampling + 3x3 conv, then a
    3x3 conv to C channels. It returns logits: apply ``sigmoid`` for pixels in [0, 1].

    Args:
        in_dim: D, the code size.
        out_channels: C of the images.
        image_size: S, the side of the (square) images.
        width: channels of the hidden maps.

    Example:
        >>> ConvDecoder(16, out_channels=1, image_size=8)(torch.rand(2, 16)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, in_dim: int, out_channels: int, image_size: int, width: int = 32):
        super().__init__()
        n = 0
        while n < 3 and image_size % 2 ** (n + 1) == 0:
            n += 1
        s = image_size // 2**n
        layers: list[nn.Module] = [nn.Linear(in_dim, width * s * s), nn.Unflatten(1, (width, s, s)),
                                   nn.ReLU()]
        for _ in range(n):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1),
                       nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, C, S, S) logits


class DenoisingAE(nn.Module):
    """Denoising autoencoder: encode a corrupted image, decode it, compare with the clean one.

    Vincent et al., "Extracting and Composing Robust Features with Denoising Autoencoders",
    ICML 2008. The paper's point: a plain autoencoder can learn the identity, but to *undo*
    noise the code must capture how pixels depend on each other. The encoder is a
    :class:`~minissl.nn.ConvNet` (its pooled features are the code and what a probe sees),
    the decoder a :class:`ConvDecoder`, the loss the squared error to the *clean* input.

    Args:
        in_channels: C of the images.
        width: width of the encoder's first stage and of the decoder's maps.
        image_size: side of the (square) images.
        depth: stride-2 stages of the encoder.
        corruption: one of :data:`CORRUPTIONS`.
        strength: noise std (gaussian) or fraction of values hit (masking, salt_pepper).

    Example:
        >>> dae = DenoisingAE(in_channels=1, width=4, image_size=8, corruption="masking")
        >>> out = dae.training_step((torch.rand(4, 1, 8, 8), None))
        >>> out["loss"].shape, dae.encoder.feature_dim
        (torch.Size([]), 16)
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> DenoisingAE:
        """Around a given backbone (see :mod:`minissl.methods.setting`): ``encoder`` replaces
        the built-in ConvNet, and the decoder is sized for its features."""
        channels, size = setting.channels, setting.image_size
        method = cls(in_channels=channels, image_size=size, width=setting.width, **kwargs)
        method.encoder = encoder
        method.decoder = ConvDecoder(encoder.feature_dim, channels, size, setting.width)
        return method

    def __init__(self, in_channels: int = 3, width: int = 32, image_size: int = 32,
                 depth: int = 3, corruption: str = "gaussian", strength: float = 0.3):
        super().__init__()
        self.image_size = image_size  # the one side it takes (its decoder's output)
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; use one of {list(CORRUPTIONS)}")
        self.corruption, self.strength = corruption, strength
        self.encoder = ConvNet(in_channels, width, depth)
        self.decoder = ConvDecoder(self.encoder.feature_dim, in_channels, image_size, width)
        self.generator = None  # set a torch.Generator to make the noise reproducible

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))  # (B, C, H, W) in [0, 1]

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self, self.image_size)  # (B, C, H, W) clean images
        x_noisy = corrupt(x, self.corruption, self.strength, self.generator)
        x_hat = self(x_noisy)  # (B, C, H, W)
        loss = F.mse_loss(x_hat, x)  # the target is the CLEAN image
        # How far the noisy input itself is from the clean one: the bar a denoiser must beat.
        return {"loss": loss, "noisy_mse": F.mse_loss(x_noisy, x).detach()}
