"""Neural network building blocks: backbones, Transformer blocks and heads.

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

from minissl.nn import backbones as _backbones
from minissl.nn.backbones import BasicBlock, ConvNet, ResNet18, backbone, check_images
from minissl.nn.heads import MLPHead
from minissl.nn.transformer import TransformerBlock, TransformerEncoder, attention_mask
from minissl.nn.vit import TinyViT, sincos_pos_embed

#: The names :func:`backbone` accepts (case-insensitive); chapters and the command line offer
#: these as choices.
BACKBONES = _backbones.BACKBONES

__all__ = [
    "BACKBONES", "BasicBlock", "ConvNet", "MLPHead", "ResNet18", "TinyViT", "TransformerBlock",
    "TransformerEncoder", "attention_mask", "backbone", "check_images", "sincos_pos_embed",
]
