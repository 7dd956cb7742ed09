"""Pretext tasks: the network invents its own labels from the images and learns to predict them.

Each task has two halves, kept apart so the book can show the first as pictures:

* a **pseudo-label generator**, a plain function ``images -> (inputs, labels)``
  (:func:`rotate_batch`, :func:`jigsaw_batch`, :func:`mask_patches`,
  :func:`relative_position_batch`);
* a **method**, an ``nn.Module`` whose ``training_step(batch)`` calls the generator, runs the
  ``encoder`` and a small head, and returns ``{"loss": ..., "acc": ...}``
  (:class:`RotationPrediction`, :class:`Jigsaw`, :class:`Inpainting`, :class:`RelativePosition`).

Only ``encoder`` is kept for downstream use; the heads exist to make the pretext task solvable.
Every random function takes a ``generator`` and creates its tensors on the images' device.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "rotate_batch", "RotationPrediction",
    "jigsaw_permutations", "jigsaw_batch", "unshuffle_tiles", "Jigsaw",
    "mask_patches", "Inpainting",
    "NEIGHBOUR_OFFSETS", "relative_position_batch", "RelativePosition",
]


# ----------------------------------------------------------------------------- helpers

def _randint(high: int, size: tuple, generator, device) -> torch.Tensor:
    # Draw on the generator's own device (a CPU generator cannot fill a CUDA tensor), then move.
    gdev = generator.device if generator is not None else device
    return torch.randint(high, size, generator=generator, device=gdev).to(device)


def _rand(size: tuple, generator, device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.rand(size, generator=generator, device=gdev).to(device)


def _classifier(in_dim: int, n_classes: int, hidden: int = 256) -> nn.Sequential:
    # The head of every classification pretext task: a small MLP, thrown away after training.
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, n_classes),
    )


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).float().mean().detach()


# ----------------------------------------------------------------------------- rotation

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
        encoder: a backbone mapping (B, C, H, W) to (B, feature_dim).
        feature_dim: the encoder's output size.
        hidden: width of the MLP head.

    Example:
        >>> enc = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> out = RotationPrediction(enc, 8).training_step((torch.rand(2, 3, 8, 8), None))
        >>> sorted(out)
        ['acc', 'loss']
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, hidden: int = 256):
        super().__init__()
        self.encoder = encoder
        self.head = _classifier(feature_dim, 4, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, 4) rotation logits

    def training_step(self, batch) -> dict:
        x_rot, y = rotate_batch(batch[0])  # (4B, C, H, W), (4B,)
        logits = self(x_rot)  # (4B, 4)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}


# ----------------------------------------------------------------------------- jigsaw

@lru_cache(maxsize=8)
def _all_permutations(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)  # (n!, n)


def jigsaw_permutations(grid: int = 2, n_permutations: int = 24, seed: int = 0) -> torch.Tensor:
    """A fixed set of tile permutations that are far apart in Hamming distance.

    Noroozi and Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
    Puzzles", ECCV 2016, arXiv:1603.09246, Sec. 3.3: start from one permutation and greedily
    add the permutation whose smallest Hamming distance to the chosen ones is largest; far-apart
    permutations make the classes easy to tell apart and the task about content, not details.
    Row 0 is the identity (label 0 = the unshuffled image); ties are broken with ``seed``.

    Args:
        grid: tiles per side (2 gives 4! = 24 permutations, 3 gives 9! = 362880).
        n_permutations: how many permutations (classes) to keep.
        seed: seeds the tie-breaking, so the same call always gives the same set.

    Returns:
        (n_permutations, grid * grid) int64; row ``p`` lists the tile shown at each position.

    Example:
        >>> P = jigsaw_permutations(2, 4)
        >>> P.shape, P[0].tolist()
        (torch.Size([4, 4]), [0, 1, 2, 3])
        >>> int((P[1] != P[0]).sum())  # the second one moves every tile
        4
    """
    allp = _all_permutations(grid * grid)  # (n!, T)
    if not 1 <= n_permutations <= len(allp):
        raise ValueError(f"n_permutations must be in 1..{len(allp)} for grid={grid}; "
                         f"got {n_permutations}")
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(allp), generator=g) * 0.5  # < 1: breaks ties, never outranks a distance
    chosen = [0]  # itertools lists the identity first
    min_dist = (allp != allp[0]).sum(1).float()  # (n!,) distance to the chosen set
    for _ in range(n_permutations - 1):
        nxt = int((min_dist + noise).argmax())
        chosen.append(nxt)
        min_dist = torch.minimum(min_dist, (allp != allp[nxt]).sum(1).float())
    return allp[chosen].clone()


def _tiles(x: torch.Tensor, grid: int) -> torch.Tensor:
    b, c, h, w = x.shape
    t = h // grid  # tile side; pixels past grid * t stay where they are
    x = x[:, :, : grid * t, : grid * t]
    x = x.reshape(b, c, grid, t, grid, t).permute(0, 2, 4, 1, 3, 5)  # (B, g, g, C, t, t)
    return x.reshape(b, grid * grid, c, t, t)  # (B, T, C, t, t), tiles in raster order


def _untile(tiles: torch.Tensor, canvas: torch.Tensor, grid: int) -> torch.Tensor:
    b, _, c, t, _ = tiles.shape
    img = tiles.reshape(b, grid, grid, c, t, t).permute(0, 3, 1, 4, 2, 5)  # (B, C, g, t, g, t)
    out = canvas.clone()
    out[:, :, : grid * t, : grid * t] = img.reshape(b, c, grid * t, grid * t)
    return out


def jigsaw_batch(x: torch.Tensor, grid: int = 2, permutations: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, return_tiles: bool = False,
                 border: int = 0, fill: float = 0.5):
    """Cut each image into a grid of tiles and shuffle them by a random permutation of a fixed set.

    Noroozi and Favaro, ECCV 2016, arXiv:1603.09246: the label is the *index* of the
    permutation in the fixed set, so the task is a classification with ``len(permutations)``
    classes. Tiles have side ``H // grid``; pixels beyond ``grid * (H // grid)`` are left alone.

    Args:
        x: images (B, C, H, W).
        grid: tiles per side.
        permutations: (P, grid * grid) from :func:`jigsaw_permutations` (default: all of them
            for ``grid=2``, 100 for larger grids).
        generator: draws the labels.
        return_tiles: return the tiles (B, T, C, t, t) instead of the reassembled image.
        border: paint this many pixels along every tile's edge with ``fill``, the gap the
            paper leaves between tiles so that edges running across borders give nothing away.

    Returns:
        ``(shuffled, labels)``: the shuffled images (B, C, H, W) (or tiles) and (B,) labels;
        position ``i`` of image ``b`` holds tile ``permutations[labels[b], i]`` of the original.

    Example:
        >>> x = torch.rand(3, 1, 4, 4)
        >>> P = jigsaw_permutations(2, 6)
        >>> xs, y = jigsaw_batch(x, 2, P, torch.Generator().manual_seed(0))
        >>> bool(torch.equal(unshuffle_tiles(xs, y, P), x))
        True
    """
    if permutations is None:
        permutations = jigsaw_permutations(grid, 24 if grid == 2 else 100)
    perms = permutations.to(x.device)
    if perms.shape[1] != grid * grid:
        raise ValueError(f"permutations must have {grid * grid} columns for grid={grid}; "
                         f"got shape {tuple(perms.shape)}")
    labels = _randint(len(perms), (x.shape[0],), generator, x.device)  # (B,)
    tiles = _tiles(x, grid)  # (B, T, C, t, t)
    order = perms[labels]  # (B, T): which tile goes to each position
    shuffled = tiles[torch.arange(x.shape[0], device=x.device)[:, None], order]  # (B, T, C, t, t)
    if border > 0:
        t = shuffled.shape[-1]
        keep = torch.zeros(t, t, device=x.device)
        keep[border:t - border, border:t - border] = 1.0  # (t, t): 1 inside, 0 on the edge
        shuffled = shuffled * keep + fill * (1 - keep)
    if return_tiles:
        return shuffled, labels
    return _untile(shuffled, x, grid), labels


def unshuffle_tiles(shuffled: torch.Tensor, labels: torch.Tensor, permutations: torch.Tensor,
                    ) -> torch.Tensor:
    """Undo :func:`jigsaw_batch` given its labels: the answer key of the puzzle.

    Example:
        >>> x = torch.rand(2, 3, 6, 6); P = jigsaw_permutations(3, 5)
        >>> xs, y = jigsaw_batch(x, 3, P, torch.Generator().manual_seed(1))
        >>> bool(torch.equal(unshuffle_tiles(xs, y, P), x))
        True
    """
    grid = int(round(permutations.shape[1] ** 0.5))
    tiles = _tiles(shuffled, grid)  # (B, T, C, t, t)
    inverse = permutations.to(shuffled.device)[labels].argsort(dim=1)  # (B, T)
    rows = torch.arange(shuffled.shape[0], device=shuffled.device)[:, None]
    return _untile(tiles[rows, inverse], shuffled, grid)


class Jigsaw(nn.Module):
    """Say which of a fixed set of permutations shuffled an image's tiles (arXiv:1603.09246).

    The paper runs a siamese network over each tile separately. On 32x32 images that means
    tiles of 16 or 10 pixels, and a backbone trained on such small crops sees a different scale
    than at evaluation time, for ``grid * grid`` forward passes per image. Here the encoder sees
    the whole reassembled, shuffled image once: one cheap pass, at the resolution it is
    evaluated on. The price is a shortcut the siamese design blocks: edges that do not continue
    across tile borders. Pass ``siamese=True`` to get the paper's design.

    Args:
        encoder: a backbone mapping (B, C, H, W) to (B, feature_dim).
        feature_dim: the encoder's output size.
        grid: tiles per side.
        n_permutations: number of classes (a fixed set from :func:`jigsaw_permutations`).
        siamese: encode each tile on its own and classify their concatenated features.
        border: pixels blanked along each tile's edge (see :func:`jigsaw_batch`).
        seed: chooses the permutation set.

    Example:
        >>> enc = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1),
        ...                     nn.Flatten())
        >>> m = Jigsaw(enc, 8, grid=2, n_permutations=10)
        >>> m.training_step((torch.rand(4, 3, 8, 8), None))["loss"].requires_grad
        True
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, grid: int = 2,
                 n_permutations: int = 24, hidden: int = 256, siamese: bool = False,
                 border: int = 0, seed: int = 0):
        super().__init__()
        self.encoder, self.grid, self.siamese, self.border = encoder, grid, siamese, border
        self.register_buffer("permutations", jigsaw_permutations(grid, n_permutations, seed))
        in_dim = feature_dim * grid * grid if siamese else feature_dim
        self.head = _classifier(in_dim, n_permutations, hidden)
        self.generator = None  # set a torch.Generator to make the shuffles reproducible

    def training_step(self, batch) -> dict:
        x = batch[0]
        xs, y = jigsaw_batch(x, self.grid, self.permutations, self.generator,
                             return_tiles=self.siamese, border=self.border)
        if self.siamese:  # xs: (B, T, C, t, t) -> features (B, T * D)
            b, t = xs.shape[:2]
            feats = self.encoder(xs.flatten(0, 1)).view(b, -1)
        else:  # xs: (B, C, H, W) -> features (B, D)
            feats = self.encoder(xs)
        logits = self.head(feats)  # (B, P)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}


