"""The exercise claims of HW2, each *checked* rather than assumed.

Every ``check_*`` function takes the thing under test as an argument (an
operation, a formula, a pooling rule) and decides a claim about it, so the
same checker that confirms the true claim also rejects a mutated one (the
tests pass ``k1 + k2`` where the truth is ``k1 + k2 - 1``). The functions
named after claims (``convolution_is_commutative``, ...) call their checker
with the true object; :data:`CLAIMS` lists them and :func:`check_all` runs
them (``grade claims`` on the command line).

Methods, strongest first:

* ``symbolic`` -- sympy proves an identity for symbolic inputs (every entry of
  a convolution of symbol matrices expands to the same polynomial);
* ``exhaustive`` -- where floors make a symbolic proof impractical, every
  integer case of a stated range is enumerated, against PyTorch where the
  claim is about PyTorch;
* ``counterexample`` -- a negative claim ("max-pooling is not linear") is
  proven by exhibiting one, and a positive claim that is false comes back
  with the smallest counterexample found.

The formula engine these claims and the grader share -- :func:`equivalent`,
which judges a student's formula answer with a safe parse, a symbolic
decision and an exhaustive integer fallback -- lives in
:mod:`reference.formulas`; its public names are re-exported here, so
``claims.equivalent(answer, claims.OUTPUT_SHAPE_FORMULA, "nkps",
claims.OUTPUT_SHAPE_DOMAIN)`` reads as one vocabulary in a check.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from reference.formulas import (
    DEFAULT_RANGE,
    FORMULA_SECONDS,
    MAX_CONSTANT_DIGITS,
    MAX_EXPANDED_TERMS,
    MAX_FORMULA_DEGREE,
    MAX_FORMULA_LENGTH,
    MAX_LITERAL_EXPONENT,
    SAMPLE_POINTS,
    SYMBOLIC_SECONDS,
    EquivalenceResult,
    FormulaError,
    FormulaSize,
    FormulaTooLarge,
    IntegerDomain,
    equivalent,
    exact_evaluator,
    formula_size,
    parse_formula,
    same_value,
)

__all__ = [
    "CLAIMS",
    "ClaimResult",
    "OUTPUT_SHAPE_DOMAIN",
    "OUTPUT_SHAPE_FORMULA",
    "check_all",
    "check_commutative",
    "check_composed_kernel",
    "check_composed_kernel_entries",
    "check_composed_kernel_side",
    "check_continuous_commutative",
    "check_flipped_kernel",
    "check_conv1x1_matmul",
    "check_formula_matches_pytorch",
    "check_formula_identity",
    "check_not_a_convolution",
    "check_translation_equivariance",
    # re-exported from reference.formulas, the engine's own home
    "DEFAULT_RANGE",
    "FORMULA_SECONDS",
    "MAX_CONSTANT_DIGITS",
    "MAX_EXPANDED_TERMS",
    "MAX_FORMULA_DEGREE",
    "MAX_FORMULA_LENGTH",
    "MAX_LITERAL_EXPONENT",
    "SAMPLE_POINTS",
    "SYMBOLIC_SECONDS",
    "EquivalenceResult",
    "FormulaError",
    "FormulaSize",
    "FormulaTooLarge",
    "IntegerDomain",
    "equivalent",
    "exact_evaluator",
    "formula_size",
    "parse_formula",
    "same_value",
]


# =========================================================================== results


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim: what was claimed, how it was decided, and why."""

    name: str
    statement: str
    method: str
    holds: bool
    cases: int
    counterexample: dict[str, Any] | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.holds

    def line(self) -> str:
        """One line for a terminal: verdict, name, method, counterexample."""
        verdict = "holds " if self.holds else "FAILS "
        text = f"{verdict} {self.name}: {self.statement} [{self.method}, {self.cases} cases]"
        if self.counterexample is not None:
            text += f" counterexample: {self.counterexample}"
        return text


def _result(name, statement, method, cases, counterexample=None, detail="") -> ClaimResult:
    return ClaimResult(name, statement, method, counterexample is None, cases, counterexample, detail)


# =========================================================================== symbolic tensors


def symbol_matrix(name: str, rows: int, cols: int) -> sympy.Matrix:
    """A matrix of independent symbols ``name_i_j``: a generic input for identities."""
    return sympy.Matrix(rows, cols, lambda i, j: sympy.Symbol(f"{name}_{i}_{j}"))


