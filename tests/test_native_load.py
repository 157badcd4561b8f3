"""fusedfire.native's loading of the compiled extensions: one that was not built is absent quietly; one that was
built but does not load (here: a planted undefined symbol, as a build for another torch gives) warns once, naming
the cause and the rebuild command, and its backend is not offered."""
import shutil
import subprocess
import warnings

import pytest
import torch

from fusedfire import native


@pytest.fixture
def broken_cpu_extension(tmp_path, monkeypatch):
    """native.EXTENSIONS["cpu"] pointed at a module whose library needs a symbol no library defines."""
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    (tmp_path / "broken.c").write_text("extern void fusedfire_planted_missing(void);\n"
                                       "void* PyInit_ff_broken(void) { fusedfire_planted_missing(); return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", str(tmp_path / "broken.c"), "-o", str(tmp_path / "ff_broken.abi3.so")],
                   check=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(native.EXTENSIONS, "cpu", "ff_broken")
    monkeypatch.setattr(native, "LOAD_ERRORS", {})


def test_a_built_extension_that_does_not_load_warns_once(broken_cpu_extension):
    with pytest.warns(RuntimeWarning, match="ff_broken is built but does not load") as record:
        assert not native._load("cpu")
    message = str(record[0].message)
    assert "undefined symbol: fusedfire_planted_missing" in message
    assert f"torch {torch.__version__}" in message and native.REBUILD in message and "'cpu' backend" in message
    assert "undefined symbol" in native.LOAD_ERRORS["cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not native._load("cpu")  # once


def test_an_extension_that_was_not_built_is_quiet(monkeypatch):
    monkeypatch.setitem(native.EXTENSIONS, "cpu", "fusedfire._never_built")
    monkeypatch.setattr(native, "LOAD_ERRORS", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not native._load("cpu")
    assert "not built" in native.LOAD_ERRORS["cpu"]


def test_the_cuda_extension_under_a_cpu_only_torch_is_quiet(broken_cpu_extension, monkeypatch):
    """A CUDA wheel under a CPU-only torch: fusedfire._C cannot load (no libtorch_cuda) nor run; no warning."""
    monkeypatch.setitem(native.EXTENSIONS, "cuda", "ff_broken")
    monkeypatch.setattr(torch.version, "cuda", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not native._load("cuda")
    assert "undefined symbol" in native.LOAD_ERRORS["cuda"]
