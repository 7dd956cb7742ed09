"""DeepCluster (Caron et al., 2018): cluster the features, learn to predict the clusters, repeat."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from minissl.augment import Compose, RandomHorizontalFlip, RandomResizedCrop
from minissl.cluster import kmeans, nmi, pca_whiten
from minissl.methods.inputs import image_batch
from minissl.utils import draw


def uniform_label_indices(
    labels: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``n`` indices so that every label present is equally likely, whatever its size.

    DeepCluster's remedy for unbalanced clusters (Caron et al., "Deep Clustering for
    Unsupervised Learning of Visual Features", 2018, arXiv:1807.05520, Sec. 3.3: "sample
    images based on a uniform distribution over the classes, or pseudo-labels"): first a
    label, uniformly among the non-empty ones, then one of its members, uniformly. With a
    plain uniform draw over images one big cluster would fill most batches, and the network
    would learn to tell apart only the few images outside it.

    Args:
        labels: (N,) integer pseudo-labels, on any device.
        n: how many indices to draw (with replacement).
        generator: a CPU generator for the draws.

    Returns:
        (n,) int64 indices into ``labels``, on its device.

    Example:
        >>> labels = torch.tensor([0] * 98 + [1, 2])  # one huge cluster and two singletons
        >>> idx = uniform_label_indices(labels, 3000, torch.Generator().manual_seed(0))
        >>> (torch.bincount(labels[idx]).float() / 3000 > 0.3).tolist()
        [True, True, True]
    """
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty (N,) tensor; got {tuple(labels.shape)}")
    dev = labels.device
    order = torch.argsort(labels, stable=True)  # (N,) indices grouped by label
    ids, counts = torch.unique_consecutive(labels[order], return_counts=True)  # (L,), (L,)
    starts = torch.cumsum(counts, 0) - counts  # (L,) where each label's group begins
    which = (draw(torch.rand, (n,), generator, device=dev) * len(ids)).long()  # a label each
    offset = (draw(torch.rand, (n,), generator, device=dev) * counts[which]).long()
    return order[starts[which] + offset.clamp_max(counts[which] - 1)]


