"""Real Fashion-MNIST batches for the grader's own training and evaluation."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=8)
def fixed_batch(data_dir: str, size: int, count: int, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images (resized to ``size``) and labels: the same batch for everyone.

    Reads torchvision's layout under ``data_dir``; downloads there with
    torchvision's ordinary mechanism when the files are absent.
    """
    from torchvision import datasets, transforms

    root = Path(data_dir)
    transform = transforms.Compose([transforms.Resize((size, size), antialias=True), transforms.ToTensor()])
    present = (root / "FashionMNIST" / "raw").is_dir()
    dataset = datasets.FashionMNIST(str(root), train=train, transform=transform, download=not present)
    images, labels = zip(*(dataset[i] for i in range(min(count, len(dataset)))))
    return torch.stack(images), torch.tensor(labels)
