"""Generative adversarial networks, with BigGAN-style and StyleGAN-style generators.

A GAN turns generation into classification with a label that costs nothing: a discriminator
learns to tell real images (label 1) from generated ones (label 0), and the generator learns
to make the discriminator wrong. Goodfellow et al., "Generative Adversarial Nets", 2014,
arXiv:1406.2661.

The pieces, each with its paper:

- losses: the non-saturating loss (Goodfellow et al., 2014) and the hinge loss (Miyato et
  al., "Spectral Normalization for Generative Adversarial Networks", 2018, arXiv:1802.05957);
- spectral normalisation of every discriminator layer (Miyato et al., 2018);
- a projection discriminator for class conditioning (Miyato & Koyama, "cGANs with Projection
  Discriminator", 2018, arXiv:1802.05637);
- :class:`Generator`, BigGAN-style (Brock et al., "Large Scale GAN Training for High Fidelity
  Natural Image Synthesis", 2019, arXiv:1809.11096): residual up-sampling blocks with
  class-conditional batch normalisation fed by a shared class embedding concatenated with z,
  orthogonal regularisation, the truncation trick;
- :class:`StyleGenerator`, StyleGAN-style (Karras et al., "A Style-Based Generator
  Architecture for Generative Adversarial Networks", 2019, arXiv:1812.04948; and "Analyzing
  and Improving the Image Quality of StyleGAN", 2020, arXiv:1912.04958): a mapping network
  z -> w, a learned constant input, modulated/demodulated convolutions, per-layer noise, style
  mixing;
- the rotation auxiliary loss on the discriminator (Chen et al., "Self-Supervised GANs via
  Auxiliary Rotation Loss", 2019, arXiv:1811.11212);
- an exponential moving average of the generator's weights for sampling (Karras et al.,
  "Progressive Growing of GANs", 2018, arXiv:1710.10196; used by BigGAN and StyleGAN).

:class:`GAN` trains a generator and a discriminator with two optimizers inside
:func:`minissl.train.fit`: its ``optimizers()`` returns ``{"d": ..., "g": ...}`` and
``training_step(batch, phase)`` computes one phase's loss.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LOSSES = ("hinge", "nonsaturating")


# ------------------------------------------------------------------------------ losses


def d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The discriminator's loss on its logits for real and generated images.

    ``"nonsaturating"`` is the binary cross-entropy with real = 1 and generated = 0
    (Goodfellow et al., 2014, arXiv:1406.2661); ``"hinge"`` is
    ``relu(1 - D(x)) + relu(1 + D(G(z)))`` (Miyato et al., 2018, arXiv:1802.05957).

    Args:
        real: (B,) logits on real images.
        fake: (B',) logits on generated images.
        kind: ``"hinge"`` or ``"nonsaturating"``.

    Example:
        >>> round(d_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item(), 3)
        0.0
        >>> round(d_loss(torch.zeros(1), torch.zeros(1), "nonsaturating").item(), 3)
        1.386
    """
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "nonsaturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {list(LOSSES)}")


