"""The cost model of Fire, in one place: FLOPs, minimum bytes moved, the measured ceilings of a device and the
roofline (the floor no implementation can beat) that benchmarks report against.

For one Fire (x: N×Cin×H×W; S squeeze, E1 + E3 expand channels; P = its parameter count):

    FLOPs (forward)        = 2·N·H·W·(Cin·S + S·E1 + 9·S·E3)       multiply-adds ×2; bias/ReLU ignored
    FLOPs (backward)       ≈ 2 × forward                            grad of the inputs + grad of the weights
    bytes (inference)      = x + P + out                            read x and the weights once, write out once
    bytes (training fwd)   = x + P + out + s                        fire_fwd also writes s for the backward
    bytes (backward)       = grad_out + x + s + out + P             reads (out for the ReLU mask)
                           + grad_x + grad_P                        writes
    bytes (fwd + bwd)      = training fwd + backward = 3·x + 3·P + 3·out + 2·s

The roofline time is max(FLOPs / peak FLOP/s, bytes / peak bandwidth); "% of roofline" is that floor over the
measured time. Ceilings are measured on the device (`measure_ceilings`), never taken from a datasheet.
"""
import functools
import math
import time

import torch
from torch import nn

MODES = ("fwd", "fwdbwd")  # inference forward (no_grad); forward + backward (grads of x and all parameters)


# ------------------------------------------------------------------------------------------- the formulas

def fire_flops(N, Cin, S, E1, E3, H, W, mode="fwd") -> int:
    """FLOPs of one Fire (see the module docstring): the direct convolution's, whatever the algorithm (the CPU
    backend's Winograd 3×3 does 4/9 of its multiplies, so its FLOP/s are effective ones)."""
    fwd = 2 * N * H * W * (Cin * S + S * E1 + 9 * S * E3)
    return fwd if mode == "fwd" else 3 * fwd  # forward + backward (≈ 2× forward)


def fire_param_count(Cin, S, E1, E3) -> int:
    return Cin * S + S + S * E1 + E1 + 9 * S * E3 + E3


def fire_bytes(N, Cin, S, E1, E3, H, W, itemsize, mode="fwd") -> int:
    """Minimum bytes a fused Fire moves through device memory (see the module docstring)."""
    x, out, s = N * Cin * H * W, N * (E1 + E3) * H * W, N * S * H * W
    return itemsize * layer_elements(x, fire_param_count(Cin, S, E1, E3), out, mode, saved=s)


def layer_elements(inp, params, out, mode="fwd", saved=0) -> int:
    """Elements one layer must move: read input and parameters, write output (+ `saved` extras written for the
    backward); forward + backward adds reading grad_out, the saved tensors, input, output and parameters, and
    writing grad_input and grad_params (see the module docstring)."""
    if mode == "fwd":
        return inp + params + out
    return (inp + params + out + saved) + (out + inp + saved + out + params) + (inp + params)


def roofline_seconds(flops, nbytes, peak_flops, peak_bytes_per_s) -> float:
    """The floor: whichever of compute and memory takes longer at the measured ceilings."""
    return max(flops / peak_flops, nbytes / peak_bytes_per_s)


def derived(seconds, flops, nbytes, ceilings=None) -> dict:
    """GB/s, TFLOP/s and (given `Ceilings`) % of roofline and the binding resource, for a measured time."""
    row = {"flops": int(flops), "bytes": int(nbytes), "gbps": nbytes / seconds / 1e9,
           "tflops": flops / seconds / 1e12}
    if ceilings is not None:
        floor = roofline_seconds(flops, nbytes, ceilings.flops, ceilings.bytes_per_s)
        row.update(pct_roofline=100.0 * floor / seconds, roofline_us=floor * 1e6,
                   bound="compute" if flops / ceilings.flops > nbytes / ceilings.bytes_per_s else "memory",
                   peak_gbps=ceilings.bytes_per_s / 1e9, peak_tflops=ceilings.flops / 1e12)
    return row


def _is_fire(module) -> bool:
    return all(isinstance(getattr(module, n, None), nn.Conv2d) for n in ("squeeze", "expand1x1", "expand3x3"))


