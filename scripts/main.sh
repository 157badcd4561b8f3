#!/usr/bin/env bash
# The main job on the present device (GPU if there is one, else CPU): set up, check every available backend
# against the fp64 reference, then a short benchmark vs eager PyTorch and torch.compile, written to
# bench/results/<device>.{csv,md,png}. Extra arguments go to the benchmark (e.g. --subset full).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m fusedfire info
.venv/bin/python -m fusedfire check
.venv/bin/python -m fusedfire bench --subset quick --time-limit "${FUSEDFIRE_BENCH_SECONDS:-600}" "$@"
