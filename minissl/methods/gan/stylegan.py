"""StyleGAN's generator: a mapping network, modulated convolutions, noise and style mixing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.gan.biggan import _num_ups
from minissl.utils import draw


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
            n = draw(torch.randn, shape, generator, h.device).to(h.dtype)
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
