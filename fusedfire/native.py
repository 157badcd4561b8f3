"""Backends "cuda" and "cpu": the compiled kernels of csrc/ behind `torch.ops.fusedfire.native_*` (schemas in
ops.py). The extensions register their kernels when imported; the tensors' device picks the kernel."""
import importlib

import torch

# fusedfire._C: CUDA kernels (nvcc); fusedfire._cpu: the fused CPU kernels. Either may be absent from a build.
EXTENSIONS = {"cuda": "fusedfire._C", "cpu": "fusedfire._cpu"}
LOAD_ERRORS = {}  # device type -> why its extension did not load (shown by `python -m fusedfire info`)


def _load(device_type: str) -> bool:
    try:
        importlib.import_module(EXTENSIONS[device_type])
    except ImportError as e:
        LOAD_ERRORS[device_type] = str(e)
        return False
    return True


def _registered(device_type: str) -> bool:
    key = "CUDA" if device_type == "cuda" else "CPU"
    return _load(device_type) and torch._C._dispatch_has_kernel_for_dispatch_key("fusedfire::native_fire", key)


# Decided once, at import: a plain lookup is what torch.compile can trace through `fusedfire.fire`.
_AVAILABLE = {device_type: _registered(device_type) for device_type in EXTENSIONS}


def available(device_type: str) -> bool:
    """True when a compiled kernel for `device_type` tensors is registered."""
    return _AVAILABLE.get(device_type, False)


def fire(*args):
    return torch.ops.fusedfire.native_fire(*args)


def fire_fwd(*args):
    return torch.ops.fusedfire.native_fire_fwd(*args)


def fire_bwd(*args):
    return torch.ops.fusedfire.native_fire_bwd(*args)
