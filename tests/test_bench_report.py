"""The benchmark report's statistics and rendering (bench/stats.py, bench/render.py, bench/runner.py): best-layout
numbers, best-of and paired passes from synthetic CSVs worked by hand, and the cpu-fwd subset's case order."""
import math
import os
import sys

import pytest

from fusedfire import roofline

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import firebench  # noqa: E402
import render  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402
import stats  # noqa: E402


def _by_header(cols):
    """A LayoutEntry's columns (or rates) keyed by their Markdown header."""
    return {col.header: v for col, v in cols.items()}


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

    [(title, entries)] = stats.layout_best(rows)
    assert title == "Best layout — forward (inference, no_grad), fp32"
    assert [(e.name, e.N, e.fire) for e in entries] == [
        ("1_0.features.3", 1, True), ("1_1.features.3", 1, True), ("squeezenet1_1.features", 1, False)]
    a, b, net = (_by_header(e.cols) for e in entries)
    assert (a["best eager µs"], b["best eager µs"], net["best eager µs"]) == (80, 60, 900)
    assert (a["compile ×nchw"], a["compile ×cl"], a["compile ×best-eager"]) == (1.6, 0.8, 1.6)
    assert (a["fusedfire-cpu ×nchw"], a["fusedfire-cpu ×cl"], a["fusedfire-cpu ×best-eager"],
            a["fusedfire-cpu ×best-compile"]) == (2.0, 0.5, 2.0, 1.25)
    assert (b["fusedfire-cpu ×nchw"], b["fusedfire-cpu ×cl"], b["fusedfire-cpu ×best-eager"],
            b["fusedfire-cpu ×best-compile"]) == (0.5, 1.0, 1.0, 0.5)
    assert net["fusedfire-cpu ×best-eager"] == 900 / 800 and math.isnan(net["fusedfire-cpu ×best-compile"])
    # 8 MFLOP in 40 µs = 200 GFLOP/s = 20% of 1 TFLOP/s; 3 MFLOP in 60 µs = 50 GFLOP/s = 5%
    assert _by_header(entries[0].rates) == pytest.approx({"fusedfire-cpu GFLOP/s": 200, "fusedfire-cpu %matmul": 20},
                                                rel=1e-5)

    by_n = stats.layout_stats(entries)
    assert list(by_n) == [1]  # networks and the one-layout N=8 case left out
    s = {col.header: (c.geomean, c.worst, c.worst_name) for col, c in by_n[1].items()}
    assert s["compile ×nchw"] == (pytest.approx(0.8 ** 0.5), 0.5, "1_1.features.3")
    assert s["compile ×best-eager"] == (pytest.approx(3.2 ** 0.5), 1.6, "1_0.features.3")
    assert s["fusedfire-cpu ×best-eager"] == (pytest.approx(2 ** 0.5), 1.0, "1_1.features.3")
    assert s["fusedfire-cpu ×best-compile"] == (pytest.approx(0.625 ** 0.5), 0.5, "1_1.features.3")
    assert s["fusedfire-cpu GFLOP/s"] == (pytest.approx(100, rel=1e-5), pytest.approx(50, rel=1e-5), "1_1.features.3")
    assert s["fusedfire-cpu %matmul"][0] == pytest.approx(10, rel=1e-5)

    lines = render.layout_lines(entries)
    assert lines[0] == "N=1, 2 Fire configs: geomean (worst, its config)"
    assert ("  fusedfire-cpu: ×nchw 1.00× (0.50×, 1_1.features.3), ×cl 0.71× (0.50×, 1_0.features.3), "
            "×best-eager 1.41× (1.00×, 1_1.features.3), ×best-compile 0.79× (0.50×, 1_1.features.3), "
            "GFLOP/s 100.0 (50.0, 1_1.features.3), %matmul 10% (5%, 1_1.features.3)") in lines
    assert "×best-eager 1.41× (1.00×, 1_1.features.3)" in render.summary(rows)

    md = str(tmp_path / "cpu.md")
    render.write_markdown(rows, md)
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
    best = stats.best_of(passes)
    assert [(r["group"], r["provider"], float(r["median_us"])) for r in best] == [
        ("a", "eager", 90), ("a", "ff", 50), ("b", "eager", 10), ("b", "ff", 8)]


