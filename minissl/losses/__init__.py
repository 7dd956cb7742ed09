"""Losses as plain functions with shape-documented arguments.

Each loss matches the equation of the paper that introduced it; the chapters show the
equation next to the code. Losses are added here by the chapters that need them.
"""

from .autoencoding import gaussian_kl, masked_patch_mse, vae_elbo  # noqa: F401
from .clustering import sinkhorn, swav_loss  # noqa: F401
from .contrastive import alignment, info_nce, nt_xent, uniformity  # noqa: F401
from .self_prediction import negative_cosine  # noqa: F401
