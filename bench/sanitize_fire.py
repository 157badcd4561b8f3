"""A small Fire forward + backward through every fused backend, for compute-sanitizer (bench/gpu_check.sh):

    compute-sanitizer --tool memcheck python bench/sanitize_fire.py
    python bench/sanitize_fire.py --list-kernels     the GPU kernels it launches (to pick a --kernel-name filter)
    python bench/sanitize_fire.py --device cpu       the same calls on CPU (a dry run of the script itself)

Awkward sizes (odd, not powers of two, E1 != E3), fp32 and fp16, NCHW and channels_last. Exits 0 with a note
when the device has no fused backend (nothing of ours to sanitize)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import fusedfire  # noqa: E402
from fusedfire.ops import triton_interpreted  # noqa: E402

SHAPES = [(2, 19, 6, 10, 14, 9, 11), (1, 64, 16, 64, 64, 13, 13)]  # (N, Cin, S, E1, E3, H, W)


def fused_backends(device):
    return [b for b in fusedfire.backends(device)
            if b != "reference" and not (b == "triton" and triton_interpreted() and device != "cpu")]


def run(device, backends, tiny=False):
    torch.manual_seed(0)
    dtypes = [torch.float32, torch.float16] if device == "cuda" else [torch.float32]
    for backend in backends:
        for N, cin, s, e1, e3, H, W in SHAPES[:1] if tiny else SHAPES:
            for dtype in dtypes:
                for fmt in (torch.contiguous_format, torch.channels_last):
                    def t(*shape):
                        return (torch.rand(shape, device=device) * 0.2 + 0.01).to(dtype)
                    x = t(N, cin, H, W).contiguous(memory_format=fmt)
                    params = [t(s, cin, 1, 1), t(s), t(e1, s, 1, 1), t(e1), t(e3, s, 3, 3), t(e3)]
                    with torch.no_grad():
                        fusedfire.fire(x, *params, backend=backend)
                    x.requires_grad_(True)
                    for p in params:
                        p.requires_grad_(True)
                    out = fusedfire.fire(x, *params, backend=backend)
                    torch.autograd.grad(out, [x, *params], torch.randn_like(out))
        if device == "cuda":
            torch.cuda.synchronize()
        print(f"sanitize_fire: backend {backend} on {device}: forward + backward ran")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--list-kernels", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="one shape only (a dry run)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("sanitize_fire: no CUDA device")
        return 1
    backends = fused_backends(args.device)
    if not backends:
        print(f"sanitize_fire: no fused backend on {args.device} (backends: {fusedfire.backends(args.device)}); "
              "nothing to sanitize")
        return 0
    if not args.list_kernels:
        run(args.device, backends, args.tiny)
        return 0
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CUDA] if args.device == "cuda" else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        run(args.device, backends, args.tiny)
    names = sorted({e.key for e in prof.key_averages()
                    if args.device != "cuda" or e.device_type == torch.autograd.DeviceType.CUDA})
    print("\n".join(f"kernel: {n}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
