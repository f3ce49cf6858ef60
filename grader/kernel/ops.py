"""Kernel side, part 3 of 4 (after snapshots.py): the operations the grader requests, and ``OPS``.

Sent as text with the other parts, as one module (see side.py, whose :func:`request`
looks each operation up in ``OPS``); ``decode``, ``_error``, ``_ns``, ``defs`` and ``values``
come from side.py. Each operation builds or calls the student's own definition, as
snapshotted, on inputs the grader chose, and replies ``{"ok": ...}``, ``{"missing": name}``,
``{"misfit": ...}`` or an error.
"""

# One module with side.py in the kernel: the names defined there are undefined to a linter here.
# ruff: noqa


def _defined(name):
    if name not in defs:
        return None
    return defs[name]


def rebinding(names):
    ns = _ns()
    out = {}
    for name in names:
        if name in defs and name in ns and ns[name] is not defs[name][0]:
            out[name] = type(ns[name]).__module__ + "." + type(ns[name]).__qualname__
    return out


def op_call(name, args, kwargs):
    entry = _defined(name)
    if entry is None:
        return {"missing": name}
    fn, cell = entry
    try:
        result = fn(*decode(args), **decode(kwargs))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
        return _error(exc, cell)
    return {"ok": result, "cell": cell}


def op_gradient(name, args, kwargs, wrt, output=None, cotangent=None):
    """Call the student's ``name`` with the tensor arguments at positions ``wrt`` requiring grad, and backpropagate
    ``cotangent`` (default ones) from its result (``output``: an index into a tuple or list result). Replies the
    result and the gradients (None where an argument was not used; ``grads`` None when the result has no graph)."""
    import torch

    entry = _defined(name)
    if entry is None:
        return {"missing": name}
    fn, cell = entry
    try:
        args = list(decode(args))
        for i in wrt:
            args[i] = args[i].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            result = fn(*args, **decode(kwargs))
            Y = result[output] if output is not None else result
            if not isinstance(Y, torch.Tensor) or not Y.requires_grad:
                return {"ok": {"output": Y, "grads": None}, "cell": cell}
            G = decode(cotangent) if cotangent is not None else torch.ones_like(Y)
            grads = torch.autograd.grad(Y, [args[i] for i in wrt], grad_outputs=G, allow_unused=True)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
        return _error(exc, cell)
    return {"ok": {"output": Y.detach(), "grads": [None if g is None else g.detach() for g in grads]}, "cell": cell}


def op_values(key):
    if key not in values:
        return {"missing": key}
    return {"ok": values[key]}


def _build(name, args, kwargs, seed):
    """``(model, cell, None)`` from the student's own class or function, or ``(None, None, reply)``."""
    import torch

    entry = _defined(name)
    if entry is None:
        return None, None, {"missing": name}
    factory, cell = entry
    try:
        torch.manual_seed(seed)
        return factory(*decode(args), **decode(kwargs)), cell, None
    except BaseException as exc:
        return None, cell, _error(exc, cell)


def _layers(model):
    import torch

    net = getattr(model, "net", None)
    if isinstance(net, torch.nn.Sequential):
        return list(net.named_children())
    if isinstance(model, torch.nn.Sequential):
        return list(model.named_children())
    return None


def op_summary(name, args, kwargs, input_shape, seed):
    import torch

    model, cell, failed = _build(name, args, kwargs, seed)
    if failed:
        return failed
    try:
        model.eval()
        rows = []
        with torch.no_grad():
            X = torch.zeros(tuple(input_shape))
            layers = _layers(model)
            if layers is None:
                Y = model(X)
                rows.append({"name": "", "kind": type(model).__name__, "shape": list(Y.shape)})
            else:
                for lname, layer in layers:
                    X = layer(X)
                    rows.append({"name": lname, "kind": type(layer).__name__, "shape": list(X.shape)})
    except BaseException as exc:
        return _error(exc, cell)
    # Only the rows: the grader counts parameters and judges layers itself (grader/checking/equivalence.py).
    return {"ok": {"rows": rows, "cell": cell}}


def _state(model):
    state = model.state_dict()
    return [t.detach().clone() for t in state.values()], list(state.keys())


