"""MoCo v2 (He et al., 2020; Chen et al., 2020): a momentum key encoder and a queue of keys."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from minissl import distributed
from minissl.augment import MoCoV2Augment, TwoViews, default_augment
from minissl.losses.contrastive import info_nce
from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead, ema_update


class MoCo(nn.Module):
    """MoCo v2: queries from the trained encoder, keys from its moving average, a FIFO queue.

    He, Fan, Wu, Xie and Girshick, "Momentum Contrast for Unsupervised Visual Representation
    Learning", 2020, arXiv:1911.05722, with the v2 changes of Chen, Fan, Girshick and He,
    "Improved Baselines with Momentum Contrastive Learning", 2020, arXiv:2003.04297 (MLP head,
    stronger augmentation, tau = 0.2). Negatives are the keys of earlier batches, kept in a
    queue, so their number ``queue_size`` is decoupled from the batch size; the key encoder
    changes slowly (``momentum``) so that those old keys stay comparable with new ones.

    Shuffle BN (Sec. 3.3): with batch norm, a query can recognise its key through the batch
    statistics the two share, and the loss falls without better features. The paper computes
    BN per GPU and shuffles the keys across GPUs. ``bn_groups=G`` does the same on one device:
    queries are normalised in G groups of consecutive images, keys in G groups of a random
    permutation, so a query and its key rarely share statistics. Under DDP each rank's keys
    also use that rank's BN statistics, as in the paper's per-GPU BN.

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, encoder.feature_dim); becomes the query
            encoder.
        augment: ``augment(x) -> (view1, view2)``, the query's view and the key's; ``None``
            builds two draws of :class:`minissl.augment.MoCoV2Augment` (``TwoViews``) for the
            image size on the first step.
        proj_dim: embedding size of queries, keys and queue (128 in the paper).
        queue_size: K, number of negative keys; at least the global batch size.
        momentum: m of the key encoder's EMA (0.999 in the paper for 200 ImageNet epochs;
            0.99 suits our much shorter runs).
        temperature: tau of InfoNCE.
        mlp: MoCo v2's 2-layer MLP head (fc -> ReLU -> fc) instead of v1's single fc layer.
        batch_norm: batch norm after every layer of both heads, the output included (as MoCo v3's
            heads have). MoCo v2's head has none; on small encoders whose features are all
            positive (ReLU then pooling), every image then starts at nearly the same direction
            (mean cosine 0.99 measured on ``shapes``) and the queue's negatives give almost no
            signal; the normalisation spreads them from the first step.
        symmetric: also use the second view as a query against the first view's key, and
            average the two losses (as MoCo v3 does, Chen, Xie and He, "An Empirical Study of
            Training Self-Supervised Vision Transformers", 2021, arXiv:2104.02057). Every
            image then gives two training signals per step, like SimCLR's two anchors; both
            views' keys enter the queue. False is MoCo v2 as published.
        bn_groups: number of groups for shuffle BN on one device (1: the whole batch shares
            its statistics). The batch of queries must split into groups of at least 2.

    Example:
        >>> from minissl.nn import ConvNet
        >>> enc = ConvNet(in_channels=3, width=4)
        >>> moco = MoCo(enc, queue_size=8)
        >>> out = moco.training_step((torch.rand(4, 3, 8, 8), None))
        >>> out["loss"].shape, int(moco.queue_ptr)
        (torch.Size([]), 4)
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self, encoder: nn.Module, augment: nn.Module | None = None,
        proj_dim: int = 128, queue_size: int = 4096, momentum: float = 0.99,
        temperature: float = 0.2, mlp: bool = True, symmetric: bool = False,
        batch_norm: bool = False, bn_groups: int = 1,
    ) -> None:
        super().__init__()
        if bn_groups < 1:
            raise ValueError(f"bn_groups must be a positive number of groups; got {bn_groups}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least the batch size; got {queue_size}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1]; got {momentum}")
        self.encoder, self.augment = encoder, augment
        self.momentum, self.temperature, self.symmetric = momentum, temperature, symmetric
        self.bn_groups = bn_groups
        # v2's head has no BN ("a 2-layer MLP head (hidden layer 2048-d, with ReLU)"); see
        # `batch_norm` for why the book's recipe adds it.
        d = encoder.feature_dim
        self.head = MLPHead(d, d, proj_dim, num_layers=2 if mlp else 1,
                            batch_norm=batch_norm, last_batch_norm=batch_norm)
        # The key encoder starts as a copy and then only follows the query encoder by EMA:
        # no gradient, and fit's optimizer (built from requires_grad params) never sees it.
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        # Random unit vectors as the first "keys", as in the paper's code; buffers, so they
        # follow the method to its device and into checkpoints.
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, encoder.feature_dim) of a batch of images."""
        return self.encoder(x)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Queries (B, proj_dim), not normalized, of a batch of images."""
        return self.head(self.encoder(x))

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # (N, C, H, W); labels are ignored
        n_global = x.shape[0] * distributed.world_size() * (2 if self.symmetric else 1)
        if n_global > self.queue.shape[0]:
            raise ValueError(
                f"queue_size={self.queue.shape[0]} is smaller than the (global) batch of "
                f"{n_global}: one batch of keys would overwrite itself; use queue_size >= "
                f"{n_global} or a smaller batch"
            )
        self.augment = default_augment(  # built on first use
            self.augment, lambda size: TwoViews(MoCoV2Augment(size)), x)
        x_q, x_k = self.augment(x)  # (N, C, H', W') each
        if self.symmetric:  # both views are queries and both are keys: (2N, ...) batches
            x_q, x_k = torch.cat([x_q, x_k]), torch.cat([x_k, x_q])
        groups = self.bn_groups
        if groups > 1 and len(x_q) < 2 * groups:
            raise ValueError(f"bn_groups={groups} needs at least {2 * groups} queries per step "
                             f"(2 per group for batch norm); got {len(x_q)}")
        # (N, proj_dim), or (2N, proj_dim) when symmetric; in `groups` chunks, each with its
        # own BN stats
        q = (self.project(x_q) if groups == 1
             else torch.cat([self.project(c) for c in x_q.chunk(groups)]))
        with torch.no_grad():  # "no gradient to keys" (Algorithm 1)
            if groups == 1:
                k = self.key_head(self.key_encoder(x_k))
            else:  # shuffle, so the key groups differ from the query groups, then unshuffle
                order = torch.randperm(len(x_k), device=x_k.device)
                k = torch.cat([self.key_head(self.key_encoder(c))
                               for c in x_k[order].chunk(groups)])[torch.argsort(order)]
            k = F.normalize(k, dim=1)  # like q
        # clone: the queue is overwritten in place just below, while autograd still needs
        # the negatives this loss saw to compute q's gradient. (With symmetric=True the mean
        # over 2N queries is the average of the two directions' losses.)
        loss = info_nce(q, k, self.queue.clone(), self.temperature)
        self._enqueue(distributed.gather(k))  # every rank's keys, same order on every rank
        return {"loss": loss}

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        # FIFO: the newest keys replace the oldest, wrapping around the end of the buffer,
        # so any batch size up to K works.
        K, n = self.queue.shape[0], keys.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % K  # (n,)
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % K)

    @torch.no_grad()
    def on_after_step(self, step: int = 0, total_steps: int = 0) -> None:
        """Momentum update of the key side after every optimizer step: θk ← m θk + (1 − m) θq."""
        # Parameters only: the key side keeps the BN statistics of its own forward passes.
        ema_update(self.key_encoder, self.encoder, self.momentum, buffers=False)
        ema_update(self.key_head, self.head, self.momentum, buffers=False)
