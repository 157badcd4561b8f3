#!/usr/bin/env bash
# The test command: sets everything up, then runs the test suite (on CPU the Triton kernels run under the
# interpreter with the bounds-and-race checker), a one-round smoke run of every benchmark provider, and the
# GPU check script's dry run. Any failure fails the command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest tests -q -ra --durations=20 "$@"
.venv/bin/python -m pytest bench -q --benchmark-disable -m smoke
bash bench/gpu_check.sh --dry-run
