"""What the grader does with any model, the student's or the reference's, and the base of the book's classifiers.

Why apart from :mod:`reference.models`: these helpers (materialise lazy layers, initialise,
summarise the top-level layers, load weights by position) act on any ``nn.Module``, a
student's included, and do not depend on one architecture; ``_Net`` is here so that
:mod:`reference.models` and :mod:`reference.shortcut_models` both derive from it without
importing each other. :mod:`reference.models` re-exports every name, so ``models.materialize``
keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerShape", "apply_init", "init_cnn", "layer_shapes", "load_state_by_order", "materialize", "num_parameters"]


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform initialisation of conv and linear weights (d2l's ``init_cnn``).

    Like the book it tests the exact type, so it only acts on *materialised*
    lazy layers (a ``LazyConv2d`` becomes a ``Conv2d`` after its first call).
    """
    if type(module) in (nn.Linear, nn.Conv2d) and isinstance(module, (nn.Linear, nn.Conv2d)):  # isinstance: for the type checker
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
    for index, ((key, target), value) in enumerate(zip(state.items(), tensors, strict=True)):  # lengths checked above
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"entry {index} ({key}): expected shape {tuple(target.shape)}, got {tuple(value.shape)}")
        new_state[key] = value.to(dtype=target.dtype)
    model.load_state_dict(new_state)
    return model


class _Net(nn.Module):
    """Base of the book's classifiers: keeps ``lr`` and forwards through ``self.net``."""

    #: Set by each subclass's constructor (the book's attribute: a student's weights load into it by order).
    net: nn.Sequential

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__()
        self.lr = lr
        self.num_classes = num_classes

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)
