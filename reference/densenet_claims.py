"""The exercise claims of HW3 (d2l 8.7, DenseNet), each *checked* rather than assumed.

Same protocol as :mod:`reference.claims` (whose :class:`~reference.claims.ClaimResult` and formula engine
this module uses rather than copies): every ``check_*`` function takes the formula under test as an
argument, so the checker that confirms the true claim also rejects a mutated one (``tests/test_hw3.py``
passes the count without the batch normalizations); the functions named after claims call their checker
with the truth; :data:`CLAIMS` lists them, and ``grade check-assignment hw3`` runs them because the
assignment's config names this module (``claims = "reference.densenet_claims"``).

The truths are also what HW3's checks judge the students' ``ANSWER_*`` formulas against, with
:func:`reference.formulas.equivalent` on the domains below, so the bar a student meets is the claim proven here.

Why against the reference models and not only symbolically: a closed form can be algebraically right and
still count the wrong thing (the running statistics, which are buffers, not parameters; the side before the
last transition instead of after it). Enumerating PyTorch's own modules settles what is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import sympy
import torch

from reference import models
from reference.claims import ClaimResult
from reference.formulas import IntegerDomain, equivalent, exact_evaluator, parse_formula, same_value

__all__ = [
    "CLAIMS",
    "DENSENET_SIDE_DOMAIN",
    "DENSENET_SIDE_FORMULA",
    "DENSE_BLOCK_PARAMS_DOMAIN",
    "DENSE_BLOCK_PARAMS_FORMULA",
    "check_all",
    "check_dense_block_params",
    "check_dense_block_params_sum",
    "check_densenet_side",
    "check_densenet_side_nested",
]

#: Parameters of ``DenseBlock(m, g)`` on an input of ``c`` channels: conv block ``i`` sees ``c + i g`` channels,
#: its BatchNorm has ``2 (c + i g)`` parameters (gamma, beta) and its 3x3 conv ``9 (c + i g) g`` weights and ``g`` biases.
DENSE_BLOCK_PARAMS_FORMULA = "(9*g + 2) * (m*c + g*m*(m - 1)/2) + m*g"

#: Where a student's count is compared when sympy cannot decide it: every block of up to 6 convs on 1-12 channels.
DENSE_BLOCK_PARAMS_DOMAIN = IntegerDomain(
    {"c": range(1, 13), "g": range(1, 13), "m": range(1, 7)},
    description="1 <= c <= 12, 1 <= g <= 12, 1 <= m <= 6",
)

#: Side of the feature map DenseNet's last dense block works on, for an ``n x n`` input: the stem gives
#: ``ceil(n / 4)``, three transitions halve it rounding down.
DENSENET_SIDE_FORMULA = "floor((n + 3) / 32)"

#: What the parameter claim enumerates against real DenseBlocks (each case builds one).
DENSE_BLOCK_PARAMS_CHECKED = IntegerDomain({"c": range(1, 7), "g": range(1, 7), "m": range(1, 5)})

#: The inputs the book's DenseNet accepts (below 29 the third transition has nothing to pool) up to 160.
DENSENET_SIDE_DOMAIN = IntegerDomain({"n": range(29, 161)}, description="29 <= n <= 160")


def _result(name: str, statement: str, method: str, cases: int, counterexample=None, detail: str = "") -> ClaimResult:
    return ClaimResult(name, statement, method, counterexample is None, cases, counterexample, detail)


# =========================================================================== dense block parameters


def _dense_block_parameters(domain: IntegerDomain) -> Iterator[tuple[dict[str, int], int]]:
    """PyTorch's own count for every point: the reference ``DenseBlock`` materialised on ``c`` channels."""
    with torch.no_grad():
        for point in domain.points():
            block = models.materialize(models.DenseBlock(point["m"], point["g"]), (2, point["c"], 3, 3))
            yield point, models.num_parameters(block)


def check_dense_block_params(
    formula: str = DENSE_BLOCK_PARAMS_FORMULA,
    domain: IntegerDomain = DENSE_BLOCK_PARAMS_CHECKED,
    name: str = "dense_block_params_match_pytorch",
    statement: str = "DenseBlock(m, g) on c channels has {formula} parameters",
) -> ClaimResult:
    """Enumerate ``domain`` and count the reference block's parameters (running statistics are buffers, not counted)."""
    expr = parse_formula(formula, ("c", "g", "m"))
    statement = statement.format(formula=expr)
    formula_at = exact_evaluator(expr)
    cases = 0
    for point, actual in _dense_block_parameters(domain):
        cases += 1
        claimed = formula_at(point)
        if not same_value(claimed, actual):
            return _result(name, statement, "exhaustive", cases, {**point, "pytorch": actual, "formula_gives": str(claimed)})
    return _result(name, statement, "exhaustive", cases, detail=f"every case with {domain.ranges}")