def op_forward(name, args, kwargs, X, seed, state=None, modes=("train", "eval")):
    """Build, materialise on X, optionally load ``state`` by order, run forward in each mode."""
    import torch

    model, cell, failed = _build(name, args, kwargs, seed)
    if failed:
        return failed
    try:
        X = decode(X)
        with torch.no_grad():
            model.eval()
            model(X)  # materialise lazy layers
            if state is not None:
                _load_by_order(model, decode(state))
            state_out, keys = _state(model)  # before the forwards below change BatchNorm statistics
        outputs = {}
        for mode in modes:
            model.train(mode == "train")
            # Each mode twice: with gradients on and under no_grad, the function must not depend on which (a
            # model that is the book's only under no_grad, or a mode switched by torch.is_grad_enabled(), is
            # caught). The first forward leaves no trace: the state (BatchNorm's running statistics) is put back.
            kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
            for grad in (mode != "train", mode == "train"):  # the way the mode is used last: training with gradients
                if grad == (mode == "train"):
                    model.load_state_dict(kept)
                torch.manual_seed(seed)  # the grader draws dropout masks from the same seed
                with torch.enable_grad() if grad else torch.no_grad():
                    out = model(X)
                key = mode if grad == (mode == "train") else f"{mode}, {'with gradients' if grad else 'under no_grad'}"
                outputs[key] = out.detach() if isinstance(out, torch.Tensor) else out
    except Misfit as exc:
        return _misfit(exc, cell)
    except BaseException as exc:
        return _error(exc, cell)
    return {"ok": {"outputs": outputs, "state": state_out, "keys": keys, "cell": cell}}


class Misfit(Exception):
    """The grader's weights do not fit the student's model (another number or shape of tensors)."""


def _load_by_order(model, tensors):
    sd = model.state_dict()
    try:
        if len(tensors) != len(sd) or any(list(t.shape) != _shape_of(v) for t, v in zip(tensors, sd.values())):
            raise ValueError("misfit")
        model.load_state_dict({k: t.to(v.dtype) for (k, v), t in zip(sd.items(), tensors)})
    except Exception:
        raise Misfit([[k, _shape_of(v)] for k, v in sd.items()][:2000]) from None


def _shape_of(tensor):
    """A state entry's shape; [-1] for a lazy parameter that was never materialised (its layer is never used)."""
    try:
        return [int(v) for v in tensor.shape]
    except Exception:
        return [-1]


def _misfit(exc, cell):
    """The reply for weights that do not fit: the student's state entries (name, shape), for the grader's message."""
    return {"misfit": exc.args[0], "cell": cell}


def op_train(name, args, kwargs, X, y, procedure, state=None):
    """Train a fresh instance, started from the grader's weights ``state``, by the grader's fixed procedure."""
    import torch
    from torch.nn import functional as F

    model, cell, failed = _build(name, args, kwargs, procedure["seed"])
    if failed:
        return failed
    try:
        X, y = decode(X), decode(y)
        with torch.no_grad():
            model.eval()
            model(X)
            if state is not None:
                _load_by_order(model, decode(state))
        before, keys = _state(model)
        model.train()
        torch.manual_seed(procedure["seed"])
        optimizer_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[procedure["optimizer"]]
        optimizer = optimizer_cls(model.parameters(), lr=procedure["lr"])
        losses = []  # for the report's curve only: the verdict recomputes losses from the states
        for _ in range(procedure["steps"]):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        after, _ = _state(model)
    except Misfit as exc:
        return _misfit(exc, cell)
    except BaseException as exc:
        return _error(exc, cell)
    return {"ok": {"before": before, "after": after, "keys": keys, "cell": cell, "losses": losses}}


def op_state_of(expression):
    """The state_dict of a model the notebook trained itself (the full budget)."""
    try:
        model = eval(expression, _ns())
        state, keys = _state(model)
    except BaseException as exc:
        return _error(exc)
    return {"ok": {"state": state, "keys": keys}}


OPS = {
    "call": op_call,
    "gradient": op_gradient,
    "values": op_values,
    "summary": op_summary,
    "forward": op_forward,
    "train": op_train,
    "state_of": op_state_of,
    "rebinding": lambda names: {"ok": rebinding(names)},
}
