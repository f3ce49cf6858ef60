"""Kernel side, part 2 of 4 (after side.py): the snapshots taken after the student's cells.

Sent as text with the other parts, as one module (see side.py); the names it uses and does
not define here (``_ns``, ``defs``, ``values``, ``SnapshotFailure``, ``_error``) come from side.py.
``snap_defs`` and ``snap_def_source`` keep the student's own definitions, ``snap_values`` named
values, and ``snap_scan`` the candidates of ``every_cell`` snapshots (values under any name).
"""

# One module with side.py in the kernel: the names defined there are undefined to a linter here.
# ruff: noqa
import sys


def snap_defs(names, cell):
    ns = _ns()
    for name in names:
        if name in ns:
            defs[name] = (ns[name], cell)


def snap_def_source(name, source, cell):
    """The student's own ``def``/``class`` of ``name`` when the same cell rebinds the name after it
    (``def pool2d ...`` then ``pool2d = nn.MaxPool2d(3)``): its statement is run once more, in the
    notebook's namespace, kept, and the later binding put back as the cell left it. ``source`` is the
    cell's text with every other line blank, so a traceback names the cell's own line numbers.
    """
    import linecache

    ns = _ns()
    missing = object()
    before = ns.get(name, missing)
    filename = room_filename(cell)  # a cell file for _error, numbered by the cell (room.py): the student's lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), ns)
        if name in ns:
            defs[name] = (ns[name], cell)
    except Exception:
        pass  # the cell's own run already recorded any error; the kernel's binding stays as it was
    finally:
        if before is missing:
            ns.pop(name, None)
        else:
            ns[name] = before


def snap_values(key, expressions, cell, failed=None):
    ns = _ns()
    taken = {"__cell__": cell}
    if failed:
        taken["__cell_error__"] = failed
    for name, expression in expressions.items():
        try:
            value = eval(expression, ns)
            import torch

            if isinstance(value, torch.Tensor):
                value = value.detach().clone()
            taken[name] = value
        except Exception as exc:
            taken[name] = SnapshotFailure(_error(exc)["error"])
    values[key] = taken


#: ``every_cell`` snapshots: key -> what was seen after the previous cell (small clones only), and
#: key -> the candidates recorded (each: the cell, why it is a candidate, and the values).
seen = {}
SCAN_MAX_ELEMENTS = 4096  # a value larger than this is never a candidate, and never copied
MAX_CANDIDATES = 64  # beyond this the first half is kept and the oldest of the rest is dropped
stepped = set()  # ids of the parameters an optimizer stepped since the last scan
accumulated = set()  # ids of the watched weights a gradient was accumulated into since the last scan
hooked = set()  # ids of the weights watched so (from the first scan that saw them)
_step_hook = []


def _watch_gradients(weight):
    """Once per weight: note each gradient accumulated into it, so that a weight changed by hand in a later cell
    (``conv2d.weight.data[:] = ...``) is not taken for one trained there, whatever gradient it still holds."""
    if id(weight) in hooked:
        return
    try:
        weight.register_post_accumulate_grad_hook(lambda p: accumulated.add(id(p)))
        hooked.add(id(weight))
    except Exception:
        pass  # a weight that takes no hook: its gradient, if any, is the evidence


def _watch_optimizers():
    """Once: note which parameters any optimizer steps (a module built, trained, and its grads set to None in one cell)."""
    if _step_hook:
        return
    _step_hook.append(True)

    def hook(optimizer, args, kwargs):
        for group in optimizer.param_groups:
            for param in group["params"]:
                stepped.add(id(param))

    try:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(hook)
    except Exception:
        pass  # an older torch: the weight-changed and gradient rules still apply


def _small_tensor(value, limit):
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return False
    if isinstance(value, torch.nn.parameter.UninitializedParameter) or type(value).__name__ == "UninitializedParameter":
        return False
    try:
        return value.numel() <= limit and not value.is_meta
    except Exception:
        return False


def _same(a, b):
    return a is not None and b is not None and a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())


def _scan_names(match, state, limit):
    """Candidate when every name holds a small tensor (of the given shapes) and one of ``changed`` changed."""
    ns = _ns()
    names = list(match["names"])
    shapes = {k: tuple(v) for k, v in match.get("shapes", {}).items()}
    now = {}
    for name in names:
        value = ns.get(name)
        if not _small_tensor(value, limit) or (name in shapes and tuple(value.shape) != shapes[name]):
            state.clear()  # a name that stops qualifying counts as changed when it qualifies again
            return None
        now[name] = value.detach().to("cpu").clone()
    changed = [n for n in match.get("changed", names) if not _same(state.get(n), now[n])]
    state.clear()
    state.update(now)
    if not changed:
        return None
    return {"changed": changed, "values": dict(now)}


