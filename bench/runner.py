"""The report's benchmark runs: bench/ under a child pytest that appends one CSV row per finished benchmark, so a
run stopped by --time-limit still reports what it measured. A --repeat run writes each pass to its own CSV in
PASS_DIR beside the report (git ignores it: the committed results are the best-of CSV, its Markdown and plot)."""
import glob
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SUBSETS = {"quick": "quick", "smoke": "smoke", "cpu-fwd": "cpufwd", "full": None}  # --subset -> pytest marker
PASS_DIR = ".passes"


def pytest_command(args, csv_path) -> list:
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
    return cmd


def run_pytest(args, csv_path) -> int:
    """The benchmarks, in a child pytest writing rows to csv_path; stopped (keeping its rows) at --time-limit."""
    cmd = pytest_command(args, csv_path)
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


def pass_path(csv_path, i) -> str:
    """Where pass i (1-based) of a --repeat run writes: PASS_DIR/<slug>.pass<i>.csv beside csv_path."""
    folder, name = os.path.split(os.path.abspath(csv_path))
    return os.path.join(folder, PASS_DIR, f"{name[:-len('.csv')]}.pass{i}.csv")


def pass_paths(csv_path) -> list:
    """The per-pass CSVs of a --repeat run of csv_path that exist, in pass order."""
    stem = pass_path(csv_path, 0)[:-len("0.csv")]
    paths = glob.glob(glob.escape(stem) + "*.csv")
    return sorted((p for p in paths if p[len(stem):-len(".csv")].isdigit()), key=lambda p: int(p[len(stem):-4]))


def clear(csv_path):
    """Removes an earlier run's CSV and passes (they would join this run's in the report)."""
    for path in [csv_path] + pass_paths(csv_path):
        if os.path.exists(path):
            os.remove(path)
