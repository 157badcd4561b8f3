"""Launchers of the Fire kernels: backend "triton" (`fire`, `fire_fwd`, `fire_bwd`, same contracts as
fusedfire/eager.py), and one launcher per kernel (`squeeze`, `expand`, `grad_s`, `wgrad`) taking `config=`.

Inputs arrive checked by fusedfire.ops.check_inputs. `out`, `s` and `grad_x` are allocated in
`memory_format(x)`; weight/bias gradients are contiguous in the weights' dtype; no activation is copied.
"""
import contextlib

import torch
import triton

from .._layout import empty, memory_format, out_shape, s_shape
from . import kernels, tuning
from . import INTERPRETED


def _autotuned(fn, name, key, fp64):
    configs = [triton.Config(tuning.meta(c), num_warps=c["num_warps"], num_stages=c["num_stages"])
               for c in tuning.configs(name, fp64)]
    return triton.autotune(configs=configs, key=key)(fn)


_KERNELS = {"squeeze": kernels.squeeze_kernel, "expand": kernels.expand_kernel, "grad_s": kernels.grad_s_kernel,
            "wgrad": kernels.wgrad_kernel}
_KEYS = {"squeeze": ["P", "K", "C"], "expand": ["P", "S", "E1", "E3"], "grad_s": ["P", "S", "E1", "E3"],
         "wgrad": ["P", "E", "K", "CHUNK"]}
# (name, fp64) -> autotuner: fp64 Fires tune over their own, smaller tiles (tuning.CONFIGS_FP64).
_TUNED = {} if INTERPRETED else {(name, fp64): _autotuned(_KERNELS[name], name, key, fp64)
                                 for name, key in _KEYS.items() for fp64 in (False, True)}


def _launch(name, grid, args, constexprs, config):
    """Runs kernel `name`: autotuned on a GPU, else with `config` (default: the first of tuning.configs)."""
    fp64 = constexprs["ACC_FP64"]
    if config is None and (name, fp64) in _TUNED:
        _TUNED[name, fp64][grid](*args, **constexprs)
        return
    config = config or tuning.configs(name, fp64)[0]
    meta = tuning.meta(config)
    _KERNELS[name][grid(meta)](*args, **constexprs, **meta, num_warps=config["num_warps"],
                               num_stages=config["num_stages"])


