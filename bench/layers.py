"""Per-layer CPU inference time of a whole SqueezeNet: eager (NCHW and channels_last) against fusedfire.optimize.

    python bench/layers.py squeezenet1_1 --N 1 --threads 2      # Markdown table on stdout

Each layer (stem conv, ReLU, pools, every Fire, the classifier's conv, ReLU and pool) is timed on the input it sees
inside the network, layer by layer, the models' rounds interleaved; medians. The stem (conv, ReLU, pool) and the
classifier are also timed as one call each: optimize runs each as one pass (FusedSequential, PooledClassifier), so
their layers do not run one by one there ("—"). optimize's max pools after Fires are timed apart here, though its
whole network pools each in the call of the Fire before it. The whole-network row times the model as one call (it
includes the Python between layers). Shows where the time goes, so that the next step is visible.
"""
import argparse
import copy
import statistics
import time

import torch
import torchvision
from torch import nn

import fusedfire
from fusedfire.frozen import FusedSequential, PooledClassifier

from firebench import device_name  # bench/firebench.py


def layers(model: nn.Module) -> list:
    """(name, module) of the top-level layers of a torchvision SqueezeNet, in order, then Flatten."""
    named = [(f"features.{i}", m) for i, m in enumerate(model.features)]
    named += [(f"classifier.{i}", m) for i, m in enumerate(model.classifier)]
    return named + [("flatten", nn.Flatten(1))]


def groups(model: nn.Module) -> list:
    """(label, module, the layer whose input it takes): parts timed as one call beside their layers, because
    optimize runs each as one pass."""
    return [("stem features.0-2 (one call)", model.features[:3], "features.0"),
            ("classifier (one call)", model.classifier, "classifier.0")]


def _label(name: str, module: nn.Module) -> str:
    kind = type(module).__name__
    return f"{name} {kind}" + (f" {module.squeeze.in_channels}→{module.squeeze.out_channels}→"
                               f"{module.expand1x1.out_channels}+{module.expand3x3.out_channels}"
                               if hasattr(module, "squeeze") else "")


def measure(net: str, N: int, rounds: int) -> list:
    torch.manual_seed(0)
    base = getattr(torchvision.models, net)(weights=None).eval()
    models = {"eager NCHW": base, "eager channels_last": copy.deepcopy(base).to(memory_format=torch.channels_last),
              "fusedfire.optimize": fusedfire.optimize(base)}
    x = torch.randn(N, 3, 224, 224)
    x_cl = x.contiguous(memory_format=torch.channels_last)  # the layers are called one by one: optimize's hook skipped
    inputs = {"eager NCHW": x, "eager channels_last": x_cl, "fusedfire.optimize": x_cl}
    parts = {name: layers(model) + groups(model) for name, model in models.items()}
    n_layers = len(layers(base))
    times = {name: [[] for _ in range(len(parts[name]) + 1)] for name in models}
    with torch.no_grad():
        for r in range(rounds + 2):  # the first two rounds warm up
            for name, model in models.items():
                h, seen = inputs[name], {}
                for i, (layer_name, layer) in enumerate(parts[name][:n_layers]):
                    seen[layer_name] = h
                    if _fused(model, layer_name):  # its layers do not run one by one: "—"
                        times[name][i].append(float("nan"))
                        if layer_name in ("features.0", "classifier.0"):
                            h = (model.features[:3] if layer_name == "features.0" else model.classifier)(h)
                        continue
                    t = time.perf_counter()
                    h = layer(h)
                    times[name][i].append(time.perf_counter() - t)
                for i, (_, group, first) in enumerate(parts[name][n_layers:], n_layers):
                    t = time.perf_counter()
                    group(seen[first])
                    times[name][i].append(time.perf_counter() - t)
                t = time.perf_counter()
                model(inputs[name])
                times[name][-1].append(time.perf_counter() - t)
    rows = []
    for i, (layer_name, layer, *_) in enumerate(parts["eager NCHW"] + [("whole network (one call)", base)]):
        label = _label(layer_name, layer) if i < n_layers else layer_name
        rows.append((label, {name: statistics.median(t[i][2:]) * 1e6 for name, t in times.items()}))
    return rows


def _fused(model: nn.Module, layer_name: str) -> bool:
    """Whether `layer_name` runs inside one of optimize's fused passes (the stem, the classifier)."""
    stem = isinstance(model.features, FusedSequential) and model.features._stem_args is not None and layer_name in (
        "features.0", "features.1", "features.2")
    return stem or (isinstance(model.classifier, PooledClassifier) and layer_name.startswith("classifier."))


def render(rows, net, N) -> str:
    names = list(rows[0][1])
    head = ["layer"] + [f"{n} µs" for n in names] + ["eager best / optimize"]
    lines = [f"{net}, N={N}, fp32, {torch.get_num_threads()} threads, {device_name('cpu')}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, t in rows:
        best = min(t["eager NCHW"], t["eager channels_last"])
        ratio = best / t["fusedfire.optimize"]
        lines.append("| " + " | ".join([label] + [f"{t[n]:.0f}" if t[n] == t[n] else "—" for n in names] +
                                       [f"{ratio:.2f}×" if ratio == ratio else "—"]) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("net", choices=["squeezenet1_0", "squeezenet1_1"])
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(render(measure(args.net, args.N, args.rounds), args.net, args.N))


if __name__ == "__main__":
    main()
