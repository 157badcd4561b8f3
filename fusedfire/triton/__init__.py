"""Backend "triton": the Fire kernels (kernels.py), their launchers (launchers.py) and tile configs (tuning.py).

Under TRITON_INTERPRET=1 (set before this package is imported) the kernels run on CPU tensors.
"""
import os

import triton  # noqa: F401  (ImportError here means: no triton backend)

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"

from .launchers import expand, fire, fire_bwd, fire_fwd, grad_s, squeeze, wgrad  # noqa: E402
from .tuning import CONFIGS, variants  # noqa: E402

__all__ = ["CONFIGS", "INTERPRETED", "expand", "fire", "fire_bwd", "fire_fwd", "grad_s", "squeeze", "variants",
           "wgrad"]
