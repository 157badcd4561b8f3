"""What the Fire benchmarks share: the case matrix, the providers, timing, memory, and the results CSV.

Imported by bench/conftest.py, bench/test_fire.py and the report (report.py, stats.py; bench/ is on sys.path).
The cost formulas are not here: they live in fusedfire/roofline.py, once.
"""
import collections
import csv
import dataclasses
import datetime
import functools
import itertools
import math
import os
import platform
import re
import time

import torch
from torch import nn

import anchors
import fusedfire
from fusedfire import roofline
from fusedfire.configs import KERNELBENCH_FIRE, SQUEEZENET_FIRES, FireConfig
from fusedfire.ops import triton_interpreted

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
LAYOUTS = {"nchw": torch.contiguous_format, "cl": torch.channels_last}

# The full matrix per device type; `quick` is the subset behind the headline table (one batch, dtype, layout).
MATRIX = {"cuda": dict(batches=(1, 32, 256), dtypes=("fp32", "fp16", "bf16")),
          "cpu": dict(batches=(1, 8), dtypes=("fp32",))}
QUICK = {"cuda": dict(N=32, dtype="fp16", layout="cl"), "cpu": dict(N=8, dtype="fp32", layout="nchw")}
# `cpufwd` (bench/report.py --subset cpu-fwd): CPU fp32 inference in both layouts, every Fire config and whole
# network. The CPU targets are judged over the faster of eager NCHW and eager channels_last (stats.layout_best).
CPU_FWD = dict(batches=(1, 8), dtype="fp32", mode="fwd")
# Providers left out of `quick` (they run in the full matrix): max-autotune compiles for minutes per shape, and
# on CUDA the reference backend is the eager composition again (the GPU check has ~4 minutes for the headline).
NOT_QUICK = {"cuda": ("compile-max-autotune", "fusedfire-reference")}
# The smoke case (CI): one small real Fire, batch 1, fp32, every provider once.
SMOKE_FIRE = next(c for c in SQUEEZENET_FIRES if c.name == "1_1.features.3")
NETWORKS = ("squeezenet1_0", "squeezenet1_1")
NETWORK_SIZE = 224
# KernelBench level 3: problem 17 is one Fire, problem 18 the whole SqueezeNet 1.0; both fp32, forward only.
KERNELBENCH = {"kernelbench.17": dict(N=128, size=KERNELBENCH_FIRE.size),
               "kernelbench.18": dict(N=64, size=512)}


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark group: every provider runs exactly this."""
    name: str  # a FireConfig name, "squeezenet1_0.features", "kernelbench.17", ...
    N: int
    dtype: str
    layout: str
    mode: str  # "fwd" (no_grad inference) or "fwdbwd" (forward + backward of x and every parameter)
    size: int  # input H = W
    fire: FireConfig = None  # set for single-Fire cases
    gpu_only: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}-N{self.N}-{self.dtype}-{self.layout}-{self.mode}"

    @property
    def input_channels(self) -> int:
        return self.fire.inplanes if self.fire else 3


def cases(device_type: str):
    """Every case of the matrix for a device type, as (case, marks): marks from {"quick", "smoke", "cpufwd"}.
    Ordered so that a run cut short still has the headline: quick's forwards (Fires, then networks), quick's Fire
    fwd+bwd, the rest. cpufwd goes with quick, config-major with both layouts of a (config, N) adjacent, so a
    cpufwd run cut short still has complete layout pairs; its networks come after its Fires."""
    m, q = MATRIX[device_type], QUICK[device_type]
    marks = collections.defaultdict(set)  # NOTE: the smoke cases are matrix cases too: their marks merge
    for mode, N, dtype, layout, cfg in itertools.product(roofline.MODES, m["batches"], m["dtypes"], LAYOUTS,
                                                         SQUEEZENET_FIRES):
        tags = marks[Case(cfg.name, N, dtype, layout, mode, cfg.size, cfg)]
        if (N, dtype, layout) == (q["N"], q["dtype"], q["layout"]):
            tags.add("quick")
    for mode, N, dtype, layout, net in itertools.product(roofline.MODES, m["batches"], m["dtypes"], LAYOUTS,
                                                         NETWORKS):
        tags = marks[Case(f"{net}.features", N, dtype, layout, mode, NETWORK_SIZE)]
        if (N, dtype, layout, mode) == (q["N"], q["dtype"], q["layout"], "fwd"):
            tags.add("quick")
    if device_type == "cpu":  # the whole networks (features + classifier): CPU inference, against the engines
        for N, layout, net in itertools.product(CPU_FWD["batches"], LAYOUTS, NETWORKS):
            marks.setdefault(Case(net, N, CPU_FWD["dtype"], layout, CPU_FWD["mode"], NETWORK_SIZE), set())
    kb = KERNELBENCH["kernelbench.17"]
    marks[Case("kernelbench.17", kb["N"], "fp32", "nchw", "fwd", kb["size"], KERNELBENCH_FIRE, True)].add("quick")
    kb = KERNELBENCH["kernelbench.18"]
    marks.setdefault(Case("kernelbench.18", kb["N"], "fp32", "nchw", "fwd", kb["size"], None, True), set())
    for mode in roofline.MODES:
        marks[Case(SMOKE_FIRE.name, 1, "fp32", "nchw", mode, SMOKE_FIRE.size, SMOKE_FIRE)].add("smoke")
    for case, tags in marks.items():
        if device_type == "cpu" and (case.mode, case.dtype) == (CPU_FWD["mode"], CPU_FWD["dtype"]) and \
                case.N in CPU_FWD["batches"] and not case.gpu_only:
            tags.add("cpufwd")
    position = {name: i for i, name in enumerate([c.name for c in SQUEEZENET_FIRES] +
                                                 [f"{net}.features" for net in NETWORKS] + list(NETWORKS))}

    def rank(case):
        # forwards before fwd+bwd, Fires (KernelBench 17 last of them) before networks; cpufwd config-major
        tags = marks[case]
        tier = 1 if tags & {"quick", "cpufwd"} else 0 if "smoke" in tags else 2
        config_major = (position[case.name], case.N, case.layout != "nchw") if "cpufwd" in tags else ()
        return tier, case.mode != "fwd", case.fire is None, case.gpu_only, config_major
    return sorted(marks.items(), key=lambda item: rank(item[0]))


# ------------------------------------------------------------------------------------------- providers

def providers(device_type: str) -> list:
    """eager (torchvision's Fire), torch.compile (default; max-autotune on CUDA), on CPU the inference engines
    that import (bench/anchors.py), and fusedfire per backend that `fusedfire.backends(device)` lists (Triton under
    its CPU interpreter excluded: that times the interpreter)."""
    names = ["eager", "compile"] + (["compile-max-autotune"] if device_type == "cuda" else [])
    if device_type == "cpu":
        names += ["compile-freezing"] + anchors.available()
    for backend in fusedfire.backends(device_type):
        if backend == "triton" and triton_interpreted():
            continue
        names.append(f"fusedfire-{backend}")
    if device_type == "cpu":
        names.append("fusedfire-optimize")
    return names


# What a CPU user would run for inference instead of fusedfire (the report's ×best-anchor: the fastest of them).
ANCHORS = ("compile-freezing", *anchors.ENGINES)
INFERENCE_ONLY = (*ANCHORS, "fusedfire-optimize")


def runs(provider: str, case: Case) -> bool:
    """Whether `provider` runs `case`: the inference-only ones run fp32 forwards only, fusedfire.optimize whole
    networks only, the engines in both layouts (a channels_last input is copied to the NCHW they take, so their
    faster layout is NCHW)."""
    if provider not in INFERENCE_ONLY:
        return True
    return (case.mode, case.dtype) == ("fwd", "fp32") and (provider != "fusedfire-optimize" or case.fire is None)


def _torchvision():
    try:
        from torchvision import models
        return models
    except ImportError:  # NOTE: fusedfire.reference.Fire is torchvision's Fire verbatim; nets need torchvision
        return None


def eager_fire(cfg: FireConfig) -> nn.Module:
    models = _torchvision()
    fire_class = models.squeezenet.Fire if models else fusedfire.reference.Fire
    return fire_class(cfg.inplanes, cfg.squeeze_planes, cfg.expand1x1_planes, cfg.expand3x3_planes)


def eager_model(case: Case) -> nn.Module:
    """The eager (torchvision) module of a case, with its default random init (seeded by the caller)."""
    if case.fire is not None:
        return eager_fire(case.fire)
    models = _torchvision()
    if models is None:
        raise RuntimeError("torchvision is needed for the whole-network cases")
    if case.name == "kernelbench.18":
        return models.squeezenet1_0(weights=None)
    if case.name in NETWORKS:
        return getattr(models, case.name)(weights=None)
    return getattr(models, case.name.split(".")[0])(weights=None).features


def _compile_limits():
    # NOTE: every case compiles Fire.forward again (new shapes/modules); dynamo's default of 8 entries per code
    # object would otherwise fall back to eager silently after the 8th case.
    import torch._dynamo.config as cfg
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, 4096)
    for name in ("accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, 1 << 16)


def build(provider: str, case: Case, device) -> nn.Module:
    """The module a provider runs for a case, in the case's dtype and layout, eval mode (SqueezeNet has no
    BatchNorm; eval only switches KernelBench 18's Dropout off)."""
    model = eager_model(case).to(device=device, dtype=DTYPES[case.dtype], memory_format=LAYOUTS[case.layout])
    model.eval()
    if provider == "eager":
        return model
    if provider.startswith("compile"):
        _compile_limits()
        mode = "max-autotune" if provider == "compile-max-autotune" else None
        options = {"freezing": True} if provider == "compile-freezing" else None  # weights as constants
        return torch.compile(model, mode=mode, dynamic=False, options=options)
    if provider == "fusedfire-optimize":
        return fusedfire.optimize(model)
    if provider.startswith("fusedfire-"):
        return fusedfire.convert(model, backend=provider.removeprefix("fusedfire-"))
    if provider in anchors.ENGINES:
        return anchors.build(provider, model, torch.randn(case.N, case.input_channels, case.size, case.size))
    raise ValueError(f"unknown provider {provider!r}")


# ------------------------------------------------------------------------------------------------ inputs

def cache_bytes(device) -> int:
    device = torch.device(device)
    if device.type == "cuda":
        return getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
    return 64 << 20  # NOTE: a typical server L3; only sizes the input rotation


def output_shape(case: Case) -> tuple:
    """The output shape of a case (one eager forward on the meta device)."""
    model = eager_model(case).to("meta")
    with torch.no_grad():
        return tuple(model(torch.empty(case.N, case.input_channels, case.size, case.size, device="meta")).shape)


def make_inputs(case: Case, device, count=None) -> list:
    """`count` input sets (x[, grad_out]) of random, never-zero data, enough of them that together they are
    twice the last-level cache (2 to 8), so the timing does not just measure data left in cache by the last
    call. x is non-negative like the post-ReLU activations a Fire sees (the network input is N(0, 1))."""
    dtype, fmt = DTYPES[case.dtype], LAYOUTS[case.layout]
    shape = (case.N, case.input_channels, case.size, case.size)
    x_bytes = math.prod(shape) * torch.finfo(dtype).bits // 8
    if count is None:
        count = max(2, min(8, math.ceil(2 * cache_bytes(device) / x_bytes)))
    out_shape = output_shape(case) if case.mode == "fwdbwd" else None
    sets = []
    for _ in range(count):
        x = torch.rand(shape, device=device) + 1e-3 if case.fire else torch.randn(shape, device=device)
        x = x.to(dtype).contiguous(memory_format=fmt)
        if case.mode == "fwd":
            sets.append((x,))
            continue
        x.requires_grad_(case.fire is not None)  # a Fire inside a network must return grad_x; an image not
        grad_out = torch.randn(out_shape, device=device).to(dtype)
        sets.append((x, grad_out.contiguous(memory_format=fmt) if len(out_shape) == 4 else grad_out))
    return sets


def step_fn(case: Case, model: nn.Module):
    """One timed call: inference forward under no_grad, or forward + backward (torch.autograd.grad, so no .grad
    accumulation is timed) of x (single Fires) and every parameter."""
    params = [p for p in model.parameters() if p.requires_grad]
    if case.mode == "fwd":
        def fwd(x):
            with torch.no_grad():
                return model(x)
        return fwd

    def fwdbwd(x, grad_out):
        out = model(x)
        wrt = ([x] if x.requires_grad else []) + params
        return torch.autograd.grad(out, wrt, grad_out)
    return fwdbwd


# ------------------------------------------------------------------------------------------------ timing

def sync_timer():
    """pytest-benchmark timer for CUDA: synchronize, then read the host clock. pytest-benchmark reads the timer
    before and after each round of `iterations` asynchronous calls, so each round is bracketed by a synchronize
    and the launches inside it queue up as in a real program."""
    torch.cuda.synchronize()
    return time.perf_counter()


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_benchmark(benchmark, fn, inputs, device, *, budget_s=1.0, round_s=None):
    """Times fn over the rotated inputs with pytest-benchmark: warm-up (compilation, autotuning, caches)
    excluded, ~`round_s` per round, ~`budget_s` of rounds. Returns the last output."""
    device = torch.device(device)
    turn = itertools.cycle(inputs)

    def call():
        return fn(*next(turn))

    if benchmark.disabled:  # --benchmark-disable: run once, as a smoke test
        return benchmark.pedantic(call)
    round_s = round_s or (2e-3 if device.type == "cuda" else 20e-3)
    for _ in range(len(inputs) + 2):  # warm-up: compile, autotune, allocator, every input once
        call()
    synchronize(device)
    t0 = time.perf_counter()
    probes = len(inputs)
    for _ in range(probes):
        call()
    synchronize(device)
    per_call = max((time.perf_counter() - t0) / probes, 1e-7)
    iterations = max(1, round(round_s / per_call))
    # NOTE: at least 15 rounds on CPU: on a shared 2-core machine a median of 5 moved by 2× between runs.
    min_rounds = 10 if device.type == "cuda" else 15
    rounds = max(min_rounds, min(2000, int(budget_s / (iterations * per_call))))
    if device.type == "cuda":
        # NOTE: pytest-benchmark takes its timer from --benchmark-timer only (a global option); a CUDA run needs
        # a synchronizing one whatever the user passed, so it is set on the fixture (a private attribute).
        benchmark._timer = sync_timer
    return benchmark.pedantic(call, rounds=rounds, iterations=iterations, warmup_rounds=1)


# ------------------------------------------------------------------------------------------------ memory

def saved_activation_bytes(step, inputs, params) -> int:
    """Bytes autograd saves for backward during one forward (saved_tensors_hooks), each storage counted once
    and parameters' storages not at all (they exist anyway): the activation memory a training step holds."""
    skip = {p.untyped_storage().data_ptr() for p in params}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[(storage.device, storage.data_ptr())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(*inputs)
    return sum(seen.values())


def peak_training_bytes(step, inputs, device) -> float:
    """CUDA: peak allocated bytes of one forward + backward above what was allocated before it (NaN on CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return float("nan")
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step(*inputs)
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


# ------------------------------------------------------------------------------------------------ cost

def case_cost(case: Case) -> tuple:
    """(FLOPs, minimum bytes) of a case, from fusedfire.roofline (provider-independent: the eager model's)."""
    x = torch.empty(case.N, case.input_channels, case.size, case.size, dtype=DTYPES[case.dtype], device="meta")
    if case.fire is not None:
        c = case.fire
        args = (case.N, c.inplanes, c.squeeze_planes, c.expand1x1_planes, c.expand3x3_planes, case.size, case.size)
        return (roofline.fire_flops(*args, mode=case.mode),
                roofline.fire_bytes(*args, itemsize=x.element_size(), mode=case.mode))
    return roofline.network_cost(eager_model(case), x, mode=case.mode)


# ---------------------------------------------------------------------------------------- device + stamp

def device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_slug(device) -> str:
    """A file-name-safe device id: "cuda-nvidia-h200", "cpu-intel-xeon-processor-2.80ghz"."""
    name = re.sub(r"\((r|tm|c)\)|@|cpu|processor\b", " ", device_name(device).lower())
    name = re.sub(r"[^a-z0-9.]+", "-", name).strip("-.")
    return f"{torch.device(device).type}-{name}"


@functools.cache
def versions() -> dict:
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = ""
    return {"torch": torch.__version__, "triton": triton_version, "cuda": torch.version.cuda or "",
            "cudnn": str(torch.backends.cudnn.version() or ""), "python": platform.python_version(),
            "fusedfire": fusedfire.__version__, "threads": str(torch.get_num_threads())}


def stamp(device) -> dict:
    return {"device": torch.device(device).type, "device_name": device_name(device),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), **versions()}


# ------------------------------------------------------------------------------------------------ CSV

CSV_FIELDS = ("group", "name", "N", "dtype", "layout", "mode", "size", "provider", "median_us", "min_us",
              "iqr_us", "mean_us", "stddev_us", "rounds", "iterations", "inputs", "flops", "bytes", "gbps",
              "tflops", "pct_roofline", "roofline_us", "bound", "peak_gbps", "peak_tflops", "ceiling_note",
              "saved_bytes", "peak_train_bytes", "device", "device_name", "date", "torch", "triton", "cuda",
              "cudnn", "python", "fusedfire", "threads")


def append_row(path, row: dict):
    """Appends one result row (written as each benchmark finishes: a run cut short keeps what it measured)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: _fmt(row.get(k, "")) for k in CSV_FIELDS})


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def read_rows(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
