"""Real Fashion-MNIST batches for the grader's own training and evaluation.

The kernel is given the training images and only the first half of the test images (its
*share*, see :mod:`grader.course.data_view`); the grader evaluates trained models on the second
half, which no notebook could read, so no notebook can have fitted or memorised them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from grader.course.data_view import kernel_share


def _fashion_mnist(data_dir: str, train: bool, size: int | None = None):
    """Fashion-MNIST in torchvision's layout under ``data_dir`` (resized to ``size``); downloaded there by
    torchvision's ordinary mechanism when the files are absent."""
    from torchvision import datasets, transforms

    root = Path(data_dir)
    transform = None if size is None else transforms.Compose([transforms.Resize((size, size), antialias=True), transforms.ToTensor()])
    present = (root / "FashionMNIST" / "raw").is_dir()
    return datasets.FashionMNIST(str(root), train=train, transform=transform, download=not present)


@lru_cache(maxsize=8)
def fixed_batch(data_dir: str, size: int, count: int, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images (resized to ``size``) and labels: the same batch for everyone."""
    dataset = _fashion_mnist(data_dir, train, size)
    images, labels = zip(*(dataset[i] for i in range(min(count, len(dataset)))), strict=True)
    return torch.stack(images), torch.tensor(labels)


def training_images(data_dir: str) -> int:
    """How many training images the data folder holds: what a ``full`` run's notebook trained on."""
    return len(_fashion_mnist(data_dir, train=True))


def held_out_images(data_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images the kernel never saw (uint8 ``(N, 28, 28)``) and their labels: index ``kernel_share(n)`` on.

    Why: the kernel's data view holds only the first ``kernel_share(n)`` test images. Images
    the notebook could read it could also have trained on, looked up by pixels, or used to
    pick an epoch; a score on them would measure that, not what the model learned. The
    second half is as large and drawn the same way, so thresholds mean the same on it.
    """
    images, labels = raw_images(data_dir, train=False)
    start = kernel_share(len(labels))
    return images[start:], labels[start:]


def validation_accuracy(model: torch.nn.Module, data_dir: str, size: int, count: int, batch_size: int = 256) -> tuple[float, int]:
    """Accuracy of ``model`` on the first ``count`` held-out test images (:func:`held_out_images`), resized to ``size``,
    and how many there were.

    Only held-out images: the kernel was given the other half of the test split, and a model
    scored on images its notebook could read may have been fitted to them. Fewer than ``count``
    when the data folder holds fewer (the shared subset's 1,200 test images leave 600), so a
    report never claims more images than were used. The split is ``grader.course.thresholds.SCORED_ON``
    (results record it beside the count: runs scored on other images are never calibrated together).

    Runs on CUDA when the grader's process has it, and resizes whole batches there: the
    raw 28x28 bytes are scaled with bilinear interpolation and rounded back to 8-bit levels,
    which reproduces d2l's per-image ``Resize`` + ``ToTensor`` to within one grey level
    (measured: at most 1/255, mean 0.0004 at 224x224) at a fraction of its cost -- on a GPU
    the per-image PIL resizing was most of a full-budget check's time.
    """
    images, labels = held_out_images(data_dir)
    images, labels = images[:count], labels[:count]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            X = resized(images[start : start + batch_size].to(device), size)
            correct += int((model(X).argmax(dim=1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1), len(labels)


def raw_images(data_dir: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The data set's images as uint8 ``(N, 28, 28)`` and its labels, as torchvision reads them."""
    dataset = _fashion_mnist(data_dir, train)
    return dataset.data, dataset.targets


def resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(N, H, W)`` images as float ``(N, 1, size, size)`` in [0, 1], on the 8-bit levels PIL's resize gives."""
    import torch.nn.functional as F

    X = images.float().div(255).unsqueeze(1)
    if X.shape[-1] != size or X.shape[-2] != size:
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        X = X.mul(255).round().clamp(0, 255).div(255)
    return X
