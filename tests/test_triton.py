"""Backend "triton", kernel by kernel and through the public API, against the fp64 reference.

Forward: `out` and `s` against fp64 eager convs. Backward: all seven gradients against fp64 autograd of the
reference (fp32/fp64), or, for fp16/bf16, against the VJP of backend "reference" (fusedfire.eager.fire_bwd) at
*our* saved `s` and `out`: in fp64 for the truth, and in the same dtype for PyTorch's own error (flash-attn 2×
rule). NOTE: the lowp backward is compared at the same saved tensors because a pre-activation within one lowp
rounding of 0 flips its ReLU mask and moves a gradient by O(|grad_out·W|); ours and eager's flip different ones.

Every kernel config runs explicitly (`configs=`), over SqueezeNet's Fire channel counts, KernelBench's, odd ones,
H or W = 1, N = 1…3, NCHW / channels_last / strided views, fp32 / fp16 / bf16 / fp64, and strided or 0-stride
grad_out. On CPU the kernels run under the interpreter (conftest), so spatial sizes stay small.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

import fusedfire
from fusedfire import reference
from fusedfire._layout import memory_format
from fusedfire.configs import KERNELBENCH_FIRE, SQUEEZENET_FIRES
from fusedfire.eager import fire_bwd as eager_fire_bwd
from fusedfire.testing import assert_close, assert_close_lowp, fire_params

from .conftest import DEVICE

if "triton" not in fusedfire.backends(DEVICE):
    pytest.skip(f"backend 'triton' is not available on {DEVICE}", allow_module_level=True)

import fusedfire.triton as ft  # noqa: E402

ODD = (5, 3, 7, 9)  # Cin, S, E1, E3
LOWP = (torch.float16, torch.bfloat16)
N_CONFIGS = len(ft.CONFIGS["squeeze"])
assert all(len(c) == N_CONFIGS for c in ft.CONFIGS.values()), "the tests pair config i of every kernel"
NAMES = ("x", "squeeze_weight", "squeeze_bias", "expand1x1_weight", "expand1x1_bias", "expand3x3_weight",
         "expand3x3_bias")


@pytest.fixture(autouse=True)
def _ieee_fp32(monkeypatch):
    """fp32 tests compare at fp32 accuracy: no tf32 (the eager default on GPU; the interpreter ignores it)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _tile(config):
    return math.prod(v for k, v in config.items() if k.startswith("BLOCK_"))


def _configs(i):
    """Config i of every kernel; "widest": each kernel's largest tile (fewest interpreted iterations)."""
    if i == "widest":
        return {name: max(configs, key=_tile) for name, configs in ft.CONFIGS.items()}
    return None if i is None else {name: configs[i] for name, configs in ft.CONFIGS.items()}


def _x(n, cin, h, w, dtype=torch.float32, layout="nchw"):
    """x in one of the layouts: nchw, channels_last, or `strided`, a view sliced in C and W of a bigger tensor."""
    if layout == "strided":
        return torch.randn(n, 2 * cin + 1, h, w + 3, dtype=dtype, device=DEVICE)[:, 1::2, :, 2:w + 2]
    x = torch.randn(n, cin, h, w, dtype=dtype, device=DEVICE)
    return x.to(memory_format=torch.channels_last) if layout == "channels_last" else x


def _d(t):
    return t.detach().double().cpu()


def _check(name, got, want64, dtype, lowp=None, rtol=1e-5, atol=1e-5):
    if dtype in LOWP:
        assert_close_lowp(got, want64, lowp, name=name)
    else:
        tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=rtol, atol=atol)
        assert_close(got, want64, name=name, **tol)


def _check_forward(x, params, out, s):
    """out and s against fp64 (fp16/bf16: at most 2× eager's error in the same dtype)."""
    x64, p64 = _d(x), [_d(p) for p in params]
    s64 = F.relu(F.conv2d(x64, p64[0], p64[1]))
    lowp = {}
    if x.dtype in LOWP:
        xc, pc = x.detach().cpu(), [p.detach().cpu() for p in params]
        lowp = dict(s=F.relu(F.conv2d(xc, pc[0], pc[1])), out=reference.fire_reference(xc, *pc))
    _check("s", s, s64, x.dtype, lowp.get("s"))
    _check("out", out, reference.fire_reference(x64, *p64), x.dtype, lowp.get("out"))
    fmt = memory_format(x)
    assert out.is_contiguous(memory_format=fmt) and s.is_contiguous(memory_format=fmt)


