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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

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


# --------------------------------------------------------------------------- helpers


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform initialisation of conv and linear weights (d2l's ``init_cnn``).

    Like the book it tests the exact type, so it only acts on *materialised*
    lazy layers (a ``LazyConv2d`` becomes a ``Conv2d`` after its first call).
    """
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


def materialize(model: nn.Module, input_shape: Sequence[int], device: torch.device | str | None = None) -> nn.Module:
    """Run one dummy batch through ``model`` so its lazy layers get their shapes.

    Done in eval mode and without gradients so BatchNorm running statistics
    are left untouched; the model's training flag is restored afterwards.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(tuple(input_shape), device=device))
    model.train(was_training)
    return model


def apply_init(model: nn.Module, input_shape: Sequence[int], init=init_cnn) -> nn.Module:
    """Materialise, then initialise: the book's ``model.apply_init([X], init_cnn)``."""
    materialize(model, input_shape)
    model.apply(init)
    return model


def num_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (the figure the book prints)."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class LayerShape:
    """One row of a layer summary: which top-level layer and what it outputs."""

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]


def _top_level_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    net = getattr(model, "net", None)
    if isinstance(net, nn.Sequential):
        return list(net.named_children())
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    raise TypeError(f"{type(model).__name__} has no nn.Sequential `net` to summarise")


def layer_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[LayerShape]:
    """Output shape of each top-level layer of ``model.net`` (d2l's ``layer_summary``).

    The grader compares these rows between a student's model and the
    reference, so it reports the first layer where they diverge rather than
    just "wrong output shape". Runs in eval mode, without gradients.
    """
    was_training = model.training
    model.eval()
    rows = []
    with torch.no_grad():
        X = torch.zeros(tuple(input_shape))
        for index, (name, layer) in enumerate(_top_level_layers(model)):
            X = layer(X)
            rows.append(LayerShape(index, name, type(layer).__name__, tuple(X.shape)))
    model.train(was_training)
    return rows


def load_state_by_order(model: nn.Module, tensors: Iterable[torch.Tensor]) -> nn.Module:
    """Load ``tensors`` into ``model.state_dict()`` entries by position.

    A student's attribute names may differ from the book's (``self.conv_1``)
    while the architecture is the same; order and shape are what identify a
    layer. Raises ``ValueError`` naming the first entry that does not fit.
    The model must be materialised first.
    """
    state = model.state_dict()
    tensors = list(tensors)
    if len(tensors) != len(state):
        raise ValueError(f"expected {len(state)} tensors in state_dict order, got {len(tensors)}")
    new_state = {}
    for index, ((key, target), value) in enumerate(zip(state.items(), tensors)):
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"entry {index} ({key}): expected shape {tuple(target.shape)}, got {tuple(value.shape)}")
        new_state[key] = value.to(dtype=target.dtype)
    model.load_state_dict(new_state)
    return model


class _Net(nn.Module):
    """Base of the book's classifiers: keeps ``lr`` and forwards through ``self.net``."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__()
        self.lr = lr
        self.num_classes = num_classes

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)


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


# --------------------------------------------------------------------------- 8.6 ResNet


class Residual(nn.Module):
    """The residual block of d2l 8.6, with an optional 1x1 conv on the shortcut."""

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
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
