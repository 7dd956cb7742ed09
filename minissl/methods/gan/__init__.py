"""Generative adversarial networks, with BigGAN-style and StyleGAN-style generators.

A GAN turns generation into classification with a label that costs nothing: a discriminator
learns to tell real images (label 1) from generated ones (label 0), and the generator learns
to make the discriminator wrong. Goodfellow et al., "Generative Adversarial Nets", 2014,
arXiv:1406.2661.

The pieces, each with its paper:

- losses: the non-saturating loss (Goodfellow et al., 2014) and the hinge loss (Miyato et
  al., "Spectral Normalization for Generative Adversarial Networks", 2018, arXiv:1802.05957);
- spectral normalisation of every discriminator layer (Miyato et al., 2018);
- a projection discriminator for class conditioning (Miyato & Koyama, "cGANs with Projection
  Discriminator", 2018, arXiv:1802.05637);
- :class:`Generator`, BigGAN-style (Brock et al., "Large Scale GAN Training for High Fidelity
  Natural Image Synthesis", 2019, arXiv:1809.11096): residual up-sampling blocks with
  class-conditional batch normalisation fed by a shared class embedding concatenated with z,
  orthogonal regularisation, the truncation trick;
- :class:`StyleGenerator`, StyleGAN-style (Karras et al., "A Style-Based Generator
  Architecture for Generative Adversarial Networks", 2019, arXiv:1812.04948; and "Analyzing
  and Improving the Image Quality of StyleGAN", 2020, arXiv:1912.04958): a mapping network
  z -> w, a learned constant input, modulated/demodulated convolutions, per-layer noise, style
  mixing;
- the rotation auxiliary loss on the discriminator (Chen et al., "Self-Supervised GANs via
  Auxiliary Rotation Loss", 2019, arXiv:1811.11212);
- an exponential moving average of the generator's weights for sampling (Karras et al.,
  "Progressive Growing of GANs", 2018, arXiv:1710.10196; used by BigGAN and StyleGAN).

:class:`GAN` trains a generator and a discriminator with two optimizers inside
:func:`minissl.train.fit`: its ``optimizers()`` returns ``{"d": ..., "g": ...}`` and
``training_step(batch, phase)`` computes one phase's loss.

One module per piece: ``losses``, ``biggan``, ``stylegan``, ``discriminator`` and ``method``
(the :class:`GAN` itself); every name is importable from ``minissl.methods.gan``.
"""

from minissl.methods.gan.biggan import ConditionalBatchNorm2d, Generator, truncated_normal
from minissl.methods.gan.discriminator import Discriminator, DiscriminatorBody
from minissl.methods.gan.losses import LOSSES, d_loss, g_loss, orthogonal_penalty
from minissl.methods.gan.method import GAN
from minissl.methods.gan.stylegan import MappingNetwork, ModulatedConv2d, StyleGenerator
from minissl.methods.pretext.rotation import rotate_batch as rotate4  # the auxiliary task's views

__all__ = [
    "GAN", "Generator", "StyleGenerator", "Discriminator", "DiscriminatorBody",
    "ConditionalBatchNorm2d", "MappingNetwork", "ModulatedConv2d", "LOSSES", "d_loss", "g_loss",
    "orthogonal_penalty", "rotate4", "truncated_normal",
]
