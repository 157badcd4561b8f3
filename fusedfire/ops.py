"""Fire ops under `torch.ops.fusedfire`: schemas, checks, fakes, autograd, autocast and backend dispatch.

The math (x: N×Cin×H×W; Wsq: S×Cin; W1: E1×S; W3: E3×S×3×3; "·" is a 1×1 conv, "⊛" a 3×3 conv, padding 1):

    s            = relu(Wsq·x + bsq)
    out[:, :E1]  = relu(W1·s + b1)
    out[:, E1:]  = relu(W3 ⊛ s + b3)

Its VJP, with G = grad_out ⊙ (out > 0) split into G1 | G3:

    gW1 = Σ_p G1ᵀ s,  gb1 = Σ_p G1;   gW3[tap] = Σ_p G3ᵀ shift_tap(s),  gb3 = Σ_p G3
    grad_s = (W1ᵀ·G1 + W3ᵀ ⊛ᵀ G3) ⊙ (s > 0)
    gWsq = Σ_p grad_sᵀ x,  gbsq = Σ_p grad_s;   grad_x = Wsqᵀ·grad_s

Kept for backward: x, s, out (and the weights; the biases only matter to a double backward or a recompute); eager
also keeps both expand outputs. `out` may be changed in place afterwards, as eager's: backward then recomputes it.

Ops (`backend` is "auto" or a backend name; `fusedfire.fire` resolves "auto" before calling, the ops when called
directly, e.g. from TorchScript):
    fire(x, weights…, backend) -> out                 inference: no autograd, `s` may never reach memory
    fire_fwd(x, weights…, backend) -> (out, s)         training forward, differentiable through fire_bwd
    fire_bwd(grad_out, x, s, out, Wsq, W1, W3, backend) -> (grad_x, gWsq, gbsq, gW1, gb1, gW3, gb3)
"""
import functools
import importlib.util
import os
from typing import Optional

import torch
from torch import Tensor

from . import eager, native
from ._layout import empty, memory_format, out_shape, s_shape
from .reference import fire_reference

# Without triton installed, `import fusedfire` still works (backends "reference", "cpu", "cuda"); with it, an import
# error in our kernels is not masked.
try:
    _TRITON_INSTALLED = importlib.util.find_spec("triton") is not None
except (ImportError, ValueError):  # ValueError: sys.modules["triton"] is None, i.e. blocked
    _TRITON_INSTALLED = False
if _TRITON_INSTALLED:
    from . import triton as _triton
else:
    _triton = None

BACKEND_ENV = "FUSEDFIRE_BACKEND"
# Preference order of "auto", per device type: the first available wins.
AUTO_ORDER = {"cuda": ("cuda", "triton", "reference"), "cpu": ("cpu", "reference")}
BACKENDS = ("cuda", "triton", "cpu", "reference")
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_NAMES = ("x", "squeeze_weight", "squeeze_bias", "expand1x1_weight", "expand1x1_bias", "expand3x3_weight",
          "expand3x3_bias")


# ---------------------------------------------------------------------------------------------- backends

def triton_interpreted() -> bool:
    """True when the Triton kernels were defined under TRITON_INTERPRET=1 (they then run on CPU tensors)."""
    return _triton is not None and _triton.INTERPRETED


def backends(device) -> list:
    """The backends that can run on `device` in this install, fastest first."""
    device = torch.device(device)
    available = ["reference"]
    if _triton is not None and (device.type == "cuda") != triton_interpreted():
        available.insert(0, "triton")
    if device.type in ("cuda", "cpu") and native.available(device.type):
        available.insert(0, device.type)
    return available


def resolve_backend(backend: str, device) -> str:
    """Turns "auto" (or $FUSEDFIRE_BACKEND) into a concrete backend; a clear error if it cannot run here."""
    if not isinstance(backend, str):
        raise TypeError(f"fusedfire: backend must be a str, 'auto' or one of {BACKENDS}, got "
                        f"{type(backend).__name__} {backend!r}")
    key = (backend, torch.device(device), os.environ.get(BACKEND_ENV, "auto") or "auto")
    resolved = _RESOLVED.get(key)
    if resolved is None:
        resolved = _RESOLVED[key] = _resolve(*key)
    return resolved


_RESOLVED = {}  # NOTE: 5 µs a call unremembered; availability is fixed at import. A dict, which Dynamo traces.


