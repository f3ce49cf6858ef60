"""HW2's checks, one ``check_<question id>(submission)`` per auto-graded question.

Each check calls the student's code through ``submission`` (inputs are
chosen here, outputs come back as data) and compares with ``reference``.
A check passes by returning (optionally a dict of details for the report)
and fails by raising ``Fail`` -- see ``grader.checking.assertions``.
"""

from __future__ import annotations

import re

import torch
from hypothesis import strategies as st

from grader.checks import (
    Fail,
    Missing,
    Module,
    NotGraded,
    QuestionContext,
    StateMisfit,
    StudentError,
    Submission,
    check_training,
    expect_equal,
    expect_tensor,
    property_check,
    run_seed,
    same_architecture,
    same_function,
    tensors,
)
from reference import models, ops

BOOK_X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
BOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
BOOK_X2 = torch.stack((BOOK_X, BOOK_X + 1))
BOOK_K2 = torch.stack((BOOK_K, BOOK_K + 1))
EXAMPLES = 30

#: Options of HW2's own that config.toml's questions may carry (the grader's own are in grader/course/question_options.py).
OPTIONS = {"arch": "list"}


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
    """The student's ``Conv2D`` gets the grader's random weight and bias, and must compute ``corr2d(X, W) + b``."""
    seed = run_seed()
    generator = torch.Generator().manual_seed(seed)
    for kernel_size, input_shape in (((1, 2), (3, 4)), ((2, 3), (5, 6))):
        X = torch.randn(input_shape, generator=generator)
        weight, bias = torch.randn(kernel_size, generator=generator), torch.randn(1, generator=generator)
        try:
            run = sub.forward("Conv2D", X, args=[kernel_size], state=[weight, bias], seed=seed, modes=("eval",))
        except StateMisfit as misfit:
            found = ", ".join(f"`{k}` {tuple(v)}" for k, v in misfit.entries) or "none"
            raise Fail(
                f"Conv2D({kernel_size}) should have exactly two parameters, `weight` of shape {kernel_size} and "
                f"`bias` of 1 element, as `nn.Parameter`s (found: {found})",
                seed=seed,
            ) from None
        expect_tensor(
            run["outputs"]["eval"],
            ops.corr2d(X, weight) + bias,
            f"Conv2D({kernel_size}) with the grader's weight and bias on a random {_shape(X)} input (seed {seed})",
        )
    return {"seed": seed}


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
    return (
        isinstance(value, torch.Tensor)
        and tuple(value.shape) == tuple(want.shape)
        and bool(torch.equal(value.detach().to(torch.float64), want.to(torch.float64)))
    )


def _reshaped(value, graded) -> bool:
    """Whether ``value`` holds the graded tensor's numbers in another shape (a cell that only reshapes it)."""
    return (
        isinstance(value, torch.Tensor)
        and isinstance(graded, torch.Tensor)
        and tuple(value.shape) != tuple(graded.shape)
        and value.numel() == graded.numel()
        and bool(torch.equal(value.detach().reshape(-1).to(torch.float64), graded.detach().reshape(-1).to(torch.float64)))
    )


def _cells(cells: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(c) for c in cells[:limit])
    return ("cell " if len(cells) == 1 else "cells ") + shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _graded_note(fail: Fail, note: str, details: dict) -> Fail:
    return Fail(f"{fail.message} [{note}]", **{**fail.details, **details})


def _by_role(candidate: dict, image: torch.Tensor) -> dict:
    """A candidate found under other names (``roles``): the book's image and kernel among the tensors of
    their shapes where there are, and the Y that is their cross-correlation where there is one."""
    roles = candidate["roles"]

    def pick(role: str, want: torch.Tensor | None) -> tuple[str, torch.Tensor]:
        found = list(roles.get(role, {}).items())
        return next(((n, t) for n, t in found if want is not None and _equal(t, want)), found[0])

    (x_name, X), (k_name, K) = pick("X", image), pick("K", EDGE_K)
    y_name, Y = pick("Y", ops.corr2d(X.to(torch.float32), K.to(torch.float32)) if X.dim() == 2 and K.dim() == 2 else None)
    return {**candidate, "values": {"X": X, "K": K, "Y": Y}, "names": {"X": x_name, "K": k_name, "Y": y_name}}


