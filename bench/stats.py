"""The report's statistics over the results CSV's rows (dicts, as firebench.read_rows gives them): best-of and
paired passes, and the best-layout entries (LayoutEntry) with their geomean / worst lines (layout_stats).

Speedups are ratios of medians of providers timed one after another on the same case. A --repeat run keeps, per
case and provider, the pass with the lowest median (best_of): on a shared machine a burst of load only ever adds
time. paired gives the other view: per case, the median over the passes of the ratio within each pass.
"""
import collections
import dataclasses
import math
import statistics

import firebench

MODE_TITLE = {"fwd": "forward (inference, no_grad)", "fwdbwd": "forward + backward"}
BEST_EAGER = "best eager"  # the pseudo-provider of a best-layout block: the faster of eager's layouts


@dataclasses.dataclass(frozen=True)
class Col:
    """A best-layout column: `what` (e.g. "nchw µs", "×best-eager", "GFLOP/s") of `provider`."""
    provider: str
    what: str

    @property
    def header(self) -> str:
        return f"{self.provider} {self.what}"

    @property
    def is_time(self) -> bool:
        return self.what.endswith("µs")

    @property
    def is_ratio(self) -> bool:
        return self.what.startswith("×")


@dataclasses.dataclass
class LayoutEntry:
    """One (case, N) of a best-layout block, measured in every layout. cols: the table's values in column order
    (µs per provider and layout, best eager µs, each other provider's ratios); rates: each fusedfire provider's
    GFLOP/s and % of the run's matmul FLOP/s at its faster layout (not in the table, in the lines under it)."""
    name: str
    N: int
    fire: bool  # a single Fire config (networks are left out of the geomeans)
    cols: dict  # Col -> float
    rates: dict = dataclasses.field(default_factory=dict)  # Col -> float


@dataclasses.dataclass
class ColumnStat:
    """A column's geomean over a block's Fire configs at one N, and its worst config."""
    geomean: float
    worst: float
    worst_name: str


def value(row, key) -> float:
    """A CSV field as a float (NaN when empty or missing)."""
    try:
        return float(row.get(key, "") or "nan")
    except ValueError:
        return math.nan


def finished(rows) -> list:
    """The rows of benchmarks that finished (a run stopped by --time-limit may leave some without a median)."""
    return [r for r in rows if r.get("median_us")]


def provider_order(rows) -> list:
    seen = []
    for r in rows:
        if r["provider"] not in seen:
            seen.append(r["provider"])
    order = ["eager", "compile", "compile-max-autotune"]
    return sorted(seen, key=lambda p: (order.index(p) if p in order else len(order), p))


def groups(rows):
    """{case id: {provider: row}} in first-seen order."""
    by = collections.OrderedDict()
    for r in rows:
        by.setdefault(r["group"], {})[r["provider"]] = r
    return by


def median(group, provider) -> float:
    return value(group[provider], "median_us") if provider in group else math.nan


def speedup(group, provider) -> float:
    return median(group, "eager") / median(group, provider)


def is_fire_config(name) -> bool:
    return name.startswith(("1_0.", "1_1."))


def best_of(passes) -> list:
    """Per (case, provider), the row with the lowest median over the passes (lists of CSV rows), in first-seen order;
    unfinished rows (no median) are ignored."""
    best = {}
    for rows in passes:
        for r in rows:
            key = (r["group"], r["provider"])
            if r.get("median_us") and (key not in best or value(r, "median_us") < value(best[key], "median_us")):
                best[key] = r
    return list(best.values())


def _fastest(pair, provider):
    """The smaller median of a provider's layouts of one case (NaN unless it ran in all of them)."""
    times = [median(group, provider) for group in pair.values()]
    return math.nan if any(math.isnan(t) for t in times) else min(times)


def layout_best(rows):
    """The best-layout blocks: [(title, [LayoutEntry])] per (mode, dtype), one entry per (case name, N) measured in
    every layout, Fire configs first (by N), networks last. Columns: µs per provider and layout, best eager µs
    (the faster eager layout), and per other provider P the ratios best eager / P's NCHW, channels_last and
    faster-layout medians (×nchw, ×cl, ×best-eager), and for fusedfire providers compile's faster layout / P's
    (×best-compile) and the fastest anchor's (firebench.ANCHORS: ×best-anchor). Rates: each fusedfire provider's
    GFLOP/s at its faster layout and its % of the matmul FLOP/s measured in the run (both from the row: FLOPs by
    fusedfire/roofline.py)."""
    layouts = tuple(firebench.LAYOUTS)
    providers = provider_order(rows)
    pairs = collections.OrderedDict()
    for group in groups(rows).values():
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
                cols[Col(p, f"{layout} µs")] = median(pair[layout], p)
            if p == "eager":
                cols[Col(BEST_EAGER, "µs")] = best_eager
                continue
            for layout in layouts:
                cols[Col(p, f"×{layout}")] = best_eager / cols[Col(p, f"{layout} µs")]
            fastest = _fastest(pair, p)
            cols[Col(p, "×best-eager")] = best_eager / fastest
            if p.startswith("fusedfire-"):
                if "compile" in providers:
                    cols[Col(p, "×best-compile")] = _fastest(pair, "compile") / fastest
                anchors = [_fastest(pair, a) for a in firebench.ANCHORS if a in providers]
                anchors = [t for t in anchors if not math.isnan(t)]
                if anchors:
                    cols[Col(p, "×best-anchor")] = min(anchors) / fastest
                if not math.isnan(fastest):
                    row = min((group[p] for group in pair.values()), key=lambda r: value(r, "median_us"))
                    rates[Col(p, "GFLOP/s")] = value(row, "tflops") * 1e3
                    rates[Col(p, "%matmul")] = 100 * value(row, "tflops") / value(row, "peak_tflops")
        title = f"Best layout — {MODE_TITLE.get(mode, mode)}, {dtype}"
        blocks.setdefault((mode, dtype), (title, []))[1].append(
            LayoutEntry(name, N, is_fire_config(name), cols, rates))
    for _, entries in blocks.values():
        entries.sort(key=lambda e: (not e.fire, e.N))  # stable: the run's config order within each N
    return list(blocks.values())


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
                cases.setdefault((e.name, e.N), []).append(e)
    out = []
    for title, cases in blocks.items():
        entries = []
        for (name, N), es in cases.items():
            cols = collections.OrderedDict()
            for col in es[0].cols:
                values = [e.cols[col] for e in es if not math.isnan(e.cols.get(col, math.nan))]
                if col.is_ratio and values:
                    cols[col] = statistics.median(values)
            entries.append(LayoutEntry(name, N, es[0].fire, cols))
        out.append((title, entries))
    return out


def layout_stats(entries):
    """{N: {Col: ColumnStat}} over the Fire configs (networks excluded) of a best-layout block, for every ratio
    column and rate; NaNs (a provider missing on a case) left out."""
    stats = collections.OrderedDict()
    for N in sorted({e.N for e in entries if e.fire}):
        columns = collections.OrderedDict()
        for e in entries:
            if e.fire and e.N == N:
                for col, v in list(e.cols.items()) + list(e.rates.items()):
                    if not col.is_time and not math.isnan(v):
                        columns.setdefault(col, []).append((v, e.name))
        stats[N] = collections.OrderedDict(
            (col, ColumnStat(statistics.geometric_mean([v for v, _ in vs]), *min(vs))) for col, vs in columns.items())
    return stats