def check_backend_name(backend: str, who: str = "fusedfire") -> str:
    """`backend` if it is "auto" or one of BACKENDS, else a ValueError (whether it runs here is _resolve's
    question)."""
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"{who}: unknown backend {backend!r}; expected 'auto' or one of {BACKENDS}")
    return backend


def _resolve(backend: str, device: torch.device, env: str) -> str:
    if backend == "auto":
        backend = env
    available = backends(device)
    if backend == "auto":
        return next(b for b in AUTO_ORDER.get(device.type, ("reference",)) if b in available)
    check_backend_name(backend)
    if backend not in available:
        hint = ""
        if backend == "triton" and _triton is None:
            hint = " (triton is not installed)"
        elif backend == "triton" and device.type == "cpu":
            hint = " (Triton runs on CPU tensors only with TRITON_INTERPRET=1 set before fusedfire is imported)"
        elif backend == "triton" and device.type == "cuda":
            hint = " (the kernels were defined under TRITON_INTERPRET=1, which runs them on CPU only)"
        raise ValueError(f"fusedfire: backend {backend!r} is not available for device {device}{hint}; "
                         f"available: {available}")
    return backend


def _impl(backend: str, device):
    """The module implementing `backend` ("auto" resolved for `device`: the ops take it too, for TorchScript)."""
    backend = resolve_backend(backend, device)
    if backend == "triton":
        return _triton
    if backend == "reference":
        return eager
    return native


# ------------------------------------------------------------------------------------------------ checks

def _check_tensors(args):
    for name, t in zip(_NAMES, args):
        if not isinstance(t, Tensor):
            raise TypeError(f"fusedfire.fire: {name} must be a Tensor, got {type(t).__name__}")


_FORMS = {"squeeze_weight": ("(S, Cin, 1, 1)", "S"), "squeeze_bias": ("(S,)", "S"),
          "expand1x1_weight": ("(E1, S, 1, 1)", "E1"), "expand1x1_bias": ("(E1,)", "E1"),
          "expand3x3_weight": ("(E3, S, 3, 3)", "E3"), "expand3x3_bias": ("(E3,)", "E3")}


def check_inputs(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                 expand3x3_bias):
    """Raises a clear error, naming the argument, for anything the kernels would get silently wrong."""
    args = (x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias)
    _check_tensors(args)
    if x.dim() != 4:
        raise ValueError(f"fusedfire.fire: x must be 4-D (N, C, H, W), got {x.dim()}-D with shape "
                         f"{tuple(x.shape)}")
    if x.dtype not in DTYPES:
        raise TypeError(f"fusedfire.fire: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    Cin = x.shape[1]
    if Cin < 1:
        raise ValueError(f"fusedfire.fire: x must have at least one channel, got shape {tuple(x.shape)}")
    for name, t in zip(_NAMES[1:], args[1:]):
        form, channels = _FORMS[name]
        dims = 4 if name.endswith("weight") else 1
        if t.dim() != dims:
            raise ValueError(f"fusedfire.fire: {name} must be {dims}-D {form}, got {t.dim()}-D with shape "
                             f"{tuple(t.shape)}")
        if t.shape[0] < 1:
            raise ValueError(f"fusedfire.fire: {name} must have at least one output channel ({channels} >= 1), "
                             f"got shape {tuple(t.shape)}")
    S, E1, E3 = squeeze_weight.shape[0], expand1x1_weight.shape[0], expand3x3_weight.shape[0]
    expected = {"squeeze_weight": (S, Cin, 1, 1), "squeeze_bias": (S,), "expand1x1_weight": (E1, S, 1, 1),
                "expand1x1_bias": (E1,), "expand3x3_weight": (E3, S, 3, 3), "expand3x3_bias": (E3,)}
    for name, t in zip(_NAMES[1:], args[1:]):
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"fusedfire.fire: {name} must have shape {_FORMS[name][0]} = {expected[name]} given x "
                             f"with Cin={Cin} channels and squeeze_weight with S={S}, got {tuple(t.shape)}")
        if t.dtype != x.dtype:
            raise TypeError(f"fusedfire.fire: {name} has dtype {t.dtype} but x has {x.dtype}; all inputs must "
                            f"share one dtype (use torch.autocast to mix precisions)")
        if t.device != x.device:
            raise ValueError(f"fusedfire.fire: {name} is on {t.device} but x is on {x.device}")


# --------------------------------------------------------------------------------------------------- ops

