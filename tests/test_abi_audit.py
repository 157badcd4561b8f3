"""scripts/abi_audit.py, the check that the compiled extensions use no symbol of torch's unstable C++ ABI (issue 15):
on the built extensions, and on tiny libraries with a planted dependency (the test of the checker)."""
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
audit = runpy.run_path(str(ROOT / "scripts" / "abi_audit.py"))
unstable_symbols = audit["unstable_symbols"]

needs_tools = pytest.mark.skipif(not (shutil.which("nm") and shutil.which("c++")), reason="needs nm and c++")


def _library(tmp_path, source: str, *flags) -> str:
    (tmp_path / "lib.cpp").write_text(source)
    lib = tmp_path / "lib.so"
    subprocess.run(["c++", "-std=c++17", "-shared", "-fPIC", *flags, str(tmp_path / "lib.cpp"), "-o", str(lib)],
                   check=True)
    return str(lib)


@needs_tools
@pytest.mark.parametrize("name", ["_cpu", "_C"])
def test_extensions_use_only_the_stable_abi(name):
    built = sorted((ROOT / "fusedfire").glob(f"{name}.*so"))
    if not built:
        pytest.skip(f"fusedfire.{name} is not built here")
    assert unstable_symbols(str(built[0])) == []


@needs_tools
def test_a_planted_unstable_symbol_is_caught(tmp_path):
    """The two that broke the wheel under torch 2.11 (issue 15), and a plain at:: call."""
    lib = _library(tmp_path, """
        namespace at { struct TensorBase { template <typename T> const T* const_data_ptr() const; }; }
        namespace c10::cuda { struct CUDAErrorLogCapture { CUDAErrorLogCapture(); }; }
        namespace at { void planted(int); }
        extern "C" const float* f(const at::TensorBase& t) {
          c10::cuda::CUDAErrorLogCapture capture;
          at::planted(1);
          return t.const_data_ptr<float>();
        }""")
    assert sorted(unstable_symbols(lib)) == [
        "at::planted(int)", "c10::cuda::CUDAErrorLogCapture::CUDAErrorLogCapture()",
        "float const* at::TensorBase::const_data_ptr<float>() const"]
    assert audit["main"]([lib]) == 1


@needs_tools
def test_a_torch_check_is_caught(tmp_path):
    """TORCH_CHECK, not the stable ABI's STD_TORCH_CHECK: its failure path is c10's."""
    include_paths = pytest.importorskip("torch.utils.cpp_extension").include_paths
    lib = _library(tmp_path, '#include <c10/util/Exception.h>\nextern "C" void f(int n) { TORCH_CHECK(n > 0, "n"); }',
                   *(f"-I{p}" for p in include_paths()))
    assert any(s.startswith("c10::detail::torchCheckFail") for s in unstable_symbols(lib)), unstable_symbols(lib)


@needs_tools
def test_the_c_shim_and_other_code_pass(tmp_path):
    lib = _library(tmp_path, """
        extern "C" int torch_get_num_threads(unsigned*);
        namespace ff { void data(int); }
        extern "C" int f() { unsigned n = 0; ff::data(1); return torch_get_num_threads(&n) + int(n); }""")
    assert unstable_symbols(lib) == []
    assert audit["main"]([lib]) == 0
