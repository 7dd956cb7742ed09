"""Convolutional backbones: a small fast ConvNet and a CIFAR-style ResNet-18.

Every backbone maps images (B, C, H, W) to features (B, feature_dim) and exposes
``.feature_dim``. Spatial size is reduced by global average pooling at the end, so the same
model accepts 8x8 digits, 32x32 CIFAR images or 96x96 STL-10 images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minissl.utils import check_shape


def check_images(x: torch.Tensor, in_channels: int, model: str) -> None:
    """Raise a ``ValueError`` unless ``x`` is a batch of images with ``in_channels`` channels.

    Args:
        x: the tensor a backbone was given; it should be (B, C, H, W).
        in_channels: the channel count the backbone was built for.
        model: the backbone's name, used in the message.

    Example:
        >>> check_images(torch.zeros(2, 1, 8, 8), 1, "ConvNet")
        >>> check_images(torch.zeros(2, 1, 8, 8), 3, "ConvNet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ConvNet was built for 3 input channels (in_channels=3) but got images ...
    """
    check_shape(x, ("B", "C", "H", "W"), f"{model} input")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{model} was built for {in_channels} input channels (in_channels={in_channels}) "
            f"but got images of shape {tuple(x.shape)} with {x.shape[1]} channel(s); "
            f"build it with in_channels={x.shape[1]} or convert the images"
        )


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """A 3x3 convolution, batch norm and ReLU (the bias is dropped: BN has its own shift)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ConvNet(nn.Module):
    """A small, fast VGG-like ConvNet: the CPU workhorse of the quick profile.

    A cheap 3x3 stem with ``width // 2`` channels at full resolution, then ``depth`` stages
    of one 3x3 conv-BN-ReLU that each halve the map (stride 2) and double the width, then
    global average pooling. With ``depth=4`` the stage widths are ``width * (1, 2, 4, 8)``
    and ``feature_dim = 8 * width``; a 32x32 image ends as a 2x2 map before pooling.
    Strided convolutions (rather than conv + max-pool) keep every wide layer at low
    resolution, which is what makes it fast on a CPU; a stride-2 conv on a 1x1 map returns a
    1x1 map, so 8x8 digits pass through every stage.

    Args:
        in_channels: C of the input images (1 for digits/MNIST, 3 for RGB).
        width: channels of the first stage.
        depth: number of stride-2 stages (at least 1).

    Shapes:
        input (B, C, H, W) with any H, W >= 1; output (B, feature_dim).

    Example:
        >>> net = ConvNet(in_channels=1, width=8)
        >>> net(torch.rand(2, 1, 8, 8)).shape, net.feature_dim
        (torch.Size([2, 64]), 64)
    """

    def __init__(self, in_channels: int = 3, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"ConvNet depth must be at least 1; got {depth}")
        self.in_channels = in_channels
        ch = max(width // 2, 1)
        layers: list[nn.Module] = [conv_bn_relu(in_channels, ch)]
        for i in range(depth):
            layers.append(conv_bn_relu(ch, width * 2**i, stride=2))
            ch = width * 2**i
        self.features = nn.Sequential(*layers)
        self.feature_dim = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, "ConvNet")
        h = self.features(x)  # (B, feature_dim, H / 2**depth, W / 2**depth), rounded up
        return h.mean(dim=(2, 3))  # (B, feature_dim): global average pool


class BasicBlock(nn.Module):
    """The two-convolution residual block of ResNet-18/34.

    He et al., "Deep Residual Learning for Image Recognition", 2015, arXiv:1512.03385.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: 2 halves the map (in the first block of a stage), 1 keeps it.

    Example:
        >>> BasicBlock(8, 16, stride=2)(torch.rand(2, 8, 6, 6)).shape
        torch.Size([2, 16, 3, 3])
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            # Option B of the paper: a strided 1x1 projection when the shape changes.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)), inplace=True)  # (B, out_ch, H/s, W/s)
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x), inplace=True)


class ResNet18(nn.Module):
    """ResNet-18 in its CIFAR form: a 3x3 stride-1 stem and no max-pool.

    He et al., "Deep Residual Learning for Image Recognition", 2015, arXiv:1512.03385.
    The CIFAR stem (instead of the 7x7 stride-2 conv + max-pool meant for 224px ImageNet
    images) is what SimCLR and most small-image SSL papers use on 32x32 inputs.

    Four stages of two :class:`BasicBlock` with widths ``width * (1, 2, 4, 8)`` and strides
    (1, 2, 2, 2), then global average pooling; ``feature_dim = 8 * width`` (512 at the
    standard ``width=64``, about 11.2M parameters).

    Args:
        in_channels: C of the input images.
        width: channels of the first stage (64 is the standard ResNet-18).

    Shapes:
        input (B, C, H, W); output (B, feature_dim).

    Example:
        >>> net = ResNet18(in_channels=1, width=4)
        >>> net(torch.rand(2, 1, 8, 8)).shape, net.feature_dim
        (torch.Size([2, 32]), 32)
    """

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = conv_bn_relu(in_channels, width)
        stages, ch = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            out = width * 2**i
            stages.append(nn.Sequential(BasicBlock(ch, out, stride), BasicBlock(out, out)))
            ch = out
        self.stages = nn.Sequential(*stages)
        self.feature_dim = ch
        # Zero-init the last BN of each residual branch so every block starts as the
        # identity (Goyal et al., "Accurate, Large Minibatch SGD", 2017, arXiv:1706.02677).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, "ResNet18")
        h = self.stages(self.stem(x))  # (B, 8 * width, H/8, W/8)
        return h.mean(dim=(2, 3))  # (B, feature_dim)
