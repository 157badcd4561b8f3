"""Tests of our own checkers (not benchmarks): `python -m fusedfire check` must catch a planted bug, the cost
model must match an independent count, and the report's best-layout numbers must match a synthetic CSV worked by
hand. Marked smoke: they run with `pytest bench/ --benchmark-disable -m
smoke` and are skipped under --benchmark-only."""
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import firebench
import report
from fusedfire import roofline
from fusedfire.__main__ import CHECK_SHAPES, check_case
from fusedfire.reference import fire_reference

pytestmark = pytest.mark.smoke


def _passes(results):
    return all(err <= bound for _, err, bound in results)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_check_accepts_the_reference(dtype):
    assert _passes(check_case(fire_reference, CHECK_SHAPES[0], dtype, "cpu", torch.channels_last))


def _shifted_3x3(x, wsq, bsq, w1, b1, w3, b3):
    """A planted bug: the 3×3 expand reads its input one column off (a wrong tap offset)."""
    s = F.relu(F.conv2d(x, wsq, bsq))
    e3 = F.relu(F.conv2d(torch.roll(s, 1, dims=3), w3, b3, padding=1))
    return torch.cat([F.relu(F.conv2d(s, w1, b1)), e3], 1)


def _no_relu_mask(x, wsq, bsq, w1, b1, w3, b3):
    """A planted bug in the backward only: the squeeze ReLU's mask is lost (straight-through gradient)."""
    pre = F.conv2d(x, wsq, bsq)
    s = pre + (F.relu(pre) - pre).detach()
    return torch.cat([F.relu(F.conv2d(s, w1, b1)), F.relu(F.conv2d(s, w3, b3, padding=1))], 1)


@pytest.mark.parametrize("bug", [_shifted_3x3, _no_relu_mask])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_check_catches_a_planted_bug(bug, dtype):
    results = check_case(bug, CHECK_SHAPES[2], dtype, "cpu", torch.contiguous_format)
    assert not _passes(results), results


def test_fire_flops_match_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    N, cin, s, e1, e3, hw = 2, 12, 5, 7, 9, 6
    x = torch.rand(N, cin, hw, hw)
    params = [torch.rand(s, cin, 1, 1), torch.rand(s), torch.rand(e1, s, 1, 1), torch.rand(e1),
              torch.rand(e3, s, 3, 3), torch.rand(e3)]
    with FlopCounterMode(display=False) as counter:
        fire_reference(x, *params)
    assert roofline.fire_flops(N, cin, s, e1, e3, hw, hw) == counter.get_total_flops()


def test_network_cost_counts_each_fire_by_the_fire_formula():
    torchvision = pytest.importorskip("torchvision")
    from fusedfire.configs import SQUEEZENET_FIRES
    features = torchvision.models.squeezenet1_1(weights=None).features
    x = torch.empty(2, 3, 224, 224)
    flops, nbytes = roofline.network_cost(features, x)
    fires = [c for c in SQUEEZENET_FIRES if c.name.startswith("1_1.")]
    fire_flops = sum(roofline.fire_flops(2, c.inplanes, c.squeeze_planes, c.expand1x1_planes,
                                         c.expand3x3_planes, c.size, c.size) for c in fires)
    conv1 = 2 * 2 * 64 * 111 * 111 * 3 * 9  # the stem: 3→64, 3×3 stride 2 -> 111×111
    assert flops == fire_flops + conv1
    assert nbytes > 4 * sum(2 * (c.inplanes + c.expand1x1_planes + c.expand3x3_planes) * c.size ** 2 for c in fires)


