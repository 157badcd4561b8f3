"""The report's output: Markdown tables (write_markdown), the short console table (summary) and the plot
(write_plot, matplotlib), from the results CSV's rows and the statistics of stats.py."""
import collections
import math

import stats
from stats import MODE_TITLE, groups, is_fire_config, provider_order, speedup, value


def _label(gname, group):
    """A row's case label: a Fire config's name (its block fixes N, dtype and layout), else the case id (the
    networks' block mixes them)."""
    name = next(iter(group.values()))["name"]
    return name if is_fire_config(name) else gname


def _num(v, fmt="{:.2f}"):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _us(v):
    if math.isnan(v):
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def _table(head, rows):
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(cells) + " |" for cells in rows])


def timing_table(rows, providers, label):
    """Markdown: one row per group (case), per provider: median µs, speedup vs eager, % of roofline."""
    head = [label]
    for p in providers:
        head += [f"{p} µs"] + ([f"{p} ×eager"] if p != "eager" else []) + [f"{p} %roof"]
    body = []
    for gname, group in groups(rows).items():
        cells = [_label(gname, group)]
        for p in providers:
            r = group.get(p)
            cells.append(_us(value(r, "median_us")) if r else "–")
            if p != "eager":
                cells.append(_num(speedup(group, p), "{:.2f}×"))
            cells.append(_num(value(r, "pct_roofline") if r else math.nan, "{:.1f}"))
        body.append(cells)
    return _table(head, body)


def memory_table(rows, providers):
    rows = [r for r in rows if r["mode"] == "fwdbwd" and r.get("saved_bytes")]
    if not rows:
        return ""
    has_peak = any(not math.isnan(value(r, "peak_train_bytes")) for r in rows)
    head = ["case"] + [f"{p} saved MiB" for p in providers]
    if has_peak:
        head += [f"{p} peak MiB" for p in providers]
    body = []
    for gname, group in groups(rows).items():
        cells = [gname]
        for key in ("saved_bytes",) + (("peak_train_bytes",) if has_peak else ()):
            for p in providers:
                cells.append(_num(value(group[p], key) / 2 ** 20 if p in group else math.nan, "{:.2f}"))
        body.append(cells)
    return _table(head, body)


def layout_table(entries):
    """Markdown: one row per (case, N) of a best-layout block."""
    head = ["case", "N"] + [col.header for col in entries[0].cols]
    return _table(head, [[e.name, str(e.N)] + [_us(v) if col.is_time else _num(v, "{:.2f}×")
                                                for col, v in e.cols.items()] for e in entries])


def layout_lines(entries):
    """The lines under a best-layout table (and in the summary): per N, per provider, each column's geomean over
    the Fire configs and its worst config."""
    out = []
    for N, columns in stats.layout_stats(entries).items():
        count = sum(e.fire and e.N == N for e in entries)
        out.append(f"N={N}, {count} Fire configs: geomean (worst, its config)")
        by_provider = collections.OrderedDict()
        for col, s in columns.items():
            fmt = "{:.2f}×" if col.is_ratio else "{:.0f}%" if col.what.startswith("%") else "{:.1f}"
            by_provider.setdefault(col.provider, []).append(
                f"{col.what} {_num(s.geomean, fmt)} ({_num(s.worst, fmt)}, {s.worst_name})")
        out += [f"  {p}: " + ", ".join(parts) for p, parts in by_provider.items()]
    return out


def headline_blocks(rows):
    """Headline blocks: (title, rows) per (mode, N, dtype, layout) of the single-Fire configs, then the rest."""
    blocks = collections.OrderedDict()
    for r in rows:
        if is_fire_config(r["name"]):
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
            ceilings[row["dtype"]] = (f"{row['dtype']}: {value(row, 'peak_gbps'):.0f} GB/s copy, "
                                      f"{value(row, 'peak_tflops'):.3g} TFLOP/s matmul{note}")
    return [f"- device: **{r['device_name']}** ({r['device']}; {r['threads']} CPU threads)",
            f"- torch {r['torch']}, triton {r['triton'] or '–'}, CUDA {r['cuda'] or '–'}, cuDNN {r['cudnn'] or '–'}, "
            f"Python {r['python']}, fusedfire {r['fusedfire']}",
            f"- date: {min(x['date'] for x in rows)} … {max(x['date'] for x in rows)}",
            "- ceilings measured in the same run: " + ("; ".join(ceilings.values()) or "–")]


