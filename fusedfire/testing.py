"""What the test suite and `python -m fusedfire check` share: random Fire parameters, and the comparison rules
against the fp64 truth (fusedfire.reference).

The low-precision rule is flash-attention's: our error against fp64 may be at most TOLERANCE_FACTOR × PyTorch's
own error in the same dtype (plus an atol), which scales with the reduction length where a fixed atol would not.
"""
import torch

from .reference import fire_reference

TOLERANCE_FACTOR = 2.0

# fp32 through the cpu backend's Winograd F(4×4, 3×3) (its forward 3×3 expand): the transforms scale by up to 8 and
# 1/24, so the rounding error is ~10× direct summation's: up to ~2e-5 on outputs of O(1) at S = 16-64, over
# assert_close's default 1e-5 (csrc/cpu/winograd4.h).
WINOGRAD_FP32 = dict(rtol=5e-5, atol=5e-5)

# fp32 gradients through the cpu backend's Winograd F(4×4, 3×3) backward (grad_s and the 3×3 weight gradient):
# errors up to ~5e-6 of a gradient's largest value at E3 = 256, 1.5e-5 at E3 = 1024 (im2col: ~3e-7; native_fire_bwd
# from the same saved tensors against fp64). A gradient element that sums many such terms to near zero misses any
# elementwise rtol, so tests also allow this fraction of the gradient's largest value.
WINOGRAD_FP32_GRAD_SCALE = 5e-5


def fire_params(cin, s, e1, e3, *, dtype=torch.float32, device="cpu", requires_grad=False, generator=None):
    """Random (never zero) Fire parameters (Wsq, bsq, W1, b1, W3, b3), scaled like the default init so activations
    stay O(1); drawn in fp64 from `generator` (default: torch's global one), then cast."""
    def rand(*shape, fan_in):
        t = (torch.rand(shape, dtype=torch.float64, generator=generator) * 2 - 1) * (3.0 / fan_in) ** 0.5
        return t.to(dtype=dtype, device=device).requires_grad_(requires_grad)
    return (rand(s, cin, 1, 1, fan_in=cin), rand(s, fan_in=cin), rand(e1, s, 1, 1, fan_in=s), rand(e1, fan_in=s),
            rand(e3, s, 3, 3, fan_in=9 * s), rand(e3, fan_in=9 * s))


def max_error(actual, expected64) -> float:
    """max |actual - expected64|, in fp64 on CPU (NaN where actual has one)."""
    return (actual.detach().double().cpu() - expected64.detach().double().cpu()).abs().max().item()


def lowp_bound(pytorch_error: float, atol: float) -> float:
    """The largest error the low-precision rule allows, given PyTorch's own error in the same dtype."""
    return TOLERANCE_FACTOR * pytorch_error + atol


def _worst(actual, expected):
    err = (actual.double() - expected.double()).abs()
    i = int(err.flatten().argmax())
    idx = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), err.shape))
    return err.max().item(), idx, actual.flatten()[i].item(), expected.flatten()[i].item()


def assert_close_lowp(actual, expected64, pytorch_lowp, *, name="output", atol=1e-5):
    """The low-precision rule: max|actual - fp64| <= 2 × max|PyTorch in the same dtype - fp64| + atol."""
    assert actual.dtype == pytorch_lowp.dtype, (actual.dtype, pytorch_lowp.dtype)
    assert actual.shape == expected64.shape, (actual.shape, expected64.shape)
    ours, idx, a, e = _worst(actual, expected64)
    theirs = (pytorch_lowp.double() - expected64.double()).abs().max().item()
    bound = lowp_bound(theirs, atol)
    assert ours <= bound, (f"{name}: max error {ours:.3g} at {idx} (got {a}, expected {e}) exceeds "
                           f"{TOLERANCE_FACTOR}× PyTorch's {theirs:.3g} + {atol}")


def assert_close(actual, expected64, *, name="output", rtol=1e-5, atol=1e-5):
    """fp32/fp64 rule: torch.testing.assert_close against the fp64 truth, with the worst index on failure."""
    assert actual.shape == expected64.shape, (name, actual.shape, expected64.shape)
    try:
        torch.testing.assert_close(actual.double(), expected64.double(), rtol=rtol, atol=atol)
    except AssertionError as e:
        err, idx, a, x = _worst(actual, expected64)
        raise AssertionError(f"{name}: worst error {err:.3g} at {idx} (got {a}, expected {x})\n{e}") from None


def reference64(x, params):
    """The fp64 truth on CPU."""
    return fire_reference(x.detach().double().cpu(), *(p.detach().double().cpu() for p in params))
