"""Reference models of d2l chapters 7 and 8, in plain PyTorch (no d2l import).

Why these mirror the book so closely: the grader takes a student's trained
weights back *as data* (a list of tensors in ``state_dict`` order) and loads
them into these classes, so every model here keeps the book's constructor
signature, its lazy layers, its ``self.net`` attribute and its exact layer
order. A reordered layer would make a correct student look wrong.

The classes are ``nn.Module`` rather than ``d2l.Classifier``; they keep the
``lr`` argument (stored, unused here) so a call written for the book works.
Lazy layers need one forward pass to get their shapes: use
:func:`materialize` (or :func:`layer_shapes`, which does one).

Every name is importable from here; two modules hold part of them: the
helpers that act on any model (and the classifiers' base) are in
:mod:`reference.model_tools`, ResNet/ResNeXt, DenseNet and AnyNet/RegNet
(d2l 8.6-8.8) in :mod:`reference.shortcut_models`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from reference.model_tools import LayerShape, _Net, apply_init, init_cnn, layer_shapes, load_state_by_order, materialize, num_parameters
from reference.shortcut_models import (
    AnyNet,
    DenseBlock,
    DenseNet,
    RegNetX32,
    Residual,
    ResNet,
    ResNet18,
    ResNeXtBlock,
    conv_block,
    transition_block,
)

__all__ = [
    "AlexNet",
    "AnyNet",
    "BNLeNet",
    "BNLeNetScratch",
    "BatchNorm",
    "DenseBlock",
    "DenseNet",
    "GoogleNet",
    "Inception",
    "LayerShape",
    "LeNet",
    "ModernLeNet",
    "NiN",
    "RegNetX32",
    "ResNeXtBlock",
    "ResNet",
    "ResNet18",
    "Residual",
    "VGG",
    "VGG11_ARCH",
    "apply_init",
    "batch_norm",
    "conv_block",
    "init_cnn",
    "layer_shapes",
    "load_state_by_order",
    "materialize",
    "nin_block",
    "num_parameters",
    "transition_block",
    "vgg_block",
]

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


# --------------------------------------------------------------------------- 7.6 LeNet


def _lenet(activation: type[nn.Module], pool: type[nn.Module], num_classes: int) -> nn.Sequential:
    """LeNet-5's layers with a choice of activation and pooling (the book's and the exercise's)."""
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2),
        activation(),
        pool(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5),
        activation(),
        pool(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120),
        activation(),
        nn.LazyLinear(84),
        activation(),
        nn.LazyLinear(num_classes),
    )


class LeNet(_Net):
    """LeNet-5 as in d2l 7.6: sigmoid activations and average pooling."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = _lenet(nn.Sigmoid, nn.AvgPool2d, num_classes)


class ModernLeNet(_Net):
    """The 7.6 exercise's modernised LeNet: the same layers with max-pooling and ReLU."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = _lenet(nn.ReLU, nn.MaxPool2d, num_classes)


# --------------------------------------------------------------------------- 8.1 AlexNet