def _check_backward(x, params, s, out, grad_out, grads):
    """The seven gradients against the fp64 truth (see the module docstring for fp16/bf16)."""
    assert len(grads) == 7
    if x.dtype in LOWP:
        weights = (params[0], params[2], params[4])
        want = eager_fire_bwd(_d(grad_out), _d(x), _d(s), _d(out), *(_d(w) for w in weights))
        eager = eager_fire_bwd(*(t.detach().cpu() for t in (grad_out, x, s, out, *weights)))
    else:
        x64 = _d(x).requires_grad_()
        p64 = [_d(p).requires_grad_() for p in params]
        want = torch.autograd.grad(reference.fire_reference(x64, *p64), (x64, *p64), _d(grad_out))
        eager = [None] * 7
    for name, got, w, e, like in zip(NAMES, grads, want, eager, (x, *params)):
        assert got.dtype == like.dtype and got.shape == like.shape, (name, got.dtype, got.shape)
        _check(f"grad {name}", got, w, x.dtype, e, rtol=1e-4, atol=1e-4)
    fmt = memory_format(x)
    assert grads[0].is_contiguous(memory_format=fmt)
    assert all(g.is_contiguous() for g in grads[1:])


def _run(x, params, config=None, grad_out=None):
    """fire_fwd and fire_bwd of the triton backend with config i of every kernel, checked against fp64."""
    configs = _configs(config)
    out, s = ft.fire_fwd(x, *params, configs=configs)
    _check_forward(x, params, out, s)
    if grad_out is None:
        grad_out = torch.randn_like(out)
    grads = ft.fire_bwd(grad_out, x, s, out, params[0], params[2], params[4], configs=configs)
    _check_backward(x, params, s, out, grad_out, grads)
    return out, s, grads


# -------------------------------------------------------------------------------------- shapes and layouts

def _distinct_channels(fires):
    """{(Cin, S, E1, E3): names}: the 16 SqueezeNet Fires have 9 distinct channel configs."""
    out = {}
    for f in fires:
        out.setdefault(f[1:5], []).append(f.name)
    return out


FIRE_CHANNELS = _distinct_channels(SQUEEZENET_FIRES)


@pytest.mark.parametrize("channels", FIRE_CHANNELS, ids=lambda c: "+".join(FIRE_CHANNELS[c]))
def test_squeezenet_fire_channels_small(channels):
    """Every SqueezeNet Fire's channel counts (duplicates run once) at 4×5, each kernel's widest config (every
    config runs in test_every_config_dtype_layout)."""
    _run(_x(1, channels[0], 4, 5), fire_params(*channels, device=DEVICE), "widest")


@pytest.mark.parametrize("name, dtype", [("1_1.features.9", torch.float32), ("1_0.features.12", torch.bfloat16)])
def test_squeezenet_fire_real_size(name, dtype):
    """Two Fires at their real 13×13 (the interpreter makes 54×54 cost ~100 s), autotune's default configs."""
    cfg = next(c for c in SQUEEZENET_FIRES if c.name == name)
    _run(_x(1, cfg.inplanes, cfg.size, cfg.size, dtype), fire_params(*cfg[1:5], dtype=dtype, device=DEVICE))


def test_kernelbench_fire():
    cfg = KERNELBENCH_FIRE
    _run(_x(2, cfg.inplanes, 9, 11), fire_params(*cfg[1:5], device=DEVICE))