def g_loss(fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated images.

    ``"nonsaturating"``: ``-log sigmoid(D(G(z)))``, whose gradient stays large while the
    discriminator wins (Goodfellow et al., 2014); ``"hinge"``: ``-D(G(z))`` (Miyato et al., 2018).

    Args:
        fake: (B,) logits on generated images.
        kind: ``"hinge"`` or ``"nonsaturating"``.

    Example:
        >>> g_loss(torch.tensor([1.0, 3.0])).item()
        -2.0
    """
    if kind == "hinge":
        return -fake.mean()
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {list(LOSSES)}")


def orthogonal_penalty(module: nn.Module) -> torch.Tensor:
    """BigGAN's orthogonal regularisation: ``sum_W ||W W^T * (1 - I)||_F^2`` over weights.

    Only the off-diagonal of the Gram matrix is penalised, so filters are pushed to be
    orthogonal without constraining their norms (Brock et al., 2019, arXiv:1809.11096, Sec. 3.1).
    Every weight with two or more dimensions is flattened to (out, rest); embeddings and a
    StyleGAN mapping network (whose stored weights are rescaled at run time) are skipped.

    Args:
        module: the network whose weights are penalised (usually a generator).

    Example:
        >>> lin = nn.Linear(3, 3, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.eye(3))
        >>> orthogonal_penalty(lin).item()
        0.0
    """
    total = None
    for name, p in module.named_parameters():
        if p.dim() < 2 or not p.requires_grad or "embed" in name or "mapping" in name:
            continue
        w = p.flatten(1)
        gram = w @ w.t()
        off = gram * (1 - torch.eye(len(w), device=w.device, dtype=w.dtype))
        term = (off ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros((), device=next(module.parameters()).device)
    return total


def rotate4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image under the four rotations by 0, 90, 180 and 270 degrees, with their labels.

    Args:
        x: (B, C, H, W) with H == W.

    Returns:
        images (4B, C, H, W) (all B images rotated by 0, then by 90, ...) and labels (4B,) in 0..3.

    Example:
        >>> xr, r = rotate4(torch.arange(4.0).view(1, 1, 2, 2))
        >>> xr[1, 0].tolist(), r.tolist()
        ([[1.0, 3.0], [0.0, 2.0]], [0, 1, 2, 3])
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotations need square images; got shape {tuple(x.shape)}")
    xs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return xs, labels


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


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


# ---------------------------------------------------------------- BigGAN-style generator


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


def _num_ups(image_size: int) -> int:
    ups = round(math.log2(image_size / 4)) if image_size >= 8 else -1
    if ups < 1 or 4 * 2 ** ups != image_size:
        raise ValueError(f"image_size must be 4 times a power of two (8, 16, 32, 64, ...); "
                         f"got {image_size}")
    return ups


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


# -------------------------------------------------------------- StyleGAN-style generator


class _SlowLinear(nn.Module):
    # StyleGAN's learning-rate multiplier: the stored weights are 1/lr_mul times larger than
    # the used ones, so an optimizer step of a given size moves the used ones lr_mul as far.
    def __init__(self, cin: int, cout: int, lr_mul: float) -> None:
        super().__init__()
        gain = math.sqrt(2 / (1 + 0.2 ** 2))  # He initialisation for leaky ReLU(0.2)
        self.weight = nn.Parameter(torch.randn(cout, cin) * gain / math.sqrt(cin) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.lr_mul, self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network: an MLP from z (normalised to unit RMS) to the style code w.

    Karras et al., 2019, arXiv:1812.04948, Sec. 2. A class-conditional variant concatenates
    a class embedding to z (as StyleGAN2-ADA does).

    Args:
        z_dim: size of z.
        w_dim: size of w.
        layers: number of linear layers (StyleGAN uses 8).
        num_classes: K > 0 for a class-conditional mapping.
        lr_mul: the layers learn this many times slower than the rest (StyleGAN: 0.01); a
            mapping that learns fast can send every z to one w, i.e. mode collapse.

    Example:
        >>> MappingNetwork(8, 16, layers=2)(torch.randn(3, 8)).shape
        torch.Size([3, 16])
    """

    def __init__(self, z_dim: int, w_dim: int, layers: int = 4, num_classes: int = 0,
                 lr_mul: float = 0.01) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes > 0 else None
        dims = [z_dim * (2 if num_classes > 0 else 1)] + [w_dim] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [_SlowLinear(a, b, lr_mul), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        if self.embed is not None:
            if y is None:
                raise ValueError("this mapping network is class-conditional: pass labels y (B,)")
            e = self.embed(y)
            z = torch.cat([z, e * torch.rsqrt(e.pow(2).mean(1, keepdim=True) + 1e-8)], 1)
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated (and demodulated) convolution, driven by a style code w.

    Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020,
    arXiv:1912.04958, Sec. 2.2: an affine map of w gives one scale per input channel, the
    weights are scaled by it (modulation) and then renormalised per output channel to unit
    norm (demodulation), which replaces AdaIN's instance normalisation. Done as one grouped
    convolution over the batch.

    Args:
        cin: input channels.
        cout: output channels.
        w_dim: size of the style code.
        kernel: kernel size (odd).
        demodulate: renormalise the modulated weights (off for the toRGB layer).

    Example:
        >>> conv = ModulatedConv2d(4, 6, w_dim=8)
        >>> conv(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape
        torch.Size([2, 6, 5, 5])
    """

    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int = 3,
                 demodulate: bool = True) -> None:
        super().__init__()
        # Plain He-style initialisation (no "equalised learning rate": with Adam at GAN
        # learning rates, unit-variance weights scaled at run time would learn ~10x slower).
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel)
                                   / math.sqrt(cin * kernel * kernel))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.normal_(self.affine.weight, std=1 / math.sqrt(w_dim))  # styles vary by O(1)
        nn.init.ones_(self.affine.bias)  # styles centred on 1: an ordinary convolution
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, cin, h, wd = x.shape
        s = self.affine(w)  # (B, cin): the style
        weight = self.weight[None] * s[:, None, :, None, None]  # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, b * cin, h, wd), weight.reshape(-1, cin, *weight.shape[3:]),
                       padding=self.padding, groups=b)
        return out.view(b, -1, h, wd)


class _StyleLayer(nn.Module):
    # modulated conv -> + learned-scale noise -> + bias -> leaky ReLU
    def __init__(self, cin: int, cout: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                generator: torch.Generator | None, noise: bool) -> torch.Tensor:
        h = self.conv(x, w)
        if noise:
            shape = (len(h), 1, *h.shape[2:])
            where = generator.device if generator is not None else h.device
            n = torch.randn(shape, generator=generator, device=where).to(h.device, h.dtype)
            h = h + self.noise_strength * n
        return F.leaky_relu(h + self.bias[None, :, None, None], 0.2)


class StyleGenerator(nn.Module):
    """A StyleGAN-style generator: z -> w by a mapping network, w drives every layer.

    Karras et al., 2019 (arXiv:1812.04948) and 2020 (arXiv:1912.04958). Synthesis starts from
    a *learned constant* 4x4 map (not from z); each layer is a modulated/demodulated 3x3
    convolution whose style comes from its own copy of w, plus per-pixel noise with a learned
    strength; one layer at 4x4, two per doubled resolution, and a modulated 1x1 "toRGB".
    Feeding different w's to different layers is *style mixing*: early (coarse, low
    resolution) layers set pose and shape, late (fine) layers set texture and colour.

    Args:
        image_size: S, the output side (8, 16, 32, ...).
        channels: C of the output images.
        z_dim: size of z.
        w_dim: size of w.
        num_classes: K > 0 for a class-conditional mapping network; 0 for none.
        width: channels at 4x4; halved at every doubling (at least 16).
        mapping_layers: depth of the mapping network.
        w_avg_beta: decay of the running mean of w used by truncation.

    Shapes:
        ``forward(z (B, z_dim), y)`` -> (B, C, S, S); ``synthesis(ws (B, num_ws, w_dim))``.

    Example:
        >>> g = StyleGenerator(16, channels=1, z_dim=8, w_dim=8, width=16)
        >>> g.num_ws, g(torch.randn(2, 8)).shape
        (6, torch.Size([2, 1, 16, 16]))
    """

    def __init__(self, image_size: int = 32, channels: int = 3, z_dim: int = 64,
                 w_dim: int = 64, num_classes: int = 0, width: int = 128,
                 mapping_layers: int = 4, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        ups = _num_ups(image_size)
        self.image_size, self.channels, self.z_dim, self.w_dim = image_size, channels, z_dim, w_dim
        self.num_classes = num_classes
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, num_classes)
        widths = [max(width // 2 ** i, 16) for i in range(ups + 1)]
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        layers = [_StyleLayer(widths[0], widths[0], w_dim)]
        for i in range(ups):
            layers += [_StyleLayer(widths[i], widths[i + 1], w_dim),
                       _StyleLayer(widths[i + 1], widths[i + 1], w_dim)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = ModulatedConv2d(widths[-1], channels, w_dim, kernel=1, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(channels))
        self.num_ws = len(layers) + 1  # one w per style layer, plus toRGB
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def map(self, z: torch.Tensor, y: torch.Tensor | None = None,
            truncation: float | None = None) -> torch.Tensor:
        """w = mapping(z, y), pulled towards the mean w by ``truncation`` (psi in [0, 1]).

        StyleGAN's truncation in w space: ``w_avg + psi * (w - w_avg)``.
        """
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (B, {self.z_dim}); got {tuple(z.shape)}")
        w = self.mapping(z, y)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(0), 1 - self.w_avg_beta)
        if truncation is not None:
            w = self.w_avg.to(w.dtype) + truncation * (w - self.w_avg.to(w.dtype))
        return w

    def synthesis(self, ws: torch.Tensor, generator: torch.Generator | None = None,
                  noise: bool = True) -> torch.Tensor:
        """Render images from per-layer styles ``ws`` (B, num_ws, w_dim), or one w (B, w_dim)."""
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"expected ws of shape (B, {self.num_ws}, {self.w_dim}) or "
                             f"(B, {self.w_dim}); got {tuple(ws.shape)}")
        h = self.const.expand(len(ws), -1, -1, -1)
        for i, layer in enumerate(self.layers):
            if i > 0 and i % 2 == 1:  # the first layer of every new resolution
                h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = layer(h, ws[:, i], generator, noise)
        rgb = self.to_rgb(h, ws[:, -1]) + self.rgb_bias[None, :, None, None]
        return torch.sigmoid(2 * rgb)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.map(z, y))

    def mix(self, w1: torch.Tensor, w2: torch.Tensor, crossover_layer: int,
            generator: torch.Generator | None = None, noise: bool = True) -> torch.Tensor:
        """Style mixing: layers before ``crossover_layer`` take w1 (coarse), the rest w2 (fine).

        Args:
            w1: (B, w_dim) codes for the coarse layers (0 .. crossover_layer - 1).
            w2: (B, w_dim) codes for the fine layers (crossover_layer .. num_ws - 1).
            crossover_layer: in 0..num_ws; 0 renders w2 alone, num_ws renders w1 alone.
            generator: makes the per-layer noise reproducible.
            noise: add the per-layer noise.

        Returns:
            (B, C, S, S) images.
        """
        if not 0 <= crossover_layer <= self.num_ws:
            raise ValueError(f"crossover_layer must be in 0..{self.num_ws}; got {crossover_layer}")
        if w1.shape != w2.shape:
            raise ValueError(f"w1 and w2 must have the same shape; got {tuple(w1.shape)} "
                             f"and {tuple(w2.shape)}")
        layer = torch.arange(self.num_ws, device=w1.device)[None, :, None]
        ws = torch.where(layer < crossover_layer, w1[:, None], w2[:, None])
        return self.synthesis(ws, generator=generator, noise=noise)


# ------------------------------------------------------------------------- discriminator


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


# ------------------------------------------------------------------------------- method


class GAN(nn.Module):
    """A GAN trained by :func:`minissl.train.fit` with two optimizers, D first, then G.

    Every step: the discriminator's phase (``"d"``) sees a real batch (label "real") and a
    generated batch (label "generated"); the generator's phase (``"g"``) draws a fresh
    batch and is scored by the updated discriminator. Generated images get the real batch's
    labels, so the class distribution matches the data's. With ``rotation=True`` the
    discriminator also learns to predict the rotation of real images, and the generator is
    rewarded when its rotated images are recognised (Chen et al., "Self-Supervised GANs via
    Auxiliary Rotation Loss", 2019, arXiv:1811.11212: weights beta = 1 for D, alpha = 0.2
    for G). An exponential moving average of G (``ema``) is what :meth:`sample` uses.

    Args:
        generator: a :class:`Generator` or :class:`StyleGenerator` (has ``z_dim``).
        discriminator: a :class:`Discriminator` (with ``rotation_head`` if ``rotation``).
        loss: ``"hinge"`` or ``"nonsaturating"``.
        rotation: add the rotation auxiliary losses.
        rotation_weights: (beta for D on real images, alpha for G on generated images).
        orthogonal: weight of BigGAN's orthogonal regularisation of G (1e-4 in the paper).
        ema: decay of the sampling copy of G (warmed up as ``min(ema, (1 + t) / (10 + t))``).
        lr_d: the discriminator's learning rate (None: the config's ``lr``).
        lr_g: the generator's learning rate (None: the config's ``lr``).
        betas: Adam's betas for both (BigGAN/SN-GAN use (0, 0.999)).

    Example:
        >>> g = Generator(8, channels=1, z_dim=4, num_classes=2, width=16)
        >>> d = Discriminator(8, channels=1, num_classes=2, width=8)
        >>> gan = GAN(g, d, rotation=True)
        >>> list(gan.optimizers())
        ['d', 'g']
        >>> batch = (torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))
        >>> sorted(gan.training_step(batch, phase="d"))
        ['d_fake', 'd_real', 'loss', 'rot_acc', 'rot_loss']
        >>> gan.sample(3, y=torch.tensor([0, 1, 1]), truncation=0.5).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(self, generator: nn.Module, discriminator: Discriminator, *,
                 loss: str = "hinge", rotation: bool = False,
                 rotation_weights: tuple[float, float] = (1.0, 0.2), orthogonal: float = 0.0,
                 ema: float = 0.999, lr_d: float | None = None, lr_g: float | None = None,
                 betas: tuple[float, float] = (0.0, 0.999)) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {list(LOSSES)}")
        if rotation and discriminator.rotation is None:
            raise ValueError("rotation=True needs Discriminator(..., rotation_head=True)")
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = copy.deepcopy(generator).eval()
        for p in self.generator_ema.parameters():
            p.requires_grad_(False)
        self.loss_kind, self.rotation, self.rotation_weights = loss, rotation, rotation_weights
        self.orthogonal, self.ema = orthogonal, ema
        self.lr_d, self.lr_g, self.betas = lr_d, lr_g, betas
        self.encoder = discriminator.body  # the discriminator's features, for probing
        self.z_dim = generator.z_dim
        self.num_classes = getattr(generator, "num_classes", 0)

    def optimizers(self) -> dict[str, list[dict]]:
        """``{"d": groups, "g": groups}`` for :func:`minissl.train.fit` (no weight decay)."""
        def groups(module: nn.Module, lr: float | None) -> list[dict]:
            g = {"params": [p for p in module.parameters() if p.requires_grad],
                 "weight_decay": 0.0, "betas": self.betas}
            if lr is not None:
                g["lr"] = lr
            return [g]
        return {"d": groups(self.discriminator, self.lr_d),
                "g": groups(self.generator, self.lr_g)}

    def _labels(self, y: torch.Tensor) -> torch.Tensor | None:
        return y if self.num_classes > 0 else None

    def _rotation_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A quarter of the batch under all four rotations: as many images as the batch.
        xr, r = rotate4(x[: max(1, len(x) // 4)])
        logits = self.discriminator.rotation(self.discriminator.body(xr))
        return F.cross_entropy(logits, r), (logits.argmax(1) == r).float().mean()

    def training_step(self, batch, phase: str = "d") -> dict:
        """One phase's loss: ``phase="d"`` for the discriminator, ``"g"`` for the generator."""
        x, y = batch
        y = self._labels(y)
        z = torch.randn(len(x), self.z_dim, device=x.device)
        if phase == "d":
            with torch.no_grad():
                fake = self.generator(z, y)
            real_logits = self.discriminator(x, y)
            fake_logits = self.discriminator(fake, y)
            loss = d_loss(real_logits, fake_logits, self.loss_kind)
            out = {"d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach()}
            if self.rotation:
                rot, acc = self._rotation_loss(x)
                loss = loss + self.rotation_weights[0] * rot
                out.update(rot_loss=rot.detach(), rot_acc=acc.detach())
            out["loss"] = loss
            return out
        if phase == "g":
            fake = self.generator(z, y)
            loss = g_loss(self.discriminator(fake, y), self.loss_kind)
            out = {"adv": loss.detach()}
            if self.orthogonal > 0:
                loss = loss + self.orthogonal * orthogonal_penalty(self.generator)
            if self.rotation:
                rot, _ = self._rotation_loss(fake)
                loss = loss + self.rotation_weights[1] * rot
                out["rot_loss"] = rot.detach()
            out["loss"] = loss
            return out
        raise ValueError(f"unknown phase {phase!r}; a GAN has phases 'd' and 'g'")

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """Move the EMA generator towards the trained one (weights and BN statistics)."""
        decay = min(self.ema, (1 + step) / (10 + step))
        for e, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            e.copy_(b)

    def _class_labels(self, n: int, y: torch.Tensor | int | None,
                      generator: torch.Generator | None, device: torch.device):
        if self.num_classes == 0:
            return None
        if y is None:
            where = generator.device if generator is not None else device
            y = torch.randint(self.num_classes, (n,), generator=generator, device=where)
        elif isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long)
        if len(y) != n:
            raise ValueError(f"expected {n} labels; got {len(y)}")
        return y.to(device)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None,
               truncation: float | None = None, generator: torch.Generator | None = None,
               ema: bool = True, z: torch.Tensor | None = None) -> torch.Tensor:
        """n images in [0, 1] from the (EMA) generator, in eval mode.

        ``truncation``: for a :class:`Generator`, BigGAN's threshold on ``|z|`` (resampled beyond
        it); for a :class:`StyleGenerator`, StyleGAN's psi in w space (0: the mean image,
        1: no truncation). None: no truncation.

        Args:
            n: number of images.
            y: (n,) class labels or one int for all; random if None (conditional GANs only).
            truncation: see above.
            generator: makes z (and random labels, and noise) reproducible.
            ema: sample from the EMA copy (else from the trained generator).
            z: (n, z_dim) latents to use instead of fresh draws.

        Returns:
            (n, C, S, S) images on the generator's device.
        """
        net = self.generator_ema if ema else self.generator
        device = next(net.parameters()).device
        style = isinstance(net, StyleGenerator)
        if z is None:
            z = truncated_normal((n, self.z_dim), None if style else truncation,
                                 generator=generator, device=device)
        y = self._class_labels(n, y, generator, device)
        was = net.training
        net.eval()
        try:
            if style:
                return net.synthesis(net.map(z.to(device), y, truncation), generator=generator)
            return net(z.to(device), y)
        finally:
            net.train(was)
