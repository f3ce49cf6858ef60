"""HW3's checks (Modern CNNs: d2l 8.3 NiN, 8.4 GoogLeNet, 8.5 batch normalization, 8.7 DenseNet).

One ``check_<question id>(sub)`` or ``check_<question id>(sub, ctx)`` per auto-graded question, written only
against the public check-author API (:mod:`grader.checks`) and :mod:`reference`: the student's code runs in
its kernel on inputs and weights chosen here, and what comes back is compared with the reference here.
Models are judged by the function they compute (``same_function``), with the layer table as the evidence a
failing student reads first; ``batch_norm`` is property-tested with Hypothesis over 2-D and 4-D shapes,
scales, shifts, ``eps`` and momenta, in float64 so that only a wrong formula can make a difference.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from grader.checks import (
    Fail,
    QuestionContext,
    Submission,
    check_training,
    expect_tensor,
    property_check,
    run_seed,
    same_architecture,
    same_function,
)
from reference import models

#: Options of HW3's own that config.toml's questions may carry (the grader's own are in grader/course/question_options.py).
OPTIONS = {"running_steps": "int"}

#: Hypothesis examples per batch_norm property (each is one kernel round trip, or ``running_steps`` of them).
EXAMPLES = 25

#: float64 throughout: a correct batch_norm differs from the reference by rounding alone.
BN_RTOL, BN_ATOL = 1e-6, 1e-7


# --------------------------------------------------------------------------- architectures


def _architecture(sub: Submission, name: str, reference, table_shape, function_shape, **options) -> dict:
    """:func:`same_architecture`, the from-scratch BatchNorm layers given random state first (see below)."""
    return same_architecture(
        sub,
        name,
        reference,
        table_shape,
        function_shape,
        prepare=lambda model: _randomize_scratch_batch_norms(model, run_seed()),
        **options,
    )


def _randomize_scratch_batch_norms(model: torch.nn.Module, seed: int) -> None:
    """Random scale, shift and running statistics for the from-scratch BatchNorm layers of ``model``.

    ``same_function`` randomizes PyTorch's own BatchNorm layers; the scratch ones would keep gamma = 1, beta = 0,
    mean 0 and variance 1, under which a layer that drops gamma and beta, or never reads its running
    statistics, computes the right numbers. These values travel to the student's model with the rest of the state.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, models.BatchNorm):
                shape = module.gamma.shape
                module.gamma.copy_(0.5 + torch.rand(shape, generator=generator))
                module.beta.copy_(0.2 * torch.randn(shape, generator=generator))
                module.moving_mean.copy_(0.2 * torch.randn(shape, generator=generator))
                module.moving_var.copy_(0.05 + 0.25 * torch.rand(shape, generator=generator))


# --------------------------------------------------------------------------- 8.3 NiN


def check_nin_block(sub: Submission):
    details = {}
    for args, shape in (((8, 3, 2, 1), (2, 3, 9, 9)), ((4, 5, 1, 2), (2, 2, 8, 7))):
        label = f"nin_block{args}"
        details[label] = same_function(sub, "nin_block", models.nin_block(*args), shape, args=args, label=label)
    return details


def check_nin_arch(sub: Submission):
    # 67x67 is about the smallest input NiN's three max-pools accept: the function at a fraction of the cost.
    # at 131x131 the map the global pooling averages is 3x3: a pooling that equals it only at 1x1 computes otherwise
    return _architecture(sub, "NiN", models.NiN(), (1, 1, 224, 224), (2, 1, 131, 131))


# --------------------------------------------------------------------------- 8.4 GoogLeNet


def check_inception(sub: Submission):
    """Branch widths all different, so a branch computed or concatenated out of place changes the output."""
    details = {}
    for args, shape in (((4, (3, 6), (2, 5), 3), (2, 5, 7, 7)), ((2, (4, 3), (3, 7), 5), (1, 3, 6, 9))):
        c1, c2, c3, c4 = args
        label = f"Inception{args} ({c1} + {c2[1]} + {c3[1]} + {c4} = {c1 + c2[1] + c3[1] + c4} output channels)"
        details[f"Inception{args}"] = same_function(sub, "Inception", models.Inception(*args), shape, args=args, label=label)
    return details


# --------------------------------------------------------------------------- 8.5 batch normalization