@torch.library.custom_op("fusedfire::fire", mutates_args=())
def fire_op(x: Tensor, squeeze_weight: Tensor, squeeze_bias: Tensor, expand1x1_weight: Tensor,
            expand1x1_bias: Tensor, expand3x3_weight: Tensor, expand3x3_bias: Tensor, backend: str) -> Tensor:
    args = (x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias)
    check_inputs(*args)
    return _impl(backend, x.device).fire(*args)


@fire_op.register_fake
def _fire_fake(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias,
      backend):
    check_inputs(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                 expand3x3_bias)
    return empty(out_shape(x, expand1x1_weight, expand3x3_weight), x, memory_format(x))


@torch.library.custom_op("fusedfire::fire_fwd", mutates_args=())
def fire_fwd_op(x: Tensor, squeeze_weight: Tensor, squeeze_bias: Tensor, expand1x1_weight: Tensor,
                expand1x1_bias: Tensor, expand3x3_weight: Tensor, expand3x3_bias: Tensor,
                backend: str) -> tuple[Tensor, Tensor]:
    args = (x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias)
    check_inputs(*args)
    return _impl(backend, x.device).fire_fwd(*args)


@fire_fwd_op.register_fake
def _fire_fwd_fake(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias,
      backend):
    check_inputs(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                 expand3x3_bias)
    fmt = memory_format(x)
    return (empty(out_shape(x, expand1x1_weight, expand3x3_weight), x, fmt), empty(s_shape(x, squeeze_weight), x, fmt))


