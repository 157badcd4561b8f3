"""A/B of the cpu backend between a git revision and this checkout, in one process, interleaved: the revision's
csrc/cpu/ is built (into a temp dir, its ops registered as fusedfire_before::native_*) next to the installed
fusedfire._cpu, and both run the same calls of the native ops (forward: native_fire; training: native_fire_fwd +
native_fire_bwd) on the squeezenet1_0 Fires at N=1 and N=8, 2 threads, alternating per round. Prints per case the
median per-call time ratio (this checkout / the revision) and the paired ratio (median over rounds), and geomeans.
Ratios, not times, are the result on a shared machine.

    python scripts/ab_cpu_builds.py REV [--rounds 15] [--threads 2]
"""
import argparse
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
    """The revision's csrc/cpu built with its own setup.py flags (then: OpenMP), ops under fusedfire_before."""
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    names = subprocess.run(["git", "-C", ROOT, "ls-tree", "--name-only", f"{rev}:csrc/cpu"], check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:csrc/cpu/{name}"], check=True, capture_output=True,
                              text=True).stdout
        text = text.replace("TORCH_LIBRARY_IMPL(fusedfire, CPU, m)", "TORCH_LIBRARY_IMPL(fusedfire_before, CPU, m)")
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    lib = torch.library.Library("fusedfire_before", "DEF")
    for op, schema in SCHEMAS.items():
        lib.define(op + schema.format(w=WEIGHTS))
    from torch.utils.cpp_extension import load
    load("fusedfire_before_cpu", [os.path.join(src, n) for n in names if n.endswith(".cpp")],
         extra_cflags=["-O3", "-Wall", "-ffp-contract=off", "-fopenmp"], extra_ldflags=["-fopenmp"],
         build_directory=tmp, is_python_module=False, verbose=False)
    return lib


def per_call(fn, budget=0.02):
    fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= budget:
            return elapsed / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        _lib = build_revision(args.rev, tmp)  # noqa: F841 (keeps the schemas)
        assert fusedfire.native.available("cpu"), fusedfire.native.LOAD_ERRORS
        ops = {"before": torch.ops.fusedfire_before, "after": torch.ops.fusedfire}
        cases = []
        for cfg in SQUEEZENET_FIRES[:8]:
            for n in (1, 8):
                x = torch.randn(n, cfg.inplanes, cfg.size, cfg.size)
                S, E1, E3 = cfg.squeeze_planes, cfg.expand1x1_planes, cfg.expand3x3_planes
                p = [torch.randn(S, cfg.inplanes, 1, 1) * 0.1, torch.randn(S) * 0.1, torch.randn(E1, S, 1, 1) * 0.1,
                     torch.randn(E1) * 0.1, torch.randn(E3, S, 3, 3) * 0.1, torch.randn(E3) * 0.1]
                out, s = ops["after"].native_fire_fwd(x, *p)
                g = torch.randn_like(out)
                for name, o in ops.items():  # same answers
                    torch.testing.assert_close(o.native_fire(x, *p), out)
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
                    times[(name, b)].append(per_call(lambda: fn(ops[b])))
    print(f"{args.rounds} interleaved rounds, {args.threads} threads, torch {torch.__version__}; ratio = this "
          f"checkout / {args.rev} (< 1: faster)")
    print(f"{'case':40s} {'before ms':>10s} {'after ms':>10s} {'ratio':>7s} {'paired':>7s}")
    ratios = {"forward": [], "fwd+bwd": []}
    for name, _ in cases:
        b, a = times[(name, "before")], times[(name, "after")]
        ratio = statistics.median(a) / statistics.median(b)
        paired = statistics.median(x / y for x, y in zip(a, b))
        ratios["forward" if name.endswith("forward") else "fwd+bwd"].append((ratio, paired, name))
        print(f"{name:40s} {statistics.median(b) * 1e3:10.3f} {statistics.median(a) * 1e3:10.3f} {ratio:7.3f} "
              f"{paired:7.3f}")
    for kind, rs in ratios.items():
        for n in ("N=1", "N=8"):
            sel = [r for r in rs if n in r[2]]
            gm = math.exp(statistics.mean(math.log(r[0]) for r in sel))
            gp = math.exp(statistics.mean(math.log(r[1]) for r in sel))
            print(f"{kind} {n}: geomean {gm:.3f} (paired {gp:.3f}), range {min(r[0] for r in sel):.3f}-"
                  f"{max(r[0] for r in sel):.3f}")


if __name__ == "__main__":
    main()
