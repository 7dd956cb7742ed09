"""The GAN method: a generator and a discriminator trained in two phases, and its sampler."""

from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from minissl.methods.gan.biggan import truncated_normal
from minissl.methods.gan.discriminator import Discriminator
from minissl.methods.gan.losses import LOSSES, d_loss, g_loss, orthogonal_penalty
from minissl.methods.gan.stylegan import StyleGenerator
from minissl.methods.inputs import class_labels, image_batch
from minissl.methods.pretext.rotation import rotate_batch
from minissl.nn import ema_update
from minissl.utils import draw


class GAN(nn.Module):
    """A GAN trained by :func:`minissl.train.fit` with two optimizers, D first, then G.

    Every step: the discriminator's phase (``"d"``) sees a real batch (label "real") and a
    generated batch (label "generated"); the generator's phase (``"g"``) draws a fresh
    batch and is scored by the updated discriminator. Generated images get the real batch's
    labels, so the class distribution matches the data's. With ``rotation=True`` the
    discriminator also learns to predict the rotation of real images, and the generator is
    rewarded when its rotated images are recognised (Chen et al., "Self-Supervised GANs via
    Auxiliary Rotation Loss", 2019, arXiv:1811.11212: weights beta = 1 for D, alpha = 0.2
    for G). An exponential moving average of G (``ema``) is what :meth:`sample` uses.

    Args:
        generator: a :class:`Generator` or :class:`StyleGenerator` (has ``z_dim``).
        discriminator: a :class:`Discriminator` (with ``rotation_head`` if ``rotation``).
        loss: ``"hinge"`` or ``"nonsaturating"``.
        rotation: add the rotation auxiliary losses.
        rotation_weights: (beta for D on real images, alpha for G on generated images).
        orthogonal: weight of BigGAN's orthogonal regularisation of G (1e-4 in the paper).
        ema: decay of the sampling copy of G (warmed up as ``min(ema, (1 + t) / (10 + t))``).
        lr_d: the discriminator's learning rate (None: the config's ``lr``).
        lr_g: the generator's learning rate (None: the config's ``lr``).
        betas: Adam's betas for both (BigGAN/SN-GAN use (0, 0.999)).

    Example:
        >>> from minissl.methods.gan import Generator
        >>> g = Generator(8, channels=1, z_dim=4, num_classes=2, width=16)
        >>> d = Discriminator(8, channels=1, num_classes=2, width=8)
        >>> gan = GAN(g, d, rotation=True)
        >>> list(gan.optimizers())
        ['d', 'g']
        >>> batch = (torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))
        >>> sorted(gan.training_step(batch, phase="d"))
        ['d_fake', 'd_real', 'loss', 'rot_acc', 'rot_loss']
        >>> gan.sample(3, y=torch.tensor([0, 1, 1]), truncation=0.5).shape
        torch.Size([3, 1, 8, 8])
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    def __init__(self, generator: nn.Module, discriminator: Discriminator, *,
                 loss: str = "hinge", rotation: bool = False,
                 rotation_weights: tuple[float, float] = (1.0, 0.2), orthogonal: float = 0.0,
                 ema: float = 0.999, lr_d: float | None = None, lr_g: float | None = None,
                 betas: tuple[float, float] = (0.0, 0.999)) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {list(LOSSES)}")
        if rotation and discriminator.rotation is None:
            raise ValueError("rotation=True needs Discriminator(..., rotation_head=True)")
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = copy.deepcopy(generator).eval()
        for p in self.generator_ema.parameters():
            p.requires_grad_(False)
        self.loss_kind, self.rotation, self.rotation_weights = loss, rotation, rotation_weights
        self.orthogonal, self.ema = orthogonal, ema
        self.lr_d, self.lr_g, self.betas = lr_d, lr_g, betas
        self.encoder = discriminator.body  # the discriminator's features, for probing
        self.z_dim = generator.z_dim
        self.num_classes = getattr(generator, "num_classes", 0)

    def optimizers(self) -> dict[str, list[dict]]:
        """``{"d": groups, "g": groups}`` for :func:`minissl.train.fit` (no weight decay)."""
        def groups(module: nn.Module, lr: float | None) -> list[dict]:
            g = {"params": [p for p in module.parameters() if p.requires_grad],
                 "weight_decay": 0.0, "betas": self.betas}
            if lr is not None:
                g["lr"] = lr
            return [g]
        return {"d": groups(self.discriminator, self.lr_d),
                "g": groups(self.generator, self.lr_g)}

    def _labels(self, y: torch.Tensor) -> torch.Tensor | None:
        return y if self.num_classes > 0 else None

    def _rotation_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A quarter of the batch under all four rotations: as many images as the batch.
        xr, r = rotate_batch(x[: max(1, len(x) // 4)])
        logits = self.discriminator.rotation(self.discriminator.body(xr))
        return F.cross_entropy(logits, r), (logits.argmax(1) == r).float().mean()

    def training_step(self, batch, phase: str = "d") -> dict:
        """One phase's loss: ``phase="d"`` for the discriminator, ``"g"`` for the generator."""
        x = image_batch(batch, self, getattr(self.generator, "image_size", None),
                        getattr(self.generator, "channels", None))  # (B, C, H, W)
        # A conditional GAN learns p(x | y): the labels must be classes it was built for.
        y = class_labels(batch, self, self.num_classes) if self.num_classes > 0 else None
        z = torch.randn(len(x), self.z_dim, device=x.device)
        if phase == "d":
            with torch.no_grad():
                fake = self.generator(z, y)
            real_logits = self.discriminator(x, y)
            fake_logits = self.discriminator(fake, y)
            loss = d_loss(real_logits, fake_logits, self.loss_kind)
            out = {"d_real": real_logits.mean().detach(), "d_fake": fake_logits.mean().detach()}
            if self.rotation:
                rot, acc = self._rotation_loss(x)
                loss = loss + self.rotation_weights[0] * rot
                out.update(rot_loss=rot.detach(), rot_acc=acc.detach())
            out["loss"] = loss
            return out
        if phase == "g":
            fake = self.generator(z, y)
            loss = g_loss(self.discriminator(fake, y), self.loss_kind)
            out = {"adv": loss.detach()}
            if self.orthogonal > 0:
                loss = loss + self.orthogonal * orthogonal_penalty(self.generator)
            if self.rotation:
                rot, _ = self._rotation_loss(fake)
                loss = loss + self.rotation_weights[1] * rot
                out["rot_loss"] = rot.detach()
            out["loss"] = loss
            return out
        raise ValueError(f"unknown phase {phase!r}; a GAN has phases 'd' and 'g'")

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """Move the EMA generator towards the trained one (weights and BN statistics)."""
        decay = min(self.ema, (1 + step) / (10 + step))
        ema_update(self.generator_ema, self.generator, decay, lerp=True)

    def _class_labels(self, n: int, y: torch.Tensor | int | None,
                      generator: torch.Generator | None, device: torch.device):
        if self.num_classes == 0:
            return None
        if y is None:
            y = draw(partial(torch.randint, self.num_classes), (n,), generator, device)
        elif isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long)
        if len(y) != n:
            raise ValueError(f"expected {n} labels; got {len(y)}")
        return y.to(device)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None,
               truncation: float | None = None, generator: torch.Generator | None = None,
               ema: bool = True, z: torch.Tensor | None = None) -> torch.Tensor:
        """n images in [0, 1] from the (EMA) generator, in eval mode.

        ``truncation``: for a :class:`Generator`, BigGAN's threshold on ``|z|`` (resampled beyond
        it); for a :class:`StyleGenerator`, StyleGAN's psi in w space (0: the mean image,
        1: no truncation). None: no truncation.

        Args:
            n: number of images.
            y: (n,) class labels or one int for all; random if None (conditional GANs only).
            truncation: see above.
            generator: makes z (and random labels, and noise) reproducible.
            ema: sample from the EMA copy (else from the trained generator).
            z: (n, z_dim) latents to use instead of fresh draws.

        Returns:
            (n, C, S, S) images on the generator's device.
        """
        net = self.generator_ema if ema else self.generator
        device = next(net.parameters()).device
        style = isinstance(net, StyleGenerator)
        if z is None:
            z = truncated_normal((n, self.z_dim), None if style else truncation,
                                 generator=generator, device=device)
        y = self._class_labels(n, y, generator, device)
        was = net.training
        net.eval()
        try:
            if style:
                return net.synthesis(net.map(z.to(device), y, truncation), generator=generator)
            return net(z.to(device), y)
        finally:
            net.train(was)
