"""Budgets: how much of a notebook's own training actually runs.

``full`` runs the notebook as written (on CUDA when there is one). ``quick`` keeps every check meaningful on a
laptop CPU and never raises an error the full data would not: before the first cell the kernel

* cuts Fashion-MNIST where torchvision reads it (so ``d2l.FashionMNIST``, the legacy ``load_data_fashion_mnist``
  and a learner's own loop alike) in place, in the data set's own ``data``/``targets``: every type and attribute
  the book exposes stays (``data.val.data``, ``classes``, indexing); the training split keeps at least
  :data:`MIN_TRAIN_IMAGES` images, so that ``num_batches // 5`` stays at least 1;
* caps every ``torch.utils.data.DataLoader``, whoever loops over it: a pass yields at most
  ``max(5, ceil(train_size / batch_size))`` batches (``len()`` agrees), each cut as a last partial batch is so
  that a pass holds about ``train_size`` images; after ``max_epochs`` whole passes over a data set each further
  pass (a learner's epoch 2..10) yields one batch; no loader workers;
* caps the epochs of d2l's named roads (``d2l.Trainer``, the legacy ``train_ch3``/``train_ch5``/``train_ch6``).

In both, every road reads the data folder (``--data-dir``) or torchvision's download cache, whatever ``root`` the
notebook names; a download that cannot happen is one line saying where the data belongs. The patch is kernel
code (text) wrapping d2l's, torch's and torchvision's functions, defined under :data:`BUDGET_CODE`, its errors about the
data folder under :data:`DATA_CODE` (either is reported as the grader's, ``grader.kernel.grader_faults``); ``grader.course.seeds``
seeds the kernel after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hw-grader" / "data"
#: The file name the budget's kernel code runs under: a traceback whose innermost frame is there is the grader's.
BUDGET_CODE = "<hw-grader budget>"
#: Where the budget raises what the data folder lacks or holds unreadable: the grader's error, never the notebook's.
DATA_CODE = "<hw-grader data>"
#: The fewest training images ``quick`` keeps (when the data has them): 20 batches of 256, so a loop that reports
#: every ``len(train_iter) // 5`` batches (d2l-zh's ``train_ch6``, learners' copies of it) never divides by zero.
MIN_TRAIN_IMAGES = 20 * 256


@dataclass(frozen=True)
class Budget:
    name: str  # "quick" | "full"
    data_dir: Path
    train_size: int = 1000
    val_size: int = 250
    max_epochs: int = 1
    #: Under ``full``: at most this many DataLoader workers per d2l data module (None: the notebook's own
    #: choice). Packed kernels share the machine's cores; d2l's default of 4 workers each starves the GPUs.
    loader_workers: int | None = None

    @classmethod
    def of(cls, name: str, data_dir: Path, assignment_budgets: dict, loader_workers: int | None = None) -> Budget:
        """Budget ``name`` with the quick subset sizes an assignment's config sets (``[budgets.quick]``)."""
        quick = assignment_budgets.get("quick", {})
        return cls(name, data_dir, quick.get("train_size", 1000), quick.get("val_size", 250), quick.get("max_epochs", 1), loader_workers)

    def preamble(self, kernel_data_dir: str | Path | None = None) -> str:
        """Kernel code applying this budget to d2l and torchvision (run here, before the student's cells).

        ``kernel_data_dir``: the data folder as the kernel names it -- the kernel's data view
        (``/data`` in the sandbox, see ``grader.course.data_view``), not the folder the TA named, which
        the kernel cannot see. None: ``data_dir`` itself (a kernel given the folder as it is).
        """
        data_dir = self.data_dir if kernel_data_dir is None else kernel_data_dir
        settings = {
            "quick": self.name == "quick",
            "data_dir": str(data_dir),
            "train_size": int(self.train_size),
            "train_images": max(int(self.train_size), MIN_TRAIN_IMAGES),
            "val_size": int(self.val_size),
            "max_epochs": int(self.max_epochs),
            "loader_workers": None if self.loader_workers is None else int(self.loader_workers),
        }
        # Defined under its own file name, so that an error raised inside it reads as the grader's (grader/kernel/execute.py).
        return f"exec(compile({_PREAMBLE!r}, {BUDGET_CODE!r}, 'exec'))\n_hwgrader_budget({settings!r})\ndel _hwgrader_budget\n"