def sym_corr2d(X: sympy.Matrix, K: sympy.Matrix, stride: int = 1) -> sympy.Matrix:
    """Cross-correlation of symbol matrices (valid mode), written from the definition."""
    kh, kw = K.shape
    oh = (X.rows - kh) // stride + 1
    ow = (X.cols - kw) // stride + 1
    return sympy.Matrix(
        oh,
        ow,
        lambda i, j: sum(X[i * stride + a, j * stride + b] * K[a, b] for a in range(kh) for b in range(kw)),
    )


def sym_conv2d(X: sympy.Matrix, K: sympy.Matrix) -> sympy.Matrix:
    """True convolution (kernel index reversed), valid mode."""
    kh, kw = K.shape
    return sympy.Matrix(
        X.rows - kh + 1,
        X.cols - kw + 1,
        lambda i, j: sum(X[i + kh - 1 - a, j + kw - 1 - b] * K[a, b] for a in range(kh) for b in range(kw)),
    )


def sym_conv_full(F_: sympy.Matrix, G: sympy.Matrix) -> sympy.Matrix:
    """Full discrete convolution ``(f * g)[i, j] = sum_{a, b} f[a, b] g[i - a, j - b]``."""
    rows, cols = F_.rows + G.rows - 1, F_.cols + G.cols - 1
    out = sympy.zeros(rows, cols)
    for a, b in itertools.product(range(F_.rows), range(F_.cols)):
        for c, d in itertools.product(range(G.rows), range(G.cols)):
            out[a + c, b + d] += F_[a, b] * G[c, d]
    return out


def sym_corr_full(F_: sympy.Matrix, G: sympy.Matrix) -> sympy.Matrix:
    """Full cross-correlation: convolution with the second argument flipped."""
    return sym_conv_full(F_, _flip(G))


def _flip(K: sympy.Matrix, rows: bool = True, cols: bool = True) -> sympy.Matrix:
    return sympy.Matrix(K.rows, K.cols, lambda i, j: K[K.rows - 1 - i if rows else i, K.cols - 1 - j if cols else j])


def _first_difference(A: sympy.Matrix, B: sympy.Matrix) -> dict[str, Any] | None:
    """``None`` when ``A == B`` as polynomials, else where and how they differ."""
    if A.shape != B.shape:
        return {"shape": A.shape, "other_shape": B.shape}
    for i, j in itertools.product(range(A.rows), range(A.cols)):
        diff = sympy.expand(A[i, j] - B[i, j])
        if diff != 0:
            return {"entry": (i, j), "difference": str(diff)}
    return None


SIZES_2D = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (2, 3), (3, 3)]


# =========================================================================== commutativity


def check_commutative(
    op: Callable[[sympy.Matrix, sympy.Matrix], sympy.Matrix] = sym_conv_full,
    sizes: Sequence[tuple[int, int]] = SIZES_2D,
    name: str = "convolution_is_commutative",
    statement: str = "discrete 2-D convolution is commutative: f * g = g * f",
) -> ClaimResult:
    """``op(f, g) == op(g, f)`` for symbol matrices of every pair of ``sizes``."""
    cases = 0
    for sf, sg in itertools.product(sizes, repeat=2):
        f, g = symbol_matrix("f", *sf), symbol_matrix("g", *sg)
        cases += 1
        diff = _first_difference(op(f, g), op(g, f))
        if diff is not None:
            return _result(name, statement, "symbolic", cases, {"f_shape": sf, "g_shape": sg, **diff})
    return _result(name, statement, "symbolic", cases, detail="every entry of f*g - g*f expands to 0")


def convolution_is_commutative() -> ClaimResult:
    return check_commutative(sym_conv_full)


def check_associative(
    op: Callable[[sympy.Matrix, sympy.Matrix], sympy.Matrix] = sym_conv_full,
    sizes: Sequence[tuple[int, int]] = ((1, 2), (2, 2), (2, 1), (1, 3)),
    name: str = "convolution_is_associative",
    statement: str = "discrete 2-D convolution is associative: (f * g) * h = f * (g * h)",
) -> ClaimResult:
    cases = 0
    for sf, sg, sh in itertools.product(sizes, repeat=3):
        f, g, h = symbol_matrix("f", *sf), symbol_matrix("g", *sg), symbol_matrix("h", *sh)
        cases += 1
        diff = _first_difference(op(op(f, g), h), op(f, op(g, h)))
        if diff is not None:
            return _result(name, statement, "symbolic", cases, {"shapes": (sf, sg, sh), **diff})
    return _result(name, statement, "symbolic", cases)


