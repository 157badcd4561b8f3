#!/usr/bin/env bash
# Compiles the CPU backend (csrc/cpu/) with -Wall -Werror, compile only, for this machine and for aarch64 (NEON is
# its baseline ISA; no ARM machine runs here: tests/test_cpu_isa.py runs the torch-free vector kernels under
# qemu-user). Installs Debian's cross compiler and qemu-user where missing. Uses .venv's torch headers
# (scripts/setup.sh). Any warning fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
cross=aarch64-linux-gnu-g++
if ! command -v "$cross" >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "installing $cross and qemu-aarch64 (Debian g++-aarch64-linux-gnu, qemu-user)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
fi
includes=$($py -c "
import sysconfig
from torch.utils.cpp_extension import include_paths
print(' '.join('-I' + p for p in include_paths() + [sysconfig.get_paths()['include']]))")
# the flags of setup.py's cpu_extension (torch builds extensions as C++20), warnings as errors
read -r -a cpu_flags <<< "$($py -c "import runpy; print(' '.join(runpy.run_path('setup.py')['CPU_FLAGS']))")"
flags=(-std=c++20 -fPIC "${cpu_flags[@]}" -DPy_LIMITED_API=0x030A0000 -Werror)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pids=()
for cxx in "${CXX:-g++}" "$cross"; do
  for src in csrc/cpu/*.cpp; do
    # shellcheck disable=SC2086
    "$cxx" "${flags[@]}" $includes -c "$src" -o "$out/$(basename "$cxx")-$(basename "$src").o" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done  # set -e: a failed compile fails the script
  pids=()
  echo "csrc/cpu: $("$cxx" -dumpmachine) compiles with -Wall -Werror"
done
