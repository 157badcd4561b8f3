"""Test setup: without a GPU the Triton kernels run on CPU tensors under the interpreter, which must be
switched on before any kernel module is imported."""
import importlib.util
import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


_CHECK_TRITON = os.environ.get("TRITON_INTERPRET", "0") == "1" and importlib.util.find_spec("triton") is not None


def pytest_configure(config):
    config.addinivalue_line("markers", "triton_unchecked: run this test without the Triton bounds-and-race checker")


@pytest.fixture(autouse=True)
def triton_memory_checker(request):
    """Every test runs under tests/triton_checker.py when kernels are interpreted: an out-of-bounds access or a
    race between programs of any Triton launch fails the test with TritonMemoryError. Yields the checker (its
    counters say how much was checked), or None when not interpreting / triton is not installed; opt out with
    @pytest.mark.triton_unchecked."""
    if not _CHECK_TRITON or request.node.get_closest_marker("triton_unchecked"):
        yield None
        return
    try:  # imports triton: only here, once we know it is installed
        from .triton_checker import checked
    except ImportError:  # tests/ is not a package
        from triton_checker import checked

    with checked() as checker:
        yield checker