def convolution_is_associative() -> ClaimResult:
    return check_associative(sym_conv_full)


_x = sympy.Symbol("x", positive=True)
_z, _u = sympy.symbols("z u", real=True)

#: Concrete function families for the continuous claim: ``(f, g, causal)`` in
#: the variable ``_z``. Causal functions are zero for z < 0 (a Heaviside
#: factor left implicit), which sets the integration limits.
CONTINUOUS_FAMILIES: dict[str, tuple[sympy.Expr, sympy.Expr, bool]] = {
    "z exp(-z^2) and exp(-2 z^2) on the whole line": (_z * sympy.exp(-(_z**2)), sympy.exp(-2 * _z**2), False),
    "z^2 exp(-z) and exp(-3 z), zero for z < 0": (_z**2 * sympy.exp(-_z), sympy.exp(-3 * _z), True),
}


def continuous_convolution(f: sympy.Expr, g: sympy.Expr, causal: bool = False) -> sympy.Integral:
    """``(f * g)(x)``: the integral of f(z) g(x - z) dz, unevaluated.

    For causal f and g the integrand vanishes outside 0 <= z <= x.
    """
    lower, upper = (0, _x) if causal else (-sympy.oo, sympy.oo)
    return sympy.Integral(f * g.subs(_z, _x - _z), (_z, lower, upper))


def continuous_correlation(f: sympy.Expr, g: sympy.Expr, causal: bool = False) -> sympy.Integral:
    """``(f star g)(x)``: the integral of f(z) g(z + x) dz -- the twin that does not commute."""
    lower, upper = (0, sympy.oo) if causal else (-sympy.oo, sympy.oo)
    return sympy.Integral(f * g.subs(_z, _z + _x), (_z, lower, upper))


def _rename_variable(integral: sympy.Integral, new: sympy.Symbol) -> sympy.Integral:
    ((var, lower, upper),) = integral.limits
    return sympy.Integral(integral.function.subs(var, new), (new, lower, upper))


def _substitution_proof(op: Callable[..., sympy.Integral]) -> str | None:
    """Try the substitutions z = x - u, u - x, u + x on ``op(f, g)`` for abstract f, g.

    Returns the substitution that turns it, term for term, into ``op(g, f)``,
    or ``None``: this is the textbook proof, valid for every integrable f, g.
    """
    f, g = sympy.Function("f")(_z), sympy.Function("g")(_z)
    target = _rename_variable(op(g, f), _u)
    for substitution in (_x - _u, _u - _x, _u + _x):
        if op(f, g).transform(_z, (substitution, _u)) == target:
            return f"z = {substitution}"
    return None


def check_continuous_commutative(
    op: Callable[..., sympy.Integral] = continuous_convolution,
    families: Mapping[str, tuple[sympy.Expr, sympy.Expr, bool]] | None = None,
    name: str = "continuous_convolution_is_commutative",
    statement: str = "continuous convolution is commutative: (f * g)(x) = (g * f)(x)",
) -> ClaimResult:
    """A change of variables for abstract f, g, confirmed on concrete families.

    The substitution proves the identity for all functions; the families
    are integrated in closed form in both orders and the difference is
    simplified to 0 -- and give a counterexample when the claim is false.
    """
    families = CONTINUOUS_FAMILIES if families is None else families
    proof = _substitution_proof(op)
    cases = 1
    for label, (f, g, causal) in families.items():
        cases += 1
        diff = sympy.simplify(op(f, g, causal).doit() - op(g, f, causal).doit())
        if diff != 0:
            return _result(
                name,
                statement,
                "symbolic",
                cases,
                {"family": label, "difference": str(diff), "at x = 1": str(sympy.N(diff.subs(_x, 1), 6))},
            )
    if proof is None:
        return _result(name, statement, "symbolic", cases, {"substitution": "none of z = x - u, u - x, u + x works"})
    return _result(name, statement, "symbolic", cases, detail=f"substitution {proof}; closed forms agree on {len(families)} families")


def continuous_convolution_is_commutative() -> ClaimResult:
    return check_continuous_commutative(continuous_convolution)