def _device(t):
    """Launch on t's device (Triton uses the current device's current stream)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _dot(operand: torch.dtype, fire_dtype: torch.dtype) -> dict:
    """Accumulator and tl.dot precision for dots whose operands are `operand` in a Fire of `fire_dtype`.

    fp32 operands use tf32 exactly where eager convs do (torch.backends.cudnn.allow_tf32), and always for the
    fp32 grad_s of fp16/bf16 inputs (their other operand converts exactly; see grad_s_kernel's NOTE).
    """
    lowp = fire_dtype in (torch.float16, torch.bfloat16)
    tf32 = operand == torch.float32 and (torch.backends.cudnn.allow_tf32 or lowp)
    return dict(ACC_FP64=fire_dtype == torch.float64, UPCAST=INTERPRETED and fire_dtype == torch.bfloat16,
                PRECISION="tf32" if tf32 else "ieee")


def _check_weight(w):
    # NOTE: weight offsets are int32 in the kernels (activations are int64).
    if w.numel() >= 2**31:
        raise ValueError(f"fusedfire (triton): a weight of {w.numel()} elements is too large for int32 offsets")


def _pixels(x):
    N, _, H, W = x.shape
    P = N * H * W
    if P >= 2**31:
        raise ValueError(f"fusedfire (triton): N·H·W = {P} pixels must be < 2³¹ (split the batch)")
    return P, H, W


# ------------------------------------------------------------------------------------------ kernel launchers

def squeeze(a, weight, bias, y, *, relu, config=None):
    """y = act(a·weightᵀ + bias) through strides: weight is a [C, K] view (Wsq, or Wsq.t() for grad_x);
    bias None means no bias. `a`, `weight`, `y` may differ in dtype (fp32 grad_s against fp16 weights)."""
    P, H, W = _pixels(a)
    K, C = a.shape[1], y.shape[1]
    if P == 0:
        return y
    _check_weight(weight)
    args = (a, weight, bias if bias is not None else weight, y, P, H, W, K, C, *a.stride(), *weight.stride(),
            *y.stride())
    grid = lambda m: (triton.cdiv(P, m["BLOCK_M"]), triton.cdiv(C, m["BLOCK_N"]))  # noqa: E731
    with _device(a):
        _launch("squeeze", grid, args, dict(HAS_BIAS=bias is not None, RELU=relu, **_dot(a.dtype, weight.dtype)),
                config)
    return y


def _expand_dims(s, w1, w3):
    """(P, H, W, S, E1, E3) of a launch over s with both expand weights, checked for int32 offsets when P > 0."""
    P, H, W = _pixels(s)
    if P:
        for w in (w1, w3):
            _check_weight(w)
    return P, H, W, s.shape[1], w1.shape[0], w3.shape[0]


def expand(s, w1, b1, w3, b3, out, *, config=None):
    """out[:, :E1] = relu(W1·s + b1), out[:, E1:] = relu(W3 ⊛ s + b3), in one launch."""
    P, H, W, S, E1, E3 = _expand_dims(s, w1, w3)
    if P == 0:
        return out
    args = (s, w1, b1, w3, b3, out[:, :E1], out[:, E1:], P, H, W, S, E1, E3, *s.stride(), w1.stride(0),
            w1.stride(1), *w3.stride(), *out.stride())
    grid = lambda m: (triton.cdiv(P, m["BLOCK_M"]),  # noqa: E731
                      triton.cdiv(E1, m["BLOCK_N"]) + triton.cdiv(E3, m["BLOCK_N"]))
    with _device(s):
        _launch("expand", grid, args, _dot(s.dtype, s.dtype), config)
    return out


def grad_s(grad_out, out, s, w1, w3, gs, *, config=None):
    """gs = (W1ᵀ·G1 + W3ᵀ ⊛ᵀ G3) ⊙ (s > 0), G = grad_out ⊙ (out > 0); gs is fp32 (fp64 for fp64 inputs)."""
    P, H, W, S, E1, E3 = _expand_dims(s, w1, w3)
    if P == 0:
        return gs
    args = (grad_out[:, :E1], grad_out[:, E1:], out[:, :E1], out[:, E1:], s, w1, w3, gs, P, H, W, S, E1, E3,
            *grad_out.stride(), *out.stride(), *s.stride(), w1.stride(0), w1.stride(1), *w3.stride(), *gs.stride())
    grid = lambda m: (triton.cdiv(P, m["BLOCK_M"]), triton.cdiv(S, m["BLOCK_N"]))  # noqa: E731
    with _device(s):
        _launch("grad_s", grid, args, _dot(grad_out.dtype, s.dtype), config)
    return gs


def wgrad(g, mask, inp, ksize, weight_dtype, *, config=None):
    """(gW [E, K, ksize, ksize], gb [E]) with gW[e, k, tap] = Σ_p G[p, e]·inp[p + shift_tap, k], gb = Σ_p G,
    G = g ⊙ (mask > 0) (mask None: G = g): per-chunk fp32 partials from one launch, summed over chunks by torch
    (deterministic: no atomics). Returned contiguous in `weight_dtype`."""
    P, H, W = _pixels(inp)
    E, K = g.shape[1], inp.shape[1]
    acc_dtype = torch.float64 if weight_dtype == torch.float64 else torch.float32
    if P == 0:
        return (torch.zeros((E, K, ksize, ksize), dtype=weight_dtype, device=g.device),
                torch.zeros((E,), dtype=weight_dtype, device=g.device))
    # NOTE: ~1024 programs fill an H100's 132 SMs several times over; chunks follow from a nominal 64×64 tile,
    # not from the config, so the partial buffer has one size for every config (autotuning reuses it). Its size
    # is chunks·E·K·ksize² fp32 words, e.g. 29 × 256·64·9 · 4 B = 17 MB for the widest Fire's expand3x3.
    per_chunk = triton.cdiv(E, 64) * triton.cdiv(K, 64) * ksize * ksize
    chunks = max(1, min(triton.cdiv(P, tuning.CHUNK_ALIGN), triton.cdiv(1024, per_chunk)))
    chunk = triton.cdiv(triton.cdiv(P, chunks), tuning.CHUNK_ALIGN) * tuning.CHUNK_ALIGN
    chunks = triton.cdiv(P, chunk)
    pw = torch.empty((chunks, E, K, ksize * ksize), dtype=acc_dtype, device=g.device)
    pb = torch.empty((chunks, E), dtype=acc_dtype, device=g.device)
    m = mask if mask is not None else g
    args = (g, m, inp, pw, pb, P, H, W, E, K, chunk, *g.stride(), *m.stride(), *inp.stride())
    grid = lambda meta: (chunks, triton.cdiv(E, meta["BLOCK_E"]),  # noqa: E731
                         triton.cdiv(K, meta["BLOCK_K"]) * ksize * ksize)
    with _device(g):
        _launch("wgrad", grid, args, dict(KSIZE=ksize, MASKED=mask is not None, **_dot(g.dtype, weight_dtype)),
                config)
    return (pw.sum(0).view(E, K, ksize, ksize).to(weight_dtype), pb.sum(0).to(weight_dtype))


# ------------------------------------------------------------------------------------- backend "triton"

def fire_fwd(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
             expand3x3_bias, *, configs=None):
    """(out, s): the squeeze kernel writes s, the dual expand kernel writes both halves of out."""
    configs = configs or {}
    fmt = memory_format(x)
    s = empty(s_shape(x, squeeze_weight), x, fmt)
    out = empty(out_shape(x, expand1x1_weight, expand3x3_weight), x, fmt)
    squeeze(x, squeeze_weight[:, :, 0, 0], squeeze_bias, s, relu=True, config=configs.get("squeeze"))
    expand(s, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias, out, config=configs.get("expand"))
    return out, s


def fire(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight, expand3x3_bias,
         *, configs=None):
    """Inference: out (s goes through memory between the two launches)."""
    return fire_fwd(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                    expand3x3_bias, configs=configs)[0]


def fire_bwd(grad_out, x, s, out, squeeze_weight, expand1x1_weight, expand3x3_weight, *, configs=None):
    """(grad_x, gWsq, gbsq, gW1, gb1, gW3, gb3): grad_s (one kernel over both halves of grad_out), then
    grad_x = Wsqᵀ·grad_s with the squeeze kernel, and the three weight gradients with the wgrad kernel."""
    configs = configs or {}
    N, Cin, H, W = x.shape
    S, E1 = squeeze_weight.shape[0], expand1x1_weight.shape[0]
    fmt = memory_format(x)
    wdt = squeeze_weight.dtype
    gs_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    gs = torch.empty((N, S, H, W), dtype=gs_dtype, device=x.device, memory_format=fmt)
    grad_s(grad_out, out, s, expand1x1_weight, expand3x3_weight, gs, config=configs.get("grad_s"))
    grad_x = torch.empty_like(x, memory_format=fmt)
    squeeze(gs, squeeze_weight[:, :, 0, 0].t(), None, grad_x, relu=False, config=configs.get("squeeze"))
    wg = configs.get("wgrad")
    gw1, gb1 = wgrad(grad_out[:, :E1], out[:, :E1], s, 1, wdt, config=wg)
    gw3, gb3 = wgrad(grad_out[:, E1:], out[:, E1:], s, 3, wdt, config=wg)
    gwsq, gbsq = wgrad(gs, None, x, 1, wdt, config=wg)
    return grad_x, gwsq, gbsq, gw1, gb1, gw3, gb3
