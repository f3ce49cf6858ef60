"""The grader's own Fashion-MNIST batches: the same pixels the notebook's d2l pipeline gives, made faster."""

from __future__ import annotations

import pytest
import torch
from torchvision import datasets, transforms

from grader.course.fashion_mnist import held_out_images, raw_images, resized, validation_accuracy


@pytest.mark.parametrize("size", [224, 96, 28])
def test_batched_resizing_gives_the_pixels_of_d2ls_per_image_resize_within_one_grey_level(data_dir, size):
    pipeline = transforms.Compose([transforms.Resize((size, size), antialias=True), transforms.ToTensor()])
    dataset = datasets.FashionMNIST(str(data_dir), train=False, transform=pipeline)
    expected = torch.stack([dataset[i][0] for i in range(64)])
    got = resized(raw_images(str(data_dir), train=False)[0][:64], size)
    assert got.shape == expected.shape == (64, 1, size, size)
    assert (got - expected).abs().max().item() <= 1 / 255 + 1e-6


def test_validation_accuracy_counts_the_images_it_used_and_scores_a_model_that_knows_the_labels(data_dir):
    images, labels = held_out_images(str(data_dir))

    class Oracle(torch.nn.Module):
        """Knows each held-out image's label by its pixel sum (the first 100 held-out images' sums are distinct)."""

        def __init__(self):
            super().__init__()
            self.by_sum = {round(resized(images[i : i + 1], 28).sum().item(), 3): int(labels[i]) for i in range(100)}
            assert len(self.by_sum) == 100

        def forward(self, X):
            out = torch.zeros(len(X), 10)
            for row, x in enumerate(X):
                out[row, self.by_sum.get(round(x.sum().item(), 3), 0)] = 1.0
            return out

    assert validation_accuracy(Oracle(), str(data_dir), 28, 100) == (1.0, 100)
    accuracy, used = validation_accuracy(Oracle(), str(data_dir), 28, 10**6)
    assert used == len(labels) and accuracy < 1.0  # past the first 100 it guesses class 0


def test_the_held_out_images_are_the_second_half_of_the_test_split(data_dir):
    images, labels = raw_images(str(data_dir), train=False)
    held, held_labels = held_out_images(str(data_dir))
    assert len(held) == len(images) - len(images) // 2
    assert torch.equal(held, images[len(images) // 2 :]) and torch.equal(held_labels, labels[len(images) // 2 :])
