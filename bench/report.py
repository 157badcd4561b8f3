"""Runs a subset of the Fire benchmarks and writes bench/results/<device>.csv, <device>.md and <device>.png.

    python bench/report.py                        quick subset on this machine's device (also: python -m fusedfire bench)
    python bench/report.py --subset full          the whole matrix (hours on a GPU with max-autotune)
    python bench/report.py --subset cpu-fwd       CPU inference in NCHW and channels_last: the best-layout table
    python bench/report.py --repeat 3             every case 3 times: per case and provider, the fastest pass
    python bench/report.py --from-csv X.csv       rebuild the Markdown and the plot from an existing CSV
    python bench/report.py --from-csv X.csv --summary    print the short headline table only

Timings come from pytest-benchmark (bench/test_fire.py), one CSV row per finished benchmark, so a run stopped by
--time-limit still reports what it measured. The ceilings (copy bandwidth, matmul FLOP/s) are measured on the
device in the same run; speedups are ratios of medians of providers timed one after another on the same case.
With --repeat K the whole subset runs K times (<device>.passI.csv) and <device>.csv keeps, per case and provider, the
pass with the lowest median: on a shared machine a burst of load only ever adds time, and a burst during one
provider's half-second window would otherwise decide that case's ratio. The best-layout blocks then also give the
paired ratios (see paired): per case the median over the passes of the ratio within each pass.
"""
import argparse
import collections
import glob
import math
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (HERE, ROOT) if p not in sys.path]

SUBSETS = {"quick": "quick", "smoke": "smoke", "cpu-fwd": "cpufwd", "full": None}
MODE_TITLE = {"fwd": "forward (inference, no_grad)", "fwdbwd": "forward + backward"}


