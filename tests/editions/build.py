"""The editions corpus (issue 16, item 5): HW2 as students write it from other editions of d2l.

Real hand-ins follow d2l-zh 2.0, the pre-1.0 PyTorch port, a d2l 1.0.0a0 Colab or
"Dive-into-DL-PyTorch" notes; they spell the book's code their own way and answer in
Chinese, Korean or Japanese. Every notebook here was written for this corpus (none is a
copy of a public notebook); ``expected.toml`` beside it says, per question, what a fair
TA would give each one and why.

The notebooks are kept as code so that every cell reads as the student typed it and a
change shows as a readable diff; ``python tests/editions/build.py`` rewrites the
``.ipynb`` files beside this file, and ``tests/test_editions.py`` fails when a committed
notebook is not what this file writes.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent


@dataclass
class Cell:
    kind: str  # "markdown" | "code"
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    count: int | None = None


def md(text: str) -> Cell:
    return Cell("markdown", textwrap.dedent(text).strip("\n"))


def code(text: str, *outputs: dict[str, Any], count: int | None = None) -> Cell:
    return Cell("code", textwrap.dedent(text).strip("\n"), list(outputs), count)


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def shown(text: str, count: int) -> dict[str, Any]:
    """An ``execute_result`` as Jupyter saves it (the cell's value, text only)."""
    return {"output_type": "execute_result", "execution_count": count, "data": {"text/plain": text}, "metadata": {}}


def raised(ename: str, evalue: str, *lines: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": list(lines)}


def _cell_id(stem: str, index: int, length: int) -> str:
    """Ids that look like Colab's or Jupyter's but do not change from one build to the next."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    digest = hashlib.sha256(f"{stem}/{index}".encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def colab(stem: str, cells: list[Cell], gpu: bool = True) -> nbformat.NotebookNode:
    """A notebook as Colab saves it: nbformat 4.0, ids in each cell's metadata, the runtime in the notebook's."""
    metadata: dict[str, Any] = {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
    }
    if gpu:
        metadata.update(accelerator="GPU", gpuClass="standard")
        metadata["colab"]["gpuType"] = "T4"
    return nbformat.from_dict(
        {
            "nbformat": 4,
            "nbformat_minor": 0,
            "metadata": metadata,
            "cells": [_cell(c, {"id": _cell_id(stem, i, 12)}) for i, c in enumerate(cells)],
        }
    )


def jupyter(
    stem: str, cells: list[Cell], python: str = "3.10.12", kernel: tuple[str, str] = ("python3", "Python 3 (ipykernel)")
) -> nbformat.NotebookNode:
    """A notebook as JupyterLab or VS Code saves it locally: nbformat 4.5, a cell id on each cell."""
    metadata = {
        "kernelspec": {"name": kernel[0], "display_name": kernel[1], "language": "python"},
        "language_info": {
            "name": "python",
            "version": python,
            "mimetype": "text/x-python",
            "file_extension": ".py",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "pygments_lexer": "ipython3",
            "nbconvert_exporter": "python",
        },
    }
    saved = [{**_cell(c, {}), "id": _cell_id(stem, i, 8).lower()} for i, c in enumerate(cells)]
    return nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": saved})


def _cell(cell: Cell, metadata: dict[str, Any]) -> dict[str, Any]:
    if cell.kind == "markdown":
        return {"cell_type": "markdown", "metadata": metadata, "source": cell.source}
    return {"cell_type": "code", "metadata": metadata, "source": cell.source, "execution_count": cell.count, "outputs": cell.outputs}


# =========================================================================== 1. d2l-zh 2.0 notes

ZH2_NOTES = [
    md("""
    # 作业二：卷积神经网络

    学习笔记：跟着《动手学深度学习》第二版（zh-v2.d2l.ai）第6章、第7章敲的代码，练习题用中文回答。
    """),
    code(
        """
    import torch
    from torch import nn
    from d2l import torch as d2l
    """,
        count=1,
    ),
    md(r"""
    ## 6.1 从全连接层到卷积

    ### 练习

    6. 证明在 (6.1.6) 中，$f*g=g*f$。
    """),
    md(r"""
    答：令 $\mathbf{b}=\mathbf{x}-\mathbf{a}$（即 $\mathbf{a}=\mathbf{x}-\mathbf{b}$），雅可比行列式的绝对值为 1，积分区域仍是整个空间，所以

    $$(f*g)(\mathbf{x})=\int f(\mathbf{a})g(\mathbf{x}-\mathbf{a})d\mathbf{a}=\int f(\mathbf{x}-\mathbf{b})g(\mathbf{b})d\mathbf{b}=(g*f)(\mathbf{x})。$$

    离散的情况把积分换成求和，做同样的换元即可。所以卷积满足交换律。
    """),  # noqa: E501 -- a student's markdown line, kept whole as the committed notebook has it
    md("""
    ## 6.2 图像卷积

    ### 互相关运算
    """),
    code(
        '''
    def corr2d(X, K):  #@save
        """计算二维互相关运算"""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    ''',
        count=2,
    ),
    code(
        """
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    corr2d(X, K)
    """,
        shown("tensor([[19., 25.],\n        [37., 43.]])", 3),
        count=3,
    ),
    md("### 卷积层"),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=4,
    ),
    md(r"""
    ### 图像中目标的边缘检测

    构造一个 $6\times 8$ 像素的黑白图像，中间四列为黑色（0），其余像素为白色（1）。
    """),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    X
    """,
        count=5,
    ),
    code("K = torch.tensor([[1.0, -1.0]])", count=6),
    code(
        """
    Y = corr2d(X, K)
    Y
    """,
        count=7,
    ),
    code("corr2d(X.t(), K)", count=8),
    md("### 学习卷积核"),
    code(
        """
    # 构造一个二维卷积层，它具有1个输出通道和形状为（1，2）的卷积核
    conv2d = nn.Conv2d(1,1, kernel_size=(1, 2), bias=False)

    # 这个二维卷积层使用四维输入和输出格式（批量大小、通道、高度、宽度），
    # 其中批量大小和通道数都为1
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2  # 学习率

    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        # 迭代卷积核
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i+1}, loss {l.sum():.3f}')
    """,
        count=9,
    ),
    code("conv2d.weight.data.reshape((1, 2))", count=10),
    md("## 6.3 填充和步幅"),
    code(
        """
    import torch
    from torch import nn


    # 为了方便起见，我们定义了一个计算卷积层的函数。
    # 此函数初始化卷积层权重，并对输入和输出提高和缩减相应的维数
    def comp_conv2d(conv2d, X):
        # 这里的（1，1）表示批量大小和通道数都是1
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        # 省略前两个维度：批量大小和通道
        return Y.reshape(Y.shape[2:])

    # 请注意，这里每边都填充了1行或1列，因此总共添加了2行或2列
    conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1)
    X = torch.rand(size=(8, 8))
    comp_conv2d(conv2d, X).shape
    """,
        count=11,
    ),
    code(
        """
    conv2d = nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1))
    comp_conv2d(conv2d, X).shape
    """,
        count=12,
    ),
    code(
        """
    conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2)
    comp_conv2d(conv2d, X).shape
    """,
        count=13,
    ),
    code(
        """
    conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    comp_conv2d(conv2d, X).shape
    """,
        shown("torch.Size([2, 2])", 14),
        count=14,
    ),
    md(r"""
    ### 练习

    1. 对于本节中的最后一个示例，计算其输出形状，以查看它是否与实验结果一致。

    答：高：$\lfloor(8-3+0+3)/3\rfloor=2$，宽：$\lfloor(8-5+2+4)/4\rfloor=2$，所以输出形状是 $2\times2$，和上面的 `torch.Size([2, 2])` 一致。
    """),  # noqa: E501 -- a student's markdown line, kept whole as the committed notebook has it
    md("## 6.4 多输入多输出通道"),
    code(
        """
    def corr2d_multi_in(X, K):
        # 先遍历“X”和“K”的第0个维度（通道维度），再把它们加在一起
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
    """,
        count=15,
    ),
    code(
        """
    X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                   [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

    corr2d_multi_in(X, K)
    """,
        count=16,
    ),
    code(
        """
    def corr2d_multi_in_out(X, K):
        # 迭代“K”的第0个维度，每次都对输入“X”执行互相关运算。
        # 最后将所有结果都叠加在一起
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)
    """,
        count=17,
    ),
    code(
        """
    K = torch.stack((K, K + 1, K + 2), 0)
    K.shape
    """,
        count=18,
    ),
    code("corr2d_multi_in_out(X, K)", count=19),
    code(
        """
    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        # 全连接层中的矩阵乘法
        Y = torch.matmul(K, X)
        return Y.reshape((c_o, h, w))
    """,
        count=20,
    ),
    code(
        """
    X = torch.normal(0, 1, (3, 3, 3))
    K = torch.normal(0, 1, (2, 3, 1, 1))

    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)
    assert float(torch.abs(Y1 - Y2).sum()) < 1e-6
    """,
        count=21,
    ),
    md(r"""
    ### 练习

    1. 假设我们有两个卷积核，大小分别为 $k_1$ 和 $k_2$（中间没有非线性激活函数）。
        1. 证明运算可以用单次卷积来表示。
        1. 这个等效的单个卷积核的维数是多少呢？

    答：互相关是线性运算，两次互相关合起来等价于用一个卷积核做一次互相关；这个等效卷积核的大小是 $k_1+k_2-1$。
    """),
    md("## 6.5 汇聚层"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y
    """,
        count=22,
    ),
    code(
        """
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    pool2d(X, (2, 2))
    """,
        count=23,
    ),
    code("pool2d(X, (2, 2), 'avg')", count=24),
    code(
        """
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    X
    """,
        count=25,
    ),
    code(
        """
    pool2d = nn.MaxPool2d(3)
    pool2d(X)
    """,
        count=26,
    ),
    code(
        """
    pool2d = nn.MaxPool2d(3, padding=1, stride=2)
    pool2d(X)
    """,
        count=27,
    ),
    md("""
    ### 练习

    2. 你能将最大汇聚层作为卷积层的特殊情况实现吗？
    """),
    md(r"""
    答：不能。卷积（互相关）是线性运算，几个卷积层叠在一起还是线性的；而最大汇聚不是线性的。
    例如窗口里的值分别是 $(1,0)$ 和 $(0,1)$ 时，$\max(1,0)+\max(0,1)=2$，但 $\max(1+0,0+1)=1$。
    所以只用卷积层实现不了最大汇聚层（平均汇聚可以：卷积核取 $1/(p_h p_w)$）。
    """),
    md("## 6.6 卷积神经网络（LeNet）"),
    code(
        """
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    """,
        count=28,
    ),
    code(
        """
    X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
    for layer in net:
        X = layer(X)
        print(layer.__class__.__name__,'output shape: \\t',X.shape)
    """,
        count=29,
    ),
    code(
        """
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
    """,
        count=30,
    ),
    code(
        """
    # train_ch6 已经保存在 d2l 包里了，直接用
    lr, num_epochs = 0.9, 10
    d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())
    """,
        count=31,
    ),
    md("## 7.2 使用块的网络（VGG）"),
    code(
        """
    def vgg_block(num_convs, in_channels, out_channels):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.Conv2d(in_channels, out_channels,
                                    kernel_size=3, padding=1))
            layers.append(nn.ReLU())
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2,stride=2))
        return nn.Sequential(*layers)
    """,
        count=32,
    ),
    code("conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))", count=33),
    code(
        """
    def vgg(conv_arch):
        conv_blks = []
        in_channels = 1
        # 卷积层部分
        for (num_convs, out_channels) in conv_arch:
            conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
            in_channels = out_channels

        return nn.Sequential(
            *conv_blks, nn.Flatten(),
            # 全连接层部分
            nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 10))

    net = vgg(conv_arch)
    """,
        count=34,
    ),
    code(
        """
    X = torch.randn(size=(1, 1, 224, 224))
    for blk in net:
        X = blk(X)
        print(blk.__class__.__name__,'output shape:\\t',X.shape)
    """,
        count=35,
    ),
    code(
        """
    ratio = 4
    small_conv_arch = [(pair[0], pair[1] // ratio) for pair in conv_arch]
    net = vgg(small_conv_arch)
    # lr, num_epochs, batch_size = 0.05, 10, 128
    # train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size, resize=224)
    # d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())   # CPU上太慢了，没跑
    """,
        count=36,
    ),
    md("## 7.6 残差网络（ResNet）"),
    code(
        """
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l


    class Residual(nn.Module):  #@save
        def __init__(self, input_channels, num_channels,
                     use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.Conv2d(input_channels, num_channels,
                                   kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(num_channels, num_channels,
                                   kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.Conv2d(input_channels, num_channels,
                                       kernel_size=1, stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.BatchNorm2d(num_channels)
            self.bn2 = nn.BatchNorm2d(num_channels)

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)
    """,
        count=37,
    ),
    code(
        """
    blk = Residual(3,3)
    X = torch.rand(4, 3, 6, 6)
    Y = blk(X)
    Y.shape
    """,
        count=38,
    ),
    code(
        """
    blk = Residual(3,6, use_1x1conv=True, strides=2)
    blk(X).shape
    """,
        count=39,
    ),
    code(
        """
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    """,
        count=40,
    ),
    code(
        """
    def resnet_block(input_channels, num_channels, num_residuals,
                     first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(input_channels, num_channels,
                                    use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels, num_channels))
        return blk

    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))

    net = nn.Sequential(b1, b2, b3, b4, b5,
                        nn.AdaptiveAvgPool2d((1,1)),
                        nn.Flatten(), nn.Linear(512, 10))
    """,
        count=41,
    ),
    code(
        """
    X = torch.rand(size=(1, 1, 224, 224))
    for layer in net:
        X = layer(X)
        print(layer.__class__.__name__,'output shape:\\t', X.shape)
    """,
        count=42,
    ),
    md("训练要用 GPU（`lr, num_epochs, batch_size = 0.05, 10, 256`，`resize=96`），在 Colab 上跑过了，这里略。"),
]


# =========================================================================== 2. the pre-1.0 PyTorch port

PORT_PRE10 = [
    md("""
    # HW2 — Convolutional Neural Networks

    I worked through the PyTorch port of *Dive into Deep Learning* (the community port of the 0.7 book,
    `d2l-pytorch`), chapter 5 "Convolutional Neural Networks".
    """),
    code(
        """
    %matplotlib inline
    import torch
    from torch import nn
    import sys
    sys.path.insert(0, '..')  # the port's d2l/ folder sits next to the chapter folders
    import d2l
    d2l.use_svg_display()
    """,
        count=1,
    ),
    md("""
    ## 5.1 From Dense Layers to Convolutions

    ### Exercises

    1. Prove that convolution is commutative, i.e. $f * g = g * f$.
    """),
    md(r"""
    **Ans:** substitute $b = x - a$ in $(f * g)(x) = \sum_a f(a) g(x - a)$. As $a$ runs over all integers so does $b$, hence
    $(f * g)(x) = \sum_b f(x - b) g(b) = \sum_b g(b) f(x - b) = (g * f)(x)$. The continuous case is the same with an integral
    (the substitution has Jacobian $\pm 1$).
    """),
    md("## 5.2 Convolutions for Images"),
    code(
        '''
    def corr2d(X, K):
        """Compute 2D cross-correlation."""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i: i + h, j: j + w] * K).sum()
        return Y
    ''',
        count=2,
    ),
    code(
        """
    X = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=torch.float32)
    K = torch.tensor([[0, 1], [2, 3]], dtype=torch.float32)
    corr2d(X, K)
    """,
        count=3,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size, **kwargs):
            super(Conv2D, self).__init__(**kwargs)
            self.weight = torch.rand(kernel_size, requires_grad=True)
            self.bias = torch.zeros(1, requires_grad=True)

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=4,
    ),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    X
    """,
        count=5,
    ),
    code(
        """
    K = torch.tensor([[1, -1]], dtype=torch.float32)
    Y = corr2d(X, K)
    Y
    """,
        count=6,
    ),
    code("corr2d(X.t(), K)", count=7),
    code(
        """
    # Construct a convolutional layer with 1 output channel
    # (channels will be introduced in the following section)
    # and a kernel array shape of (1, 2)
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)

    # The two-dimensional convolutional layer uses four-dimensional input and
    # output in the format of (example channel, height, width), where the batch
    # size (number of examples in the batch) and the number of channels are both 1
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))

    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        # For the sake of simplicity, we ignore the bias here
        conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print('batch %d, loss %.3f' % (i + 1, l.sum().item()))
    """,
        count=8,
    ),
    code("conv2d.weight.data.reshape((1, 2))", count=9),
    md("## 5.3 Padding and Stride"),
    code(
        """
    # For convenience, we define a function to calculate the convolutional layer.
    # This function initializes the convolutional layer weights and performs
    # corresponding dimensionality elevations and reductions on the input and
    # output
    def comp_conv2d(conv2d, X):
        # (1,1) indicates that the batch size and the number of channels
        # (described in later chapters) are both 1
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        # Exclude the first two dimensions that do not interest us: batch and
        # channel
        return Y.reshape(Y.shape[2:])

    # Note that here 1 row or column is padded on either side, so a total of 2
    # rows or columns are added
    conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1)
    X = torch.rand(8, 8)
    comp_conv2d(conv2d, X).shape
    """,
        count=10,
    ),
    code(
        """
    # Here, we use a convolution kernel with a height of 5 and a width of 3. The
    # padding numbers on both sides of the height and width are 2 and 1,
    # respectively
    conv2d = nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1))
    comp_conv2d(conv2d, X).shape
    """,
        count=11,
    ),
    code(
        """
    conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2)
    comp_conv2d(conv2d, X).shape
    """,
        count=12,
    ),
    code(
        """
    conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    comp_conv2d(conv2d, X).shape
    """,
        count=13,
    ),
    md("""
    ### Exercises

    1. For the last example in this section, use the shape calculation formula to calculate the output shape to see if it is
       consistent with the experimental result.
    """),
    code(
        """
    # height: floor((8 - 3 + 0 + 3) / 3) = 2, width: floor((8 - 5 + 2 + 4) / 4) = 2
    ANSWER_OUTPUT_SHAPE = [2, 2]
    ANSWER_OUTPUT_SHAPE_FORMULA = "(n - k + p + s) // s"
    """,
        count=14,
    ),
    md("## 5.4 Multiple Input and Output Channels"),
    code(
        """
    def corr2d_multi_in(X, K):
        # First, traverse along the 0th dimension (channel dimension) of X and K.
        # Then, add them together by using * to turn the result list into a
        # positional argument of the add_n function
        return sum([d2l.corr2d(x, k) for x, k in zip(X, K)])
    """,
        count=15,
    ),
    code(
        """
    X = torch.tensor([[[0, 1, 2], [3, 4, 5], [6, 7, 8]],
                      [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=torch.float32)
    K = torch.tensor([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], dtype=torch.float32)

    corr2d_multi_in(X, K)
    """,
        count=16,
    ),
    code(
        """
    def corr2d_multi_in_out(X, K):
        # Traverse along the 0th dimension of K, and each time, perform
        # cross-correlation operations with input X. All of the results are merged
        # together using the stack function
        return torch.stack([corr2d_multi_in(X, k) for k in K])

    K = torch.stack((K, K + 1, K + 2))
    K.shape
    """,
        count=17,
    ),
    code("corr2d_multi_in_out(X, K)", count=18),
    code(
        """
    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        Y = torch.mm(K, X)  # Matrix multiplication in the fully connected layer
        return Y.reshape((c_o, h, w))
    """,
        count=19,
    ),
    code(
        """
    X = torch.rand(3, 3, 3)
    K = torch.rand(2, 3, 1, 1)

    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)

    (Y1 - Y2).norm().item() < 1e-6
    """,
        count=20,
    ),
    md(r"""
    ### Exercises

    1. Assume that we have two convolutional kernels of size $k_1$ and $k_2$ respectively (with no nonlinearity in between).
        1. Prove that the result of the operation can be expressed by a single convolution.
        1. What is the dimensionality of the equivalent single convolution?
    """),
    code(
        """
    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"
    """,
        count=21,
    ),
    md("## 5.5 Pooling"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y
    """,
        count=22,
    ),
    code(
        """
    X = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=torch.float32)
    pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
    """,
        count=23,
    ),
    code(
        """
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    pool2d = nn.MaxPool2d(3)
    # Because there are no model parameters in the pooling layer, we do not need
    # to call the parameter initialization function
    pool2d(X)
    """,
        count=24,
    ),
    md("""
    ### Exercises

    1. Can you implement average pooling as a special case of a convolution layer? If so, do it.
    1. Can you implement max pooling as a special case of a convolution layer? If so, do it.
    """),
    md(r"""
    **Ans:** 1. Yes: average pooling over a $p \times q$ window is a convolution whose kernel is all $1/(pq)$, with the stride
    equal to the window and one kernel per channel. 2. No. Max pooling is not linear: for the windows $(1, 0)$ and $(0, 1)$,
    $\max(1, 0) + \max(0, 1) = 2$ but $\max(1 + 0, 0 + 1) = 1$, while a convolution (a linear map) would have to give the same
    value both ways. So no stack of convolution layers computes max pooling.
    """),
    md("## 5.6 Convolutional Neural Networks (LeNet)"),
    code(
        """
    class Flatten(torch.nn.Module):
        def forward(self, x):
            return x.view(x.shape[0], -1)

    class Reshape(torch.nn.Module):
        def forward(self, x):
            return x.view(-1, 1, 28, 28)

    net = torch.nn.Sequential(
        Reshape(),
        nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        Flatten(),
        nn.Linear(in_features=16*5*5, out_features=120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, 10))
    """,
        count=25,
    ),
    code(
        """
    X = torch.randn(size=(1, 1, 28, 28), dtype=torch.float32)
    for layer in net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape: \\t', X.shape)
    """,
        count=26,
    ),
    code(
        """
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
    """,
        count=27,
    ),
    code(
        """
    lr, num_epochs = 0.9, 10

    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:
            torch.nn.init.xavier_uniform_(m.weight)

    net.apply(init_weights)
    criterion = nn.CrossEntropyLoss()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    d2l.train_ch5(net, train_iter, test_iter, criterion, num_epochs, batch_size, device, lr)
    """,
        count=28,
    ),
]


# =========================================================================== 3. helpers re-implemented inline

INLINE_HELPERS = [
    md("""
    # HW2 — CNNs, written from scratch

    I did not want to depend on the `d2l` package, so every helper the book imports is re-implemented here
    (own names, own training loop over `torchvision`).
    """),
    code(
        """
    import torch
    import torchvision
    from torch import nn
    from torchvision import transforms
    """,
        count=1,
    ),
    md(r"""
    ## 7.1 Exercise — show that $f * g = g * f$

    Answer: write $(f * g)(x) = \int f(z)\, g(x - z)\, dz$ and substitute $u = x - z$ ($dz = -du$, and the limits swap, which
    cancels the sign). Then $(f * g)(x) = \int f(x - u)\, g(u)\, du = (g * f)(x)$. For sequences replace the integral by a
    sum over all integers; the substitution is a bijection of $\mathbb{Z}$.
    """),
    md("## 7.2 Convolutions for images"),
    code(
        '''
    def corr2d(img, kern):
        """2-D cross-correlation of a matrix `img` with a kernel `kern` (no padding, stride 1)."""
        kh, kw = kern.shape
        out = torch.zeros(img.shape[0] - kh + 1, img.shape[1] - kw + 1)
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                out[r, c] = torch.sum(img[r:r + kh, c:c + kw] * kern)
        return out

    corr2d(torch.arange(9.).reshape(3, 3), torch.arange(4.).reshape(2, 2))
    ''',
        count=2,
    ),
    code(
        '''
    class Conv2D(nn.Module):
        """A 2-D convolutional layer built on my corr2d."""
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(kernel_size) * 0.1)
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, inp):
            return corr2d(inp, self.weight) + self.bias
    ''',
        count=3,
    ),
    code(
        """
    # edge detection: a white image with a black stripe in columns 2-5
    img = torch.ones(6, 8)
    img[:, 2:6] = 0
    edge_kernel = torch.tensor([[1.0, -1.0]])
    edges = corr2d(img, edge_kernel)
    edges
    """,
        count=4,
    ),
    code("corr2d(img.t(), edge_kernel)  # the vertical-edge kernel sees nothing in the transposed image", count=5),
    code(
        """
    # learn the kernel back from (img, edges) with plain SGD
    conv = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    opt = torch.optim.SGD(conv.parameters(), lr=0.03)
    x4, y4 = img.reshape(1, 1, 6, 8), edges.reshape(1, 1, 6, 7)
    for step in range(10):
        opt.zero_grad()
        loss = ((conv(x4) - y4) ** 2).sum()
        loss.backward()
        opt.step()
        if step % 2 == 1:
            print(f'step {step + 1}: loss {loss.item():.4f}')
    conv.weight.data.view(1, 2)
    """,
        count=6,
    ),
    md("## 7.3 Padding and stride"),
    code(
        """
    def comp_conv2d(layer, x):
        out = layer(x[None, None])  # add the batch and channel dimensions
        return out[0, 0]            # and drop them again

    for kw in [dict(kernel_size=3, padding=1), dict(kernel_size=(5, 3), padding=(2, 1)),
               dict(kernel_size=3, padding=1, stride=2), dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))]:
        print(kw, comp_conv2d(nn.Conv2d(1, 1, **kw), torch.rand(8, 8)).shape)
    """,
        count=7,
    ),
    code(
        """
    ANSWER_OUTPUT_SHAPE = (2, 2)
    ANSWER_OUTPUT_SHAPE_FORMULA = "floor((n + p - k) / s) + 1"
    """,
        count=8,
    ),
    md("## 7.4 Multiple input and output channels"),
    code(
        """
    def corr2d_multi_in(X, K):
        return torch.stack([corr2d(x, k) for x, k in zip(X, K)]).sum(dim=0)

    def corr2d_multi_in_out(X, K):
        return torch.stack([corr2d_multi_in(X, k) for k in K])

    def corr2d_multi_in_out_1x1(X, K):
        # a 1x1 convolution is a matrix product over the channels at every pixel
        return torch.einsum('oi,ihw->ohw', K[:, :, 0, 0], X)
    """,
        count=9,
    ),
    code(
        """
    X = torch.randn(3, 4, 5)
    K = torch.randn(2, 3, 1, 1)
    torch.allclose(corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out(X, K), atol=1e-6)
    """,
        count=10,
    ),
    code(
        """
    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"  # two 3x3 kernels in a row act like one 5x5 kernel
    """,
        count=11,
    ),
    md("## 7.5 Pooling"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        ph, pw = pool_size
        out = torch.zeros(X.shape[0] - ph + 1, X.shape[1] - pw + 1)
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                window = X[r:r + ph, c:c + pw]
                out[r, c] = window.max() if mode == 'max' else window.mean()
        return out
    """,
        count=12,
    ),
    code(
        """
    X = torch.arange(9.).reshape(3, 3)
    pool2d(X, (2, 2)), pool2d(X, (2, 2), mode='avg')
    """,
        count=13,
    ),
    md(r"""
    ### Exercise: can max-pooling be written as a convolution?

    Answer: no. A convolution is linear in its input; max-pooling is not linear: with the windows $a = (1, 0)$ and
    $b = (0, 1)$, $\max(a) + \max(b) = 2 \ne 1 = \max(a + b)$. So max-pooling is not a convolution, whatever the kernel.
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2),
                nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2),
                nn.Flatten(),
                nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
                nn.Linear(120, 84), nn.Sigmoid(),
                nn.Linear(84, num_classes))

        def forward(self, x):
            return self.net(x)

    x = torch.zeros(1, 1, 28, 28)
    for layer in LeNet().net:
        x = layer(x)
        print(f'{type(layer).__name__:>10}: {tuple(x.shape)}')
    """,
        count=14,
    ),
    code(
        """
    to_tensor = transforms.ToTensor()
    train_set = torchvision.datasets.FashionMNIST(root='./data', train=True, download=True, transform=to_tensor)
    test_set = torchvision.datasets.FashionMNIST(root='./data', train=False, download=True, transform=to_tensor)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=256)
    len(train_set), len(test_set)
    """,
        count=15,
    ),
    code(
        """
    torch.manual_seed(0)
    model = LeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(3):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in test_loader)
        print(f'epoch {epoch + 1}: last loss {loss.item():.3f}, test accuracy {correct / len(test_set):.3f}')
    """,
        count=16,
    ),
]


