"""The Fire shapes that tests and benchmarks share: every Fire of torchvision's SqueezeNets, KernelBench's."""
from typing import NamedTuple


class FireConfig(NamedTuple):
    name: str  # e.g. "1_0.features.3"
    inplanes: int
    squeeze_planes: int
    expand1x1_planes: int
    expand3x3_planes: int
    size: int  # H = W at a 224×224 image (KernelBench: its own size)


def _fires(model, rows):
    return [FireConfig(f"{model}.features.{i}", cin, s, e1, e3, hw) for i, cin, s, e1, e3, hw in rows]


# The 16 Fire modules of squeezenet1_0 and squeezenet1_1 with the spatial size each sees at 224×224.
SQUEEZENET_FIRES = _fires("1_0", [(3, 96, 16, 64, 64, 54), (4, 128, 16, 64, 64, 54), (5, 128, 32, 128, 128, 54),
                                  (7, 256, 32, 128, 128, 27), (8, 256, 48, 192, 192, 27),
                                  (9, 384, 48, 192, 192, 27), (10, 384, 64, 256, 256, 27),
                                  (12, 512, 64, 256, 256, 13)]) + \
    _fires("1_1", [(3, 64, 16, 64, 64, 55), (4, 128, 16, 64, 64, 55), (6, 128, 32, 128, 128, 27),
                   (7, 256, 32, 128, 128, 27), (9, 256, 48, 192, 192, 13), (10, 384, 48, 192, 192, 13),
                   (11, 384, 64, 256, 256, 13), (12, 512, 64, 256, 256, 13)])

# KernelBench level 3, problem 17: one Fire, N=128, 256×256, fp32.
KERNELBENCH_FIRE = FireConfig("kernelbench.17", 3, 6, 64, 64, 256)