# ----------------------------------------------------------------------------- inpainting

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
        encoder: a backbone mapping (B, C, H, W) to (B, feature_dim).
        feature_dim: the encoder's output size.
        image_size: side of the (square) images.
        channels: image channels.
        patch, ratio, central: how :func:`mask_patches` hides pixels.

    Example:
        >>> enc = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> m = Inpainting(enc, 8, image_size=16, patch=4)
        >>> m.training_step((torch.rand(2, 3, 16, 16), None))["loss"].shape
        torch.Size([])
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, image_size: int = 32,
                 channels: int = 3, patch: int = 8, ratio: float = 0.25, central: bool = False,
                 width: int = 32):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size must be divisible by 8; got {image_size}")
        self.encoder, self.patch, self.ratio, self.central = encoder, patch, ratio, central
        s = image_size // 8
        up = nn.Upsample(scale_factor=2)  # no weights: safe to reuse
        self.decoder = nn.Sequential(  # (B, D) -> (B, width, S/8, S/8) -> (B, C, S, S)
            nn.Linear(feature_dim, width * s * s), nn.Unflatten(1, (width, s, s)),
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
        x = batch[0]
        x_masked, mask = mask_patches(x, self.patch, self.ratio, self.central, self.generator)
        pred = self(x_masked)  # (B, C, H, W)
        return {"loss": self.masked_mse(pred, x, mask)}


# ----------------------------------------------------------------------------- relative position

#: (row, column) step from the centre cell to neighbour ``label``, in raster order.
NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def relative_position_batch(x: torch.Tensor, grid: int = 3, gap: int = 2, jitter: int = 1,
                            generator: torch.Generator | None = None):
    """A centre patch, one of its eight neighbours, and which neighbour it is (label 0..7).

    Doersch, Gupta and Efros, "Unsupervised Visual Representation Learning by Context
    Prediction", ICCV 2015, arXiv:1505.05192. The image is split into a ``grid x grid`` array
    of cells of side ``H // grid`` (centred); each patch is a cell shrunk by ``gap`` pixels and
    shifted by up to ``jitter`` pixels, so that, as in the paper (Sec. 3), patches never touch
    and lines running across a border do not give the answer away.

    Args:
        x: images (B, C, H, W).
        grid: cells per side (3: the centre cell and its 8 neighbours).
        gap: pixels between neighbouring patches before jitter; ``2 * jitter <= gap``.
        jitter: largest random shift of each patch, per axis.
        generator: draws labels and jitter.

    Returns:
        ``((centre, neighbour), labels)``: two (B, C, p, p) tensors, p = H // grid - gap, and
        (B,) labels indexing :data:`NEIGHBOUR_OFFSETS`.

    Example:
        >>> (c, n), y = relative_position_batch(torch.rand(4, 3, 32, 32), jitter=0)
        >>> c.shape, n.shape, bool(((y >= 0) & (y < 8)).all())
        (torch.Size([4, 3, 8, 8]), torch.Size([4, 3, 8, 8]), True)
    """
    b, c, h, w = x.shape
    cell = min(h, w) // grid
    p = cell - gap
    if p < 1 or 2 * jitter > gap:
        raise ValueError(f"need gap < {cell} and 2 * jitter <= gap; got gap={gap}, "
                         f"jitter={jitter}")
    top, left = (h - grid * cell) // 2, (w - grid * cell) // 2  # centre the grid
    mid = grid // 2
    labels = _randint(8, (b,), generator, x.device)  # (B,)
    steps = torch.tensor(NEIGHBOUR_OFFSETS, device=x.device)[labels]  # (B, 2)
    cells = torch.stack([torch.full_like(steps, mid), steps + mid])  # (2, B, 2): centre, neighbour
    shift = _randint(2 * jitter + 1, (2, b, 2), generator, x.device) - jitter  # (2, B, 2)
    corner = cells * cell + gap // 2 + shift + torch.tensor([top, left], device=x.device)
    ar = torch.arange(p, device=x.device)
    rows = (corner[..., 0:1] + ar)[..., :, None]  # (2, B, p, 1)
    cols = (corner[..., 1:2] + ar)[..., None, :]  # (2, B, 1, p)
    bi = torch.arange(b, device=x.device)[:, None, None]
    xc = x.permute(0, 2, 3, 1)  # (B, H, W, C) so advanced indexing gathers pixels
    patches = [xc[bi, rows[i], cols[i]].permute(0, 3, 1, 2) for i in range(2)]  # (B, C, p, p)
    return (patches[0], patches[1]), labels


class RelativePosition(nn.Module):
    """Predict where a neighbour patch sits relative to the centre patch (arXiv:1505.05192).

    Both patches go through the same encoder (one batched pass); an MLP classifies the
    concatenated features into the eight positions. Recognising "this is the top of an object"
    is what makes the task solvable, which is the point.

    Args:
        encoder: a backbone mapping (B, C, h, w) to (B, feature_dim); must accept small patches.
        feature_dim: the encoder's output size.
        grid, gap, jitter: how :func:`relative_position_batch` cuts patches.
        patch_size: if set, patches are resized to this side before the encoder (a backbone
            evaluated on full images then sees objects at a closer scale).

    Example:
        >>> enc = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> out = RelativePosition(enc, 8).training_step((torch.rand(2, 3, 32, 32), None))
        >>> out["loss"].requires_grad
        True
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, grid: int = 3, gap: int = 2,
                 jitter: int = 1, hidden: int = 256, patch_size: int | None = None):
        super().__init__()
        self.encoder, self.grid, self.gap, self.jitter = encoder, grid, gap, jitter
        self.patch_size = patch_size
        self.head = _classifier(2 * feature_dim, 8, hidden)
        self.generator = None  # set a torch.Generator to make the patches reproducible

    def training_step(self, batch) -> dict:
        (centre, neighbour), y = relative_position_batch(
            batch[0], self.grid, self.gap, self.jitter, self.generator)  # (B, C, p, p) x 2
        both = torch.cat([centre, neighbour])  # (2B, C, p, p): one pass, shared weights
        if self.patch_size is not None:
            both = F.interpolate(both, size=self.patch_size, mode="bilinear",
                                 align_corners=False)
        f_c, f_n = self.encoder(both).chunk(2)  # (B, D) each
        logits = self.head(torch.cat([f_c, f_n], dim=1))  # (B, 8)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}