def check_edge_detect(sub: Submission):
    candidates = _candidates(sub, "edge_detect", "tensors `X`, `K` and `Y` with `Y = corr2d(X, K)`")
    image = _edge_image()
    candidates = [_by_role(c, image) if "roles" in c else c for c in candidates]
    on_book = [c for c in candidates if _equal(c["values"]["X"], image) and _equal(c["values"]["K"], EDGE_K)]
    if on_book:  # a cell whose source reads `Y = corr2d(X, K)` is preferred, else the latest
        chosen = ([c for c in on_book if c.get("hint")] or on_book)[-1]
        why = "the book's 6x8 edge image and K = [[1, -1]]"
    else:
        sized = [c for c in candidates if tuple(c["values"]["X"].shape) == (6, 8)]
        chosen = (sized or candidates)[0]
        why = (
            f"the first cell that computes Y{' from a 6x8 X' if sized else ''}: "
            "none computes it on the book's 6x8 edge image with K = [[1, -1]]"
        )
    cell = chosen["cell"]
    others = [c for c in candidates if c is not chosen]
    note = f"graded the values after cell {cell} ({why})"
    if chosen.get("names"):
        named = chosen["names"]
        note = f"graded `{named['X']}`, `{named['K']}` and `{named['Y']}` as X, K and Y after cell {cell} ({why})"
    book_ids = {id(c) for c in on_book}  # identity: the candidates hold tensors, which `in` cannot compare
    again = [c["cell"] for c in others if id(c) in book_ids]
    # the book's next section reshapes X and Y for nn.Conv2d (`Y = Y.reshape((1, 1, 6, 7))`): no other inputs
    reshaped = [c["cell"] for c in others if id(c) not in book_ids and _reshaped(c["values"]["Y"], chosen["values"]["Y"])]
    elsewhere = [c["cell"] for c in others if id(c) not in book_ids and c["cell"] not in reshaped]
    if again:
        note += f"; {_cells(again)} also compute{'s' if len(again) == 1 else ''} Y on the book's inputs"
    if reshaped:
        note += f"; {_cells(reshaped)} only reshape{'s' if len(reshaped) == 1 else ''} Y"
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
    # The Y the notebook kept must be what its own corr2d gives, recomputed from the source in the clean room:
    # a Y typed in by hand beside a broken corr2d does not pass.
    recomputed = sub.call("corr2d", X, K)
    try:
        expect_tensor(recomputed, Y, f"your corr2d(X, K) on the same X and K, recomputed by the grader (it must give the Y of cell {cell})")
    except Fail as fail:
        raise _graded_note(fail, note + "; Y must be computed by your own corr2d", details) from None
    transposed = sub.call("corr2d", image.t(), EDGE_K)
    expect_tensor(transposed, torch.zeros((8, 5)), "corr2d(X.t(), K) (a vertical edge detector sees nothing)")
    return {**details, **({"message": note[0].upper() + note[1:]} if others or chosen.get("names") else {})}


LEARN_KERNEL_WANTED = (
    "a 1-in, 1-out convolution with a (1, 2) kernel bound to a name, e.g. "
    "`conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)` (a lazy one counts once it has seen an input)"
)


def _learned(candidate: dict):
    """The candidate's weight as 2 numbers, or None when it is not a (1, 2) kernel's."""
    weight = candidate["values"].get("weight")
    if not isinstance(weight, torch.Tensor) or weight.numel() != 2:
        return None
    return weight.reshape(-1).to(torch.float64)


def _near_edge_kernel(candidate: dict) -> bool:
    learned = _learned(candidate)
    return learned is not None and bool(((learned - torch.tensor([1.0, -1.0], dtype=torch.float64)).abs() <= 0.2).all())


def _raised_after(sub: Submission, name: str, cell: int) -> None:
    """A later cell that uses ``name`` and raised: the training the student meant to run, as an error."""
    executed = getattr(sub.session, "notebook", None) if sub.session is not None else None
    for index, later in enumerate(getattr(executed, "cells", []) or []):
        if index <= cell or later.get("cell_type") != "code" or not re.search(rf"\b{re.escape(name)}\b", later.source):
            continue
        for output in later.get("outputs", []):
            if output.get("output_type") == "error":
                raise StudentError(
                    f"the cell that trains `{name}`", str(output.get("ename", "Error")), str(output.get("evalue", ""))[:500], index
                )


def _replayed(sub: Submission, name: str, cell: int) -> dict | None:
    """``name``'s weight as the clean room's rerun of ``cell`` left it (``Submission.replay``), or None without a clean room."""
    snapshot = next((s for s in getattr(sub.assignment, "snapshots", []) if s.key == "learn_kernel"), None)
    if snapshot is None:
        return None
    return sub.replay(name, cell, dict(snapshot.match))


