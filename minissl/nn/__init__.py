"""Neural network building blocks: backbones, Transformer blocks, heads, parameter helpers.

Every backbone maps images (B, C, H, W) to features (B, feature_dim) and exposes
``.feature_dim``; build one with explicit arguments or by name::

    from minissl import nn as mnn
    encoder = mnn.backbone("convnet", in_channels=3, width=32)   # or mnn.ConvNet(3, 32)
    projector = mnn.MLPHead(encoder.feature_dim, 512, 128)

Example:
    >>> import torch
    >>> backbone("resnet18", in_channels=1, width=4)(torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 32])
"""

from __future__ import annotations

import torch

from minissl.nn.backbones import BasicBlock, ConvNet, ResNet18, check_images
from minissl.nn.heads import MLPHead
from minissl.nn.params import ema_update, weight_decay_groups
from minissl.nn.transformer import TransformerBlock, TransformerEncoder, attention_mask
from minissl.nn.vit import TinyViT, sincos_pos_embed

_REGISTRY = {"convnet": ConvNet, "resnet18": ResNet18, "vit_tiny": TinyViT}

#: The names :func:`backbone` accepts (case-insensitive); chapters and the command line offer
#: these as choices.
BACKBONES = tuple(_REGISTRY)


def backbone(name: str, in_channels: int = 3, **kwargs) -> torch.nn.Module:
    """Build a backbone by name: ``"convnet"``, ``"resnet18"`` or ``"vit_tiny"``.

    Args:
        name: one of :data:`BACKBONES` (case-insensitive).
        in_channels: C of the input images.
        **kwargs: passed to the constructor, e.g. ``width=16`` or ``image_size=8``.

    Example:
        >>> backbone("convnet", in_channels=1, width=4).feature_dim
        32
        >>> backbone("alexnet")
        Traceback (most recent call last):
        ...
        ValueError: unknown backbone 'alexnet'; use one of ['convnet', 'resnet18', 'vit_tiny']
    """
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; use one of {sorted(_REGISTRY)}")
    return _REGISTRY[key](in_channels=in_channels, **kwargs)


__all__ = [
    "BACKBONES", "BasicBlock", "ConvNet", "MLPHead", "ResNet18", "TinyViT", "TransformerBlock",
    "TransformerEncoder", "attention_mask", "backbone", "check_images", "ema_update",
    "sincos_pos_embed", "weight_decay_groups",
]
