"""The formula engine: judging a student's formula answer safely and exactly.

A formula answer is untrusted text, yet it must be read by the grader's own
process (sympy has no sandbox of its own). So :func:`parse_formula` reads it
through a character whitelist, a closed namespace and guards against huge
powers, degrees and expansions *before* sympy evaluates anything, and
:func:`equivalent` decides it: symbolically when sympy can prove the identity,
else by exact enumeration of an :class:`IntegerDomain` (floors make many true
answers unprovable for sympy, and a float would round ``floor(8/3)`` wrongly
at the edges). The judging runs in a forked child with a deadline
(:mod:`reference.deadline`): an answer sympy cannot decide in time, or one too
large to try, is *undecided* -- a TA's to judge, never a wrong answer.

This module knows nothing about HW2: the exercise claims, and the domain of
the output-shape exercise, live in :mod:`reference.claims`, which re-exports
these names so ``claims.equivalent`` keeps working for check authors.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication,
    parse_expr,
    rationalize,
    standard_transformations,
)

from reference.deadline import OutOfTime, interrupt_after, run_with_deadline

__all__ = [
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


# =========================================================================== reading a formula


class FormulaError(ValueError):
    """A formula answer that cannot be read; the message is shown to the student."""


class FormulaTooLarge(FormulaError):
    """A readable formula too large to judge automatically (its degree or expansion): a TA's to judge, not a wrong answer."""


MAX_FORMULA_LENGTH = 200
MAX_LITERAL_EXPONENT = 64
#: The most a formula's degree may be, its denominators' counted (``(a+b+2)**16 / ((a+2)**4 + b**4)**4`` is 32):
#: sympy's ``simplify`` takes seconds at 32 and hours at 128; the course's answers are of degree 4 at most.
MAX_FORMULA_DEGREE = 24
#: The most terms a formula's full expansion may have (``(n + k + p + s)**6`` has 84).
MAX_EXPANDED_TERMS = 1000
#: The most digits a constant may grow to once evaluated (``9**64`` has 62).
MAX_CONSTANT_DIGITS = 1000

