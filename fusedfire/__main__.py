"""python -m fusedfire info|check|bench

    info    device, versions and the backends `fusedfire.backends(device)` lists
    check   every available backend against fusedfire.reference.fire_reference in fp64 on a few shapes,
            forward and gradients; exit code 1 on any mismatch
    bench   the benchmark report (bench/report.py of a source checkout; its options pass through); an installed
            wheel has no benchmarks: then it prints the command to run in a checkout
"""
import argparse
import os
import platform
import sys

import torch

import fusedfire
from fusedfire.ops import triton_interpreted
from fusedfire.reference import fire_reference
from fusedfire.testing import fire_params, lowp_bound, max_error

# The atol of the low-precision rule (fusedfire.testing), relative to the largest |value| when that passes 1.
ATOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}
# (N, Cin, S, E1, E3, H, W): awkward odd sizes, a real SqueezeNet Fire (1_1.features.10) at a small batch, a
# Fire whose E1 != E3, and one large enough for the cpu backend's Winograd 3×3 expand (odd 27×27, both layouts).
CHECK_SHAPES = [(2, 5, 3, 4, 6, 7, 9), (1, 384, 48, 192, 192, 13, 13), (3, 17, 8, 24, 8, 5, 11),
                (4, 96, 48, 64, 64, 27, 27)]


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def info(_args=None) -> int:
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:
        tv = "not installed"
    print(f"fusedfire   {fusedfire.__version__} ({os.path.dirname(os.path.abspath(fusedfire.__file__))})")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"torch       {torch.__version__} (CUDA {torch.version.cuda or '–'}, cuDNN "
          f"{torch.backends.cudnn.version() or '–'}, {torch.get_num_threads()} CPU threads)")
    print(f"torchvision {tv}")
    print(f"triton      {triton_version}" + (" (TRITON_INTERPRET=1: kernels run on CPU tensors)"
                                              if triton_interpreted() else ""))
    print(f"platform    {platform.platform()}; {os.cpu_count()} CPUs")
    if os.environ.get("FUSEDFIRE_BACKEND"):
        print(f"FUSEDFIRE_BACKEND={os.environ['FUSEDFIRE_BACKEND']}")
    for device in _devices():
        name = torch.cuda.get_device_name(device) if device == "cuda" else platform.processor() or platform.machine()
        if device == "cuda":
            cap = torch.cuda.get_device_capability()
            name += f" (sm_{cap[0]}{cap[1]}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
        print(f"device      {device}: {name}; backends: {fusedfire.backends(device)}")
    if not torch.cuda.is_available():
        print("device      cuda: not available")
    try:
        from fusedfire.native import LOAD_ERRORS
    except ImportError:
        LOAD_ERRORS = {}
    for device, error in LOAD_ERRORS.items():
        print(f"native      {device} extension not loaded: {error}")
    return 0


# ------------------------------------------------------------------------------------------------ check

def _run(fn, x, params, grad_out):
    """(out, grads of x and every parameter) of fn at these inputs."""
    x = x.detach().requires_grad_(True)
    params = [p.detach().requires_grad_(True) for p in params]
    out = fn(x, *params)
    grads = torch.autograd.grad(out, [x, *params], grad_out)
    return [out.detach()] + [g.detach() for g in grads]


