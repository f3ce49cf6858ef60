"""Budgets: how much of a notebook's own training actually runs.

``full`` runs the notebook as written (on CUDA when there is one). ``quick``
keeps every check meaningful on a laptop CPU: before the first cell the
kernel caps every ``d2l.Trainer`` at a few epochs and cuts
``d2l.FashionMNIST`` to a small fixed subset, with no loader workers. In
both, d2l's data root points at the data folder (``--data-dir``) or at a
cache folder that torchvision's ordinary download fills.

The patch is kernel code (text): it wraps d2l's constructors, so the
student's own ``from d2l import torch as d2l`` gets the patched classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hw-grader" / "data"


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
        return cls(name, data_dir, quick.get("train_size", 1000), quick.get("val_size", 250), quick.get("max_epochs", 1),
                   loader_workers)  # fmt: skip

    def preamble(self) -> str:
        """Kernel code applying this budget to d2l (imported here, before the student's cells)."""
        quick = self.name == "quick"
        workers = "num_workers" if self.loader_workers is None else f"min(num_workers, {int(self.loader_workers)})"
        return f'''
def _hwgrader_budget():
    import torch
    from d2l import torch as d2l

    data_init = d2l.DataModule.__init__

    def DataModule__init__(self, root={str(self.data_dir)!r}, num_workers=4):
        data_init(self, root={str(self.data_dir)!r}, num_workers={0 if quick else workers})

    d2l.DataModule.__init__ = DataModule__init__
    if not {quick!r}:
        return
    trainer_init = d2l.Trainer.__init__

    def Trainer__init__(self, max_epochs, *args, **kwargs):
        trainer_init(self, min(int(max_epochs), {self.max_epochs}), *args, **kwargs)

    d2l.Trainer.__init__ = Trainer__init__
    fashion_init = d2l.FashionMNIST.__init__

    def FashionMNIST__init__(self, *args, **kwargs):
        fashion_init(self, *args, **kwargs)
        self.train = torch.utils.data.Subset(self.train, range(min({self.train_size}, len(self.train))))
        self.val = torch.utils.data.Subset(self.val, range(min({self.val_size}, len(self.val))))

    d2l.FashionMNIST.__init__ = FashionMNIST__init__

_hwgrader_budget()
del _hwgrader_budget
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
