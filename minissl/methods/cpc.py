"""Contrastive Predictive Coding (van den Oord, Li & Vinyals, 2018) for one-dimensional signals."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.inputs import signal_batch

POOLS = ("context", "latent", "both")


class CPCEncoder(nn.Module):
    """CPC's two networks: a strided convolutional encoder and a GRU context network.

    ``latents(x)`` is the encoder ``g_enc``: (B, C, T) -> z (B, L, width), one latent vector
    per ``prod(strides)`` samples. ``contexts(z)`` is the autoregressive model ``g_ar``, a GRU
    that summarises z_1..z_t into c_t (B, L, context_dim). ``forward(x)`` is what
    :mod:`minissl.evaluate` sees: the time average of c (``pool="context"``), of z
    (``"latent"``) or both concatenated (``"both"``), a (B, feature_dim) vector per signal.

    The paper's audio encoder has five layers with strides (5, 4, 2, 2, 2), kernels
    (10, 8, 4, 4, 4) and 512 channels, and a 256-unit GRU (Sec. 3.1); the defaults here are a
    CPU-sized version (three layers, kernel = 2 x stride, 64 channels, a 64-unit GRU). Each
    convolution is followed by a one-group GroupNorm and a ReLU.

    Args:
        in_channels: C, channels of the signal.
        width: channels of the convolutions and size of each latent z_t.
        context_dim: size of the GRU state c_t.
        strides: the stride of each convolution; the signal length T must be a multiple of
            their product.
        kernel_sizes: the kernel of each convolution (default: twice its stride); each at
            least its stride and of the same parity, so a layer divides the length by its
            stride exactly.
        pool: what ``forward`` averages over time: ``"context"``, ``"latent"`` or ``"both"``.

    Example:
        >>> enc = CPCEncoder(width=8, context_dim=6, strides=(4, 2))
        >>> x = torch.randn(3, 1, 64)
        >>> enc.latents(x).shape, enc(x).shape, enc.feature_dim
        (torch.Size([3, 8, 8]), torch.Size([3, 6]), 6)
    """

    def __init__(self, in_channels: int = 1, width: int = 64, context_dim: int = 64,
                 strides: Sequence[int] = (4, 4, 4), pool: str = "context",
                 kernel_sizes: Sequence[int] | None = None) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; use one of {list(POOLS)}")
        kernels = [2 * s for s in strides] if kernel_sizes is None else list(kernel_sizes)
        if len(kernels) != len(strides) or any(
                (k - s) % 2 or k < s for k, s in zip(kernels, strides)):
            raise ValueError(
                f"kernel_sizes {kernels} must give one kernel per stride {list(strides)}, "
                "at least as large as its stride and of the same parity"
            )
        layers: list[nn.Module] = []
        ch = in_channels
        for s, k in zip(strides, kernels):
            # padding (k - s) / 2 makes the output length exactly T / s
            layers += [nn.Conv1d(ch, width, kernel_size=k, stride=s, padding=(k - s) // 2),
                       nn.GroupNorm(1, width), nn.ReLU()]
            ch = width
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(width, context_dim, batch_first=True)
        self.in_channels, self.width, self.context_dim = in_channels, width, context_dim
        self.hop = 1
        for s in strides:
            self.hop *= s
        self.pool = pool
        self.feature_dim = {"context": context_dim, "latent": width,
                            "both": width + context_dim}[pool]

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """z = g_enc(x): (B, C, T) -> (B, L, width) with L = T / hop."""
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"CPCEncoder expects signals of shape (B, {self.in_channels}, T); "
                f"got {tuple(x.shape)}"
            )
        if x.shape[-1] % self.hop:
            raise ValueError(
                f"the signal length T={x.shape[-1]} must be a multiple of the encoder's hop "
                f"{self.hop} (the product of the strides); crop or pad the signals"
            )
        return self.conv(x).transpose(1, 2)  # (B, L, width)

    def contexts(self, z: torch.Tensor) -> torch.Tensor:
        """c = g_ar(z): (B, L, width) -> (B, L, context_dim); c_t sees z_1..z_t only."""
        return self.gru(z)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.latents(x)  # (B, L, width)
        if self.pool == "latent":
            return z.mean(1)
        c = self.contexts(z)  # (B, L, context_dim)
        if self.pool == "context":
            return c.mean(1)
        return torch.cat([z.mean(1), c.mean(1)], dim=1)


def info_nce_step(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE for one prediction step: each prediction against every target of the batch.

    CPC's loss (eq. 4 of the paper) with the bilinear score ``f_k = exp(z^T W_k c)``: the
    prediction ``pred[b, t] = W_k c_t`` of sequence ``b`` must pick its own future latent
    ``target[b, t] = z_{t+k}`` among all ``B * L`` latents of the batch; the others (other
    time steps of the same sequence and every step of the other sequences) are the negatives.

    Args:
        pred: (B, L, D) predictions.
        target: (B, L, D) the latents they should match.

    Returns:
        The mean cross-entropy over the B * L predictions (a scalar) and the accuracy of
        picking the right one (a 0-d tensor in [0, 1]).

    Example:
        >>> z = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(0))
        >>> loss, acc = info_nce_step(10 * z, z)
        >>> float(acc), bool(loss < 0.1)
        (1.0, True)
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"pred and target must both be (B, L, D); got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    p = pred.reshape(-1, pred.shape[-1])  # (N, D), N = B * L
    t = target.reshape(-1, target.shape[-1])  # (N, D)
    logits = p @ t.T  # (N, N): row i scores prediction i against every latent
    labels = torch.arange(len(p), device=p.device)  # the positive is on the diagonal
    loss = F.cross_entropy(logits.float(), labels)
    acc = (logits.argmax(1) == labels).float().mean()
    return loss, acc


def cpc_loss(c: torch.Tensor, z: torch.Tensor, predictors: Sequence[nn.Module]
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """CPC's loss: the mean over steps k = 1..K of :func:`info_nce_step` of W_k c_t vs z_{t+k}.

    Args:
        c: (B, L, context_dim) context vectors.
        z: (B, L, D) latents.
        predictors: K modules; the k-th (1-based) maps c_t to a prediction of z_{t+k}.

    Returns:
        The mean loss over the K steps and the mean accuracy.

    Example:
        >>> heads = [nn.Linear(4, 3, bias=False) for _ in range(2)]
        >>> loss, acc = cpc_loss(torch.randn(2, 6, 4), torch.randn(2, 6, 3), heads)
        >>> loss.shape, 0 <= float(acc) <= 1
        (torch.Size([]), True)
    """
    L, K = z.shape[1], len(predictors)
    if L <= K:
        raise ValueError(
            f"the signals give L={L} latent steps, but predicting K={K} steps ahead needs "
            "L > K; use longer signals, smaller strides or fewer prediction steps"
        )
    losses, accs = [], []
    for k, head in enumerate(predictors, start=1):
        loss, acc = info_nce_step(head(c[:, :-k]), z[:, k:])
        losses.append(loss)
        accs.append(acc)
    return torch.stack(losses).mean(), torch.stack(accs).mean()


class CPC(nn.Module):
    """Contrastive Predictive Coding: predict future latents from a context, contrastively.

    van den Oord, Li and Vinyals, "Representation Learning with Contrastive Predictive
    Coding", 2018, arXiv:1807.03748. An encoder maps the signal to latents z_t, a GRU
    summarises them into contexts c_t, and for each step k = 1..K a linear map W_k predicts
    z_{t+k} from c_t; the InfoNCE loss (:func:`cpc_loss`) asks each prediction to pick its true
    future among the latents at the other time steps and of the other sequences of the batch.
    The paper predicts 12 steps ahead on speech; the default here is 6.

    The batch is ``(signals, labels)`` with signals (B, C, T); labels are ignored. A data set
    for :func:`minissl.train.fit` is a :class:`minissl.data.signals.SignalDataset`, a tensor
    (N, C, T) or a tuple ``(signals, labels)``.

    Args:
        encoder: a :class:`CPCEncoder` (built from the next arguments when None).
        prediction_steps: K.
        in_channels, width, context_dim, strides, pool, kernel_sizes: passed to
            :class:`CPCEncoder`.

    Example:
        >>> model = CPC(prediction_steps=2, width=8, context_dim=8, strides=(4, 2))
        >>> out = model.training_step((torch.randn(3, 1, 64), None))
        >>> out["loss"].backward(); sorted(out)
        ['acc', 'loss']
    """
    inputs = "signals"  # what training_step is given (minissl.methods.inputs)

    def __init__(self, encoder: CPCEncoder | None = None, prediction_steps: int = 6,
                 in_channels: int = 1, width: int = 64, context_dim: int = 64,
                 strides: Sequence[int] = (4, 4, 4), pool: str = "context",
                 kernel_sizes: Sequence[int] | None = None) -> None:
        super().__init__()
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps must be >= 1; got {prediction_steps}")
        self.encoder = encoder if encoder is not None else CPCEncoder(
            in_channels, width, context_dim, strides, pool, kernel_sizes)
        self.predictors = nn.ModuleList(
            nn.Linear(self.encoder.context_dim, self.encoder.width, bias=False)
            for _ in range(prediction_steps)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, feature_dim)

    def training_step(self, batch) -> dict:
        x = signal_batch(batch, self, getattr(self.encoder, "in_channels", None))  # (B, C, T)
        z = self.encoder.latents(x)  # (B, L, width)
        c = self.encoder.contexts(z)  # (B, L, context_dim)
        loss, acc = cpc_loss(c, z, self.predictors)
        return {"loss": loss, "acc": acc.detach()}
