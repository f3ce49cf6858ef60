"""Models judged by what they compute, with weights and inputs the grader draws itself.

Why: the notebook can rewrite the kernel-side code, so nothing the kernel says
about a model -- its layer names, its parameter count, its own weights, its
losses -- is believed. Instead the grader builds the book's model here, gives it
random weights from a seed drawn for this run (BatchNorm's scale, shift and
running statistics included, so a missing or frozen BatchNorm shows), sends those
weights to the student's model in order, runs both on a random input nobody has
seen before, and compares the outputs computed here with what comes back. A
ReLU named ``Sigmoid`` or a max-pool named ``AvgPool2d`` computes something
else and fails; a forged reply would have to compute the book's network on
fresh numbers, which is writing the network.

Training is judged the same way: the student's model starts from the grader's
initial weights and is trained by the grader's fixed procedure in the kernel;
the weights that come back are loaded into the book's model *here* and must
lower the loss on the training batch and reach, on validation images the
kernel is never given, nearly the accuracy the reference reaches when trained
here from the same start.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from grader.checking.assertions import Fail, expect_tensor
from grader.checking.reference_cache import source_hash, stored
from grader.course.seeds import batch_seed
from grader.kernel.failures import StateMisfit
from grader.kernel.submission import Submission
from reference import models


def run_seed() -> int:
    """A seed drawn for this check only: its inputs and weights are never sent twice."""
    return secrets.randbits(31)


def randomize(model: nn.Module, seed: int) -> list[torch.Tensor]:
    """Give a materialised ``model`` random weights from ``seed`` and return its state in order.

    Convolutions and linear layers get their own default initialisation; BatchNorm gets a scale in
    [0.5, 1.5], a shift, and running statistics away from (0, 1), so that a block without its
    BatchNorm, or with one that is switched off, computes something else.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                assert module.running_mean is not None and module.running_var is not None  # the book's BatchNorm tracks them
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
            elif not isinstance(module, nn.modules.lazy.LazyModuleMixin) and (reset := getattr(module, "reset_parameters", None)):
                reset()
    return [t.detach().clone() for t in model.state_dict().values()]


