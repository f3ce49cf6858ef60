"""What the notebook's own source defines, read from the file by the grader.

The kernel's table of definitions can be written by the notebook itself (``sys.modules['_hwgrader'].defs['pool2d'] = ...``),
so only the source can say which names the student *wrote*: every top-level binding with its cell, line and signature, and
which flagged library functions a graded definition reaches through the notebook's own helpers. It only parses, never runs.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from nbformat import NotebookNode

_CODE_KINDS = ("def", "class")
_BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.TryStar)


@dataclass(frozen=True)
class Definition:
    name: str
    cell: int  #: index into ``notebook.cells`` (markdown counted), as ``snapshot_code.after_cell_code`` numbers them
    line: int  #: 1-based, inside that cell's source
    kind: str  #: "def" | "class" | "assign" | "import"
    signature: str | None  #: "(X, K)" for a def; a class's ``__init__`` parameters without self, "()" if its body has none
    parameters: tuple[str, ...]  #: names without self; ``*args``/``**kwargs`` keep their stars
    required: int  #: positional parameters without a default: what a caller must pass
    value: str | None  #: "assign": the callee when the right-hand side is a dotted call ("nn.Sequential"); "import": "module.name"
    source_line: str
    inherited: bool = False  #: a class with bases and no ``__init__`` of its own: its real signature is a base's


@dataclass
class SourceIndex:
    definitions: dict[str, list[Definition]] = field(default_factory=dict)  #: every top-level binding, in notebook order
    unparsable: list[tuple[int, str]] = field(default_factory=list)  #: (cell, SyntaxError message); other cells still count
    _nodes: dict[Definition, ast.AST | str | None] = field(
        default_factory=dict, repr=False
    )  #: def/class node, assigned value, import's path

    def last(self, name: str, kinds: Collection[str] = _CODE_KINDS) -> Definition | None:
        """The latest definition of ``name`` among ``kinds``: a later redefinition wins, as in the kernel."""
        return next((d for d in reversed(self.definitions.get(name, [])) if d.kind in kinds), None)

    def defines(self, name: str) -> bool:
        """Whether the source has a top-level ``def`` or ``class`` of that name: only those may be graded."""
        return self.last(name) is not None

    def bound(self, name: str) -> Definition | None:
        """The last top-level binding of any kind, to say e.g. "`LeNet` is an nn.Sequential, not a class"."""
        found = self.definitions.get(name)
        return found[-1] if found else None

    def call_names(self, definition: Definition) -> tuple[str, ...]:
        """The plain names an assignment's call starts with: ``("b1", "b2")`` for ``net = nn.Sequential(b1, b2, nn.Flatten())``.

        d2l-zh assembles its ResNet from stages bound earlier; these tell that ``net`` from a LeNet's of layers.
        """
        node = self._nodes.get(definition)
        names: list[str] = []
        for argument in node.args if isinstance(node, ast.Call) else []:
            if not isinstance(argument, ast.Name):
                break
            names.append(argument.id)
        return tuple(names)

    def library_calls(self, names: Iterable[str], flagged: set[str]) -> list[tuple[str, str]]:
        """Flagged calls reachable from the top-level defs/classes ``names``, as (call, via).

        A call matches by its last name (``F.conv2d``; ``conv2d`` from ``from ... import conv2d``;
        ``getattr(F, "conv2d")``). A call through an alias is reported as what the alias stands for,
        with "as `c`" in ``via``; one reached through another notebook function (or a method added
        with ``@d2l.add_to_class``) says "through `_helper` (cell 5)". Each is read once, so cycles end.
        """
        hits: dict[tuple[str, tuple], tuple[str, str]] = {}  # (call, route): one line per flagged function per route
        queue: deque[tuple[Definition, tuple[Definition, ...]]] = deque(  # (definition, helpers on the way)
            (d, ()) for d in map(self.last, names) if d is not None
        )
        seen: set[Definition] = set()
        while queue:
            definition, route = queue.popleft()
            if definition in seen:
                continue
            seen.add(definition)
            scope = self._code_node(definition)
            queue.extend((method, (*route, method)) for method in self._added_to(definition))
            local_bound = _bound_inside(scope)
            aliases: dict[str, str | None] = {}  # what each local name stands for so far (f = F.conv2d), None: nothing flagged
            # Statements and expressions: every kind handled below, all with a position (a stable sort keeps their order).
            inner = (n for n in ast.walk(scope) if n is not scope and isinstance(n, ast.stmt | ast.expr))
            for node in sorted(inner, key=lambda n: (n.lineno, n.col_offset)):  # an alias is bound before the call using it
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    for target, value in _assigned(node):
                        aliases[target.id] = self._resolve(value, flagged, aliases, local_bound) if value is not None else None
                elif isinstance(node, ast.ImportFrom):
                    aliases |= {a.asname or a.name: _import_value(node, a) for a in node.names if a.name in flagged}
                elif isinstance(node, ast.Call):
                    literal = _getattr_name(node) in flagged  # getattr(F, "conv2d") is the function itself, not an alias
                    call = _unparse(node) if literal else self._resolve(node.func, flagged, aliases, local_bound)
                    alias_name = "" if literal else getattr(node.func, "id", "")
                    if call is not None and (call, route) not in hits:
                        note = f"as `{alias_name}`" if alias_name and alias_name not in flagged else ""
                        through = "through " + " → ".join(f"`{d.name}` (cell {d.cell})" for d in route) if route else ""
                        hits[call, route] = (call, ", ".join(part for part in (through, note) if part))
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local_bound:
                    helper = self.bound(node.id)
                    if helper is not None and helper.kind in _CODE_KINDS and helper not in seen:
                        queue.append((helper, (*route, helper)))
        return list(hits.values())

    def _added_to(self, cls: Definition) -> list[Definition]:
        """Top-level defs decorated ``@d2l.add_to_class(cls)``: d2l 1.0 writes a class's methods in later cells."""
        return [
            d
            for found in self.definitions.values()
            for d in found
            if cls.kind == "class"
            and d.kind == "def"
            and any(
                isinstance(c, ast.Call) and any(isinstance(a, ast.Name) and a.id == cls.name for a in c.args)
                for c in self._code_node(d).decorator_list
            )
        ]

    def _code_node(self, definition: Definition) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
        """The statement of a ``def`` or ``class`` definition (the only kinds ``library_calls`` walks into)."""
        node = self._nodes[definition]
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)  # _bindings stores a def/class node itself
        return node

    def _resolve(
        self, expr: ast.AST, flagged: set[str], aliases: dict[str, str | None], local_bound: set[str], depth: int = 0
    ) -> str | None:
        """The flagged function ``expr`` stands for, as written where it was named; None if none."""
        if isinstance(expr, ast.Attribute):
            return _unparse(expr) if expr.attr in flagged else None
        if isinstance(expr, ast.Call):
            return _unparse(expr) if _getattr_name(expr) in flagged else None
        if not isinstance(expr, ast.Name) or depth > 20:  # depth: `a = b` / `b = a` at top level
            return None
        if expr.id in aliases or expr.id in local_bound:
            return aliases.get(expr.id)  # a parameter or local named like the library function is not it
        binding = self.bound(expr.id)
        if binding is None:
            return expr.id if expr.id in flagged else None  # a star import or builtin: only the name tells
        node = self._nodes[binding]
        if isinstance(node, str):
            return node if node.rsplit(".", 1)[-1] in flagged else None
        return self._resolve(node, flagged, {}, set(), depth + 1) if isinstance(node, ast.expr) else None


