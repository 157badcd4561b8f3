"""Installing as people type it: `pip install .` without torch in the build environment says what to run instead,
and a CUDA toolkit that does not match torch's CUDA skips the CUDA kernels (with a warning) instead of failing the
whole install."""
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_build_without_torch_says_what_to_run():
    """pip's default build isolation hides the installed torch from setup.py."""
    hide_torch = "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--version']; " \
                 "runpy.run_path('setup.py', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", hide_torch], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install --no-build-isolation ." in done.stderr, done.stderr


def _setup_module():
    spec = importlib.util.spec_from_file_location("fusedfire_setup", os.path.join(ROOT, "setup.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: main() runs under __main__
    return module


@pytest.mark.skipif(torch.version.cuda is None, reason="a CPU-only torch builds no CUDA kernels anyway")
def test_cuda_toolkit_of_another_major_skips_the_cuda_kernels(tmp_path, monkeypatch):
    other = "11.8" if not torch.version.cuda.startswith("11.") else "12.4"
    (tmp_path / "bin").mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "cuda_runtime.h").write_text("")
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {other}, V{other}.1'\n")
    nvcc.chmod(0o755)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    monkeypatch.delenv("FUSEDFIRE_SKIP_CUDA_BUILD", raising=False)
    setup = _setup_module()
    with pytest.warns(UserWarning, match=rf"nvcc is CUDA {other}, torch is built with CUDA {torch.version.cuda}"):
        assert setup.cuda_extension() is None
    assert setup.cpu_extension() is not None