# =========================================================================== 4. a condensed d2l 1.0.0a0 Colab

NVIDIA_SMI = """\
Tue Oct 17 08:12:41 2023
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 525.105.17   Driver Version: 525.105.17   CUDA Version: 12.0     |
|-------------------------------+----------------------+----------------------+
| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |
|   0  Tesla T4            Off  | 00000000:00:04.0 Off |                    0 |
| N/A   44C    P8     9W /  70W |      0MiB / 15360MiB |      0%      Default |
+-------------------------------+----------------------+----------------------+
"""

COLAB_1_0_0A0 = [
    md("""
    # HW2 (Colab)

    7장·8장 실습 정리 — 수업 노트북 대신 d2l 1.0.0a0 (Colab) 으로 돌렸습니다. 셀을 합쳐서 짧게 만들었어요.
    """),
    code("!nvidia-smi", stream(NVIDIA_SMI), count=1),
    code(
        "!pip install d2l==1.0.0a0",
        stream(
            "Collecting d2l==1.0.0a0\n  Downloading d2l-1.0.0a0-py3-none-any.whl (92 kB)\n"
            "Successfully installed d2l-1.0.0a0 jedi-0.19.1 matplotlib-inline-0.1.3\n"
        ),
        count=2,
    ),
    code(
        """
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l
    """,
        count=3,
    ),
    md("## 7.1 연습 문제: 합성곱의 교환법칙 $f*g = g*f$ 증명"),
    md(r"""
    답: $(f*g)(\mathbf{x}) = \int f(\mathbf{z})g(\mathbf{x}-\mathbf{z})d\mathbf{z}$ 에서 $\mathbf{u} = \mathbf{x}-\mathbf{z}$ 로 치환하면
    (야코비안의 절댓값 1, 적분 영역은 그대로) $\int f(\mathbf{x}-\mathbf{u})g(\mathbf{u})d\mathbf{u} = (g*f)(\mathbf{x})$ 가 됩니다.
    이산인 경우도 합의 인덱스를 바꾸면 똑같습니다.
    """),
    md("## 7.2 이미지 합성곱 + 커널 학습"),
    code(
        """
    def corr2d(X, K):  #@save
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))
        def forward(self, x):
            return corr2d(x, self.weight) + self.bias

    X = torch.ones((6, 8)); X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    print(Y)
    print(corr2d(X.t(), K))  # 세로 경계만 잡으므로 전치하면 0
    """,
        count=4,
    ),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X, Y = X.reshape((1, 1, 6, 8)), Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    for i in range(10):
        l = (conv2d(X) - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i + 1}, loss {l.sum():.3f}')
    conv2d.weight.data.reshape((1, 2))
    """,
        count=5,
    ),
    md("## 7.3 패딩과 스트라이드"),
    code(
        """
    def comp_conv2d(conv2d, X):
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        return Y.reshape(Y.shape[2:])

    X = torch.rand(size=(8, 8))
    for conv2d in (nn.LazyConv2d(1, kernel_size=3, padding=1),
                   nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1)),
                   nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2),
                   nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))):
        print(comp_conv2d(conv2d, X).shape)

    # 연습 문제: 마지막 예제의 출력 모양 (책의 수식 그대로)
    ANSWER_OUTPUT_SHAPE = comp_conv2d(conv2d, X).shape
    ANSWER_OUTPUT_SHAPE_FORMULA = "⌊(n - k + p + s) / s⌋"
    """,
        count=6,
    ),
    md("## 7.4 다중 입력·출력 채널"),
    code(
        """
    def corr2d_multi_in(X, K):
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        Y = torch.matmul(K.reshape((c_o, c_i)), X.reshape((c_i, h * w)))
        return Y.reshape((c_o, h, w))

    X = torch.normal(0, 1, (3, 3, 3)); K = torch.normal(0, 1, (2, 3, 1, 1))
    assert float(torch.abs(corr2d_multi_in_out_1x1(X, K) - corr2d_multi_in_out(X, K)).sum()) < 1e-6

    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"
    """,
        count=7,
    ),
    md("## 7.5 풀링"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y

    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    print(pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg'))
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    pool2d = nn.MaxPool2d(3, padding=1, stride=2)
    pool2d(X)
    """,
        count=8,
    ),
    md(r"""
    ### 연습 문제 (7.5): 최대 풀링을 합성곱만으로 구현할 수 있나?

    답: 없습니다. 합성곱은 입력에 대해 선형인데 최대 풀링은 선형이 아닙니다. 예를 들어 창이 $(1,0)$, $(0,1)$ 이면
    $\max(1,0) + \max(0,1) = 2$ 이지만 $\max(1,1) = 1$ 입니다. (ReLU 를 쓰면 $\max(a,b) = b + \mathrm{ReLU}(a-b)$ 로 가능)
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(d2l.Classifier):  #@save
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))

    @d2l.add_to_class(d2l.Classifier)  #@save
    def layer_summary(self, X_shape):
        X = torch.randn(*X_shape)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, 'output shape:\\t', X.shape)

    LeNet().layer_summary((1, 1, 28, 28))
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=9,
    ),
    md("## 8.2 VGG"),
    code(
        """
    def vgg_block(num_convs, out_channels):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(kernel_size=2,stride=2))
        return nn.Sequential(*layers)

    class VGG(d2l.Classifier):
        def __init__(self, arch, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            conv_blks = []
            for (num_convs, out_channels) in arch:
                conv_blks.append(vgg_block(num_convs, out_channels))
            self.net = nn.Sequential(
                *conv_blks, nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(num_classes))
            self.net.apply(d2l.init_cnn)

    VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))).layer_summary((1, 1, 224, 224))
    # T4 에서도 에폭당 몇 분이라 GPU 할당량 때문에 학습은 생략 (코드는 책과 동일)
    # model = VGG(arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), lr=0.01)
    # trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    # data = d2l.FashionMNIST(batch_size=128, resize=(224, 224))
    # model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    # trainer.fit(model, data)
    """,
        count=10,
    ),
    md("## 8.6 ResNet"),
    code(
        """
    class Residual(nn.Module):  #@save
        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)

    class ResNet(d2l.Classifier):
        def b1(self):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        def block(self, num_residuals, num_channels, first_block=False):
            blk = []
            for i in range(num_residuals):
                if i == 0 and not first_block:
                    blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
                else:
                    blk.append(Residual(num_channels))
            return nn.Sequential(*blk)

        def __init__(self, arch, lr=0.1, num_classes=10):
            super(ResNet, self).__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(self.b1())
            for i, b in enumerate(arch):
                self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i==0)))
            self.net.add_module('last', nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                nn.LazyLinear(num_classes)))
            self.net.apply(d2l.init_cnn)

    class ResNet18(ResNet):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)),
                           lr, num_classes)

    ResNet18().layer_summary((1, 1, 96, 96))
    model = ResNet18(lr=0.01)
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=11,
    ),
]