def check_learn_kernel(sub: Submission):
    candidates = _candidates(sub, "learn_kernel", LEARN_KERNEL_WANTED)
    trained = [c for c in candidates if c.get("trained")]
    if not trained:
        last = candidates[-1]
        _raise_cell_error(last, f"the cell that builds and trains `{last['name']}`")  # it raised before training
        _raised_after(sub, last["name"], last["cell"])
        by_hand = [c for c in candidates if "set by hand" in c.get("reason", "")]
        how = (
            f"cell {by_hand[-1]['cell']} sets its weight by hand (no gradient reached it there): train it with the book's loop instead"
            if by_hand
            else "its weight never changes after the cell that builds it"
        )
        raise Fail(
            f"`{last['name']}` (cell {last['cell']}) is a 1-in, 1-out convolution with a (1, 2) kernel, but no cell trains it: {how}",
            snapshot_cell=last["cell"],
            snapshot_reason=last.get("reason", ""),
        )
    # The book's loop learns [1, -1]; an exercise may train another kernel later (a blur, on other data):
    # the last training that learned the edge kernel is graded, else the last training.
    learned_edge = [c for c in trained if _near_edge_kernel(c)]
    chosen = (learned_edge or trained)[-1]
    name, cell = chosen["name"], chosen["cell"]
    why = f"where `{name}` was trained: {chosen.get('reason', '')}"
    note = f"graded `{name}`'s weight after cell {cell}, {why}"
    others = sorted({c["cell"] for c in trained} - {cell})  # one module under two names is one cell
    if others:
        which = "the last training that learned [1, -1] is graded" if learned_edge else "the last training is graded"
        note += f"; {_cells(others)} also train{'s' if len(others) == 1 else ''} a (1, 2) kernel; {which}"
    details = {"snapshot_cell": cell, "snapshot_reason": why, "candidate_cells": sorted({c["cell"] for c in trained})}
    _raise_cell_error(chosen, f"the cell that trains `{name}`")
    learned = _learned(chosen)
    replayed = _replayed(sub, name, cell)
    if replayed is not None:
        # The weight graded is the one the file's own cells compute, rerun by the grader in the clean room: a weight
        # typed in by hand, or a table in the notebook's kernel that says "trained", earns nothing there.
        if not replayed.get("trained"):
            raise Fail(
                f"when the grader reran cell {cell} (and the cells it needs) from your notebook's file, `{name}` was not "
                f"trained there: {replayed.get('reason', '')}; train it with the book's loop (gradients and an update) [{note}]",
                replayed=True,
                **details,
            )
        kept, learned = learned, _learned({"values": replayed})
        details["replayed"] = True
        if learned is not None and kept is not None and float((learned - kept).abs().max()) > 0.05:
            note += (
                f"; your notebook kept {[round(v, 4) for v in kept.tolist()]}, and rerunning cell {cell} from the file gave "
                f"{[round(v, 4) for v in learned.tolist()]} (graded: the rerun; it starts from other random weights, as only "
                "the cells it needs run before it)"
            )
    if learned is None:
        raise Fail(
            f"expected {name}.weight with 2 entries after the training loop, got {chosen['values'].get('weight')!r:.80} [{note}]", **details
        )
    if not _near_edge_kernel(chosen):
        raise Fail(
            f"the learned kernel {[round(v, 4) for v in learned.tolist()]} is not within 0.2 of [1, -1] [{note}]",
            learned=learned.tolist(),
            **details,
        )
    return {
        "learned": [round(v, 4) for v in learned.tolist()],
        **details,
        **({"message": note[0].upper() + note[1:]} if len({c["cell"] for c in candidates}) > 1 else {}),
    }


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
    book = [
        ((3, 3), (1, 1), (1, 1), (8, 8)),
        ((5, 3), (2, 1), (1, 1), (8, 8)),
        ((3, 3), (1, 1), (2, 2), (4, 4)),
        ((3, 5), (0, 1), (3, 4), (2, 2)),
    ]

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


# --------------------------------------------------------------------------- 7.5


def check_pool2d(sub: Submission):
    pool2d = sub.function("pool2d")
    expect_tensor(pool2d(BOOK_X, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]), "pool2d(X, (2, 2)) on the book's example")
    expect_tensor(pool2d(BOOK_X, (2, 2), "avg"), torch.tensor([[2.0, 3.0], [5.0, 6.0]]), "pool2d(X, (2, 2), 'avg') on the book's example")

    def same(case):
        X, window, mode = case
        expect_tensor(pool2d(X, window, mode), ops.pool2d(X, window, mode), f"pool2d(X {_shape(X)}, {window}, {mode!r})")

    property_check(
        "pool2d", pooling_case(), same, examples=EXAMPLES, show=lambda c: f"X = {c[0].tolist()}, pool_size = {c[1]}, mode = {c[2]!r}"
    )


