"""The truth for every test: SqueezeNet's Fire module in plain eager PyTorch (torchvision's semantics).
It imports nothing of fusedfire's: it judges every backend (backend "reference" is fusedfire/eager.py)."""
import torch
import torch.nn.functional as F
from torch import nn


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