_FUNCTIONS: dict[str, Any] = {
    "floor": sympy.floor,
    "ceiling": sympy.ceiling,
    "ceil": sympy.ceiling,
    "Min": sympy.Min,
    "min": sympy.Min,
    "Max": sympy.Max,
    "max": sympy.Max,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
    "sqrt": sympy.sqrt,
}
# What the parser's generated code refers to; nothing else is reachable,
# and ``__builtins__`` is emptied so ``eval`` cannot fall back to the real ones.
_PARSER_GLOBALS: dict[str, Any] = {
    "__builtins__": {},
    "Integer": sympy.Integer,
    "Float": sympy.Float,
    "Rational": sympy.Rational,
    "Symbol": sympy.Symbol,
    "Function": sympy.Function,
    "Mul": sympy.Mul,
    "Add": sympy.Add,
    "Pow": sympy.Pow,
}
_TRANSFORMS = standard_transformations + (convert_xor, implicit_multiplication, rationalize)
_ALLOWED_CHARS = re.compile(r"^[A-Za-z0-9_\s+\-*/^()%.,]*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def book_notation(text: str, symbols: Iterable[str]) -> str:
    """The book's own spellings made plain before any guard: ⌊x⌋ and ⌈x⌉ (floor and ceiling, as d2l
    writes the output-shape formula), × and · for products, and a subscripted name (``k_1``, ``k₁``)
    for a name the question uses (``k1``). Only these exact rewrites; anything else meets the guards."""
    # Typed as the values str.maketrans takes (its dict argument is invariant).
    spellings: dict[str, str | int | None] = {"⌊": "floor(", "⌋": ")", "⌈": "ceiling(", "⌉": ")", "×": "*", "·": "*", "−": "-"}
    spellings |= {"₀": "0", "₁": "1", "₂": "2", "₃": "3"}
    text = text.translate(str.maketrans(spellings))
    for name in symbols:
        match = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
        if match:
            text = re.sub(rf"\b{match.group(1)}_\{{?{match.group(2)}\}}?(?![\w])", name, text)
    return text


def parse_formula(text: str, symbols: Iterable[str]) -> sympy.Expr:
    """Parse a student's formula over ``symbols`` safely, or raise :class:`FormulaError`.

    Guards, in order: type and length; a character whitelist (no quotes,
    brackets, ``__`` or attribute access); every name must be one of
    ``symbols`` or a known function; ``parse_expr`` then runs with a
    namespace of only those and sympy's constructors; powers whose exponent
    holds a power or a literal above ``MAX_LITERAL_EXPONENT`` are refused
    before anything is evaluated, so ``9**9**9**9`` cannot hang the grader.
    """
    if not isinstance(text, str):
        raise FormulaError(f"expected the formula as a string, got {type(text).__name__}")
    stripped = book_notation(text, symbols).strip()
    if not stripped:
        raise FormulaError("the formula is empty")
    if len(stripped) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is {len(stripped)} characters long; at most {MAX_FORMULA_LENGTH} are read")
    if not _ALLOWED_CHARS.match(stripped) or "__" in stripped or re.search(r"\.\s*[A-Za-z_]", stripped):
        raise FormulaError(
            "the formula may only use numbers, the names "
            f"{', '.join(symbols)}, + - * / // ^ ** %, parentheses and {', '.join(sorted(set(_FUNCTIONS)))}"
        )
    allowed = {name: sympy.Symbol(name, integer=True) for name in symbols}
    for name in _NAME.findall(stripped):
        if name not in allowed and name not in _FUNCTIONS:
            raise FormulaError(f"unknown name {name!r}: use {', '.join(allowed)}")
    local = {**_FUNCTIONS, **allowed}
    try:
        unevaluated = parse_expr(
            stripped, local_dict=dict(local), global_dict=dict(_PARSER_GLOBALS), transformations=_TRANSFORMS, evaluate=False
        )
    except Exception as exc:  # sympy raises SyntaxError, TokenError, TypeError...
        raise FormulaError(f"cannot parse {stripped!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(unevaluated, sympy.Basic):
        raise FormulaError(f"{stripped!r} is not a formula")
    for power in unevaluated.atoms(sympy.Pow):
        exponent = power.exp
        if exponent.atoms(sympy.Pow) or any(abs(n) > MAX_LITERAL_EXPONENT for n in exponent.atoms(sympy.Number)):
            raise FormulaError(f"the exponent in {power} is too large to evaluate safely")
    size = formula_size(unevaluated)
    if size.degree > MAX_FORMULA_DEGREE or size.terms > MAX_EXPANDED_TERMS or size.digits > MAX_CONSTANT_DIGITS:
        raise FormulaTooLarge(
            f"{stripped!r} is too large to judge automatically (degree {size.degree}, up to {size.terms} terms expanded, "
            f"constants of up to {size.digits} digits; the grader tries at most degree {MAX_FORMULA_DEGREE}, "
            f"{MAX_EXPANDED_TERMS} terms and {MAX_CONSTANT_DIGITS} digits)"
        )
    try:
        expr = parse_expr(stripped, local_dict=dict(local), global_dict=dict(_PARSER_GLOBALS), transformations=_TRANSFORMS)
    except Exception as exc:
        raise FormulaError(f"cannot evaluate {stripped!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(expr, sympy.Expr) or expr.atoms(AppliedUndef):
        raise FormulaError(f"{stripped!r} is not an arithmetic formula")
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise FormulaError(f"{stripped!r} is undefined (it divides by zero)")
    return expr


class FormulaSize(NamedTuple):
    """Bounds read from a formula as parsed, before anything is expanded or evaluated (:func:`formula_size`)."""

    degree: int  #: its polynomial degree, a denominator's counted (a fraction's simplification must expand it)
    terms: int  #: the terms its full expansion could have
    digits: int  #: the decimal digits its constants could grow to (``(9**64)**64`` has 3,907)


def formula_size(expr: sympy.Basic) -> FormulaSize:
    """:class:`FormulaSize` of a formula parsed *unevaluated*. A power by a name (``2**k``) counts as the power 1."""
    if expr.is_Symbol:
        return FormulaSize(1, 1, 0)
    if expr.is_Rational:
        return FormulaSize(0, 1, len(str(abs(int(expr.p)))) + len(str(int(expr.q))) - 1)
    if not expr.args:
        return FormulaSize(0, 1, 1)
    parts = [formula_size(arg) for arg in expr.args]
    digits = sum(p.digits for p in parts)
    if expr.is_Mul:
        return FormulaSize(sum(p.degree for p in parts), min(math.prod(p.terms for p in parts), _CAP), min(digits, _CAP))
    if expr.is_Pow:
        base, exponent = parts[0], expr.exp
        power = abs(int(exponent.p)) if exponent.is_Rational else 1
        return FormulaSize(base.degree * power, min(math.comb(base.terms + power - 1, power), _CAP), min(base.digits * power, _CAP))
    # a sum; floor, Min, Mod...: their arguments' bounds
    return FormulaSize(max(p.degree for p in parts), min(sum(p.terms for p in parts), _CAP), min(digits, _CAP))


_CAP = 10**9


# =========================================================================== integer domains


@dataclass(frozen=True)
class IntegerDomain:
    """Integer points to enumerate: one range per symbol, filtered by ``where``."""

    ranges: Mapping[str, range]
    where: Callable[[dict[str, int]], bool] | None = None
    description: str = ""

    def points(self) -> Iterator[dict[str, int]]:
        names = list(self.ranges)
        for values in itertools.product(*(self.ranges[n] for n in names)):
            point = dict(zip(names, values, strict=True))
            if self.where is None or self.where(point):
                yield point

    def __str__(self) -> str:
        return self.description or ", ".join(f"{n} in {r.start}..{r.stop - 1}" for n, r in self.ranges.items())


# =========================================================================== exact values


class _Unsupported(Exception):
    """An expression node the exact evaluator does not handle (sympy takes over)."""


def _compile(expr: sympy.Basic) -> Callable[[Mapping[str, int]], Fraction]:
    """Turn ``expr`` into a closure computing its exact value from integer symbol values.

    Exact (Python fractions, so ``floor(8/3)`` never suffers float rounding)
    and, compiled once, fast enough to check tens of thousands of points --
    far faster than ``subs``. Raises :class:`_Unsupported` for nodes it does
    not know (``sqrt``); callers then fall back to sympy.
    """
    if expr.is_Symbol:
        name = expr.name
        return lambda env: Fraction(env[name])
    if expr.is_Rational:
        constant = Fraction(int(expr.p), int(expr.q))
        return lambda env: constant
    parts = [_compile(a) for a in expr.args]
    if expr.is_Add:
        return lambda env: sum((part(env) for part in parts), Fraction(0))
    if expr.is_Mul:

        def product(env):
            out = Fraction(1)
            for part in parts:
                out *= part(env)
            return out

        return product
    if expr.is_Pow:
        if not expr.exp.is_Integer:
            raise _Unsupported(f"power {expr}")
        base, exponent = parts[0], int(expr.exp)
        return lambda env: base(env) ** exponent
    unary: dict[Any, Callable[[Fraction], Fraction]] = {
        sympy.floor: lambda v: Fraction(v.__floor__()),
        sympy.ceiling: lambda v: Fraction(v.__ceil__()),
        sympy.Abs: abs,
    }
    if expr.func in unary:
        fn, (arg,) = unary[expr.func], parts
        return lambda env: fn(arg(env))
    if expr.func is sympy.Min:
        return lambda env: min(part(env) for part in parts)
    if expr.func is sympy.Max:
        return lambda env: max(part(env) for part in parts)
    if expr.func is sympy.Mod:
        a, b = parts
        return lambda env: a(env) % b(env)
    raise _Unsupported(type(expr).__name__)


def exact_evaluator(expr: sympy.Expr) -> Callable[[Mapping[str, int]], Any]:
    """A function from ``{name: int}`` to the exact value of ``expr`` (an int
    when integral, a sympy number for what :func:`_compile` cannot handle, or
    a string saying it is undefined)."""
    try:
        compiled = _compile(expr)
    except _Unsupported:

        def slow(env):
            point = {s: sympy.Integer(env[s.name]) for s in expr.free_symbols}
            value = sympy.nsimplify(expr.xreplace(point))
            return "undefined" if value.has(sympy.zoo, sympy.nan) else value

        return slow

    def fast(env):
        try:
            value = compiled(env)
        except ZeroDivisionError:
            return "undefined (division by zero)"
        return value.numerator if value.denominator == 1 else value

    return fast


def same_value(a: Any, b: Any) -> bool:
    """Whether two exact values are equal: ``==`` for ints and fractions, a
    sympy difference for the irrational values :func:`exact_evaluator` can
    return (``sqrt(2) == 2**(1/2)``), and never an exception."""
    if isinstance(a, sympy.Basic) or isinstance(b, sympy.Basic):
        try:
            return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0
        except (TypeError, sympy.SympifyError):
            return False
    return a == b


# =========================================================================== equivalence


@dataclass(frozen=True)
class EquivalenceResult:
    """Whether a formula answer is equivalent to the truth, and how that was decided.

    ``method`` "undecided": the grader could not judge it (too large, or not decided in time) -- falsy like a
    wrong answer, so a check must ask :attr:`undecided` first and send the question to a TA.
    """

    equivalent: bool
    method: str  # "symbolic" | "exhaustive" | "parse" | "undecided"
    reason: str
    answer: str = ""
    truth: str = ""
    cases: int = 0
    counterexample: dict[str, Any] | None = field(default=None)

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def undecided(self) -> bool:
        return self.method == "undecided"


DEFAULT_RANGE = range(1, 11)
_MAX_SYMBOLIC_OPS = 80
#: Wall seconds one judgement may take in all (parse, proof, enumeration), in its child process.
FORMULA_SECONDS = 20.0
#: Of which sympy's proof attempt may take this many; past it the enumeration decides.
SYMBOLIC_SECONDS = 5.0
#: Points tried before sympy is asked (spread over the domain by a stride; the whole domain when it is smaller).
SAMPLE_POINTS = 256


def equivalent(
    answer: str,
    truth: str | sympy.Expr,
    symbols: Iterable[str],
    domain: IntegerDomain | Mapping[str, range] | None = None,
    *,
    seconds: float = FORMULA_SECONDS,
) -> EquivalenceResult:
    """Decide whether the formula ``answer`` means the same as ``truth``, within ``seconds``.

    1. Parse safely (:func:`parse_formula`); an unreadable answer is *not
       equivalent*, with the parser's reason; one too large to try
       (:class:`FormulaTooLarge`) is *undecided*.
    2. Evaluate exactly at :data:`SAMPLE_POINTS` points spread over ``domain``
       (every symbol in 1..10 when none is given): a differing point is the
       counterexample. This comes before sympy because it is cheap and bounded,
       while sympy's proof can sit in one C call past any timer (issue 25).
    3. Symbolic: ``simplify(answer - truth) == 0`` proves equivalence for all
       values (given at most :data:`SYMBOLIC_SECONDS`).
    4. Otherwise enumerate the whole domain: equal everywhere is equivalent
       *on that domain*; the first differing point is the counterexample.

    Steps 1-4 run in a forked child killed after ``seconds`` (:func:`reference.deadline.run_with_deadline`):
    an answer not judged by then is *undecided*, with the reason. The reference ``truth`` is parsed here
    first: an invalid one is the check author's error (``ValueError``).
    """
    names = tuple(symbols)
    try:
        truth_expr = parse_formula(truth, names) if isinstance(truth, str) else truth
    except FormulaError as exc:
        raise ValueError(f"the reference formula {truth!r} is invalid: {exc}") from None
    if domain is None:
        domain = IntegerDomain({n: DEFAULT_RANGE for n in names})
    elif not isinstance(domain, IntegerDomain):
        domain = IntegerDomain(dict(domain))
    _warm()
    outcome = run_with_deadline(_judge, answer, truth_expr, names, domain, seconds=seconds)
    if outcome.status == "done":
        return EquivalenceResult(**outcome.value)
    shown = str(answer)[:MAX_FORMULA_LENGTH]
    if outcome.status == "timeout":
        reason = f"the grader could not decide within {seconds:g} s whether {shown!r} equals {truth_expr}"
    else:
        reason = f"the grader could not judge {shown!r}: {outcome.reason}"
    return EquivalenceResult(False, "undecided", reason, shown, str(truth_expr))


@functools.cache
def _warm() -> None:
    """What every child would otherwise do first, done once here: ``simplify``'s first call imports
    ``sympy.physics.units`` (0.4 s), which each fork then shares."""
    sympy.simplify(sympy.Symbol("x", integer=True) + 1)


def _judge(answer: str, truth_expr: sympy.Expr, names: tuple[str, ...], domain: IntegerDomain) -> dict[str, Any]:
    """:func:`equivalent`'s steps, in its child process: the verdict as a dictionary of plain data."""

    def result(equivalent: bool, method: str, reason: str, cases: int = 0, counterexample: dict | None = None) -> dict[str, Any]:
        return {
            "equivalent": equivalent,
            "method": method,
            "reason": reason,
            "answer": shown_answer,
            "truth": shown_truth,
            "cases": cases,
            "counterexample": counterexample,
        }

    shown_answer, shown_truth = str(answer)[:MAX_FORMULA_LENGTH], str(truth_expr)
    try:
        answer_expr = parse_formula(answer, names)
    except FormulaTooLarge as exc:
        return result(False, "undecided", str(exc))
    except FormulaError as exc:
        return result(False, "parse", str(exc))
    shown_answer = str(answer_expr)
    truth_at, answer_at = exact_evaluator(truth_expr), exact_evaluator(answer_expr)
    points = list(domain.points())

    def first_difference(chosen: list[dict[str, int]]) -> dict[str, Any] | None:
        for point in chosen:
            want, got = truth_at(point), answer_at(point)
            if not same_value(got, want):
                counterexample = {**point, "answer": str(got), "expected": str(want)}
                tried = points.index(point) + 1
                return result(False, "exhaustive", f"at {point} the answer gives {got}, expected {want}", tried, counterexample)
        return None

    refuted = first_difference(points[:: max(1, len(points) // SAMPLE_POINTS)])
    if refuted is not None:
        return refuted
    difference = answer_expr - truth_expr
    try:
        with interrupt_after(SYMBOLIC_SECONDS):
            proven = sympy.count_ops(difference) <= _MAX_SYMBOLIC_OPS and sympy.simplify(difference) == 0
    except OutOfTime:
        proven = False  # sympy could not say in time: the enumeration decides
    if proven:
        return result(True, "symbolic", f"{shown_answer} simplifies to {shown_truth}", 1)
    refuted = first_difference(points)
    if refuted is not None:
        return refuted
    cases = len(points)
    return result(True, "exhaustive", f"equal on all {cases} integer cases of {domain}", cases)
