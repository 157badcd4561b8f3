"""Backends "cuda" and "cpu": the compiled kernels of csrc/ behind `torch.ops.fusedfire.native_*` (schemas in
ops.py). The extensions register their kernels when imported; the tensors' device picks the kernel."""
import contextlib
import importlib
import warnings

import torch

# fusedfire._C: CUDA kernels (nvcc); fusedfire._cpu: the fused CPU kernels. Either may be absent from a build.
EXTENSIONS = {"cuda": "fusedfire._C", "cpu": "fusedfire._cpu"}
LOAD_ERRORS = {}  # device type -> why its extension did not load (shown by `python -m fusedfire info`)
REBUILD = "pip install --no-build-isolation ."


def _load(device_type: str) -> bool:
    """Imports the extension of `device_type`. One that was not built is absent quietly, and so is fusedfire._C under
    a CPU-only torch (it needs libtorch_cuda); one that was built but does not load (an undefined symbol, a torch
    older than 2.11, a missing CUDA library) warns, once, with the cause and the rebuild command: its backend then
    is not offered, and "auto" takes the next one."""
    name = EXTENSIONS[device_type]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:  # the extension exists, something it imports does not
            return _failed(device_type, e)
        LOAD_ERRORS[device_type] = f"{name} is not built: {e}"
        return False
    except ImportError as e:
        return _failed(device_type, e)
    return True


def _failed(device_type: str, error: ImportError) -> bool:
    first = device_type not in LOAD_ERRORS
    LOAD_ERRORS[device_type] = str(error)
    if first and not (device_type == "cuda" and torch.version.cuda is None):
        warnings.warn(f"fusedfire: {EXTENSIONS[device_type]} is built but does not load under torch "
                      f"{torch.__version__} ({error}); the {device_type!r} backend is unavailable and 'auto' takes the "
                      f"next one. Rebuild it against this torch (>= 2.11): {REBUILD}", RuntimeWarning, stacklevel=2)
    return False


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


def cpu_empty_cache() -> int:
    """Frees the cpu backend's kept output blocks (fusedfire.empty_cache); the bytes freed, 0 where fusedfire._cpu is
    not built."""
    return importlib.import_module(EXTENSIONS["cpu"]).empty_cache() if available("cpu") else 0


# --------------------------------------------------------------------- the cpu backend's private options API

def cpu_isas() -> list:
    """The ISAs the cpu backend's vector kernels run on this build and CPU, best (the default) first, e.g.
    ['avx512', 'avx2', 'baseline']; [] where fusedfire._cpu is not built."""
    return importlib.import_module(EXTENSIONS["cpu"]).isas() if available("cpu") else []


@contextlib.contextmanager
def cpu_options(*, isa: str = None, winograd: str = None, band_pixels: int = None, gemm: str = None):
    """Private, for tests and benchmarks: inside the block, the cpu backend's calls from this thread run with
    isa: one of cpu_isas() (a lower one than the default tests that path on a CPU that has a better one);
    winograd: how the 3×3 expand runs, 'auto' (by Winograd where it pays), 'on' (wherever it can:
        S and E3 multiples of 16) or 'off' (im2col);
    band_pixels: output pixels per band (default 512);
    gemm: whose fp32 GEMMs run where the backend uses BLAS's, 'auto' (fusedfire's own where BLAS runs narrower code:
        MKL on an x86 CPU not Intel's), 'own' or 'blas'.
    Unset ones keep their value; a bad one is a ValueError (a TypeError for a wrong type) naming it. Users never
    need this."""
    for name, value, kind in (("isa", isa, str), ("winograd", winograd, str), ("band_pixels", band_pixels, int),
                              ("gemm", gemm, str)):
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise TypeError(f"fusedfire cpu: {name} must be {kind.__name__}, got {value!r}")
    cpu = importlib.import_module(EXTENSIONS["cpu"])
    old = cpu.get_options()
    cpu.set_options(old[0] if isa is None else isa, old[1] if winograd is None else winograd,
                    old[2] if band_pixels is None else band_pixels, old[3] if gemm is None else gemm)
    try:
        yield
    finally:
        cpu.set_options(*old)
