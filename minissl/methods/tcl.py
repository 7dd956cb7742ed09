"""Time-contrastive learning for multivariate time series: windows close in time are positives.

The objective follows the single-view time-contrastive network of Sermanet et al., "Time-
Contrastive Networks: Self-Supervised Learning from Video", 2018, arXiv:1704.06888: frames
near each other in time should embed close together, frames far apart should not. Sermanet
et al. train it with a triplet loss (a positive inside a small window around the anchor, a
negative from farther away in the same video). Here the loss is InfoNCE instead (van den Oord
et al. 2018, arXiv:1807.03748): each anchor window must pick the window that follows it a few
steps later among every window of the batch, from the same series and from other ones.
This is *not* Hyvärinen and Morioka's TCL (2016, arXiv:1605.06336), which classifies the
index of the segment a sample came from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.evaluate import ridge_r2  # noqa: F401  (re-exported for old imports)
from minissl.methods.inputs import signal_batch


class WindowEncoder(nn.Module):
    """A small MLP on a flattened window of a multivariate series: (B, S, W) -> (B, dim).

    Args:
        channels: S, the number of sensors.
        window: W, samples per window.
        hidden: width of the two hidden layers.
        dim: the feature size.

    Example:
        >>> WindowEncoder(3, 5, hidden=8, dim=4)(torch.randn(2, 3, 5)).shape
        torch.Size([2, 4])
    """

    def __init__(self, channels: int, window: int, hidden: int = 128, dim: int = 32) -> None:
        super().__init__()
        self.channels, self.window, self.feature_dim = channels, window, dim
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * window, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.channels, self.window):
            raise ValueError(
                f"WindowEncoder expects windows of shape (B, {self.channels}, {self.window}); "
                f"got {tuple(x.shape)}"
            )
        return self.net(x)


def random_window_pairs(
    x: torch.Tensor, window: int, max_offset: int, per_sequence: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor windows and, for each, the window 1..max_offset steps later in the same series.

    Args:
        x: (B, S, T) series.
        window: W, samples per window.
        max_offset: the largest time shift between an anchor and its positive.
        per_sequence: anchors drawn from each series.
        generator: a seeded generator for the positions (None: the global one).

    Returns:
        anchors and positives, each (B * per_sequence, S, W).

    Example:
        >>> x = torch.arange(20.0).view(1, 1, 20)
        >>> a, p = random_window_pairs(x, 4, 1, 3, torch.Generator().manual_seed(0))
        >>> a.shape, bool(((p - a) == 1).all())
        (torch.Size([3, 1, 4]), True)
    """
    b, s, t = x.shape
    room = t - window - max_offset + 1
    if room < 1:
        raise ValueError(
            f"series of T={t} samples are too short for windows of {window} shifted by up to "
            f"{max_offset}; need T >= {window + max_offset}"
        )
    where = generator.device if generator is not None else x.device
    start = torch.randint(0, room, (b, per_sequence), generator=generator, device=where)
    shift = torch.randint(1, max_offset + 1, (b, per_sequence), generator=generator,
                          device=where)
    start, shift = start.to(x.device), shift.to(x.device)
    u = x.unfold(2, window, 1).permute(0, 2, 1, 3)  # (B, T - W + 1, S, W)
    rows = torch.arange(b, device=x.device)[:, None]
    anchors = u[rows, start].reshape(b * per_sequence, s, window)
    positives = u[rows, start + shift].reshape(b * per_sequence, s, window)
    return anchors, positives


class TimeContrastive(nn.Module):
    """Time-contrastive InfoNCE: an anchor window must find the window just after it.

    Sermanet et al., "Time-Contrastive Networks", 2018, arXiv:1704.06888 (temporal
    neighbours as positives), trained with InfoNCE (van den Oord et al., 2018,
    arXiv:1807.03748) and in-batch negatives; see the module docstring for the difference
    from both papers. Each training step draws ``windows_per_sequence`` anchors per series of
    the batch and their positives 1..``max_offset`` steps later, embeds both with the
    encoder and a small projection head, L2-normalises, and applies a symmetric
    cross-entropy over the cosine similarities divided by ``temperature``.

    The batch is ``(series, labels)`` with series (B, S, T) (whole trajectories; labels are
    ignored); :func:`minissl.train.fit` takes a tensor (N, S, T).

    Args:
        encoder: maps windows (B, S, window) to (B, encoder.feature_dim), e.g.
            :class:`WindowEncoder`.
        window: W, samples per window.
        max_offset: the largest shift of a positive, in samples.
        windows_per_sequence: anchors drawn from each series per step.
        proj_dim: output size of the projection head.
        temperature: tau of the InfoNCE softmax.

    Example:
        >>> enc = WindowEncoder(2, 4, hidden=8, dim=6)
        >>> model = TimeContrastive(enc, window=4, proj_dim=3)
        >>> out = model.training_step((torch.randn(3, 2, 12), None))
        >>> out["loss"].backward(); sorted(out)
        ['acc', 'loss']
    """
    inputs = "signals"  # what training_step is given (minissl.methods.inputs)

    def __init__(self, encoder: nn.Module, window: int, max_offset: int = 2,
                 windows_per_sequence: int = 4, proj_dim: int = 32,
                 temperature: float = 0.1) -> None:
        super().__init__()
        if max_offset < 1 or windows_per_sequence < 1 or temperature <= 0:
            raise ValueError(
                "max_offset and windows_per_sequence must be >= 1 and temperature > 0; got "
                f"{max_offset}, {windows_per_sequence}, {temperature}"
            )
        self.encoder = encoder
        self.window, self.max_offset = window, max_offset
        self.windows_per_sequence, self.temperature = windows_per_sequence, temperature
        d = encoder.feature_dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, proj_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, feature_dim)

    def training_step(self, batch) -> dict:
        x = signal_batch(batch, self, getattr(self.encoder, "channels", None))  # (B, S, T)
        a, p = random_window_pairs(x, self.window, self.max_offset, self.windows_per_sequence)
        za = F.normalize(self.head(self.encoder(a)), dim=1)  # (N, P)
        zp = F.normalize(self.head(self.encoder(p)), dim=1)  # (N, P)
        logits = za @ zp.T / self.temperature  # (N, N); positives on the diagonal
        labels = torch.arange(len(za), device=x.device)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        acc = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "acc": acc.detach()}