@st.composite
def bn_case(draw, training: bool | None = None):
    """One batch_norm call: a 2-D (batch, features) or 4-D (batch, channels, h, w) input with its statistics."""
    four_d = draw(st.booleans())
    channels = draw(st.integers(1, 4))
    if four_d:
        batch, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        if batch * h * w < 2:
            batch = 2
        shape, stat_shape = (batch, channels, h, w), (1, channels, 1, 1)
    else:
        shape, stat_shape = (draw(st.integers(2, 6)), channels), (1, channels)
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    return {
        "X": (scale * torch.randn(shape, generator=g, dtype=torch.float64) + draw(st.floats(-3, 3))),
        "gamma": 0.5 + torch.rand(stat_shape, generator=g, dtype=torch.float64),
        "beta": torch.randn(stat_shape, generator=g, dtype=torch.float64),
        "moving_mean": torch.randn(stat_shape, generator=g, dtype=torch.float64),
        "moving_var": 0.5 + torch.rand(stat_shape, generator=g, dtype=torch.float64),
        "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1])),
        "momentum": draw(st.sampled_from([0.1, 0.0, 1.0]) | st.floats(0.01, 0.99)),
        "training": draw(st.booleans()) if training is None else training,
        "seed": seed,
    }


def _show(case: dict) -> str:
    return (
        f"X of shape {tuple(case['X'].shape)}, eps={case['eps']:g}, momentum={case['momentum']:g}, "
        f"training={case['training']} (inputs drawn with seed {case['seed']})"
    )


_ARGS = ("X", "gamma", "beta", "moving_mean", "moving_var", "eps", "momentum", "training")


def _batch_norm(sub: Submission, case: dict) -> tuple:
    """The student's ``batch_norm`` on ``case`` (positional arguments: parameter names are the student's own)."""
    got = sub.call("batch_norm", *(case[a] for a in _ARGS))
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise Fail(f"batch_norm should return the tuple (Y, moving_mean, moving_var), got {str(got)[:120]}")
    return tuple(got)


def _reference(case: dict) -> tuple:
    return models.batch_norm(*(case[a] for a in _ARGS))


def check_batch_norm_forward(sub: Submission):
    def same(case):
        Y = _batch_norm(sub, case)[0]
        mode = "training" if case["training"] else "evaluation"
        statistics = "the batch's mean and biased variance" if case["training"] else "moving_mean and moving_var"
        expect_tensor(Y, _reference(case)[0], f"Y of batch_norm in {mode} mode (normalized with {statistics})", rtol=BN_RTOL, atol=BN_ATOL)

    property_check("batch_norm", bn_case(), same, examples=EXAMPLES, show=_show)


def check_batch_norm_running(sub: Submission, ctx: QuestionContext):
    steps = int(ctx.options.get("running_steps", 4))

    @st.composite
    def runs(draw):
        first = draw(bn_case(training=True))
        g = torch.Generator().manual_seed(first["seed"] + 1)
        shift = [draw(st.floats(-2, 2)) for _ in range(steps - 1)]  # later batches elsewhere: the estimates must move
        batches = [first["X"]] + [torch.randn(first["X"].shape, generator=g, dtype=torch.float64) * 2 + s for s in shift]
        return {**first, "batches": batches}

    def same(case):
        mine = theirs = (case["moving_mean"], case["moving_var"])
        for step, X in enumerate(case["batches"], start=1):
            _, *theirs = _batch_norm(sub, {**case, "X": X, "moving_mean": theirs[0], "moving_var": theirs[1]})
            _, *mine = _reference({**case, "X": X, "moving_mean": mine[0], "moving_var": mine[1]})
            for label, got, want in (("moving_mean", theirs[0], mine[0]), ("moving_var", theirs[1], mine[1])):
                hint = "" if label == "moving_mean" else " (updated with the unbiased batch variance, m/(m-1) times the biased one)"
                expect_tensor(
                    got,
                    want,
                    f"{label} after training step {step} of {steps} with momentum {case['momentum']:g}: "
                    f"(1 - momentum) * {label} + momentum * the batch's statistic{hint}",
                    rtol=BN_RTOL,
                    atol=BN_ATOL,
                )

    property_check("batch_norm running statistics", runs(), same, examples=EXAMPLES, show=_show)
    return {"steps": steps}