@pytest.mark.parametrize("config", range(N_CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
def test_every_config_dtype_layout(layout, dtype, config):
    _run(_x(2, ODD[0], 5, 6, dtype, layout), fire_params(*ODD, dtype=dtype, device=DEVICE), config)


@pytest.mark.parametrize("n, h, w", [(1, 1, 7), (3, 6, 1), (1, 1, 1), (3, 2, 3)])
def test_thin_images_and_batch_sizes(n, h, w):
    _run(_x(n, 6, h, w), fire_params(6, 5, 9, 3, device=DEVICE))


def test_fp64_path():
    x = _x(2, *ODD[:1], 4, 5, torch.float64)
    _run(x, fire_params(*ODD, dtype=torch.float64, device=DEVICE))


def test_gradcheck_fp64():
    """Finite differences through the public API. NOTE: fast_mode (a random projection of the Jacobian): the
    full one takes ~1000 interpreted launches (two forwards per input element, a backward per output element),
    8.5 minutes on this 2-core machine."""
    x = _x(2, 3, 3, 4, torch.float64).requires_grad_()
    params = fire_params(3, 2, 2, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: fusedfire.fire(*a, backend="triton"), (x, *params), fast_mode=True)


# ------------------------------------------------------------------------------------------------ grad_out

@pytest.mark.parametrize("kind", ["expanded", "strided"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grad_out_read_through_strides(kind, dtype):
    """grad_out with 0 strides (what `.sum().backward()` passes) or a non-contiguous view, never copied."""
    x = _x(2, ODD[0], 4, 5, dtype, "channels_last")
    params = fire_params(*ODD, dtype=dtype, device=DEVICE)
    N, E = 2, ODD[2] + ODD[3]
    if kind == "expanded":
        grad_out = torch.tensor(0.75, dtype=dtype, device=DEVICE).expand(N, E, 4, 5)
    else:
        grad_out = torch.randn(5, N, 3 * E, dtype=dtype, device=DEVICE).permute(1, 2, 0)[:, ::3, None, :]
        grad_out = grad_out.expand(N, E, 4, 5)  # a view: stride 0 in H, stride 3·5·N in C
    _run(x, params, grad_out=grad_out)


def test_public_api_sum_backward():
    """fusedfire.fire(backend="triton") under autograd, `.sum().backward()` (0-stride grad_out), fp32."""
    x = _x(2, ODD[0], 5, 6, layout="strided").requires_grad_()
    params = fire_params(*ODD, device=DEVICE, requires_grad=True)
    out = fusedfire.fire(x, *params, backend="triton")
    out.sum().backward()
    x64 = _d(x).requires_grad_()
    p64 = [_d(p).requires_grad_() for p in params]
    out64 = reference.fire_reference(x64, *p64)
    assert_close(out, out64)
    out64.sum().backward()
    for name, got, want in zip(NAMES, (x, *params), (x64, *p64)):
        assert_close(got.grad, want.grad, name=f"grad {name}", rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------ ops integration

@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_torch_ops_match_the_fakes(dtype):
    """torch.ops.fusedfire.* with backend "triton": values against fp64, and exactly the shapes, strides and
    dtypes of the registered fakes (what torch.compile plans with)."""
    x = _x(2, ODD[0], 5, 6, dtype, "channels_last")
    params = fire_params(*ODD, dtype=dtype, device=DEVICE)
    out = torch.ops.fusedfire.fire(x, *params, "triton")
    out2, s = torch.ops.fusedfire.fire_fwd(x, *params, "triton")
    assert torch.equal(out, out2)
    _check_forward(x, params, out, s)
    grad_out = torch.randn_like(out)
    bwd_args = (grad_out, x, s, out, params[0], params[2], params[4])
    grads = torch.ops.fusedfire.fire_bwd(*bwd_args, "triton")
    _check_backward(x, params, s, out, grad_out, grads)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in (x, *params, grad_out, s, out)]
        want = (torch.ops.fusedfire.fire(*fake[:7], "triton"), *torch.ops.fusedfire.fire_fwd(*fake[:7], "triton"),
                *torch.ops.fusedfire.fire_bwd(fake[7], fake[0], fake[8], fake[9], fake[1], fake[3], fake[5],
                                              "triton"))
    for i, (got, w) in enumerate(zip((out, out2, s, *grads), want)):
        assert (got.shape, got.stride(), got.dtype) == (w.shape, w.stride(), w.dtype), i


def test_empty_batch_launches_nothing():
    x = _x(0, ODD[0], 5, 6)
    params = fire_params(*ODD, device=DEVICE)
    out, s = ft.fire_fwd(x, *params)
    assert out.shape == (0, 16, 5, 6) and s.shape == (0, 3, 5, 6)
    grads = ft.fire_bwd(torch.randn_like(out), x, s, out, params[0], params[2], params[4])
    assert grads[0].shape == x.shape
    for g, p in zip(grads[1:], params):
        assert g.shape == p.shape and g.dtype == p.dtype and g.is_contiguous() and not g.any()


# ------------------------------------------------------------------------------------------ single kernels

@pytest.mark.parametrize("config", range(N_CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grad_s_kernel(config, dtype):
    """grad_s = (W1ᵀ·G1 + W3ᵀ ⊛ᵀ G3) ⊙ (s > 0), stored in fp32, against fp64 autograd of the two expands."""
    x = _x(2, ODD[0], 4, 5, dtype)
    params = fire_params(*ODD, dtype=dtype, device=DEVICE)
    out, s = ft.fire_fwd(x, *params)
    grad_out = torch.randn_like(out)
    gs = torch.empty(s.shape, dtype=torch.float32, device=DEVICE)
    ft.grad_s(grad_out, out, s, params[2], params[4], gs, config=ft.CONFIGS["grad_s"][config])
    s64 = _d(s).requires_grad_()
    g = _d(grad_out) * (_d(out) > 0)
    e1 = F.conv2d(s64, _d(params[2]))
    e3 = F.conv2d(s64, _d(params[4]), padding=1)
    (want,) = torch.autograd.grad(torch.cat([e1, e3], 1), s64, g)
    want = want * (_d(s) > 0)
    # bf16 operands multiply exactly and sum in fp32: fp32 accuracy against the fp64 VJP at the same s and out
    assert_close(gs, want, name="grad_s", rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", range(N_CONFIGS))
def test_wgrad_kernel_is_deterministic_and_chunked(config):
    """P = 300 pixels span several chunks (of tuning.CHUNK_ALIGN); two runs are bitwise equal; values vs fp64."""
    n, h, w = 3, 10, 10
    g = torch.randn(n, 7, h, w, device=DEVICE)
    mask = torch.randn(n, 7, h, w, device=DEVICE).to(memory_format=torch.channels_last)
    inp = torch.randn(n, 4, h, w, device=DEVICE)
    assert 300 > 2 * ft.tuning.CHUNK_ALIGN
    cfg = ft.CONFIGS["wgrad"][config]
    gw, gb = ft.wgrad(g, mask, inp, 3, torch.float32, config=cfg)
    gw2, gb2 = ft.wgrad(g, mask, inp, 3, torch.float32, config=cfg)
    assert torch.equal(gw, gw2) and torch.equal(gb, gb2)
    G = _d(g) * (_d(mask) > 0)
    want_w = torch.nn.grad.conv2d_weight(_d(inp), (7, 4, 3, 3), G, padding=1)
    assert_close(gw, want_w, name="gW", rtol=1e-5, atol=1e-5)
    assert_close(gb, G.sum((0, 2, 3)), name="gb")


def test_tf32_follows_cudnn_flag(monkeypatch):
    """fp32 dots use tf32 exactly when eager convs do; the fp32 grad_s of fp16/bf16 inputs always does."""
    from fusedfire.triton.launchers import _dot
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert _dot(torch.float32, torch.float32)["PRECISION"] == "tf32"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert _dot(torch.float32, torch.float32)["PRECISION"] == "ieee"
    assert _dot(torch.float32, torch.bfloat16)["PRECISION"] == "tf32"
    assert _dot(torch.float64, torch.float64) == dict(ACC_FP64=True, UPCAST=False, PRECISION="ieee")


def test_limits_are_clear_errors():
    """Pixel count and weight size are int32 in the kernels: past 2³¹ a ValueError, never a wrong answer."""
    from fusedfire.triton import launchers
    with pytest.raises(ValueError, match=r"N·H·W = 2147483648 pixels must be < 2³¹"):
        launchers._pixels(torch.empty(2**15, 1, 2**8, 2**8, device="meta"))
    with pytest.raises(ValueError, match="too large for int32 offsets"):
        launchers._check_weight(torch.empty(2**16, 2**15, 1, 1, device="meta"))