# =========================================================================== 5. exercises that redo a computation on other inputs

RECOMPUTE = [
    md("""
    # Homework 2: Convolutional Neural Networks

    Book cells of d2l 1.0 sections 7.1-7.6 and 8.6 (Residual block only), plus my own experiments for the exercises at the end
    of each section.
    """),
    code(
        """
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l
    """,
        count=1,
    ),
    md("## 7.2 Convolutions for Images"),
    code(
        '''
    def corr2d(X, K):  #@save
        """Compute 2D cross-correlation."""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    ''',
        count=2,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=3,
    ),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    """,
        count=4,
    ),
    code(
        """
    Y = corr2d(X, K)
    Y
    """,
        count=5,
    ),
    code("corr2d(X.t(), K)", count=6),
    code(
        """
    # Construct a two-dimensional convolutional layer with 1 output channel and a
    # kernel of shape (1, 2). For the sake of simplicity, we ignore the bias here
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)

    # The two-dimensional convolutional layer uses four-dimensional input and
    # output in the format of (example, channel, height, width), where the batch
    # size (number of examples in the batch) and the number of channels are both 1
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2  # Learning rate

    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        # Update the kernel
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i + 1}, loss {l.sum():.3f}')
    """,
        count=7,
    ),
    code("conv2d.weight.data.reshape((1, 2))", count=8),
    md("""
    ### Exercises (7.2)

    1. Construct an image `X` with diagonal edges. What happens if you apply the kernel `K` to it? If you transpose `X`? If you
       transpose `K`?
    """),
    code(
        """
    X = torch.eye(8)
    Y = corr2d(X, K)
    Y
    """,
        count=9,
    ),
    code(
        """
    Y = corr2d(X.t(), K)   # the identity is symmetric: the same picture
    Y
    """,
        count=10,
    ),
    code(
        """
    Y = corr2d(X, K.t())   # the transposed kernel finds the horizontal part of the diagonal
    Y
    """,
        count=11,
    ),
    md("""
    A horizontal edge with the kernel turned on its side: the stripe image again, now with `K = [[1], [-1]]`.
    """),
    code(
        """
    X = torch.ones((6, 8))
    X[2:4, :] = 0
    K = torch.tensor([[1.0], [-1.0]])
    Y = corr2d(X, K)
    Y
    """,
        count=12,
    ),
    md("""
    Can the same ten-step loop learn a *different* kernel? Here the target is a blur, `[[0.5, 0.5]]`, on random images
    (more steps: random data gives a weaker signal than the stripe image).
    """),
    code(
        """
    X = torch.rand(size=(1, 1, 6, 8))
    Y = corr2d(X[0, 0], torch.tensor([[0.5, 0.5]])).reshape((1, 1, 6, 7))
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    for i in range(30):
        l = (conv2d(X) - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
    conv2d.weight.data.reshape((1, 2))
    """,
        count=13,
    ),
    md("## 7.3 Padding and Stride"),
    code(
        """
    def comp_conv2d(conv2d, X):
        # (1, 1) indicates that batch size and the number of channels are both 1
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        # Strip the first two dimensions: examples and channels
        return Y.reshape(Y.shape[2:])

    conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1)
    X = torch.rand(size=(8, 8))
    comp_conv2d(conv2d, X).shape
    """,
        count=14,
    ),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1))
    comp_conv2d(conv2d, X).shape
    """,
        count=15,
    ),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2)
    comp_conv2d(conv2d, X).shape
    """,
        count=16,
    ),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    comp_conv2d(conv2d, X).shape
    """,
        count=17,
    ),
    code(
        """
    ANSWER_OUTPUT_SHAPE = tuple(comp_conv2d(conv2d, X).shape)
    ANSWER_OUTPUT_SHAPE_FORMULA = "floor((n - k + p + s) / s)"
    ANSWER_OUTPUT_SHAPE
    """,
        count=18,
    ),
    md("Other strides on other inputs, to see the formula at work (not the answer above):"),
    code(
        """
    for n, s in [(9, 2), (10, 3), (17, 4)]:
        print(n, s, comp_conv2d(nn.LazyConv2d(1, kernel_size=3, padding=1, stride=s), torch.rand(n, n)).shape)
    """,
        count=19,
    ),
    md("## 7.4 Multiple Input and Multiple Output Channels"),
    code(
        """
    def corr2d_multi_in(X, K):
        # Iterate through the 0th dimension (channel) of K first, then add them
        # together
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        # Iterate through the 0th dimension of K, and each time, perform
        # cross-correlation operations with input X. All of the results are
        # stacked together
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        # Matrix multiplication in the fully connected layer
        Y = torch.matmul(K, X)
        return Y.reshape((c_o, h, w))
    """,
        count=20,
    ),
    code(
        """
    # the same three functions on bigger random inputs than the book's
    X = torch.normal(0, 1, (4, 5, 5))
    K = torch.normal(0, 1, (3, 4, 1, 1))
    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)
    float(torch.abs(Y1 - Y2).sum())
    """,
        count=21,
    ),
    code(
        """
    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"
    """,
        count=22,
    ),
    md("## 7.5 Pooling"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y

    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
    """,
        count=23,
    ),
    code(
        """
    # the exercise's 'other input': a 5x5 ramp with a 3x2 window
    X = torch.arange(25.0).reshape(5, 5)
    Y = pool2d(X, (3, 2), 'avg')
    Y
    """,
        count=24,
    ),
    md(r"""
    ### Exercise: max-pooling is not a convolution

    Max-pooling cannot be written as a convolution: a convolution is linear, and max-pooling over the window $(a, b)$ is not —
    $\max(1, 0) + \max(0, 1) = 2$, yet $\max(1, 1) = 1$.
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(d2l.Classifier):  #@save
        \"\"\"The LeNet-5 model.\"\"\"
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))
    """,
        count=25,
    ),
    code(
        """
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=26,
    ),
    md(r"""
    ## 7.1 (done last) Exercise: convolution is symmetric

    With $b = x - a$: $(f * g)(x) = \sum_a f(a) g(x - a) = \sum_b f(x - b) g(b) = (g * f)(x)$, since $b$ runs over all of
    $\mathbb{Z}$ when $a$ does. Integrals: the same substitution, $|\det| = 1$.
    """),
    md("## 8.6 Residual block"),
    code(
        """
    class Residual(nn.Module):  #@save
        \"\"\"The Residual block of ResNet models.\"\"\"
        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                       stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                           stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)
    """,
        count=27,
    ),
    code(
        """
    blk = Residual(3)
    X = torch.randn(4, 3, 6, 6)
    blk(X).shape, Residual(6, use_1x1conv=True, strides=2)(X).shape
    """,
        count=28,
    ),
]


