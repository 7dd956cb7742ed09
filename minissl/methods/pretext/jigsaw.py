"""Jigsaw puzzles (Noroozi & Favaro, 2016): which permutation shuffled the tiles?"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead

from ._common import _accuracy, _randint


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
    total = math.factorial(grid * grid)
    if not 1 <= n_permutations <= total:
        raise ValueError(f"n_permutations must be in 1..{total} for grid={grid}; "
                         f"got {n_permutations}")
    return _greedy_permutations(grid, n_permutations, seed).clone()  # callers may edit theirs


@lru_cache(maxsize=8)  # the 3x3 search takes seconds; every Jigsaw built reuses it
def _greedy_permutations(grid: int, n_permutations: int, seed: int) -> torch.Tensor:
    allp = _all_permutations(grid * grid)  # (n!, T)
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
        encoder: a backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        grid: tiles per side.
        n_permutations: number of classes (a fixed set from :func:`jigsaw_permutations`).
        hidden_dim: hidden width of the MLP head.
        siamese: encode each tile on its own and classify their concatenated features.
        border: pixels blanked along each tile's edge (see :func:`jigsaw_batch`).
        seed: chooses the permutation set.

    Example:
        >>> from minissl.nn import ConvNet
        >>> m = Jigsaw(ConvNet(width=4), grid=2, n_permutations=10)
        >>> m.training_step((torch.rand(4, 3, 8, 8), None))["loss"].requires_grad
        True
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> Jigsaw:
        """The permutation set drawn with the run's seed (see :mod:`minissl.methods.setting`)."""
        return cls(encoder, **{"seed": setting.seed, **kwargs})

    def __init__(self, encoder: nn.Module, grid: int = 2,
                 n_permutations: int = 24, hidden_dim: int = 256, siamese: bool = False,
                 border: int = 0, seed: int = 0):
        super().__init__()
        self.encoder, self.grid, self.siamese, self.border = encoder, grid, siamese, border
        self.register_buffer("permutations", jigsaw_permutations(grid, n_permutations, seed))
        in_dim = encoder.feature_dim * (grid * grid if siamese else 1)
        self.head = MLPHead(in_dim, hidden_dim, n_permutations, hidden_bias=True)
        self.generator = None  # set a torch.Generator to make the shuffles reproducible

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)
        xs, y = jigsaw_batch(x, self.grid, self.permutations, self.generator,
                             return_tiles=self.siamese, border=self.border)
        if self.siamese:  # xs: (B, T, C, t, t) -> features (B, T * D)
            b, t = xs.shape[:2]
            feats = self.encoder(xs.flatten(0, 1)).view(b, -1)
        else:  # xs: (B, C, H, W) -> features (B, D)
            feats = self.encoder(xs)
        logits = self.head(feats)  # (B, P)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}