def _bullets(lines):
    """layout_lines as a Markdown list (indented lines nested)."""
    return [("  - " + line[2:]) if line.startswith("  ") else "- " + line for line in lines]


def write_markdown(rows, path, extra_notes=(), passes=()):
    providers = provider_order(rows)
    paired_lines = {title: layout_lines(entries) for title, entries in stats.paired(passes)} \
        if len(passes) > 1 else {}
    parts = [f"# Fire benchmarks: {rows[0]['device_name']}", ""] + stamp_lines(rows) + list(extra_notes) + [""]
    parts += ["Median time per call (µs); ×eager = eager median / provider median (higher is faster); %roof = "
              "roofline time / median, the roofline time being max(FLOPs / matmul FLOP/s, minimum bytes / copy "
              "bandwidth) with the formulas of `fusedfire/roofline.py`.", ""]
    for title, block in headline_blocks(rows):
        parts += [f"## {title}", "", timing_table(block, providers, "case"), ""]
    for title, entries in stats.layout_best(rows):
        parts += [f"## {title}", "",
                  "Every case measured in both layouts. best eager = the faster of eager NCHW and eager "
                  "channels_last; ×nchw, ×cl, ×best-eager = best eager µs / the provider's NCHW, channels_last, "
                  "faster-layout µs (higher is faster); ×best-compile = compile's faster layout / the provider's; "
                  "×best-anchor = the fastest of compile-freezing, ONNX Runtime and OpenVINO (each in its faster "
                  "layout; a channels_last input is copied to NCHW for the last two) / the provider's. "
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
    providers = provider_order(rows)
    out = []
    for title, block in headline_blocks(rows):
        out.append(title)
        by_case = groups(block)
        width = max(len(_label(gname, group)) for gname, group in by_case.items())
        out.append(f"{'case':<{width}}  {'eager µs':>9}  " + "  ".join(f"{p[:22]:>22}" for p in providers
                                                                        if p != "eager"))
        for gname, group in by_case.items():
            name = _label(gname, group)
            eager = value(group["eager"], "median_us") if "eager" in group else math.nan
            cells = []
            for p in providers:
                if p == "eager":
                    continue
                s = speedup(group, p)
                roof = value(group[p], "pct_roofline") if p in group else math.nan
                cells.append(f"{_num(s, '{:.2f}x'):>9} {_num(roof, '{:.1f}%'):>7} roof"
                             if not math.isnan(s) else f"{'–':>22}")
            out.append(f"{name:<{width}}  {_us(eager):>9}  " + "  ".join(f"{c:>22}" for c in cells))
        out.append("")
    for title, entries in stats.layout_best(rows):
        out += [title] + layout_lines(entries) + [""]
    return "\n".join(out)


def write_plot(rows, path, title):
    """Per headline block of Fire configs: speedup vs eager and % of roofline per provider. False (no file) when
    matplotlib is not installed or no block has a Fire config."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is not installed; no plot", flush=True)
        return False
    blocks = [(t, b) for t, b in headline_blocks(rows) if t.startswith("Fire configs")]
    if not blocks:
        return False
    providers = provider_order(rows)
    fig, axes = plt.subplots(len(blocks), 2, figsize=(16, 4.5 * len(blocks)), squeeze=False)
    for (btitle, block), (ax_s, ax_r) in zip(blocks, axes):
        cases = list(groups(block).values())
        names = [next(iter(g.values()))["name"] for g in cases]
        xs = range(len(cases))
        others = [p for p in providers if p != "eager"]
        width = 0.8 / max(1, len(others))
        for i, p in enumerate(others):
            ax_s.bar([x + i * width for x in xs], [speedup(g, p) for g in cases], width, label=p)
        ax_s.axhline(1.0, color="k", lw=0.8)
        ax_s.set_ylabel("speedup vs eager (×)")
        width = 0.8 / max(1, len(providers))
        for i, p in enumerate(providers):
            ax_r.bar([x + i * width for x in xs], [value(g[p], "pct_roofline") if p in g else math.nan for g in cases],
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