# =========================================================================== composing kernels


def check_composed_kernel(
    compose: Callable[[sympy.Matrix, sympy.Matrix], sympy.Matrix] = sym_conv_full,
    kernel_sizes: Iterable[int] = (1, 2, 3),
    name: str = "two_kernels_compose_into_one",
    statement: str = "corr2d(corr2d(X, K1), K2) == corr2d(X, K1 * K2) with * the full convolution",
) -> ClaimResult:
    """Cross-correlating twice equals one cross-correlation with the composed kernel."""
    cases = 0
    sizes = list(kernel_sizes)
    for k1, k2 in itertools.product(sizes, repeat=2):
        n = k1 + k2 + 1
        X, K1, K2 = symbol_matrix("x", n, n), symbol_matrix("u", k1, k1), symbol_matrix("v", k2, k2)
        cases += 1
        try:
            one = sym_corr2d(X, compose(K1, K2))
        except (ValueError, IndexError, sympy.ShapeError) as exc:
            return _result(name, statement, "symbolic", cases, {"k1": k1, "k2": k2, "error": str(exc)})
        diff = _first_difference(sym_corr2d(sym_corr2d(X, K1), K2), one)
        if diff is not None:
            return _result(name, statement, "symbolic", cases, {"k1": k1, "k2": k2, **diff})
    return _result(name, statement, "symbolic", cases)


def two_kernels_compose_into_one() -> ClaimResult:
    return check_composed_kernel(sym_conv_full)


K1, K2 = sympy.symbols("k1 k2", integer=True)  # the same symbols parse_formula makes


def _generic_poly(prefix: str, degree: int, var: sympy.Symbol) -> sympy.Expr:
    return sum(sympy.Symbol(f"{prefix}{i}") * var**i for i in range(degree + 1))


def check_composed_kernel_side(
    side: str | sympy.Expr = "k1 + k2 - 1",
    kernel_range: range = range(1, 8),
    name: str = "composed_kernel_side",
    statement: str = "a k1 x k1 kernel followed by a k2 x k2 kernel acts like one kernel of side {side}",
) -> ClaimResult:
    """The polynomial-product argument, checked for every ``k1, k2`` in the range.

    Read a kernel row as the coefficients of a polynomial; composing kernels
    multiplies the polynomials (the full convolution is the Cauchy product),
    and degrees add: (k1 - 1) + (k2 - 1), so the side is k1 + k2 - 1. With
    generic (symbolic) coefficients the leading coefficient never cancels.
    """
    expr = parse_formula(side, ("k1", "k2")) if isinstance(side, str) else side
    statement = statement.format(side=expr)
    t = sympy.Symbol("t")
    cases = 0
    for k1, k2 in itertools.product(kernel_range, repeat=2):
        cases += 1
        product = sympy.Poly(sympy.expand(_generic_poly("u", k1 - 1, t) * _generic_poly("v", k2 - 1, t)), t)
        actual = product.degree() + 1
        claimed = expr.subs({K1: k1, K2: k2})
        if claimed != actual:
            return _result(name, statement, "symbolic", cases, {"k1": k1, "k2": k2, "side": actual, "formula_gives": str(claimed)})
    symbolic = sympy.simplify(expr - ((K1 - 1) + (K2 - 1) + 1)) == 0
    detail = "degrees add: (k1-1)+(k2-1)+1 simplifies to the formula" if symbolic else "enumeration only"
    return _result(name, statement, "symbolic" if symbolic else "exhaustive", cases, detail=detail)


def check_composed_kernel_entries(
    entries: str | sympy.Expr = "(k1 + k2 - 1)**2",
    kernel_range: range = range(1, 5),
    name: str = "composed_kernel_entries",
    statement: str = "the composed kernel has {entries} entries (not sides)",
) -> ClaimResult:
    """The 2-D product polynomial has (k1 + k2 - 1)**2 coefficients: that counts entries, not the side."""
    expr = parse_formula(entries, ("k1", "k2")) if isinstance(entries, str) else entries
    statement = statement.format(entries=expr)
    s, t = sympy.symbols("s t")
    cases = 0
    for k1, k2 in itertools.product(kernel_range, repeat=2):
        cases += 1
        P1 = sum(sympy.Symbol(f"u{i}_{j}") * s**i * t**j for i in range(k1) for j in range(k1))
        P2 = sum(sympy.Symbol(f"v{i}_{j}") * s**i * t**j for i in range(k2) for j in range(k2))
        actual = len(sympy.Poly(sympy.expand(P1 * P2), s, t).monoms())
        claimed = expr.subs({K1: k1, K2: k2})
        if claimed != actual:
            return _result(name, statement, "exhaustive", cases, {"k1": k1, "k2": k2, "entries": actual, "formula_gives": str(claimed)})
    return _result(name, statement, "exhaustive", cases)