class AlexNet(_Net):
    """AlexNet as in d2l 8.1 (single-channel input, 10 classes by default)."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(
            nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(256, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.LazyConv2d(384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.LazyConv2d(256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Flatten(),
            nn.LazyLinear(4096),
            nn.ReLU(),
            nn.Dropout(p=0.5),
            nn.LazyLinear(4096),
            nn.ReLU(),
            nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes),
        )


# --------------------------------------------------------------------------- 8.2 VGG


def vgg_block(num_convs: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` x (3x3 conv, padding 1, ReLU), then a 2x2 max-pool of stride 2."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(_Net):
    """VGG as in d2l 8.2: one ``vgg_block`` per ``(num_convs, out_channels)`` in ``arch``."""

    def __init__(self, arch: Sequence[tuple[int, int]], lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.arch = tuple(tuple(a) for a in arch)
        conv_blks = [vgg_block(num_convs, out_channels) for num_convs, out_channels in arch]
        self.net = nn.Sequential(
            *conv_blks,
            nn.Flatten(),
            nn.LazyLinear(4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.LazyLinear(4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.LazyLinear(num_classes),
        )


# --------------------------------------------------------------------------- 8.3 NiN


def nin_block(out_channels: int, kernel_size, strides, padding) -> nn.Sequential:
    """One conv followed by two 1x1 convs, each with ReLU (d2l 8.3)."""
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding),
        nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1),
        nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1),
        nn.ReLU(),
    )


class NiN(_Net):
    """Network in Network (d2l 8.3): no fully connected layer, global average pooling."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(
            nin_block(96, kernel_size=11, strides=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, kernel_size=5, strides=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            nin_block(384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )


# --------------------------------------------------------------------------- 8.4 GoogLeNet


class Inception(nn.Module):
    """The Inception block (d2l 8.4); ``c1``..``c4`` are the branches' output channels."""

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int):
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class GoogleNet(_Net):
    """GoogLeNet as in d2l 8.4 (the book spells the class ``GoogleNet``)."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(), self.b5(), nn.LazyLinear(num_classes))

    def b1(self) -> nn.Sequential:
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )

    def b2(self) -> nn.Sequential:
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=1),
            nn.ReLU(),
            nn.LazyConv2d(192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )

    def b3(self) -> nn.Sequential:
        return nn.Sequential(
            Inception(64, (96, 128), (16, 32), 32),
            Inception(128, (128, 192), (32, 96), 64),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )

    def b4(self) -> nn.Sequential:
        return nn.Sequential(
            Inception(192, (96, 208), (16, 48), 64),
            Inception(160, (112, 224), (24, 64), 64),
            Inception(128, (128, 256), (24, 64), 64),
            Inception(112, (144, 288), (32, 64), 64),
            Inception(256, (160, 320), (32, 128), 128),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )

    def b5(self) -> nn.Sequential:
        return nn.Sequential(
            Inception(256, (160, 320), (32, 128), 128),
            Inception(384, (192, 384), (48, 128), 128),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )


# --------------------------------------------------------------------------- 8.5 Batch normalization


def batch_norm(
    X: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    moving_mean: torch.Tensor,
    moving_var: torch.Tensor,
    eps: float,
    momentum: float,
    training: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch normalization from scratch, returning ``(Y, new_moving_mean, new_moving_var)``.

    Two deliberate differences from the book's version, both so that it
    agrees with ``nn.BatchNorm1d/2d`` to rounding error:

    * the mode is the explicit ``training`` flag (``module.training``), not
      ``torch.is_grad_enabled()``, so evaluating under ``no_grad`` in train
      mode behaves like PyTorch;
    * the running variance is updated with the *unbiased* batch variance
      (``n / (n - 1)`` times the biased one used for normalising), which is
      what PyTorch stores.
    """
    if not training:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
        return gamma * X_hat + beta, moving_mean, moving_var
    if X.dim() == 2:
        dims: tuple[int, ...] = (0,)
    elif X.dim() == 4:
        dims = (0, 2, 3)
    else:
        raise ValueError(f"batch_norm expects a 2-D or 4-D input, got shape {tuple(X.shape)}")
    n = X.numel() // X.shape[1]
    if n < 2:
        raise ValueError(f"batch_norm in training mode needs more than 1 value per channel, got {tuple(X.shape)}")
    mean = X.mean(dim=dims, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
    X_hat = (X - mean) / torch.sqrt(var + eps)
    with torch.no_grad():
        new_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        unbiased = var * (n / (n - 1))
        new_var = (1.0 - momentum) * moving_var + momentum * unbiased.reshape(moving_var.shape)
    return gamma * X_hat + beta, new_mean, new_var


class BatchNorm(nn.Module):
    """Batch normalization layer built on :func:`batch_norm` (d2l 8.5.3).

    Running statistics are registered *buffers* (the book uses plain
    attributes), so they follow ``.to(device)`` and appear in ``state_dict``
    in the same order as ``nn.BatchNorm2d``'s ``running_mean``/``running_var``.
    """

    #: The running statistics, registered as buffers in ``__init__`` (declared here for the type checker).
    moving_mean: torch.Tensor
    moving_var: torch.Tensor

    def __init__(self, num_features: int, num_dims: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 (fully connected) or 4 (convolutional), got {num_dims}")
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.eps = eps
        self.momentum = momentum
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y, mean, var = batch_norm(
            X,
            self.gamma,
            self.beta,
            self.moving_mean,
            self.moving_var,
            eps=self.eps,
            momentum=self.momentum,
            training=self.training,
        )
        if self.training:
            self.moving_mean.copy_(mean)
            self.moving_var.copy_(var)
        return Y


class BNLeNetScratch(_Net):
    """LeNet with the from-scratch :class:`BatchNorm` after each conv/linear layer (d2l 8.5.4)."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5),
            BatchNorm(6, num_dims=4),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5),
            BatchNorm(16, num_dims=4),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120),
            BatchNorm(120, num_dims=2),
            nn.Sigmoid(),
            nn.LazyLinear(84),
            BatchNorm(84, num_dims=2),
            nn.Sigmoid(),
            nn.LazyLinear(num_classes),
        )


class BNLeNet(_Net):
    """The concise batch-normalised LeNet (d2l 8.5.5), with PyTorch's lazy BatchNorm layers."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5),
            nn.LazyBatchNorm2d(),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5),
            nn.LazyBatchNorm2d(),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120),
            nn.LazyBatchNorm1d(),
            nn.Sigmoid(),
            nn.LazyLinear(84),
            nn.LazyBatchNorm1d(),
            nn.Sigmoid(),
            nn.LazyLinear(num_classes),
        )
