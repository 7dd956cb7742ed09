"""The single batched transforms: crop, flip, colour jitter, grayscale, blur, solarize."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minissl.augment._base import (
    _apply_to,
    _check_images,
    _chosen,
    _pair,
    _per_sample,
    _RandomOp,
    _range,
    _uniform,
)

# ITU-R BT.601 luma weights, as in PIL's "L" conversion (torchvision's tensor path rounds red
# to 0.2989).
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- geometry
class RandomResizedCrop(_RandomOp):
    """Crop a random box of each image (its own area fraction and aspect ratio) and resize it.

    The box distribution is Inception's, as in torchvision (Szegedy et al., "Going Deeper
    with Convolutions", 2014, arXiv:1409.4842): area fraction uniform in ``scale``, log aspect
    ratio uniform in ``log(ratio)``, ten tries before falling back to a centre crop. Boxes are
    continuous (sub-pixel), and all of them are resampled at once by one ``grid_sample``
    (bilinear, border padding) on the grid ``F.affine_grid`` would give for the box (built
    directly, see ``_transform``), so the output size may differ from the input -- multi-crop
    needs small crops. Shrinking uses no anti-aliasing filter, unlike PIL.

    Args:
        size: output ``(h, w)`` or one int for square outputs.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's width / height.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, h, w)``.

    Example:
        >>> crop = RandomResizedCrop(16, generator=torch.Generator().manual_seed(0))
        >>> crop(torch.rand(4, 3, 32, 32)).shape
        torch.Size([4, 3, 16, 16])
    """

    _TRIES = 10

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(1.0, generator)
        self.size = _pair(size)
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1; got {scale}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"ratio must satisfy 0 < min <= max; got {ratio}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))

    def boxes(
        self, n: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Sample ``n`` crop boxes ``(x0, y0, w, h)`` in pixels as an ``(n, 4)`` tensor.

        The boxes live on the generator's device (the CPU without one).
        """
        g = generator if generator is not None else self.generator
        area = height * width
        t = self._TRIES
        frac = _uniform(n * t, *self.scale, g).view(n, t)
        logr = _uniform(n * t, math.log(self.ratio[0]), math.log(self.ratio[1]), g).view(n, t)
        r = logr.exp()
        w = (area * frac * r).sqrt()
        h = (area * frac / r).sqrt()
        ok = (w <= width) & (h <= height)
        first = ok.int().argmax(dim=1, keepdim=True)  # index of the first successful try
        w = w.gather(1, first).squeeze(1)
        h = h.gather(1, first).squeeze(1)
        # Fallback when all tries fail: the largest centred box whose ratio is clamped to range.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fw, fh = float(width), width / self.ratio[0]
        elif in_ratio > self.ratio[1]:
            fw, fh = height * self.ratio[1], float(height)
        else:
            fw, fh = float(width), float(height)
        any_ok = ok.any(dim=1)
        w = torch.where(any_ok, w, torch.full_like(w, fw))
        h = torch.where(any_ok, h, torch.full_like(h, fh))
        # Offsets: uniform where the box may move; the fallback box is centred.
        ux, uy = _uniform(n, 0.0, 1.0, g), _uniform(n, 0.0, 1.0, g)
        x0 = torch.where(any_ok, ux, torch.full_like(ux, 0.5)) * (width - w)
        y0 = torch.where(any_ok, uy, torch.full_like(uy, 0.5)) * (height - h)
        return torch.stack([x0, y0, w, h], dim=1)

    def _transform(self, x: Tensor, g) -> Tensor:
        b, c, height, width = x.shape
        x0, y0, w, h = self.boxes(b, height, width, g).unbind(1)
        # With align_corners=False, normalised coordinates -1..1 span the pixel edges 0..W, so
        # the box [x0, x0 + w] has centre (2 x0 + w) / W - 1 and half-width w / W. The boxes are
        # axis-aligned, so the sampling grid is an outer sum -- exactly what F.affine_grid gives
        # for theta = [[w/W, 0, cx], [0, h/H, cy]], without its (B, h*w, 3) batched matmul.
        out_h, out_w = self.size
        kw = dict(device=x.device, dtype=x.dtype)
        params = torch.stack([w / width, (2 * x0 + w) / width - 1, h / height,
                              (2 * y0 + h) / height - 1], dim=1).to(**kw)  # (B, 4)
        base_x = (torch.arange(out_w, **kw) * 2 + 1) / out_w - 1  # output pixel centres
        base_y = (torch.arange(out_h, **kw) * 2 + 1) / out_h - 1
        grid = torch.empty(b, out_h, out_w, 2, **kw)  # (B, h, w, 2), last dim (x, y)
        grid[..., 0] = torch.addcmul(params[:, 1, None], params[:, 0, None], base_x).unsqueeze(1)
        grid[..., 1] = torch.addcmul(params[:, 3, None], params[:, 2, None], base_y).unsqueeze(2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def extra_repr(self) -> str:
        ratio = tuple(round(r, 4) for r in self.ratio)
        return f"size={self.size}, scale={self.scale}, ratio={ratio}"


class RandomHorizontalFlip(_RandomOp):
    """Mirror each image left-right with probability ``p``.

    Args:
        p: probability of flipping a sample.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2) / 4
        >>> RandomHorizontalFlip(p=1.0)(x).flatten().tolist()
        [0.25, 0.0, 0.75, 0.5]
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator)

    def _transform(self, x: Tensor, g) -> Tensor:
        return _apply_to(x, _chosen(x.shape[0], self.p, g), lambda v, _: v.flip(-1))


# --------------------------------------------------------------------------- colour
def _gray(x: Tensor) -> Tensor:
    """Luma of (n, 3, H, W) images as (n, 1, H, W); a 1-channel image is its own luma."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _blend_(x: Tensor, anchor: Tensor, factor: Tensor) -> Tensor:
    """In place: ``x <- clamp(anchor + factor * (x - anchor), 0, 1)`` (torchvision's _blend)."""
    return x.sub_(anchor).mul_(factor).add_(anchor).clamp_(0.0, 1.0)


@functools.lru_cache(maxsize=16)
def _hue_ramps(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Centre, sign and offset of the R, G, B hue ramps, each (1, 3, 1, 1); cached per device."""
    return tuple(
        torch.tensor(v, device=device, dtype=dtype).view(1, 3, 1, 1)
        for v in ((3.0, 2.0, 4.0), (1.0, -1.0, -1.0), (-1.0, 2.0, 2.0))
    )


def adjust_hue(x: Tensor, shift: Tensor, out: Tensor | None = None) -> Tensor:
    """Rotate the HSV hue of each RGB image by ``shift`` turns, keeping saturation and value.

    Exact HSV semantics (the same hue as PIL and torchvision) without a full round trip:
    a hue rotation leaves the max, min and chroma of every pixel unchanged, so only the hue
    angle is computed, shifted, and mapped back with the closed-form hue-to-RGB ramps.

    Args:
        x: (n, 3, H, W) RGB images in [0, 1].
        shift: (n,) hue shifts in turns (0.5 = 180 degrees); on any device.
        out: optional (n, 3, H, W) tensor to write the result into (``x`` itself is allowed).

    Returns:
        (n, 3, H, W) images in [0, 1].

    Example:
        >>> red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
        >>> adjust_hue(red, torch.tensor([1 / 3])).flatten().tolist()  # red -> green
        [0.0, 1.0, 0.0]
    """
    r, g, b = x.unbind(1)  # (n, H, W) each
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    chroma = maxc - minc
    # Which channel is the max, as 0/1 floats: 1 + sign(c - max) is 1 exactly where c == max.
    # Pure arithmetic instead of torch.where/argmax, which are several times slower on the CPU.
    is_r = torch.sign(r - maxc).add_(1)
    is_g = torch.sign(g - maxc).add_(1).mul_(1 - is_r)  # ties go to red, then green
    # Hue in sextants times chroma: red max g - b, green max b - r + 2C, else r - g + 4C.
    rg = r - g
    num = rg + 4 * chroma
    num.addcmul_(is_r, (g - b).sub_(num))
    num.addcmul_(is_g, (b - r).add_(chroma, alpha=2).sub_(rg).sub_(chroma, alpha=4))
    hue6 = num.div_(chroma.clamp_min(torch.finfo(x.dtype).tiny))  # grey pixels: 0 / tiny = 0
    hue6.add_(6 * shift.to(device=x.device, dtype=x.dtype).view(-1, 1, 1))
    hue6.sub_(torch.floor(hue6 / 6).mul_(6)).unsqueeze_(1)  # wrap to [0, 6), (n, 1, H, W)
    # The fully saturated colour of that hue, channel by channel (a piecewise-linear ramp):
    # R = clamp(|h - 3| - 1), G = clamp(2 - |h - 2|), B = clamp(2 - |h - 4|), then scaled
    # back into [min, max]. This is HSV-to-RGB with S and V left as they were.
    centre, sign, offset = _hue_ramps(x.device, x.dtype)
    pure = (hue6 - centre).abs_().mul_(sign).add_(offset).clamp_(0.0, 1.0)  # (n, 3, H, W)
    # Every read of x is done by now, so writing into out = x is safe.
    return torch.addcmul(minc.unsqueeze(1), pure, chroma.unsqueeze(1), out=out)


class ColorJitter(_RandomOp):
    """Randomly change brightness, contrast, saturation and hue, with per-sample factors.

    Factors follow torchvision: a strength ``v`` means a factor uniform in
    ``[max(0, 1 - v), 1 + v]`` (hue: a shift uniform in ``[-v, v]`` turns, ``v <= 0.5``), and
    each step clamps to [0, 1]. Brightness multiplies, contrast blends with the image's mean
    luma, saturation blends with the pixel's luma, hue rotates the HSV hue (``adjust_hue``).
    With ``random_order=True`` (default) every sample applies the four steps in its *own*
    random order, as a per-image torchvision pipeline would; ``False`` keeps the fixed order
    brightness, contrast, saturation, hue. One-channel images get brightness and contrast only
    (saturation and hue need colour).

    Args:
        brightness, contrast, saturation: strengths (number ``v`` or range ``(min, max)``).
        hue: strength in turns, at most 0.5 (or a range inside [-0.5, 0.5]).
        p: probability that a sample is jittered at all (SimCLR's 0.8).
        random_order: per-sample random order of the four steps.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)`` with C in {1, 3}.

    Example:
        >>> jitter = ColorJitter(0.4, 0.4, 0.4, 0.1, generator=torch.Generator().manual_seed(0))
        >>> y = jitter(torch.rand(8, 3, 16, 16))
        >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
        (torch.Size([8, 3, 16, 16]), True)
    """

    colour = True

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.0,
        contrast: float | Sequence[float] = 0.0,
        saturation: float | Sequence[float] = 0.0,
        hue: float | Sequence[float] = 0.0,
        p: float = 0.8,
        random_order: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, generator)
        self.brightness = _range(brightness, "brightness", 1.0)
        self.contrast = _range(contrast, "contrast", 1.0)
        self.saturation = _range(saturation, "saturation", 1.0)
        self.hue = _range(hue, "hue", 0.0, low=-0.5)
        if not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"hue must lie in [-0.5, 0.5] turns; got {hue}")
        self.random_order = random_order

    # Each step overwrites ``x`` (a slice of a buffer this module owns); ``f`` is (n, 1, 1, 1)
    # on x's device and dtype.
    @staticmethod
    def _brightness(x: Tensor, f: Tensor) -> None:
        x.mul_(f).clamp_(0.0, 1.0)

    @staticmethod
    def _contrast(x: Tensor, f: Tensor) -> None:
        _blend_(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), f)  # anchor: mean luma

    @staticmethod
    def _saturation(x: Tensor, f: Tensor) -> None:
        _blend_(x, _gray(x).clone(), f)  # clone: the grey of a 1-channel x would be x itself

    @staticmethod
    def _hue(x: Tensor, f: Tensor) -> None:
        adjust_hue(x, f.view(-1), out=x)

    def _transform(self, x: Tensor, g) -> Tensor:
        b = x.shape[0]
        chosen = _chosen(b, self.p, g).cpu()
        # Draw every sample's factors (chosen or not) so the stream does not depend on which.
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        factors = [_uniform(b, lo, hi, g).cpu() for lo, hi in ranges]
        keys = torch.rand(b, 4, generator=g, device=g.device if g is not None else "cpu").cpu()
        order = keys.argsort(dim=1) if self.random_order else torch.arange(4).expand(b, 4)
        neutral = ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (0.0, 0.0))
        # Saturation and hue need colour; a grey image gets brightness and contrast only.
        active = [j for j in range(4) if ranges[j] != neutral[j] and (j < 2 or x.shape[1] == 3)]
        if chosen.numel() == 0 or not active:
            return x
        steps = (self._brightness, self._contrast, self._saturation, self._hue)

        # Per-sample order without per-sample Python: sort the chosen samples by their order
        # (lexicographically), so at every stage k the samples taking the same step sit in
        # contiguous runs; each run is one in-place call on a slice of the gathered copy.
        o = order[chosen]  # (n, 4): o[i, k] is the step sample i takes k-th
        srt = (o[:, 0] * 64 + o[:, 1] * 16 + o[:, 2] * 4 + o[:, 3]).argsort(stable=True)
        rows, o = chosen[srt], o[srt]
        f = [_per_sample(t[rows], x) for t in factors]  # (n, 1, 1, 1) each, on x's device
        dev_rows = rows.to(x.device)
        y = x.index_select(0, dev_rows)  # (n, C, H, W), our own copy
        for k in range(4):
            step_ids, counts = torch.unique_consecutive(o[:, k], return_counts=True)
            start = 0
            for j, count in zip(step_ids.tolist(), counts.tolist()):
                if j in active:
                    stop = start + count
                    steps[j](y[start:stop], f[j][start:stop])
                start += count
        out = x.clone() if rows.numel() < b else torch.empty_like(x)
        return out.index_copy_(0, dev_rows, y)

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue}, p={self.p}, "
            f"random_order={self.random_order}"
        )


class RandomGrayscale(_RandomOp):
    """Replace each RGB image by its luma (kept as 3 equal channels) with probability ``p``.

    Uses the BT.601 weights (0.299, 0.587, 0.114) as PIL does. One-channel images are
    already grey and pass through.

    Args:
        p: probability of turning a sample grey.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)`` with C in {1, 3}.

    Example:
        >>> y = RandomGrayscale(p=1.0)(torch.rand(2, 3, 4, 4))
        >>> bool((y[:, 0] == y[:, 1]).all() and (y[:, 1] == y[:, 2]).all())
        True
    """

    colour = True

    def __init__(self, p: float = 0.2, generator: torch.Generator | None = None) -> None:
        super().__init__(p, generator)

    def _transform(self, x: Tensor, g) -> Tensor:
        idx = _chosen(x.shape[0], self.p, g)
        if x.shape[1] == 1:
            return x
        return _apply_to(x, idx, lambda v, _: _gray(v).expand_as(v).contiguous())


class GaussianBlur(_RandomOp):
    """Blur each image with a Gaussian of its own random width, with probability ``p``.

    SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", 2020, arXiv:2002.05709, App. A) draws sigma uniformly in [0.1, 2.0] and
    uses a kernel about 10% of the image side. The per-sample separable kernels are applied in
    one grouped convolution by folding the batch into the channels; borders are reflected, so a
    constant image stays constant.

    Args:
        kernel_size: odd kernel side; ``None`` picks 10% of the image side (odd, at least 3).
        sigma: range of the per-sample standard deviation, in pixels.
        p: probability of blurring a sample.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> blur = GaussianBlur(5, p=1.0)
        >>> y = blur(torch.full((2, 3, 8, 8), 0.3))
        >>> bool(torch.allclose(y, torch.full_like(y, 0.3)))
        True
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        sigma: tuple[float, float] = (0.1, 2.0),
        p: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, generator)
        if kernel_size is not None and (kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"kernel_size must be a positive odd int or None; got {kernel_size}")
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must be a range 0 < min <= max; got {sigma}")
        self.kernel_size = kernel_size
        self.sigma = (float(sigma[0]), float(sigma[1]))

    def _transform(self, x: Tensor, g) -> Tensor:
        b, c, height, width = x.shape
        idx = _chosen(b, self.p, g)
        sigma = _uniform(b, *self.sigma, g).cpu()
        k = self.kernel_size or max(3, int(0.1 * min(height, width)) // 2 * 2 + 1)
        # Reflect padding needs pad < side; shrink the kernel for tiny images.
        k = min(k, 2 * (min(height, width) - 1) + 1)
        if k <= 1:
            return x
        half = k // 2

        def blur(v: Tensor, sel: Tensor) -> Tensor:
            n = v.shape[0]
            t = torch.arange(k, device=v.device, dtype=v.dtype) - half  # (k,)
            s = _per_sample(sigma[sel.cpu()], v).view(n, 1)
            w = torch.exp(-0.5 * (t / s) ** 2)
            w = (w / w.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*C, k)
            y = F.pad(v.reshape(1, n * c, height, width), (half, half, half, half), mode="reflect")
            y = F.conv2d(y, w.view(n * c, 1, k, 1), groups=n * c)  # vertical pass
            y = F.conv2d(y, w.view(n * c, 1, 1, k), groups=n * c)  # horizontal pass
            return y.view(n, c, height, width)

        return _apply_to(x, idx, blur)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, p={self.p}"


class Solarize(_RandomOp):
    """Invert every pixel at or above ``threshold`` (``v -> 1 - v``) with probability ``p``.

    BYOL's second view uses it with p = 0.2 (Grill et al., "Bootstrap Your Own Latent",
    2020, arXiv:2006.07733, Table 6). Pixels below the threshold are kept, as in PIL and
    torchvision.

    Args:
        threshold: pixels ``>= threshold`` are inverted.
        p: probability of solarizing a sample.
        generator: default generator (see the module docstring).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> Solarize(0.5, p=1.0)(torch.tensor([0.2, 0.5, 0.9]).view(1, 1, 1, 3)).flatten()
        tensor([0.2000, 0.5000, 0.1000])
    """

    def __init__(
        self, threshold: float = 0.5, p: float = 0.2, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(p, generator)
        self.threshold = float(threshold)

    def _transform(self, x: Tensor, g) -> Tensor:
        idx = _chosen(x.shape[0], self.p, g)
        return _apply_to(x, idx, lambda v, _: torch.where(v >= self.threshold, 1.0 - v, v))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, p={self.p}"


# --------------------------------------------------------------------------- sequencing
class Compose(nn.Sequential):
    """Apply transforms in order, passing the same ``generator`` to each.

    Args:
        *transforms: modules taking ``(x, generator=None)`` (everything in this file).

    Example:
        >>> aug = Compose(RandomHorizontalFlip(), RandomGrayscale(p=0.5))
        >>> g = torch.Generator().manual_seed(0)
        >>> aug(torch.rand(2, 3, 8, 8), generator=g).shape
        torch.Size([2, 3, 8, 8])
    """

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__ + " input")  # name the recipe, not its first step
        for t in self:
            x = t(x, generator=generator)
        return x