def test_info_runs():
    proc = subprocess.run([sys.executable, "-m", "fusedfire", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "backends:" in proc.stdout


def _synthetic_row(name, N, layout, provider, median_us, flops):
    """One CSV row as bench/test_fire.py writes it (derived columns from fusedfire.roofline), matmul ceiling
    1 TFLOP/s."""
    row = {"group": f"{name}-N{N}-fp32-{layout}-fwd", "name": name, "N": N, "dtype": "fp32", "layout": layout,
           "mode": "fwd", "size": 13, "provider": provider, "inputs": 2, "median_us": median_us,
           "min_us": median_us, "rounds": 15, "iterations": 1}
    row.update(roofline.derived(median_us * 1e-6, flops, 1e6, roofline.Ceilings(1e10, 1e12)))
    return {**row, **firebench.stamp("cpu")}


def test_best_layout_table_from_a_synthetic_csv(tmp_path):
    # (name, N, flops): {provider: (nchw µs, cl µs)}
    medians = {("1_0.features.3", 1, 8e6): {"eager": (100, 80), "compile": (50, 100), "fusedfire-cpu": (40, 160)},
               ("1_1.features.3", 1, 3e6): {"eager": (60, 90), "compile": (120, 30), "fusedfire-cpu": (120, 60)},
               ("squeezenet1_1.features", 1, 9e8): {"eager": (1000, 900), "fusedfire-cpu": (800, 1200)}}
    csv_path = str(tmp_path / "cpu.csv")
    for (name, N, flops), by_provider in medians.items():
        for layout_index, layout in enumerate(("nchw", "cl")):
            for provider, us in by_provider.items():
                firebench.append_row(csv_path, _synthetic_row(name, N, layout, provider, us[layout_index], flops))
    # one layout only: no best-layout entry
    firebench.append_row(csv_path, _synthetic_row("1_0.features.4", 8, "nchw", "eager", 70, 1e6))
    rows = [r for r in firebench.read_rows(csv_path) if r.get("median_us")]

    [(title, entries)] = report.layout_best(rows)
    assert title == "Best layout — forward (inference, no_grad), fp32"
    assert [(e["name"], e["N"], e["fire"]) for e in entries] == [
        ("1_0.features.3", 1, True), ("1_1.features.3", 1, True), ("squeezenet1_1.features", 1, False)]
    a, b, net = (e["cols"] for e in entries)
    assert (a["best eager µs"], b["best eager µs"], net["best eager µs"]) == (80, 60, 900)
    assert (a["compile ×nchw"], a["compile ×cl"], a["compile ×best-eager"]) == (1.6, 0.8, 1.6)
    assert (a["fusedfire-cpu ×nchw"], a["fusedfire-cpu ×cl"], a["fusedfire-cpu ×best-eager"],
            a["fusedfire-cpu ×best-compile"]) == (2.0, 0.5, 2.0, 1.25)
    assert (b["fusedfire-cpu ×nchw"], b["fusedfire-cpu ×cl"], b["fusedfire-cpu ×best-eager"],
            b["fusedfire-cpu ×best-compile"]) == (0.5, 1.0, 1.0, 0.5)
    assert net["fusedfire-cpu ×best-eager"] == 900 / 800 and math.isnan(net["fusedfire-cpu ×best-compile"])
    # 8 MFLOP in 40 µs = 200 GFLOP/s = 20% of 1 TFLOP/s; 3 MFLOP in 60 µs = 50 GFLOP/s = 5%
    assert entries[0]["rates"] == pytest.approx({"fusedfire-cpu GFLOP/s": 200, "fusedfire-cpu %matmul": 20},
                                                rel=1e-5)

    stats = report.layout_stats(entries)
    assert list(stats) == [1]  # networks and the one-layout N=8 case left out
    s = stats[1]
    assert s["compile ×nchw"] == (pytest.approx(0.8 ** 0.5), 0.5, "1_1.features.3")
    assert s["compile ×best-eager"] == (pytest.approx(3.2 ** 0.5), 1.6, "1_0.features.3")
    assert s["fusedfire-cpu ×best-eager"] == (pytest.approx(2 ** 0.5), 1.0, "1_1.features.3")
    assert s["fusedfire-cpu ×best-compile"] == (pytest.approx(0.625 ** 0.5), 0.5, "1_1.features.3")
    assert s["fusedfire-cpu GFLOP/s"] == (pytest.approx(100, rel=1e-5), pytest.approx(50, rel=1e-5), "1_1.features.3")
    assert s["fusedfire-cpu %matmul"][0] == pytest.approx(10, rel=1e-5)

    lines = report.layout_lines(entries)
    assert lines[0] == "N=1, 2 Fire configs: geomean (worst, its config)"
    assert ("  fusedfire-cpu: ×nchw 1.00× (0.50×, 1_1.features.3), ×cl 0.71× (0.50×, 1_0.features.3), "
            "×best-eager 1.41× (1.00×, 1_1.features.3), ×best-compile 0.79× (0.50×, 1_1.features.3), "
            "GFLOP/s 100.0 (50.0, 1_1.features.3), %matmul 10% (5%, 1_1.features.3)") in lines
    assert "×best-eager 1.41× (1.00×, 1_1.features.3)" in report.summary(rows)

    md = str(tmp_path / "cpu.md")
    report.write_markdown(rows, md)
    text = open(md).read()
    assert "## Best layout — forward (inference, no_grad), fp32" in text
    assert ("| squeezenet1_1.features | 1 | 1000 | 900 | 900 | – | – | – | – | – | 800 | 1200 | 1.12× | 0.75× | "
            "1.12× | – |") in text
    assert "  - fusedfire-cpu: ×nchw 1.00×" in text


def test_cpu_fwd_subset_runs_config_major_with_layout_pairs():
    from fusedfire.configs import SQUEEZENET_FIRES
    cases = [c for c, marks in firebench.cases("cpu") if "cpufwd" in marks]
    fires = [c for c in cases if c.fire is not None]
    assert len(fires) == 2 * 2 * len(SQUEEZENET_FIRES) and cases[:len(fires)] == fires  # networks last
    assert len(cases) - len(fires) == 2 * 2 * 2 * len(firebench.NETWORKS)  # features, and the whole model
    assert {(c.mode, c.dtype) for c in cases} == {("fwd", "fp32")} and {c.N for c in cases} == {1, 8}
    for nchw, cl in zip(cases[::2], cases[1::2]):
        assert (nchw.name, nchw.N, nchw.layout, cl.layout) == (cl.name, cl.N, "nchw", "cl")
    assert [c.name for c in fires[::4]] == [c.name for c in SQUEEZENET_FIRES]
    assert not any("cpufwd" in marks for _, marks in firebench.cases("cuda"))


def test_best_of_keeps_each_providers_fastest_pass():
    def row(group, provider, median):
        return {"group": group, "provider": provider, "median_us": "" if median is None else str(median)}
    passes = [[row("a", "eager", 100), row("a", "ff", 50), row("b", "eager", 10)],
              [row("a", "eager", 90), row("a", "ff", 70), row("b", "eager", None), row("b", "ff", 8)]]
    best = report.best_of(passes)
    assert [(r["group"], r["provider"], float(r["median_us"])) for r in best] == [
        ("a", "eager", 90), ("a", "ff", 50), ("b", "eager", 10), ("b", "ff", 8)]


def test_paired_takes_the_median_of_each_passes_ratio(tmp_path):
    """Three passes; eager's quiet window (pass 2) is not ours: best_of divides the fastest passes (100/100), the
    paired ratio is the median of 200/100, 100/120 and 210/110 (1.909…)."""
    times = [{"eager": 200, "fusedfire-cpu": 100}, {"eager": 100, "fusedfire-cpu": 120},
             {"eager": 210, "fusedfire-cpu": 110}]
    passes = [[_synthetic_row("1_0.features.3", 8, layout, provider, us, 1e6)
               for layout in ("nchw", "cl") for provider, us in pass_times.items()] for pass_times in times]
    [(_, [best])] = report.layout_best(report.best_of(passes))
    assert best["cols"]["fusedfire-cpu ×best-eager"] == pytest.approx(1.0)
    [(title, [entry])] = report.paired(passes)
    assert title.startswith("Best layout") and entry["cols"]["fusedfire-cpu ×best-eager"] == pytest.approx(210 / 110)
    assert entry["rates"] == {} and all("µs" not in key for key in entry["cols"])

    csv_path = str(tmp_path / "cpu.csv")
    for i, rows in enumerate(passes):
        for row in rows:
            firebench.append_row(str(tmp_path / f"cpu.pass{i + 1}.csv"), row)
    for row in report.best_of(passes):
        firebench.append_row(csv_path, row)
    firebench.append_row(str(tmp_path / "cpu.passX.csv"), passes[0][0])  # not a pass file: ignored
    assert [p[-9:] for p in report.pass_paths(csv_path)] == ["pass1.csv", "pass2.csv", "pass3.csv"]
    assert report.build_report(csv_path, str(tmp_path))
    text = open(tmp_path / "cpu.md").read()
    assert "Paired, over the 3 passes" in text and "×best-eager 1.91× (1.91×, 1_0.features.3)" in text
