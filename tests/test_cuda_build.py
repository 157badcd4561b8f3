"""fusedfire._C, the CUDA extension: built wherever nvcc and a CUDA build of torch exist (no GPU needed), one
cp310-abi3 module that registers the native_fire* ops for CUDA; and its kernels' ptxas figures: zero spills,
no local-memory stack frame, registers within a budget per kernel.

The ptxas figures come from nvcc -Xptxas -v on csrc/fire_kernels.cuh (torch-free: the same kernel templates and
launchers fire_cuda.cu instantiates), cached by source hash in the temp dir (the compile takes a minute or two).
"""
import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "csrc" / "fire_kernels.cuh"


def _load_setup():
    """setup.py as a module (its setup() runs only as __main__), for the build's own CUDA_HOME rule."""
    spec = importlib.util.spec_from_file_location("fusedfire_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cuda_home = _load_setup()._cuda_home


# Registers per thread allowed per kernel, fp16/bf16/fp32 instantiations and fp64 ones (fp64 accumulators take
# two registers each: 32 of them per thread). Measured with nvcc 13.0 (-O3, __launch_bounds__(128, 1)), sm_80 / sm_90:
# fp16/bf16/fp32 75-128 (fire fp32 scalar 128 on sm_80, expand fp32 scalar 128), fp64 140-170, reduce 32; no
# spills, no stack. `pytest -s` prints every instantiation.
# NOTE: 128 threads × 128 registers = 16K of an SM's 64K registers: up to 4 blocks per SM at the budget.
REGISTER_BUDGET = {"squeeze_kernel": 128, "expand_kernel": 128, "grad_s_kernel": 128, "wgrad_kernel": 128,
                   "fire_kernel": 128, "reduce_kernel": 40}
REGISTER_BUDGET_FP64 = {"squeeze_kernel": 176, "expand_kernel": 176, "grad_s_kernel": 176, "wgrad_kernel": 176,
                        "fire_kernel": 200, "reduce_kernel": 40}
SMEM_LIMIT = 48 * 1024  # static shared memory; fire_kernel adds its dynamic s tile (ff::fused_fits keeps ≤ 48 KiB)

INSTANTIATE = """#include "fire_kernels.cuh"
#define FF_INSTANTIATE(T) \\
  template void ff::launch_fwd<T>(const ff::FwdArgs<T>&, bool, bool, cudaStream_t); \\
  template void ff::launch_bwd<T>(const ff::BwdArgs<T>&, bool, cudaStream_t);
FF_INSTANTIATE(__half)
FF_INSTANTIATE(__nv_bfloat16)
FF_INSTANTIATE(float)
FF_INSTANTIATE(double)
"""


def _toolkit():
    if os.environ.get("FUSEDFIRE_SKIP_CUDA_BUILD") == "1":
        return None
    return _cuda_home() if torch.version.cuda is not None else None


needs_toolkit = pytest.mark.skipif(_toolkit() is None, reason="no CUDA toolkit (nvcc) or CPU-only torch: "
                                   "fusedfire._C is not built here")


@needs_toolkit
def test_extension_built_and_registered():
    """Where the toolkit exists the build must have produced fusedfire._C (an import error is a failure)."""
    import fusedfire
    mod = importlib.import_module("fusedfire._C")
    assert mod.__file__.endswith(".abi3.so"), f"{mod.__file__}: not built against the limited API (cp310-abi3)"
    assert fusedfire.native.available("cuda"), fusedfire.native.LOAD_ERRORS
    for op in ("native_fire", "native_fire_fwd", "native_fire_bwd"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fusedfire::{op}", "CUDA"), op


@needs_toolkit
def test_fp32_follows_cudnn_allow_tf32():
    """The kernels' fp32 tensor-core choice reads torch.backends.cudnn.allow_tf32 through Python (the stable ABI has
    no accessor), from a thread without the GIL as an op call is."""
    C = importlib.import_module("fusedfire._C")
    old = torch.backends.cudnn.allow_tf32
    try:
        for flag in (False, True, False):
            torch.backends.cudnn.allow_tf32 = flag
            assert C.cudnn_allow_tf32() is flag
    finally:
        torch.backends.cudnn.allow_tf32 = old


def _arches():
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    return sorted({a.replace("+PTX", "").replace(".", "") for a in re.split(r"[;\s]+", archs) if a})


@pytest.fixture(scope="module")
def ptxas_log():
    home = _toolkit()
    flags = ["-std=c++17", "-O3", "-Xptxas", "-v", f"-I{ROOT / 'csrc'}"]
    for a in _arches():
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    key = hashlib.sha256(KERNELS.read_bytes() + INSTANTIATE.encode() + " ".join(flags).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"fusedfire-ptxas-{key}.log"
    if cache.exists():
        return cache.read_text()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "instantiate.cu"
        src.write_text(INSTANTIATE)
        r = subprocess.run([os.path.join(home, "bin", "nvcc"), *flags, "-c", str(src), "-o", str(Path(d) / "k.o")],
                           capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-5000:]
    cache.write_text(r.stderr + r.stdout)
    return r.stderr + r.stdout


def parse_ptxas(log):
    """[(kernel, mangled name, arch, registers, spill stores, spill loads, stack frame, smem)] from -Xptxas -v."""
    rows, cur = [], None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)' for '(sm_\d+)'", line)
        if m:
            name = re.match(r"_ZN2ff\d+(\w+?kernel)", m.group(1))
            cur = {"kernel": name.group(1) if name else m.group(1), "mangled": m.group(1), "arch": m.group(2)}
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            smem = re.search(r"(\d+) bytes smem", line)
            cur.update(registers=int(m.group(1)), smem=int(smem.group(1)) if smem else 0)
            rows.append(cur)
            cur = None
    return rows


def _budget(row):
    fp64 = "EEEdLb0Ed" in row["mangled"] or row["mangled"].startswith("_ZN2ff13reduce_kernelIdd")
    return (REGISTER_BUDGET_FP64 if fp64 else REGISTER_BUDGET)[row["kernel"]]


@needs_toolkit
def test_ptxas_no_spills_and_register_budget(ptxas_log):
    rows = parse_ptxas(ptxas_log)
    kernels = {r["kernel"] for r in rows}
    assert kernels == set(REGISTER_BUDGET), f"kernels compiled: {sorted(kernels)}"
    assert {r["arch"] for r in rows} == {f"sm_{a}" for a in _arches()}
    over = [r for r in rows if r["spill_stores"] or r["spill_loads"] or r["stack"] or
            r["registers"] > _budget(r) or r["smem"] > SMEM_LIMIT]
    table = "\n".join(f"{r['arch']} {r['kernel']:>15} regs {r['registers']:>3} smem {r['smem']:>6} stack "
                      f"{r['stack']} spills {r['spill_stores']}/{r['spill_loads']}  {r['mangled']}" for r in rows)
    print(table)
    assert not over, "over budget (registers, spills, stack or smem):\n" + "\n".join(
        f"{r['arch']} {r['kernel']} {r}" for r in over) + "\nall:\n" + table


def test_parse_ptxas_catches_spills():
    """Test of the test: a spilling kernel in ptxas's format is reported as such."""
    log = ("ptxas info    : Compiling entry function '_ZN2ff11fire_kernelIfEEvv' for 'sm_80'\n"
           "ptxas info    : Function properties for _ZN2ff11fire_kernelIfEEvv\n"
           "    24 bytes stack frame, 24 bytes spill stores, 168 bytes spill loads\n"
           "ptxas info    : Used 80 registers, used 1 barriers, 7680 bytes smem, 848 bytes cmem[0]\n")
    (row,) = parse_ptxas(log)
    assert row == {"kernel": "fire_kernel", "mangled": "_ZN2ff11fire_kernelIfEEvv", "arch": "sm_80", "stack": 24,
                   "spill_stores": 24, "spill_loads": 168, "registers": 80, "smem": 7680}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_cuda_home_found():
    home = _cuda_home()
    assert home is not None and (Path(home) / "include" / "cuda_runtime.h").exists()
