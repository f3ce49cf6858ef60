"""HW2's checks, one ``check_<question id>(submission)`` per auto-graded question.

Each check calls the student's code through ``submission`` (inputs are
chosen here, outputs come back as data) and compares with ``reference``.
A check passes by returning (optionally a dict of details for the report)
and fails by raising ``Fail`` -- see ``grader.checking``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from hypothesis import strategies as st
from torch.nn import functional as F

from grader.bridge import Missing, Module, StudentError, Submission
from grader.checking import Fail, ForTA, NotGraded, answered, expect_equal, expect_tensor, property_check, tensors
from grader.data import fixed_batch, training_images, validation_accuracy
from grader.stored import source_hash, stored
from grader.thresholds import calibrated_sizes, calibration_for, threshold_for
from reference import claims, models, ops

BOOK_X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
BOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
BOOK_X2 = torch.stack((BOOK_X, BOOK_X + 1))
BOOK_K2 = torch.stack((BOOK_K, BOOK_K + 1))
EXAMPLES = 30


def _shape(t) -> str:
    return "x".join(str(s) for s in t.shape)


# --------------------------------------------------------------------------- strategies


@st.composite
def image_and_kernel(draw, channels_in: int | None = None, channels_out: int | None = None, one_by_one: bool = False):
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = (1, 1) if one_by_one else (draw(st.integers(1, h)), draw(st.integers(1, w)))
    x_shape = (h, w) if channels_in is None else (channels_in, h, w)
    k_shape = (kh, kw) if channels_in is None else (channels_in, kh, kw)
    if channels_out is not None:
        k_shape = (channels_out, *k_shape)
    return draw(tensors(x_shape)), draw(tensors(k_shape))


@st.composite
def pooling_case(draw):
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    window = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    return draw(tensors((h, w))), window, draw(st.sampled_from(["max", "avg"]))


def _show_pair(case) -> str:
    X, K = case
    return f"X = {X.tolist()}, K = {K.tolist()}"


# --------------------------------------------------------------------------- 7.2


def _matches_reference(sub: Submission, name: str, reference, cases, book=None) -> None:
    """The student's ``name(X, K)`` equals ``reference`` on the book's example and on generated cases."""
    f = sub.function(name)
    if book is not None:
        expect_tensor(f(*book), reference(*book), f"{name} on the book's example")

    def same(case):
        X, K = case
        expect_tensor(f(X, K), reference(X, K), f"{name}(X {_shape(X)}, K {_shape(K)})")

    property_check(name, cases, same, examples=EXAMPLES, show=_show_pair)


def check_corr2d(sub: Submission):
    _matches_reference(sub, "corr2d", ops.corr2d, image_and_kernel(), book=(BOOK_X, BOOK_K))


def check_conv2d_layer(sub: Submission):
    for kernel_size, X in (((1, 2), torch.arange(12.0).reshape(3, 4)), ((2, 3), torch.linspace(-1, 1, 30).reshape(5, 6))):
        run = sub.forward("Conv2D", X, args=[kernel_size], modes=("eval",))
        params = dict(zip(run["keys"], run["state"]))
        if "weight" not in params or "bias" not in params:
            raise Fail(f"Conv2D({kernel_size}) should have parameters `weight` and `bias`, found {sorted(params)}")
        weight, bias = params["weight"], params["bias"]
        if tuple(weight.shape) != kernel_size:
            raise Fail(f"Conv2D({kernel_size}).weight should have shape {kernel_size}, got {tuple(weight.shape)}")
        if bias.numel() != 1:
            raise Fail(f"Conv2D({kernel_size}).bias should have 1 element, got shape {tuple(bias.shape)}")
        expect_tensor(run["outputs"]["eval"], ops.corr2d(X, weight) + bias, f"Conv2D({kernel_size}) on a {_shape(X)} input")


def _edge_image() -> torch.Tensor:
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    return X


EDGE_K = torch.tensor([[1.0, -1.0]])


def _candidates(sub: Submission, key: str, wanted: str) -> list[dict]:
    """The cells an ``every_cell`` snapshot recorded (see the config); none: status ``missing``."""
    try:
        found = sub.values(key).get("candidates") or []
    except Missing:
        found = []
    if not found:
        raise NotGraded("missing", f"no cell of the notebook leaves {wanted}")
    return found


def _raise_cell_error(candidate: dict, subject: str) -> None:
    """The graded cell raised: its values are what an unfinished cell left, so say so as before."""
    if candidate.get("cell_error"):
        ename, _, evalue = str(candidate["cell_error"]).partition(": ")
        raise StudentError(subject, ename, evalue, candidate.get("cell"))


def _equal(value, want: torch.Tensor) -> bool:
    return (isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(want.shape)
            and bool(torch.equal(value.detach().to(torch.float64), want.to(torch.float64))))  # fmt: skip


def _cells(cells: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(c) for c in cells[:limit])
    return ("cell " if len(cells) == 1 else "cells ") + shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _graded_note(fail: Fail, note: str, details: dict) -> Fail:
    return Fail(f"{fail.message} [{note}]", **{**fail.details, **details})


def check_edge_detect(sub: Submission):
    candidates = _candidates(sub, "edge_detect", "tensors `X`, `K` and `Y` with `Y = corr2d(X, K)`")
    image = _edge_image()
    on_book = [c for c in candidates if _equal(c["values"]["X"], image) and _equal(c["values"]["K"], EDGE_K)]
    if on_book:  # a cell whose source reads `Y = corr2d(X, K)` is preferred, else the latest
        chosen = ([c for c in on_book if c.get("hint")] or on_book)[-1]
        why = "the book's 6x8 edge image and K = [[1, -1]]"
    else:
        sized = [c for c in candidates if tuple(c["values"]["X"].shape) == (6, 8)]
        chosen = (sized or candidates)[0]
        why = (f"the first cell that computes Y{' from a 6x8 X' if sized else ''}: "
               "none computes it on the book's 6x8 edge image with K = [[1, -1]]")
    cell = chosen["cell"]
    others = [c for c in candidates if c is not chosen]
    note = f"graded the values after cell {cell} ({why})"
    book_ids = {id(c) for c in on_book}  # identity: the candidates hold tensors, which `in` cannot compare
    again = [c["cell"] for c in others if id(c) in book_ids]
    elsewhere = [c["cell"] for c in others if id(c) not in book_ids]
    if again:
        note += f"; {_cells(again)} also compute{'s' if len(again) == 1 else ''} Y on the book's inputs"
    if elsewhere:
        note += f"; {_cells(elsewhere)} compute{'s' if len(elsewhere) == 1 else ''} Y on other inputs"
    details = {"snapshot_cell": cell, "snapshot_reason": why, "candidate_cells": [c["cell"] for c in candidates]}
    _raise_cell_error(chosen, "the cell that computes `Y = corr2d(X, K)`")
    X, K, Y = chosen["values"]["X"], chosen["values"]["K"], chosen["values"]["Y"]
    try:
        expect_tensor(X, image, "X (6x8, columns 2-5 zero)")
        expect_tensor(K, EDGE_K, "K")
        expect_tensor(Y, ops.corr2d(image, EDGE_K), "Y = corr2d(X, K) (1 in column 1, -1 in column 5)")
    except Fail as fail:
        raise _graded_note(fail, note, details) from None
    transposed = sub.call("corr2d", image.t(), EDGE_K)
    expect_tensor(transposed, torch.zeros((8, 5)), "corr2d(X.t(), K) (a vertical edge detector sees nothing)")
    return {**details, **({"message": note[0].upper() + note[1:]} if others else {})}


LEARN_KERNEL_WANTED = ("a 1-in, 1-out convolution with a (1, 2) kernel bound to a name, e.g. "
                       "`conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)` (a lazy one counts once it has seen an input)")  # fmt: skip


def check_learn_kernel(sub: Submission):
    candidates = _candidates(sub, "learn_kernel", LEARN_KERNEL_WANTED)
    trained = [c for c in candidates if c.get("trained")]
    if not trained:
        last = candidates[-1]
        raise Fail(f"`{last['name']}` (cell {last['cell']}) is a 1-in, 1-out convolution with a (1, 2) kernel, but no cell "
                   f"trains it: its weight never changes after the cell that builds it",
                   snapshot_cell=last["cell"], snapshot_reason=last.get("reason", ""))  # fmt: skip
    chosen = trained[-1]
    name, cell = chosen["name"], chosen["cell"]
    why = f"where `{name}` was trained: {chosen.get('reason', '')}"
    note = f"graded `{name}`'s weight after cell {cell}, {why}"
    earlier = sorted({c["cell"] for c in trained} - {cell})  # one module under two names is one cell
    if earlier:
        note += f"; {_cells(earlier)} also train{'s' if len(earlier) == 1 else ''} a (1, 2) kernel; the last training is graded"
    details = {"snapshot_cell": cell, "snapshot_reason": why, "candidate_cells": sorted({c["cell"] for c in trained})}
    _raise_cell_error(chosen, f"the cell that trains `{name}`")
    weight = chosen["values"]["weight"]
    if not isinstance(weight, torch.Tensor) or weight.numel() != 2:
        raise Fail(f"expected {name}.weight with 2 entries after the training loop, got {weight!r:.80} [{note}]", **details)
    learned = weight.reshape(-1).to(torch.float64)
    target = torch.tensor([1.0, -1.0], dtype=torch.float64)
    if not bool(((learned - target).abs() <= 0.2).all()):
        raise Fail(f"the learned kernel {[round(v, 4) for v in learned.tolist()]} is not within 0.2 of [1, -1] [{note}]",
                   learned=learned.tolist(), **details)  # fmt: skip
    return {"learned": [round(v, 4) for v in learned.tolist()], **details,
            **({"message": note[0].upper() + note[1:]} if len({c["cell"] for c in candidates}) > 1 else {})}  # fmt: skip


# --------------------------------------------------------------------------- 7.3


@st.composite
def conv_layer_case(draw):
    n_h, n_w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    p_h, p_w = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    k_h, k_w = draw(st.integers(1, n_h + 2 * p_h)), draw(st.integers(1, n_w + 2 * p_w))
    s_h, s_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n_h, n_w), (k_h, k_w), (p_h, p_w), (s_h, s_w)


def check_comp_conv2d(sub: Submission):
    comp_conv2d = sub.function("comp_conv2d")
    book = [((3, 3), (1, 1), (1, 1), (8, 8)), ((5, 3), (2, 1), (1, 1), (8, 8)),
            ((3, 3), (1, 1), (2, 2), (4, 4)), ((3, 5), (0, 1), (3, 4), (2, 2))]  # fmt: skip

    def shape_of(n, k, p, s):
        layer = Module("LazyConv2d", out_channels=1, kernel_size=list(k), padding=list(p), stride=list(s))
        Y = comp_conv2d(layer, torch.rand(n))
        if not isinstance(Y, torch.Tensor):
            raise Fail(f"comp_conv2d should return a tensor, got {Y!r:.80}")
        return tuple(Y.shape)

    for k, p, s, expected in book:
        expect_equal(shape_of((8, 8), k, p, s), expected, f"comp_conv2d with kernel {k}, padding {p}, stride {s} on 8x8")

    def same(case):
        n, k, p, s = case
        want = ops.output_shape(n, k, tuple(2 * v for v in p), s)
        expect_equal(shape_of(n, k, p, s), want, f"comp_conv2d shape for input {n}, kernel {k}, padding {p}, stride {s}")

    property_check("comp_conv2d", conv_layer_case(), same, examples=20)


def check_ex_output_shape(sub: Submission):
    taken = sub.values("output_shape")
    shape = answered(taken["shape"], "ANSWER_OUTPUT_SHAPE")
    answered(taken["formula"], "ANSWER_OUTPUT_SHAPE_FORMULA")
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
    expect_equal(shape, (2, 2), "ANSWER_OUTPUT_SHAPE for an 8x8 input, kernel (3, 5), padding (0, 1), stride (3, 4)")
    verdict = claims.equivalent(taken["formula"], claims.OUTPUT_SHAPE_FORMULA, "nkps", claims.OUTPUT_SHAPE_DOMAIN)
    if not verdict:
        raise Fail(f"ANSWER_OUTPUT_SHAPE_FORMULA: {verdict.reason}", method=verdict.method, counterexample=verdict.counterexample)
    return {"formula": verdict.answer, "method": verdict.method}


# --------------------------------------------------------------------------- 7.4


def check_corr2d_multi_in(sub: Submission):
    cases = st.integers(1, 3).flatmap(lambda c: image_and_kernel(channels_in=c))
    _matches_reference(sub, "corr2d_multi_in", ops.corr2d_multi_in, cases, book=(BOOK_X2, BOOK_K2))


def check_corr2d_multi_in_out(sub: Submission):
    K3 = torch.stack((BOOK_K2, BOOK_K2 + 1, BOOK_K2 + 2), 0)
    cases = st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(lambda c: image_and_kernel(c[0], c[1]))
    _matches_reference(sub, "corr2d_multi_in_out", ops.corr2d_multi_in_out, cases, book=(BOOK_X2, K3))


def check_conv1x1(sub: Submission):
    cases = st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(lambda c: image_and_kernel(c[0], c[1], one_by_one=True))
    _matches_reference(sub, "corr2d_multi_in_out_1x1", ops.corr2d_multi_in_out, cases)


def check_ex_composed_kernel(sub: Submission):
    formula = answered(sub.values("composed_kernel")["formula"], "ANSWER_COMPOSED_KERNEL")
    verdict = claims.equivalent(formula, "k1 + k2 - 1", ["k1", "k2"])
    if not verdict:
        raise Fail(f"ANSWER_COMPOSED_KERNEL: {verdict.reason}", method=verdict.method, counterexample=verdict.counterexample)
    return {"formula": verdict.answer, "method": verdict.method}


# --------------------------------------------------------------------------- 7.5


def check_pool2d(sub: Submission):
    pool2d = sub.function("pool2d")
    expect_tensor(pool2d(BOOK_X, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]), "pool2d(X, (2, 2)) on the book's example")
    expect_tensor(pool2d(BOOK_X, (2, 2), "avg"), torch.tensor([[2.0, 3.0], [5.0, 6.0]]),
                  "pool2d(X, (2, 2), 'avg') on the book's example")  # fmt: skip

    def same(case):
        X, window, mode = case
        expect_tensor(pool2d(X, window, mode), ops.pool2d(X, window, mode), f"pool2d(X {_shape(X)}, {window}, {mode!r})")

    property_check("pool2d", pooling_case(), same, examples=EXAMPLES,
                   show=lambda c: f"X = {c[0].tolist()}, pool_size = {c[1]}, mode = {c[2]!r}")  # fmt: skip


# --------------------------------------------------------------------------- architectures


def _compare_layers(sub: Submission, name: str, reference, input_shape, kwargs=None) -> dict:
    got = sub.summary(name, input_shape, kwargs=kwargs or {})
    want = models.layer_shapes(reference, input_shape)
    rows = [{"layer": i, "kind": r["kind"], "shape": r["shape"]} for i, r in enumerate(got["rows"])]
    table = [
        {"layer": i, "student": rows[i] if i < len(rows) else None, "reference": {"kind": w.kind, "shape": list(w.shape)}}
        for i, w in enumerate(want)
    ]
    for i, w in enumerate(want):
        if i >= len(rows):
            raise Fail(f"{name}: expected {len(want)} layers in `net`, got {len(rows)}", layers=table)
        if tuple(rows[i]["shape"]) != w.shape:
            raise Fail(f"{name}: layer {i} ({rows[i]['kind']}) outputs {tuple(rows[i]['shape'])}, expected {w.shape} "
                       f"(reference {w.kind})", layers=table, first_diverging_layer=i)  # fmt: skip
    if len(rows) != len(want):
        raise Fail(f"{name}: expected {len(want)} layers in `net`, got {len(rows)}", layers=table)
    expected_params = models.num_parameters(reference)
    if got["parameters"] != expected_params:
        raise Fail(f"{name}: {got['parameters']:,} parameters, expected {expected_params:,}", layers=table)
    return {"layers": table, "parameters": got["parameters"], "module_types": got["module_types"]}


def check_lenet_arch(sub: Submission):
    details = _compare_layers(sub, "LeNet", models.LeNet(), (1, 1, 28, 28))
    kinds = [row["student"]["kind"] for row in details["layers"]]
    if kinds.count("Sigmoid") != 4 or kinds.count("AvgPool2d") != 2:
        raise Fail(f"LeNet should use sigmoid activations and average pooling, found layers {kinds}", **details)
    return details


def check_vgg_block(sub: Submission):
    for num_convs, out_channels, shape in ((1, 4, (1, 3, 8, 10)), (2, 8, (2, 2, 6, 6))):
        got = sub.summary("vgg_block", shape, args=[num_convs, out_channels])
        reference = models.vgg_block(num_convs, out_channels)
        want = [row.kind for row in models.layer_shapes(reference, shape)]
        kinds = [row["kind"] for row in got["rows"]]
        expect_equal(kinds, want, f"vgg_block({num_convs}, {out_channels}) layers")
        expected_shape = (shape[0], out_channels, shape[2] // 2, shape[3] // 2)
        expect_equal(tuple(got["rows"][-1]["shape"]), expected_shape, f"vgg_block({num_convs}, {out_channels}) output on {shape}")
        expect_equal(got["parameters"], models.num_parameters(reference),
                     f"vgg_block({num_convs}, {out_channels}) parameter count (3x3 kernels)")  # fmt: skip


def check_vgg_arch(sub: Submission):
    return _compare_layers(sub, "VGG", models.VGG(models.VGG11_ARCH), (1, 1, 224, 224), kwargs={"arch": models.VGG11_ARCH})


def check_residual(sub: Submission):
    X = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for args, expected in (((3,), (4, 3, 6, 6)), ((6, True, 2), (4, 6, 3, 3))):
        run = sub.forward("Residual", X, args=list(args))
        reference = models.materialize(models.Residual(*args), X.shape)
        try:
            models.load_state_by_order(reference, run["state"])
        except ValueError as exc:
            raise Fail(f"Residual{args}: its parameters do not match the book's block: {exc}") from None
        for mode in ("train", "eval"):
            reference.train(mode == "train")
            with torch.no_grad():
                want = reference(X)
            got = run["outputs"][mode]
            if isinstance(got, torch.Tensor) and tuple(got.shape) != expected:
                raise Fail(f"Residual{args} on (4, 3, 6, 6) should give {expected}, got {tuple(got.shape)}")
            expect_tensor(got, want, f"Residual{args} output in {mode} mode", rtol=1e-4, atol=1e-5)
        outputs[str(args)] = expected
    return {"shapes": outputs}


def check_resnet18_arch(sub: Submission):
    return _compare_layers(sub, "ResNet18", models.ResNet18(), (1, 1, 96, 96))


# --------------------------------------------------------------------------- training


def _loss(model, X, y, mode: str) -> float:
    model.train(mode == "train")
    with torch.no_grad():
        return F.cross_entropy(model(X), y).item()


def _train_reference(name: str, question, build, X, y, procedure) -> tuple[float, float, list[float]]:
    """The reference's loss before and after the procedure, and per step.

    Deterministic, so stored once for the whole batch (not once per grading process), under
    everything it depends on: the question's settings, the input batch, torch and the reference code.
    """
    parts = {"model": name, "question": dict(question), "procedure": procedure, "torch": torch.__version__,
             "inputs": [hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest() for t in (X, y)],
             "reference": source_hash(Path(models.__file__).parent)}  # fmt: skip
    before, after, curve = stored("reference-training", parts, lambda: _train_reference_once(build, X, y, procedure))
    return before, after, curve  # a tuple again (JSON gives a list)


def _train_reference_once(build, X, y, procedure) -> tuple[float, float, list[float]]:
    torch.manual_seed(procedure["seed"])
    model = models.materialize(build(), X.shape)
    first = _loss(model, X, y, procedure["loss_mode"])
    optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[procedure["optimizer"]](model.parameters(), lr=procedure["lr"])
    model.train()
    losses = []
    for _ in range(procedure["steps"]):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(round(loss.item(), 5))
    return first, _loss(model, X, y, procedure["loss_mode"]), losses


def _check_trained_model(sub: Submission, name: str, build):
    """Full budget: the model the notebook trained itself, evaluated here on validation images."""
    q = sub.question
    taken = sub.values(q["full_snapshot"])
    size = q["full_input_size"]
    model = models.materialize(build(taken), (1, 1, size, size))
    try:
        models.load_state_by_order(model, taken["state"])
    except ValueError as exc:
        raise Fail(f"the trained {name} does not fit the book's architecture: {exc}") from None
    count = sub.assignment.budgets.get("full", {}).get("val_size", 2000)
    accuracy, images = validation_accuracy(model, str(sub.data_dir), size, count)
    trained_on = training_images(str(sub.data_dir))
    details = {"validation_accuracy": round(accuracy, 4), "images": images, "train_images": trained_on,
               "trained_in_cell": taken.get("__cell__")}  # fmt: skip
    threshold = threshold_for(q["full_threshold"], trained_on)
    if threshold is None:
        sizes = ", ".join(f"{n:,}" for n in calibrated_sizes(q["full_threshold"]))
        raise ForTA(f"{accuracy:.1%} validation accuracy after training on {trained_on:,} images; thresholds exist "
                    f"only for {sizes} images, so a TA decides", **details)  # fmt: skip
    details.update(threshold=threshold.accuracy, threshold_calibrated_for=threshold.train_images)
    # What runs of the solution reached on the size the threshold was set for: the student sees the bar's evidence.
    record = calibration_for(q.get("full_calibration"), threshold.train_images) if threshold.train_images else None
    reach = ""
    if record is not None and record.train_images == threshold.train_images:
        details["calibration"] = record.summary()
        reach = f"correct notebooks reach {record.min * 100:.1f}–{record.max:.1%} ({record.n} runs of the solution)"
    needed = f"at least {threshold.accuracy:.0%} is needed"
    if accuracy < threshold.accuracy:
        raise Fail(f"your trained {name} reaches {accuracy:.1%} validation accuracy; "
                   + (f"{reach}, and {needed}" if reach else needed), **details)  # fmt: skip
    details["message"] = f"validation accuracy {accuracy:.1%} ({reach + '; ' if reach else ''}threshold {threshold.accuracy:.0%})"
    return details


def _check_training(sub: Submission, name: str, build, kwargs=None, build_trained=None):
    q = sub.question
    arch = sub.results.get(q["architecture"])
    if arch is not None and arch.status != "pass":
        message = f"not trained: the architecture question `{q['architecture']}` did not pass ({arch.status})"
        if arch.status in ("missing", "error"):
            raise NotGraded(arch.status, message)
        raise Fail(message)
    if sub.budget == "full":
        return _check_trained_model(sub, name, build_trained or (lambda taken: build()))
    procedure = {"optimizer": q["optimizer"], "lr": q["lr"], "steps": q["steps"], "seed": 0, "loss_mode": q["loss_mode"]}
    X, y = fixed_batch(str(sub.data_dir), q["input_size"], 64)
    run = sub.train(name, X, y, procedure, kwargs=kwargs or {}, timeout=600)
    student = models.materialize(build(), X.shape)
    try:
        models.load_state_by_order(student, run["before"])
        before = _loss(student, X, y, q["loss_mode"])
        models.load_state_by_order(student, run["after"])
        after = _loss(student, X, y, q["loss_mode"])
    except ValueError as exc:
        raise Fail(f"{name}'s trained weights do not fit the book's architecture: {exc}") from None
    ref_before, ref_after, ref_curve = _train_reference(name, q, build, X, y, procedure)
    drop, ref_drop = before - after, ref_before - ref_after
    details = {"procedure": procedure, "student_loss": [round(before, 4), round(after, 4)],
               "reference_loss": [round(ref_before, 4), round(ref_after, 4)], "required_fraction": 0.7,
               # per-step training losses for the report's plot; the student's come from the kernel (display only)
               "loss_curves": {"reference": ref_curve, "student": _curve(run.get("losses"))}}  # fmt: skip
    if not drop >= 0.7 * ref_drop:
        raise Fail(f"{name}'s loss fell by {drop:.3f} ({before:.3f} -> {after:.3f}) under the fixed procedure; "
                   f"the reference's fell by {ref_drop:.3f}, and at least 70% of that is needed", **details)  # fmt: skip
    details["message"] = f"loss {before:.3f} -> {after:.3f} (reference {ref_before:.3f} -> {ref_after:.3f})"
    return details


def _curve(values) -> list[float]:
    """A loss curve sent by the kernel, kept only if it is a plain list of finite numbers (it is untrusted)."""
    if not isinstance(values, list) or len(values) > 10_000:
        return []
    return [round(float(v), 5) for v in values if isinstance(v, (int, float)) and abs(v) < 1e30]


def check_lenet_train(sub: Submission):
    return _check_training(sub, "LeNet", models.LeNet)


def check_vgg_train(sub: Submission):
    arch = tuple(tuple(a) for a in sub.question["arch"])

    def trained(taken):  # the notebook's own model: its arch, else the book's training arch
        own = taken.get("arch")
        return models.VGG(tuple(tuple(a) for a in own) if own else arch)

    return _check_training(sub, "VGG", lambda: models.VGG(arch), kwargs={"arch": arch}, build_trained=trained)


def check_resnet_train(sub: Submission):
    return _check_training(sub, "ResNet18", models.ResNet18)
