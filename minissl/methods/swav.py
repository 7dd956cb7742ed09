"""SwAV (Caron et al., 2020): predict the cluster code of one view from another, online."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.augment import MultiCrop, default_augment
from minissl.losses.clustering import sinkhorn, swav_loss
from minissl.methods.inputs import image_batch
from minissl.nn import MLPHead


class SwAV(nn.Module):
    """Swapping Assignments between Views, with multi-crop and an optional feature queue.

    Caron, Misra, Mairal, Goyal, Bojanowski and Joulin, "Unsupervised Learning of Visual
    Features by Contrasting Cluster Assignments", 2020, arXiv:2006.09882. Every crop of an
    image is embedded on the unit sphere and scored against K learned prototypes (unit
    vectors: the rows of a linear layer without bias, renormalised after every optimizer
    step). The codes of the global crops come from :func:`~minissl.losses.sinkhorn`, which
    spreads the batch equally over the prototypes; every crop must then predict the codes of
    the *other* global crops (:func:`~minissl.losses.swav_loss`). Small local crops are cheap
    extra views that only predict (multi-crop, Sec. 3.2).

    Three details of the paper's training recipe are here:

    * the prototypes do not move during the first ``freeze_prototypes_steps`` steps (the
      paper freezes them "during the first epoch": pass the number of steps of one epoch);
    * with a small batch, B samples cannot be spread over K prototypes meaningfully, so
      the embeddings of the global crops of the last ``queue_size`` samples are kept in a
      queue and their scores join the batch's in Sinkhorn (Sec. 4.3 / App. "small batch"
      training), from step ``queue_start_step`` on and once the queue is full;
    * ``equal_partition=False`` replaces Sinkhorn by a plain softmax, the naive variant with
      no constraint: nothing stops every image from going to the same prototype, and it
      collapses.

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        augment: maps a batch to a list of views, the ``n_global`` global crops first (with
            two global crops and no local ones, the pair of views of every two-view method);
            ``None`` builds :class:`minissl.augment.MultiCrop` (2 global crops at the image
            size, ``n_local`` local crops at half of it, the paper's crop scales).
        proj_dim: size of the embeddings and prototypes (128 in the paper).
        hidden_dim: hidden width of the projection MLP; ``None`` = ``encoder.feature_dim``.
        num_prototypes: K (3000 for ImageNet in the paper; a few times the number of classes
            suits small data sets).
        temperature: tau of the swapped prediction's softmax (0.1).
        epsilon: Sinkhorn's entropic regularisation (0.05).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (3).
        n_global: the number of global crops (coded views) among the augmentation's views.
        n_local: local crops of the default augmentation.
        freeze_prototypes_steps: steps during which the prototypes get no update.
        queue_size: samples kept in the feature queue (0: no queue).
        queue_start_step: the first step at which the queue is used.
        equal_partition: use Sinkhorn's equal-partition codes (``False``: softmax codes).

    Example:
        >>> from minissl.nn import ConvNet
        >>> enc = ConvNet(in_channels=3, width=4)
        >>> swav = SwAV(enc, num_prototypes=10, n_local=2)
        >>> out = swav.training_step((torch.rand(4, 3, 16, 16), None))
        >>> out["loss"].backward(); swav.on_after_step(1, 10)
        >>> norms = swav.prototypes.weight.detach().norm(dim=1)
        >>> out["loss"].shape, bool(torch.allclose(norms, torch.ones(10)))
        (torch.Size([]), True)
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> SwAV:
        """Sized for the run (see :mod:`minissl.methods.setting`).

        Four prototypes per class, prototypes frozen for the first epoch, and as many local
        crops as the augmentation makes.
        """
        kwargs = {"num_prototypes": 4 * setting.num_classes,
                  "freeze_prototypes_steps": setting.steps_per_epoch,
                  "n_local": getattr(kwargs.get("augment"), "n_local", 2), **kwargs}
        return cls(encoder, **kwargs)

    def __init__(
        self, encoder: nn.Module, augment: nn.Module | None = None,
        proj_dim: int = 128, hidden_dim: int | None = None, num_prototypes: int = 100,
        temperature: float = 0.1, epsilon: float = 0.05, sinkhorn_iterations: int = 3,
        n_global: int = 2, n_local: int = 4, freeze_prototypes_steps: int = 0,
        queue_size: int = 0, queue_start_step: int = 0, equal_partition: bool = True,
    ) -> None:
        super().__init__()
        if not temperature > 0 or not epsilon > 0:
            raise ValueError(f"temperature and epsilon must be > 0; got {temperature}, {epsilon}")
        if n_global < 1 or n_local < 0:
            raise ValueError(f"need n_global >= 1 and n_local >= 0; got {n_global}, {n_local}")
        if n_global + n_local < 2:
            raise ValueError("the swapped prediction needs at least 2 views; "
                             f"got n_global={n_global}, n_local={n_local}")
        if num_prototypes < 2 or queue_size < 0:
            raise ValueError(f"need num_prototypes >= 2 and queue_size >= 0; "
                             f"got {num_prototypes}, {queue_size}")
        self.encoder, self.augment = encoder, augment
        d = encoder.feature_dim
        self.projector = MLPHead(d, hidden_dim or d, proj_dim)
        self.prototypes = nn.Linear(proj_dim, num_prototypes, bias=False)  # rows: c_1..c_K
        self.normalize_prototypes()
        self.temperature, self.epsilon = temperature, epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.n_global, self.n_local = n_global, n_local
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.queue_start_step, self.equal_partition = queue_start_step, equal_partition
        # buffers: they follow the method to its device and into checkpoints
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue", torch.zeros(n_global, queue_size, proj_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Put every prototype back on the unit sphere (the paper does it before each step)."""
        w = self.prototypes.weight
        w.copy_(F.normalize(w, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, encoder.feature_dim) of a batch of images."""
        return self.encoder(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings (B, proj_dim) of a batch of images (B, C, H, W)."""
        return F.normalize(self.projector(self.encoder(x)), dim=1)

    @torch.no_grad()
    def assign(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(N,) index of the prototype closest (in cosine) to each image of x (N, C, H, W)."""
        was_training = self.training
        self.eval()
        device = self.prototypes.weight.device
        out = torch.cat([self.prototypes(self.embed(x[i:i + batch_size].to(device))).argmax(1)
                         for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    def _codes(self, scores: torch.Tensor, i: int, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, K) of global crop ``i`` from its scores (B, K) and embeddings z (B, P)."""
        if not self.equal_partition:  # the naive variant: nothing balances the prototypes
            return F.softmax(scores / self.epsilon, dim=1)
        b, length = scores.shape[0], self.queue.shape[1]
        use_queue = (length > 0 and int(self.step) >= self.queue_start_step
                     and int(self.queue_filled) >= length)
        if use_queue:  # the queue's scores against the *current* prototypes join the batch
            scores = torch.cat([self.prototypes(self.queue[i]), scores])  # (L + B, K)
        codes = sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)[-b:]  # (B, K)
        if length > 0:  # first in, first out: the newest embeddings go in front
            self.queue[i] = torch.cat([z, self.queue[i]])[:length]
        return codes

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # (B, C, H, W); labels are ignored
        self.augment = default_augment(  # built on first use, for the image size
            self.augment, lambda size: MultiCrop(size, [max(s // 2, 1) for s in size],
                                                 self.n_global, self.n_local), x)
        views = self.augment(x)  # n_global global crops, then the local crops
        if len(views) < max(self.n_global, 2):
            raise ValueError(f"the augmentation gave {len(views)} views; SwAV needs at least "
                             f"n_global={self.n_global} and 2 in all")
        b = x.shape[0]
        # One pass per run of equal-sized crops, as the paper's code does: fewer, larger calls.
        z_parts, start = [], 0
        while start < len(views):
            end = start + 1
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            z_parts.append(self.embed(torch.cat(views[start:end])))  # ((end - start) B, P)
            start = end
        z = torch.cat(z_parts)  # (V B, P)
        w = self.prototypes.weight  # (K, P)
        if int(self.step) < self.freeze_prototypes_steps:
            # A zero gradient (rather than none) keeps DDP's bookkeeping happy; after the
            # step's renormalisation the prototypes are exactly where they were.
            w = w.detach() + 0.0 * w
        scores = (z @ w.T).split(b)  # V tensors (B, K)
        with torch.no_grad():
            zd = z.detach()
            codes = [self._codes(scores[i].detach(), i, zd[i * b:(i + 1) * b])
                     for i in range(self.n_global)]
            if self.queue.shape[1] > 0:
                self.queue_filled.add_(b).clamp_(max=self.queue.shape[1])
            used = scores[0].argmax(1).unique().numel()  # prototypes that win an image
        loss = swav_loss(scores, codes, self.temperature)
        return {"loss": loss, "prototypes_used": float(used)}

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """Count the step and renormalise the prototypes onto the unit sphere."""
        self.step.fill_(step)
        self.normalize_prototypes()
