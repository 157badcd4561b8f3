"""The A/B measurements behind what fusedfire.optimize does outside the Fire kernels (fusedfire/frozen.py,
fusedfire/inference.py): each choice against its alternatives, rounds interleaved in one process, medians.

    python bench/outside_fires.py --threads 2        # Markdown tables on stdout

- classifier: SqueezeNet's Conv2d 512→1000 1×1, ReLU, AdaptiveAvgPool2d(1) on 13×13 (squeezenet1_1's input size):
  eager in either layout, addmm on the channels_last activation viewed as (N·H·W, 512), oneDNN's linear with the
  ReLU fused (PooledClassifier's fallback), torch.compile's MKL-packed linear, the cpu backend's native_classifier
  (what PooledClassifier runs).
- stem: conv, ReLU, 3×3/2 MaxPool of both networks: eager channels_last, the ReLU after the pool (what optimize
  runs), a conv with the ReLU fused (mkldnn._convolution_pointwise).
- fire call: a small and a 13×13 Fire, N=1: FusedFire (the training module), FrozenFire (optimize's), the op alone.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

from fusedfire import FusedFire
from fusedfire.frozen import FrozenFire


def interleaved(fns: dict, rounds: int, inner: int) -> dict:
    """Median µs per call of each of `fns`, their rounds interleaved, two rounds of warm-up."""
    times = {name: [] for name in fns}
    with torch.no_grad():
        for r in range(rounds + 2):
            for name, fn in fns.items():
                t = time.perf_counter()
                for _ in range(inner):
                    fn()
                if r >= 2:
                    times[name].append((time.perf_counter() - t) / inner)
    return {name: statistics.median(t) * 1e6 for name, t in times.items()}


def classifier(N: int):
    x = torch.randn(N, 512, 13, 13).relu_().contiguous(memory_format=torch.channels_last)
    x_nchw, w, b = x.contiguous(), torch.randn(1000, 512, 1, 1) * 0.05, torch.randn(1000)
    w_cl, w2, P = w.contiguous(memory_format=torch.channels_last), w.view(1000, 512), N * 169
    packed = torch.ops.mkl._mkl_reorder_linear_weight(w2, P)
    ours = torch.ops.fusedfire.native_classifier_pack(w, b)
    pixels = lambda: x.permute(0, 2, 3, 1).reshape(P, 512)  # noqa: E731
    pool = lambda y: y.view(N, 169, 1000).sum(1).div_(169)  # noqa: E731
    fns = {"eager channels_last": lambda: F.adaptive_avg_pool2d(F.relu(F.conv2d(x, w_cl, b)), 1).flatten(1),
           "eager NCHW": lambda: F.adaptive_avg_pool2d(F.relu(F.conv2d(x_nchw, w, b)), 1).flatten(1),
           "addmm + relu_ + pool": lambda: pool(torch.addmm(b, pixels(), w2.t()).relu_()),
           "mkl packed linear + relu_ + pool": lambda: pool(torch.ops.mkl._mkl_linear(pixels(), packed, w2, b,
                                                                                     P).relu_()),
           "oneDNN linear+ReLU + pool": lambda: pool(torch.ops.mkldnn._linear_pointwise(
               pixels(), w2, b, "relu", [], "")),
           "native_classifier (optimize)": lambda: torch.ops.fusedfire.native_classifier(x, w, b, ours).flatten(1)}
    expected = fns["eager NCHW"]()
    for fn in fns.values():
        torch.testing.assert_close(fn(), expected, rtol=1e-4, atol=1e-5)
    return fns


def stem(net: str, N: int):
    model = getattr(torchvision.models, net)().eval().to(memory_format=torch.channels_last)
    conv, pool = model.features[0], model.features[2]
    x = torch.randn(N, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    fused = lambda: torch.ops.mkldnn._convolution_pointwise(  # noqa: E731
        x, conv.weight, conv.bias, list(conv.padding), list(conv.stride), [1, 1], 1, "relu", [], "")
    fns = {"eager channels_last": lambda: pool(F.relu_(conv(x))),
           "ReLU after the pool (optimize)": lambda: F.relu_(pool(conv(x))),
           "conv with ReLU fused, pool": lambda: pool(fused())}
    expected = fns["eager channels_last"]()
    for fn in fns.values():
        torch.testing.assert_close(fn(), expected)
    return fns


def fire_call(cin: int, s: int, e: int, hw: int):
    fused = FusedFire(cin, s, e, e).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    frozen = FrozenFire.from_fire(fused)
    x = torch.randn(1, cin, hw, hw).contiguous(memory_format=torch.channels_last)
    params = [p for _, p in fused.named_parameters()]  # squeeze, expand1x1, expand3x3: weight, bias each
    return {"FusedFire": lambda: fused(x), "FrozenFire (optimize)": lambda: frozen(x),
            "torch.ops.fusedfire.native_fire alone": lambda: torch.ops.fusedfire.native_fire.default(x, *params)}


def table(title: str, result: dict) -> str:
    first = next(iter(result.values()))
    lines = [f"{title}", "", f"| variant | µs | {next(iter(result))} / variant |", "|---|---|---|"]
    lines += [f"| {name} | {t:.1f} | {first / t:.2f}× |" for name, t in result.items()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{torch.get_num_threads()} threads, fp32, medians of {args.rounds} interleaved rounds\n")
    for N in (1, 8):
        print(table(f"classifier 512→1000 on 13×13, N={N}", interleaved(classifier(N), args.rounds, 3)))
    for net in ("squeezenet1_1", "squeezenet1_0"):
        for N in (1, 8):
            print(table(f"{net} stem, N={N}", interleaved(stem(net, N), args.rounds, 3)))
    for cin, s, e, hw in ((64, 16, 64, 4), (512, 64, 256, 13)):
        print(table(f"Fire {cin}→{s}→{e}+{e} call at {hw}×{hw}, N=1", interleaved(fire_call(cin, s, e, hw),
                                                                               args.rounds, 20)))


if __name__ == "__main__":
    main()
