"""The fp32 forwards of backend "cpu" side by side, per Fire config, batch and layout, one pytest-benchmark group per
case: the 3×3 expand by im2col + one GEMM or by Winograd F(4×4, 3×3) (also where "auto" would not take it), with the
vector kernels of each ISA this CPU runs (fusedfire.native.cpu_options). This is the measurement behind the choices
of csrc/cpu/heuristics.h.

    pytest bench/test_cpu_kernels.py --benchmark-only --fire-device cpu
"""
import pytest
import torch

import firebench
import fusedfire
from fusedfire.configs import SQUEEZENET_FIRES
from fusedfire.native import cpu_isas, cpu_options

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"), reason="fusedfire._cpu not built")

SMOKE = firebench.SMOKE_FIRE.name
CONFIGS = [pytest.param(c, id=c.name, marks=[pytest.mark.smoke] if c.name == SMOKE else []) for c in SQUEEZENET_FIRES]


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("kernel", ["im2col", "winograd"])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("N", [1, 8])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_cpu_kernel(benchmark, cfg, N, layout, kernel, isa, fire_options):
    torch.manual_seed(0)
    params = [p.detach() for p in firebench.eager_fire(cfg).parameters()]  # squeeze, expand1x1, expand3x3
    x = torch.randn(N, cfg.inplanes, cfg.size, cfg.size).contiguous(memory_format=firebench.LAYOUTS[layout])

    def fire(x):
        return torch.ops.fusedfire.native_fire(x, *params)

    benchmark.group = f"{cfg.name}-N{N}-{layout}"
    benchmark.extra_info.update(kernel=kernel, isa=isa, gflops=firebench.case_cost(
        firebench.Case(cfg.name, N, "fp32", layout, "fwd", cfg.size, cfg))[0] / 1e9)
    with torch.no_grad(), cpu_options(isa=isa, winograd="on" if kernel == "winograd" else "off"):
        firebench.run_benchmark(benchmark, fire, [(x,)], "cpu", budget_s=fire_options.budget)
