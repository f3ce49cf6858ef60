"""The budget's preamble serves every road to data and training from the data folder, and ``quick`` caps them.

Each notebook runs once in a real (plain, unsandboxed) kernel through the grader's execution layer, with the
budget's preamble before its first cell; the tests read what its cells printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from grader.course.d2l_budget import MIN_TRAIN_IMAGES, Budget
from grader.kernel.execute import ExecutionOptions, run_notebook_sync

TRAIN, VAL, EPOCHS = 192, 96, 2  # quick: 3 batches of 64 per epoch, under the 5 train_ch6 plots by
#: What quick keeps of the training split (the shared subset has 7,000): enough that `num_batches // 5` >= 1 at 256.
KEPT = MIN_TRAIN_IMAGES
#: Batches a loader of batch 64 yields per pass under quick: max(5, ceil(TRAIN / 64)), each of at most
#: ceil(TRAIN / CAP) images (a pass holds about TRAIN images, whatever the batch size).
CAP = 5
CUT = 39


def _run(workdir: Path, budget: Budget, sources: list[str]):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    record = run_notebook_sync(nb, ExecutionOptions(workdir, cell_timeout=120, preamble=budget.preamble()))
    return record, nb


def _printed(cell) -> dict:
    """The JSON line a cell printed last."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return json.loads(text.strip().splitlines()[-1])


DATASETS = """
import json, os, torchvision
train = torchvision.datasets.FashionMNIST(root='./data', train=True, download=True)
val = torchvision.datasets.FashionMNIST('./data', False, None, None, True)
print(json.dumps({"train": len(train), "val": len(val), "root": str(train.root), "data_made": os.path.exists('data')}))
"""

LEGACY_LOADERS = """
from d2l import torch as d2l
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=64)
X, y = next(iter(train_iter))
print(json.dumps({"train": len(train_iter.dataset), "val": len(test_iter.dataset), "batch": list(X.shape),
                  "workers": [train_iter.num_workers, test_iter.num_workers]}))
"""

TRAIN_CH6 = """
import torch
from torch import nn
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
seen = []
net.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])) if module.training else None)
d2l.train_ch6(net, train_iter, test_iter, num_epochs=10, lr=0.1, device=torch.device('cpu'))
print(json.dumps({"batches": len(seen), "images": sum(seen)}))
"""

BOOK_DATA_MODULE = """
data = d2l.FashionMNIST(batch_size=64)
print(json.dumps({"train": len(data.train), "val": len(data.val), "batches": len(data.train_dataloader())}))
"""

#: d2l 1.0.3 learners read the data sets' own attributes (issue 27, item 1).
BOOK_ATTRIBUTES = """
print(json.dumps({"types": [type(data.train).__name__, type(data.val).__name__], "val_data": list(data.val.data.shape),
                  "train_targets": len(data.train.targets), "classes": len(data.train.classes), "item": list(data.val[0][0].shape),
                  "batch_size": data.train_dataloader().batch_size}))
"""

#: A learner's own loops (issue 27, items 2 and 3): d2l-zh's progress every `num_batches // 5`, 10 epochs by hand.
OWN_LOOPS = """
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=256)
num_batches, per_epoch = len(train_iter), []
for epoch in range(10):
    seen = 0
    for i, (X, y) in enumerate(train_iter):
        seen += 1
        if (i + 1) % (num_batches // 5) == 0 or i == num_batches - 1:
            pass
    per_epoch.append(seen)
X, y = next(iter(train_iter))
fresh = [sum(1 for _ in data.train_dataloader()) for epoch in range(4)]  # d2l 1.0: a new loader each epoch
first = next(iter(torch.utils.data.DataLoader(torch.arange(10), batch_size=4, drop_last=True)))
print(json.dumps({"num_batches": num_batches, "per_epoch": per_epoch, "peek": [len(X), len(y)], "len_after": len(train_iter),
                  "fresh": fresh, "drop_last": len(first)}))
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("quick") / "work"
    record, nb = _run(
        workdir,
        Budget("quick", Path(data_dir), TRAIN, VAL, EPOCHS),
        [DATASETS, LEGACY_LOADERS, TRAIN_CH6, BOOK_DATA_MODULE, BOOK_ATTRIBUTES, OWN_LOOPS],
    )
    return record, nb, workdir


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("full") / "work"
    record, nb = _run(workdir, Budget("full", Path(data_dir), TRAIN, VAL, EPOCHS), [DATASETS, LEGACY_LOADERS])
    return record, nb, workdir


@pytest.fixture(scope="module")
def no_fashion_run(tmp_path_factory, data_dir):
    """A data folder with MNIST (Fashion-MNIST's files under MNIST's name: the same format) but no Fashion-MNIST,
    and no way to download: the mirrors name a host that cannot resolve (``.invalid``), which is what a kernel
    without network meets, whether or not this machine has one. MNIST's training images are cut short (a damaged
    file in the data folder: the grader's, not the notebook's)."""
    folder = tmp_path_factory.mktemp("mnist-only")
    (folder / "MNIST" / "raw").mkdir(parents=True)
    for file in (Path(data_dir) / "FashionMNIST" / "raw").iterdir():
        if file.name == "train-images-idx3-ubyte":
            (folder / "MNIST" / "raw" / file.name).write_bytes(file.read_bytes()[:100_000])
        else:
            (folder / "MNIST" / "raw" / file.name).symlink_to(file)
    fashion = """