# =========================================================================== 6. answers in Japanese prose

JAPANESE = [
    md("""
    # 課題2：畳み込みニューラルネットワーク

    D2L（英語版 1.0）の 7.1〜7.6 を写経しながら、演習は日本語で解きました。
    """),
    code(
        """
    import torch
    from torch import nn
    from d2l import torch as d2l
    """,
        count=1,
    ),
    md("""
    ## 7.1 全結合層から畳み込みへ

    ### 演習

    畳み込みが対称であること（交換法則）を証明せよ。
    """),
    md(r"""
    答え：$\mathbf{u} = \mathbf{x} - \mathbf{z}$ と置換すると、積分範囲は全空間のまま変わらず、ヤコビアンの絶対値は 1 なので

    $$(f*g)(\mathbf{x}) = \int f(\mathbf{z})\, g(\mathbf{x}-\mathbf{z})\,d\mathbf{z} = \int f(\mathbf{x}-\mathbf{u})\, g(\mathbf{u})\,d\mathbf{u} = (g*f)(\mathbf{x}).$$

    離散の場合も、和の添字を $b = i - a$ と置き換えるだけで同じです。
    """),  # noqa: E501 -- a student's markdown line, kept whole as the committed notebook has it
    md("## 7.2 画像に対する畳み込み"),
    code(
        '''
    def corr2d(X, K):  #@save
        """2次元の相互相関を計算する"""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    corr2d(X, K)
    ''',
        count=2,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=3,
    ),
    code(
        """
    # 物体のエッジ検出：真ん中の4列が黒（0）の画像
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    Y
    """,
        count=4,
    ),
    code("corr2d(X.t(), K)", count=5),
    code(
        """
    # カーネルの学習（バイアスは無視）
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2  # 学習率

    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i + 1}, loss {l.sum():.3f}')
    conv2d.weight.data.reshape((1, 2))
    """,
        count=6,
    ),
    md("## 7.3 パディングとストライド"),
    code(
        """
    def comp_conv2d(conv2d, X):
        # バッチサイズとチャネル数を 1 にして畳み込み、その次元を取り除く
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        return Y.reshape(Y.shape[2:])

    X = torch.rand(size=(8, 8))
    for conv2d in [nn.LazyConv2d(1, kernel_size=3, padding=1),
                   nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1)),
                   nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2),
                   nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))]:
        print(comp_conv2d(conv2d, X).shape)
    """,
        count=7,
    ),
    md(r"""
    ### 演習

    最後の例の出力形状を計算し、実験結果と一致するか確かめよ。

    答え：高さ $\lfloor (8-3+0)/3 \rfloor + 1 = 2$、幅 $\lfloor (8-5+2)/4 \rfloor + 1 = 2$ なので $(2, 2)$。実験結果と一致します。
    """),
    code(
        """
    ANSWER_OUTPUT_SHAPE = (2, 2)
    ANSWER_OUTPUT_SHAPE_FORMULA = "(n - k + p) // s + 1"
    """,
        count=8,
    ),
    md("## 7.4 複数の入力チャネルと出力チャネル"),
    code(
        """
    def corr2d_multi_in(X, K):
        # チャネルごとに相互相関を計算して足し合わせる
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        # 出力チャネルごとに計算して積み重ねる
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        Y = torch.matmul(K, X)  # 全結合層と同じ行列積
        return Y.reshape((c_o, h, w))
    """,
        count=9,
    ),
    md(r"""
    ### 演習

    大きさ $k_1$ と $k_2$ の2つのカーネルを（間に非線形性なしで）続けて適用すると、1つの畳み込みで表せる。その等価なカーネルの大きさは？

    答え：$k_1 + k_2 - 1$（例：$3\times3$ を2回で $5\times5$ と同じ受容野）。
    """),
    code(
        """
    ANSWER_COMPOSED_KERNEL = "k_1 + k_2 - 1"  # 合成したカーネルの大きさ
    """,
        count=10,
    ),
    md("## 7.5 プーリング"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y

    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
    """,
        count=11,
    ),
    md("""
    ### 演習

    最大プーリングを畳み込み層の特殊な場合として実装できるか。
    """),
    md(r"""
    答え：できません。畳み込みは入力について線形ですが、最大プーリングは線形ではありません。
    窓が $(1, 0)$ と $(0, 1)$ のとき $\max(1,0) + \max(0,1) = 2$ ですが、$\max(1+0, 0+1) = 1$ です。
    したがって畳み込み層だけでは最大プーリングを表せません（平均プーリングは表せます）。
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(d2l.Classifier):  #@save
        \"\"\"LeNet-5 モデル\"\"\"
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))
    """,
        count=12,
    ),
    code(
        """
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=13,
    ),
]


