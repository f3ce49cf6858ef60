"""The clean room: the statements a graded name needs, taken from the notebook's file, for a second kernel.

The notebook's own kernel ran every cell, so its state is whatever the student's code made of it: a stub swapped for
another function by ``exec``, a ``__code__`` replaced in a later cell, a ``globals()[...] =`` definition, patched
``torch.allclose``. The functions, classes and models a question grades are therefore built elsewhere -- in a second
kernel that never runs a cell (``grader/kernel/room.py`` runs there) -- from what the *source* defines, chosen here:

* the ``def``/``class`` that defines the graded name (its last one in the notebook, as ``grader.source.source_index`` reads it);
* every top-level import (cheap, and a star import binds names nobody can list);
* for each name those statements read, the statement that last binds it at the top level (a ``def``, a ``class``, an
  assignment to plain names) and the statements that build on it after that: ``@d2l.add_to_class(C)`` methods,
  ``C.attr = ...`` (never a dunder such as ``__code__``), ``X[...] = ...``, ``x += ...`` and the few method calls that
  assemble a model (``net.add_module(...)``, ``layers.append(...)``); then the names *they* read, and so on.

Nothing else runs there: no training loop, no ``exec`` at the top level, no ``globals()`` write, no attribute patch of a
library. The statements run in notebook order, each on its own (one that raises, e.g. ``import my_utils`` of a file the
student did not hand in, costs only what it defines), and each keeps the cell's own line numbers, so an error points at
the student's line. Only parsing happens here; the kernel side forks a fresh process for every request
(``grader/kernel/room.py``), so no call can leave state behind for the next.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

from nbformat import NotebookNode

from grader.source.source_index import code_cells, parse_cell

#: Method calls on a notebook name that build a model or a list of layers in place: kept with the name.
BUILDING_CALLS = frozenset({"add_module", "append", "extend", "insert", "apply", "register_buffer", "register_parameter", "update"})
#: Blocks whose bodies are read for top-level statements, as ``grader.source.source_index`` reads them.
_BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.TryStar)
#: Modules imported once in the clean room's kernel, before any request forks it: every fork then finds them loaded.
PRELOAD = ("torch", "torch.nn", "torch.nn.functional", "torchvision", "numpy", "d2l.torch")


@dataclass(frozen=True)
class RoomStatement:
    """One top-level statement of the notebook that may run in the clean room."""

    cell: int  #: index into ``notebook.cells`` (markdown counted)
    line: int  #: first line (its first decorator's) inside the cell, 1-based
    kind: str  #: "def" | "class" | "import" | "assign" | "builds"
    text: str  #: the statement alone, preceded by blank lines so that it compiles with the cell's line numbers
    binds: tuple[str, ...]  #: names it binds ("import", "def", "class", "assign")
    reads: frozenset[str]  #: names it reads that a top-level binding may provide
    on: str | None = None  #: "builds": the name it changes (``C.attr = ...``, ``net.add_module(...)``, ``@d2l.add_to_class(C)``)


@dataclass(frozen=True)
class CellUse:
    """What one whole cell binds, changes in place and reads, for :meth:`RoomPlan.replay`."""

    text: str  #: the cell as the kernel ran it
    binds: frozenset[str]  #: names any statement of the cell stores (a def's name, a loop's target, an import)
    changes: frozenset[str]  #: names it changes in place (``X[:, 2:6] = 0``, ``net.weight.data[:] = ...``, ``x += 1``)
    reads: frozenset[str]  #: every name it loads, a def's body included (what a function reads at call time)
    star: bool  #: a ``from m import *``: it may bind any name


@dataclass
class RoomPlan:
    """Every statement the clean room may run, and which of them each graded name needs."""

    statements: list[RoomStatement] = field(default_factory=list)
    cells: dict[int, str] = field(default_factory=dict)  #: each cell's text as the kernel ran it, for tracebacks
    #: Every code cell that parses, whole: what a replay (:meth:`replay`) runs.
    whole: dict[int, CellUse] = field(default_factory=dict)
    _closures: dict[str, dict] = field(default_factory=dict, repr=False)

    def replay(self, cell: int) -> list[dict]:
        """The cells a rerun of ``cell`` needs, whole and in notebook order (``[{"cell": i, "text": ...}]``): for each
        name a needed cell reads, the last earlier cell that binds it and the cells after that one that change it in
        place, then what *those* read, and so on. Values graded after a cell (``learn_kernel``'s trained weight) are
        recomputed from these in the clean room, so what the notebook's kernel kept decides nothing. A cell that only
        trains another model is not needed and does not run. Empty when ``cell`` is no code cell that parses."""
        if cell not in self.whole:
            return []
        needed: set[int] = set()
        queue = [cell]
        while queue:
            index = queue.pop()
            if index in needed:
                continue
            needed.add(index)
            for name in self.whole[index].reads:
                queue.extend(self._providers(name, index))
            queue.extend(i for i, use in self.whole.items() if i < index and use.star)  # a star import binds anything
        return [{"cell": i, "text": self.whole[i].text} for i in sorted(needed)]

    def _providers(self, name: str, before: int) -> list[int]:
        """The last cell before ``before`` that binds ``name`` and the cells between that change it in place."""
        earlier = [i for i in sorted(self.whole) if i < before]
        bound = next((i for i in reversed(earlier) if name in self.whole[i].binds), None)
        changed = [i for i in earlier if name in self.whole[i].changes and (bound is None or i > bound)]
        return ([bound] if bound is not None else []) + changed

    def needs(self, name: str) -> dict:
        """``{"run": [statement ids in notebook order], "anchor": {name: id}}`` for a graded ``def``/``class``; the anchor
        is the statement whose result is graded, even where a later statement rebinds the name. Empty "run" when the
        source defines no ``def``/``class`` of that name."""
        if name not in self._closures:
            self._closures[name] = self._closure(name)
        return self._closures[name]

    def _closure(self, name: str) -> dict:
        anchor = self._last(name, ("def", "class"))
        if anchor is None:
            return {"run": [], "anchor": {}}
        imports = {i for i, s in enumerate(self.statements) if s.kind == "import"}
        needed: set[int] = set()
        queue = [anchor]
        while queue:
            index = queue.pop()
            if index in needed:
                continue
            needed.add(index)
            statement = self.statements[index]
            if statement.kind in ("def", "class", "assign"):  # a library's module is never changed in place here
                for bound in statement.binds:
                    queue.extend(self._building(bound, index))
            for read in statement.reads:
                found = anchor if read == name else self._last(read)
                if found is not None:
                    queue.append(found)
        return {"run": sorted(needed | imports), "anchor": {name: anchor}}

    def _last(self, name: str, kinds: tuple[str, ...] = ("def", "class", "assign", "import")) -> int | None:
        return next((i for i in range(len(self.statements) - 1, -1, -1) if self._binds(i, name, kinds)), None)

    def _binds(self, index: int, name: str, kinds: tuple[str, ...]) -> bool:
        statement = self.statements[index]
        return statement.kind in kinds and name in statement.binds

    def _building(self, name: str, after: int) -> list[int]:
        """Statements after ``after`` that change ``name`` in place (methods added, layers appended)."""
        return [i for i in range(after + 1, len(self.statements)) if self.statements[i].on == name]

    def preamble(self) -> str:
        """Kernel code, run once the clean room's kernel is up, that hands it the statements (nothing runs yet)."""
        data = {
            "statements": [{"cell": s.cell, "text": s.text} for s in self.statements],
            "cells": {str(k): v for k, v in self.cells.items()},
            "preload": list(PRELOAD),
        }
        return f"__import__('_hwgrader').room_load({json.dumps(data)!r})\n"


def plan_room(notebook: NotebookNode) -> RoomPlan:
    """Every statement of a notebook (already through ``grader.source.neutralize``) the clean room may run."""
    plan = RoomPlan()
    for number, source in code_cells(notebook):
        try:
            tree, text = parse_cell(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # the source index reports such a cell
            continue
        plan.whole[number] = _cell_use(tree, text)
        lines = text.split("\n")
        found = [s for node in _top_level(tree.body) if (s := _statement(node, number, lines)) is not None]
        if found:
            plan.cells[number] = text
            plan.statements.extend(found)
    return plan


def _cell_use(tree: ast.Module, text: str) -> CellUse:
    uses = _Uses()
    uses.block(tree.body)
    uses.changes.discard("")
    return CellUse(text, frozenset(uses.binds), frozenset(uses.changes), frozenset(uses.reads), uses.star)


class _Uses:
    """Walks a cell's statements in the order they run: a name loaded before the cell binds it is read from outside
    (``X = X.reshape(...)`` reads the earlier ``X``); a loop variable or a name the cell bound first is its own."""

    def __init__(self) -> None:
        self.binds: set[str] = set()
        self.changes: set[str] = set()
        self.reads: set[str] = set()
        self.star = False

    def block(self, body: list[ast.stmt]) -> None:
        for node in body:
            self.statement(node)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for part in [*node.decorator_list, *_defaults(node)]:
                self.load(part)
            self.load(node, own=_locals(node))  # what its body reads from the notebook, when it is called
            self.binds.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self.star = self.star or any(a.name == "*" for a in node.names)
            self.binds.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            if node.value is not None:
                self.load(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if isinstance(node, ast.AugAssign):
                self.load(node.target)
            for target in targets:
                self.store(target)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.load(node.iter)
            self.store(node.target)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.load(item.context_expr)
                if item.optional_vars is not None:
                    self.store(item.optional_vars)
            self.block(node.body)
        elif isinstance(node, ast.If | ast.While):
            self.load(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            self.block(node.body)
            for handler in node.handlers:
                if handler.type is not None:
                    self.load(handler.type)
                if handler.name:
                    self.binds.add(handler.name)
                self.block(handler.body)
            self.block(node.orelse)
            self.block(node.finalbody)
        else:
            self.load(node)
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store | ast.Del):
                    self.binds.add(inner.id)

    def load(self, node: ast.AST, own: frozenset[str] = frozenset()) -> None:
        """Names ``node`` reads that neither the cell (so far) nor the expression itself binds; in-place changes."""
        inner = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}  # comprehensions
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in self.binds | inner | own:
                self.reads.add(n.id)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and _changes_in_place(n.func.attr):
                self.changes.add(_root(n.func.value))  # ``X.fill_(0)``, ``net.apply(init)``

    def store(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.binds.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
            for part in target.elts if not isinstance(target, ast.Starred) else [target.value]:
                self.store(part)
        else:  # ``X[:, 2:6] = 0``, ``net.weight.data[:] = ...``: the name's value changes in place
            self.load(target)
            self.changes.add(_root(target))


def _changes_in_place(method: str) -> bool:
    """torch's in-place methods end in ``_`` (``fill_``, ``zero_``); the model-building calls change their object."""
    return (method.endswith("_") and not method.startswith("_")) or method in BUILDING_CALLS


def _defaults(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.expr]:
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *(k.value for k in node.keywords)]
    return [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]


def _locals(node: ast.AST) -> frozenset[str]:
    """The names a def or class binds for itself: its parameters and every name stored inside it."""
    inner = [n for n in ast.walk(node) if n is not node]
    bound = {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.arg for n in inner if isinstance(n, ast.arg)}
    bound |= {n.name for n in inner if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    return frozenset(bound)


def _root(node: ast.expr) -> str:
    """``X`` for ``X``, ``X.a.b``, ``X[0].c`` and ``X.f()``; "" when the chain does not start at a name."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements in source order, those inside ``if``/``try``/``with``/loops included, none inside a def."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, _BLOCKS):
            for block in ("body", "handlers", "orelse", "finalbody"):
                for part in getattr(node, block, []):
                    out.extend(_top_level(part.body if isinstance(part, ast.ExceptHandler) else [part]))
        else:
            out.append(node)
    return out


def _statement(node: ast.stmt, cell: int, lines: list[str]) -> RoomStatement | None:
    """The statement as the clean room would run it, or None for one it never runs."""
    kind, binds, on = _classify(node)
    if kind is None:
        return None
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    text = _text(node, first, lines)
    if text is None:
        return None
    return RoomStatement(cell, first, kind, text, binds, frozenset(_reads(node)), on)


def _classify(node: ast.stmt) -> tuple[str | None, tuple[str, ...], str | None]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        target = _added_to(node) if not isinstance(node, ast.ClassDef) else None
        return ("def" if not isinstance(node, ast.ClassDef) else "class"), (node.name,), target
    if isinstance(node, ast.Import | ast.ImportFrom):
        return "import", tuple((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*"), None
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n for t in targets for n in _plain_names(t)]
        if all(_plain_names(t) for t in targets):
            return "assign", tuple(names), None
        if len(targets) == 1 and (changed := _changed_name(targets[0])) is not None:
            return "builds", (), changed
        return None, (), None
    if isinstance(node, ast.AugAssign) and (changed := _changed_name(node.target, plain=True)) is not None:
        return "builds", (), changed
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        if isinstance(func, ast.Attribute) and func.attr in BUILDING_CALLS and isinstance(func.value, ast.Name):
            return "builds", (), func.value.id
    return None, (), None


def _plain_names(target: ast.expr) -> list[str]:
    """The names an assignment target binds when it is only names (``a``, ``a, b``, ``[a, *rest]``); [] otherwise."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _plain_names(target.value)
    if isinstance(target, ast.Tuple | ast.List) and target.elts:
        parts = [_plain_names(e) for e in target.elts]
        return [n for p in parts for n in p] if all(parts) else []
    return []


def _changed_name(target: ast.expr, plain: bool = False) -> str | None:
    """``C`` for ``C.attr = ...`` (never a dunder: ``f.__code__ = ...`` swaps code) and ``X[...] = ...``; for ``x += 1``
    (``plain``) also ``x`` itself."""
    if plain and isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return None if target.attr.startswith("__") and target.attr.endswith("__") else target.value.id
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        return target.value.id
    return None


def _added_to(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """``C`` for a method written ``@d2l.add_to_class(C)`` (d2l 1.0 adds a class's methods in later cells)."""
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and decorator.args and isinstance(decorator.args[0], ast.Name):
            if isinstance(decorator.func, ast.Attribute | ast.Name) and "add_to_class" in ast.unparse(decorator.func):
                return decorator.args[0].id
    return None


def _reads(node: ast.stmt) -> set[str]:
    """Names a statement reads that its own scope does not bind (a def's parameters and locals are its own)."""
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        inner = [n for n in ast.walk(node) if n is not node]
        bound = {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {n.arg for n in inner if isinstance(n, ast.arg)}
        decorated = {n.id for d in node.decorator_list for n in ast.walk(d) if isinstance(n, ast.Name)}
        loads -= bound - decorated
    return loads


def _text(node: ast.stmt, first: int, lines: list[str]) -> str | None:
    """The statement's own text, after ``first - 1`` blank lines (its line numbers are the cell's), or None."""
    last, end = node.end_lineno, node.end_col_offset
    if last is None or end is None or first > len(lines) or last > len(lines):
        return None
    part = lines[first - 1 : last]
    part[-1] = part[-1][:end]
    start = node.col_offset  # a decorated def's ``@`` stands in the same column as its ``def``
    part[0] = " " * start + part[0][start:]  # what shared its first line (``import x; y = 1``) is not this statement
    if start == 0:
        return "\n" * (first - 1) + "\n".join(part)
    if len(part) == 1:
        return "\n" * (first - 1) + part[0].lstrip()
    if first >= 2:  # inside a block: the indented text runs under an `if True:` on the line before it
        return "\n" * (first - 2) + "if True:\n" + "\n".join(part)
    return None  # an indented statement of several lines on a cell's first line: not something a cell holds
