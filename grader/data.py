"""Real Fashion-MNIST batches for the grader's own training and evaluation."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch


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
    images, labels = zip(*(dataset[i] for i in range(min(count, len(dataset)))))
    return torch.stack(images), torch.tensor(labels)


def training_images(data_dir: str) -> int:
    """How many training images the data folder holds: what a ``full`` run's notebook trained on."""
    return len(_fashion_mnist(data_dir, train=True))


def validation_accuracy(model: torch.nn.Module, data_dir: str, size: int, count: int, batch_size: int = 256) -> tuple[float, int]:
    """Accuracy of ``model`` on the first ``count`` validation images, resized to ``size``, and how many there were.

    Fewer than ``count`` when the data folder holds fewer (the shared subset has 1,200), so a
    report never claims more images than were used.

    Streams batches (a 224x224 validation set does not fit comfortably in
    memory) and runs on CUDA when the grader's process has it.
    """
    dataset = _fashion_mnist(data_dir, train=False, size=size)
    subset = torch.utils.data.Subset(dataset, range(min(count, len(dataset))))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    correct = total = 0
    with torch.no_grad():
        for X, y in torch.utils.data.DataLoader(subset, batch_size=batch_size):
            correct += int((model(X.to(device)).argmax(dim=1).cpu() == y).sum())
            total += len(y)
    return correct / max(total, 1), total
