"""Reference models have the book's shapes, parameter counts and layer order."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from reference import models as m
from tests import book_models


def shapes(model, input_shape):
    return [row.shape for row in m.layer_shapes(model, input_shape)]


def same_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s state into ``target`` by position, as the grader does with a student's model."""
    m.load_state_by_order(target, [t.clone() for t in source.state_dict().values()])


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so eval mode is actually exercised."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=g))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(torch.randn(module.bias.shape, generator=g))


# --------------------------------------------------------------------------- published figures


def test_lenet_layer_shapes_match_the_book():
    assert shapes(m.LeNet(), (1, 1, 28, 28)) == [
        (1, 6, 28, 28),
        (1, 6, 28, 28),
        (1, 6, 14, 14),
        (1, 16, 10, 10),
        (1, 16, 10, 10),
        (1, 16, 5, 5),
        (1, 400),
        (1, 120),
        (1, 120),
        (1, 84),
        (1, 84),
        (1, 10),
    ]


def test_lenet_has_61706_parameters():
    assert m.num_parameters(m.materialize(m.LeNet(), (1, 1, 28, 28))) == 61_706


def test_lenet_uses_sigmoid_and_average_pooling():
    kinds = [row.kind for row in m.layer_shapes(m.LeNet(), (1, 1, 28, 28))]
    assert kinds.count("Sigmoid") == 4 and kinds.count("AvgPool2d") == 2
    assert "ReLU" not in kinds and "MaxPool2d" not in kinds


def test_modern_lenet_swaps_in_relu_and_max_pooling():
    kinds = [row.kind for row in m.layer_shapes(m.ModernLeNet(), (1, 1, 28, 28))]
    assert kinds.count("ReLU") == 4 and kinds.count("MaxPool2d") == 2 and "Sigmoid" not in kinds


def test_vgg_block_halves_height_and_width():
    assert m.vgg_block(2, 8)(torch.zeros(1, 3, 10, 14)).shape == (1, 8, 5, 7)


def test_vgg_block_is_convs_relus_then_max_pool():
    block = m.vgg_block(2, 8)
    assert [type(layer).__name__ for layer in block] == ["LazyConv2d", "ReLU", "LazyConv2d", "ReLU", "MaxPool2d"]
    assert block[0].kernel_size == (3, 3) and block[0].padding == (1, 1)
    assert block[-1].kernel_size == 2 and block[-1].stride == 2


def test_vgg11_layer_shapes_and_parameters_match_the_book():
    model = m.VGG(arch=m.VGG11_ARCH)
    assert shapes(model, (1, 1, 224, 224)) == [
        (1, 64, 112, 112),
        (1, 128, 56, 56),
        (1, 256, 28, 28),
        (1, 512, 14, 14),
        (1, 512, 7, 7),
        (1, 25088),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 10),
    ]
    assert m.num_parameters(model) == 128_806_154


def test_residual_keeps_shape_without_1x1_conv():
    assert m.Residual(3)(torch.randn(4, 3, 6, 6)).shape == (4, 3, 6, 6)


def test_residual_with_1x1_conv_halves_and_changes_channels():
    assert m.Residual(6, use_1x1conv=True, strides=2)(torch.randn(4, 3, 6, 6)).shape == (4, 6, 3, 3)


def test_resnet18_stage_shapes_and_parameters_match_the_book():
    model = m.ResNet18()
    assert shapes(model, (1, 1, 96, 96)) == [
        (1, 64, 24, 24),
        (1, 64, 24, 24),
        (1, 128, 12, 12),
        (1, 256, 6, 6),
        (1, 512, 3, 3),
        (1, 10),
    ]
    assert m.num_parameters(model) == 11_178_378


def test_alexnet_layer_shapes_match_the_book():
    assert shapes(m.AlexNet(), (1, 1, 224, 224)) == [
        (1, 96, 54, 54),
        (1, 96, 54, 54),
        (1, 96, 26, 26),
        (1, 256, 26, 26),
        (1, 256, 26, 26),
        (1, 256, 12, 12),
        (1, 384, 12, 12),
        (1, 384, 12, 12),
        (1, 384, 12, 12),
        (1, 384, 12, 12),
        (1, 256, 12, 12),
        (1, 256, 12, 12),
        (1, 256, 5, 5),
        (1, 6400),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 4096),
        (1, 10),
    ]


def test_nin_layer_shapes_match_the_book():
    assert shapes(m.NiN(), (1, 1, 224, 224)) == [
        (1, 96, 54, 54),
        (1, 96, 26, 26),
        (1, 256, 26, 26),
        (1, 256, 12, 12),
        (1, 384, 12, 12),
        (1, 384, 5, 5),
        (1, 384, 5, 5),
        (1, 10, 5, 5),
        (1, 10, 1, 1),
        (1, 10),
    ]


