"""FusedFire: a drop-in for torchvision.models.squeezenet.Fire, and convert() to swap a whole model."""
import torch
from torch import nn

from .ops import check_backend_name, fire, fire_scripted
from .reference import Fire


torch.fx.wrap("fire")  # symbolic_trace records the call to fire (a leaf), not what fire does with a Proxy


class FusedFire(Fire):
    """Fire with fused kernels. Same constructor, attributes and state_dict keys as torchvision's `Fire`,
    so pretrained weights load as they are; `backend` picks the kernels ("auto": fastest available)."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int, *,
                 backend: str = "auto"):
        super().__init__(inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes)
        self.backend = check_backend_name(backend, "FusedFire")

    @classmethod
    def from_fire(cls, fire_module: nn.Module, *, backend: str = "auto") -> "FusedFire":
        """A FusedFire sharing `fire_module`'s conv submodules, hence its Parameter objects (zero copy: an
        optimizer built before the swap keeps working)."""
        problem = fire_problem(fire_module)
        if problem:
            raise ValueError(f"FusedFire.from_fire: {type(fire_module).__name__} is not a Fire: {problem}")
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.inplanes = fire_module.squeeze.in_channels
        for name in ("squeeze", "squeeze_activation", "expand1x1", "expand1x1_activation", "expand3x3",
                     "expand3x3_activation"):  # the convs shared; the (stateless) ReLUs fresh
            setattr(self, name, nn.ReLU(inplace=True) if name in _ACTIVATIONS else getattr(fire_module, name))
        self.backend = check_backend_name(backend, "FusedFire")
        self.train(fire_module.training)
        return self

    def forward(self, x):
        if torch.jit.is_scripting():
            return fire_scripted(x, self.squeeze.weight, self.squeeze.bias, self.expand1x1.weight,
                                 self.expand1x1.bias, self.expand3x3.weight, self.expand3x3.bias, self.backend)
        return self._fire(x)

    @torch.jit.unused  # TorchScript never compiles fire (its keyword-only backend, its Python checks)
    def _fire(self, x):
        return fire(x, self.squeeze.weight, self.squeeze.bias, self.expand1x1.weight, self.expand1x1.bias,
                    self.expand3x3.weight, self.expand3x3.bias, backend=self.backend)

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"


def _conv_problem(conv, name: str, kernel: int, padding: int):
    if not isinstance(conv, nn.Conv2d):
        return f"{name} is {type(conv).__name__}, not nn.Conv2d"
    want = dict(kernel_size=(kernel, kernel), stride=(1, 1), padding=(padding, padding), dilation=(1, 1),
                groups=1, padding_mode="zeros")
    for attr, value in want.items():
        if getattr(conv, attr) != value:
            return f"{name}.{attr} is {getattr(conv, attr)}, expected {value}"
    if conv.bias is None:
        return f"{name} has no bias"
    return None


_ACTIVATIONS = ("squeeze_activation", "expand1x1_activation", "expand3x3_activation")


def fire_problem(module: nn.Module):
    """None if `module` has Fire's three convs (squeeze 1×1, expand1x1 1×1, expand3x3 3×3 padding 1, all with
    bias, matching channels) and no activation other than ReLU, else what differs."""
    for name in _ACTIVATIONS:
        act = getattr(module, name, None)
        if act is not None and not isinstance(act, nn.ReLU):
            return f"{name} is {type(act).__name__}, not nn.ReLU"
    for name, kernel, padding in (("squeeze", 1, 0), ("expand1x1", 1, 0), ("expand3x3", 3, 1)):
        problem = _conv_problem(getattr(module, name, None), name, kernel, padding)
        if problem:
            return problem
    S = module.squeeze.out_channels
    for name in ("expand1x1", "expand3x3"):
        if getattr(module, name).in_channels != S:
            return f"{name}.in_channels is {getattr(module, name).in_channels}, expected squeeze's {S}"
    return None


def _is_torchvision_fire(module) -> bool:
    return type(module).__name__ == "Fire" and type(module).__module__.startswith("torchvision.")


def convert(model: nn.Module, *, backend: str = "auto") -> nn.Module:
    """Replaces, in place, every torchvision `Fire` (and any module with the same three convs) in `model` by
    `FusedFire.from_fire(...)`; returns `model` (a Fire given as `model` itself cannot be replaced in place:
    its FusedFire is returned)."""
    if not isinstance(model, FusedFire) and fire_problem(model) is None:
        return FusedFire.from_fire(model, backend=backend)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FusedFire):
                continue
            problem = fire_problem(child)
            if problem is None:
                setattr(parent, name, FusedFire.from_fire(child, backend=backend))
            elif _is_torchvision_fire(child):
                raise ValueError(f"fusedfire.convert: {name} is a torchvision Fire that FusedFire cannot run: "
                                 f"{problem}")
    return model
