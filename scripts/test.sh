#!/usr/bin/env bash
# The test command: sets everything up, then runs the whole test suite (CPU: Triton under its interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest tests -q -ra --durations=15 "$@"