# =========================================================================== 7. a local module that was not handed in

LOCAL_UTILS = [
    md("""
    # HW2

    My plotting and init helpers live in `my_utils.py` next to this notebook.
    """),
    code(
        """
    import torch
    from torch import nn
    from d2l import torch as d2l
    import my_utils  # show_heatmap, init_weights, out_shape
    """,
        count=1,
    ),
    md("## 7.2 Convolutions for Images"),
    code(
        """
    def corr2d(X, K):
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y

    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=2,
    ),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    Y
    """,
        count=3,
    ),
    code("my_utils.show_heatmap(Y, title='vertical edges')", count=4),
    code("corr2d(X.t(), K)", count=5),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
    conv2d.weight.data.reshape((1, 2))
    """,
        count=6,
    ),
    md("## 7.3 Padding and Stride"),
    code(
        """
    def comp_conv2d(conv2d, X):
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        return Y.reshape(Y.shape[2:])

    conv2d = nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    X = torch.rand(size=(8, 8))
    comp_conv2d(conv2d, X).shape
    """,
        count=7,
    ),
    code(
        """
    ANSWER_OUTPUT_SHAPE = my_utils.out_shape(n=(8, 8), k=(3, 5), p=(0, 2), s=(3, 4))
    ANSWER_OUTPUT_SHAPE_FORMULA = "floor((n - k + p + s) / s)"
    """,
        count=8,
    ),
    md("## 7.4 Multiple Input and Multiple Output Channels"),
    code(
        """
    def corr2d_multi_in(X, K):
        return sum(corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        Y = torch.matmul(K.reshape((c_o, c_i)), X.reshape((c_i, h * w)))
        return Y.reshape((c_o, h, w))

    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"
    """,
        count=9,
    ),
    md("## 7.5 Pooling"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y
    """,
        count=10,
    ),
    md(r"""
    **Exercise (7.5).** Can max-pooling be implemented as a convolution?

    Answer: no — max-pooling is not linear ($\max(1,0)+\max(0,1) = 2$ but $\max(1,1) = 1$), and convolutions are.
    """),
    md(r"""
    **Exercise (7.1).** Prove $f * g = g * f$.

    Answer: substitute $u = x - z$ in the integral (Jacobian 1); the sum case is the same with an index shift.
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(d2l.Classifier):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))

    trainer = d2l.Trainer(max_epochs=10)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=11,
    ),
    md("## 8.2 VGG"),
    code(
        """
    def vgg_block(num_convs, out_channels):
        layers = []
        for _ in range(num_convs):
            layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        return nn.Sequential(*layers)

    class VGG(d2l.Classifier):
        def __init__(self, arch, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            conv_blks = [vgg_block(num_convs, out_channels) for num_convs, out_channels in arch]
            self.net = nn.Sequential(
                *conv_blks, nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
                nn.LazyLinear(num_classes))
            self.net.apply(my_utils.init_weights)
    """,
        count=12,
    ),
]


# =========================================================================== 8. saved from a crashed Colab session

_TRACEBACK_NAME = [
    "\u001b[0;31m---------------------------------------------------------------------------\u001b[0m",
    "\u001b[0;31mNameError\u001b[0m                                 Traceback (most recent call last)",
    "\u001b[0;32m<ipython-input-3-5d0ae7a1b2f1>\u001b[0m in \u001b[0;36m<cell line: 3>\u001b[0;34m()\u001b[0m\n"
    "\u001b[0;32m----> 3\u001b[0;31m \u001b[0mcorr2d\u001b[0m\u001b[0;34m(\u001b[0m\u001b[0mX\u001b[0m\u001b[0;34m,\u001b[0m "
    "\u001b[0mK\u001b[0m\u001b[0;34m)\u001b[0m\u001b[0;34m\u001b[0m\u001b[0;34m\u001b[0m\u001b[0m\n",
    "\u001b[0;31mNameError\u001b[0m: name 'corr2d' is not defined",
]
_TRACEBACK_INTERRUPT = [
    "\u001b[0;31m---------------------------------------------------------------------------\u001b[0m",
    "\u001b[0;31mKeyboardInterrupt\u001b[0m                         Traceback (most recent call last)",
    "\u001b[0;31mKeyboardInterrupt\u001b[0m: ",
]

#: Outputs of the crashed session that the notebook as it stands cannot print again: a grader that
#: runs the notebook replaces them (test_editions checks the executed copy).
CRASHED_STALE_ONLY = ["name 'corr2d' is not defined", "KeyboardInterrupt", "epoch 2, loss 9.871"]

CRASHED = [
    md("""
    # HW2 — CNNs

    ⚠️ Colab ran out of RAM in the ResNet training cell at the very end ("Your session crashed after using all available
    RAM") and I had no time to rerun everything, so this is the notebook as it was saved.
    """),
    code("!pip install d2l==1.0.3", stream("Successfully installed d2l-1.0.3 matplotlib-3.7.2 numpy-1.23.5\n"), count=1),
    code(
        """
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l
    """,
        count=2,
    ),
    md("## 7.2 Convolutions for Images"),
    code(
        """
    def corr2d(X, K):  #@save
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    """,
        count=5,
    ),
    code(
        """
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    corr2d(X, K)
    """,
        raised("NameError", "name 'corr2d' is not defined", *_TRACEBACK_NAME),
        count=3,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=6,
    ),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    Y
    """,
        shown(
            "tensor([[ 0.,  1.,  0.,  0.,  0., -1.,  0.],\n        [ 0.,  1.,  0.,  0.,  0., -1.,  0.],\n"
            "        [ 0.,  1.,  0.,  0.,  0., -1.,  0.],\n        [ 0.,  1.,  0.,  0.,  0., -1.,  0.],\n"
            "        [ 0.,  1.,  0.,  0.,  0., -1.,  0.],\n        [ 0.,  1.,  0.,  0.,  0., -1.,  0.]])",
            7,
        ),
        count=7,
    ),
    code(
        """
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i + 1}, loss {l.sum():.3f}')
    """,
        stream("epoch 2, loss 9.871\n"),
        raised("KeyboardInterrupt", "", *_TRACEBACK_INTERRUPT),
        count=9,
    ),
    code("conv2d.weight.data.reshape((1, 2))", shown("tensor([[ 0.9731, -0.9904]])", 10), count=10),
    md("## 7.3 Padding and Stride"),
    code(
        """
    def comp_conv2d(conv2d, X):
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        return Y.reshape(Y.shape[2:])

    conv2d = nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    X = torch.rand(size=(8, 8))
    comp_conv2d(conv2d, X).shape
    """,
        shown("torch.Size([2, 2])", 12),
        count=12,
    ),
    code(
        """
    ANSWER_OUTPUT_SHAPE = (2, 2)
    ANSWER_OUTPUT_SHAPE_FORMULA = "floor((n - k + p + s) / s)"
    """,
        count=13,
    ),
    md("## 7.4 Multiple Input and Multiple Output Channels"),
    code(
        """
    def corr2d_multi_in(X, K):
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        Y = torch.matmul(K, X)
        return Y.reshape((c_o, h, w))

    ANSWER_COMPOSED_KERNEL = "k1 + k2 - 1"
    """,
        count=14,
    ),
    md("## 7.5 Pooling"),
    code(
        """
    # cleaned up after the first run: one name per pooling mode
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                window = X[i: i + p_h, j: j + p_w]
                if mode == 'max':
                    Y[i, j] = window.max()
                elif mode == 'mean':
                    Y[i, j] = window.mean()
        return Y
    """,
        count=31,
    ),
    code(
        """
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    pool2d(X, (2, 2))
    """,
        shown("tensor([[4., 5.],\n        [7., 8.]])", 17),
        count=17,
    ),
    code("pool2d(X, (2, 2), 'avg')", shown("tensor([[2., 3.],\n        [5., 6.]])", 18), count=18),
    md(r"""
    **Exercise 7.5:** max-pooling cannot be implemented by convolutions alone — convolutions are linear and
    $\max(1, 0) + \max(0, 1) = 2 \neq \max(1, 1) = 1$.

    **Exercise 7.1:** $f * g = g * f$ by substituting $u = x - z$ in the integral.
    """),
    md("## 7.6 LeNet"),
    code(
        """
    class LeNet(d2l.Classifier):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))
    """,
        count=19,
    ),
    code(
        """
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=20,
    ),
    md("## 8.6 ResNet (the d2l-zh layout: the head's three layers straight in `net`)"),
    code(
        """
    class Residual(nn.Module):
        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)
    """,
        count=21,
    ),
    code(
        """
    def resnet_block(num_channels, num_residuals, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    class ResNet18(d2l.Classifier):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            b1 = nn.Sequential(nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                               nn.LazyBatchNorm2d(), nn.ReLU(),
                               nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            self.net = nn.Sequential(
                b1, resnet_block(64, 2, first_block=True), resnet_block(128, 2),
                resnet_block(256, 2), resnet_block(512, 2),
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes))
            self.net.apply(d2l.init_cnn)

    X = torch.zeros(1, 1, 96, 96)
    model = ResNet18()
    for layer in model.net:
        X = layer(X)
        print(type(layer).__name__, tuple(X.shape))
    print('parameters:', sum(p.numel() for p in model.parameters()))
    """,
        stream(
            "Sequential (1, 64, 24, 24)\nSequential (1, 64, 24, 24)\nSequential (1, 128, 12, 12)\n"
            "Sequential (1, 256, 6, 6)\nSequential (1, 512, 3, 3)\nAdaptiveAvgPool2d (1, 512, 1, 1)\n"
            "Flatten (1, 512)\nLinear (1, 10)\nparameters: 11178378\n"
        ),
        count=22,
    ),
    code("""
    model = ResNet18(lr=0.01)
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=1024, resize=(96, 96))
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """),
]


# =========================================================================== mistakes 1: an off-by-one corr2d in d2l-zh spelling

ZH2_OFF_BY_ONE = [
    md("""
    # 作业二（6.2–6.5）

    按照 d2l-zh 2.0 做的前半部分。
    """),
    code(
        """
    import torch
    from torch import nn
    from d2l import torch as d2l
    """,
        count=1,
    ),
    md("## 6.2 图像卷积"),
    code(
        '''
    def corr2d(X, K):  #@save
        """计算二维互相关运算"""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h, X.shape[1] - w))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    ''',
        count=2,
    ),
    code(
        """
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    corr2d(X, K)
    """,
        shown("tensor([[19.]])", 3),
        count=3,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=4,
    ),
    code(
        """
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    Y = corr2d(X, K)
    Y
    """,
        count=5,
    ),
    code("corr2d(X.t(), K)", count=6),
    code(
        """
    # 构造一个二维卷积层，它具有1个输出通道和形状为（1，2）的卷积核
    conv2d = nn.Conv2d(1,1, kernel_size=(1, 2), bias=False)

    # 这个二维卷积层使用四维输入和输出格式（批量大小、通道、高度、宽度），
    # 其中批量大小和通道数都为1
    X = X.reshape((1, 1, 6, 8))
    Y = Y.reshape((1, 1, 6, 7))
    lr = 3e-2  # 学习率

    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        # 迭代卷积核
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f'epoch {i+1}, loss {l.sum():.3f}')
    """,
        raised("RuntimeError", "shape '[1, 1, 6, 7]' is invalid for input of size 30"),
        count=7,
    ),
    md("## 6.3 填充和步幅"),
    code(
        """
    def comp_conv2d(conv2d, X):
        # 这里的（1，1）表示批量大小和通道数都是1
        X = X.reshape((1, 1) + X.shape)
        Y = conv2d(X)
        # 省略前两个维度：批量大小和通道
        return Y.reshape(Y.shape[2:])

    conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1)
    X = torch.rand(size=(8, 8))
    comp_conv2d(conv2d, X).shape
    """,
        count=8,
    ),
    md("## 6.4 多输入多输出通道"),
    code(
        """
    def corr2d_multi_in(X, K):
        # 先遍历“X”和“K”的第0个维度（通道维度），再把它们加在一起
        return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

    def corr2d_multi_in_out(X, K):
        # 迭代“K”的第0个维度，每次都对输入“X”执行互相关运算。
        # 最后将所有结果都叠加在一起
        return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.reshape((c_i, h * w))
        K = K.reshape((c_o, c_i))
        # 全连接层中的矩阵乘法
        Y = torch.matmul(K, X)
        return Y.reshape((c_o, h, w))
    """,
        count=9,
    ),
    md("## 6.5 汇聚层"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y

    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
    """,
        count=10,
    ),
]