# --------------------------------------------------------------------------- architectures


def check_lenet_arch(sub: Submission):
    return same_architecture(sub, "LeNet", models.LeNet(), (1, 1, 28, 28), (8, 1, 28, 28))


#: The VGG the function is compared on: the book's VGG-11 blocks with a fraction of the channels, on 96x96
#: inputs (its 4096-wide classifier as in the book), so both models fit in memory twice over; the layer
#: table is the full VGG-11 on 224x224. At 96x96 the last feature map is 3x3, not 1x1: a global pooling
#: that equals the book's flatten only at 1x1 computes another function there.
VGG_SMALL_ARCH = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))


def check_vgg_block(sub: Submission):
    details = {}
    for num_convs, out_channels, shape in ((1, 4, (2, 3, 8, 10)), (2, 8, (2, 2, 6, 6))):
        label = f"vgg_block({num_convs}, {out_channels})"
        run = same_function(sub, "vgg_block", models.vgg_block(num_convs, out_channels), shape, args=(num_convs, out_channels), label=label)
        details[label] = run
    return details


def check_vgg_arch(sub: Submission):
    arch = tuple(tuple(a) for a in VGG_SMALL_ARCH)
    return same_architecture(
        sub,
        "VGG",
        models.VGG(models.VGG11_ARCH),
        (1, 1, 224, 224),
        (4, 1, 96, 96),
        kwargs={"arch": models.VGG11_ARCH},
        small=(models.VGG(arch), {"arch": arch}),
    )


def check_residual(sub: Submission):
    details = {}
    for args in ((3,), (6, True, 2)):
        details[f"Residual{args}"] = same_function(
            sub, "Residual", models.Residual(*args), (4, 3, 6, 6), args=args, label=f"Residual{args}"
        )
    return details


def check_resnet18_arch(sub: Submission):
    # at 96x96 the map the global pooling averages is 3x3 (a max pooling or a flatten would compute otherwise)
    return same_architecture(sub, "ResNet18", models.ResNet18(), (1, 1, 96, 96), (2, 1, 96, 96))


# --------------------------------------------------------------------------- training


def check_lenet_train(sub: Submission, ctx: QuestionContext):
    return check_training(sub, ctx, "LeNet", models.LeNet)


def check_vgg_train(sub: Submission, ctx: QuestionContext):
    arch = tuple(tuple(a) for a in ctx.options["arch"])

    def trained(taken):  # the notebook's own model: its arch, else the book's training arch
        own = taken.get("arch")
        return models.VGG(_vgg_arch_within_limits(own, ctx.options["full_input_size"]) if own else arch)

    return check_training(sub, ctx, "VGG", lambda: models.VGG(arch), kwargs={"arch": arch}, build_trained=trained)


#: The largest VGG the grader will build from an ``arch`` the kernel reports (the book's VGG-11 has 129M parameters).
MAX_VGG_PARAMETERS = 200_000_000


def _vgg_arch_within_limits(arch, size: int) -> tuple[tuple[int, int], ...]:
    """An ``arch`` the kernel reported, checked before the grader builds anything from it.

    The numbers come from the notebook, so they could ask for a network of any size; the shape is
    checked, then the parameter count is taken on torch's ``meta`` device (no memory), then built.
    """
    ok = (
        isinstance(arch, (list, tuple))
        and 1 <= len(arch) <= 8
        and all(
            isinstance(b, (list, tuple))
            and len(b) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in b)
            and 1 <= b[0] <= 8
            and 1 <= b[1] <= 2048
            for b in arch
        )
    )
    if not ok:
        raise Fail(
            f"the trained VGG's `arch` {str(arch)[:120]} is not a list of up to 8 (num_convs, channels) pairs "
            "with num_convs 1-8 and channels 1-2048"
        )
    arch = tuple((int(a), int(b)) for a, b in arch)
    try:
        with torch.device("meta"):
            meta = models.VGG(arch)
            meta(torch.zeros((1, 1, size, size)))
        count = models.num_parameters(meta)
    except (RuntimeError, ValueError) as exc:
        raise Fail(f"the trained VGG's `arch` {arch} does not fit a {size}x{size} input: {str(exc)[:200]}") from None
    if count > MAX_VGG_PARAMETERS:
        raise Fail(f"the trained VGG's `arch` {arch} has {count:,} parameters; the grader builds at most {MAX_VGG_PARAMETERS:,}")
    return arch


def check_resnet_train(sub: Submission, ctx: QuestionContext):
    return check_training(sub, ctx, "ResNet18", models.ResNet18)
