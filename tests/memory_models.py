"""Models for the memory lowerings' tests (overlaps, streamed stages): a MobileNet head, whose
first maps are its largest, and random chains of convolutions of every geometry the kernels take."""

from __future__ import annotations

import numpy as np
from modelgen import GraphBuilder

from mcudeploy import ir

RELU = ir.Clip(0.0, None)


def mobilenet_head(size: int = 32, seed: int = 0, pool: bool = True,
                   blocks: int = 4) -> tuple[ir.Graph, bytes]:
    """MobileNetV1-0.25's first blocks on a `size` x `size` image: a strided 3x3 convolution, then
    `blocks` depthwise and pointwise pairs (the second and fourth strided), the largest maps first;
    average pool and a fully connected layer on top (`pool`)."""
    b = GraphBuilder(seed=seed)
    x = b.conv(b.input((1, size, size, 3)), 8, stride=(2, 2), activation=RELU)
    for c_out, stride in ((16, 1), (32, 2), (32, 1), (64, 2))[:blocks]:
        x = b.depthwise(x, 1, stride=(stride, stride), activation=RELU)
        x = b.conv(x, c_out, kernel=(1, 1), activation=RELU)
    if pool:
        x = b.fully_connected(b.pool(x, "avg", window=(2, 2), stride=(2, 2)), 4)
    return b.build([x], name="mobilenet_head")


def same_size_chain(seed: int = 0) -> tuple[ir.Graph, bytes]:
    """3x3 convolutions and depthwise convolutions keeping a 24x24x8 map, then a strided one: the
    peak is at a layer whose input and output are the same size, where any library's walk of a 3x3
    window lets the output overlap the input."""
    b = GraphBuilder(seed=seed)
    x = b.conv(b.input((1, 24, 24, 8)), 8, activation=RELU)
    x = b.depthwise(x, 1, activation=RELU)
    x = b.conv(x, 8, activation=RELU)
    x = b.conv(x, 8, stride=(2, 2), activation=RELU)
    return b.build([b.fully_connected(b.pool(x, "avg", window=(2, 2), stride=(2, 2)), 4)], name="same_size")


def random_chain(seed: int) -> tuple[ir.Graph, bytes]:
    """Three to six convolutions and depthwise convolutions one after the other, each with random
    kernel, stride, dilation, padding and channels (batch 1), ending in a fully connected layer."""
    b = GraphBuilder(seed=seed)
    return b.build([_chain(b, np.random.default_rng(seed))], name=f"chain{seed}")


def random_chains(seed: int, count: int) -> tuple[ir.Graph, bytes]:
    """`count` random chains side by side, each with its own input and output (one model)."""
    b = GraphBuilder(seed=seed)
    rng = np.random.default_rng(seed)
    return b.build([_chain(b, rng) for _ in range(count)], name=f"chains{seed}")


def _chain(b: GraphBuilder, rng: np.random.Generator) -> str:
    x = b.input((1, int(rng.integers(6, 20)), int(rng.integers(3, 12)), int(rng.integers(1, 9))))
    for _ in range(int(rng.integers(3, 7))):
        _, h, w, _ = b.tensors[x].shape
        k = (int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 4) + 1)))
        stride = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 2])))
        dilation = (int(rng.choice([1, 1, 2])) if k[0] > 1 and h >= 2 * k[0] else 1, 1)
        padding = str(rng.choice(["same", "valid"])) if h >= k[0] * dilation[0] and w >= k[1] else "same"
        if rng.random() < 0.4:
            x = b.depthwise(x, int(rng.choice([1, 1, 2])), kernel=k, stride=stride, dilation=dilation,
                            padding=padding, activation=RELU)
        else:
            x = b.conv(x, int(rng.integers(1, 12)), kernel=k, stride=stride, dilation=dilation,
                       padding=padding, activation=RELU)
        if b.tensors[x].shape[1] < 2:
            break
    return b.fully_connected(x, 3)


def generated_kernel_shapes(seed: int = 0) -> tuple[ir.Graph, bytes]:
    """One layer per path of the generated kernels, one after the other on 8 channels, with no
    activation (a changed input byte shows in the outputs): 3x3 convolutions (im2col) same-size
    and strided, 1x1 convolutions in place (direct) and strided, depthwise 3x3 same-size and strided,
    a depthwise 1x3 padded two columns each side (output rows wider than the input's: the ring's
    shift is above 0), and a fully connected layer on one row."""
    b = GraphBuilder(seed=seed)
    x = b.conv(b.input((1, 10, 6, 8)), 8)
    x = b.conv(x, 16, kernel=(1, 1))
    x = b.conv(x, 8, kernel=(1, 1), stride=(2, 1))
    x = b.depthwise(x)
    x = b.depthwise(x, kernel=(1, 3), padding=ir.Padding(0, 0, 2, 2))
    x = b.depthwise(x, stride=(2, 2))
    x = b.conv(x, 8, stride=(2, 2))
    return b.build([b.fully_connected(x, 5)], name="kernel_shapes")