def index_notebook(notebook: NotebookNode) -> SourceIndex:
    """Index every code cell of a notebook already passed through ``grader.source.neutralize.neutralize``."""
    index = SourceIndex()
    for number, source in code_cells(notebook):
        try:
            tree = _parse(source)
            found = list(_bindings(tree.body, number, source.split("\n")))
        except (SyntaxError, ValueError) as error:  # ValueError: a null byte in the source
            lineno = getattr(error, "lineno", None)
            where = f" (line {lineno})" if lineno else ""
            index.unparsable.append((number, f"{getattr(error, 'msg', str(error))}{where}"))
            continue
        except (RecursionError, MemoryError):  # parentheses or operators nested past what the parser's stack holds
            index.unparsable.append((number, "nested too deeply for the grader to read"))
            continue
        for definition, node in found:
            index.definitions.setdefault(definition.name, []).append(definition)
            index._nodes[definition] = node
    return index


def code_cells(notebook: NotebookNode) -> Iterator[tuple[int, str]]:
    """Each code cell's index (markdown counted, as the rest of the grader numbers cells) and its source as one string."""
    for number, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":
            yield number, cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _unparse(node: ast.AST) -> str:
    """``ast.unparse``, which recurses once per level: a default or callee nested a few hundred deep (a cell the
    parser still reads) is shown as ``…`` instead of raising ``RecursionError``."""
    try:
        return ast.unparse(node)
    except RecursionError:
        return "…"