#: The kernel side of a budget. Every road to data and training is wrapped (never replaced: the book's code
#: still runs), each patch on its own so that a module missing from the kernel costs only its own patch:
#:
#: - ``torchvision.datasets.FashionMNIST`` and ``MNIST``, for any ``root``: read from the data folder
#:   (``download`` honoured only when the files are absent there); under ``quick`` their own ``data``/``targets``
#:   cut in place to the first ``train_images`` / ``val_size`` images, which every road below then sees;
#: - ``d2l.DataModule`` (root, loader workers), ``d2l.Trainer`` (epochs);
#: - the legacy API of d2l's earlier editions, in ``d2l.torch`` and in an old port's top-level ``d2l``
#:   where it exists: ``load_data_fashion_mnist`` (loader workers), ``train_ch3``/``train_ch5``/``train_ch6``
#:   (epochs; ``train_ch6``'s plot no longer divides by zero on fewer than five batches);
#: - under ``quick``, ``torch.utils.data.DataLoader`` itself (``__iter__``/``__len__``): the batches of a
#:   pass and the passes that count, for every loop over any loader, the learner's own included.
_PREAMBLE = r'''
def _hwgrader_budget(budget):
    import contextlib, functools, inspect, io, linecache, os, sys

    quick, data_dir = budget["quick"], budget["data_dir"]

    def workers(n):
        if quick:
            return 0
        return n if budget["loader_workers"] is None else min(n, budget["loader_workers"])

    def torchvision_datasets():
        import torchvision.datasets as datasets

        served = ("FashionMNIST", "MNIST")
        # Raised under DATA_CODE, the wrapper's frame hidden: the student's line, then the message.
        source, space, name = "def no_data(message):\n    raise RuntimeError(message) from None\n", {}, "<hw-grader data>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        exec(compile(source, name, "exec"), space)
        no_data = space["no_data"]
        init = datasets.MNIST.__init__  # FashionMNIST inherits it
        if getattr(init, "_hwgrader", False):
            return
        signature = inspect.signature(init)

        def files_in(root, cls):
            raw = os.path.join(os.fspath(root), cls.__name__, "raw")
            return all(os.path.isfile(os.path.join(raw, os.path.splitext(os.path.basename(url))[0])) for url, _ in cls.resources)

        @functools.wraps(init)
        def MNIST__init__(self, *args, **kwargs):
            __tracebackhide__ = True  # IPython: the student's cell, then the one line below
            cls = type(self)
            try:
                call = signature.bind(self, *args, **kwargs)
            except TypeError:
                call = None
            if cls.__name__ not in served or call is None:
                return init(self, *args, **kwargs)
            call.apply_defaults()
            given, wanted = call.arguments["root"], bool(call.arguments["download"])
            if files_in(data_dir, cls) or not (given is not None and files_in(os.path.expanduser(given), cls)):
                call.arguments["root"] = data_dir  # the data folder, whatever the notebook asked for
            present = files_in(call.arguments["root"], cls)
            call.arguments["download"] = wanted and not present
            if present or not wanted:
                try:
                    init(*call.args, **call.kwargs)
                except (OSError, ValueError, RuntimeError, EOFError) as error:  # not the arguments: files a folder holds
                    if not present or call.arguments["root"] != data_dir:
                        raise
                    no_data(f"{cls.__name__} in the grader's data folder could not be read ({type(error).__name__}: {error})")
            else:
                raw = os.path.join(data_dir, cls.__name__, "raw")
                existed = [p for p in (os.path.dirname(raw), raw) if os.path.isdir(p)]
                printed = io.StringIO()
                try:
                    with contextlib.redirect_stdout(printed):
                        init(*call.args, **call.kwargs)
                except Exception:
                    for folder in (raw, os.path.dirname(raw)):  # leave no empty folder that reads as "present"
                        if folder not in existed:
                            with contextlib.suppress(OSError):
                                os.rmdir(folder)
                    no_data(f"the grader has no network: put {cls.__name__} in --data-dir "
                            f"(torchvision's layout: <dir>/{cls.__name__}/raw)")
                sys.stdout.write(printed.getvalue())
            if quick:
                keep = budget["train_images"] if self.train else budget["val_size"]
                if len(self.data) > keep:
                    self.data, self.targets = self.data[:keep].clone(), self.targets[:keep].clone()

        MNIST__init__._hwgrader = True
        datasets.MNIST.__init__ = MNIST__init__

    def d2l_modules():
        import d2l as top

        found = [top]
        with contextlib.suppress(Exception):
            from d2l import torch as d2l_torch

            found.insert(0, d2l_torch)
        return found

    def wrap_function(name, make):
        """``make(original)`` in place of ``name`` wherever d2l has it (its defining module too)."""
        wrapped = {}
        for module in d2l_modules():
            original = getattr(module, name, None)
            if not callable(original) or getattr(original, "_hwgrader", False):
                continue
            if id(original) not in wrapped:
                wrapper = functools.wraps(original)(make(original))
                wrapper._hwgrader = True
                wrapped[id(original)] = wrapper
            setattr(module, name, wrapped[id(original)])
            home = sys.modules.get(getattr(original, "__module__", None) or "")
            if home is not None and getattr(home, name, None) is original:
                setattr(home, name, wrapped[id(original)])

    def capped_epochs(original):
        signature = inspect.signature(original)

        def train(*args, **kwargs):
            try:
                call = signature.bind(*args, **kwargs)
                call.apply_defaults()
            except TypeError:
                return original(*args, **kwargs)
            if quick and call.arguments.get("num_epochs") is not None:
                call.arguments["num_epochs"] = min(int(call.arguments["num_epochs"]), budget["max_epochs"])
            if quick and "train_iter" in call.arguments:
                call.arguments["train_iter"] = at_least_five(call.arguments["train_iter"])
            return original(*call.args, **call.kwargs)

        return train

    class _Batches:
        """A loader of fewer than five batches that says it has five: ``train_ch6`` plots every
        ``len(train_iter) // 5`` batches, a division by zero on the quick subset."""

        def __init__(self, loader):
            self._loader = loader

        def __iter__(self):
            return iter(self._loader)

        def __len__(self):
            return 5

        def __getattr__(self, name):
            if name == "_loader":
                raise AttributeError(name)
            return getattr(self._loader, name)

    def at_least_five(loader):
        try:
            return _Batches(loader) if len(loader) < 5 else loader
        except TypeError:
            return loader

    def fewer_workers(original):
        def load(*args, **kwargs):
            loaders = original(*args, **kwargs)
            for loader in loaders if isinstance(loaders, (tuple, list)) else (loaders,):
                with contextlib.suppress(Exception):
                    if loader.num_workers:
                        loader.num_workers = workers(loader.num_workers)
            return loaders

        return load

    def legacy():
        wrap_function("load_data_fashion_mnist", fewer_workers)
        wrap_function("get_dataloader_workers", lambda original: lambda *a, **k: workers(original(*a, **k)))
        for name in ("train_ch3", "train_ch5", "train_ch6"):
            wrap_function(name, capped_epochs)

    def d2l_classes():
        from d2l import torch as d2l

        data_init = d2l.DataModule.__init__
        if getattr(data_init, "_hwgrader", False):
            return

        def DataModule__init__(self, root=data_dir, num_workers=4):
            data_init(self, root=data_dir, num_workers=workers(num_workers))

        DataModule__init__._hwgrader = True
        d2l.DataModule.__init__ = DataModule__init__
        if not quick:
            return
        import torch

        trainer_init = d2l.Trainer.__init__

        def Trainer__init__(self, max_epochs, *args, **kwargs):
            trainer_init(self, min(int(max_epochs), budget["max_epochs"]), *args, **kwargs)

        d2l.Trainer.__init__ = Trainer__init__  # d2l.FashionMNIST: already cut by the torchvision patch, types kept

    def loaders():
        """Every DataLoader, whoever iterates it: a pass yields at most ``cap`` batches (``len`` agrees) of
        about ``train_size`` images in all, a pass after ``max_epochs`` whole ones over the same data set (a new loader each epoch, as
        ``data.train_dataloader()`` makes, counts alike) a single batch; no workers."""
        if not quick:
            return
        import math
        import weakref

        passes = {}  # id(data set) -> (a weak reference to it, the whole passes made over it)

        def passes_over(loader, add=0):
            """Whole passes over ``loader``'s data set (any object: a tensor too, never compared with ``==``)."""
            dataset = loader.dataset
            try:
                ref, count = passes.get(id(dataset), (None, 0))
                if ref is None or ref() is not dataset:
                    ref, count = weakref.ref(dataset), 0
                passes[id(dataset)] = (ref, count + add)
                return count + add
            except TypeError:  # a data set that cannot be weakly referenced: counted on its loader
                loader.__dict__["_hwgrader_passes"] = count = loader.__dict__.get("_hwgrader_passes", 0) + add
                return count

        from torch.utils.data import DataLoader

        if getattr(DataLoader.__iter__, "_hwgrader", False):
            return
        loader_iter, loader_len = DataLoader.__iter__, DataLoader.__len__

        def cap(loader):
            size = loader.batch_size or getattr(loader.batch_sampler, "batch_size", None) or 1
            return max(5, math.ceil(budget["train_size"] / size))

        def shrink(batch, most):
            """A batch of tensors (a tensor, or a tuple/list of tensors of one length) cut to its first ``most``
            items, as a last partial batch is; any other batch as it is."""
            import torch

            parts = batch if isinstance(batch, (tuple, list)) else (batch,)
            if not parts or not all(isinstance(t, torch.Tensor) and t.dim() and len(t) == len(parts[0]) for t in parts):
                return batch
            if len(parts[0]) <= most:
                return batch
            if isinstance(batch, torch.Tensor):
                return batch[:most]
            cut = [t[:most] for t in parts]
            return type(batch)(*cut) if hasattr(batch, "_fields") else type(batch)(cut)

        class Capped:
            """One pass over a loader, cut to ``left`` batches of at most ``most`` items; a whole pass (cut or
            exhausted) is counted."""

            def __init__(self, loader, inner, left, most):
                self._loader, self._inner, self._left, self._most = loader, inner, left, most

            def __iter__(self):
                return self

            def __next__(self):
                if self._left <= 0:
                    self._done()
                try:
                    batch = next(self._inner)
                except StopIteration:
                    self._done()
                self._left -= 1
                return batch if self._most is None else shrink(batch, self._most)

            def _done(self):
                if self._inner is not None:
                    self._inner = None
                    passes_over(self._loader, 1)
                raise StopIteration

            def __len__(self):
                return len(self._loader)

            def __getattr__(self, name):
                if name.startswith("_"):
                    raise AttributeError(name)
                return getattr(self._inner, name)

        @functools.wraps(loader_iter)
        def DataLoader__iter__(self):
            if self.num_workers:
                self.num_workers = 0
            batches = 1 if passes_over(self) >= budget["max_epochs"] else cap(self)
            # About train_size images a pass, whatever the batch size (a ResNet at batch 1024 on a CPU): each batch
            # is cut, as a last partial batch is -- never under drop_last, where a learner may count on full ones.
            most = None
            if self.batch_size and not self.drop_last and batches * self.batch_size > budget["train_size"]:
                most = max(1, math.ceil(budget["train_size"] / batches))
            return Capped(self, loader_iter(self), batches, most)

        @functools.wraps(loader_len)
        def DataLoader__len__(self):
            return min(loader_len(self), cap(self))

        DataLoader__iter__._hwgrader = True
        DataLoader.__iter__, DataLoader.__len__ = DataLoader__iter__, DataLoader__len__

    for patch in (torchvision_datasets, d2l_classes, legacy, loaders):
        with contextlib.suppress(Exception):  # a module the kernel lacks, or a d2l without that name: that patch only
            patch()

'''


def resolve_budget(requested: str, device: str) -> str:
    """``auto`` is ``full`` when the kernel will have CUDA, else ``quick``."""
    if requested != "auto":
        return requested
    if device == "cpu":
        return "quick"
    import torch

    return "full" if torch.cuda.is_available() else "quick"


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    if not any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg")):
        return "cpu"  # no NVIDIA driver: decided without importing torch (a cached rerun stays fast)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