# =========================================================================== mistakes 2: LeNet and ResNet "improvements"

LENET_IMPROVED = [
    md("""
    # 과제 2 — CNN

    7.6 LeNet 은 시그모이드 대신 ReLU, 평균 풀링 대신 최대 풀링을 쓰는 게 정확도가 더 좋아서 바꿨습니다 (책의 연습 문제 참고).
    """),
    code("!pip install d2l==1.0.3", count=1),
    code(
        """
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l
    """,
        count=2,
    ),
    md("## 7.2 이미지 합성곱"),
    code(
        """
    def corr2d(X, K):  #@save
        \"\"\"2차원 교차 상관 연산\"\"\"
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    """,
        count=3,
    ),
    md("## 7.5 풀링"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        p_h, p_w = pool_size
        Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y
    """,
        count=4,
    ),
    md(r"""
    ### 7.5 연습 문제

    최대 풀링을 합성곱 층의 특수한 경우로 구현할 수 있나요?

    **답:** 아니요. 합성곱은 선형 연산이지만 최대 풀링은 선형이 아닙니다 ($\max(1,0)+\max(0,1)=2 \ne \max(1,1)=1$).
    """),
    md("## 7.6 LeNet (개선판)"),
    code(
        """
    class LeNet(d2l.Classifier):
        \"\"\"LeNet-5 — ReLU + 최대 풀링으로 개선\"\"\"
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.ReLU(),
                nn.MaxPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.ReLU(),
                nn.LazyLinear(84), nn.ReLU(),
                nn.LazyLinear(num_classes))
    """,
        count=5,
    ),
    code(
        """
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=6,
    ),
    md("## 8.6 ResNet — 잔차 블록"),
    code(
        """
    class Residual(nn.Module):
        \"\"\"잔차 블록 (shortcut 을 더하기 전에 ReLU 를 한 번 적용)\"\"\"
        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = F.relu(self.bn2(self.conv2(Y)))
            if self.conv3:
                X = self.conv3(X)
            return Y + X
    """,
        count=7,
    ),
    code(
        """
    blk = Residual(3)
    X = torch.randn(4, 3, 6, 6)
    blk(X).shape, Residual(6, use_1x1conv=True, strides=2)(X).shape
    """,
        count=8,
    ),
]


