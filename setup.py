"""Build script: the pure-Python package plus, where they can be built, the compiled kernels of csrc/ —
`fusedfire._cpu` (fused CPU kernels, any build) and `fusedfire._C` (CUDA kernels, when nvcc is present).
Build with `pip install --no-build-isolation .` (the extensions compile against the installed torch)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


# LibTorch's stable ABI, the subset of torch 2.11: the extensions call torch only through its C shim and header-only
# code, so one build loads under every torch >= 2.11 (scripts/check_torch_compat.sh). Format: [major][minor][patch]
# [5 bytes ABI tag], one byte each.
TORCH_TARGET_VERSION = "0x020b000000000000"
STABLE_ABI = [f"-DTORCH_TARGET_VERSION={TORCH_TARGET_VERSION}"]
# -ffp-contract=off: no FMA contraction, so every ISA's kernels give the same bits (csrc/cpu/vec.h).
CPU_FLAGS = ["-O3", "-Wall", "-ffp-contract=off", *STABLE_ABI]


def cpu_extension():
    """fusedfire._cpu: the fused CPU kernels (csrc/cpu/), built in every build, CUDA or not. Python's limited API
    (the module holds only the private options API; ops register through the dispatcher). Threads come from torch's
    own pool (torch::stable::parallel_for), so the build needs no OpenMP."""
    sources = sorted(glob.glob(os.path.join(ROOT, "csrc", "cpu", "*.cpp")))
    if not sources:
        return None
    from torch.utils.cpp_extension import CppExtension
    return CppExtension("fusedfire._cpu", [os.path.relpath(s, ROOT) for s in sources],
                        depends=glob.glob(os.path.join("csrc", "cpu", "*.h")) + glob.glob(os.path.join("csrc", "*.h")),
                        py_limited_api=True, extra_compile_args=CPU_FLAGS)  # py_limited_api defines Py_LIMITED_API


def _cuda_home():
    """The CUDA toolkit nvcc belongs to ($CUDA_HOME, $CUDA_PATH, /usr/local/cuda, or above nvcc's bin/), or None."""
    nvcc = shutil.which("nvcc")
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
                 nvcc and os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))):
        if home and os.path.isfile(os.path.join(home, "bin", "nvcc")) and \
                os.path.isfile(os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


def _nvcc_release(home: str) -> str:
    """The CUDA version of `home`'s nvcc, e.g. "13.0" ("?" if it does not say)."""
    done = subprocess.run([os.path.join(home, "bin", "nvcc"), "--version"], capture_output=True, text=True)
    found = re.search(r"release (\d+\.\d+)", done.stdout)
    return found.group(1) if found else "?"


def cuda_extension():
    """fusedfire._C: the CUDA kernels of csrc/ (issue 3). Built wherever nvcc and a CUDA build of torch are present —
    a GPU is not needed (never torch.cuda.is_available()). FUSEDFIRE_SKIP_CUDA_BUILD=1: none. TORCH_CUDA_ARCH_LIST
    picks the targets (default "8.0;9.0+PTX"), MAX_JOBS the parallel compile jobs."""
    import torch
    home = _cuda_home()
    if os.environ.get("FUSEDFIRE_SKIP_CUDA_BUILD") == "1" or torch.version.cuda is None or home is None:
        return None
    nvcc = _nvcc_release(home)
    if nvcc.split(".")[0] != torch.version.cuda.split(".")[0]:  # torch's build would stop the whole install
        warnings.warn(f"fusedfire: not building the CUDA kernels (fusedfire._C): {home}/bin/nvcc is CUDA {nvcc}, "
                      f"torch is built with CUDA {torch.version.cuda}; point CUDA_HOME at a CUDA "
                      f"{torch.version.cuda.split('.')[0]} toolkit to build them. The CPU kernels are built.")
        return None
    os.environ["CUDA_HOME"] = home
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    from torch.utils import cpp_extension
    cpp_extension.CUDA_HOME = home  # read once at import: maybe before $CUDA_HOME was set here
    # Headers/libraries torch's CUDA headers need (cusparse.h, cublas_v2.h, ...) from the pip CUDA wheels when the
    # toolkit lacks them.
    nvidia = os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu" + torch.version.cuda.split(".")[0])
    extra = [] if os.path.isfile(os.path.join(home, "include", "cusparse.h")) else [nvidia]
    warn = ["-Wall", "-Werror"]
    stable = [*STABLE_ABI, "-DUSE_CUDA"]  # USE_CUDA: the C shim's CUDA part (the current stream, error messages)
    return cpp_extension.CUDAExtension(
        "fusedfire._C", ["csrc/fire_cuda.cu", "csrc/fire_ops.cpp"],
        include_dirs=[os.path.join(d, "include") for d in extra], library_dirs=[os.path.join(d, "lib") for d in extra],
        depends=glob.glob(os.path.join("csrc", "*.h")) + [os.path.join("csrc", "fire_kernels.cuh")],
        py_limited_api=True,
        extra_compile_args={"cxx": ["-O3", *warn, *stable],  # py_limited_api=True defines Py_LIMITED_API
                            "nvcc": ["-O3", *stable, "-Werror=all-warnings", "-Xcudafe", "--display_error_number",
                                     "-Xcompiler", ",".join(warn)]})


def main():
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        sys.exit("fusedfire: the build compiles against the installed torch, which pip's isolated build environment "
                 "does not have. Install torch (>= 2.11) first, then build without isolation:\n"
                 "    pip install torch\n    pip install --no-build-isolation .")
    extensions = [e for e in (cpu_extension(), cuda_extension()) if e is not None]
    kwargs = {}
    if extensions:
        from torch.utils.cpp_extension import BuildExtension
        kwargs = dict(ext_modules=extensions, cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})
        kwargs["options"] = {"bdist_wheel": {"py_limited_api": "cp310"}}  # the Py_LIMITED_API torch compiles with
    setup(**kwargs)


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__ too
    main()
