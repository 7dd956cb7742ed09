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


class TokenTransformer(nn.Module):
    """Token ids to contextual vectors: token + learned position embeddings, then a stack.

    The shared body of BERT (``causal=False``; Devlin et al., "BERT: Pre-training of Deep
    Bidirectional Transformers for Language Understanding", 2019, arXiv:1810.04805) and GPT
    (``causal=True``; Radford et al., "Improving Language Understanding by Generative
    Pre-Training", 2018). :meth:`logits` reads the vocabulary scores off the output with the
    *same* matrix as the input embedding (weight tying; Press and Wolf, "Using the Output
    Embedding to Improve Language Models", 2017, arXiv:1608.05859), plus a bias.

    Args:
        vocab_size: V, the number of token ids.
        dim: token width D.
        depth, heads, mlp_ratio, dropout: the :class:`TransformerEncoder`.
        max_len: the longest sequence (number of learned positions).
        causal: forbid attention to later positions.
        pad_id: id of the padding token; when a batch contains it, padded positions are
            masked out as keys (``None``: never mask).

    Shapes:
        ``forward(ids)``: ids (B, T) integer with T <= max_len. Returns (B, T, D).
        ``logits(h)``: h (..., D). Returns (..., V).

    Example:
        >>> net = TokenTransformer(vocab_size=11, dim=8, depth=1, heads=2, max_len=6)
        >>> h = net(torch.tensor([[5, 6, 7, 0]]))
        >>> h.shape, net.logits(h).shape
        (torch.Size([1, 4, 8]), torch.Size([1, 4, 11]))
    """

    def __init__(
        self, vocab_size: int, dim: int = 128, depth: int = 2, heads: int = 4,
        max_len: int = 128, mlp_ratio: float = 4.0, dropout: float = 0.1, causal: bool = False,
        pad_id: int | None = 0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.dim, self.max_len = vocab_size, dim, max_len
        self.causal, self.pad_id = causal, pad_id
        self.tok_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, dim))
        self.drop = nn.Dropout(dropout)
        self.stack = TransformerEncoder(dim, depth, heads, mlp_ratio, dropout, causal)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        # Positions start at N(0, 0.02^2) as in GPT-2 and BERT. Token vectors start at
        # N(0, 1/D): the tied output layer then gives O(1) initial logits at any width D
        # (0.02 suits D = 768; at the widths of this book it makes logits, and so the first
        # gradients, ten times too small, and training crawls).
        nn.init.normal_(self.tok_embed.weight, std=dim ** -0.5)
        nn.init.normal_(self.pos_embed, std=0.02)

    def padding_mask(self, ids: torch.Tensor) -> torch.Tensor | None:
        """(B, T) bool, True at padding; None when the batch has none (faster attention)."""
        if self.pad_id is None:
            return None
        pad = ids == self.pad_id
        return pad if bool(pad.any()) else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        check_shape(ids, ("B", "T"), "token ids")
        if ids.shape[1] > self.max_len:
            raise ValueError(
                f"sequences of {ids.shape[1]} tokens are longer than max_len={self.max_len}; "
                "cut them (e.g. ids[:, -max_len:]) or build the model with a larger max_len"
            )
        if ids.dtype.is_floating_point:  # evaluate.extract_features hands inputs over as float
            ids = ids.round().long()
        x = self.tok_embed(ids) + self.pos_embed[:, : ids.shape[1]]  # (B, T, D)
        return self.stack(self.drop(x), key_padding_mask=self.padding_mask(ids))  # (B, T, D)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Vocabulary scores (..., V) of vectors (..., D), through the tied input embedding."""
        return F.linear(h, self.tok_embed.weight, self.out_bias)


class TextEncoder(nn.Module):
    """A :class:`TokenTransformer` as an encoder of whole texts: (B, T) ids to (B, D).

    The output is the mean of the token vectors over the non-padding positions (Reimers and
    Gurevych, "Sentence-BERT", 2019, arXiv:1908.10084, found mean pooling the best of the
    simple choices), or the vector of the last non-padding token (``pooling="last"``, the one
    position that has seen the whole text under a causal mask). Ids may arrive as floats
    (``minissl.evaluate`` casts inputs to float32, which holds ids below 2**24 exactly).

    Args:
        transformer: the :class:`TokenTransformer` to pool.
        pooling: ``"mean"`` or ``"last"``.

    Example:
        >>> net = TokenTransformer(vocab_size=11, dim=8, depth=1, heads=2, max_len=6)
        >>> enc = TextEncoder(net)
        >>> enc(torch.tensor([[5, 6, 0, 0], [7, 8, 9, 10]])).shape, enc.feature_dim
        (torch.Size([2, 8]), 8)
    """

    POOLINGS = ("mean", "last")

    def __init__(self, transformer: TokenTransformer, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {list(self.POOLINGS)}")
        self.transformer, self.pooling = transformer, pooling
        self.feature_dim = transformer.dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.round().long() if ids.dtype.is_floating_point else ids
        h = self.transformer(ids)  # (B, T, D)
        pad_id = self.transformer.pad_id
        keep = (ids != pad_id) if pad_id is not None else torch.ones_like(ids, dtype=torch.bool)
        if self.pooling == "last":
            last = keep.long().cumsum(1).argmax(1)  # (B,) index of the last kept token
            return h[torch.arange(len(h), device=h.device), last]  # (B, D)
        w = keep.to(h.dtype)[..., None]  # (B, T, 1)
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, D)