# =========================================================================== mistakes 3: "Dive-into-DL-PyTorch" notes

DIVE_PYTORCH = [
    md("""
    # 卷积神经网络（笔记）

    参考《动手学深度学习》PyTorch 版（Dive-into-DL-PyTorch）第五章。
    """),
    code(
        """
    import time
    import torch
    from torch import nn, optim
    import torch.nn.functional as F

    import sys
    sys.path.append("..")
    import d2lzh_pytorch as d2l
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    """,
        count=1,
    ),
    md("# 5.1 二维卷积层"),
    code(
        """
    def corr2d(X, K):  # 本函数已保存在d2lzh_pytorch包中方便以后使用
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i: i + h, j: j + w] * K).sum()
        return Y
    """,
        count=2,
    ),
    code(
        """
    X = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    K = torch.tensor([[0, 1], [2, 3]])
    corr2d(X, K)
    """,
        count=3,
    ),
    code(
        """
    class Conv2D(nn.Module):
        def __init__(self, kernel_size):
            super(Conv2D, self).__init__()
            self.weight = nn.Parameter(torch.randn(kernel_size))
            self.bias = nn.Parameter(torch.randn(1))

        def forward(self, x):
            return corr2d(x, self.weight) + self.bias
    """,
        count=4,
    ),
    code(
        """
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    K = torch.tensor([[1, -1]])
    Y = corr2d(X, K)
    Y
    """,
        count=5,
    ),
    code(
        """
    torch.manual_seed(1)  # 为了结果可复现
    # 构造一个核数组形状是(1, 2)的二维卷积层
    conv2d = Conv2D(kernel_size=(1, 2))

    step = 20
    lr = 0.01
    for i in range(step):
        Y_hat = conv2d(X)
        l = ((Y_hat - Y) ** 2).sum()
        l.backward()

        # 梯度下降
        conv2d.weight.data -= lr * conv2d.weight.grad
        conv2d.bias.data -= lr * conv2d.bias.grad

        # 梯度清0
        conv2d.weight.grad.fill_(0)
        conv2d.bias.grad.fill_(0)
        if (i + 1) % 5 == 0:
            print('Step %d, loss %.3f' % (i + 1, l.item()))
    """,
        count=6,
    ),
    code(
        """
    print("weight: ", conv2d.weight.data)
    print("bias: ", conv2d.bias.data)
    """,
        count=7,
    ),
    md("# 5.2 填充和步幅"),
    code(
        """
    # 定义一个函数来计算卷积层。它对输入和输出做相应的升维和降维
    def comp_conv2d(conv2d, X):
        # (1, 1)代表批量大小和通道数（“多输入通道和多输出通道”一节将介绍）均为1
        X = X.view((1, 1) + X.shape)
        Y = conv2d(X)
        return Y.view(Y.shape[2:])  # 排除不关心的前两维：批量和通道

    # 注意这里是两侧分别填充1行或列，所以在两侧一共填充2行或列
    conv2d = nn.Conv2d(in_channels=1, out_channels=1, kernel_size=3, padding=1)

    X = torch.rand(8, 8)
    comp_conv2d(conv2d, X).shape
    """,
        count=8,
    ),
    code(
        """
    conv2d = nn.Conv2d(in_channels=1, out_channels=1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    comp_conv2d(conv2d, X).shape
    """,
        count=9,
    ),
    md("# 5.3 多输入通道和多输出通道"),
    code(
        """
    def corr2d_multi_in(X, K):
        # 沿着X和K的第0维（通道维）遍历。然后使用*将结果列表变成add_n函数的位置参数
        # （positional argument）来进行相加
        res = d2l.corr2d(X[0, :, :], K[0, :, :])
        for i in range(1, X.shape[0]):
            res += d2l.corr2d(X[i, :, :], K[i, :, :])
        return res

    def corr2d_multi_in_out(X, K):
        # 对K的第0维遍历，每次同输入X做互相关计算。所有结果使用stack函数合并在一起
        return torch.stack([corr2d_multi_in(X, k) for k in K])

    def corr2d_multi_in_out_1x1(X, K):
        c_i, h, w = X.shape
        c_o = K.shape[0]
        X = X.view(c_i, h * w)
        K = K.view(c_o, c_i)
        Y = torch.mm(K, X)  # 全连接层的矩阵乘法
        return Y.view(c_o, h, w)
    """,
        count=10,
    ),
    md("# 5.4 池化层"),
    code(
        """
    def pool2d(X, pool_size, mode='max'):
        X = X.float()
        p_h, p_w = pool_size
        Y = torch.zeros(X.shape[0] - p_h + 1, X.shape[1] - p_w + 1)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                if mode == 'max':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].max()
                elif mode == 'avg':
                    Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
        return Y
    """,
        count=11,
    ),
    code(
        """
    X = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
    """,
        count=12,
    ),
    md("# 5.5 卷积神经网络（LeNet）"),
    code(
        """
    class LeNet(nn.Module):
        def __init__(self):
            super(LeNet, self).__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(1, 6, 5), # in_channels, out_channels, kernel_size
                nn.Sigmoid(),
                nn.MaxPool2d(2, 2), # kernel_size, stride
                nn.Conv2d(6, 16, 5),
                nn.Sigmoid(),
                nn.MaxPool2d(2, 2)
            )
            self.fc = nn.Sequential(
                nn.Linear(16*4*4, 120),
                nn.Sigmoid(),
                nn.Linear(120, 84),
                nn.Sigmoid(),
                nn.Linear(84, 10)
            )

        def forward(self, img):
            feature = self.conv(img)
            output = self.fc(feature.view(img.shape[0], -1))
            return output
    """,
        count=13,
    ),
    code(
        """
    net = LeNet()
    print(net)
    """,
        count=14,
    ),
    code(
        """
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
    """,
        count=15,
    ),
    code(
        """
    lr, num_epochs = 0.001, 5
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    d2l.train_ch5(net, train_iter, test_iter, batch_size, optimizer, device, num_epochs)
    """,
        count=16,
    ),
    md("# 5.11 残差网络（ResNet）"),
    code(
        """
    class Residual(nn.Module):  # 本类已保存在d2lzh_pytorch包中方便以后使用
        def __init__(self, in_channels, out_channels, use_1x1conv=False, stride=1):
            super(Residual, self).__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)
            else:
                self.conv3 = None
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.bn2 = nn.BatchNorm2d(out_channels)

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            return F.relu(Y + X)
    """,
        count=17,
    ),
    code(
        """
    blk = Residual(3, 3)
    X = torch.rand((4, 3, 6, 6))
    blk(X).shape # torch.Size([4, 3, 6, 6])
    """,
        count=18,
    ),
]


