"""The two label-hungry baselines every SSL method is compared with.

``Supervised``: encoder + linear head trained with cross-entropy on (image, label) pairs.

``PseudoLabel``: semi-supervised self-training. Lee, "Pseudo-Label: The Simple and Efficient
Semi-Supervised Learning Method for Deep Neural Networks", ICML workshop 2013. The network's
own confident predictions on unlabelled images are used as if they were true labels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Supervised(nn.Module):
    """Plain supervised learning: ``logits = head(encoder(x))``, cross-entropy with the labels.

    Args:
        encoder: a backbone mapping (B, C, H, W) to (B, D), D = ``encoder.feature_dim``.
        num_classes: K, the number of classes.
        augment: optional batch augmentation (B, C, H, W) -> (B, C, H, W), used in training only.

    Example:
        >>> from minissl.nn import ConvNet
        >>> model = Supervised(ConvNet(in_channels=1, width=4), num_classes=3)
        >>> out = model.training_step((torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])))
        >>> sorted(out), out["loss"].shape
        (['acc', 'loss'], torch.Size([]))
        >>> model.predict(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5])
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, num_classes)
        self.augment = augment

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **arguments) -> Supervised:
        """Around ``encoder`` with a head for the run's classes (:mod:`minissl.methods.setting`)."""
        return cls(encoder, **{"num_classes": setting.num_classes, **arguments})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, K) logits

    def training_step(self, batch) -> dict:
        from minissl.methods.inputs import class_labels, image_batch

        x = image_batch(batch, self)  # (B, C, H, W) float images, at least one
        if self.augment is not None:
            x = self.augment(x)
        logits = self(x)  # (B, K)
        y = class_labels(batch, self, logits.shape[1])  # (B,) int64 in [0, K)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean().detach()
        return {"loss": loss, "acc": acc}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """(N,) predicted classes, computed in eval mode (batch-norm running statistics)."""
        was_training = self.training
        self.eval()
        preds = [self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return torch.cat(preds)


class PseudoLabel(Supervised):
    """Pseudo-labelling (Lee, 2013), with pseudo-labels made on the fly at every step.

    The few labelled examples are held by the method (as buffers, so they move with it to
    the GPU); :func:`minissl.train.fit` streams the *unlabelled* images, whose labels are
    ignored. Each step:

    1. cross-entropy on a batch of labelled examples (all of them if there are fewer);
    2. the current network predicts the unlabelled batch; where its softmax confidence is at
       least ``threshold``, the predicted class becomes a target (a pseudo-label, no gradient
       through it). Below the threshold an image contributes nothing. The threshold is the
       confidence filter of FixMatch (Sohn et al., 2020); Lee uses every argmax.
    3. ``loss = labelled + alpha(t) * pseudo``, where ``alpha`` ramps linearly from 0 to
       ``unlabeled_weight`` over the first ``ramp_up`` fraction of training: early
       predictions are mostly wrong, and Lee's schedule keeps them from being learned.

    With very few labels, starting from random weights lets early mistakes become targets;
    :meth:`from_supervised` starts instead from a model already trained on the labelled set
    (the first round of classic self-training), which is what the book's chapter 1 does.

    Args:
        encoder, num_classes, augment: as in :class:`Supervised`.
        labeled_images: (L, C, H, W) the labelled examples.
        labeled_labels: (L,) their classes.
        threshold: minimum softmax probability for a pseudo-label (above 1: none ever pass).
        unlabeled_weight: the final weight of the pseudo-label loss (Lee's alpha_f).
        ramp_up: fraction of the total steps over which alpha grows from 0 to its final value.

    Example:
        >>> from minissl.nn import ConvNet
        >>> xl, yl = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
        >>> model = PseudoLabel(ConvNet(in_channels=1, width=4), 3, xl, yl, ramp_up=0.0)
        >>> out = model.training_step((torch.rand(4, 1, 8, 8), torch.full((4,), -1)))
        >>> sorted(out)
        ['acc', 'alpha', 'loss', 'loss_labeled', 'loss_pseudo', 'mask_rate']
    """
    for_setting = None  # its labelled examples are given in Python: no build from a Setting

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        labeled_images: torch.Tensor,
        labeled_labels: torch.Tensor,
        threshold: float = 0.95,
        unlabeled_weight: float = 1.0,
        ramp_up: float = 0.3,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(encoder, num_classes, augment)
        # persistent=False: the labelled set travels with .to(device) but is not checkpointed
        self.register_buffer("labeled_images", labeled_images.float(), persistent=False)
        self.register_buffer("labeled_labels", labeled_labels.long(), persistent=False)
        self.threshold = threshold
        self.unlabeled_weight = unlabeled_weight
        self.ramp_up = ramp_up
        self.alpha = unlabeled_weight if ramp_up <= 0 else 0.0

    @classmethod
    def from_supervised(
        cls, model: Supervised, labeled_images: torch.Tensor, labeled_labels: torch.Tensor,
        **kwargs,
    ) -> PseudoLabel:
        """Continue from a :class:`Supervised` model trained on the labelled examples.

        This is self-training's first round done properly: pseudo-labels come from a network
        that already knows the classes, instead of from random weights. The model is copied
        (the original is left as it was); ``ramp_up`` defaults to 0 since no warm-up is needed.

        Example:
            >>> from minissl.nn import ConvNet
            >>> sup = Supervised(ConvNet(in_channels=1, width=4), num_classes=2)
            >>> pl = PseudoLabel.from_supervised(sup, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
            >>> pl.alpha, bool(torch.equal(pl.head.weight, sup.head.weight)), pl.head is sup.head
            (1.0, True, False)
        """
        kwargs.setdefault("ramp_up", 0.0)
        new = cls(copy.deepcopy(model.encoder), model.head.out_features, labeled_images,
                  labeled_labels, augment=model.augment, **kwargs)
        new.head.load_state_dict(model.head.state_dict())
        return new

    def on_after_step(self, step: int, total_steps: int) -> None:
        ramp_steps = self.ramp_up * total_steps
        progress = 1.0 if ramp_steps <= 0 else min(1.0, step / ramp_steps)
        self.alpha = self.unlabeled_weight * progress

    def training_step(self, batch) -> dict:
        from minissl.methods.inputs import image_batch

        x_u = image_batch(batch, self)  # (B, C, H, W); the batch's labels are never looked at
        if x_u.shape[1:] != self.labeled_images.shape[1:]:
            raise ValueError(
                f"PseudoLabel.training_step got images of shape {tuple(x_u.shape)}, but its "
                f"labelled images are (L, {', '.join(map(str, self.labeled_images.shape[1:]))})"
                "; give unlabelled images of the same channels and size")
        n_l = len(self.labeled_images)
        idx = torch.randperm(n_l, device=x_u.device)[: len(x_u)]
        x_l, y_l = self.labeled_images[idx], self.labeled_labels[idx]  # (L', C, H, W), (L',)
        if self.augment is not None:
            x_l, x_u = self.augment(x_l), self.augment(x_u)
        logits = self(torch.cat([x_l, x_u]))  # one pass, so batch norm sees both
        logits_l, logits_u = logits[: len(x_l)], logits[len(x_l) :]  # (L', K), (B, K)
        loss_l = F.cross_entropy(logits_l, y_l)

        confidence, pseudo = logits_u.detach().softmax(1).max(1)  # (B,), (B,)
        mask = (confidence >= self.threshold).float()  # (B,) 1 where the pseudo-label is kept
        per_image = F.cross_entropy(logits_u, pseudo, reduction="none")  # (B,)
        loss_u = (per_image * mask).mean()  # averaged over the whole batch, as in FixMatch
        return {
            "loss": loss_l + self.alpha * loss_u,
            "loss_labeled": loss_l.detach(),
            "loss_pseudo": loss_u.detach(),
            "mask_rate": mask.mean(),
            "alpha": self.alpha,
            "acc": (logits_l.argmax(1) == y_l).float().mean().detach(),
        }