def test_inception_block_concatenates_its_four_branches():
    assert m.Inception(64, (96, 128), (16, 32), 32)(torch.zeros(1, 192, 12, 12)).shape == (1, 256, 12, 12)


def test_googlenet_stage_shapes_match_the_book():
    assert shapes(m.GoogleNet(), (1, 1, 96, 96)) == [
        (1, 64, 24, 24),
        (1, 192, 12, 12),
        (1, 480, 6, 6),
        (1, 832, 3, 3),
        (1, 1024),
        (1, 10),
    ]


def test_dense_block_and_transition_block_book_examples():
    Y = m.DenseBlock(2, 10)(torch.randn(4, 3, 8, 8))
    assert Y.shape == (4, 23, 8, 8)
    assert m.transition_block(10)(Y).shape == (4, 10, 4, 4)


def test_densenet_stage_shapes():
    assert shapes(m.DenseNet(), (1, 1, 96, 96)) == [
        (1, 64, 24, 24),
        (1, 192, 24, 24),
        (1, 96, 12, 12),
        (1, 224, 12, 12),
        (1, 112, 6, 6),
        (1, 240, 6, 6),
        (1, 120, 3, 3),
        (1, 248, 3, 3),
        (1, 10),
    ]


def test_resnext_block_book_example_keeps_shape():
    assert m.ResNeXtBlock(32, 16, 1)(torch.randn(4, 32, 96, 96)).shape == (4, 32, 96, 96)


def test_regnetx32_stage_shapes():
    assert shapes(m.RegNetX32(), (1, 1, 96, 96)) == [(1, 32, 48, 48), (1, 32, 24, 24), (1, 80, 12, 12), (1, 10)]


@pytest.mark.parametrize("cls", [m.BNLeNetScratch, m.BNLeNet])
def test_batch_normalised_lenets_have_the_same_shapes_and_parameter_count(cls):
    model = cls()
    assert shapes(model, (2, 1, 28, 28))[-1] == (2, 10)
    # 6+16+120+84 features, gamma and beta each, on top of LeNet without padding (44,426).
    assert m.num_parameters(model) == 44_426 + 2 * (6 + 16 + 120 + 84)


def test_models_keep_the_book_constructor_arguments():
    model = m.VGG(arch=((1, 16),), lr=0.01, num_classes=5)
    assert model.lr == 0.01 and shapes(model, (1, 1, 32, 32))[-1] == (1, 5)
    assert m.ResNet18(lr=0.05, num_classes=3).lr == 0.05


def test_layer_shapes_leaves_the_training_flag_alone():
    model = m.LeNet()
    model.train()
    m.layer_shapes(model, (1, 1, 28, 28))
    assert model.training


# --------------------------------------------------------------------------- book models load by order


def test_d2l_lenet_weights_load_and_give_the_same_logits():
    from d2l import torch as d2l

    book, ref = d2l.LeNet(), m.LeNet()
    m.materialize(book, (1, 1, 28, 28))
    m.materialize(ref, (1, 1, 28, 28))
    same_weights(book, ref)
    X = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(ref(X), book(X))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_d2l_residual_weights_load_and_agree_in_train_and_eval_mode(training):
    from d2l import torch as d2l

    for args in [(3,), (6, True, 2)]:
        book, ref = d2l.Residual(*args), m.Residual(*args)
        X = torch.randn(4, 3, 6, 6)
        m.materialize(book, X.shape)
        m.materialize(ref, X.shape)
        randomise_batchnorm(book)
        same_weights(book, ref)
        book.train(training)
        ref.train(training)
        torch.testing.assert_close(ref(X), book(X))


def test_d2l_resnext_block_weights_load_and_give_the_same_output():
    from d2l import torch as d2l

    book, ref = d2l.ResNeXtBlock(32, 16, 1, use_1x1conv=True, strides=2), m.ResNeXtBlock(32, 16, 1, True, 2)
    X = torch.randn(2, 32, 12, 12)
    m.materialize(book, X.shape)
    m.materialize(ref, X.shape)
    randomise_batchnorm(book)
    same_weights(book, ref)
    book.eval()
    ref.eval()
    torch.testing.assert_close(ref(X), book(X))


def test_book_vgg_weights_load_by_order():
    arch = ((1, 8), (1, 16))
    book, ref = book_models.VGG(arch), m.VGG(arch)
    m.materialize(book, (1, 1, 32, 32))
    m.materialize(ref, (1, 1, 32, 32))
    same_weights(book, ref)
    book.eval()
    ref.eval()
    X = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(ref(X), book(X))


