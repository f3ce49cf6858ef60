"""Architecture questions: the verdict is the function the student's model computes; the layer table is the evidence.

A model passes when, given the book's model's random weights (by order), it computes the book's function
(:func:`grader.checking.equivalence.same_function`). Its layers, as the kernel lists them, are set beside the book's
for the report and for the message a failing student reads first -- never a reason to pass or fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from grader.checking.assertions import Fail
from grader.checking.equivalence import same_function
from grader.kernel.submission import Submission
from reference import models

#: The book's layer types in words, for a student whose layer differs ("… where the book's is a `AvgPool2d` (average pooling)").
KIND_WORDS = {
    "Sigmoid": "a sigmoid activation",
    "AvgPool2d": "average pooling",
    "MaxPool2d": "max pooling",
    "ReLU": "a ReLU activation",
    "BatchNorm2d": "batch normalisation",
    "Dropout": "dropout",
}


def layer_table(sub: Submission, name: str, reference, input_shape, kwargs=None) -> tuple[dict, str]:
    """The student's layers beside the book's, for the report, and where their output shapes part.

    What the kernel lists is evidence for the message, never the verdict (that is
    :func:`grader.checking.equivalence.same_function`): a table that matches earns nothing, and a model laid
    out otherwise (no ``self.net``, the head's layers inside ``net`` as d2l-zh writes ResNet) is not
    failed for it. Returns the details and the first difference in words ("" when none).
    """
    got = sub.summary(name, input_shape, kwargs=kwargs or {})
    listed = got.get("rows") if isinstance(got, dict) else None
    if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
        return {}, f"{name}'s layers could not be listed"
    want = models.layer_shapes(reference, input_shape)
    rows = [{"layer": i, "kind": str(r.get("kind", ""))[:60], "shape": r.get("shape")} for i, r in enumerate(listed)]
    table = [
        {"layer": i, "student": rows[i] if i < len(rows) else None, "reference": {"kind": w.kind, "shape": list(w.shape)}}
        for i, w in enumerate(want)
    ]
    details: dict = {"layers": table, "book_parameters": models.num_parameters(reference)}
    disagreement = shapes_disagree([r["shape"] for r in rows], [list(w.shape) for w in want], whole=len(rows) == 1)
    if disagreement:
        details["shapes_disagree"] = disagreement
    if len(rows) == 1 and not listed[0].get("name"):
        details["layers_note"] = (
            f"{name} has no `self.net = nn.Sequential(...)`, so its layers cannot be listed one by one: "
            f"the table shows the whole model as 1 row where the book's `net` has {len(want)} layers"
        )
        return details, ""
    kinds = [
        f"layer {i} is a `{r['kind']}` where the book's is a `{w.kind}`" + (f" ({KIND_WORDS[w.kind]})" if w.kind in KIND_WORDS else "")
        for i, (r, w) in enumerate(zip(rows, want, strict=False))  # layers both have; a count that differs is said below
        if r["kind"] != w.kind
    ]
    if kinds:
        details["kind_differences"] = kinds
    for i, w in enumerate(want):
        if i >= len(rows):
            return details, (
                f"its `net` has {len(rows)} layers where the book's has {len(want)}; "
                f"the first one it lacks is the book's layer {i} ({w.kind}, output {w.shape})"
            )
        if not isinstance(rows[i]["shape"], list) or tuple(rows[i]["shape"]) != w.shape:
            details["first_diverging_layer"] = i
            return details, (
                f"layer {i} ({rows[i]['kind']}) outputs {tuple(rows[i]['shape'] or ())}, expected {w.shape} "
                f"(the book's layer {i} is {w.kind})"
            )
    if len(rows) != len(want):
        return details, (
            f"its `net` has {len(rows)} layers where the book's has {len(want)} "
            f"(the first extra one is layer {len(want)}, {rows[len(want)]['kind']})"
        )
    return details, ""


def shapes_disagree(got: list[Any], want: list[list[int]], whole: bool = False) -> str:
    """Whether the student's layers, at the book's input size, compute through other intermediate shapes than the book's.

    A layout is free: layers grouped more coarsely (a block per row) or more finely (the head's layers one by
    one) than the book's pass, as one list of shapes then holds the other's. A model whose list has shapes the
    book's lacks *and* lacks shapes the book's has -- a global pooling where the book flattens a 7x7 map,
    ``(1, 512, 1, 1)`` and ``(1, 512)`` where the book has ``(1, 25088)`` -- computes something else at the
    book's input size, whatever it computes at the small size its function is compared on. ``whole``: the
    model could only be run as one row (its final output is compared). Returns the difference in words, or "".
    """
    shapes = [list(s) if isinstance(s, list) else None for s in got]
    if not want or not shapes:
        return ""
    if whole:  # the one row is the model's own output (listed layers run in order may not be what forward does)
        return f"its output at the book's input size is {_shape(shapes[-1])}, expected {_shape(want[-1])}" if shapes[-1] != want[-1] else ""
    extra = [s for s in shapes if s not in want]
    lacking = [w for w in want if w not in shapes]
    if extra and lacking:
        return f"at the book's input size its layers output {_shape(extra[0])} where the book's output {_shape(lacking[0])}"
    return ""


def _shape(shape: list[int] | None) -> str:
    return str(tuple(shape)) if shape is not None else "nothing"


def same_architecture(
    sub: Submission,
    name: str,
    reference: nn.Module,
    table_shape: Sequence[int],
    function_shape: Sequence[int],
    *,
    kwargs: dict[str, Any] | None = None,
    small: tuple[nn.Module, dict[str, Any] | None] | None = None,
    modes: Sequence[str] = ("train", "eval"),
    rtol: float = 1e-3,
    atol: float = 1e-4,
    prepare: Callable[[nn.Module], None] | None = None,
) -> dict[str, Any]:
    """The verdict is the function: the book's model's random weights in the student's model, compared here.

    The layer table is the evidence a failing student reads first (where the shapes part, which layer is
    a ReLU where the book has a Sigmoid); a model computing the book's function passes however it is laid out.
    ``small``: ``(model, kwargs)`` the function is compared on where the book's full model would be slow (the
    table is always ``reference`` on ``table_shape``). ``prepare(model)``: give state :func:`same_function`
    does not randomize itself (a from-scratch layer's scale, shift or running statistics) its random values,
    before they travel to the student's model with the rest of the state.
    """
    details, parted = layer_table(sub, name, reference, table_shape, kwargs=kwargs)
    model, model_kwargs = small if small is not None else (reference, kwargs)
    if prepare is not None:
        prepare(model)
    try:
        details.update(same_function(sub, name, model, function_shape, kwargs=model_kwargs or {}, modes=modes, rtol=rtol, atol=atol))
    except Fail as fail:
        evidence = [parted] if parted else []
        evidence += details.get("kind_differences", [])[:3]
        if details.get("layers_note"):
            evidence.append(details["layers_note"])
        message = f"{name}: " + "; ".join(evidence) + f" — {fail.message}" if evidence else fail.message
        raise Fail(message, **{**details, **fail.details}) from None
    if details.get("shapes_disagree"):
        raise Fail(
            f"{name}: {details['shapes_disagree']} — it matches the book's function only at the small size it was compared on"
            f" {tuple(function_shape)}; check the layers from the one where the shapes part",
            **details,
        )
    if parted:
        details["message"] = f"{name} computes the book's function; its layers are laid out otherwise ({parted})"
    return details
