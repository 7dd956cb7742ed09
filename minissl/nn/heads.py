"""Projection and prediction heads: the small MLPs that sit on top of a backbone."""

from __future__ import annotations

import torch
from torch import nn

from minissl.utils import check_shape


class MLPHead(nn.Module):
    """An MLP of ``num_layers`` linear layers with BN + ReLU between them.

    The projector of SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations", 2020, arXiv:2002.05709) and the projector/predictor of BYOL
    (Grill et al., 2020, arXiv:2006.07733) and SimSiam (Chen & He, 2020, arXiv:2011.10566)
    are all this module with different sizes.

    Layout for ``num_layers=3``::

        Linear(in, hidden) -> BN -> ReLU -> Linear(hidden, hidden) -> BN -> ReLU
        -> Linear(hidden, out) [-> BN without affine, if last_batch_norm]

    Args:
        in_dim: input width (the backbone's ``feature_dim``).
        hidden_dim: width of the hidden layers.
        out_dim: output width.
        num_layers: number of linear layers (1 gives a single linear map).
        batch_norm: BatchNorm1d after every hidden linear layer (its bias is then dropped,
            because BN's shift replaces it).
        hidden_bias: give the hidden linear layers a bias; ``None``: only without batch norm.
        last_batch_norm: BatchNorm1d on the output too; it has no affine parameters, as in
            SimSiam's projector (Sec. 4.4: "BN ... applied to each fc layer, including the
            output fc").

    Shapes:
        (B, in_dim) -> (B, out_dim). Training-mode batch norm needs B > 1.

    Example:
        >>> head = MLPHead(in_dim=8, hidden_dim=16, out_dim=4)
        >>> head(torch.rand(3, 8)).shape
        torch.Size([3, 4])
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
        batch_norm: bool = True, last_batch_norm: bool = False, hidden_bias: bool | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLPHead needs num_layers >= 1; got {num_layers}")
        self.in_dim, self.out_dim = in_dim, out_dim
        bias = not batch_norm if hidden_bias is None else hidden_bias
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(d, hidden_dim, bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim, bias=not last_batch_norm))
        if last_batch_norm:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, ("B", self.in_dim), "MLPHead input")
        return self.net(x)  # (B, out_dim)
