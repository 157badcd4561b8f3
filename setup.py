"""Build script: the pure-Python package plus, where they can be built, the compiled kernels of csrc/ —
`fusedfire._cpu` (fused CPU kernels, any build) and `fusedfire._C` (CUDA kernels, when nvcc is present).
Build with `pip install --no-build-isolation .` (the extensions compile against the installed torch)."""
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def cpu_extension():
    """fusedfire._cpu: owned by the CPU-backend work (issue 5). None until csrc/fire_cpu.cpp exists."""
    return None


def cuda_extension():
    """fusedfire._C: owned by the CUDA-backend work (issue 3). None until csrc/fire_cuda.cu exists."""
    return None


def main():
    extensions = [e for e in (cpu_extension(), cuda_extension()) if e is not None]
    kwargs = {}
    if extensions:
        from torch.utils.cpp_extension import BuildExtension
        kwargs = dict(ext_modules=extensions, cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})
    setup(**kwargs)


main()
