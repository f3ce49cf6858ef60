"""The kernel's data view: the Fashion-MNIST files and nothing else, with only the kernel's share of the test split.

Why a view and not the data folder itself:

* ``--data-dir`` names whatever folder the TA keeps the data in, and a natural course
  folder also holds ``submissions/`` and ``reports/``. Bound into the sandbox as it is,
  a notebook could list it, read classmates' notebooks and results, and ``exec`` their
  code. The view holds the data set's files only, so what sits beside them is invisible.
* The grader scores trained models on test images. If the kernel could read them, a
  notebook could fit or memorise them (or pick its epoch on them) and the score would
  measure that. The view holds the first :func:`kernel_share` test images; the grader
  evaluates on the rest (:func:`grader.course.fashion_mnist.held_out_images`), which no notebook saw.

The view is a folder in the grader's work area, outside anything the kernel can write::

    VIEW/FashionMNIST/raw/train-images-idx3-ubyte   the real file (a hard link; a copy across file systems)
    VIEW/FashionMNIST/raw/train-labels-idx1-ubyte   the real file
    VIEW/FashionMNIST/raw/train-*.gz                the real archives, where the data folder has them
    VIEW/FashionMNIST/raw/t10k-images-idx3-ubyte    the first kernel_share(n) test images (a valid idx3 file)
    VIEW/FashionMNIST/raw/t10k-labels-idx1-ubyte    their labels (a valid idx1 file)

The test split's ``.gz`` archives are never in it: they hold the whole split. torchvision's
``FashionMNIST(VIEW, train=False)`` loads the cut files as it loads the originals (it checks
that the raw files exist, not their checksums). The module imports neither torch nor
torchvision unless a download is needed.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import sys
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

DATASET = "FashionMNIST"
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Names in a data folder that say it is a course folder (results, reports, submissions) rather than a data set's.
COURSE_FOLDER_NAMES = {"reports", "report", "results", "result", "submissions", "submission", "graded", "feedback", "grades"}
_UBYTE = 0x08


def kernel_share(n: int) -> int:
    """How many of ``n`` test images the kernel is given (the first ones): half, so the grader keeps as many unseen."""
    return n // 2


@dataclass
class DataView:
    """A kernel data view as built: where it is, what it came from, and how much of the test split it holds."""

    path: Path
    source: Path
    #: Test images in the view (the kernel's share) and in the data folder.
    test_images: int = 0
    test_total: int = 0
    #: Whether the data folder had all four files (else the view is empty and the kernel's loaders say where the data belongs).
    complete: bool = False


def raw_folder(data_dir: Path) -> Path:
    return Path(data_dir) / DATASET / "raw"


def build_data_view(data_dir: Path, view: Path, download: bool = True) -> DataView:
    """Build the kernel's view of ``data_dir`` at ``view`` (a folder that must not exist yet).

    ``download``: when the data folder lacks the files, fetch them first with torchvision's
    ordinary download (into ``data_dir``, e.g. the cache folder), as the grader's own checks
    would; offline, the view stays empty and the kernel's data loaders say where the data
    belongs. Never raises for a missing or partial data set.
    """
    data_dir = Path(data_dir)
    source = raw_folder(data_dir)
    if download and not _present(source):
        _download_once(str(data_dir))
    target = raw_folder(view)
    target.mkdir(parents=True)
    built = DataView(Path(view), data_dir)
    if not _present(source):
        return built
    for name in TRAIN_FILES:
        if (source / name).is_file():
            _link_or_copy(source / name, target / name)
        else:  # only the archive: the view holds it unpacked, as torchvision would have made it
            with gzip.open(source / f"{name}.gz", "rb") as packed, open(target / name, "xb") as out:
                shutil.copyfileobj(packed, out)
        if (source / f"{name}.gz").is_file():
            _link_or_copy(source / f"{name}.gz", target / f"{name}.gz")
    images, labels = TEST_FILES
    try:
        with _open_raw(source, images) as src_images, _open_raw(source, labels) as src_labels:
            total = _count(src_images)
            if _count(src_labels) != total:
                raise ValueError("the test images and labels disagree on how many there are")
            share = kernel_share(total)
            _cut(src_images, target / images, share)
            _cut(src_labels, target / labels, share)
    except (OSError, ValueError, EOFError, struct.error) as exc:  # a damaged test split: none of it, and the grader's own reading says why
        for name in TEST_FILES:
            (target / name).unlink(missing_ok=True)
        print(f"grade: warning: the kernel is given no test images: {source}: {exc}", file=sys.stderr)
        return built
    built.test_images, built.test_total, built.complete = share, total, True
    return built


def kernel_data_view(data_dir: Path, workdir: Path) -> DataView:
    """The data view of one submission's kernels, at ``workdir/data`` (see :func:`build_data_view`).

    Says once per process when the data folder looks like a course folder (:func:`warn_once`).
    """
    warn_once(Path(data_dir))
    return build_data_view(Path(data_dir), Path(workdir) / "data")


def _present(raw: Path) -> bool:
    """All four files, raw or as their ``.gz`` archive."""
    return all((raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in TRAIN_FILES + TEST_FILES)


_attempted: set[str] = set()


def _download_once(data_dir: str) -> None:
    """torchvision's ordinary download into ``data_dir``, tried once per process (offline it fails quickly, then never again)."""
    if data_dir in _attempted:
        return
    _attempted.add(data_dir)
    try:
        import contextlib

        from torchvision import datasets

        with contextlib.redirect_stdout(sys.stderr):  # torchvision's progress lines: stdout may be --json's
            for train in (True, False):
                datasets.FashionMNIST(data_dir, train=train, download=True)
    except Exception:  # offline, or a mirror down: the view is empty, and the kernel's loaders say where the data belongs
        pass


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link to the real file (no copy of 47 MB per notebook); a read-only copy where a link cannot be made."""
    try:
        os.link(source.resolve(), target)
    except OSError:  # another file system, or a file the grader may read but not link (protected_hardlinks)
        shutil.copyfile(source, target)
        os.chmod(target, 0o444)


def _open_raw(raw: Path, name: str) -> BufferedIOBase:
    return open(raw / name, "rb") if (raw / name).is_file() else gzip.open(raw / f"{name}.gz", "rb")


def _header(stream: BufferedIOBase) -> tuple[int, list[int]]:
    """An idx file's element type and dimensions (``[n, rows, cols]`` for images, ``[n]`` for labels)."""
    magic = stream.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != _UBYTE or not 1 <= magic[3] <= 4:
        raise ValueError(f"not an idx file of unsigned bytes (magic {magic.hex()})")
    dims = list(struct.unpack(f">{magic[3]}I", stream.read(4 * magic[3])))
    return magic[3], dims


