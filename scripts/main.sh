#!/usr/bin/env bash
# The main job on the present device (GPU if there is one, else CPU): set up, check every available backend
# against the fp64 reference, then a short benchmark (about 2 minutes: three Fires, forward and forward + backward,
# against eager PyTorch and torch.compile) written to bench/results/main/ (not committed).
# `bash scripts/main.sh --full [args]`: the whole matrix into bench/results/ instead (hours); other arguments go to
# the benchmark (python -m fusedfire bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m fusedfire info
.venv/bin/python -m fusedfire check
if [ "${1:-}" = "--full" ]; then
  shift
  .venv/bin/python -m fusedfire bench --subset full "$@"
else
  # A 55×55, the heaviest 27×27 and the last 13×13 Fire: 2.5 min on the 2-core EPYC while it was busy.
  .venv/bin/python -m fusedfire bench --subset quick --budget 0.2 --time-limit 150 --out bench/results/main \
    -k "(1_0.features.3- or 1_0.features.10- or 1_1.features.12-) and not reference" "$@"
fi
