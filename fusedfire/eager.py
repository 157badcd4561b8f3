"""Backend "reference": the eager composition (convs, ReLUs) behind the same op contract as the fused kernels
(`fire`, `fire_fwd` -> (out, s), `fire_bwd` from x, s, out); outputs in memory_format(x) like the kernels'.
The truth the tests judge every backend against, this one included, is fusedfire/reference.py."""
import torch
import torch.nn.functional as F

from ._layout import empty, memory_format, out_shape


def fire_fwd(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
             expand3x3_bias):
    fmt = memory_format(x)
    s = F.relu(F.conv2d(x, squeeze_weight, squeeze_bias)).contiguous(memory_format=fmt)
    out = empty(out_shape(x, expand1x1_weight, expand3x3_weight), s, fmt)
    E1 = expand1x1_weight.shape[0]
    out[:, :E1] = F.relu(F.conv2d(s, expand1x1_weight, expand1x1_bias))
    out[:, E1:] = F.relu(F.conv2d(s, expand3x3_weight, expand3x3_bias, padding=1))
    return out, s


def fire(*args):
    return fire_fwd(*args)[0]


def conv_bwd(grad, inp, weight, padding):
    """(grad_inp, grad_weight, grad_bias) of a stride-1 conv2d with `padding`, by ATen's convolution_backward."""
    return torch.ops.aten.convolution_backward(
        grad, inp, weight, [weight.shape[0]], [1, 1], [padding, padding], [1, 1], False, [0, 0], 1,
        [True, True, True])


def fire_bwd(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight):
    E1 = expand1x1_weight.shape[0]
    g = grad_out * (out > 0)
    gs1, gw1, gb1 = conv_bwd(g[:, :E1], s, expand1x1_weight, 0)
    gs3, gw3, gb3 = conv_bwd(g[:, E1:], s, expand3x3_weight, 1)
    grad_s = (gs1 + gs3) * (s > 0)
    gx, gsw, gsb = conv_bwd(grad_s, x, squeeze_weight, 0)
    gx = gx.contiguous(memory_format=memory_format(x))
    return gx, _dense(gsw), gsb, _dense(gw1), gb1, _dense(gw3), gb3


def _dense(t):
    """t with standard contiguous strides, size-1 dims included (what the fakes promise)."""
    return torch.empty(t.shape, dtype=t.dtype, device=t.device).copy_(t)
