"""Lists what a shared library takes from torch's unstable C++ ABI: its undefined dynamic symbols whose demangled
names lie in at::, c10::, torch:: or caffe2:: (`nm -D --undefined-only --demangle`). Each one ties the library to the
torch it was built against (torch 2.11 has no `c10::cuda::CUDAErrorLogCapture::CUDAErrorLogCapture()`); the
extensions, built on LibTorch's stable ABI (setup.py, TORCH_TARGET_VERSION), must have none: they reach torch only
through its C shim (aoti_torch_*, torch_*) and header-only code.

    python scripts/abi_audit.py LIB.so...     # exit status 1, and the symbols, where any library has one
"""
import re
import subprocess
import sys

UNSTABLE = re.compile(r"\b(at|c10|torch|caffe2)::")


def unstable_symbols(path: str) -> list:
    """The demangled names of the unstable C++ symbols `path` needs from other libraries."""
    nm = subprocess.run(["nm", "-D", "--undefined-only", "--demangle", path], check=True, capture_output=True,
                        text=True)
    symbols = (line.split(None, 1)[1] for line in nm.stdout.splitlines() if line.strip())  # "U name", "w name"
    return [s for s in symbols if UNSTABLE.search(s)]


def main(paths: list) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        symbols = unstable_symbols(path)
        print(f"{path}: {len(symbols)} symbols of torch's unstable C++ ABI")
        for s in symbols:
            print(f"    {s}")
        bad += bool(symbols)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