# =========================================================================== 12-15. the quick budget never breaks a notebook (issue 27)

_D2L_IMPORTS = """
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l
"""

_CORR2D_EDGES = '''
def corr2d(X, K):  #@save
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y

class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias

X = torch.ones((6, 8))
X[:, 2:6] = 0
K = torch.tensor([[1.0, -1.0]])
Y = corr2d(X, K)
Y
'''

_POOL2D = """
def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y

X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
pool2d(X, (2, 2)), pool2d(X, (2, 2), 'avg')
"""

_LENET_CLASS = '''
class LeNet(d2l.Classifier):  #@save
    """The LeNet-5 model."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))
'''

_LOOK_AT_THE_DATA = """
data = d2l.FashionMNIST(batch_size=128)
print('train:', tuple(data.train.data.shape), 'val:', tuple(data.val.data.shape))
print('first labels:', data.text_labels(data.val.targets[:6]), 'of', len(data.train.classes), 'classes')
"""

#: d2l 1.0.3 (the English book, local Jupyter): the data set's own attributes read before LeNet is defined.
D2L103_VAL_DATA = [
    md("""
    # HW2 — CNNs

    Worked through with d2l 1.0.3 locally. Before training LeNet I look at the data set itself.
    """),
    code(_D2L_IMPORTS, count=1),
    md("## 7.2 Convolutions for Images"),
    code(_CORR2D_EDGES, count=2),
    md("## 7.5 Pooling"),
    code(_POOL2D, count=3),
    md("## 7.6 LeNet"),
    code(
        _LOOK_AT_THE_DATA + _LENET_CLASS,
        stream(
            "train: (60000, 28, 28) val: (10000, 28, 28)\n"
            "first labels: ['ankle boot', 'pullover', 'trouser', 'trouser', 'shirt', 'trouser'] of 10 classes\n"
        ),
        count=4,
    ),
    code(
        """
    trainer = d2l.Trainer(max_epochs=10)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    """,
        count=5,
    ),
]

_ZH2_TRAIN_CH6 = '''
def evaluate_accuracy_gpu(net, data_iter, device=None):
    """使用GPU计算模型在数据集上的精度"""
    if isinstance(net, nn.Module):
        net.eval()  # 设置为评估模式
        if not device:
            device = next(iter(net.parameters())).device
    # 正确预测的数量，总预测的数量
    metric = d2l.Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            metric.add(d2l.accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]

def train_ch6(net, train_iter, test_iter, num_epochs, lr, device):
    """用GPU训练模型(在第六章定义)"""
    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    print('training on', device)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    animator = d2l.Animator(xlabel='epoch', xlim=[1, num_epochs],
                            legend=['train loss', 'train acc', 'test acc'])
    timer, num_batches = d2l.Timer(), len(train_iter)
    for epoch in range(num_epochs):
        # 训练损失之和，训练准确率之和，样本数
        metric = d2l.Accumulator(3)
        net.train()
        for i, (X, y) in enumerate(train_iter):
            timer.start()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
            timer.stop()
            train_l = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
            if (i + 1) % (num_batches // 5) == 0 or i == num_batches - 1:
                animator.add(epoch + (i + 1) / num_batches,
                             (train_l, train_acc, None))
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        animator.add(epoch + 1, (None, None, test_acc))
    print(f'loss {train_l:.3f}, train acc {train_acc:.3f}, '
          f'test acc {test_acc:.3f}')
    print(f'{metric[2] * num_epochs / timer.sum():.1f} examples/sec '
          f'on {str(device)}')
'''

#: d2l-zh 2.0: the learner copies the book's train_ch6 into the notebook (progress every num_batches // 5).
ZH2_OWN_TRAIN_CH6 = [
    md("""
    # 作业二

    6.6 节的 `train_ch6` 我自己抄了一遍（没有用 d2l 包里的），方便加注释。
    """),
    code(
        """
    import torch
    from torch import nn
    from d2l import torch as d2l
    """,
        count=1,
    ),
    md("## 6.2 图像卷积"),
    code(
        '''
    def corr2d(X, K):  #@save
        """计算二维互相关运算"""
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y
    ''',
        count=2,
    ),
    md("## 6.5 汇聚层"),
    code(_POOL2D, count=3),
    md("## 6.6 卷积神经网络（LeNet）"),
    code(
        """
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    """,
        count=4,
    ),
    code(_ZH2_TRAIN_CH6, count=5),
    code(
        """
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=batch_size)
    lr, num_epochs = 0.9, 10
    train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())
    """,
        stream("loss 0.469, train acc 0.823, test acc 0.779\n40823.5 examples/sec on cuda:0\n"),
        count=6,
    ),
]

#: d2l 1.0.3: the book's LeNet trained by the learner's own 10-epoch loop (a new loader each epoch).
OWN_EPOCH_LOOP = [
    md("""
    # Homework 2

    I train LeNet with my own loop instead of `d2l.Trainer`, to see every step.
    """),
    code(_D2L_IMPORTS, count=1),
    md("## 7.2 Convolutions for Images"),
    code(_CORR2D_EDGES, count=2),
    md("## 7.5 Pooling"),
    code(_POOL2D, count=3),
    md("## 7.6 LeNet"),
    code(_LENET_CLASS, count=4),
    code(
        """
    data = d2l.FashionMNIST(batch_size=256)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(10):
        model.train()
        total, seen = 0.0, 0
        for X, y in data.train_dataloader():
            optimizer.zero_grad()
            l = loss_fn(model(X), y)
            l.backward()
            optimizer.step()
            total, seen = total + l.item() * len(y), seen + len(y)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(X).argmax(dim=1) == y).sum()) for X, y in data.val_dataloader())
        print(f'epoch {epoch + 1}: train loss {total / seen:.3f}, val acc {correct / len(data.val):.3f}')
    """,
        stream("epoch 1: train loss 2.309, val acc 0.100\nepoch 10: train loss 0.521, val acc 0.792\n"),
        count=5,
    ),
]

_BOOK_7_4 = """
def corr2d_multi_in(X, K):
    # Iterate through the 0th dimension (channel) of K first, then add them up
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

def corr2d_multi_in_out(X, K):
    # Iterate through the 0th dimension of K, and each time, perform
    # cross-correlation operations with input X. All of the results are
    # stacked together
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    # Matrix multiplication in the fully connected layer
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))
"""

#: d2l 1.0.3: 7.4 as the book writes it, the 1x1 check included (float32: it fails in about one run in ten).
BOOK_ASSERTION = [
    md("""
    # HW2

    Sections 7.2, 7.4 and 7.5, typed from the book.
    """),
    code(_D2L_IMPORTS, count=1),
    md("## 7.2 Convolutions for Images"),
    code(_CORR2D_EDGES, count=2),
    md("## 7.4 Multiple Input and Multiple Output Channels"),
    code(_BOOK_7_4, count=3),
    code(
        """
    X = torch.normal(0, 1, (3, 3, 3))
    K = torch.normal(0, 1, (2, 3, 1, 1))
    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)
    assert float(torch.abs(Y1 - Y2).sum()) < 1e-6
    """,
        raised("AssertionError", "", "AssertionError                            Traceback (most recent call last)"),
        count=4,
    ),
    md("## 7.5 Pooling"),
    code(_POOL2D, count=5),
]


#: Every notebook of the corpus: its file stem, how it is saved, and its cells.
NOTEBOOKS: dict[str, nbformat.NotebookNode] = {
    "zh2_notes": jupyter("zh2_notes", ZH2_NOTES, python="3.9.16"),
    "port_pre10": jupyter("port_pre10", PORT_PRE10, python="3.7.3", kernel=("python3", "Python 3")),
    "inline_helpers": jupyter("inline_helpers", INLINE_HELPERS, python="3.11.5", kernel=("python3", "Python 3 (ipykernel)")),
    "colab_1_0_0a0": colab("colab_1_0_0a0", COLAB_1_0_0A0),
    "recompute_exercises": jupyter("recompute_exercises", RECOMPUTE, python="3.10.12"),
    "japanese_answers": jupyter("japanese_answers", JAPANESE, python="3.11.4"),
    "local_utils_import": jupyter("local_utils_import", LOCAL_UTILS, python="3.10.9", kernel=("hw", "Python (hw)")),
    "crashed_kernel_outputs": colab("crashed_kernel_outputs", CRASHED),
    "zh2_off_by_one": jupyter("zh2_off_by_one", ZH2_OFF_BY_ONE, python="3.9.16"),
    "lenet_improved": colab("lenet_improved", LENET_IMPROVED, gpu=False),
    "dive_pytorch_notes": jupyter("dive_pytorch_notes", DIVE_PYTORCH, python="3.6.2", kernel=("python3", "Python 3")),
    "d2l103_val_data": jupyter("d2l103_val_data", D2L103_VAL_DATA, python="3.11.9"),
    "zh2_own_train_ch6": jupyter("zh2_own_train_ch6", ZH2_OWN_TRAIN_CH6, python="3.9.16"),
    "own_epoch_loop": jupyter("own_epoch_loop", OWN_EPOCH_LOOP, python="3.12.3"),
    "book_assertion": colab("book_assertion", BOOK_ASSERTION, gpu=False),
}


def text_of(notebook: nbformat.NotebookNode) -> str:
    """The ``.ipynb`` file's text as Jupyter writes it (validated against nbformat's schema)."""
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def write_all(folder: Path = HERE) -> list[Path]:
    """Write every notebook of the corpus into ``folder``; the paths written."""
    written = []
    for stem, notebook in NOTEBOOKS.items():
        path = folder / f"{stem}.ipynb"
        path.write_text(text_of(notebook), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
