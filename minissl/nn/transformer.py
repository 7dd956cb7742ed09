"""Pre-norm Transformer blocks on token sequences (B, T, D), shared by ViT, BERT and GPT.

Vaswani et al., "Attention Is All You Need", 2017, arXiv:1706.03762. We put LayerNorm
*before* attention and the MLP (pre-norm, as in GPT-2 and ViT), which trains stably without
learning-rate warm-up tricks at the small scales of this book.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.utils import check_shape


def attention_mask(
    key_padding_mask: torch.Tensor | None, causal: bool, T: int, device: torch.device
) -> torch.Tensor | None:
    """The boolean ``attn_mask`` for ``F.scaled_dot_product_attention`` (True = may attend).

    Args:
        key_padding_mask: (B, T) bool, True where the token is padding (ignored as a key),
            or None.
        causal: also forbid attending to later positions.
        T: sequence length.
        device: where to build the mask.

    Returns:
        None when there is nothing to mask (or only the causal part, which SDPA does itself
        with ``is_causal``), else a (B, 1, T, T) bool mask.

    Example:
        >>> m = attention_mask(torch.tensor([[False, True]]), causal=False, T=2, device="cpu")
        >>> m[0, 0].tolist()  # key 1 is padding: only the padded query 1 sees itself
        [[True, False], [True, True]]
    """
    if key_padding_mask is None:
        return None
    allowed = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, T): padded keys are hidden
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=device).tril()
    # A padded query may see no key at all (e.g. left padding under a causal mask), which
    # would give a softmax over nothing = NaN. Letting every token see itself avoids that;
    # it changes only the (meaningless) outputs at padded positions.
    return allowed | torch.eye(T, dtype=torch.bool, device=device)  # (B, 1, T, T)


class TransformerBlock(nn.Module):
    """One pre-norm Transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Vaswani et al., "Attention Is All You Need", 2017, arXiv:1706.03762.

    Args:
        dim: token width D (divisible by ``heads``).
        heads: number of attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of ``dim``.
        dropout: dropout on attention weights and on both residual branches.
        causal: if True, position t attends only to positions <= t (GPT-style).

    Shapes:
        ``forward(x, key_padding_mask=None)``: x (B, T, D); key_padding_mask (B, T) bool,
        True at padding tokens, which then serve as no one's key. Returns (B, T, D).

    Example:
        >>> block = TransformerBlock(dim=8, heads=2, causal=True)
        >>> block(torch.rand(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.dim, self.heads, self.causal, self.dropout = dim, heads, causal, dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )
        self.resid_drop = nn.Dropout(dropout)

    def attention(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Multi-head self-attention of already-normalised tokens (B, T, D) -> (B, T, D)."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # each (B, heads, T, D/heads)
        mask = attention_mask(key_padding_mask, self.causal, T, x.device)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            # SDPA refuses is_causal together with attn_mask; then the mask already has it.
            is_causal=self.causal and mask is None,
        )  # (B, heads, T, D/heads)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))  # (B, T, D)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_shape(x, ("B", "T", self.dim), "TransformerBlock input")
        x = x + self.resid_drop(self.attention(self.norm1(x), key_padding_mask))  # (B, T, D)
        return x + self.mlp(self.norm2(x))  # (B, T, D)


class TransformerEncoder(nn.Module):
    """A stack of ``depth`` :class:`TransformerBlock` and a final LayerNorm.

    Vaswani et al., "Attention Is All You Need", 2017, arXiv:1706.03762. The same stack is
    a ViT encoder, a BERT encoder (``causal=False`` with a padding mask) or a GPT decoder
    (``causal=True``); the final LayerNorm is what pre-norm stacks need, since the residual
    stream itself is never normalised.

    Args:
        dim: token width D.
        depth: number of blocks.
        heads: attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        dropout: dropout inside every block.
        causal: if True, no position attends to a later one.
        final_norm: apply LayerNorm to the output (turn off to add your own).

    Shapes:
        ``forward(x, key_padding_mask=None)``: x (B, T, D), key_padding_mask (B, T) bool
        with True at padding. Returns (B, T, D).

    Example:
        >>> enc = TransformerEncoder(dim=8, depth=2, heads=2)
        >>> pad = torch.tensor([[False, False, True]])
        >>> enc(torch.rand(1, 3, 8), key_padding_mask=pad).shape
        torch.Size([1, 3, 8])
    """

    def __init__(
        self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
        causal: bool = False, final_norm: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.causal = dim, causal
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mlp_ratio, dropout, causal) for _ in range(depth)
        )
        self.norm: nn.Module = nn.LayerNorm(dim) if final_norm else nn.Identity()
        self.apply(_init_weights)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_shape(x, ("B", "T", self.dim), "TransformerEncoder input")
        if key_padding_mask is not None:
            check_shape(key_padding_mask, tuple(x.shape[:2]), "key_padding_mask")
            key_padding_mask = key_padding_mask.bool()
        for block in self.blocks:
            x = block(x, key_padding_mask)  # (B, T, D)
        return self.norm(x)


def _init_weights(m: nn.Module) -> None:
    # Xavier-uniform linears with zero bias, as in the ViT and MAE reference code; PyTorch's
    # default (Kaiming-uniform with fan-in) gives the wide qkv layer larger initial logits.
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