@torch.library.custom_op("fusedfire::fire_bwd", mutates_args=())
def fire_bwd_op(grad_out: Tensor, x: Tensor, s: Tensor, out: Tensor, squeeze_weight: Tensor,
                expand1x1_weight: Tensor, expand3x3_weight: Tensor,
                backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return _impl(backend, x.device).fire_bwd(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight)


@fire_bwd_op.register_fake
def _fire_bwd_fake(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight, backend):
    w = squeeze_weight
    return (empty(x.shape, x, memory_format(x)), empty(w.shape, w), empty(w.shape[:1], w),
            empty(expand1x1_weight.shape, w), empty(expand1x1_weight.shape[:1], w),
            empty(expand3x3_weight.shape, w), empty(expand3x3_weight.shape[:1], w))


# Schemas of the compiled kernels in csrc/: `STABLE_TORCH_LIBRARY_IMPL(fusedfire, CUDA|CPU, m)` implements them, and
# the tensors' device picks which; backend "cuda" means these ops on CUDA tensors, backend "cpu" on CPU tensors.
_native = torch.library.Library("fusedfire", "FRAGMENT")
_WEIGHTS = "Tensor squeeze_weight, Tensor squeeze_bias, Tensor expand1x1_weight, Tensor expand1x1_bias, " \
           "Tensor expand3x3_weight, Tensor expand3x3_bias"
_native.define(f"native_fire(Tensor x, {_WEIGHTS}) -> Tensor")
_native.define(f"native_fire_fwd(Tensor x, {_WEIGHTS}) -> (Tensor, Tensor)")
_native.define("native_fire_bwd(Tensor grad_out, Tensor x, Tensor s, Tensor out, Tensor squeeze_weight, "
               "Tensor expand1x1_weight, Tensor expand3x3_weight) -> (Tensor, Tensor, Tensor, Tensor, Tensor, "
               "Tensor, Tensor)")
# CPU only, inference only (no autograd): an fp32 Fire's derived weights packed once (csrc/cpu/pack.h), and the
# forward that takes them, channels_last where it pools its output (pool_kernel > 0) or applies the next Fire's squeeze
# to it (next_squeeze_weight, next_packed: out is that Fire's s), the Fire's output then never in memory; squeezed: x
# is the Fire's own s (from the previous Fire's call). optimize's FrozenFire and FusedSequential keep the packs current.
_native.define("native_fire_pack(Tensor squeeze_weight, Tensor squeeze_bias, Tensor expand1x1_weight, "
               "Tensor expand1x1_bias, Tensor expand3x3_weight) -> Tensor")
_native.define(f"native_fire_packed(Tensor x, {_WEIGHTS}, Tensor packed, int pool_kernel=0, int pool_stride=0, "
               "bool pool_ceil_mode=False, bool squeezed=False, Tensor? next_squeeze_weight=None, "
               "Tensor? next_packed=None) -> Tensor")
# CPU only, inference only: SqueezeNet's stem, max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool_kernel,
# pool_stride, ceil_mode) in one pass (csrc/cpu/stem.cpp), fp32, square kernels and strides, out channels_last; with
# the next Fire's squeeze weight and pack, out is that Fire's s (as native_fire_packed's next_*).
_native.define("native_stem(Tensor x, Tensor weight, Tensor bias, int stride, int padding, int pool_kernel, "
               "int pool_stride, bool ceil_mode, Tensor? next_squeeze_weight=None, Tensor? next_packed=None) -> Tensor")
# CPU only: max_pool2d of a dense channels_last fp32 x, square kernel (<= 8) and stride, no padding (csrc/cpu/pool.cpp)
_native.define("native_max_pool(Tensor x, int kernel, int stride, bool ceil_mode) -> Tensor")
# CPU only, inference only: SqueezeNet's classifier, adaptive_avg_pool2d(relu(conv2d(x, weight, bias)), 1) for a 1×1
# conv, fp32, in one pass (csrc/cpu/classifier.cpp) with the weights packed once (native_classifier_pack).
_native.define("native_classifier_pack(Tensor weight, Tensor bias) -> Tensor")
_native.define("native_classifier(Tensor x, Tensor weight, Tensor bias, Tensor packed) -> Tensor")
for _name, _fake in (("native_fire", _fire_fake), ("native_fire_fwd", _fire_fwd_fake),
                     ("native_fire_bwd", _fire_bwd_fake)):
    torch.library.register_fake(f"fusedfire::{_name}", functools.partial(_fake, backend="native"), lib=_native)


def pack_numel(cin: int, s: int, e1: int, e3: int) -> int:
    """The length of native_fire_pack's tensor (csrc/cpu/pack.h's layout)."""
    padded = lambda m: -(-m // 16) * 16  # noqa: E731
    return 16 + (cin + 1) * padded(s) + (s + 1) * padded(e1) + (36 * s * e3 if s % 16 == 0 == e3 % 16 else 0)


@torch.library.register_fake("fusedfire::native_fire_pack", lib=_native)
def _pack_fake(squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight):
    s, cin = squeeze_weight.shape[:2]
    return squeeze_weight.new_empty(pack_numel(cin, s, expand1x1_weight.shape[0], expand3x3_weight.shape[0]))


def _pooled(size, kernel, stride, ceil_mode):
    """PyTorch's pooled size without padding or dilation."""
    out = (size - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    return out - 1 if ceil_mode and (out - 1) * stride >= size else out


@torch.library.register_fake("fusedfire::native_stem", lib=_native)
def _stem_fake(x, weight, bias, stride, padding, pool_kernel, pool_stride, ceil_mode, next_squeeze_weight=None,
               next_packed=None):
    conv = [(size + 2 * padding - weight.shape[2]) // stride + 1 for size in x.shape[2:]]
    channels = (weight if next_squeeze_weight is None else next_squeeze_weight).shape[0]
    shape = (x.shape[0], channels, *(_pooled(c, pool_kernel, pool_stride, ceil_mode) for c in conv))
    return x.new_empty(shape).contiguous(memory_format=torch.channels_last)


@torch.library.register_fake("fusedfire::native_max_pool", lib=_native)
def _max_pool_fake(x, kernel, stride, ceil_mode):
    shape = (*x.shape[:2], *(_pooled(size, kernel, stride, ceil_mode) for size in x.shape[2:]))
    return x.new_empty(shape).contiguous(memory_format=torch.channels_last)


@torch.library.register_fake("fusedfire::native_classifier_pack", lib=_native)
def _classifier_pack_fake(weight, bias):
    m, k = weight.shape[:2]
    return weight.new_empty((k + 1) * (-(-m // 16) * 16))


@torch.library.register_fake("fusedfire::native_classifier", lib=_native)
def _classifier_fake(x, weight, bias, packed):
    return x.new_empty((x.shape[0], weight.shape[0], 1, 1))


@torch.library.register_fake("fusedfire::native_fire_packed", lib=_native)
def _packed_fake(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias,
                 packed, pool_kernel=0, pool_stride=0, pool_ceil_mode=False, squeezed=False, next_squeeze_weight=None,
                 next_packed=None):
    if squeezed:  # x is s: the Fire's output has its shape, E1 + E3 channels
        torch._check(x.dim() == 4 and x.shape[1] == squeeze_weight.shape[0],
                     lambda: f"native_fire_packed: a squeezed x has the squeeze's {squeeze_weight.shape[0]} channels")
        channels = expand1x1_weight.shape[0] + expand3x3_weight.shape[0]
        out = empty((x.shape[0], channels, *x.shape[2:]), x, memory_format(x))
    else:
        out = _fire_fake(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                         expand3x3_bias, backend="native")
    if next_squeeze_weight is not None:
        return empty((out.shape[0], next_squeeze_weight.shape[0], *out.shape[2:]), out, torch.channels_last)
    return _max_pool_fake(out, pool_kernel, pool_stride, pool_ceil_mode) if pool_kernel != 0 else out


def _setup_context(ctx, inputs, output):
    x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias, backend = \
        inputs
    out, s = output
    ctx.mark_non_differentiable(s)
    # The biases only for a double backward or a recompute (see _backward); they are a few hundred numbers.
    saved = (x, s, squeeze_weight, expand1x1_weight, expand3x3_weight, squeeze_bias, expand1x1_bias, expand3x3_bias)
    if torch._C._autograd._top_saved_tensors_default_hooks(False) is None:
        # `out` is kept beside, not saved: eager saves nobody's view of its concatenated output, so changing it in
        # place (out.add_(...)) must not break backward. Detached (it shares out's storage and version counter, and
        # has no grad_fn to make a reference cycle); if its version moved, backward recomputes it.
        ctx.save_for_backward(*saved)
        ctx.out, ctx.out_version = out.detach(), out._version
    else:  # saved-tensor hooks (non-reentrant checkpoint, save_on_cpu): `out` goes through them, to be dropped/moved
        ctx.save_for_backward(*saved, out)
        ctx.out = None
    ctx.backend = backend


def _backward(ctx, grad_out, grad_s):
    x, s, squeeze_weight, expand1x1_weight, expand3x3_weight, bsq, b1, b3, *saved_out = ctx.saved_tensors
    inputs = (x, squeeze_weight, bsq, expand1x1_weight, b1, expand3x3_weight, b3)
    if torch.is_grad_enabled():  # backward(create_graph=True): these gradients must be differentiable themselves
        return _differentiable_vjp(inputs, ctx.needs_input_grad[:7], grad_out) + (None,)
    if saved_out:  # through the saved-tensor hooks
        (out,) = saved_out
    elif ctx.out._version == ctx.out_version:
        out = ctx.out
    else:  # changed in place since: one more forward
        out = fire_fwd_op(*inputs, ctx.backend)[0]
    grads = fire_bwd_op(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight, ctx.backend)
    return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad)) + (None,)


def _differentiable_vjp(inputs, needs, grad_out):
    """The VJP for a double backward (and for torch.func, whose transforms always ask for one): the reference
    composition is recomputed from the inputs and differentiated by torch.func.vjp, so that grad-of-grad (gradient
    penalties, Hessian-vector products) is exact. A plain first-order backward never comes here; this costs an eager
    forward and backward."""
    _, vjp = torch.func.vjp(fire_reference, *inputs)
    return tuple(g if need else None for g, need in zip(vjp(grad_out), needs))


fire_fwd_op.register_autograd(_backward, setup_context=_setup_context)


class _FireFunction(torch.autograd.Function):
    """fire_fwd_op with the same autograd, as an autograd.Function: torch.func transforms (grad, vjp, jacrev) run
    only these, not a custom op's register_autograd (torch 2.14). Under vmap the ops' batching rules run."""
    generate_vmap_rule = True

    @staticmethod
    def forward(*inputs):
        return fire_fwd_op(*inputs)

    setup_context = staticmethod(_setup_context)
    backward = staticmethod(_backward)


def _vmap_rule(op, folds: bool):
    """A batching rule for `op`: with only the activations batched and `folds`, the vmapped dimension joins N (one
    call); otherwise one call per vmapped element (NOTE: B calls; per-example weights or gradients need them)."""
    def rule(info, in_dims, *args):
        *tensors, backend = args
        if folds and all(d is None for d in in_dims[1:]):  # x alone is batched
            x = tensors[0].movedim(in_dims[0], 0)
            result = op(x.flatten(0, 1), *tensors[1:], backend)
            unfold = lambda t: t.unflatten(0, x.shape[:2])  # noqa: E731
            return (tuple(map(unfold, result)), (0,) * len(result)) if isinstance(result, tuple) else \
                (unfold(result), 0)
        results = [op(*(t if d is None else t.select(d, b) for t, d in zip(tensors, in_dims)), backend)
                   for b in range(info.batch_size)]
        if isinstance(results[0], tuple):
            return tuple(torch.stack(r) for r in zip(*results)), (0,) * len(results[0])
        return torch.stack(results), 0
    return rule


fire_op.register_vmap(_vmap_rule(fire_op, folds=True))
fire_fwd_op.register_vmap(_vmap_rule(fire_fwd_op, folds=True))
fire_bwd_op.register_vmap(_vmap_rule(fire_bwd_op, folds=False))  # its weight gradients are per vmapped element


def _register_autocast(op, device_type: str):
    """Autocast like eager convs: fp32 (not fp64) tensors on `device_type` are cast to the *current* autocast
    dtype (torch.library.register_autocast only knows a fixed one), then the op runs with autocast off."""
    key_name = "Autocast" + torch._C._dispatch_key_for_device(device_type)
    key = getattr(torch._C.DispatchKey, key_name)
    overload = op._opoverload

    def cast(a, dtype):
        eligible = (isinstance(a, Tensor) and a.is_floating_point() and a.dtype != torch.float64
                    and a.device.type == device_type)
        return a.to(dtype) if eligible else a

    def kernel(*args):
        dtype = torch.get_autocast_dtype(device_type)
        with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
            return overload(*(cast(a, dtype) for a in args))

    overload.py_impl(key)(kernel)  # for the Python dispatcher (torch.compile, export)
    op._lib.impl(overload._name.split("::")[1], lambda _keyset, *args: kernel(*args), key_name, with_keyset=True)


for _op in (fire_op, fire_fwd_op):
    for _device_type in ("cpu", "cuda"):
        _register_autocast(_op, _device_type)


def fire(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias,
         *, backend: str = "auto"):
    """Fire forward (see the module docstring), differentiable in x and all six parameters."""
    args = (x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias)
    _check_tensors(args)  # the rest is checked inside the ops, also for direct torch.ops calls
    if torch.jit.is_tracing() or torch.compiler.is_compiling():  # NOTE: eager calls skip the ONNX check (3 µs)
        if torch.onnx.is_in_onnx_export():  # both exporters: the eager composition, standard Conv/Relu/Concat
            check_inputs(*args)
            return fire_reference(*args)
        if torch.jit.is_tracing():  # one graph in any grad mode (trace's check reruns under no_grad)
            resolve_backend(backend, x.device)  # checked now; "auto" stays "auto", resolved where the trace runs
            return fire_fwd_op(*args, backend)[0]
    backend = resolve_backend(backend, x.device)
    grad = torch.is_grad_enabled() and any(a.requires_grad for a in args)
    if torch._C._are_functorch_transforms_active():  # torch.func: an autograd.Function, the ops' batching rules
        return _FireFunction.apply(*args, backend)[0] if grad else fire_op(*args, backend)
    if grad:
        return fire_fwd_op(*args, backend)[0]
    if backend in ("cpu", "cuda") and not torch.is_autocast_enabled(x.device.type):
        # NOTE: native inference calls its op directly: the custom-op wrapper of fusedfire::fire costs ~28 µs a
        # call (46 against 18 µs for a 4×4 Fire on CPU), 5% of a 13×13 Fire at N=1. Same checks, same kernel.
        check_inputs(*args)
        return native.fire(*args)
    return fire_op(*args, backend)


def fire_scripted(x: Tensor, squeeze_weight: Tensor, squeeze_bias: Optional[Tensor], expand1x1_weight: Tensor,
                  expand1x1_bias: Optional[Tensor], expand3x3_weight: Tensor, expand3x3_bias: Optional[Tensor],
                  backend: str) -> Tensor:
    """`fire` as TorchScript compiles it (FusedFire.forward under torch.jit.script): the ops, which check their
    inputs and resolve "auto" themselves. The biases are Optional as nn.Conv2d's are to TorchScript."""
    assert squeeze_bias is not None and expand1x1_bias is not None and expand3x3_bias is not None, \
        "fusedfire.fire: the biases must be tensors"
    if torch.is_grad_enabled() and (x.requires_grad or squeeze_weight.requires_grad or squeeze_bias.requires_grad
                                    or expand1x1_weight.requires_grad or expand1x1_bias.requires_grad
                                    or expand3x3_weight.requires_grad or expand3x3_bias.requires_grad):
        return torch.ops.fusedfire.fire_fwd(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias,
                                            expand3x3_weight, expand3x3_bias, backend)[0]
    return torch.ops.fusedfire.fire(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias,
                                    expand3x3_weight, expand3x3_bias, backend)