def composed_kernel_side() -> ClaimResult:
    return check_composed_kernel_side("k1 + k2 - 1")


def composed_kernel_entries() -> ClaimResult:
    return check_composed_kernel_entries("(k1 + k2 - 1)**2")


# =========================================================================== output shape


#: The range of the HW2 output-shape exercise: 1<=s<=6, 0<=p<=6, 1<=k<=n+p<=40.
OUTPUT_SHAPE_DOMAIN = IntegerDomain(
    {"n": range(1, 41), "k": range(1, 41), "p": range(0, 7), "s": range(1, 7)},
    where=lambda v: v["k"] <= v["n"] + v["p"] <= 40,
    description="1 <= s <= 6, 0 <= p <= 6, 1 <= k <= n + p <= 40",
)

OUTPUT_SHAPE_FORMULA = "floor((n - k + p + s) / s)"


def _pytorch_output_sizes(domain: IntegerDomain) -> Iterator[tuple[dict[str, int], int]]:
    """PyTorch's own output size for every point: a real ``conv2d`` on a 1 x n input.

    ``p`` is total padding: even totals use ``conv2d``'s own (per-side)
    ``padding``; odd totals, which it cannot express, are padded
    asymmetrically with ``F.pad`` before an unpadded convolution.
    """
    import torch
    from torch.nn import functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny inputs: thread start-up would dominate
    try:
        with torch.no_grad():
            for point in domain.points():
                n, k, p, s = point["n"], point["k"], point["p"], point["s"]
                X = torch.zeros(1, 1, 1, n)
                if p % 2:
                    X, padding = F.pad(X, (p // 2, p - p // 2)), 0
                else:
                    padding = p // 2
                Y = F.conv2d(X, torch.zeros(1, 1, 1, k), stride=(1, s), padding=(0, padding))
                yield point, Y.shape[-1]
    finally:
        torch.set_num_threads(threads)


def check_formula_matches_pytorch(
    formula: str | sympy.Expr = OUTPUT_SHAPE_FORMULA,
    domain: IntegerDomain = OUTPUT_SHAPE_DOMAIN,
    name: str = "output_shape_matches_pytorch",
    statement: str = "the output size {formula} equals PyTorch's conv2d output size",
) -> ClaimResult:
    """Enumerate every integer case of ``domain`` and compare with PyTorch."""
    names = ("n", "k", "p", "s")
    expr = parse_formula(formula, names) if isinstance(formula, str) else formula
    statement = statement.format(formula=expr)
    cases = 0
    formula_at = exact_evaluator(expr)
    for point, actual in _pytorch_output_sizes(domain):
        cases += 1
        claimed = formula_at(point)
        if not same_value(claimed, actual):
            return _result(name, statement, "exhaustive", cases, {**point, "pytorch": actual, "formula_gives": str(claimed)})
    return _result(name, statement, "exhaustive", cases, detail=f"every case with {domain}")


def check_formula_identity(
    left: str | sympy.Expr = OUTPUT_SHAPE_FORMULA,
    right: str | sympy.Expr = "floor((n - k + p) / s) + 1",
    domain: IntegerDomain = OUTPUT_SHAPE_DOMAIN,
    name: str = "output_shape_plus_one_form",
    statement: str = "{left} == {right}",
) -> ClaimResult:
    """Prove two floor formulas equal: symbolically when sympy can, else exhaustively.

    ``floor(x + 1) = floor(x) + 1`` is an identity sympy applies itself
    once the fraction is expanded, so the symbolic route usually succeeds.
    """
    names = tuple(domain.ranges)
    lhs = parse_formula(left, names) if isinstance(left, str) else left
    rhs = parse_formula(right, names) if isinstance(right, str) else right
    statement = statement.format(left=lhs, right=rhs)

    def expand_floors(e: sympy.Expr) -> sympy.Expr:
        return e.replace(sympy.floor, lambda arg: sympy.floor(sympy.expand(arg)))

    if sympy.simplify(expand_floors(lhs) - expand_floors(rhs)) == 0:
        return _result(name, statement, "symbolic", 1, detail="floor(x + 1) = floor(x) + 1 after expanding the fraction")
    verdict = equivalent(str(lhs), str(rhs), names, domain)
    return _result(name, statement, verdict.method, verdict.cases, verdict.counterexample, verdict.reason)


def output_shape_matches_pytorch() -> ClaimResult:
    return check_formula_matches_pytorch(OUTPUT_SHAPE_FORMULA)


def output_shape_plus_one_form() -> ClaimResult:
    return check_formula_identity(OUTPUT_SHAPE_FORMULA, "floor((n - k + p) / s) + 1")


# =========================================================================== 1x1 convolution


def _sym_multi_in_out(X: list[sympy.Matrix], K: list[list[sympy.Matrix]]) -> list[sympy.Matrix]:
    """corr2d_multi_in_out on symbols: one output per kernel, summed over input channels."""
    shape = sym_corr2d(X[0], K[0][0]).shape
    return [sum((sym_corr2d(x, k) for x, k in zip(X, kernels, strict=True)), sympy.zeros(*shape)) for kernels in K]


def _matmul(Kmat: sympy.Matrix, Xmat: sympy.Matrix) -> sympy.Matrix:
    return Kmat * Xmat


def check_conv1x1_matmul(
    product: Callable[[sympy.Matrix, sympy.Matrix], sympy.Matrix] = _matmul,
    channel_range: range = range(1, 4),
    spatial: tuple[int, int] = (2, 3),
    name: str = "conv1x1_is_matmul",
    statement: str = "a 1x1 convolution is the matrix product K (c_o x c_i) @ X (c_i x h*w)",
) -> ClaimResult:
    h, w = spatial
    cases = 0
    for c_i, c_o in itertools.product(channel_range, repeat=2):
        cases += 1
        X = [symbol_matrix(f"x{c}", h, w) for c in range(c_i)]
        Kmat = symbol_matrix("k", c_o, c_i)
        K = [[sympy.Matrix([[Kmat[o, c]]]) for c in range(c_i)] for o in range(c_o)]
        conv = sympy.Matrix([[y[i, j] for i in range(h) for j in range(w)] for y in _sym_multi_in_out(X, K)])
        Xmat = sympy.Matrix([[x[i, j] for i in range(h) for j in range(w)] for x in X])
        try:
            candidate = product(Kmat, Xmat)
        except sympy.ShapeError as exc:
            return _result(name, statement, "symbolic", cases, {"c_i": c_i, "c_o": c_o, "error": str(exc)})
        diff = _first_difference(conv, candidate)
        if diff is not None:
            return _result(name, statement, "symbolic", cases, {"c_i": c_i, "c_o": c_o, **diff})
    return _result(name, statement, "symbolic", cases)


def conv1x1_is_matmul() -> ClaimResult:
    return check_conv1x1_matmul(_matmul)


# =========================================================================== flipped kernel


def check_flipped_kernel(
    flip: Callable[[sympy.Matrix], sympy.Matrix] = _flip,
    sizes: Sequence[tuple[int, int]] = SIZES_2D,
    name: str = "correlation_is_flipped_convolution",
    statement: str = "corr2d(X, K) equals convolution of X with K flipped along both axes",
) -> ClaimResult:
    cases = 0
    for kh, kw in sizes:
        cases += 1
        X, K = symbol_matrix("x", kh + 2, kw + 2), symbol_matrix("k", kh, kw)
        diff = _first_difference(sym_corr2d(X, K), sym_conv2d(X, flip(K)))
        if diff is not None:
            return _result(name, statement, "symbolic", cases, {"kernel": (kh, kw), **diff})
    return _result(name, statement, "symbolic", cases)


def correlation_is_flipped_convolution() -> ClaimResult:
    return check_flipped_kernel(_flip)


# =========================================================================== max-pooling


def _max(values: Sequence) -> Any:
    return sympy.Max(*values)


def _avg(values: Sequence) -> Any:
    return sympy.Add(*values) / len(values)


def check_not_a_convolution(
    pool: Callable[[Sequence], Any] = _max,
    window: int = 2,
    name: str = "maxpool_is_not_a_convolution",
    statement: str = "max-pooling is not linear, so no convolution (kernel + bias) implements it",
) -> ClaimResult:
    """Two proofs that ``pool`` over a window is no convolution.

    1. Additivity fails: a pair ``x, y`` in {-1, 0, 1}^window with
       ``pool(x + y) != pool(x) + pool(y)``.
    2. The linear system "kernel . x + bias = pool(x) for every x in
       {0, 1}^window" has no solution (sympy ``linsolve`` returns the empty set).

    The claim fails (with the kernel that does implement it as the
    counterexample) for a pooling that *is* a convolution, such as average pooling.
    """
    cases = 0
    witness = None
    for x in itertools.product((-1, 0, 1), repeat=window):
        for y in itertools.product((-1, 0, 1), repeat=window):
            cases += 1
            s = [a + b for a, b in zip(x, y, strict=True)]
            if sympy.simplify(pool(s) - pool(x) - pool(y)) != 0:
                witness = {"x": x, "y": y, "pool(x+y)": str(pool(s)), "pool(x)+pool(y)": str(pool(x) + pool(y))}
                break
        if witness:
            break
    weights = sympy.symbols(f"w0:{window}")
    bias = sympy.Symbol("b")
    equations = []
    for x in itertools.product((0, 1), repeat=window):
        cases += 1
        equations.append(sympy.Eq(sum(w * v for w, v in zip(weights, x, strict=True)) + bias, pool(x)))
    solutions = sympy.linsolve(equations, [*weights, bias])
    if witness is not None and solutions == sympy.EmptySet:
        return _result(
            name,
            statement,
            "counterexample",
            cases,
            detail=f"additivity fails at {witness}; kernel.x + b = pool(x) on {{0,1}}^{window} has no solution",
        )
    found = {"kernel_and_bias": [str(v) for v in next(iter(solutions))]} if solutions != sympy.EmptySet else {}
    return _result(name, statement, "counterexample", cases, {"linear": witness is None, **found})


def maxpool_is_not_a_convolution() -> ClaimResult:
    return check_not_a_convolution(_max)


# =========================================================================== translation equivariance


def check_translation_equivariance(
    op: Callable[[sympy.Matrix, sympy.Matrix], sympy.Matrix] = sym_corr2d,
    shifts: Sequence[tuple[int, int]] = ((1, 0), (0, 1), (1, 2), (2, 1)),
    kernel: tuple[int, int] = (2, 3),
    size: int = 7,
    name: str = "correlation_is_translation_equivariant",
    statement: str = "shifting the input shifts corr2d's output by the same amount (away from borders)",
) -> ClaimResult:
    """``op(shift(X))[i, j] == op(X)[i + di, j + dj]`` wherever both sides exist.

    ``shift(X)[i, j] = G[i + di, j + dj]`` for a larger symbolic grid ``G``,
    so the shifted input brings in new values at the border instead of zeros.
    """
    cases = 0
    K = symbol_matrix("k", *kernel)
    G = symbol_matrix("g", size + 3, size + 3)
    Y = op(G[:size, :size], K)
    for di, dj in shifts:
        Ys = op(G[di : di + size, dj : dj + size], K)
        for i, j in itertools.product(range(Ys.rows), range(Ys.cols)):
            if i + di < Y.rows and j + dj < Y.cols:
                cases += 1
                diff = sympy.expand(Ys[i, j] - Y[i + di, j + dj])
                if diff != 0:
                    return _result(name, statement, "symbolic", cases, {"shift": (di, dj), "entry": (i, j), "difference": str(diff)})
    return _result(name, statement, "symbolic", cases)


def correlation_is_translation_equivariant() -> ClaimResult:
    return check_translation_equivariance(sym_corr2d)


# =========================================================================== registry

CLAIMS: tuple[Callable[[], ClaimResult], ...] = (
    convolution_is_commutative,
    continuous_convolution_is_commutative,
    convolution_is_associative,
    two_kernels_compose_into_one,
    composed_kernel_side,
    composed_kernel_entries,
    output_shape_matches_pytorch,
    output_shape_plus_one_form,
    conv1x1_is_matmul,
    correlation_is_flipped_convolution,
    maxpool_is_not_a_convolution,
    correlation_is_translation_equivariant,
)


def check_all() -> list[ClaimResult]:
    """Run every claim of :data:`CLAIMS`."""
    return [claim() for claim in CLAIMS]