import torchvision
torchvision.datasets.FashionMNIST.mirrors = ['http://hw-grader-no-network.invalid/']
torchvision.datasets.FashionMNIST(root='./data', train=True, download=True)
"""
    mnist = """
import json
mnist = torchvision.datasets.MNIST('/nowhere/data', train=False, download=True)
print(json.dumps({"val": len(mnist), "root": str(mnist.root)}))
"""
    damaged = "torchvision.datasets.MNIST('/nowhere/data', train=True)"
    budget = Budget("quick", folder, TRAIN, VAL, EPOCHS)
    record, nb = _run(tmp_path_factory.mktemp("nofashion") / "work", budget, [fashion, mnist, damaged])
    return record, nb, folder


def _ok(record):
    assert record.status == "ok", record.message


def test_quick_torchvision_fashion_mnist_with_any_root_is_the_train_subset_from_the_data_folder(quick_run, data_dir):
    record, nb, workdir = quick_run
    _ok(record)
    got = _printed(nb.cells[0])
    assert got["train"] == KEPT
    assert Path(got["root"]).resolve() == Path(data_dir).resolve()
    assert not got["data_made"] and not (workdir / "data").exists()


def test_quick_torchvision_fashion_mnist_validation_split_is_the_val_subset(quick_run):
    assert _printed(quick_run[1].cells[0])["val"] == VAL


def test_full_torchvision_fashion_mnist_is_the_whole_data_folder(full_run, data_dir):
    record, nb, workdir = full_run
    _ok(record)
    from torchvision.datasets import FashionMNIST

    whole = (len(FashionMNIST(str(data_dir), train=True)), len(FashionMNIST(str(data_dir), train=False)))
    assert whole[0] > TRAIN and whole[1] > VAL  # the shared subset: 7,000 / 1,200
    got = _printed(nb.cells[0])
    assert (got["train"], got["val"]) == whole
    assert Path(got["root"]).resolve() == Path(data_dir).resolve() and not (workdir / "data").exists()


def test_quick_legacy_load_data_fashion_mnist_iterates_the_quick_subset_without_workers(quick_run):
    got = _printed(quick_run[1].cells[1])
    assert (got["train"], got["val"]) == (KEPT, VAL)
    assert got["batch"] == [CUT, 1, 28, 28] and got["workers"] == [0, 0]  # a batch of 64, cut as a pass holds about TRAIN


def test_full_legacy_load_data_fashion_mnist_reads_the_data_folder(full_run):
    got = _printed(full_run[1].cells[1])
    assert got["train"] > TRAIN and got["val"] > VAL


def test_quick_train_ch6_runs_max_epochs_not_the_notebooks(quick_run):
    record, nb, _ = quick_run
    assert record.cells[2].status == "ok", record.cells[2].error
    got = _printed(nb.cells[2])
    # The loader's first EPOCHS whole passes are CAP batches; train_ch6's own epochs are cut to EPOCHS.
    assert got == {"batches": EPOCHS * CAP, "images": EPOCHS * CAP * CUT}


def test_quick_book_data_module_is_still_the_subset(quick_run):
    got = _printed(quick_run[1].cells[3])
    assert (got["train"], got["val"], got["batches"]) == (KEPT, VAL, CAP)


def test_quick_keeps_the_types_and_attributes_the_book_exposes(quick_run):
    record, nb, _ = quick_run
    assert record.cells[4].status == "ok", record.cells[4].error  # no "'Subset' object has no attribute 'data'"
    got = _printed(nb.cells[4])
    assert got == {
        "types": ["FashionMNIST", "FashionMNIST"],
        "val_data": [VAL, 28, 28],
        "train_targets": KEPT,
        "classes": 10,
        "item": [1, 28, 28],
        "batch_size": 64,
    }


def test_quick_caps_a_learners_own_loops_without_an_error_the_full_data_would_not_raise(quick_run):
    record, nb, _ = quick_run
    assert record.cells[5].status == "ok", record.cells[5].error  # `num_batches // 5` is never 0
    got = _printed(nb.cells[5])
    # max(5, ceil(TRAIN / 256)) batches for the first EPOCHS whole passes, then one per epoch; a peek is one batch.
    assert got == {
        "num_batches": 5,
        "per_epoch": [5] * EPOCHS + [1] * (10 - EPOCHS),
        "peek": [TRAIN, TRAIN],  # a pass after the capped ones: one batch, cut to about TRAIN images
        "len_after": 5,
        "fresh": [5] * EPOCHS + [1] * (4 - EPOCHS),  # the passes are counted per data set, whichever loader made them
        "drop_last": 4,  # never cut under drop_last
    }


#: What a cell's error says when it was raised where the budget reads the data folder (issue 27, item 5).
DATA_NOTE = (
    "(raised inside code the grader added to the kernel, the kernel's view of the data folder: the grader's error, not this notebook's)"
)


def test_a_download_that_cannot_happen_is_one_line_that_is_not_the_notebooks_error(no_fashion_run):
    record, nb, folder = no_fashion_run
    message = "RuntimeError: the grader has no network: put FashionMNIST in --data-dir (torchvision's layout: <dir>/FashionMNIST/raw)"
    assert record.cells[0].status == "error" and record.cells[0].error == f"{message} {DATA_NOTE}"
    assert record.message == f"cell 0 raised {message} {DATA_NOTE}"
    shown = json.dumps(nb.cells[0].outputs)
    assert "urlopen" not in shown and "Name or service" not in shown and "Downloading" not in shown
    assert "_hwgrader_budget" not in shown  # the preamble's frame is hidden: the student's line, then the message
    assert sorted(p.name for p in folder.iterdir()) == ["MNIST"]  # no empty FashionMNIST/raw left to read as "present"


def test_quick_torchvision_mnist_is_served_from_the_data_folder_when_it_has_it(no_fashion_run):
    record, nb, folder = no_fashion_run
    assert record.cells[1].status == "ok", record.cells[1].error
    got = _printed(nb.cells[1])
    assert got["val"] == VAL and Path(got["root"]) == folder


@pytest.mark.slow
def test_an_error_raised_inside_the_budgets_own_code_is_said_to_be_the_graders(tmp_path, data_dir, monkeypatch):
    """Issue 27, item 5: a cell that fails inside the code the grader put in the kernel is not the student's error."""
    from grader.course import d2l_budget

    loop = "import torch\nfor X in torch.utils.data.DataLoader(torch.arange(8), batch_size=4):\n    total = X.sum()"
    own = "for X in torch.utils.data.DataLoader(torch.arange(8), batch_size=4):\n    total = 1 / 0"
    record, nb = _run(tmp_path / "fine", Budget("quick", Path(data_dir), TRAIN, VAL, EPOCHS), [loop, own])
    assert record.cells[0].status == "ok", record.cells[0].error
    assert record.cells[1].error == "ZeroDivisionError: division by zero"  # the student's own
    broken = d2l_budget._PREAMBLE.replace("return max(5, math.ceil(", "return 1 // 0 + max(5, math.ceil(")
    assert broken != d2l_budget._PREAMBLE
    monkeypatch.setattr(d2l_budget, "_PREAMBLE", broken)  # a bug of the grader's, injected
    record, nb = _run(tmp_path / "broken", Budget("quick", Path(data_dir), TRAIN, VAL, EPOCHS), [loop])
    note = (
        "raised inside code the grader added to the kernel, the budget's patch of torch, torchvision and d2l: "
        "the grader's error, not this notebook's"
    )
    assert record.cells[0].error == f"ZeroDivisionError: integer division or modulo by zero ({note})"
    assert record.message == f"cell 0 raised {record.cells[0].error}"


def test_a_data_folder_file_that_cannot_be_read_is_said_to_be_the_graders_error(no_fashion_run):
    """Issue 27, item 5: the notebook asked for the data set as the book does; the grader's copy of it is damaged."""
    record, nb, _ = no_fashion_run
    error = record.cells[2].error
    assert record.cells[2].status == "error"
    assert error.startswith("RuntimeError: MNIST in the grader's data folder could not be read (RuntimeError: ")
    assert error.endswith(f") {DATA_NOTE}")