def test_paired_takes_the_median_of_each_passes_ratio(tmp_path):
    """Three passes; eager's quiet window (pass 2) is not ours: best_of divides the fastest passes (100/100), the
    paired ratio is the median of 200/100, 100/120 and 210/110 (1.909…)."""
    times = [{"eager": 200, "fusedfire-cpu": 100}, {"eager": 100, "fusedfire-cpu": 120},
             {"eager": 210, "fusedfire-cpu": 110}]
    passes = [[_synthetic_row("1_0.features.3", 8, layout, provider, us, 1e6)
               for layout in ("nchw", "cl") for provider, us in pass_times.items()] for pass_times in times]
    [(_, [best])] = stats.layout_best(stats.best_of(passes))
    assert best.cols[stats.Col("fusedfire-cpu", "×best-eager")] == pytest.approx(1.0)
    [(title, [entry])] = stats.paired(passes)
    assert title.startswith("Best layout") and \
        entry.cols[stats.Col("fusedfire-cpu", "×best-eager")] == pytest.approx(210 / 110)
    assert entry.rates == {} and not any(col.is_time for col in entry.cols)

    csv_path = str(tmp_path / "cpu.csv")
    for i, rows in enumerate(passes):
        for row in rows:
            firebench.append_row(runner.pass_path(csv_path, i + 1), row)
    for row in stats.best_of(passes):
        firebench.append_row(csv_path, row)
    firebench.append_row(str(tmp_path / runner.PASS_DIR / "cpu.passX.csv"), passes[0][0])  # not a pass file
    passes_dir = tmp_path / runner.PASS_DIR
    assert runner.pass_paths(csv_path) == [str(passes_dir / f"cpu.pass{i}.csv") for i in (1, 2, 3)]
    assert report.build_report(csv_path, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [runner.PASS_DIR, "cpu.csv", "cpu.md", "cpu.png"]  # passes kept apart
    text = open(tmp_path / "cpu.md").read()
    assert "Paired, over the 3 passes" in text and "×best-eager 1.91× (1.91×, 1_0.features.3)" in text
    runner.clear(csv_path)
    assert not os.path.exists(csv_path) and runner.pass_paths(csv_path) == []


def test_best_anchor_is_the_fastest_engine_in_its_faster_layout(tmp_path):
    medians = {"eager": (100, 80), "onnxruntime": (50, 70), "openvino": (60, 55), "fusedfire-cpu": (45, 40)}
    csv_path = str(tmp_path / "cpu.csv")
    for layout_index, layout in enumerate(("nchw", "cl")):
        for provider, us in medians.items():
            row = _synthetic_row("1_1.features.3", 1, layout, provider, us[layout_index], 1e6)
            firebench.append_row(csv_path, row)
    [(_, [entry])] = stats.layout_best([r for r in firebench.read_rows(csv_path) if r.get("median_us")])
    cols = _by_header(entry.cols)
    assert cols["fusedfire-cpu ×best-anchor"] == 50 / 40  # onnxruntime's NCHW, fusedfire's channels_last
    assert "onnxruntime ×best-anchor" not in cols and "fusedfire-cpu ×best-compile" not in cols


@pytest.mark.skipif(not __import__("fusedfire").native.available("cpu"), reason="fusedfire._cpu not built")
def test_layer_breakdown_runs_and_marks_the_fused_passes():
    """bench/layers.py (the per-layer table of the whole network): every row timed for eager; optimize's stem and
    classifier layers "—" (one pass each, timed on their one-call rows)."""
    import layers  # noqa: E402
    rows = layers.measure("squeezenet1_1", 1, rounds=1)
    times = {label.split()[0]: t for label, t in rows}
    assert all(t["eager NCHW"] > 0 and t["eager channels_last"] > 0 for t in times.values())
    fused = [name for name, t in times.items() if math.isnan(t["fusedfire.optimize"])]
    assert fused == ["features.0", "features.1", "features.2", "classifier.0", "classifier.1", "classifier.2",
                     "classifier.3"], fused
    assert "| whole network (one call) |" in layers.render(rows, "squeezenet1_1", 1)


@pytest.mark.skipif(not __import__("fusedfire").native.available("cpu"), reason="fusedfire._cpu not built")
def test_network_ops_times_every_op_of_optimize():
    """bench/network_ops.py: squeezenet1_1's stem, eight Fires and classifier, each with its FLOPs, its time in the
    network and alone; frozen.py's op handles restored afterwards."""
    import network_ops  # noqa: E402
    from fusedfire import frozen
    before = [getattr(frozen, handle) for handle in network_ops.OPS]
    ops, whole = network_ops.measure("squeezenet1_1", 1, rounds=1)
    assert [kind for kind, *_ in ops] == ["stem"] + ["fire"] * 8 + ["classifier"]
    assert ops[-1][1] == 2 * 13 * 13 * 512 * 1000 and all(t > 0 and a > 0 for _, _, t, a in ops)
    assert whole > sum(t for _, _, t, _ in ops)
    assert [getattr(frozen, handle) for handle in network_ops.OPS] == before
    assert "| whole network |" in network_ops.render(ops, whole, "squeezenet1_1", 1)
