#!/usr/bin/env bash
# One wheel for every torch >= 2.11 (LibTorch's stable ABI, setup.py's TORCH_TARGET_VERSION): the abi3 wheel of
# dist/ (scripts/test.sh builds it against .venv's torch) must
#   - use no symbol of torch's unstable C++ ABI (scripts/abi_audit.py on its .so files),
#   - load under torch 2.11.0, the oldest it targets: fusedfire._cpu and, where it was built, fusedfire._C (symbol
#     resolution and registration; no GPU runs it here),
#   - compute the cpu backend's forward and backward there as the fp64 reference does (a subset of
#     tests/test_cpu_backend.py, ~1 min), and optimize's inference ops (packed Fires, the stem, max pooling, their
#     outputs from kept blocks: tests/test_cpu_pack.py, tests/test_cpu_stem.py).
# torch 2.11.0 is installed once, without dependencies (the CUDA libraries it loads are .venv's), into
# ${FUSEDFIRE_CACHE:-~/.cache/fusedfire}/torch-2.11.0 (0.5 GB download, 1.1 GB on disk) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$PWD/.venv/bin/python
version=2.11.0
wheels=(dist/fusedfire-*-abi3-*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "want one wheel in dist/, got: ${wheels[*]}" >&2; exit 1; }
cache=${FUSEDFIRE_CACHE:-$HOME/.cache/fusedfire}
torch_dir=$cache/torch-$version
if [ ! -f "$torch_dir/.complete" ]; then
  echo "installing torch $version into $torch_dir"
  rm -rf "$torch_dir" && mkdir -p "$cache"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$torch_dir" "torch==$version"
  touch "$torch_dir/.complete"
fi

site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
"$py" -m pip install -q --disable-pip-version-check --no-deps --target "$site" "${wheels[0]}"
"$py" scripts/abi_audit.py "$site"/fusedfire/*.so
cp -r tests "$site/tests"
cd "$site"  # the wheel's fusedfire, not the checkout's
export PYTHONPATH="$site:$torch_dir"
"$py" - "$version" "$site" <<'PY'
import glob, os, sys
import torch
import fusedfire
from fusedfire import native
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__file__
assert fusedfire.__file__.startswith(sys.argv[2]), fusedfire.__file__
assert native.available("cpu"), native.LOAD_ERRORS
cuda_built = bool(glob.glob(os.path.join(os.path.dirname(fusedfire.__file__), "_C.*so")))
assert native.available("cuda") == cuda_built, native.LOAD_ERRORS
print(f"torch {torch.__version__}: the wheel's extensions load (cpu: {native.available('cpu')}, cuda: "
      f"{native.available('cuda') if cuda_built else 'not built'})")
PY
# forward (every Fire config, both layouts, fp32/fp16/bf16) and backward (every config) against the fp64 reference
"$py" -m pytest tests/test_cpu_backend.py -q -p no:cacheprovider \
  -k "every_fire_small or gradients_every_fire or low_precision_rounds_like_torch or native_op_rejects"
# optimize's inference ops (from_blob with a deleter, torch >= 2.11's stable ABI)
"$py" -m pytest tests/test_cpu_pack.py tests/test_cpu_stem.py -q -p no:cacheprovider