def run_pytest(args, csv_path) -> int:
    """The benchmarks, in a child pytest writing rows to csv_path; stopped (keeping its rows) at --time-limit."""
    cmd = [sys.executable, "-m", "pytest", HERE, "--benchmark-only", "-q", "-p", "no:cacheprovider",
           "--fire-csv", csv_path, "--benchmark-columns=min,median,iqr,rounds,iterations",
           "--benchmark-sort=name"]
    marker = SUBSETS[args.subset]
    if marker:
        cmd += ["-m", marker]
    for flag, value in (("--fire-device", args.device), ("--fire-budget", args.budget),
                        ("--fire-providers", args.providers), ("--fire-threads", args.threads),
                        ("--fire-cpu-isa", args.cpu_isa), ("-k", args.k)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.tiny:
        cmd.append("--fire-tiny")
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        return proc.wait(timeout=args.time_limit)
    except subprocess.TimeoutExpired:
        print(f"report: benchmarks stopped at --time-limit {args.time_limit}s; reporting the rows finished",
              flush=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124


def best_of(passes) -> list:
    """Per (case, provider), the row with the lowest median over the passes (lists of CSV rows), in first-seen order;
    unfinished rows (no median) are ignored."""
    best = {}
    for rows in passes:
        for r in rows:
            key = (r["group"], r["provider"])
            if r.get("median_us") and (key not in best or _f(r, "median_us") < _f(best[key], "median_us")):
                best[key] = r
    return list(best.values())


def paired(passes) -> list:
    """Best-layout blocks like layout_best's, whose ratio columns are, per case, the median over the passes of the
    ratio within each pass (the providers of one case run seconds apart in a pass), where best_of's ratios divide
    each provider's fastest pass: on a shared machine the two can differ by 10% (a quiet window that reached only
    one provider). Cases or columns missing from every pass are left out."""
    blocks = collections.OrderedDict()
    for rows in passes:
        for title, entries in layout_best(rows):
            cases = blocks.setdefault(title, collections.OrderedDict())
            for e in entries:
                cases.setdefault((e["name"], e["N"]), []).append(e)
    out = []
    for title, cases in blocks.items():
        entries = []
        for (name, N), es in cases.items():
            cols = collections.OrderedDict()
            for key in es[0]["cols"]:
                values = [e["cols"][key] for e in es if not math.isnan(e["cols"].get(key, math.nan))]
                if "×" in key and values:
                    cols[key] = statistics.median(values)
            entries.append(dict(name=name, N=N, fire=es[0]["fire"], cols=cols, rates={}))
        out.append((title, entries))
    return out


# ------------------------------------------------------------------------------------------------ tables

def _f(row, key):
    try:
        v = float(row.get(key, "") or "nan")
    except ValueError:
        return math.nan
    return v


def _provider_order(rows):
    seen = []
    for r in rows:
        if r["provider"] not in seen:
            seen.append(r["provider"])
    order = ["eager", "compile", "compile-max-autotune"]
    return sorted(seen, key=lambda p: (order.index(p) if p in order else len(order), p))


def _groups(rows):
    by = collections.OrderedDict()
    for r in rows:
        by.setdefault(r["group"], {})[r["provider"]] = r
    return by


def _median(group, provider):
    return _f(group[provider], "median_us") if provider in group else math.nan


def _speedup(group, provider):
    return _median(group, "eager") / _median(group, provider)


def _is_fire_config(name):
    return name.startswith(("1_0.", "1_1."))


def _label(gname, group):
    """A row's case label: a Fire config's name (its block fixes N, dtype and layout), else the case id (the
    networks' block mixes them)."""
    name = next(iter(group.values()))["name"]
    return name if _is_fire_config(name) else gname


def _num(v, fmt="{:.2f}"):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _us(v):
    if math.isnan(v):
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def timing_table(rows, providers, label):
    """Markdown: one row per group (case), per provider: median µs, speedup vs eager, % of roofline."""
    head = [label]
    for p in providers:
        head += [f"{p} µs"] + ([f"{p} ×eager"] if p != "eager" else []) + [f"{p} %roof"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for gname, group in _groups(rows).items():
        cells = [_label(gname, group)]
        for p in providers:
            r = group.get(p)
            cells.append(_us(_f(r, "median_us")) if r else "–")
            if p != "eager":
                cells.append(_num(_speedup(group, p), "{:.2f}×"))
            cells.append(_num(_f(r, "pct_roofline") if r else math.nan, "{:.1f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(rows, providers):
    rows = [r for r in rows if r["mode"] == "fwdbwd" and r.get("saved_bytes")]
    if not rows:
        return ""
    has_peak = any(not math.isnan(_f(r, "peak_train_bytes")) for r in rows)
    head = ["case"] + [f"{p} saved MiB" for p in providers]
    if has_peak:
        head += [f"{p} peak MiB" for p in providers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for gname, group in _groups(rows).items():
        cells = [gname]
        for key in ("saved_bytes",) + (("peak_train_bytes",) if has_peak else ()):
            for p in providers:
                cells.append(_num(_f(group[p], key) / 2 ** 20 if p in group else math.nan, "{:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fastest(pair, provider):
    """The smaller median of a provider's layouts of one case (NaN unless it ran in all of them)."""
    times = [_median(group, provider) for group in pair.values()]
    return math.nan if any(math.isnan(t) for t in times) else min(times)


def layout_best(rows):
    """The best-layout blocks: [(title, entries)] per (mode, dtype), one entry per (case name, N) measured in
    every layout, Fire configs first (by N), networks last. entry["cols"] holds the table's values by header:
    µs per provider and layout, "best eager µs" (the faster eager layout), and per other provider P the ratios
    best eager / P's NCHW, channels_last and faster-layout medians ("P ×nchw", "P ×cl", "P ×best-eager"), and
    for fusedfire providers compile's faster layout / P's ("P ×best-compile"); entry["rates"] holds each
    fusedfire provider's GFLOP/s at its faster layout and its % of the matmul FLOP/s measured in the run (both
    from the row: FLOPs by fusedfire/roofline.py)."""
    import firebench
    layouts = tuple(firebench.LAYOUTS)
    providers = _provider_order(rows)
    pairs = collections.OrderedDict()
    for group in _groups(rows).values():
        r = next(iter(group.values()))
        pairs.setdefault((r["mode"], r["dtype"], r["name"], int(r["N"])), {})[r["layout"]] = group
    blocks = collections.OrderedDict()
    for (mode, dtype, name, N), pair in pairs.items():
        if set(pair) != set(layouts):
            continue
        pair = {layout: pair[layout] for layout in layouts}
        cols, rates = collections.OrderedDict(), collections.OrderedDict()
        best_eager = _fastest(pair, "eager")
        for p in providers:
            for layout in layouts:
                cols[f"{p} {layout} µs"] = _median(pair[layout], p)
            if p == "eager":
                cols["best eager µs"] = best_eager
                continue
            for layout in layouts:
                cols[f"{p} ×{layout}"] = best_eager / cols[f"{p} {layout} µs"]
            fastest = _fastest(pair, p)
            cols[f"{p} ×best-eager"] = best_eager / fastest
            if p.startswith("fusedfire-"):
                if "compile" in providers:
                    cols[f"{p} ×best-compile"] = _fastest(pair, "compile") / fastest
                if not math.isnan(fastest):
                    row = min((group[p] for group in pair.values()), key=lambda r: _f(r, "median_us"))
                    rates[f"{p} GFLOP/s"] = _f(row, "tflops") * 1e3
                    rates[f"{p} %matmul"] = 100 * _f(row, "tflops") / _f(row, "peak_tflops")
        title = f"Best layout — {MODE_TITLE.get(mode, mode)}, {dtype}"
        blocks.setdefault((mode, dtype), (title, []))[1].append(
            dict(name=name, N=N, fire=_is_fire_config(name), cols=cols, rates=rates))
    for _, entries in blocks.values():
        entries.sort(key=lambda e: (not e["fire"], e["N"]))  # stable: the run's config order within each N
    return list(blocks.values())


def layout_table(entries):
    """Markdown: one row per (case, N) of a best-layout block."""
    head = ["case", "N"] + list(entries[0]["cols"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        cells = [e["name"], str(e["N"])] + [_us(v) if key.endswith("µs") else _num(v, "{:.2f}×")
                                            for key, v in e["cols"].items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def layout_stats(entries):
    """{N: {column: (geomean, worst, worst's case)}} over the Fire configs (networks excluded) of a best-layout
    block, for every ratio column and rate; NaNs (a provider missing on a case) left out."""
    stats = collections.OrderedDict()
    for N in sorted({e["N"] for e in entries if e["fire"]}):
        fires = [e for e in entries if e["fire"] and e["N"] == N]
        columns = collections.OrderedDict()
        for e in fires:
            for key, v in list(e["cols"].items()) + list(e["rates"].items()):
                if "µs" not in key and not math.isnan(v):
                    columns.setdefault(key, []).append((v, e["name"]))
        stats[N] = collections.OrderedDict(
            (key, (statistics.geometric_mean([v for v, _ in vs]),) + min(vs)) for key, vs in columns.items())
    return stats


def layout_lines(entries):
    """The lines under a best-layout table (and in --summary): per N, per provider, each column's geomean over
    the Fire configs and its worst config."""
    out = []
    for N, columns in layout_stats(entries).items():
        count = sum(e["fire"] and e["N"] == N for e in entries)
        out.append(f"N={N}, {count} Fire configs: geomean (worst, its config)")
        by_provider = collections.OrderedDict()
        for key, (gm, worst, name) in columns.items():
            provider, what = key.split(" ", 1)
            fmt = "{:.2f}×" if what.startswith("×") else "{:.0f}%" if what.startswith("%") else "{:.1f}"
            by_provider.setdefault(provider, []).append(f"{what} {_num(gm, fmt)} ({_num(worst, fmt)}, {name})")
        out += [f"  {p}: " + ", ".join(parts) for p, parts in by_provider.items()]
    return out


def _split(rows):
    """Headline blocks: (title, rows) per (mode, N, dtype, layout) of the single-Fire configs, then the rest."""
    blocks = collections.OrderedDict()
    for r in rows:
        if _is_fire_config(r["name"]):
            key = (r["mode"], r["N"], r["dtype"], r["layout"])
            title = f"Fire configs — {MODE_TITLE.get(r['mode'], r['mode'])}, N={r['N']}, {r['dtype']}, {r['layout']}"
        else:
            key = ("zz", "other")
            title = "Whole networks and KernelBench"
        blocks.setdefault(key, (title, []))[1].append(r)
    return list(blocks.values())


def stamp_lines(rows):
    r = rows[0]
    ceilings = collections.OrderedDict()
    for row in rows:
        if row.get("peak_gbps"):
            note = f" ({row['ceiling_note']})" if row.get("ceiling_note") else ""
            ceilings[row["dtype"]] = (f"{row['dtype']}: {_f(row, 'peak_gbps'):.0f} GB/s copy, "
                                      f"{_f(row, 'peak_tflops'):.3g} TFLOP/s matmul{note}")
    return [f"- device: **{r['device_name']}** ({r['device']}; {r['threads']} CPU threads)",
            f"- torch {r['torch']}, triton {r['triton'] or '–'}, CUDA {r['cuda'] or '–'}, cuDNN {r['cudnn'] or '–'}, "
            f"Python {r['python']}, fusedfire {r['fusedfire']}",
            f"- date: {min(x['date'] for x in rows)} … {max(x['date'] for x in rows)}",
            "- ceilings measured in the same run: " + ("; ".join(ceilings.values()) or "–")]


def _bullets(lines):
    """layout_lines as a Markdown list (indented lines nested)."""
    return [("  - " + line[2:]) if line.startswith("  ") else "- " + line for line in lines]


def write_markdown(rows, path, extra_notes=(), passes=()):
    providers = _provider_order(rows)
    paired_lines = {title: layout_lines(entries) for title, entries in paired(passes)} if len(passes) > 1 else {}
    parts = [f"# Fire benchmarks: {rows[0]['device_name']}", ""] + stamp_lines(rows) + list(extra_notes) + [""]
    parts += ["Median time per call (µs); ×eager = eager median / provider median (higher is faster); %roof = "
              "roofline time / median, the roofline time being max(FLOPs / matmul FLOP/s, minimum bytes / copy "
              "bandwidth) with the formulas of `fusedfire/roofline.py`.", ""]
    for title, block in _split(rows):
        parts += [f"## {title}", "", timing_table(block, providers, "case"), ""]
    for title, entries in layout_best(rows):
        parts += [f"## {title}", "",
                  "Every case measured in both layouts. best eager = the faster of eager NCHW and eager "
                  "channels_last; ×nchw, ×cl, ×best-eager = best eager µs / the provider's NCHW, channels_last, "
                  "faster-layout µs (higher is faster); ×best-compile = compile's faster layout / the provider's. "
                  "Geomeans over the Fire configs (networks excluded); GFLOP/s = FLOPs / median at the provider's "
                  "faster layout, %matmul = that over the matmul FLOP/s measured in the run.", "",
                  layout_table(entries), ""]
        parts += _bullets(layout_lines(entries))
        if paired_lines.get(title):
            parts += ["", f"Paired, over the {len(passes)} passes: per case the median of the ratio measured within "
                      "each pass (the providers of a case run seconds apart), instead of the ratio of each "
                      "provider's fastest pass above:", ""]
            parts += _bullets(paired_lines[title])
        parts.append("")
    mem = memory_table(rows, providers)
    if mem:
        parts += ["## Training memory (forward + backward)", "",
                  "saved = bytes autograd keeps for backward (saved_tensors_hooks; each storage once, parameters "
                  "excluded); peak = CUDA peak allocated during one step above what was allocated before it.", "",
                  mem, ""]
    with open(path, "w") as f:
        f.write("\n".join(parts))


def summary(rows) -> str:
    """The short table printed last: per Fire config of the first headline block(s), each provider's ×eager and
    % of roofline; then the best-layout geomean/worst lines where a case ran in both layouts."""
    providers = _provider_order(rows)
    out = []
    for title, block in _split(rows):
        out.append(title)
        groups = _groups(block)
        width = max(len(_label(gname, group)) for gname, group in groups.items())
        out.append(f"{'case':<{width}}  {'eager µs':>9}  " + "  ".join(f"{p[:22]:>22}" for p in providers
                                                                        if p != "eager"))
        for gname, group in groups.items():
            name = _label(gname, group)
            eager = _f(group["eager"], "median_us") if "eager" in group else math.nan
            cells = []
            for p in providers:
                if p == "eager":
                    continue
                s = _speedup(group, p)
                roof = _f(group[p], "pct_roofline") if p in group else math.nan
                cells.append(f"{_num(s, '{:.2f}x'):>9} {_num(roof, '{:.1f}%'):>7} roof"
                             if not math.isnan(s) else f"{'–':>22}")
            out.append(f"{name:<{width}}  {_us(eager):>9}  " + "  ".join(f"{c:>22}" for c in cells))
        out.append("")
    for title, entries in layout_best(rows):
        out += [title] + layout_lines(entries) + [""]
    return "\n".join(out)


def write_plot(rows, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is not installed; no plot", flush=True)
        return False
    blocks = [(t, b) for t, b in _split(rows) if t.startswith("Fire configs")]
    if not blocks:
        return False
    providers = _provider_order(rows)
    fig, axes = plt.subplots(len(blocks), 2, figsize=(16, 4.5 * len(blocks)), squeeze=False)
    for (btitle, block), (ax_s, ax_r) in zip(blocks, axes):
        groups = list(_groups(block).values())
        names = [next(iter(g.values()))["name"] for g in groups]
        xs = range(len(groups))
        others = [p for p in providers if p != "eager"]
        width = 0.8 / max(1, len(others))
        for i, p in enumerate(others):
            ax_s.bar([x + i * width for x in xs], [_speedup(g, p) for g in groups], width, label=p)
        ax_s.axhline(1.0, color="k", lw=0.8)
        ax_s.set_ylabel("speedup vs eager (×)")
        width = 0.8 / max(1, len(providers))
        for i, p in enumerate(providers):
            ax_r.bar([x + i * width for x in xs], [_f(g[p], "pct_roofline") if p in g else math.nan for g in groups],
                     width, label=p)
        ax_r.set_ylabel("% of measured roofline")
        for ax in (ax_s, ax_r):
            ax.set_xticks([x + 0.4 - width / 2 for x in xs])
            ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
            ax.set_title(btitle, fontsize=9)
            ax.legend(fontsize=7)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def pass_paths(csv_path):
    """The per-pass CSVs of a --repeat run beside csv_path (<slug>.pass1.csv, …), in pass order."""
    stem = csv_path[:-len(".csv")] + ".pass"
    paths = glob.glob(glob.escape(stem) + "*.csv")
    return sorted((p for p in paths if p[len(stem):-len(".csv")].isdigit()), key=lambda p: int(p[len(stem):-4]))


def build_report(csv_path, out_dir, extra_notes=()):
    import firebench
    rows = [r for r in firebench.read_rows(csv_path) if r.get("median_us")]
    if not rows:
        print(f"report: no finished benchmark in {csv_path}", flush=True)
        return False
    base = os.path.splitext(os.path.basename(csv_path))[0]
    md, png = os.path.join(out_dir, base + ".md"), os.path.join(out_dir, base + ".png")
    passes = [[r for r in firebench.read_rows(path) if r.get("median_us")] for path in pass_paths(csv_path)]
    r = rows[0]
    title = (f"fusedfire Fire benchmarks — {r['device_name']} — torch {r['torch']}, triton {r['triton'] or '–'}, "
             f"CUDA {r['cuda'] or '–'} — {r['date'][:10]}")
    if write_plot(rows, png, title):
        extra_notes = list(extra_notes) + [f"- plot: `{os.path.basename(png)}`"]
    write_markdown(rows, md, extra_notes, passes)  # passes: a --repeat run's every pass, for the paired ratios
    print(f"report: wrote {csv_path}, {md}" + (f", {png}" if os.path.exists(png) else ""), flush=True)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", choices=sorted(SUBSETS), default="quick")
    parser.add_argument("--device", default=None,
                        help="cuda or cpu (default: cuda if available; cpu for --subset cpu-fwd)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder (default bench/results)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed rounds per benchmark")
    parser.add_argument("--providers", default=None, help="comma-separated providers to keep")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--cpu-isa", default=None, help="the cpu backend's vector ISA (default: the best this CPU "
                        "runs); see bench/conftest.py --fire-cpu-isa")
    parser.add_argument("-k", default=None, help="pytest -k expression to narrow the cases")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop the benchmarks after this many s (per pass with --repeat)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the subset this many times; per case and provider keep the fastest pass")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the pipeline, measures nothing")
    parser.add_argument("--from-csv", default=None, help="no benchmarks: rebuild the report from this CSV")
    parser.add_argument("--summary", action="store_true", help="print the short headline table (with --from-csv)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")

    if args.from_csv:
        import firebench
        if args.summary:
            rows = [r for r in firebench.read_rows(args.from_csv) if r.get("median_us")]
            print(summary(rows) if rows else f"no finished benchmark in {args.from_csv}")
            return 0 if rows else 1
        return 0 if build_report(args.from_csv, os.path.dirname(os.path.abspath(args.from_csv))) else 1

    import torch
    import firebench
    import fusedfire.native
    default = "cpu" if args.subset == "cpu-fwd" else "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device or default)
    args.device = str(device)
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, firebench.device_slug(device) + ".csv")
    for path in [csv_path] + pass_paths(csv_path):  # an earlier run's passes would join this one's in the report
        if os.path.exists(path):
            os.remove(path)
    notes = [f"- subset: `{args.subset}`" + (" (tiny: pipeline check, not a measurement)" if args.tiny else "")]
    if device.type == "cpu" and hasattr(os, "getloadavg"):
        notes.append(f"- load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
                     "(a shared machine: compare providers within a row, not across runs)")
    if device.type == "cpu":
        limits = {v: os.environ[v] for v in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
                  if os.environ.get(v)}
        notes.append(f"- fusedfire cpu ISA: {args.cpu_isa or (fusedfire.native.cpu_isas() or ['not built'])[0]}" +
                     (f"; {', '.join(f'{k}={v}' for k, v in limits.items())}" if limits else ""))
    t0 = time.time()
    if args.repeat == 1:
        rc = run_pytest(args, csv_path)
    else:
        rc, passes = 0, []
        for i in range(args.repeat):
            path = csv_path[:-len(".csv")] + f".pass{i + 1}.csv"
            rc = run_pytest(args, path) or rc
            if os.path.exists(path):
                passes.append(firebench.read_rows(path))
        for row in best_of(passes):
            firebench.append_row(csv_path, row)
        notes.append(f"- best of {args.repeat} passes: per case and provider the pass with the lowest median "
                     f"(`{os.path.basename(csv_path)[:-4]}.pass*.csv` hold every pass)")
    notes.append(f"- benchmark wall time: {time.time() - t0:.0f} s; pytest exit code {rc}")
    if not os.path.exists(csv_path) or not build_report(csv_path, args.out, notes):
        return rc or 1
    print(summary([r for r in firebench.read_rows(csv_path) if r.get("median_us")]), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