def network_cost(model: nn.Module, x: torch.Tensor, mode="fwd") -> tuple:
    """(FLOPs, minimum bytes) of `model(x)`, layer by layer: every Fire by the Fire formulas, every other Conv2d
    as conv FLOPs and input + weights + output bytes, pooling as input + output bytes; ReLU, Dropout and Flatten
    are taken as fused into their neighbour (0 bytes, 0 FLOPs). Runs one forward on the meta device.
    NOTE: in forward + backward the network input's gradient is counted though nobody asks for it (it is
    3 channels: under 1% of the bytes of a SqueezeNet)."""
    import copy
    meta_model = copy.deepcopy(model).to(device="meta", dtype=x.dtype)
    itemsize = x.element_size()
    totals = [0, 0]

    def hook(module, inputs, output):
        inp = inputs[0]
        if _is_fire(module):
            N, Cin, H, W = inp.shape
            S, E1, E3 = (module.squeeze.out_channels, module.expand1x1.out_channels,
                         module.expand3x3.out_channels)
            totals[0] += fire_flops(N, Cin, S, E1, E3, H, W, mode)
            totals[1] += fire_bytes(N, Cin, S, E1, E3, H, W, itemsize, mode)
        elif isinstance(module, nn.Conv2d):
            k = math.prod(module.kernel_size) * module.in_channels // module.groups
            fwd = 2 * output.numel() * k
            params = sum(p.numel() for p in module.parameters())
            totals[0] += fwd if mode == "fwd" else 3 * fwd
            totals[1] += itemsize * layer_elements(inp.numel(), params, output.numel(), mode)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            totals[1] += itemsize * layer_elements(inp.numel(), 0, output.numel(), mode)

    def units(module):
        if _is_fire(module) or not list(module.children()):
            yield module
        else:
            for child in module.children():
                yield from units(child)

    handles = [m.register_forward_hook(hook) for m in units(meta_model)]
    try:
        with torch.no_grad():
            meta_model(torch.empty(x.shape, dtype=x.dtype, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return totals[0], totals[1]


# ------------------------------------------------------------------------------------------ the ceilings

class Ceilings(tuple):
    """Measured peak rates of one device for one dtype: bytes/s of a device-to-device copy (bytes read +
    bytes written) and FLOP/s of a large matmul."""
    __slots__ = ()

    def __new__(cls, bytes_per_s, flops, note=""):
        return super().__new__(cls, (bytes_per_s, flops, note))

    bytes_per_s = property(lambda self: self[0])
    flops = property(lambda self: self[1])
    note = property(lambda self: self[2])


def _timed(fn, device, reps) -> float:
    """Best (smallest) seconds of one call of fn over `reps` timed calls after one warm-up call."""
    fn()
    best = math.inf
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return best


def measure_bandwidth(device, nbytes=None, reps=10) -> float:
    """Bytes/s of a large device-to-device copy, counting bytes read plus bytes written. The buffer is far
    larger than the last-level cache (1 GiB on CUDA, 256 MiB on CPU) unless `nbytes` says otherwise."""
    device = torch.device(device)
    nbytes = nbytes or (1 << 30 if device.type == "cuda" else 1 << 28)
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    seconds = _timed(lambda: dst.copy_(src), device, reps)
    return 2 * src.numel() * 4 / seconds


def measure_matmul_flops(device, dtype, n=None, reps=10) -> float:
    """FLOP/s of an n×n×n matmul on random data (8192 on CUDA, 2048 on CPU unless `n` says otherwise).
    fp32 on CUDA uses TF32 exactly when cuDNN convolutions do (torch.backends.cudnn.allow_tf32, on by default),
    so the ceiling matches the math mode the eager convs run in."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    matmul = torch.backends.cuda.matmul
    old = getattr(matmul, "fp32_precision", None), matmul.allow_tf32
    matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    try:
        seconds = _timed(lambda: a @ b, device, reps)
    finally:
        if old[0] is not None:
            matmul.fp32_precision = old[0]
        else:
            matmul.allow_tf32 = old[1]
    return 2 * n ** 3 / seconds


@functools.cache
def _bandwidth(device: str, tiny: bool) -> float:
    return measure_bandwidth(device, nbytes=(1 << 22) if tiny else None, reps=3 if tiny else 10)


@functools.cache
def measure_ceilings(device, dtype, tiny=False) -> Ceilings:
    """The ceilings of `device` for `dtype`, measured once per process (`tiny`: small sizes, to test the code
    path, not to measure anything)."""
    device = torch.device(device)
    key = f"{device.type}:{device.index or 0}" if device.type == "cuda" else device.type
    flops = measure_matmul_flops(device, dtype, n=256 if tiny else None, reps=3 if tiny else 10)
    note = ""
    if device.type == "cuda" and dtype == torch.float32 and torch.backends.cudnn.allow_tf32:
        note = "tf32"
    return Ceilings(_bandwidth(key, tiny), flops, note)
