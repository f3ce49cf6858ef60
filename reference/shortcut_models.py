"""The reference models whose blocks reach past their own layers: ResNet and ResNeXt (d2l 8.6), DenseNet (8.7), AnyNet and RegNet (8.8).

A residual block adds its input to its output, a dense block concatenates it; AnyNet
stacks ResNeXt blocks. They are kept apart from the book's earlier architectures
(:mod:`reference.models`, which re-exports every name here, so ``models.DenseNet`` keeps
working) only so that each module stays short enough to read; everything said in
:mod:`reference.models` about mirroring the book holds here: constructor signatures,
lazy layers, ``self.net`` and the exact layer order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from reference.model_tools import _Net

__all__ = [
    "AnyNet",
    "DenseBlock",
    "DenseNet",
    "RegNetX32",
    "ResNeXtBlock",
    "ResNet",
    "ResNet18",
    "Residual",
    "conv_block",
    "transition_block",
]


# --------------------------------------------------------------------------- 8.6 ResNet


class Residual(nn.Module):
    """The residual block of d2l 8.6, with an optional 1x1 conv on the shortcut."""

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3: nn.Conv2d | None  # a LazyConv2d becomes a Conv2d on its first call
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


class ResNet(_Net):
    """ResNet of d2l 8.6: ``arch`` is a sequence of ``(num_residuals, num_channels)``."""

    def __init__(self, arch: Sequence[tuple[int, int]], lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.arch = tuple(tuple(a) for a in arch)
        self.net = nn.Sequential(self.b1())
        for i, b in enumerate(arch):
            self.net.add_module(f"b{i + 2}", self.block(*b, first_block=(i == 0)))
        self.net.add_module("last", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))

    def b1(self) -> nn.Sequential:
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )

    def block(self, num_residuals: int, num_channels: int, first_block: bool = False) -> nn.Sequential:
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)


class ResNet18(ResNet):
    """ResNet-18: four stages of two residual blocks, 64/128/256/512 channels."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)), lr, num_classes)


class ResNeXtBlock(nn.Module):
    """The ResNeXt block of d2l 8.6.5 (grouped 3x3 convolution in a bottleneck).

    Kept exactly as the book writes it, including ``groups=bot_channels //
    groups``: the book's ``groups`` argument is really the number of channels
    per group, and changing that would change the weights' shapes.
    """

    def __init__(self, num_channels: int, groups: int, bot_mul: float, use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides, padding=1, groups=bot_channels // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        self.conv4: nn.Conv2d | None
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


# --------------------------------------------------------------------------- 8.7 DenseNet


def conv_block(num_channels: int) -> nn.Sequential:
    """BatchNorm, ReLU, 3x3 conv: the unit of a dense block (d2l 8.7)."""
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """``num_convs`` conv blocks, each one's output concatenated to its input along channels."""

    def __init__(self, num_convs: int, num_channels: int):
        super().__init__()
        self.net = nn.Sequential(*(conv_block(num_channels) for _ in range(num_convs)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(num_channels: int) -> nn.Sequential:
    """1x1 conv to ``num_channels`` and a stride-2 average pool: shrinks a dense block's output."""
    return nn.Sequential(
        nn.LazyBatchNorm2d(),
        nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )


class DenseNet(_Net):
    """DenseNet of d2l 8.7: dense blocks of ``arch[i]`` convs with transition blocks between."""

    def __init__(
        self,
        num_channels: int = 64,
        growth_rate: int = 32,
        arch: Sequence[int] = (4, 4, 4, 4),
        lr: float = 0.1,
        num_classes: int = 10,
    ):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add_module(f"dense_blk{i + 1}", DenseBlock(num_convs, growth_rate))
            num_channels += num_convs * growth_rate
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add_module(f"tran_blk{i + 1}", transition_block(num_channels))
        self.net.add_module(
            "last",
            nn.Sequential(
                nn.LazyBatchNorm2d(),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten(),
                nn.LazyLinear(num_classes),
            ),
        )

    def b1(self) -> nn.Sequential:
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )


# --------------------------------------------------------------------------- 8.8 RegNet


class AnyNet(_Net):
    """AnyNet of d2l 8.8: a stem, stages of ResNeXt blocks, and a head."""

    def __init__(
        self,
        arch: Sequence[tuple[int, int, int, float]],
        stem_channels: int,
        lr: float = 0.1,
        num_classes: int = 10,
    ):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(self.stem(stem_channels))
        for i, s in enumerate(arch):
            self.net.add_module(f"stage{i + 1}", self.stage(*s))
        self.net.add_module("head", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))

    def stem(self, num_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.LazyConv2d(num_channels, kernel_size=3, stride=2, padding=1),
            nn.LazyBatchNorm2d(),
            nn.ReLU(),
        )

    def stage(self, depth: int, num_channels: int, groups: int, bot_mul: float) -> nn.Sequential:
        blk = []
        for i in range(depth):
            if i == 0:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv=True, strides=2))
            else:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul))
        return nn.Sequential(*blk)


class RegNetX32(AnyNet):
    """The small RegNetX of d2l 8.8: depths (4, 6), widths (32, 80), 16 channels per group."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        stem_channels, groups, bot_mul = 32, 16, 1
        depths, channels = (4, 6), (32, 80)
        super().__init__(
            ((depths[0], channels[0], groups, bot_mul), (depths[1], channels[1], groups, bot_mul)),
            stem_channels,
            lr,
            num_classes,
        )
