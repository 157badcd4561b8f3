"""Where fusedfire.optimize's whole SqueezeNet spends its time, op by op, inside the network as it runs (caches as the
layers before left them; bench/layers.py times each layer on its own instead):

    python bench/network_ops.py squeezenet1_1 --N 1 --threads 2      # Markdown table on stdout

Each cpu-backend op the network calls (native_stem, native_fire_packed, native_classifier) is timed by wrapping
fusedfire.frozen's handle of it; medians over the rounds. GFLOP/s counts the multiplies each op does: the squeezes it
runs (its own unless squeezed, the next Fire's where it applies it), the 1×1 expand, and the 3×3 expand's Winograd
F(4×4, 3×3) GEMMs over whole 4×4 tiles (36 points a tile). "alone" times each call again on its arguments from
the last round, right after itself (hot caches): the network's excess over it is what running after other ops
costs. "between ops" is the rest of the call: Python, the modules' calls and checks.
"""
import argparse
import math
import statistics
import time

import torch
import torchvision

import fusedfire
import fusedfire.frozen as frozen
from fusedfire.ops import _pooled

from firebench import device_name  # bench/firebench.py


def fire_flops(x, wsq, bsq, w1, b1, w3, b3, packed, pool_kernel=0, pool_stride=0, pool_ceil_mode=False,
               squeezed=False, next_squeeze_weight=None, next_packed=None) -> int:
    N, _, H, W = x.shape
    (S, cin), E1, E3, P = wsq.shape[:2], w1.shape[0], w3.shape[0], N * H * W
    tiles = N * math.ceil(H / 4) * math.ceil(W / 4)
    flops = (0 if squeezed else 2 * P * cin * S) + 2 * P * S * E1 + 2 * tiles * 36 * S * E3
    return flops + (2 * P * (E1 + E3) * next_squeeze_weight.shape[0] if next_squeeze_weight is not None else 0)


def stem_flops(x, weight, bias, stride, padding, pool_kernel, pool_stride, ceil_mode, next_squeeze_weight=None,
               next_packed=None) -> int:
    N, C, H, W = x.shape
    M, _, K, _ = weight.shape
    OH, OW = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    flops = 2 * N * OH * OW * M * C * K * K
    if next_squeeze_weight is not None:
        pooled = [_pooled(o, pool_kernel, pool_stride, ceil_mode) for o in (OH, OW)]
        flops += 2 * N * pooled[0] * pooled[1] * M * next_squeeze_weight.shape[0]
    return flops


def classifier_flops(x, weight, bias, packed) -> int:
    return 2 * x.shape[0] * x.shape[2] * x.shape[3] * weight.shape[0] * weight.shape[1]


OPS = {"_NATIVE_STEM": ("stem", stem_flops), "_NATIVE_FIRE_PACKED": ("fire", fire_flops),
       "_NATIVE_CLASSIFIER": ("classifier", classifier_flops)}


def measure(net: str, N: int, rounds: int = 100) -> tuple:
    """([(kind, flops, median seconds in the network, median seconds alone) of each op call, in order], median
    seconds of the whole call). Alone: the same call on the same arguments again right after itself (hot caches)."""
    torch.manual_seed(0)
    model = fusedfire.optimize(getattr(torchvision.models, net)(weights=None).eval())
    x = torch.randn(N, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    calls, real = [], {handle: getattr(frozen, handle) for handle in OPS}  # calls: (kind, flops, s) of this round

    def timed(handle):
        kind, flops = OPS[handle]

        def call(*args):
            t = time.perf_counter()
            out = real[handle](*args)
            calls.append((kind, flops(*args), time.perf_counter() - t, handle, args))
            return out
        return call
    rows, totals = {}, []
    try:
        for handle in OPS:
            setattr(frozen, handle, timed(handle))
        with torch.no_grad():
            model(x)
            for _ in range(rounds):
                calls.clear()
                t = time.perf_counter()
                model(x)
                totals.append(time.perf_counter() - t)
                for i, (kind, flops, s, _, _) in enumerate(calls):
                    rows.setdefault(i, (kind, flops, []))[2].append(s)
            alone = [_alone(real[handle], args, rounds) for _, _, _, handle, args in calls]
    finally:
        for handle, op in real.items():
            setattr(frozen, handle, op)
    ops = [(kind, flops, statistics.median(t), a) for (kind, flops, t), a in zip(rows.values(), alone)]
    return ops, statistics.median(totals)


def _alone(op, args, rounds: int) -> float:
    """Median seconds of op(*args) called right after itself."""
    times = []
    for _ in range(rounds):
        op(*args)
        t = time.perf_counter()
        op(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def render(ops: list, whole: float, net: str, N: int) -> str:
    lines = [f"{net}, N={N}, fp32, {torch.get_num_threads()} threads, {device_name('cpu')}, optimize's ops inside the "
             "network", "",
             "| op | MFLOP | µs | GFLOP/s | alone µs | alone GFLOP/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {i} {kind} | {flops / 1e6:.1f} | {t * 1e6:.0f} | {flops / t / 1e9:.0f} | {a * 1e6:.0f} | "
              f"{flops / a / 1e9:.0f} |" for i, (kind, flops, t, a) in enumerate(ops)]
    lines += [f"| ops | {sum(f for _, f, _, _ in ops) / 1e6:.1f} | {sum(t for _, _, t, _ in ops) * 1e6:.0f} | | "
              f"{sum(a for _, _, _, a in ops) * 1e6:.0f} | |",
              f"| between ops | | {(whole - sum(t for _, _, t, _ in ops)) * 1e6:.0f} | | | |",
              f"| whole network | | {whole * 1e6:.0f} | | | |"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("net", choices=["squeezenet1_0", "squeezenet1_1"])
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(render(*measure(args.net, args.N, args.rounds), args.net, args.N))


if __name__ == "__main__":
    main()
