"""The truth for every test: SqueezeNet's Fire module in plain eager PyTorch (torchvision's semantics)."""
import torch
import torch.nn.functional as F
from torch import nn

from .ops import memory_format


def fire_reference(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias,
                   expand3x3_weight, expand3x3_bias):
    """Functional Fire, same arguments as `fusedfire.fire`: eager convs, ReLUs and `torch.cat`."""
    s = F.relu(F.conv2d(x, squeeze_weight, squeeze_bias))
    return torch.cat([F.relu(F.conv2d(s, expand1x1_weight, expand1x1_bias)),
                      F.relu(F.conv2d(s, expand3x3_weight, expand3x3_bias, padding=1))], 1)


class Fire(nn.Module):
    """torchvision.models.squeezenet.Fire, verbatim in behaviour (same attributes and state_dict keys)."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


# Backend "reference": the eager composition behind the same op contract as the fused kernels
# (`fire`, `fire_fwd` -> (out, s), `fire_bwd` from x, s, out); outputs in memory_format(x) like the kernels'.

def fire_fwd(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
             expand3x3_bias):
    fmt = memory_format(x)
    s = F.relu(F.conv2d(x, squeeze_weight, squeeze_bias)).contiguous(memory_format=fmt)
    e1 = F.relu(F.conv2d(s, expand1x1_weight, expand1x1_bias))
    e3 = F.relu(F.conv2d(s, expand3x3_weight, expand3x3_bias, padding=1))
    N, E1, H, W = e1.shape
    out = torch.empty((N, E1 + e3.shape[1], H, W), dtype=e1.dtype, device=e1.device, memory_format=fmt)
    out[:, :E1] = e1
    out[:, E1:] = e3
    return out, s


def fire(*args):
    return fire_fwd(*args)[0]


def _conv_bwd(grad, inp, weight, padding):
    return torch.ops.aten.convolution_backward(
        grad, inp, weight, [weight.shape[0]], [1, 1], [padding, padding], [1, 1], False, [0, 0], 1,
        [True, True, True])


def fire_bwd(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight):
    E1 = expand1x1_weight.shape[0]
    g = grad_out * (out > 0)
    gs1, gw1, gb1 = _conv_bwd(g[:, :E1], s, expand1x1_weight, 0)
    gs3, gw3, gb3 = _conv_bwd(g[:, E1:], s, expand3x3_weight, 1)
    grad_s = (gs1 + gs3) * (s > 0)
    gx, gsw, gsb = _conv_bwd(grad_s, x, squeeze_weight, 0)
    gx = gx.contiguous(memory_format=memory_format(x))
    return gx, _dense(gsw), gsb, _dense(gw1), gb1, _dense(gw3), gb3


def _dense(t):
    """t with standard contiguous strides, size-1 dims included (what the fakes promise)."""
    return torch.empty(t.shape, dtype=t.dtype, device=t.device).copy_(t)
