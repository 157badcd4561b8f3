"""Fire benchmarks: every case (a Fire config, a whole SqueezeNet `features`, KernelBench 17/18) × provider
(eager, torch.compile, fusedfire per backend), grouped by case so the providers sit side by side.
extra_info carries FLOPs, minimum bytes, GB/s, TFLOP/s and % of the measured roofline (fusedfire/roofline.py),
and for forward + backward the activation bytes saved for backward and (CUDA) the peak memory of a step."""
import math

import torch

import firebench
from fusedfire import roofline


def test_fire(benchmark, case, provider, fire_options):
    device = fire_options.device
    torch.manual_seed(0)  # same weights for every provider of a case
    model = firebench.build(provider, case, device)
    torch.manual_seed(1)  # same inputs for every provider of a case
    inputs = firebench.make_inputs(case, device)
    step = firebench.step_fn(case, model)

    benchmark.group = case.id
    benchmark.extra_info.update(provider=provider, inputs=len(inputs))
    firebench.run_benchmark(benchmark, step, inputs, device, budget_s=fire_options.budget)

    row = {"group": case.id, "provider": provider, "inputs": len(inputs),
           **{f: getattr(case, f) for f in ("name", "N", "dtype", "layout", "mode", "size")}}
    flops, nbytes = firebench.case_cost(case)
    if case.mode == "fwdbwd":
        params = list(model.parameters())
        row["saved_bytes"] = firebench.saved_activation_bytes(step, inputs[0], params)
        row["peak_train_bytes"] = firebench.peak_training_bytes(step, inputs[0], device)
    if benchmark.disabled:  # smoke run: the cost model still ran once
        assert flops > 0 and nbytes > 0
        return

    stats = benchmark.stats.stats
    ceilings = roofline.measure_ceilings(device, firebench.DTYPES[case.dtype], tiny=fire_options.tiny)
    row.update(roofline.derived(stats.median, flops, nbytes, ceilings), ceiling_note=ceilings.note,
               median_us=stats.median * 1e6, min_us=stats.min * 1e6, iqr_us=stats.iqr * 1e6,
               mean_us=stats.mean * 1e6, stddev_us=stats.stddev * 1e6, rounds=stats.rounds,
               iterations=benchmark.stats.iterations)
    benchmark.extra_info.update({k: v for k, v in row.items() if k not in ("group", "provider")
                                 and not (isinstance(v, float) and math.isnan(v))})
    if fire_options.csv:
        firebench.append_row(fire_options.csv, {**row, **firebench.stamp(device)})
