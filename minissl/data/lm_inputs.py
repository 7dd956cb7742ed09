"""Language-model inputs from token ids: BERT's masking and fixed-length windows."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import torch


def mlm_mask(
    tokens: torch.Tensor, mask_id: int, vocab_size: int, mask_prob: float = 0.15,
    special_ids: Iterable[int] = (), generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: hide ``mask_prob`` of the tokens, keep the originals as labels.

    Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding", 2019, arXiv:1810.04805, Sec. 3.1. In every sequence,
    ``round(mask_prob * n)`` of its ``n`` non-special positions are chosen (at least one when
    ``n > 0``), uniformly without replacement. Of the chosen positions 80% become
    ``mask_id``, 10% a random non-special token, and 10% stay as they are (so the model must
    predict every input, not only the masked ones). Special tokens (padding, BOS, ...) are
    never chosen and never drawn as random replacements.

    Args:
        tokens: (B, T) or (T,) integer token ids.
        mask_id: the id of ``<mask>``.
        vocab_size: V; random replacements are drawn from ``range(V)`` minus ``special_ids``.
        mask_prob: fraction of each sequence's non-special positions that is chosen.
        special_ids: ids that are never chosen (e.g. ``tokenizer.special_ids.values()``).
        generator: a ``torch.Generator`` for reproducible draws (any device).

    Returns:
        ``(inputs, labels)``, both shaped like ``tokens``: the corrupted ids, and the
        original id at every chosen position with -100 (ignored by ``F.cross_entropy``)
        everywhere else.

    Example:
        >>> x = torch.arange(5, 25).reshape(2, 10)
        >>> inputs, labels = mlm_mask(x, mask_id=2, vocab_size=30, mask_prob=0.2,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> (labels != -100).sum(1).tolist()  # 20% of 10 positions in each row
        [2, 2]
        >>> bool(((labels == -100) | (labels == x)).all())
        True
    """
    from minissl.utils import draw

    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids; got dtype {tokens.dtype}")
    if tokens.dim() not in (1, 2):
        raise ValueError(f"tokens must have shape (B, T) or (T,); got {tuple(tokens.shape)}")
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must lie in [0, 1]; got {mask_prob}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id={mask_id} is not an id of a vocabulary of size {vocab_size}")
    squeeze = tokens.dim() == 1
    x = tokens[None] if squeeze else tokens  # (B, T)
    dev = x.device
    specials = torch.tensor(sorted({int(i) for i in special_ids}), dtype=x.dtype, device=dev)
    eligible = ~torch.isin(x, specials)  # (B, T)
    # Exactly k_b positions per row: the k_b smallest of uniform noise, specials pushed last.
    noise = draw(torch.rand, x.shape, generator, dev).masked_fill(~eligible, 2.0)  # (B, T)
    rank = noise.argsort(dim=1).argsort(dim=1)  # (B, T) rank of each position's noise
    n = eligible.sum(dim=1, keepdim=True)  # (B, 1)
    k = (n * mask_prob).round().long()
    if mask_prob > 0:
        k = torch.where(n > 0, k.clamp(min=1), k)
    chosen = rank < k  # (B, T)
    action = draw(torch.rand, x.shape, generator, dev)  # (B, T): 80% mask, 10% random
    allowed = torch.tensor([i for i in range(vocab_size) if i not in set(specials.tolist())],
                           dtype=x.dtype, device=dev)
    if len(allowed) == 0:
        raise ValueError("every id of the vocabulary is special: nothing to draw replacements from")
    pick = draw(functools.partial(torch.randint, len(allowed)), x.shape, generator, dev)
    random_tokens = allowed[pick]  # (B, T)
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(x, mask_id), x)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_tokens, inputs)
    labels = torch.where(chosen, x, torch.full_like(x, -100))
    return (inputs[0], labels[0]) if squeeze else (inputs, labels)


def token_windows(ids: Sequence[int] | torch.Tensor, length: int,
                  stride: int | None = None) -> torch.Tensor:
    """Cut a token stream into windows of ``length`` ids (the last partial one is dropped).

    Args:
        ids: a 1-D sequence of token ids (list or tensor).
        length: ids per window.
        stride: step between window starts (default ``length``: no overlap).

    Returns:
        (N, length) int64 tensor.

    Example:
        >>> token_windows(list(range(10)), 4).tolist()
        [[0, 1, 2, 3], [4, 5, 6, 7]]
        >>> token_windows(list(range(10)), 4, stride=3).shape
        torch.Size([3, 4])
    """
    t = torch.as_tensor(ids, dtype=torch.long).flatten()
    stride = length if stride is None else stride
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be positive; got {length} and {stride}")
    if len(t) < length:
        raise ValueError(f"the stream has {len(t)} ids, fewer than one window of {length}")
    return t.unfold(0, length, stride).contiguous()