def test_book_resnet18_weights_load_by_order_and_agree():
    book, ref = book_models.ResNet18(), m.ResNet18()
    m.materialize(book, (1, 1, 64, 64))
    m.materialize(ref, (1, 1, 64, 64))
    randomise_batchnorm(book)
    same_weights(book, ref)
    book.eval()
    ref.eval()
    X = torch.randn(2, 1, 64, 64)
    torch.testing.assert_close(ref(X), book(X))


def test_load_state_by_order_names_the_first_misfit():
    model = m.materialize(m.LeNet(), (1, 1, 28, 28))
    tensors = list(model.state_dict().values())
    tensors[2] = torch.zeros(16, 6, 3, 3)
    with pytest.raises(ValueError, match=r"entry 2 \(net.3.weight\): expected shape \(16, 6, 5, 5\)"):
        m.load_state_by_order(model, tensors)


def test_load_state_by_order_rejects_a_wrong_count():
    model = m.materialize(m.LeNet(), (1, 1, 28, 28))
    with pytest.raises(ValueError, match="expected 10 tensors"):
        m.load_state_by_order(model, list(model.state_dict().values())[:-1])


# --------------------------------------------------------------------------- batch norm from scratch


def copy_affine(scratch: m.BatchNorm, torch_bn: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        scratch.gamma.copy_(torch.randn(scratch.gamma.shape, generator=g))
        scratch.beta.copy_(torch.randn(scratch.beta.shape, generator=g))
        torch_bn.weight.copy_(scratch.gamma.reshape(-1))
        torch_bn.bias.copy_(scratch.beta.reshape(-1))


@pytest.mark.parametrize(
    "num_dims, torch_cls, shape",
    [(4, nn.BatchNorm2d, (8, 5, 6, 7)), (2, nn.BatchNorm1d, (16, 5))],
    ids=["conv", "dense"],
)
def test_scratch_batch_norm_matches_torch_through_training_and_eval(num_dims, torch_cls, shape):
    scratch, reference = m.BatchNorm(5, num_dims=num_dims).double(), torch_cls(5).double()
    copy_affine(scratch, reference)
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        X = (torch.randn(shape, generator=g, dtype=torch.float64) * (step + 1) + step).requires_grad_()
        X2 = X.detach().clone().requires_grad_()
        Y, Y2 = scratch(X), reference(X2)
        torch.testing.assert_close(Y, Y2)
        (Y * torch.arange(Y.numel(), dtype=Y.dtype).reshape(Y.shape)).sum().backward()
        (Y2 * torch.arange(Y2.numel(), dtype=Y2.dtype).reshape(Y2.shape)).sum().backward()
        torch.testing.assert_close(X.grad, X2.grad)
    torch.testing.assert_close(scratch.moving_mean.reshape(-1), reference.running_mean)
    torch.testing.assert_close(scratch.moving_var.reshape(-1), reference.running_var)
    scratch.eval()
    reference.eval()
    X = torch.randn(shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(scratch(X), reference(X))


def test_scratch_batch_norm_in_train_mode_under_no_grad_still_uses_batch_statistics():
    scratch, reference = m.BatchNorm(3, num_dims=4), nn.BatchNorm2d(3)
    X = torch.randn(4, 3, 5, 5) * 3 + 2
    with torch.no_grad():
        torch.testing.assert_close(scratch(X), reference(X))


def test_scratch_batch_norm_rejects_a_single_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value"):
        m.BatchNorm(3, num_dims=2)(torch.randn(1, 3))


def test_batch_norm_statistics_are_buffers_in_the_state_dict():
    assert list(m.BatchNorm(3, num_dims=4).state_dict()) == ["gamma", "beta", "moving_mean", "moving_var"]


# --------------------------------------------------------------------------- learning, and no d2l


def test_reference_lenet_learns_a_real_fashion_mnist_batch(data_dir):
    """Under the quick budget's procedure (Adam 1e-2, one fixed batch) the reference clearly learns."""
    from torchvision import datasets, transforms

    dataset = datasets.FashionMNIST(data_dir, train=True, download=not data_dir.exists(), transform=transforms.ToTensor())
    X = torch.stack([dataset[i][0] for i in range(64)])
    y = torch.tensor([dataset[i][1] for i in range(64)])
    torch.manual_seed(0)
    model = m.apply_init(m.LeNet(), X.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = nn.functional.cross_entropy
    first = loss(model(X), y).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss(model(X), y).backward()
        optimizer.step()
    assert loss(model(X), y).item() < 0.5 * first


def test_reference_does_not_import_d2l():
    code = "import sys, reference.ops, reference.models, reference.claims; print('d2l' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
