"""Judging generated images in the feature space of an encoder trained by minissl.

The usual yardsticks of image generators, the Fréchet Inception Distance (Heusel et al.,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", 2017,
arXiv:1706.08500) and precision/recall of samples (Kynkäänniemi et al., "Improved Precision
and Recall Metric for Assessing Generative Models", 2019, arXiv:1904.06991), measure
distances between real and generated images *in the features of a trained network*.
The published numbers use Inception-v3 features trained on ImageNet; those weights are not
available offline, so here the feature network is **an encoder trained by minissl itself**
(a supervised classifier or an SSL encoder trained on the same data set). The formulas are
the papers'; the numbers are comparable only between runs that use the same encoder, never
with published FIDs.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> a, b = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g)
    >>> frechet_distance(a, b) < frechet_distance(a, b + 1.0)
    True
"""

from __future__ import annotations

import torch
from torch import nn


def _check(features: torch.Tensor, name: str) -> torch.Tensor:
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"{name} must be (N, D) features with N >= 2; got {tuple(features.shape)}")
    return features.detach().to("cpu", torch.float64)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features.

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al., 2017,
    arXiv:1706.08500), computed in float64; the trace of the matrix square root is taken as
    ``sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2)))``, which is symmetric and so numerically safe.

    Args:
        a: (N, D) features of one set (e.g. real images).
        b: (M, D) features of the other (e.g. generated images).

    Returns:
        The distance (>= 0; 0 for identical sets).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(200, 3)
        >>> abs(frechet_distance(x, x)) < 1e-6
        True
    """
    a, b = _check(a, "a"), _check(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature size; got {a.shape[1]} and "
                         f"{b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _sqrtm_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    value = (mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return max(float(value), 0.0)


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    # distance of each point to its k-th nearest neighbour in its own set (itself excluded)
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Precision and recall of generated samples against k-NN manifolds of the features.

    Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
    Models", 2019, arXiv:1904.06991. Each set's manifold is the union of balls around its
    points, each ball reaching the point's k-th nearest neighbour. *Precision*: the fraction of
    generated points inside the real manifold (are samples realistic?). *Recall*: the fraction
    of real points inside the generated manifold (is the data's variety covered?).

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of generated images.
        k: the neighbour that sets each ball's radius (the paper uses 3).

    Returns:
        ``{"precision": p, "recall": r}``, both in [0, 1].

    Example:
        >>> x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
        >>> pr = precision_recall(x, x[:150] * 0.1)  # realistic, but only the centre
        >>> pr["precision"] > 0.9 > 0.2 > pr["recall"]
        True
    """
    real, fake = _check(real, "real"), _check(fake, "fake")
    if k < 1 or k >= min(len(real), len(fake)):
        raise ValueError(f"k must be in 1..{min(len(real), len(fake)) - 1}; got {k}")
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = torch.cdist(fake, real)  # (M, N)
    precision = (d <= r_real[None, :]).any(1).double().mean()
    recall = (d.T <= r_fake[None, :]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, D) float32 CPU features of ``images`` (N, C, H, W), the encoder in eval mode.

    Example:
        >>> encode(nn.Flatten(), torch.rand(3, 1, 2, 2)).shape
        torch.Size([3, 4])
    """
    from minissl import evaluate

    labels = torch.zeros(len(images), dtype=torch.long)
    feats, _ = evaluate.extract_features(encoder, (images, labels), batch_size=batch_size)
    return feats


def compare_samples(encoder: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                    k: int = 3) -> dict[str, float]:
    """Fréchet distance, precision and recall of ``fake`` images against ``real`` ones.

    All three are computed in the feature space of ``encoder``, which should be a network
    trained by minissl on the real data (see the module docstring: not Inception features,
    so the numbers compare runs with each other, not with papers).

    Args:
        encoder: maps (B, C, H, W) to (B, D).
        real: (N, C, H, W) real images in [0, 1].
        fake: (M, C, H, W) generated images in [0, 1].
        k: neighbourhood size of precision/recall.

    Returns:
        ``{"frechet": ..., "precision": ..., "recall": ...}``.

    Example:
        >>> enc = nn.Flatten()
        >>> x = torch.rand(50, 1, 2, 2)
        >>> compare_samples(enc, x, x)["frechet"] < 1e-6
        True
    """
    fr, ff = encode(encoder, real), encode(encoder, fake)
    return {"frechet": frechet_distance(fr, ff), **precision_recall(fr, ff, k)}
