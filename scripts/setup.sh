#!/usr/bin/env bash
# Makes .venv (once) with requirements-dev.txt and installs fusedfire into it, editable. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
stamp=.venv/.requirements
if ! cmp -s requirements-dev.txt "$stamp"; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt "$stamp"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
