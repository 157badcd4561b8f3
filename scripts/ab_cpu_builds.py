"""A/B of the cpu backend between a git revision and this checkout, in one process, interleaved: the revision's
csrc/cpu/ is built (into a temp dir, its ops registered as fusedfire_before::native_*) next to the installed
fusedfire._cpu, and both run the same calls of the native ops (forward: native_fire; training: native_fire_fwd +
native_fire_bwd) on the squeezenet1_0 Fires at N=1 and N=8, 2 threads (wall time; 1 thread: its CPU time),
alternating per round (each sample: the fastest of 3 calls). Prints per case the time ratio (this checkout / the revision) of the fastest samples, of the
median samples, and the paired ratio (median over rounds of the ratio within a round), and their geomeans. Ratios,
not times, are the result on a shared machine.

    python scripts/ab_cpu_builds.py REV [--rounds 15] [--threads 2] [--layout channels_last]  # e.g. REV = main
"""
import argparse
import glob
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import fusedfire  # noqa: E402
from fusedfire.configs import SQUEEZENET_FIRES  # noqa: E402

SCHEMAS = {"native_fire": "(Tensor x, {w}) -> Tensor", "native_fire_fwd": "(Tensor x, {w}) -> (Tensor, Tensor)",
           "native_fire_bwd": "(Tensor grad_out, Tensor x, Tensor s, Tensor out, Tensor squeeze_weight, "
                              "Tensor expand1x1_weight, Tensor expand3x3_weight) -> (Tensor, Tensor, Tensor, Tensor, "
                              "Tensor, Tensor, Tensor)"}
WEIGHTS = ("Tensor squeeze_weight, Tensor squeeze_bias, Tensor expand1x1_weight, Tensor expand1x1_bias, "
           "Tensor expand3x3_weight, Tensor expand3x3_bias")


def build_revision(rev: str, tmp: str):
    """The revision's fusedfire._cpu, built by its own setup.py (the same compiler flags as the installed one) in a
    copy of its tree, with its ops registered as fusedfire_before::native_* instead of fusedfire::native_*."""
    subprocess.run(f"git -C {ROOT} archive {rev} | tar -x -C {tmp}", shell=True, check=True)
    # its own C++ namespace too: inline functions' static tables (e.g. the ISA kernel tables) are unique symbols,
    # which the dynamic linker would otherwise share between the two builds
    for path in glob.glob(os.path.join(tmp, "csrc", "cpu", "*")):
        with open(path) as f:
            text = f.read()
        text = text.replace("TORCH_LIBRARY_IMPL(fusedfire, CPU, m)", "TORCH_LIBRARY_IMPL(fusedfire_before, CPU, m)")
        with open(path, "w") as f:
            f.write(text.replace("fusedfire_cpu", "fusedfire_cpu_before"))
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp, check=True,
                   env=dict(os.environ, FUSEDFIRE_SKIP_CUDA_BUILD="1"), stdout=subprocess.DEVNULL)
    lib = torch.library.Library("fusedfire_before", "DEF")
    for op, schema in SCHEMAS.items():
        lib.define(op + schema.format(w=WEIGHTS))
    (so,) = glob.glob(os.path.join(tmp, "fusedfire", "_cpu.*so"))
    torch.ops.load_library(so)
    return lib


def fastest_call(fn, timer, calls=3):
    """The fastest of `calls` timed calls, after one untimed: on a shared machine the least disturbed one."""
    fn()
    best = math.inf
    for _ in range(calls):
        t0 = timer()
        fn()
        best = min(best, timer() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="nchw", help="of x (and so of out)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # one thread: its CPU time (what the call computes, whoever else runs); more: wall time
    timer = time.thread_time if args.threads == 1 else time.perf_counter
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        _lib = build_revision(args.rev, tmp)  # noqa: F841 (keeps the schemas)
        assert fusedfire.native.available("cpu"), fusedfire.native.LOAD_ERRORS
        ops = {"before": torch.ops.fusedfire_before, "after": torch.ops.fusedfire}
        cases = []
        for cfg in SQUEEZENET_FIRES[:8]:
            for n in (1, 8):
                x = torch.randn(n, cfg.inplanes, cfg.size, cfg.size)
                if args.layout == "channels_last":
                    x = x.contiguous(memory_format=torch.channels_last)
                S, E1, E3 = cfg.squeeze_planes, cfg.expand1x1_planes, cfg.expand3x3_planes
                p = [torch.randn(S, cfg.inplanes, 1, 1) * 0.1, torch.randn(S) * 0.1, torch.randn(E1, S, 1, 1) * 0.1,
                     torch.randn(E1) * 0.1, torch.randn(E3, S, 3, 3) * 0.1, torch.randn(E3) * 0.1]
                out, s = ops["after"].native_fire_fwd(x, *p)
                g = torch.randn_like(out)
                for name, o in ops.items():  # same answers (up to a change of algorithm's rounding)
                    torch.testing.assert_close(o.native_fire(x, *p), out, rtol=1e-4, atol=1e-4)
                def fwd(o, x=x, p=p):
                    o.native_fire(x, *p)
                def train(o, x=x, p=p, g=g):
                    out, s = o.native_fire_fwd(x, *p)
                    o.native_fire_bwd(g, x, s, out, p[0], p[2], p[4])
                cases += [(f"{cfg.name} N={n} forward", fwd), (f"{cfg.name} N={n} fwd+bwd", train)]
        times = {(c, b): [] for c, _ in cases for b in ops}
        for r in range(args.rounds):
            for name, fn in cases:
                order = list(ops) if r % 2 == 0 else list(ops)[::-1]
                for b in order:
                    times[(name, b)].append(fastest_call(lambda: fn(ops[b]), timer))
    print(f"{args.rounds} interleaved rounds, {args.threads} threads, torch {torch.__version__}; ratio = this "
          f"checkout / {args.rev} (< 1: faster)")
    print(f"{'case':34s} {'before ms':>9s} {'after ms':>9s} {'fastest':>8s} {'median':>7s} {'paired':>7s}")
    ratios = {"forward": [], "fwd+bwd": []}
    for name, _ in cases:
        b, a = times[(name, "before")], times[(name, "after")]
        r = (min(a) / min(b), statistics.median(a) / statistics.median(b),
             statistics.median(x / y for x, y in zip(a, b)))
        ratios["forward" if name.endswith("forward") else "fwd+bwd"].append((r, name))
        print(f"{name:34s} {min(b) * 1e3:9.3f} {min(a) * 1e3:9.3f} {r[0]:8.3f} {r[1]:7.3f} {r[2]:7.3f}")
    for kind, rs in ratios.items():
        for n in ("N=1", "N=8"):
            sel = [r for r, name in rs if f" {n} " in name]
            gm = [math.exp(statistics.mean(math.log(r[i]) for r in sel)) for i in range(3)]
            print(f"{kind} {n}: geomean fastest {gm[0]:.3f} (range {min(r[0] for r in sel):.3f}-"
                  f"{max(r[0] for r in sel):.3f}), median {gm[1]:.3f}, paired {gm[2]:.3f}")


if __name__ == "__main__":
    main()
