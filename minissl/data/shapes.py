"""A procedural image data set: eight upright shape classes under controllable nuisance factors.

Every image is drawn at once for a whole batch on a coordinate grid: each shape is a signed
distance function (SDF) evaluated in the shape's own rotated and scaled frame, and the SDF in
pixels gives an anti-aliased coverage ``alpha = clamp(0.5 - sdf, 0, 1)``. The class decides
only the outline; colour, position, scale, rotation, background and clutter are drawn
independently of it, so a model has to look at the outline to tell classes apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from .dataset import ImageDataset

CLASSES = ["circle", "ring", "square", "triangle", "cross", "star", "crescent", "bar"]

# Nuisance factors that can be switched on or off one by one.
NUISANCES = ("colour", "position", "scale", "rotation", "background", "clutter", "noise")

# The default: upright shapes of any colour, position and size on a flat background. A small
# network learns to tell them apart in seconds (a supervised ConvNet reaches about 0.99 at
# 16x16 in the quick profile), yet an untrained one cannot (its few-label probe is near 0.3),
# so the gain of self-supervision is large and easy to see. Documented in minissl.data.
DEFAULT_NUISANCE = {"colour": True, "position": True, "scale": True, "rotation": False,
                    "background": False, "clutter": False, "noise": False}

# Every factor on: any rotation, a textured gradient background, clutter and pixel noise.
# The variant for chapters whose point is robustness to nuisances (documented in minissl.data).
CLUTTERED = {key: True for key in NUISANCES}

# The range of a shape's size: the radius of its unit disc, as a share of half the image.
SCALE = (0.32, 0.6)

SPLITS = ("train", "test")
DEFAULT_SIZE = {"train": 10_000, "test": 2_000}

# Images are drawn in fixed-size chunks, each from its own seed, so `make_shapes(n)` is a
# prefix of `make_shapes(m)` for n < m: asking for fewer images never changes the ones kept.
_CHUNK = 256


def _box(ux: torch.Tensor, uy: torch.Tensor, bx: float, by: float) -> torch.Tensor:
    # Exact SDF of an axis-aligned box with half-sides (bx, by).
    qx, qy = ux.abs() - bx, uy.abs() - by
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _polygon(ux: torch.Tensor, uy: torch.Tensor, sides: int, apothem: float) -> torch.Tensor:
    # Regular polygon as the max over its edges' half-plane distances: exact inside,
    # slightly short outside near corners, which is plenty for one pixel of anti-aliasing.
    d = None
    for k in range(sides):
        a = math.pi / 2 + math.pi / sides + 2 * math.pi * k / sides
        e = ux * math.cos(a) + uy * math.sin(a) - apothem
        d = e if d is None else torch.maximum(d, e)
    return d


def _star(ux: torch.Tensor, uy: torch.Tensor, points: int = 5, inner: float = 0.45) -> torch.Tensor:
    # Fold the plane into one half-sector [0, pi/points] (tip on the x-axis), then take the
    # signed distance to the edge from the tip (1, 0) to the inner corner.
    sector = 2 * math.pi / points
    phi = torch.atan2(uy, ux)
    phi = (torch.remainder(phi, sector) - sector / 2).abs()
    r = torch.sqrt(ux**2 + uy**2)
    qx, qy = r * torch.cos(phi), r * torch.sin(phi)
    vx, vy = inner * math.cos(sector / 2), inner * math.sin(sector / 2)
    nx, ny = vy, 1.0 - vx  # normal of the edge, pointing away from the centre
    norm = math.hypot(nx, ny)
    return ((qx - 1.0) * nx + qy * ny) / norm


def _sdf(label: int, ux: torch.Tensor, uy: torch.Tensor) -> torch.Tensor:
    # Unit frame: every shape fits in the unit disc, with roughly comparable areas.
    name = CLASSES[label]
    if name == "circle":
        return torch.sqrt(ux**2 + uy**2) - 0.85
    if name == "ring":
        return (torch.sqrt(ux**2 + uy**2) - 0.68).abs() - 0.24
    if name == "square":
        return _box(ux, uy, 0.68, 0.68)
    if name == "triangle":
        return _polygon(ux, uy, 3, 0.5)
    if name == "cross":
        return torch.minimum(_box(ux, uy, 0.92, 0.28), _box(ux, uy, 0.28, 0.92))
    if name == "star":
        return _star(ux, uy)
    if name == "crescent":
        disc = torch.sqrt(ux**2 + uy**2) - 0.9
        bite = torch.sqrt((ux - 0.5) ** 2 + uy**2) - 0.7
        return torch.maximum(disc, -bite)
    if name == "bar":
        return _box(ux, uy, 0.95, 0.3)
    raise AssertionError(name)


def _chunk_seed(seed: int, split: str, chunk: int) -> int:
    # SeedSequence mixes the three numbers well, so nearby seeds and the two splits give
    # unrelated streams (train and test never share images).
    ss = np.random.SeedSequence([seed, SPLITS.index(split), chunk])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def _uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def _draw_chunk(m: int, g: torch.Generator, size: int, on: Mapping[str, bool]):
    """Draw the first m images of one chunk (and their factors) from generator g."""
    k, n = len(CLASSES), _CHUNK
    # Random numbers are always drawn for a whole chunk and then cut to m, so the first m
    # images do not depend on how many are asked for. Every factor is drawn even when
    # switched off, so turning one off leaves the others' values unchanged.
    r = {
        "labels": torch.randperm(n, generator=g) % k,  # balanced within every chunk
        "scale": _uniform(g, *SCALE, n),
        "pos": _uniform(g, -1.0, 1.0, n, 2),
        "rot": _uniform(g, 0.0, 2 * math.pi, n),
        "bright_bg": torch.rand(n, generator=g) < 0.5,
        "bg_a": torch.rand(n, 3, generator=g),
        "bg_b": torch.rand(n, 3, generator=g),
        "grad_dir": _uniform(g, 0.0, 2 * math.pi, n),
        "tex_amp": _uniform(g, 0.0, 0.08, n),
        "tex_freq": _uniform(g, 3.0, 9.0, n),
        "tex_dir": _uniform(g, 0.0, 2 * math.pi, n),
        "tex_phase": _uniform(g, 0.0, 2 * math.pi, n),
        "fg_raw": torch.rand(n, 3, generator=g),
        "blob_on": torch.rand(n, 3, generator=g) < 0.5,
        "blob_c": _uniform(g, -1.0, 1.0, n, 3, 2),
        "blob_r": _uniform(g, 0.06, 0.14, n, 3),
        "blob_col": torch.rand(n, 3, 3, generator=g),
        "line_on": torch.rand(n, 2, generator=g) < 0.5,
        "line_a": _uniform(g, -1.0, 1.0, n, 2, 2),
        "line_ang": _uniform(g, 0.0, 2 * math.pi, n, 2),
        "line_len": _uniform(g, 0.2, 0.5, n, 2),
        "line_col": torch.rand(n, 2, 3, generator=g),
    }
    r = {key: v[:m] for key, v in r.items()}
    # Uniform noise with standard deviation 0.03 (cheaper to draw than Gaussian noise).
    noise = torch.rand(n, 3, size, size, generator=g)[:m] if on["noise"] else None
    n = m
    labels, scale, rot, bright_bg = r["labels"], r["scale"], r["rot"], r["bright_bg"]
    pos = r["pos"] * (0.95 - scale)[:, None]  # keep the shape inside the image
    bg_a, bg_b, grad_dir = r["bg_a"], r["bg_b"], r["grad_dir"]
    tex_amp, tex_freq = r["tex_amp"], r["tex_freq"]
    tex_dir, tex_phase = r["tex_dir"], r["tex_phase"]
    fg_raw = r["fg_raw"]
    n_blob, n_line = 3, 2
    blob_on, blob_c, blob_r, blob_col = r["blob_on"], r["blob_c"], r["blob_r"], r["blob_col"]
    line_on, line_a, line_ang = r["line_on"], r["line_a"], r["line_ang"]
    line_len, line_col = r["line_len"], r["line_col"]

    if not on["scale"]:
        scale = torch.full((n,), 0.46)
    if not on["position"]:
        pos = torch.zeros(n, 2)
    if not on["rotation"]:
        rot = torch.zeros(n)
    # Contrast: a bright background gets a dark shape and the other way round, so the shape
    # is always visible but its brightness says nothing about its class.
    if not on["background"] or not on["colour"]:
        bright_bg = torch.zeros(n, dtype=torch.bool)
    b = bright_bg[:, None].float()
    if on["background"]:
        bg_a = b * (0.55 + 0.45 * bg_a) + (1 - b) * 0.45 * bg_a  # (n, 3)
        bg_b = b * (0.55 + 0.45 * bg_b) + (1 - b) * 0.45 * bg_b
    else:
        bg_a = bg_b = torch.full((n, 3), 0.1)
        tex_amp = torch.zeros(n)
    if on["colour"]:
        fg = b * 0.4 * fg_raw + (1 - b) * (0.6 + 0.4 * fg_raw)  # (n, 3)
    else:
        fg = torch.full((n, 3), 0.95)

    # Pixel-centre coordinates in [-1, 1]; one pixel is 2/size units wide.
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    py, px = torch.meshgrid(t, t, indexing="ij")  # (H, W) each; y grows downwards
    px, py = px[None], py[None]  # (1, H, W)
    px_per_unit = size / 2

    # Background: a linear gradient between two colours plus faint sinusoidal stripes.
    proj = px * torch.cos(grad_dir)[:, None, None] + py * torch.sin(grad_dir)[:, None, None]
    w = ((proj / math.sqrt(2)) + 1) / 2  # (n, H, W) in [0, 1]
    stripes = torch.sin(
        tex_freq[:, None, None]
        * (px * torch.cos(tex_dir)[:, None, None] + py * torch.sin(tex_dir)[:, None, None])
        + tex_phase[:, None, None]
    )
    # Few full-size (n, 3, H, W) operations and those in place: this loop is memory-bound.
    img = torch.addcmul(bg_a[:, :, None, None], (bg_b - bg_a)[:, :, None, None], w[:, None])
    img.add_((tex_amp[:, None, None] * stripes)[:, None])  # (n, 3, H, W)

    def paint(img, sdf_units, colour):
        # Alpha-blend `colour` (n, 3) where the SDF (n, H, W, image units) is inside.
        alpha = (0.5 - sdf_units * px_per_unit).clamp_(0, 1)[:, None]  # (n, 1, H, W)
        return img.lerp_(colour[:, :, None, None].expand_as(img), alpha)

    n_clutter = torch.zeros(n, dtype=torch.long)
    if on["clutter"]:
        for j in range(n_blob):
            cx, cy = blob_c[:, j, 0, None, None], blob_c[:, j, 1, None, None]
            d = torch.sqrt((px - cx) ** 2 + (py - cy) ** 2) - blob_r[:, j, None, None]
            d = torch.where(blob_on[:, j, None, None], d, torch.full_like(d, 9.0))
            img = paint(img, d, blob_col[:, j])
        for j in range(n_line):
            ax, ay = line_a[:, j, 0, None, None], line_a[:, j, 1, None, None]
            dx = (torch.cos(line_ang[:, j]) * line_len[:, j])[:, None, None]
            dy = (torch.sin(line_ang[:, j]) * line_len[:, j])[:, None, None]
            # Distance to the segment a -> a + (dx, dy), minus a half-width of ~0.7 pixels.
            h = (((px - ax) * dx + (py - ay) * dy) / (dx**2 + dy**2)).clamp(0, 1)
            d = torch.sqrt((px - ax - h * dx) ** 2 + (py - ay - h * dy) ** 2) - 0.045
            d = torch.where(line_on[:, j, None, None], d, torch.full_like(d, 9.0))
            img = paint(img, d, line_col[:, j])
        n_clutter = blob_on.sum(1) + line_on.sum(1)

    # The shape: move each pixel into the shape's frame (undo position, rotation, scale).
    cos, sin = torch.cos(rot)[:, None, None], torch.sin(rot)[:, None, None]
    s = scale[:, None, None]
    dx, dy = px - pos[:, 0, None, None], py - pos[:, 1, None, None]
    ux, uy = (cos * dx + sin * dy) / s, (-sin * dx + cos * dy) / s  # (n, H, W)
    sdf = torch.empty(n, size, size)
    for c in range(k):
        idx = (labels == c).nonzero().flatten()
        if len(idx):
            sdf[idx] = _sdf(c, ux[idx], uy[idx]) * s[idx]  # back to image units
    img = paint(img, sdf, fg)
    if noise is not None:
        img.add_(noise.sub_(0.5).mul_(0.03 * math.sqrt(12)))
    img.clamp_(0, 1)

    factors = {
        "colour": fg,
        "position": pos,
        "scale": scale,
        "rotation": rot,
        "background": (bg_a + bg_b) / 2,
        "bright_background": bright_bg,
        "clutter": n_clutter,
    }
    return img.contiguous(), labels.long(), factors


def make_shapes(
    n: int,
    *,
    seed: int = 0,
    image_size: int = 32,
    nuisance: Mapping[str, bool] | None = None,
    split: str = "train",
) -> ImageDataset:
    """Generate ``n`` RGB images of eight shape classes with independent nuisance factors.

    Classes: circle, ring, square, triangle, cross, star, crescent, bar. Nuisance factors,
    each drawn independently of the class: foreground ``colour``, ``position``, ``scale``,
    ``rotation``, ``background`` (a two-colour gradient with faint stripes, bright or dark),
    ``clutter`` (up to three small blobs and two thin lines) and pixel ``noise``. By default
    (:data:`DEFAULT_NUISANCE`) colour, position and scale vary and the shapes stand upright
    on a flat background; :data:`CLUTTERED` switches every factor on. The factors
    are kept on the result as ``ds.factors`` (a dict of tensors: ``colour`` (N, 3),
    ``position`` (N, 2), ``scale`` (N,), ``rotation`` (N,) in radians, ``background`` (N, 3)
    mean background colour, ``bright_background`` (N,), ``clutter`` (N,) distractor count),
    so invariance experiments can ask what a representation encodes.

    Args:
        n: number of images.
        seed: the same seed (and split) always gives the same images; ``make_shapes(n)`` is
            a prefix of ``make_shapes(m)`` for ``n < m``.
        image_size: side length H = W of the images; shapes scale with it.
        nuisance: factors to switch on or off, over :data:`DEFAULT_NUISANCE`, e.g.
            ``{"rotation": True}`` or ``{"colour": False}``. Off means: colour fixed light
            grey, position centred, scale fixed, rotation 0, background flat dark grey, no
            clutter, no noise. ``nuisance=CLUTTERED`` switches every factor on.
        split: ``"train"`` or ``"test"``; the two draw from unrelated random streams.

    Returns:
        An :class:`ImageDataset` with images (n, 3, image_size, image_size) in [0, 1].

    Example:
        >>> ds = make_shapes(16, seed=0, nuisance={"rotation": True})
        >>> ds.images.shape, ds.classes[:3]
        (torch.Size([16, 3, 32, 32]), ['circle', 'ring', 'square'])
        >>> ds.factors["colour"].shape, ds.factors["rotation"].shape
        (torch.Size([16, 3]), torch.Size([16]))
        >>> again = make_shapes(16, seed=0, nuisance={"rotation": True})
        >>> bool(torch.equal(ds.images, again.images))
        True
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for 'shapes'; use one of {list(SPLITS)}")
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8; got {image_size}")
    on = dict(DEFAULT_NUISANCE)
    for key, value in dict(nuisance or {}).items():
        if key not in on:
            raise ValueError(f"unknown nuisance {key!r}; valid ones are {list(NUISANCES)}")
        on[key] = bool(value)

    parts = []
    # The chunks are small and memory-bound; on a busy machine PyTorch's intra-op threads
    # wait on each other (measured: 10,000 images took 1.7 s on one thread, 10-12 s on two,
    # on a loaded 2-core box), so draw on one thread and restore the setting afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for chunk in range((n + _CHUNK - 1) // _CHUNK):
            g = torch.Generator().manual_seed(_chunk_seed(seed, split, chunk))
            parts.append(_draw_chunk(min(_CHUNK, n - chunk * _CHUNK), g, image_size, on))
    finally:
        torch.set_num_threads(threads)
    if parts:
        images = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        factors = {key: torch.cat([p[2][key] for p in parts]) for key in parts[0][2]}
    else:
        images = torch.zeros(0, 3, image_size, image_size)
        labels = torch.zeros(0, dtype=torch.long)
        factors = {}
    return ImageDataset(images, labels, CLASSES, "shapes", split, factors)
