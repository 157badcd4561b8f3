"""fusedfire: fused GPU kernels for SqueezeNet's Fire module behind a drop-in autograd module."""
from . import reference
from .inference import empty_cache, optimize
from .modules import FusedFire, convert
from .ops import backends, fire

__all__ = ["FusedFire", "backends", "convert", "empty_cache", "fire", "optimize", "reference"]
__version__ = "0.1.0"