def _images_and_labels(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    if hasattr(data, "images") and hasattr(data, "labels"):  # minissl.data.ImageDataset
        return data.images, data.labels
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError("DeepCluster's data must be an ImageDataset, a tensor of images (N, C, H, W) "
                    f"or an (images, labels) pair; got {type(data).__name__}")


class DeepCluster(nn.Module):
    """Alternate k-means on the whole data set's features and training to predict the clusters.

    Caron, Bojanowski, Joulin and Douze, "Deep Clustering for Unsupervised Learning of Visual
    Features", 2018, arXiv:1807.05520. Every ``recluster_every`` steps (one epoch by default,
    as in the paper) the method embeds *every* image of ``data`` (un-augmented, eval mode),
    PCA-reduces, whitens and l2-normalises the features (:func:`minissl.cluster.pca_whiten`),
    runs k-means on the model's device, and takes the clusters as pseudo-labels. It then
    re-initialises the classifier (the old one's outputs meant the old clusters) and trains
    encoder and classifier with a cross-entropy on augmented images. Two fixes keep the
    alternation from collapsing (Sec. 3.3): an empty cluster takes half of a large one
    (``kmeans(..., empty="split")``), and batches are drawn uniformly over pseudo-labels
    (:func:`uniform_label_indices`). ``resplit=False`` and ``uniform_sampling=False`` turn
    them off, to see what they prevent.

    The batch that :func:`minissl.train.fit` passes in only sets the batch size and device;
    the images of each step are drawn from ``data`` by pseudo-label. (The classifier is
    re-initialised in place, so the optimizer's running moments for it are stale for a few
    steps after each clustering; the paper builds a fresh optimizer for it instead.)

    After each clustering the method logs (in ``fit``'s history, and in ``self.rounds``):
    ``nmi_prev``, the NMI between this assignment and the previous one (how stable the
    clusters are), ``nmi_labels``, the NMI against the true labels when ``data`` has them,
    ``clusters_used`` (non-empty clusters) and ``largest_cluster`` (its share of the data).

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, encoder.feature_dim).
        data: the images to cluster: an ``ImageDataset``, a tensor (N, C, H, W) or an
            ``(images, labels)`` pair (labels are used only for ``nmi_labels``).
        num_clusters: k of k-means (the paper over-segments: 10000 for ImageNet's 1000
            classes).
        augment: maps a batch to one random view; ``None``: random resized crop (area
            0.08-1) and horizontal flip, the paper's augmentation.
        hidden_dim: hidden width of an MLP classifier (Linear-BN-ReLU-Linear); ``None``: a
            linear classifier on the features.
        pca_dim: dimensions kept by the PCA before k-means (256 in the paper).
        kmeans_iters: Lloyd iterations per clustering.
        recluster_every: steps between clusterings; ``None``: one epoch, ``len(data) // B``.
        resplit: split a large cluster into any empty one (``False``: leave it empty).
        uniform_sampling: draw batches uniformly over pseudo-labels (``False``: over images).
        whiten: PCA-reduce and whiten the features before k-means, as the paper does
            (``False``: k-means on the l2-normalised raw features, where a few dominant
            directions decide the clusters).
        seed: seeds k-means (a new seed for every clustering); the batches are drawn with
            torch's global RNG, which ``fit`` seeds.

    Example:
        >>> from minissl.nn import ConvNet
        >>> x = torch.rand(32, 3, 8, 8)
        >>> dc = DeepCluster(ConvNet(width=4), data=x, num_clusters=4, pca_dim=8)
        >>> out = dc.training_step((x[:8], None))
        >>> out["loss"].shape, out["clusters_used"], len(dc.rounds)
        (torch.Size([]), 4.0, 1)
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> DeepCluster:
        """Clusters the run's data (see :mod:`minissl.methods.setting`).

        Four times as many clusters as classes (the papers over-cluster), a new clustering
        every two epochs, the run's seed, and PCA to at most the encoder's feature size.
        """
        data = setting.data
        kwargs = {"data": data, "num_clusters": min(4 * setting.num_classes, len(data)),
                  "recluster_every": 2 * setting.steps_per_epoch, "seed": setting.seed,
                  **kwargs}
        kwargs["pca_dim"] = min(kwargs.get("pca_dim", 256), encoder.feature_dim)
        return cls(encoder, **kwargs)

    def __init__(
        self, encoder: nn.Module, data, num_clusters: int = 100,
        augment: nn.Module | None = None, hidden_dim: int | None = None, pca_dim: int = 256,
        kmeans_iters: int = 20, recluster_every: int | None = None, resplit: bool = True,
        uniform_sampling: bool = True, seed: int = 0, whiten: bool = True,
    ) -> None:
        super().__init__()
        images, labels = _images_and_labels(data)
        if images.dim() != 4:
            raise ValueError(f"DeepCluster's images must have shape (N, C, H, W); "
                             f"got {tuple(images.shape)}")
        if not 2 <= num_clusters <= len(images):
            raise ValueError(f"num_clusters must be between 2 and the number of images "
                             f"({len(images)}); got {num_clusters}")
        if recluster_every is not None and recluster_every < 1:
            raise ValueError(f"recluster_every must be at least 1; got {recluster_every}")
        self.encoder, self.augment = encoder, augment
        d = encoder.feature_dim
        self.images = images  # not a buffer: the data set stays out of checkpoints
        self.labels = labels
        self.num_clusters, self.pca_dim, self.kmeans_iters = num_clusters, pca_dim, kmeans_iters
        self.recluster_every = recluster_every
        self.resplit, self.uniform_sampling, self.seed = resplit, uniform_sampling, seed
        self.whiten = whiten
        if hidden_dim is None:
            self.classifier: nn.Module = nn.Linear(d, num_clusters)
        else:
            self.classifier = nn.Sequential(
                nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                nn.ReLU(inplace=True), nn.Linear(hidden_dim, num_clusters))
        # buffers: on the method's device and in checkpoints, so a resumed run goes on exactly
        self.register_buffer("assignments", torch.full((len(images),), -1, dtype=torch.long))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("clustered_at", torch.full((), -1, dtype=torch.long))
        self.rounds: list[dict] = []  # one record per clustering

    def get_extra_state(self) -> dict:
        """The clustering records, so that checkpoints and the run cache keep ``rounds``.

        ``rounds`` also seeds each k-means (its length is the round's number), so a resumed
        run clusters with the same seeds as one that never stopped.
        """
        return {"rounds": [dict(r) for r in self.rounds]}

    def set_extra_state(self, state: dict) -> None:
        self.rounds = [dict(r) for r in state.get("rounds", [])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cluster logits (B, num_clusters) of a batch of images."""
        return self.classifier(self.encoder(x))

    @torch.no_grad()
    def features(self, batch_size: int = 512) -> torch.Tensor:
        """(N, feature_dim) encoder features of every image of the data, on the model's device."""
        was_training = self.training
        self.encoder.eval()
        device = next(self.parameters()).device
        out = torch.cat([self.encoder(self.images[i:i + batch_size].to(device)).float()
                         for i in range(0, len(self.images), batch_size)])
        self.encoder.train(was_training)
        return out

    @torch.no_grad()
    def cluster(self) -> dict:
        """Run k-means on the current features, reset the classifier, and return the record."""
        f = self.features()  # (N, feature_dim)
        f = pca_whiten(f, self.pca_dim) if self.whiten else F.normalize(f, dim=1)  # unit rows
        rnd = len(self.rounds)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + rnd)
        result = kmeans(f, self.num_clusters, iters=self.kmeans_iters, generator=g,
                        empty="split" if self.resplit else "keep")
        new = result.assignments
        counts = torch.bincount(new, minlength=self.num_clusters)
        record = {"step": int(self.step), "clusters_used": float((counts > 0).sum()),
                  "largest_cluster": float(counts.max()) / len(new)}
        if int(self.clustered_at) >= 0:
            record["nmi_prev"] = nmi(self.assignments, new)
        if self.labels is not None and bool((self.labels >= 0).all()):
            record["nmi_labels"] = nmi(self.labels, new)
        self.assignments.copy_(new)
        self.clustered_at.fill_(int(self.step))
        for m in self.classifier.modules():  # the old outputs meant the old clusters
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.rounds.append(record)
        return record

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self)  # only its size and device are used
        b = x.shape[0]
        every = self.recluster_every or max(len(self.images) // b, 1)
        logged: dict = {}
        if int(self.clustered_at) < 0 or int(self.step) - int(self.clustered_at) >= every:
            logged.update({k: v for k, v in self.cluster().items() if k != "step"})
        if self.augment is None:
            size = tuple(self.images.shape[-2:])
            self.augment = Compose(RandomResizedCrop(size, scale=(0.08, 1.0)),
                                   RandomHorizontalFlip(0.5))
        # torch's global RNG, which fit seeds, draws the batch
        if self.uniform_sampling:
            idx = uniform_label_indices(self.assignments, b)
        else:
            idx = draw(partial(torch.randint, len(self.images)), (b,), device=x.device)
        images = self.images[idx.to(self.images.device)].to(x.device)  # (B, C, H, W)
        targets = self.assignments[idx]  # (B,) pseudo-labels
        logits = self(self.augment(images))  # (B, num_clusters)
        loss = F.cross_entropy(logits, targets)
        acc = (logits.argmax(1) == targets).float().mean()
        return {"loss": loss, "pseudo_acc": acc, **logged}

    def on_after_step(self, step: int, total_steps: int) -> None:
        """Count the step (a clustering is due every ``recluster_every`` of them)."""
        self.step.fill_(step)