def render_signature(name: str, definition: Definition) -> str:
    """``vgg_block(num_convs, in_channels, out_channels)``: the name called as the source declares it."""
    return f"{name}{definition.signature or ''}"


def _parse(source: str) -> ast.Module:
    return parse_cell(source)[0]


def parse_cell(source: str) -> tuple[ast.Module, str]:
    """The cell as the kernel runs it, and that text: IPython's transformer turns the magics neutralize keeps into
    calls, line for line.

    Plain Python is parsed as is (the transformer is slow). The only cell magics left, ``%%time`` and
    ``%%capture``, run their body as Python: their first line is commented out to index the body in place.
    Raises what ``ast.parse`` raises for a cell that is not Python.
    """
    try:
        return ast.parse(source), source
    except SyntaxError:
        pass  # perhaps IPython syntax: transformed below, and a real error is raised from there
    lines = source.split("\n")
    if lines[0].lstrip().startswith("%%"):
        source = "\n".join([f"# {lines[0]}", *lines[1:]])
    from IPython.core.inputtransformer2 import TransformerManager  # here: a cell of plain Python never pays for it

    try:
        source = TransformerManager().transform_cell(source)
    except Exception:  # the transformer's own tokenizer failing: ast.parse below reports the cell
        pass
    return ast.parse(source), source


