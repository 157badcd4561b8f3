"""The op layer: backend choice, opcheck, gradients, autocast, layouts and bad input, for every backend that
can run here (on CPU: "reference", and "triton" under the interpreter)."""
import os
import subprocess
import sys

import pytest
import torch

import fusedfire
from fusedfire.reference import fire_reference
from fusedfire.testing import assert_close, assert_close_lowp, fire_params, reference64

from .conftest import DEVICE

BACKENDS = fusedfire.backends(DEVICE)
ODD = (5, 3, 7, 9)  # Cin, S, E1, E3


def _inputs(cfg=ODD, n=2, h=5, w=6, dtype=torch.float32, requires_grad=False, channels_last=False):
    x = torch.randn(n, cfg[0], h, w, dtype=dtype, device=DEVICE, requires_grad=requires_grad)
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_(requires_grad)
    return x, fire_params(*cfg, dtype=dtype, device=DEVICE, requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------------- backends

def test_backends_lists_reference_and_auto_resolves():
    cpu = fusedfire.backends("cpu")
    assert cpu[-1] == "reference" and "cuda" not in cpu
    assert fusedfire.ops.resolve_backend("auto", "cpu") == ("cpu" if "cpu" in cpu else "reference")
    if DEVICE == "cpu":  # conftest set TRITON_INTERPRET=1 before fusedfire was imported
        assert "triton" in cpu
        assert fusedfire.ops.resolve_backend("auto", "cpu") != "triton"  # the interpreter is for tests only


def test_env_overrides_auto(monkeypatch):
    monkeypatch.setenv("FUSEDFIRE_BACKEND", BACKENDS[0])
    assert fusedfire.ops.resolve_backend("auto", DEVICE) == BACKENDS[0]
    monkeypatch.setenv("FUSEDFIRE_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="unknown backend 'nonsense'"):
        fusedfire.ops.resolve_backend("auto", DEVICE)


def test_unavailable_backend_names_what_is_available():
    with pytest.raises(ValueError, match=r"backend 'cuda' is not available for device cpu.*available: \["):
        fusedfire.ops.resolve_backend("cuda", "cpu")
    x, params = _inputs()
    with pytest.raises(ValueError, match="is not available for device cpu"):
        fusedfire.fire(x.cpu(), *(p.cpu() for p in params), backend="cuda")


def test_import_without_triton():
    """`import fusedfire` works where triton is not installed; the reference path and the module still run."""
    code = ("import sys, torch\n"
            "sys.modules['triton'] = None  # what an absent package looks like to import\n"
            "import fusedfire\n"
            "assert 'triton' not in fusedfire.backends('cpu'), fusedfire.backends('cpu')\n"
            "m = fusedfire.FusedFire(5, 3, 7, 9)\n"
            "print(tuple(m(torch.randn(1, 5, 4, 4)).shape))\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 16, 4, 4)"


# ----------------------------------------------------------------------------------------- correctness

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_matches_fp64_and_keeps_layout(backend, channels_last):
    x, params = _inputs(channels_last=channels_last)
    out = fusedfire.fire(x, *params, backend=backend)
    assert_close(out, reference64(x, params), name=f"{backend} out")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_forward_within_twice_pytorch_error(backend, dtype):
    x, params = _inputs(dtype=dtype)
    out = fusedfire.fire(x, *params, backend=backend)
    assert_close_lowp(out, reference64(x, params), fire_reference(x.cpu(), *(p.cpu() for p in params)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_reference_autograd(backend):
    x, params = _inputs(dtype=torch.float32, requires_grad=True)
    out = fusedfire.fire(x, *params, backend=backend)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, *params), g)
    x64 = x.detach().double().cpu().requires_grad_()
    p64 = [p.detach().double().cpu().requires_grad_() for p in params]
    grads64 = torch.autograd.grad(fire_reference(x64, *p64), (x64, *p64), g.double().cpu())
    for name, got, want in zip(fusedfire.ops._NAMES, grads, grads64):
        assert_close(got, want, name=f"{backend} grad {name}", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_fp64(backend):
    x, params = _inputs(cfg=(3, 2, 2, 3), n=1, h=3, w=4, dtype=torch.float64, requires_grad=True)
    # NOTE: fast_mode (a random projection of the Jacobian) under the interpreter: the full one takes ~8 min.
    fast = backend == "triton" and DEVICE == "cpu"
    assert torch.autograd.gradcheck(lambda *a: fusedfire.fire(*a, backend=backend), (x, *params), fast_mode=fast)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton" or DEVICE != "cpu"])
def test_double_backward_fp64(backend):
    """backward(create_graph=True) goes through the differentiable VJP; gradgradcheck checks the grad of the grad.
    (Skipped for Triton under the interpreter: the path is backend-independent after the forward.)"""
    x, params = _inputs(cfg=(3, 2, 2, 3), n=1, h=3, w=4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda *a: fusedfire.fire(*a, backend=backend), (x, *params))


def test_double_backward_gradient_penalty():
    """A gradient penalty's parameter gradients equal those of the reference module."""
    x, params = _inputs(cfg=(4, 3, 2, 5), requires_grad=True)
    grads = []
    for fn in (lambda *a: fusedfire.fire(*a, backend=BACKENDS[0]), fire_reference):
        (gx,) = torch.autograd.grad(fn(x, *params).square().sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(gx.square().sum(), params))
    for name, got, want in zip(fusedfire.ops._NAMES[1:], *grads):
        assert_close(got, want, name=f"penalty grad {name}", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_every_op(backend):
    x, params = _inputs(cfg=(4, 3, 2, 5), n=2, h=3, w=4, requires_grad=True)
    torch.library.opcheck(torch.ops.fusedfire.fire.default, (x.detach(), *(p.detach() for p in params), backend))
    torch.library.opcheck(torch.ops.fusedfire.fire_fwd.default, (x, *params, backend))
    out, s = torch.ops.fusedfire.fire_fwd(x.detach(), *(p.detach() for p in params), backend)
    torch.library.opcheck(torch.ops.fusedfire.fire_bwd.default,
                          (torch.randn_like(out), x.detach(), s, out, params[0].detach(), params[2].detach(),
                           params[4].detach(), backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_input_and_expanded_grad(backend):
    x_big, params = _inputs(cfg=(10, 3, 4, 5), h=6, w=9, requires_grad=False)
    x = x_big[:, ::2, :, 1:8].requires_grad_()  # a strided view: Cin=5, W=7
    params = fire_params(5, 3, 4, 5, device=DEVICE, requires_grad=True)
    out = fusedfire.fire(x, *params, backend=backend)
    assert_close(out, reference64(x, params))
    out.sum().backward()  # grad_out is an expanded tensor with zero strides
    x64 = x.detach().double().cpu().requires_grad_()
    fire_reference(x64, *(p.detach().double().cpu() for p in params)).sum().backward()
    assert_close(x.grad, x64.grad, name="grad x", rtol=1e-4, atol=1e-4)


def test_backward_skips_grads_not_needed():
    x, params = _inputs(requires_grad=False)
    params[0].requires_grad_()
    out = fusedfire.fire(x, *params, backend="reference")
    out.sum().backward()
    assert x.grad is None and params[0].grad is not None


# ------------------------------------------------------------------------------------------- autocast

def test_autocast_matches_eager_conv_dtype():
    """Under CPU autocast (bf16), eager convs cast fp32 inputs to bf16; the op does the same."""
    x, params = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = fire_reference(x.cpu(), *(p.cpu() for p in params))
        got = fusedfire.fire(x.cpu(), *(p.cpu() for p in params), backend="reference")
        got_op = torch.ops.fusedfire.fire(x.cpu(), *(p.cpu() for p in params), "reference")
    assert want.dtype == got.dtype == got_op.dtype == torch.bfloat16
    assert_close_lowp(got, reference64(x, params), want)


def test_autocast_leaves_fp64_alone():
    x, params = _inputs(dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fusedfire.fire(x.cpu(), *(p.cpu() for p in params), backend="reference").dtype == torch.float64


# ------------------------------------------------------------------------------------------- bad input

def _bad(x=None, params=None, **replace):
    x0, p0 = _inputs()
    x = x0 if x is None else x
    params = list(p0 if params is None else params)
    for i, name in enumerate(fusedfire.ops._NAMES[1:]):
        if name in replace:
            params[i] = replace[name]
    return x, params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, error, pattern", [
    ("channels", ValueError, r"squeeze_weight must have shape \(S, Cin, 1, 1\).*Cin=6"),
    ("rank", ValueError, r"x must be 4-D \(N, C, H, W\), got 3-D"),
    ("int", TypeError, r"x must be float16, bfloat16, float32 or float64, got torch.int64"),
    ("mixed_dtype", TypeError, r"expand1x1_bias has dtype torch.float64 but x has torch.float32"),
    ("mixed_device", ValueError, r"expand3x3_weight is on meta but x is on"),
    ("w3_shape", ValueError, r"expand3x3_weight must have shape \(E3, S, 3, 3\)"),
    ("bias_shape", ValueError, r"squeeze_bias must have shape \(S,\)"),
    ("not_tensor", TypeError, r"expand1x1_weight must be a Tensor, got list"),
])
def test_bad_input_clear_errors(backend, case, error, pattern):
    x, params = _bad()
    if case == "channels":
        x = torch.randn(2, 6, 5, 6, device=DEVICE)
    elif case == "rank":
        x = x[0]
    elif case == "int":
        x = x.long()
    elif case == "mixed_dtype":
        params[3] = params[3].double()
    elif case == "mixed_device":
        params[4] = params[4].to("meta")
    elif case == "w3_shape":
        params[4] = params[4][:, :, :2]
    elif case == "bias_shape":
        params[1] = params[1][:2]
    elif case == "not_tensor":
        params[2] = params[2].tolist()
    with pytest.raises(error, match=pattern):
        fusedfire.fire(x, *params, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch_gives_the_reference_answer(backend):
    x, params = _inputs(n=0, requires_grad=True)
    out = fusedfire.fire(x, *params, backend=backend)
    assert out.shape == fire_reference(x.detach(), *(p.detach() for p in params)).shape == (0, 16, 5, 6)
    out.sum().backward()
    assert x.grad.shape == x.shape and all(torch.count_nonzero(p.grad) == 0 for p in params)