def check_case(fn, shape, dtype, device, layout, seed=0):
    """Compares fn (fusedfire.fire's signature) with fire_reference in fp64 on CPU: output and the 7 gradients.
    Returns [(name, error, bound)], bound = 2 × (PyTorch's own error in `dtype` on `device`) + atol."""
    N, cin, s, e1, e3, H, W = shape
    g = torch.Generator().manual_seed(seed)
    x64 = torch.rand(N, cin, H, W, dtype=torch.float64, generator=g) + 1e-3
    params64 = fire_params(cin, s, e1, e3, dtype=torch.float64, generator=g)
    grad64 = torch.randn(N, e1 + e3, H, W, dtype=torch.float64, generator=g)

    def cast(t):
        t = t.to(device=device, dtype=dtype)
        return t.contiguous(memory_format=layout) if t.dim() == 4 and t is not None else t
    x, params, grad_out = cast(x64), [cast(p) for p in params64], cast(grad64)
    truth = _run(fire_reference, x64, params64, grad64)
    theirs = _run(fire_reference, x, params, grad_out)
    ours = _run(fn, x, params, grad_out)
    names = ["out", "grad_x", "grad_squeeze_w", "grad_squeeze_b", "grad_expand1x1_w", "grad_expand1x1_b",
             "grad_expand3x3_w", "grad_expand3x3_b"]
    results = []
    for name, o, t, ref in zip(names, ours, theirs, truth):
        if o.shape != ref.shape or o.dtype != dtype:
            results.append((name, float("inf"), 0.0))
            continue
        err = max_error(o, ref)  # NaN compares false below: a failure
        bound = lowp_bound(max_error(t, ref), ATOL[dtype] * max(1.0, ref.abs().max().item()))
        results.append((name, err, bound))
    return results


def _dtypes(device):
    return [torch.float64, torch.float32] if device == "cpu" else [torch.float32, torch.float16, torch.bfloat16]


def check(args) -> int:
    failures = total = 0
    for device in _devices():
        for backend in fusedfire.backends(device):
            if args.backend and backend not in args.backend:
                continue

            def fn(*a, _backend=backend):
                return fusedfire.fire(*a, backend=_backend)
            for shape in CHECK_SHAPES:
                for dtype in _dtypes(device):
                    for layout in (torch.contiguous_format, torch.channels_last):
                        total += 1
                        tag = (f"{device:4} {backend:9} {str(dtype).removeprefix('torch.'):8} "
                               f"{'cl' if layout == torch.channels_last else 'nchw':4} {shape}")
                        try:
                            results = check_case(fn, shape, dtype, device, layout)
                        except Exception as e:  # an exception is a failure too, reported and counted
                            failures += 1
                            print(f"FAIL {tag}: {type(e).__name__}: {e}")
                            continue
                        bad = [r for r in results if not r[1] <= r[2]]
                        worst = max(results, key=lambda r: r[1] / r[2] if r[2] else float("inf"))
                        if bad:
                            failures += 1
                            print(f"FAIL {tag}: " + "; ".join(f"{n} error {e:.3g} > bound {b:.3g}" for n, e, b in bad))
                        elif args.verbose:
                            print(f"ok   {tag}: worst {worst[0]} error {worst[1]:.3g} <= bound {worst[2]:.3g}")
    print(f"check: {total - failures}/{total} passed" + (f", {failures} FAILED" if failures else ""))
    return 1 if failures or not total else 0


def _report_script(roots):
    """bench/report.py of the first source checkout among `roots`, or None."""
    for root in roots:
        script = os.path.join(root, "bench", "report.py")
        if os.path.exists(script) and os.path.exists(os.path.join(root, "bench", "firebench.py")):
            return script
    return None


def bench(argv, roots=None) -> int:
    """Runs bench/report.py of the source checkout this package is installed from (editable), else of the current
    directory; an installed wheel carries no benchmarks, so then it says what to run instead."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = _report_script(roots if roots is not None else [package_root, os.getcwd()])
    if script is None:
        print("fusedfire bench: the benchmarks (bench/) are not part of an installed fusedfire; from a source "
              "checkout of fusedfire run\n"
              f"    python bench/report.py {' '.join(argv)}".rstrip() + "\n"
              "or `python -m fusedfire bench` in the checkout's root folder.", file=sys.stderr)
        return 2
    import runpy
    sys.argv = [script] + argv
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        return e.code or 0
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m fusedfire", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="device, versions, backends")
    p = sub.add_parser("check", help="every available backend vs the fp64 reference; exit 1 on mismatch")
    p.add_argument("--backend", action="append", help="only this backend (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print passing cases too")
    sub.add_parser("bench", help="benchmark report (options: python -m fusedfire bench --help)", add_help=False)
    if argv[:1] == ["bench"]:
        return bench(argv[1:])
    args = parser.parse_args(argv)
    return info(args) if args.command == "info" else check(args)


if __name__ == "__main__":
    sys.exit(main())
