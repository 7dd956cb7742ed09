"""BERT's masked-language-model pretext task: hide 15% of the tokens and predict them back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.data.lm_inputs import mlm_mask
from minissl.data.tokenizers import MASK, PAD, SPECIALS
from minissl.methods.inputs import token_batch
from minissl.nn.transformer import TextEncoder, TokenTransformer


class MLMHead(nn.Module):
    """BERT's prediction head: dense + GELU + LayerNorm, then the tied vocabulary projection.

    Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding", 2019, arXiv:1810.04805 (the transform layer of the released code). The
    output projection is ``transformer.logits``, i.e. the input embedding matrix itself.

    Args:
        transformer: the :class:`~minissl.nn.transformer.TokenTransformer` whose embedding
            is shared.

    Shapes:
        ``forward(h)``: (..., D) -> (..., V).
    """

    def __init__(self, transformer: TokenTransformer) -> None:
        super().__init__()
        dim = transformer.dim
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self._tied = [transformer]  # a plain list: the embedding stays owned by the transformer

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self._tied[0].logits(self.transform(h))


class BERT(nn.Module):
    """A bidirectional Transformer trained to fill in masked tokens.

    Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding", 2019, arXiv:1810.04805. Each batch of token ids is corrupted by
    :func:`minissl.data.mlm_mask` (15% chosen; of those 80% ``<mask>``, 10% random, 10% kept)
    and the model is trained with cross-entropy on the chosen positions only. The next-
    sentence task of the paper is left out, as RoBERTa (Liu et al., 2019, arXiv:1907.11692)
    found it does not help; sequences are plain windows of the token stream.

    Args:
        vocab_size: V (``tokenizer.vocab_size``).
        dim, depth, heads, mlp_ratio, dropout: the Transformer.
        max_len: the longest sequence.
        mask_prob: fraction of each sequence's tokens that is chosen for prediction.
        mask_id: the ``<mask>`` id; ``pad_id``: the padding id.
        special_ids: ids never chosen nor drawn as replacements (default: the five
            special tokens of :mod:`minissl.data.tokenizers`).

    Attributes:
        encoder: a :class:`~minissl.nn.transformer.TextEncoder`: (B, T) ids -> (B, D) mean of
            the token vectors, for probes, retrieval and fine-tuning.
        transformer: the :class:`~minissl.nn.transformer.TokenTransformer` itself.
        generator: set a ``torch.Generator`` to make the masks reproducible.

    Example:
        >>> bert = BERT(vocab_size=30, dim=16, depth=1, heads=2, max_len=12)
        >>> ids = torch.randint(5, 30, (4, 12))
        >>> out = bert.training_step((ids, None))
        >>> out["loss"].shape, bert(ids).shape, bert.encoder(ids).shape
        (torch.Size([]), torch.Size([4, 12, 30]), torch.Size([4, 16]))
    """
    inputs = "tokens"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, vocab_size: int, dim: int = 128, depth: int = 2, heads: int = 4,
        max_len: int = 128, mlp_ratio: float = 4.0, dropout: float = 0.1,
        mask_prob: float = 0.15, mask_id: int = MASK, pad_id: int = PAD,
        special_ids: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        transformer = TokenTransformer(vocab_size, dim, depth, heads, max_len, mlp_ratio,
                                       dropout, causal=False, pad_id=pad_id)
        self.encoder = TextEncoder(transformer, pooling="mean")
        self.head = MLMHead(transformer)
        self.vocab_size, self.mask_prob, self.mask_id = vocab_size, mask_prob, mask_id
        self.special_ids = tuple(range(len(SPECIALS))) if special_ids is None else special_ids
        self.generator: torch.Generator | None = None

    @property
    def transformer(self) -> TokenTransformer:
        return self.encoder.transformer

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """MLM scores at every position: (B, T) ids -> (B, T, V) logits."""
        return self.head(self.transformer(ids))

    def training_step(self, batch) -> dict:
        ids = token_batch(batch, self, self.vocab_size)  # (B, T) ids in [0, V); labels ignored
        inputs, labels = mlm_mask(ids, self.mask_id, self.vocab_size, self.mask_prob,
                                  self.special_ids, self.generator)  # (B, T), (B, T)
        chosen = labels != -100  # (B, T)
        if not bool(chosen.any()):  # else the mean over no positions is NaN
            raise ValueError(
                "BERT.training_step got a batch with no token to predict: every token is a "
                f"special one (ids {list(self.special_ids)}: padding, <mask>, ...); give it "
                "sequences of text")
        h = self.transformer(inputs)[chosen]  # (M, D): only the chosen positions are scored
        logits = self.head(h)  # (M, V)
        target = labels[chosen]  # (M,)
        loss = F.cross_entropy(logits, target)
        accuracy = (logits.detach().argmax(-1) == target).float().mean()
        return {"loss": loss, "mlm_accuracy": accuracy}

    @torch.no_grad()
    def fill_mask(self, ids: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's ``k`` best guesses at every ``<mask>`` position of ``ids``.

        Args:
            ids: (B, T) or (T,) ids containing ``mask_id`` somewhere (any device).
            k: guesses per masked position.

        Returns:
            ``(token_ids, probs)``: (M, k) long and (M, k) float for the M masked
            positions, in row-major order of ``ids``, on the device of ``ids``.

        Example:
            >>> bert = BERT(vocab_size=30, dim=16, depth=1, heads=2, max_len=8)
            >>> guesses, probs = bert.fill_mask(torch.tensor([7, 8, 2, 9]), k=3)
            >>> guesses.shape, bool(probs[0, 0] >= probs[0, 1])
            (torch.Size([1, 3]), True)
        """
        was_training = self.training
        self.eval()
        try:
            where = ids.device
            ids = ids[None] if ids.dim() == 1 else ids
            ids = ids.to(next(self.parameters()).device)
            probs = self(ids)[ids == self.mask_id].float().softmax(-1)  # (M, V)
            top = probs.topk(k, dim=-1)
        finally:
            self.train(was_training)
        return top.indices.to(where), top.values.to(where)
