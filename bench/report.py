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
With --repeat K the whole subset runs K times (.passes/<device>.passI.csv, not committed) and <device>.csv keeps, per
case and provider, the pass with the lowest median: on a shared machine a burst of load only ever adds time, and a
burst during one provider's half-second window would otherwise decide that case's ratio. The best-layout blocks then
also give the paired ratios (stats.paired): per case the median over the passes of the ratio within each pass.

The jobs: runner.py runs the benchmarks, stats.py computes best-of, paired and best-layout figures, render.py
writes the Markdown, the summary and the plot; this file is the command line.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (HERE, ROOT) if p not in sys.path]

import firebench  # noqa: E402
import render  # noqa: E402
import runner  # noqa: E402
import stats  # noqa: E402


def build_report(csv_path, out_dir, extra_notes=()):
    """<slug>.md and <slug>.png in out_dir from <slug>.csv (and its passes, where a --repeat run left them)."""
    rows = stats.finished(firebench.read_rows(csv_path))
    if not rows:
        print(f"report: no finished benchmark in {csv_path}", flush=True)
        return False
    base = os.path.splitext(os.path.basename(csv_path))[0]
    md, png = os.path.join(out_dir, base + ".md"), os.path.join(out_dir, base + ".png")
    passes = [stats.finished(firebench.read_rows(path)) for path in runner.pass_paths(csv_path)]
    r = rows[0]
    title = (f"fusedfire Fire benchmarks — {r['device_name']} — torch {r['torch']}, triton {r['triton'] or '–'}, "
             f"CUDA {r['cuda'] or '–'} — {r['date'][:10]}")
    if render.write_plot(rows, png, title):
        extra_notes = list(extra_notes) + [f"- plot: `{os.path.basename(png)}`"]
    render.write_markdown(rows, md, extra_notes, passes)  # passes: a --repeat run's every pass, for the paired ratios
    print(f"report: wrote {csv_path}, {md}" + (f", {png}" if os.path.exists(png) else ""), flush=True)
    return True


def _notes(args, device) -> list:
    """The run's conditions, listed under the device in the Markdown."""
    notes = [f"- subset: `{args.subset}`" + (" (tiny: pipeline check, not a measurement)" if args.tiny else "")]
    if device.type == "cpu" and hasattr(os, "getloadavg"):
        notes.append(f"- load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
                     "(a shared machine: compare providers within a row, not across runs)")
    if device.type == "cpu":
        import fusedfire.native
        limits = {v: os.environ[v] for v in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
                  if os.environ.get(v)}
        notes.append(f"- fusedfire cpu ISA: {args.cpu_isa or (fusedfire.native.cpu_isas() or ['not built'])[0]}" +
                     (f"; {', '.join(f'{k}={v}' for k, v in limits.items())}" if limits else ""))
    return notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", choices=sorted(runner.SUBSETS), default="quick")
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
        if args.summary:
            rows = stats.finished(firebench.read_rows(args.from_csv))
            print(render.summary(rows) if rows else f"no finished benchmark in {args.from_csv}")
            return 0 if rows else 1
        return 0 if build_report(args.from_csv, os.path.dirname(os.path.abspath(args.from_csv))) else 1

    import torch
    default = "cpu" if args.subset == "cpu-fwd" else "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device or default)
    args.device = str(device)
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, firebench.device_slug(device) + ".csv")
    runner.clear(csv_path)
    notes = _notes(args, device)
    t0 = time.time()
    if args.repeat == 1:
        rc = runner.run_pytest(args, csv_path)
    else:
        rc, passes = 0, []
        for i in range(args.repeat):
            path = runner.pass_path(csv_path, i + 1)
            rc = runner.run_pytest(args, path) or rc
            if os.path.exists(path):
                passes.append(firebench.read_rows(path))
        for row in stats.best_of(passes):
            firebench.append_row(csv_path, row)
        notes.append(f"- best of {args.repeat} passes: per case and provider the pass with the lowest median "
                     f"(each pass in `{runner.PASS_DIR}/`, not committed)")
    notes.append(f"- benchmark wall time: {time.time() - t0:.0f} s; pytest exit code {rc}")
    if not os.path.exists(csv_path) or not build_report(csv_path, args.out, notes):
        return rc or 1
    print(render.summary(stats.finished(firebench.read_rows(csv_path))), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