def check_dense_block_params_sum(
    formula: str = DENSE_BLOCK_PARAMS_FORMULA,
    name: str = "dense_block_params_closed_form",
    statement: str = "sum over conv blocks i < m of 2(c+ig) + 9(c+ig)g + g == {formula}",
) -> ClaimResult:
    """Symbolic: sympy sums the per-conv-block count over ``i`` and compares it with the closed form."""
    c, g, m, i = sympy.symbols("c g m i", integer=True, positive=True)
    total = sympy.summation(2 * (c + i * g) + 9 * (c + i * g) * g + g, (i, 0, m - 1))
    expr = parse_formula(formula, ("c", "g", "m"))
    expr = expr.xreplace({sym: {"c": c, "g": g, "m": m}[sym.name] for sym in expr.free_symbols})  # the same names, one assumption set
    difference = sympy.simplify(sympy.expand(total - expr))
    if difference != 0:
        return _result(name, statement.format(formula=expr), "symbolic", 1, {"difference": str(difference)})
    return _result(name, statement.format(formula=expr), "symbolic", 1)


def dense_block_params_match_pytorch() -> ClaimResult:
    return check_dense_block_params(DENSE_BLOCK_PARAMS_FORMULA)


def dense_block_params_closed_form() -> ClaimResult:
    return check_dense_block_params_sum(DENSE_BLOCK_PARAMS_FORMULA)


# =========================================================================== DenseNet's last feature map


def _densenet_sides(domain: IntegerDomain) -> Iterator[tuple[dict[str, int], tuple[int, ...] | None]]:
    """The side the reference DenseNet's last dense block outputs, per ``n`` (None: the network refuses the input).

    Channels do not change a side, so a DenseNet with one conv per block and a growth rate of 2 stands in for
    the book's (same stem, same transitions); one thread, because thread start-up dominates such small inputs.
    """
    net = models.materialize(models.DenseNet(4, 2, (1, 1, 1, 1)), (1, 1, 96, 96)).eval()
    body = net.net
    assert isinstance(body, torch.nn.Sequential)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for point in domain.points():
                X = torch.zeros(1, 1, point["n"], point["n"])
                try:
                    for layer_name, layer in body.named_children():
                        X = layer(X)
                        if layer_name == "dense_blk4":
                            break
                except RuntimeError:
                    yield point, None
                    continue
                yield point, tuple(X.shape[2:])
    finally:
        torch.set_num_threads(threads)


def check_densenet_side(
    formula: str = DENSENET_SIDE_FORMULA,
    domain: IntegerDomain = DENSENET_SIDE_DOMAIN,
    name: str = "densenet_side_matches_pytorch",
    statement: str = "DenseNet's last dense block works on a {formula} x {formula} map for an n x n input",
) -> ClaimResult:
    """Enumerate every ``n`` of ``domain`` through the reference network's stem, blocks and transitions."""
    expr = parse_formula(formula, ("n",))
    statement = statement.format(formula=expr)
    formula_at = exact_evaluator(expr)
    cases = 0
    for point, side in _densenet_sides(domain):
        cases += 1
        claimed = formula_at(point)
        if side is None or side[0] != side[1] or not same_value(claimed, side[0]):
            return _result(name, statement, "exhaustive", cases, {**point, "pytorch": side, "formula_gives": str(claimed)})
    below = IntegerDomain({"n": range(min(domain.ranges["n"]) - 1, min(domain.ranges["n"]))})
    refused = [side for _, side in _densenet_sides(below)]
    if refused != [None]:
        smaller = {"n": min(domain.ranges["n"]) - 1, "pytorch": refused[0], "note": "the network accepts a smaller input"}
        return _result(name, statement, "exhaustive", cases + 1, smaller)
    return _result(name, statement, "exhaustive", cases + 1, detail=f"every n with {domain.description}; n - 1 below is refused")


def check_densenet_side_nested(
    formula: str = DENSENET_SIDE_FORMULA,
    nested: str = "floor(ceil(n / 4) / 8)",
    name: str = "densenet_side_nested_floors",
    statement: str = "{nested} == {formula} (stem: ceil(n/4), three halvings rounded down)",
) -> ClaimResult:
    """The step-by-step form (what a student writes by following the layers) equals the closed form."""
    verdict = equivalent(formula, nested, ("n",), IntegerDomain({"n": range(1, 2049)}))
    statement = statement.format(nested=nested, formula=formula)
    return _result(name, statement, verdict.method, verdict.cases, verdict.counterexample, verdict.reason)


def densenet_side_matches_pytorch() -> ClaimResult:
    return check_densenet_side(DENSENET_SIDE_FORMULA)


def densenet_side_nested_floors() -> ClaimResult:
    return check_densenet_side_nested(DENSENET_SIDE_FORMULA)


# =========================================================================== registry

CLAIMS: tuple[Callable[[], ClaimResult], ...] = (
    dense_block_params_match_pytorch,
    dense_block_params_closed_form,
    densenet_side_matches_pytorch,
    densenet_side_nested_floors,
)


def check_all() -> list[ClaimResult]:
    """Run every claim of :data:`CLAIMS`."""
    return [claim() for claim in CLAIMS]
