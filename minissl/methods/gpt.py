"""GPT's pretext task: predict every next token from the ones before it (a causal decoder)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minissl.data.tokenizers import PAD
from minissl.methods.inputs import token_batch
from minissl.nn.transformer import TextEncoder, TokenTransformer


class GPT(nn.Module):
    """A causal Transformer language model with tied input/output embeddings.

    Radford et al., "Improving Language Understanding by Generative Pre-Training", 2018
    (GPT), and "Language Models are Unsupervised Multitask Learners", 2019 (GPT-2, whose
    pre-norm blocks we use). Position t attends only to positions <= t, so one forward pass
    over a window of L tokens gives L - 1 next-token predictions, each trained by
    cross-entropy. The output layer is the input embedding matrix (weight tying).

    Args:
        vocab_size: V (``tokenizer.vocab_size``).
        dim, depth, heads, mlp_ratio, dropout: the Transformer.
        max_len: the context length; training windows hold up to ``max_len + 1`` tokens.
        pad_id: padding id, ignored as a key and as a target (``None``: no padding).

    Attributes:
        encoder: a :class:`~minissl.nn.transformer.TextEncoder` giving (B, D) features
            (mean of the token vectors) for probes.
        transformer: the :class:`~minissl.nn.transformer.TokenTransformer`.

    Example:
        >>> gpt = GPT(vocab_size=20, dim=16, depth=1, heads=2, max_len=8)
        >>> ids = torch.randint(5, 20, (3, 9))
        >>> gpt.training_step((ids, None))["loss"].shape, gpt(ids[:, :8]).shape
        (torch.Size([]), torch.Size([3, 8, 20]))
        >>> gpt.generate(torch.tensor([5, 6]), max_new_tokens=4, seed=0).shape
        torch.Size([6])
    """
    inputs = "tokens"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, vocab_size: int, dim: int = 128, depth: int = 2, heads: int = 4,
        max_len: int = 128, mlp_ratio: float = 4.0, dropout: float = 0.1,
        pad_id: int | None = PAD,
    ) -> None:
        super().__init__()
        transformer = TokenTransformer(vocab_size, dim, depth, heads, max_len, mlp_ratio,
                                       dropout, causal=True, pad_id=pad_id)
        self.encoder = TextEncoder(transformer, pooling="mean")
        self.vocab_size, self.max_len, self.pad_id = vocab_size, max_len, pad_id

    @property
    def transformer(self) -> TokenTransformer:
        return self.encoder.transformer

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token scores: (B, T) ids -> (B, T, V) logits; row t predicts token t + 1."""
        return self.transformer.logits(self.transformer(ids))

    def loss(self, ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy (nats) of predicting ``ids[:, 1:]`` from ``ids[:, :-1]``.

        Args:
            ids: (B, L) token windows, 2 <= L <= max_len + 1.
            reduction: ``"mean"`` over predicted tokens, or ``"sum"``.
        """
        if ids.dim() != 2 or ids.shape[1] < 2:
            raise ValueError(f"ids must have shape (B, L) with L >= 2; got {tuple(ids.shape)}")
        logits = self(ids[:, :-1])  # (B, L-1, V)
        target = ids[:, 1:]
        if self.pad_id is not None:
            target = target.masked_fill(target == self.pad_id, -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                               reduction=reduction)

    def training_step(self, batch) -> dict:
        ids = token_batch(batch, self, self.vocab_size, min_len=2)  # (B, L); labels ignored
        if self.pad_id is not None and not bool((ids[:, 1:] != self.pad_id).any()):
            raise ValueError(  # else the mean over no predicted token is NaN
                f"GPT.training_step got a batch with no token to predict: every token after "
                f"the first is padding (pad_id={self.pad_id}); give it sequences of text")
        loss = self.loss(ids)
        return {"loss": loss, "perplexity": loss.detach().exp()}

    @torch.no_grad()
    def perplexity(self, ids: torch.Tensor, batch_size: int = 64) -> float:
        """exp(mean next-token cross-entropy) on held-out text.

        A 1-D stream is cut into windows of ``max_len + 1`` tokens overlapping by one, so
        that every token but the first is predicted exactly once (each with between 1 and
        ``max_len`` tokens of context). A 2-D tensor is taken as windows as it is.

        Args:
            ids: (N,) token stream or (B, L) windows.
            batch_size: windows per forward pass.

        Example:
            >>> gpt = GPT(vocab_size=20, dim=16, depth=1, heads=2, max_len=8)
            >>> 1.0 < gpt.perplexity(torch.randint(5, 20, (50,))) < 100.0
            True
        """
        if ids.dim() == 1:
            L = self.max_len + 1
            n_full = (len(ids) - 1) // self.max_len if len(ids) >= L else 0
            pieces = [ids.unfold(0, L, self.max_len)[:n_full]] if n_full else []
            tail = ids[n_full * self.max_len:]  # the rest, with one token of overlap
            if len(tail) >= 2:
                pieces.append(tail[None])
        elif ids.dim() == 2:
            pieces = [ids]
        else:
            raise ValueError(f"ids must have shape (N,) or (B, L); got {tuple(ids.shape)}")
        was_training = self.training
        self.eval()
        try:
            dev = next(self.parameters()).device
            total, count = 0.0, 0
            for windows in pieces:
                for i in range(0, len(windows), batch_size):
                    chunk = windows[i: i + batch_size].to(dev)
                    total += float(self.loss(chunk, reduction="sum"))
                    target = chunk[:, 1:]
                    count += int((target != self.pad_id).sum()) if self.pad_id is not None \
                        else target.numel()
        finally:
            self.train(was_training)
        if count == 0:
            raise ValueError("perplexity needs at least two tokens")
        return math.exp(total / count)

    @torch.no_grad()
    def generate(
        self, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
        top_k: int | None = None, generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Continue ``prompt`` by sampling one token at a time.

        Each step sees the last ``max_len`` tokens, divides the next-token logits by
        ``temperature`` (lower: safer, more repetitive; ``0`` means always the most likely
        token), keeps only the ``top_k`` most likely tokens if given, and samples.

        Args:
            prompt: (T,) or (B, T) token ids, T >= 1.
            max_new_tokens: how many tokens to add (exactly this many).
            temperature: softmax temperature, >= 0.
            top_k: sample among the k most likely tokens only (None: all).
            generator: a ``torch.Generator`` for reproducible samples (any device).
            seed: shortcut for ``generator=torch.Generator().manual_seed(seed)``.

        Returns:
            The prompt followed by the new tokens: (T + max_new_tokens,) or
            (B, T + max_new_tokens), on the prompt's device.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0; got {temperature}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(f"top_k must lie in [1, {self.vocab_size}] or be None; got {top_k}")
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        squeeze = prompt.dim() == 1
        ids = prompt[None] if squeeze else prompt  # (B, T)
        if ids.shape[1] == 0:
            raise ValueError("the prompt must hold at least one token (e.g. tokenizer.bos_id)")
        dev = next(self.parameters()).device
        ids = ids.to(dev)
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits = self(ids[:, -self.max_len:])[:, -1].float()  # (B, V)
                if temperature == 0:
                    nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    probs = logits.softmax(-1)
                    where = generator.device if generator is not None else dev
                    nxt = torch.multinomial(probs.to(where), 1, generator=generator).to(dev)
                ids = torch.cat([ids, nxt], dim=1)
        finally:
            self.train(was_training)
        out = ids.to(prompt.device)
        return out[0] if squeeze else out


def unigram_perplexity(train_ids: torch.Tensor, test_ids: torch.Tensor, vocab_size: int,
                       smoothing: float = 1.0) -> float:
    """Perplexity of the best context-free model: each token's frequency in the training ids.

    The baseline a language model must beat: it knows which tokens are common but nothing
    about order. Add-``smoothing`` (Laplace) counts keep unseen tokens possible.

    Args:
        train_ids, test_ids: 1-D token streams.
        vocab_size: V.
        smoothing: pseudo-count added to every id.

    Example:
        >>> round(unigram_perplexity(torch.tensor([0, 1]), torch.tensor([0, 1]), 2), 3)
        2.0
    """
    counts = torch.bincount(train_ids.flatten().cpu(), minlength=vocab_size).double() + smoothing
    logp = (counts / counts.sum()).log()
    return math.exp(-float(logp[test_ids.flatten().cpu()].mean()))
