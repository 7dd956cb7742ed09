"""Relative position (Doersch et al., 2015): where was the neighbouring patch?"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead

from ._common import _accuracy, _randint

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
        encoder: a backbone mapping (B, C, h, w) to (B, encoder.feature_dim); must accept
            small patches.
        grid, gap, jitter: how :func:`relative_position_batch` cuts patches.
        hidden_dim: hidden width of the MLP head.
        patch_size: if set, patches are resized to this side before the encoder (a backbone
            evaluated on full images then sees objects at a closer scale).

    Example:
        >>> from minissl.nn import ConvNet
        >>> out = RelativePosition(ConvNet(width=4)).training_step((torch.rand(2, 3, 32, 32), None))
        >>> out["loss"].requires_grad
        True
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> RelativePosition:
        """Sized for the run's images (see :mod:`minissl.methods.setting`).

        On small images a cell of the grid is only a few pixels wide: the gap shrinks to half
        a cell and the jitter to half the gap. A ViT takes one image size, so its patches are
        resized to the images' side.
        """
        size = setting.image_size
        cell = size // kwargs.get("grid", 3)
        if kwargs.get("gap", 2) >= cell:
            kwargs = {**kwargs, "gap": cell // 2}
            kwargs["jitter"] = min(kwargs.get("jitter", 1), kwargs["gap"] // 2)
        if hasattr(encoder, "patchify"):
            kwargs = {"patch_size": size, **kwargs}
        return cls(encoder, **kwargs)

    def __init__(self, encoder: nn.Module, grid: int = 3, gap: int = 2,
                 jitter: int = 1, hidden_dim: int = 256, patch_size: int | None = None):
        super().__init__()
        self.encoder, self.grid, self.gap, self.jitter = encoder, grid, gap, jitter
        self.patch_size = patch_size
        self.head = MLPHead(2 * encoder.feature_dim, hidden_dim, 8, hidden_bias=True)
        self.generator = None  # set a torch.Generator to make the patches reproducible

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # (B, C, H, W)
        (centre, neighbour), y = relative_position_batch(
            x, self.grid, self.gap, self.jitter, self.generator)  # (B, C, p, p) x 2
        both = torch.cat([centre, neighbour])  # (2B, C, p, p): one pass, shared weights
        if self.patch_size is not None:
            both = F.interpolate(both, size=self.patch_size, mode="bilinear",
                                 align_corners=False)
        f_c, f_n = self.encoder(both).chunk(2)  # (B, D) each
        logits = self.head(torch.cat([f_c, f_n], dim=1))  # (B, 8)
        return {"loss": F.cross_entropy(logits, y), "acc": _accuracy(logits, y)}
