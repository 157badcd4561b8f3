"""Build script: the pure-Python package plus, where they can be built, the compiled kernels of csrc/ —
`fusedfire._cpu` (fused CPU kernels, any build) and `fusedfire._C` (CUDA kernels, when nvcc is present).
Build with `pip install --no-build-isolation .` (the extensions compile against the installed torch)."""
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def cpu_extension():
    """fusedfire._cpu: the fused CPU kernels (csrc/fire_cpu.cpp), built in every build, CUDA or not. Python's
    limited API (the module is a dummy PyInit__cpu; ops register through the dispatcher), OpenMP because
    at::parallel_for is an inline `#pragma omp parallel` in ATen's headers (without -fopenmp: one thread)."""
    source = os.path.join("csrc", "fire_cpu.cpp")
    if not os.path.exists(os.path.join(ROOT, source)):
        return None
    from torch.utils.cpp_extension import CppExtension
    return CppExtension("fusedfire._cpu", [source], py_limited_api=True,
                        extra_compile_args=["-O3", "-fopenmp", "-DPy_LIMITED_API=0x03090000"],
                        extra_link_args=["-fopenmp"])


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