def _count(stream: BufferedIOBase) -> int:
    stream.seek(0)
    return _header(stream)[1][0]


def _cut(stream: BufferedIOBase, target: Path, count: int) -> None:
    """The first ``count`` items of an idx file, as a valid idx file of ``count`` items."""
    stream.seek(0)
    ndims, dims = _header(stream)
    item = 1
    for d in dims[1:]:
        item *= d
    body = stream.read(count * item)
    if len(body) != count * item:
        raise ValueError(f"{target.name}: the file is shorter than its header says")
    with open(target, "xb") as out:
        out.write(bytes([0, 0, _UBYTE, ndims]) + struct.pack(f">{ndims}I", count, *dims[1:]) + body)
    os.chmod(target, 0o444)


def course_folder_warning(data_dir: Path, max_entries: int = 2000) -> str | None:
    """One line when the data folder also holds notebooks, ``.json`` results or a ``reports/``-like folder; else None.

    Not a refusal: the kernel is given the view, never the folder. Looks at the folder and
    one level below it, at most ``max_entries`` entries, following no links (the folder may
    be large or hostile; this must stay cheap).
    """
    root = Path(data_dir)
    seen = 0
    folders = [root]
    for _ in range(2):  # the folder, then one level below it
        below: list[Path] = []
        for folder in folders:
            try:
                entries = os.scandir(folder)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return None
                    name = entry.name.lower()
                    if name.endswith((".ipynb", ".json")) and not entry.is_dir(follow_symlinks=False):
                        return _warning(root)
                    if entry.is_dir(follow_symlinks=False) and entry.name != DATASET:
                        if name in COURSE_FOLDER_NAMES:
                            return _warning(root)
                        below.append(Path(entry.path))
        folders = below
    return None


def _warning(data_dir: Path) -> str:
    return f"--data-dir {data_dir} also holds notebooks or results; the kernel is given only the Fashion-MNIST files"


_warned: set[str] = set()


def warn_once(data_dir: Path) -> None:
    """Print :func:`course_folder_warning`'s line on stderr, once per process and data folder."""
    key = str(data_dir)
    if key in _warned:
        return
    _warned.add(key)
    line = course_folder_warning(Path(data_dir))
    if line:
        print(f"grade: warning: {line}", file=sys.stderr)