def _scan_roles(match, state, limit):
    """The same values under any names: for each role (``X``), every small tensor of the role's shape;
    a candidate when a tensor of a ``changed`` role was bound or changed in this cell (``edges = corr2d(img, k)``)."""
    ns = _ns()
    roles = {role: tuple(shape) for role, shape in match.get("roles", {}).items()}
    found = {role: {} for role in roles}
    for name, value in list(ns.items()):
        if not isinstance(name, str) or name.startswith("_") or not _small_tensor(value, limit):
            continue
        for role, shape in roles.items():
            if tuple(value.shape) == shape:
                found[role][name] = value.detach().to("cpu").clone()
    changed_roles = [r for r in match.get("changed", list(roles)) if r in roles]
    fresh = {r: {n: t for n, t in found[r].items() if not _same(state.get((r, n)), t)} for r in changed_roles}
    state.clear()
    state.update({(r, n): t for r in found for n, t in found[r].items()})
    if not any(fresh.values()) or not all(found.values()):
        return None
    values = {role: dict(found[role]) for role in roles}
    values.update({role: dict(fresh[role]) for role in changed_roles})
    return {"changed": [r for r in changed_roles if fresh[r]], "roles": values}


def _conv_like(value, match, limit):
    """A module bound to a top-level name whose ``weight`` is (out, in, *kernel_size), materialised and small."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.nn.Module):
        return None
    weight = getattr(value, "weight", None)
    if not _small_tensor(weight, limit):
        return None
    if weight.dim() == 2 and int(match.get("in_channels", 1)) == 1 and int(match.get("out_channels", 1)) == 1:
        # a learner's own Conv2D (the book's 7.2 class, the first edition's): a 2-D weight of kernel_size
        want = tuple(int(v) for v in match.get("kernel_size", ()))
        return weight if not want or tuple(weight.shape) == want else None
    if weight.dim() != 4:
        return None
    want = (match.get("out_channels"), match.get("in_channels"), *tuple(match.get("kernel_size", (None, None))))
    if any(w is not None and int(w) != int(g) for w, g in zip(want, weight.shape)):
        return None
    return weight


def _scan_type(match, state, limit, ns=None):
    """Candidates among modules: ``trained`` where the weight changed since the previous cell, or a
    module first seen in this cell whose weight already has a gradient (built and trained in one cell).
    ``ns``: the namespace to scan (the clean room's replay, room.py); the notebook's by default."""
    ns = _ns() if ns is None else ns
    found = {}
    for name, value in list(ns.items()):
        if not isinstance(name, str) or name.startswith("_"):
            continue
        weight = _conv_like(value, match, limit)
        if weight is not None:
            fresh_grad = id(weight) in accumulated or (id(weight) not in hooked and weight.grad is not None)
            found[name] = (id(value), weight.detach().to("cpu").clone(), fresh_grad or id(weight) in stepped)
            _watch_gradients(weight)
    events = []
    for name, (ident, weight, has_grad) in found.items():
        before = state.get(name)
        if before is not None and before[0] == ident:
            if _same(before[1], weight):
                continue
            if has_grad:
                reason = "its weight changed during this cell, where gradients reached it"
                trained = True
            else:
                reason = "its weight changed during this cell, but no gradient reached it and no optimizer stepped it (set by hand)"
                trained = False
        elif has_grad:
            reason = "it was built in this cell and trained there (gradients flowed through it or an optimizer stepped it)"
            trained = True
        else:
            reason = "it was built in this cell (not trained)"
            trained = False
        events.append({"name": name, "trained": trained, "reason": reason, "values": {"weight": weight}})
    state.clear()
    state.update({name: (ident, weight) for name, (ident, weight, _) in found.items()})
    return events


def snap_scan(specs, cell, failed=None, hints=()):
    """After every cell: record each ``every_cell`` snapshot's candidates (see ``Snapshot`` in the grader)."""
    for key in specs:
        values.setdefault(key, {"__cell__": None, "candidates": []})
    if "torch" not in sys.modules:
        return  # no tensor or module can exist yet
    _watch_optimizers()
    for key, match in specs.items():
        limit = int(match.get("max_elements", SCAN_MAX_ELEMENTS))
        state = seen.setdefault(key, {})
        try:
            if "names" in match:
                found = _scan_names(match, state, limit)
                events = [found] if found else []
                if "roles" in match:  # under other names: only where the names themselves found nothing
                    by_role = _scan_roles(match, seen.setdefault(key + "/roles", {}), limit)
                    if by_role and not events:
                        events = [by_role]
            else:
                events = _scan_type(match, state, limit)
        except Exception:
            continue  # a namespace the scan cannot read is no candidate; the check says none was found
        record = values[key]
        for event in events:
            event["cell"] = cell
            event["hint"] = key in hints
            if failed:
                event["cell_error"] = failed
            record["candidates"].append(event)
            if len(record["candidates"]) > MAX_CANDIDATES:
                del record["candidates"][MAX_CANDIDATES // 2]
    stepped.clear()
    accumulated.clear()
