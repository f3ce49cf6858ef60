"""The reference ops equal PyTorch's own kernels on generated inputs, and the book's examples."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given
from hypothesis.extra.numpy import arrays
from torch import nn
from torch.nn import functional as F

from reference import ops
from tests.conftest import DEVICES

DTYPES = [torch.float32, torch.float64]
TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-3), torch.float64: dict(rtol=1e-9, atol=1e-9)}


def tensor(draw, shape, dtype, device):
    """A tensor of bounded floats whose values Hypothesis can shrink."""
    values = draw(arrays("float64", shape, elements=st.floats(-10, 10, allow_nan=False, width=32)))
    return torch.from_numpy(values).to(dtype=dtype, device=device)


@st.composite
def conv_case(draw, channels_in=None, channels_out=None):
    """X, K, padding and stride such that the padded window fits."""
    dtype = draw(st.sampled_from(DTYPES))
    device = draw(st.sampled_from(DEVICES))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, h + 2 * ph)), draw(st.integers(1, w + 2 * pw))
    x_shape = (h, w) if channels_in is None else (channels_in, h, w)
    k_shape = (kh, kw) if channels_in is None else (channels_in, kh, kw)
    if channels_out is not None:
        k_shape = (channels_out, *k_shape)
    X, K = tensor(draw, x_shape, dtype, device), tensor(draw, k_shape, dtype, device)
    return X, K, (ph, pw), (sh, sw)


@st.composite
def pool_case(draw):
    """X (c, h, w), window, and PyTorch-legal padding (at most half the window) and stride."""
    dtype = draw(st.sampled_from(DTYPES))
    device = draw(st.sampled_from(DEVICES))
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return tensor(draw, (c, h, w), dtype, device), (kh, kw), (ph, pw), (sh, sw)


def assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, **TOLERANCE[want.dtype])


# --------------------------------------------------------------------------- corr2d


@given(conv_case())
def test_corr2d_equals_conv2d_for_any_padding_and_stride(case):
    X, K, padding, stride = case
    want = F.conv2d(X[None, None], K[None, None], padding=padding, stride=stride)[0, 0]
    assert_same(ops.corr2d(X, K, padding=padding, stride=stride), want)


def test_corr2d_book_example():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert ops.corr2d(X, K).tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_corr2d_edge_detection_example():
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    Y = ops.corr2d(X, torch.tensor([[1.0, -1.0]]))
    expected = torch.zeros((6, 7))
    expected[:, 1], expected[:, 5] = 1, -1
    assert torch.equal(Y, expected)
    assert torch.equal(ops.corr2d(X.t(), torch.tensor([[1.0, -1.0]])), torch.zeros((8, 5)))


def test_corr2d_keeps_float64():
    X, K = torch.rand(5, 5, dtype=torch.float64), torch.rand(2, 2, dtype=torch.float64)
    assert ops.corr2d(X, K).dtype == torch.float64


def test_corr2d_rejects_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match="does not fit"):
        ops.corr2d(torch.zeros(2, 2), torch.zeros(3, 1))


def test_corr2d_rejects_non_2d_input():
    with pytest.raises(ValueError, match="2-D"):
        ops.corr2d(torch.zeros(1, 2, 2), torch.zeros(1, 1))


# --------------------------------------------------------------------------- layers and shapes


def test_conv2d_layer_has_book_parameters_and_adds_bias():
    layer = ops.Conv2D((1, 2))
    assert dict((n, tuple(p.shape)) for n, p in layer.named_parameters()) == {"weight": (1, 2), "bias": (1,)}
    with torch.no_grad():
        layer.bias.fill_(0.5)
    X = torch.rand(4, 5)
    assert_same(layer(X), ops.corr2d(X, layer.weight.detach()) + 0.5)


@pytest.mark.parametrize(
    "layer, expected",
    [
        (nn.Conv2d(1, 1, kernel_size=3, padding=1), (8, 8)),
        (nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
        (nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2), (4, 4)),
        (nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
    ],
)
def test_comp_conv2d_gives_the_book_shapes(layer, expected):
    assert tuple(ops.comp_conv2d(layer, torch.rand(8, 8)).shape) == expected


@given(n=st.integers(1, 30), k=st.integers(1, 30), p=st.integers(0, 6), s=st.integers(1, 6))
def test_output_shape_equals_pytorch_for_symmetric_padding(n, k, p, s):
    total = 2 * p
    if k > n + total:
        with pytest.raises(ValueError):
            ops.output_shape(n, k, total, s)
        return
    layer = nn.Conv2d(1, 1, kernel_size=(1, k), padding=(0, p), stride=(1, s))
    assert ops.comp_conv2d(layer, torch.zeros(1, n)).shape[-1] == ops.output_shape(n, k, total, s)


def test_output_shape_works_per_dimension_on_tuples():
    assert ops.output_shape((8, 8), (3, 5), (0, 2), (3, 4)) == (2, 2)


def test_output_shape_rejects_stride_zero():
    with pytest.raises(ValueError, match="stride"):
        ops.output_shape(8, 3, 0, 0)


# --------------------------------------------------------------------------- channels


@given(conv_case(channels_in=3))
def test_corr2d_multi_in_equals_conv2d(case):
    X, K, padding, stride = case
    want = F.conv2d(X[None], K[None], padding=padding, stride=stride)[0, 0]
    assert_same(ops.corr2d_multi_in(X, K, padding=padding, stride=stride), want)


@given(conv_case(channels_in=2, channels_out=3))
def test_corr2d_multi_in_out_equals_conv2d(case):
    X, K, padding, stride = case
    want = F.conv2d(X[None], K, padding=padding, stride=stride)[0]
    assert_same(ops.corr2d_multi_in_out(X, K, padding=padding, stride=stride), want)


def test_corr2d_multi_in_book_example():
    X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert ops.corr2d_multi_in(X, K).tolist() == [[56.0, 72.0], [104.0, 120.0]]
    out = ops.corr2d_multi_in_out(X, torch.stack((K, K + 1, K + 2), 0))
    assert out.tolist() == [[[56.0, 72.0], [104.0, 120.0]], [[76.0, 100.0], [148.0, 172.0]], [[96.0, 128.0], [192.0, 224.0]]]


@given(
    c_i=st.integers(1, 4),
    c_o=st.integers(1, 4),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    dtype=st.sampled_from(DTYPES),
    device=st.sampled_from(DEVICES),
    data=st.data(),
)
def test_conv1x1_equals_multi_in_out(c_i, c_o, h, w, dtype, device, data):
    X = tensor(data.draw, (c_i, h, w), dtype, device)
    K = tensor(data.draw, (c_o, c_i, 1, 1), dtype, device)
    assert_same(ops.corr2d_multi_in_out_1x1(X, K), ops.corr2d_multi_in_out(X, K))


def test_multi_in_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="c_i"):
        ops.corr2d_multi_in(torch.zeros(2, 3, 3), torch.zeros(3, 2, 2))


# --------------------------------------------------------------------------- pooling


@given(pool_case())
def test_max_pooling_equals_max_pool2d(case):
    X, window, padding, stride = case
    want = F.max_pool2d(X, window, stride=stride, padding=padding)
    assert_same(ops.pool2d(X, window, "max", padding=padding, stride=stride), want)


@given(pool_case())
def test_avg_pooling_equals_avg_pool2d(case):
    X, window, padding, stride = case
    want = F.avg_pool2d(X, window, stride=stride, padding=padding)
    assert_same(ops.pool2d(X, window, "avg", padding=padding, stride=stride), want)


def test_pool2d_book_examples():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    assert ops.pool2d(X, (2, 2)).tolist() == [[4.0, 5.0], [7.0, 8.0]]
    assert ops.pool2d(X, (2, 2), "avg").tolist() == [[2.0, 3.0], [5.0, 6.0]]


def test_pool2d_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        ops.pool2d(torch.zeros(3, 3), (2, 2), "min")


def test_pool2d_accepts_an_int_window():
    X = torch.arange(16.0).reshape(4, 4)
    assert torch.equal(ops.pool2d(X, 2), ops.pool2d(X, (2, 2)))
