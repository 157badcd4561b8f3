"""The fp32 forwards of backend "cpu" side by side, per Fire config, batch and layout, one pytest-benchmark group per
case: fusedfire's AVX-512 micro-kernel ($FUSEDFIRE_CPU_KERNEL=avx512), and the BLAS GEMMs with the 3×3 expand by
im2col ($FUSEDFIRE_CPU_WINOGRAD=0) or by Winograd (=1, also where "auto" would not). This is the measurement behind
the choices "auto" makes in csrc/fire_cpu.cpp (use_avx512, use_winograd).

    pytest bench/test_cpu_kernels.py --benchmark-only --fire-device cpu
"""
import pytest
import torch

import firebench
import fusedfire
from fusedfire.configs import SQUEEZENET_FIRES

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"), reason="fusedfire._cpu not built")

SMOKE = firebench.SMOKE_FIRE.name
CONFIGS = [pytest.param(c, id=c.name, marks=[pytest.mark.smoke] if c.name == SMOKE else []) for c in SQUEEZENET_FIRES]


@pytest.mark.parametrize("kernel", ["avx512", "im2col", "winograd"])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("N", [1, 8])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_cpu_kernel(benchmark, cfg, N, layout, kernel, fire_options, monkeypatch):
    monkeypatch.setenv("FUSEDFIRE_CPU_KERNEL", "avx512" if kernel == "avx512" else "blas")
    monkeypatch.setenv("FUSEDFIRE_CPU_WINOGRAD", "1" if kernel == "winograd" else "0")
    torch.manual_seed(0)
    params = [p.detach() for p in firebench.eager_fire(cfg).parameters()]  # squeeze, expand1x1, expand3x3
    x = torch.randn(N, cfg.inplanes, cfg.size, cfg.size).contiguous(memory_format=firebench.LAYOUTS[layout])

    def fire(x):
        return torch.ops.fusedfire.native_fire(x, *params)

    try:
        fire(x)
    except RuntimeError as e:
        if "has no AVX-512" in str(e):
            pytest.skip("this CPU or build has no AVX-512")
        raise
    benchmark.group = f"{cfg.name}-N{N}-{layout}"
    benchmark.extra_info.update(kernel=kernel, gflops=firebench.case_cost(
        firebench.Case(cfg.name, N, "fp32", layout, "fwd", cfg.size, cfg))[0] / 1e9)
    with torch.no_grad():
        firebench.run_benchmark(benchmark, fire, [(x,)], "cpu", budget_s=fire_options.budget)