def _bindings(body: list[ast.stmt], cell: int, lines: list[str]) -> Iterator[tuple[Definition, ast.AST | str | None]]:
    """Top-level bindings in source order, looking inside ``if``/``try``/``with``/loops but not into functions."""

    def made(name: str, line: int, kind: str, value: str | None = None, **shape) -> Definition:
        text = lines[line - 1].strip() if line <= len(lines) else ""
        return Definition(
            name, cell, line, kind, **{"signature": None, "parameters": (), "required": 0, **shape}, value=value, source_line=text
        )

    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield made(node.name, node.lineno, "def", **_signature(node.args, drop_self=False)), node
        elif isinstance(node, ast.ClassDef):
            init = next((n for n in reversed(node.body) if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            inherited = any(_unparse(b) != "object" for b in node.bases)
            shape = _signature(init.args, drop_self=True) if init else {"signature": "()", "inherited": inherited}
            yield made(node.name, node.lineno, "class", **shape), node
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for target, value in _assigned(node):
                yield made(target.id, target.lineno, "assign", _dotted(value.func) if isinstance(value, ast.Call) else None), value
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in (a for a in node.names if a.name != "*"):  # `import torch.nn` binds `torch`
                name = alias.asname or alias.name.split(".")[0]
                if isinstance(node, ast.ImportFrom):
                    path = _import_value(node, alias)
                    yield made(name, alias.lineno, "import", path), path
                else:
                    yield made(name, alias.lineno, "import", alias.name if alias.asname else name), None
        elif isinstance(node, _BLOCKS):
            for block in ("body", "handlers", "orelse", "finalbody"):
                for part in getattr(node, block, []):
                    yield from _bindings(part.body if isinstance(part, ast.ExceptHandler) else [part], cell, lines)


def _signature(args: ast.arguments, drop_self: bool) -> dict:
    """Parameters, required count and a rendered "(a, b=1, *rest, key=None, **extra)" for one ``def``."""
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pieces = list(zip([a.arg for a in positional], defaults, strict=True))[1 if drop_self else 0 :]
    required = sum(1 for _, default in pieces if default is None)
    if args.vararg or args.kwonlyargs:
        pieces.append((f"*{args.vararg.arg}" if args.vararg else "*", None))
    pieces += [
        *zip([a.arg for a in args.kwonlyargs], args.kw_defaults, strict=True),
        *([(f"**{args.kwarg.arg}", None)] if args.kwarg else []),
    ]
    shown = [name if default is None else f"{name}={_unparse(default)}" for name, default in pieces]
    if slash := len(args.posonlyargs) - (1 if drop_self and args.posonlyargs else 0):
        shown.insert(slash, "/")
    return {"signature": f"({', '.join(shown)})", "parameters": tuple(n for n, _ in pieces if n != "*"), "required": required}


def _assigned(node: ast.Assign | ast.AnnAssign) -> list[tuple[ast.Name, ast.expr | None]]:
    """(name, the expression it receives) for each plain name an assignment binds."""
    value = node.value
    assert value is not None  # callers pass only assignments with a value (a bare ``x: int`` binds nothing)
    return [pair for target in (node.targets if isinstance(node, ast.Assign) else [node.target]) for pair in _pairs(target, value)]


def _pairs(target: ast.expr, value: ast.expr) -> list[tuple[ast.Name, ast.expr | None]]:
    """Element-wise for ``a, b = x, y``; each name gets a whole call's value for ``a, b = f()``, nothing for ``*rest``."""
    if isinstance(target, ast.Name):
        return [(target, value)]
    if isinstance(target, ast.Starred):
        return [(name, None) for name, _ in _pairs(target.value, value)]
    if not isinstance(target, ast.Tuple | ast.List):
        return []  # an attribute or subscript (``globals()['f'] = ...``) binds no name in the source
    starred = any(isinstance(e, ast.Starred) for e in [*target.elts, *getattr(value, "elts", [])])
    if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts) and not starred:
        return [pair for t, v in zip(target.elts, value.elts, strict=True) for pair in _pairs(t, v)]
    return [(name, value if isinstance(value, ast.Call) else None) for t in target.elts for name, _ in _pairs(t, value)]


def _import_value(node: ast.ImportFrom, alias: ast.alias) -> str:
    """ "torch.nn.functional.conv2d" for ``from torch.nn.functional import conv2d``; ".x" for ``from . import x``."""
    return f"{'.' * node.level}{node.module + '.' if node.module else ''}{alias.name}"


def _dotted(func: ast.expr) -> str | None:
    """``torch.nn.Sequential`` as written, or None for a callee that is not a dotted name."""
    text = _unparse(func)
    return text if isinstance(func, ast.Name | ast.Attribute) and all(p.isidentifier() for p in text.split(".")) else None


def _getattr_name(call: ast.Call) -> str | None:
    """ "conv2d" for ``getattr(F, "conv2d")``: a literal attribute name is as good as writing ``F.conv2d``."""
    literal = call.args[1] if isinstance(call.func, ast.Name) and call.func.id == "getattr" and len(call.args) >= 2 else None
    return literal.value if isinstance(literal, ast.Constant) and isinstance(literal.value, str) else None


def _bound_inside(scope: ast.AST) -> set[str]:
    """Names a def/class binds inside itself (parameters, locals, nested defs): they shadow the notebook's."""
    nodes = list(ast.walk(scope))
    return (
        {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        | {n.arg for n in nodes if isinstance(n, ast.arg)}
        | {(n.asname or n.name).split(".")[0] for n in nodes if isinstance(n, ast.alias)}
        | {n.name for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n is not scope}
    )