def misfit_message(label: str, reference: nn.Module, entries: list[tuple[str, tuple[int, ...]]]) -> str:
    """Say where the student's weights stop lining up with the book's, in the student's own names."""
    want = [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    lazy = [key for key, shape in entries if shape == (-1,)]
    if lazy:
        return (
            f"{label}: its `{lazy[0]}` is never initialised: a lazy layer that its forward never uses "
            f"(the book's block uses every layer it creates)"
        )
    # strict=False: the entries both have are compared first; a count that differs is said below.
    for index, ((ref_key, ref_shape), (key, shape)) in enumerate(zip(want, entries, strict=False)):
        if ref_shape != shape:
            return (
                f"{label}: its weights do not line up with the book's: entry {index} of its state, `{key}`, "
                f"has shape {shape} where the book's `{ref_key}` has {ref_shape}"
            )
    if len(entries) != len(want):
        extra = entries[len(want)] if len(entries) > len(want) else None
        tail = (
            f" (the first extra one is `{extra[0]}` {extra[1]})"
            if extra
            else f" (the first one missing is the book's `{want[len(entries)][0]}`)"
        )
        return f"{label}: it has {len(entries)} weight/buffer tensors where the book's model has {len(want)}" + tail
    return f"{label}: its weights do not load into it in order (names {[k for k, _ in entries[:4]]}...)"


def same_function(
    sub: Submission,
    name: str,
    reference: nn.Module,
    input_shape: Sequence[int],
    *,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    modes: Sequence[str] = ("train", "eval"),
    label: str | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Pass only if the student's ``name(*args, **kwargs)`` computes ``reference``'s function.

    Both get the same random weights and input (drawn here); dropout masks come from the same seed.
    Returns details for the report: the seed (to reproduce a verdict) and the parameter count,
    counted here from the reference whose weights the student's model accepted.
    """
    label = label or name
    seed = run_seed()
    X = probe_input(input_shape, seed)
    models.materialize(reference, input_shape)
    state = randomize(reference, seed)
    try:
        run = sub.forward(name, X, args=list(args), kwargs=kwargs or {}, state=state, seed=seed, modes=tuple(modes))
    except StateMisfit as misfit:
        raise Fail(misfit_message(label, reference, misfit.entries), seed=seed) from None
    returned = run.get("state")
    if not isinstance(returned, list) or [tuple(t.shape) for t in returned if isinstance(t, torch.Tensor)] != [
        tuple(t.shape) for t in state
    ]:
        raise Fail(f"{label}: after loading the book's weights its state is not what was loaded", seed=seed)
    outputs = found if isinstance(found := run.get("outputs"), dict) else {}
    for mode in modes:
        reference.train(mode == "train")
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            want = reference(X)
        # the kernel ran each mode with gradients on and under no_grad: the same function either way
        other = f"{mode}, {'under no_grad' if mode == 'train' else 'with gradients'}"
        for key, how in ((mode, f"{mode} mode"), (other, f"{mode} mode {other.split(', ')[1]}")):
            expect_tensor(
                outputs.get(key),
                want,
                f"{label} in {how}, with the book's layers' random weights, on a random {tuple(input_shape)} input (seed {seed})",
                rtol=rtol,
                atol=atol,
            )
    reference.eval()
    return {"seed": seed, "parameters": models.num_parameters(reference), "compared_modes": list(modes)}


def probe_input(shape: Sequence[int], seed: int) -> torch.Tensor:
    """The input a model is compared on: from more than one distribution, so a model cannot recognise the probe
    by its statistics -- the first half of the batch standard normal, the rest uniform in [0, 1) like images."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(tuple(shape), generator=generator)
    if len(shape) >= 2 and shape[0] >= 2:
        X[shape[0] // 2 :] = torch.rand((shape[0] - shape[0] // 2, *shape[1:]), generator=generator)
    return X


def loss_of(model: nn.Module, X: torch.Tensor, y: torch.Tensor, mode: str) -> float:
    model.train(mode == "train")
    with torch.no_grad():
        return F.cross_entropy(model(X), y).item()


def train_here(model: nn.Module, X: torch.Tensor, y: torch.Tensor, procedure: dict[str, Any]) -> list[float]:
    """The grader's fixed procedure, as the kernel runs it (dropout seeded the same way)."""
    optimizer_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[procedure["optimizer"]]
    optimizer = optimizer_cls(model.parameters(), lr=procedure["lr"])
    model.train()
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(procedure["seed"])
        for _ in range(procedure["steps"]):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            optimizer.step()
            losses.append(round(loss.item(), 5))
    return losses


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            correct += int((model(images[start : start + batch]).argmax(dim=1) == labels[start : start + batch]).sum())
    return correct / max(len(labels), 1)


def trains_like_reference(
    sub: Submission,
    name: str,
    build: Callable[[], nn.Module],
    X: torch.Tensor,
    y: torch.Tensor,
    validation: tuple[torch.Tensor, torch.Tensor],
    procedure: dict[str, Any],
    *,
    kwargs: dict[str, Any] | None = None,
    required_fraction: float = 0.7,
    accuracy_margin: float = 0.05,
    timeout: float = 600,
) -> dict[str, Any]:
    """Pass only if the student's model, trained in the kernel from the grader's initial weights by the
    grader's procedure, returns weights that -- in the book's model, here -- lower the training loss by
    ``required_fraction`` of what the reference achieves from the same start, and reach on ``validation``
    (images the kernel never had) at least the reference's accuracy less ``accuracy_margin``.

    The loss before training is computed here from the grader's own initial weights, so a reply cannot
    invent a large starting loss; weights that merely shrink the logits lower no loss and learn nothing.
    """
    seed = batch_seed()
    procedure = {**procedure, "seed": seed}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reference = models.materialize(build(), X.shape)
    initial = [t.detach().clone() for t in reference.state_dict().values()]
    mode = procedure["loss_mode"]
    images, labels = validation
    parts = {
        "model": name,
        "procedure": procedure,
        "kwargs": repr(kwargs),
        "torch": torch.__version__,
        "inputs": [hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest() for t in (X, y, images, labels)],
        "reference": source_hash(Path(models.__file__).parent),
    }

    def train_reference() -> list:
        before = loss_of(reference, X, y, mode)
        curve = train_here(reference, X, y, procedure)
        return [before, loss_of(reference, X, y, mode), curve, accuracy(reference, images, labels)]

    before, ref_after, curve, ref_acc = stored("reference-training", parts, train_reference)
    try:
        run = sub.train(name, X, y, procedure, kwargs=kwargs or {}, state=initial, timeout=timeout)
    except StateMisfit as misfit:
        raise Fail(misfit_message(name, reference, misfit.entries), seed=seed) from None
    student = models.materialize(build(), X.shape)
    try:
        models.load_state_by_order(student, run.get("after") or [])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise Fail(f"{name}'s trained weights do not fit the book's architecture: {exc}", seed=seed) from None
    after = loss_of(student, X, y, mode)
    acc = accuracy(student, images, labels)
    drop, ref_drop = before - after, before - ref_after
    details = {
        "procedure": procedure,
        "student_loss": [round(before, 4), round(after, 4)],
        "reference_loss": [round(before, 4), round(ref_after, 4)],
        "required_fraction": required_fraction,
        "validation_accuracy": round(acc, 4),
        "reference_validation_accuracy": round(ref_acc, 4),
        "validation_images": len(labels),
        "seed": seed,
        # per-step losses for the report's plot; the student's come from the kernel (display only)
        "loss_curves": {"reference": curve, "student": _curve(run.get("losses"))},
    }
    if not drop >= required_fraction * ref_drop:
        raise Fail(
            f"{name}'s loss fell by {drop:.3f} ({before:.3f} -> {after:.3f}) under the fixed procedure, from the "
            f"grader's initial weights; the book's model fell by {ref_drop:.3f} from the same start, and at least "
            f"{required_fraction:.0%} of that is needed",
            **details,
        )
    if acc < ref_acc - accuracy_margin:
        raise Fail(
            f"{name}'s trained weights reach {acc:.1%} on {len(labels)} validation images it never saw; the book's "
            f"model trained the same way from the same start reaches {ref_acc:.1%} (at least "
            f"{ref_acc - accuracy_margin:.1%} is needed)",
            **details,
        )
    details["message"] = (
        f"loss {before:.3f} -> {after:.3f} (book's model {ref_after:.3f}); validation accuracy {acc:.1%} (book's model {ref_acc:.1%})"
    )
    return details


def _curve(values: Any) -> list[float]:
    """A loss curve sent by the kernel, kept only if it is a plain list of finite numbers (it is untrusted)."""
    if not isinstance(values, list) or len(values) > 10_000:
        return []
    return [round(float(v), 5) for v in values if isinstance(v, (int, float)) and abs(v) < 1e30]
