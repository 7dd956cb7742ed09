"""A tiny Vision Transformer whose encoder can also run on a subset of patches (for MAE).

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", 2020, arXiv:2010.11929. The ``keep_idx`` path follows He et al., "Masked
Autoencoders Are Scalable Vision Learners", 2021, arXiv:2111.06377.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.nn.backbones import check_images
from minissl.nn.transformer import TransformerEncoder
from minissl.utils import check_shape


def sincos_pos_embed(grid_size: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings for a ``grid_size`` x ``grid_size`` grid.

    Half of the channels encode the row, half the column, each with the 1-D sin/cos code of
    Vaswani et al. (2017, arXiv:1706.03762), as in MAE (arXiv:2111.06377).

    Args:
        grid_size: patches per side.
        dim: embedding width (divisible by 4).

    Returns:
        (grid_size**2, dim), row-major over the grid (the order of :meth:`TinyViT.patchify`).

    Example:
        >>> sincos_pos_embed(2, 8).shape
        torch.Size([4, 8])
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embeddings need dim divisible by 4; got {dim}")
    freqs = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    pos = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")  # (G, G) each

    def code(p: torch.Tensor) -> torch.Tensor:
        angles = p.reshape(-1, 1) * freqs  # (G*G, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (G*G, dim/2)

    return torch.cat([code(rows), code(cols)], dim=1).float()  # (G*G, dim)


class TinyViT(nn.Module):
    """A small ViT backbone: patch embedding, position embedding, a CLS token, pre-norm blocks.

    Dosovitskiy et al., "An Image is Worth 16x16 Words", 2020, arXiv:2010.11929.

    The image is cut into ``L = (image_size / patch_size)**2`` patches, each embedded by a
    strided convolution (the same as a linear map of the flattened patch). Position
    embeddings are added to the patch tokens (not to the CLS token, which is learned and
    needs no position), the CLS token is prepended, and a :class:`TransformerEncoder`
    (ending in LayerNorm) processes the ``1 + L`` tokens. ``forward`` returns the CLS token.

    For a masked autoencoder use :meth:`forward_tokens` with ``keep_idx``: position
    embeddings are added to *all* patches first and only then are the hidden ones dropped,
    so every visible token still knows where it came from.

    Args:
        image_size: side of the square input images (divisible by ``patch_size``).
        patch_size: side P of the square patches.
        in_channels: C of the input images.
        dim: token width D (``feature_dim``).
        depth: number of Transformer blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
        pos_embed: ``"learned"`` (as in ViT) or ``"sincos"`` (fixed, as in MAE).

    Shapes:
        ``forward``: (B, C, image_size, image_size) -> (B, dim).

    Example:
        >>> vit = TinyViT(image_size=8, patch_size=4, in_channels=1, dim=16, depth=1, heads=2)
        >>> x = torch.rand(2, 1, 8, 8)
        >>> vit(x).shape, vit.patchify(x).shape, vit.num_patches
        (torch.Size([2, 16]), torch.Size([2, 4, 16]), 4)
        >>> bool(torch.equal(vit.unpatchify(vit.patchify(x)), x))
        True
    """

    def __init__(
        self, image_size: int = 32, patch_size: int = 4, in_channels: int = 3, dim: int = 128,
        depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0,
        pos_embed: str = "learned",
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} must be divisible by patch_size={patch_size}"
            )
        if pos_embed not in ("learned", "sincos"):
            raise ValueError(f"unknown pos_embed {pos_embed!r}; use one of ['learned', 'sincos']")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.patch_dim = patch_size * patch_size * in_channels
        self.feature_dim = self.dim = dim
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            self.register_buffer("pos_embed", sincos_pos_embed(self.grid_size, dim)[None])
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        # Initialise the patch projection like a linear layer (MAE does the same).
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        self.encoder = TransformerEncoder(dim, depth, heads, mlp_ratio, dropout)

    def _check(self, x: torch.Tensor) -> None:
        check_images(x, self.in_channels, "TinyViT")
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"TinyViT was built for {self.image_size}x{self.image_size} images "
                f"(image_size={self.image_size}) but got shape {tuple(x.shape)}; build it "
                f"with image_size={x.shape[-1]} or resize the images"
            )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Cut images (B, C, H, W) into flattened patches (B, L, P*P*C), row-major.

        Each patch is flattened in (row, column, channel) order, as in MAE.
        """
        self._check(x)
        B, C, P, G = x.shape[0], self.in_channels, self.patch_size, self.grid_size
        x = x.reshape(B, C, G, P, G, P)  # (B, C, gh, ph, gw, pw)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(B, G * G, P * P * C)  # (B, L, P*P*C)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify`: (B, L, P*P*C) -> (B, C, H, W)."""
        check_shape(patches, ("B", self.num_patches, self.patch_dim), "patches")
        B, C, P, G = patches.shape[0], self.in_channels, self.patch_size, self.grid_size
        x = patches.reshape(B, G, G, P, P, C)  # (B, gh, gw, ph, pw, C)
        return x.permute(0, 5, 1, 3, 2, 4).reshape(B, C, G * P, G * P)  # (B, C, H, W)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with position embeddings, (B, L, dim), from images or patches.

        Args:
            x: images (B, C, H, W) or patchified images (B, L, P*P*C).
        """
        if x.dim() == 3:
            check_shape(x, ("B", self.num_patches, self.patch_dim), "TinyViT patch tokens")
            # The conv kernel (D, C, P, P) is a linear map of a patch flattened as (P, P, C).
            w = self.patch_embed.weight.permute(0, 2, 3, 1).reshape(self.dim, -1)  # (D, P*P*C)
            tokens = F.linear(x, w, self.patch_embed.bias)  # (B, L, D)
        else:
            self._check(x)
            tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, L, D)
        return tokens + self.pos_embed  # (B, L, D)

    def forward_tokens(
        self, x: torch.Tensor, keep_idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encode all patches, or only the visible ones, and return every output token.

        Positions are added before the hidden patches are dropped, so the encoder sees each
        kept patch with its own position; dropped patches have no influence at all on the
        output (there is no mask token in the encoder, as in MAE).

        Args:
            x: images (B, C, H, W) or patchified images (B, L, P*P*C).
            keep_idx: (B, K) long indices into the L patches to keep, or None for all.

        Returns:
            (B, 1 + K, dim): the CLS token, then the kept patches in ``keep_idx`` order
            (K = L when ``keep_idx`` is None), after the final LayerNorm.
        """
        tokens = self.embed(x)  # (B, L, D)
        if keep_idx is not None:
            check_shape(keep_idx, (tokens.shape[0], "K"), "keep_idx")
            idx = keep_idx.long()[..., None].expand(-1, -1, self.dim)  # (B, K, D)
            tokens = tokens.gather(1, idx)  # (B, K, D)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D)
        return self.encoder(torch.cat([cls, tokens], dim=1))  # (B, 1 + K, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(x)[:, 0]  # (B, dim): the CLS token
