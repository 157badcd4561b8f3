"""Layout and shape helpers that the op layer and every backend share. A leaf: it imports torch only."""
import torch
from torch import Tensor


def memory_format(x: Tensor) -> torch.memory_format:
    """The layout of everything derived from x: channels_last when x's channel stride is 1 and that is not
    also NCHW (C = 1 or H·W = 1 are ambiguous and stay NCHW), else contiguous NCHW."""
    N, C, H, W = x.shape
    return torch.channels_last if x.stride(1) == 1 and C > 1 and H * W > 1 else torch.contiguous_format


def out_shape(x: Tensor, expand1x1_weight: Tensor, expand3x3_weight: Tensor) -> tuple:
    """(N, E1 + E3, H, W): the Fire output's shape for input x."""
    N, _, H, W = x.shape
    return N, expand1x1_weight.shape[0] + expand3x3_weight.shape[0], H, W


def s_shape(x: Tensor, squeeze_weight: Tensor) -> tuple:
    """(N, S, H, W): the squeeze output's shape for input x."""
    N, _, H, W = x.shape
    return N, squeeze_weight.shape[0], H, W


def empty(shape, like: Tensor, fmt=torch.contiguous_format) -> Tensor:
    """An uninitialized tensor of `shape` with like's dtype and device, in layout `fmt`."""
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)
