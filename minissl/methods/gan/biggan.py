"""BigGAN's generator: class-conditional batch norm, residual up-blocks, the truncation trick."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


# _sn and _num_ups serve every network of the GAN (the discriminator and StyleGAN's too).
def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


def _num_ups(image_size: int) -> int:
    ups = round(math.log2(image_size / 4)) if image_size >= 8 else -1
    if ups < 1 or 4 * 2 ** ups != image_size:
        raise ValueError(f"image_size must be 4 times a power of two (8, 16, 32, 64, ...); "
                         f"got {image_size}")
    return ups


def truncated_normal(shape: tuple[int, ...], threshold: float | None = None,
                     generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Standard normal draws, with every value beyond ``threshold`` drawn again.

    BigGAN's truncation trick (Brock et al., 2019, arXiv:1809.11096, Sec. 3.1): a smaller
    threshold trades variety for fidelity. ``None`` means no truncation.

    Args:
        shape: the output shape, e.g. (n, z_dim).
        threshold: the largest absolute value kept (> 0), or None.
        generator: makes the draws reproducible (its device is where they are drawn).
        device: where the result goes (default: the generator's device, else the CPU).

    Example:
        >>> z = truncated_normal((1000, 8), 0.5, generator=torch.Generator().manual_seed(0))
        >>> bool(z.abs().max() <= 0.5)
        True
    """
    where = generator.device if generator is not None else (device or "cpu")
    z = torch.randn(shape, generator=generator, device=where)
    if threshold is not None:
        if threshold <= 0:
            raise ValueError(f"truncation threshold must be > 0; got {threshold}")
        for _ in range(1000):
            bad = z.abs() > threshold
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=generator, device=where)
        z = z.clamp(-threshold, threshold)  # the rare survivor of 1000 redraws
    return z.to(device) if device is not None else z


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are predicted from a conditioning vector.

    ``y = BN(x) * (1 + gamma(c)) + beta(c)`` with linear ``gamma``, ``beta`` (Dumoulin et al.,
    2017, arXiv:1610.07629; de Vries et al., 2017, arXiv:1707.00683; BigGAN, arXiv:1809.11096).

    Args:
        channels: C of the feature map.
        cond_dim: size of the conditioning vector c.

    Example:
        >>> bn = ConditionalBatchNorm2d(4, cond_dim=3)
        >>> bn(torch.randn(2, 4, 5, 5), torch.randn(2, 3)).shape
        torch.Size([2, 4, 5, 5])
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)
        for lin in (self.gain, self.bias):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma = 1 + self.gain(c)[:, :, None, None]
        beta = self.bias(c)[:, :, None, None]
        return self.bn(x) * gamma + beta


class _GBlock(nn.Module):
    # BigGAN's residual up-block: CBN-ReLU-up-conv-CBN-ReLU-conv, plus up-1x1conv shortcut.
    def __init__(self, cin: int, cout: int, cond_dim: int, sn: bool) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, cond_dim)
        self.conv1 = _sn(nn.Conv2d(cin, cout, 3, padding=1), sn)
        self.bn2 = ConditionalBatchNorm2d(cout, cond_dim)
        self.conv2 = _sn(nn.Conv2d(cout, cout, 3, padding=1), sn)
        self.skip = _sn(nn.Conv2d(cin, cout, 1), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class Generator(nn.Module):
    """A BigGAN-style generator: z (and a class) to an image in [0, 1].

    Brock et al., "Large Scale GAN Training for High Fidelity Natural Image Synthesis", 2019,
    arXiv:1809.11096. z goes through a linear layer to a 4x4 map, then residual blocks that
    each double the resolution. Every block's batch norms are conditional on
    ``c = [z, embed(y)]``: one class embedding *shared* by all blocks, concatenated with z
    ("skip-z"). A final BN-ReLU-conv and ``sigmoid(2h)`` (= ``(tanh(h) + 1) / 2``) give pixels.

    Args:
        image_size: S, the output side (8, 16, 32, ...).
        channels: C of the output images.
        z_dim: size of the latent z.
        num_classes: K for a class-conditional generator; 0 for an unconditional one.
        width: channels of the 4x4 map; blocks halve it down to ``width // 2 ** (ups - 1)``
            (at least 16).
        embed_dim: size of the shared class embedding.
        spectral_norm: spectral normalisation on the convolutions (BigGAN uses it in G too).

    Shapes:
        ``forward(z (B, z_dim), y (B,) or None)`` -> (B, C, S, S).

    Example:
        >>> g = Generator(16, channels=1, z_dim=8, num_classes=3, width=16)
        >>> g(torch.randn(2, 8), torch.tensor([0, 2])).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(self, image_size: int = 32, channels: int = 3, z_dim: int = 64,
                 num_classes: int = 0, width: int = 128, embed_dim: int = 32,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        ups = _num_ups(image_size)
        self.image_size, self.channels, self.z_dim = image_size, channels, z_dim
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        cond = z_dim + (embed_dim if num_classes > 0 else 0)
        widths = [max(width // 2 ** i, 16) for i in range(ups + 1)]
        self.linear = _sn(nn.Linear(z_dim, 16 * widths[0]), spectral_norm)
        self.blocks = nn.ModuleList(_GBlock(widths[i], widths[i + 1], cond, spectral_norm)
                                    for i in range(ups))
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out = _sn(nn.Conv2d(widths[-1], channels, 3, padding=1), spectral_norm)

    def condition(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The vector every conditional BN reads: ``[z, embed(y)]`` (just z if unconditional)."""
        if self.embed is None:
            return z
        if y is None:
            raise ValueError("this generator is class-conditional: pass labels y (B,)")
        return torch.cat([z, self.embed(y)], dim=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (B, {self.z_dim}); got {tuple(z.shape)}")
        c = self.condition(z, y)
        h = self.linear(z).view(len(z), -1, 4, 4)
        for block in self.blocks:
            h = block(h, c)
        return torch.sigmoid(2 * self.out(F.relu(self.out_bn(h))))
