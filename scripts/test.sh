#!/usr/bin/env bash
# The test command: sets everything up, compiles the CPU backend with -Werror for this machine and aarch64, runs the
# test suite (on CPU the Triton kernels run under the interpreter with the bounds-and-race checker; the CPU vector
# kernels for aarch64 under qemu), builds the abi3 wheel and imports it away from the checkout, then under torch 2.11
# (scripts/check_torch_compat.sh: one wheel for every torch >= 2.11), a one-round smoke run of every benchmark
# provider, and the GPU check script's dry run. Any failure fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check_cpu_build.sh  # first: it installs the aarch64 tools tests/test_cpu_isa.py runs
.venv/bin/python -m pytest tests -q -ra --durations=20 "$@"
.venv/bin/python -m pytest bench -q --benchmark-disable -m smoke
bash bench/gpu_check.sh --dry-run

# One cp310-abi3 wheel (the nvcc-built CUDA kernels where nvcc exists, the CPU kernels always) that imports without
# a GPU and registers its kernels.
rm -rf dist && .venv/bin/python -m pip wheel -q --disable-pip-version-check . --no-build-isolation --no-deps -w dist
site=$(mktemp -d)
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --target "$site" dist/fusedfire-*-cp310-abi3-*.whl
(cd "$site" && PYTHONPATH="$site" "$OLDPWD/.venv/bin/python" -c "
import shutil, fusedfire, fusedfire.native as native
assert fusedfire.__file__.startswith('$site'), fusedfire.__file__
assert native.available('cpu'), native.LOAD_ERRORS
assert native.available('cuda') or not shutil.which('nvcc'), native.LOAD_ERRORS
print('wheel ok:', fusedfire.__file__, {d: native.available(d) for d in ('cpu', 'cuda')})")
rm -rf "$site"

# The same wheel under torch 2.11.0 (the oldest the stable ABI build targets): no unstable symbol, it loads, and the
# cpu backend's forward and backward match the reference there (~1.5 min; the first run downloads torch, 0.5 GB).
bash scripts/check_torch_compat.sh