def check_batch_norm_grad(sub: Submission):
    """Backpropagate a random cotangent through the student's batch_norm (training mode) and compare the gradients.

    Only autograd sees a defect here (statistics from ``X.detach()``): the forward values are right.
    """

    def same(case):
        g = torch.Generator().manual_seed(case["seed"] + 2)
        cotangent = torch.randn(case["X"].shape, generator=g, dtype=torch.float64)
        got = sub.gradient("batch_norm", *(case[a] for a in _ARGS), wrt=(0, 1, 2), output=0, cotangent=cotangent)
        leaves = [case[a].clone().requires_grad_(True) for a in ("X", "gamma", "beta")]
        Y = models.batch_norm(*leaves, *(case[a] for a in _ARGS[3:]))[0]
        want = torch.autograd.grad(Y, leaves, grad_outputs=cotangent)
        grads = got.get("grads") if isinstance(got, dict) else None
        if not isinstance(grads, list) or len(grads) != 3:
            raise Fail("batch_norm's Y carries no gradient back to X, gamma and beta (is it computed from detached tensors?)")
        for label, grad, expected in zip(("X", "gamma", "beta"), grads, want, strict=True):
            if grad is None:
                raise Fail(f"batch_norm's Y does not depend on {label} through autograd (no gradient reaches it)")
            expect_tensor(
                grad,
                expected,
                f"the gradient of sum(Y * G) with respect to {label} (G random, training mode; "
                "the batch statistics must be computed from X itself, not from a detached copy)",
                rtol=1e-5,
                atol=1e-6,
            )

    property_check("batch_norm gradients", bn_case(training=True), same, examples=EXAMPLES, show=_show)


def check_batchnorm_layer(sub: Submission):
    """The layer, with random gamma, beta and running statistics: training mode (which updates them), then evaluation."""
    details = {}
    for args, shape in (((3, 2), (4, 3)), ((2, 4), (2, 2, 2, 2))):  # few values per channel: m/(m-1) is far from 1
        reference = models.BatchNorm(*args)
        _randomize_scratch_batch_norms(reference, run_seed())
        label = f"BatchNorm{args} on a {shape} input"
        details[f"BatchNorm{args}"] = same_function(sub, "BatchNorm", reference, shape, args=args, label=label, rtol=1e-4, atol=1e-5)
    return details


def check_bn_lenet_arch(sub: Submission):
    """A batch of 2, so that the running variance's unbiased correction (m / (m - 1) = 2 in the fully connected
    BatchNorms) changes the evaluation output by about 1e-3, and a tolerance 20 times below that: measured, the
    book's arithmetic and ``torch.var_mean``/``rsqrt`` differ by at most 3e-6 on these logits."""
    return _architecture(sub, "BNLeNetScratch", models.BNLeNetScratch(), (2, 1, 28, 28), (2, 1, 28, 28), rtol=1e-4, atol=1e-5)


def check_bn_lenet_train(sub: Submission, ctx: QuestionContext):
    return check_training(sub, ctx, "BNLeNetScratch", models.BNLeNetScratch)


# --------------------------------------------------------------------------- 8.7 DenseNet


def check_conv_block(sub: Submission):
    return {
        f"conv_block({c})": same_function(sub, "conv_block", models.conv_block(c), shape, args=(c,), label=f"conv_block({c})")
        for c, shape in ((5, (3, 4, 6, 6)), (2, (2, 1, 5, 3)))
    }


def check_dense_block(sub: Submission):
    details = {}
    for args, shape in (((2, 3), (2, 4, 5, 5)), ((3, 2), (2, 1, 4, 6))):
        grown = shape[1] + args[0] * args[1]
        label = f"DenseBlock{args} on {shape[1]} channels (it adds {args[0]} x {args[1]}: {grown} channels out)"
        details[f"DenseBlock{args}"] = same_function(sub, "DenseBlock", models.DenseBlock(*args), shape, args=args, label=label)
    return details


def check_transition_block(sub: Submission):
    return {
        f"transition_block({c})": same_function(
            sub, "transition_block", models.transition_block(c), shape, args=(c,), label=f"transition_block({c}) on a {shape} input"
        )
        for c, shape in ((3, (2, 6, 6, 6)), (5, (2, 4, 5, 7)))
    }


#: A narrower DenseNet, to check that the constructor's arguments are used (not the defaults written in).
DENSENET_SMALL = {"num_channels": 16, "growth_rate": 8, "arch": (2, 3)}


def check_densenet_arch(sub: Submission):
    details = _architecture(sub, "DenseNet", models.DenseNet(), (1, 1, 96, 96), (2, 1, 96, 96))  # its last map is 3x3
    narrow = models.DenseNet(**DENSENET_SMALL)
    details["narrow"] = same_function(
        sub,
        "DenseNet",
        narrow,
        (2, 1, 24, 24),  # last map 3x3
        kwargs=DENSENET_SMALL,
        label=f"DenseNet({', '.join(f'{k}={v}' for k, v in DENSENET_SMALL.items())})",
    )
    return details


def check_densenet_train(sub: Submission, ctx: QuestionContext):
    return check_training(sub, ctx, "DenseNet", models.DenseNet)
