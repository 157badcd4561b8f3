"""Triton kernels for Fire (placeholder until the kernels land)."""
import os

import triton  # noqa: F401  (ImportError here means: no triton backend)

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"
