"""The cpu backend's fused stem (csrc/cpu/stem.cpp, native_stem): max_pool2d(relu(conv2d(...))) against the fp64
reference for both SqueezeNet stems and awkward ones, every input layout and ISA, NaN and inf, its errors, opcheck,
with the next Fire's squeeze; and its max pooling alone (csrc/cpu/pool.cpp, native_max_pool) against ATen's.
optimize's use of them (FusedSequential, FrozenMaxPool2d): tests/test_frozen.py."""
import pytest
import torch
import torch.nn.functional as F

import fusedfire
from fusedfire.native import cpu_isas, cpu_options
from fusedfire.testing import WINOGRAD_FP32, assert_close, fire_params, reference64

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"),
                                reason=f"fusedfire._cpu not built: {fusedfire.native.LOAD_ERRORS.get('cpu')}")

STEM = torch.ops.fusedfire.native_stem
# (N, C, H, W, M, K, stride, padding, pool_kernel, pool_stride, ceil_mode)
CASES = {
    "squeezenet1_1": (2, 3, 224, 224, 64, 3, 2, 0, 3, 2, True),
    "squeezenet1_0": (1, 3, 224, 224, 96, 7, 2, 0, 3, 2, True),
    "padded_odd": (3, 5, 37, 30, 20, 3, 1, 1, 2, 2, False),  # M = 20: a partial last vector; floor pooling
    "padded_5x5": (1, 3, 31, 33, 17, 5, 2, 2, 3, 2, True),  # the ceil_mode window clipped at the edge
    "pool_gaps": (2, 4, 19, 21, 8, 3, 1, 0, 2, 3, False),  # pool stride past its kernel: conv rows skipped
    "tiny": (1, 1, 3, 3, 1, 3, 1, 0, 1, 1, False),
}


def _reference(x, w, b, stride, padding, pool_kernel, pool_stride, ceil_mode):
    """The fp64 truth."""
    conv = F.conv2d(x.double(), w.double(), b.double(), stride, padding)
    return F.max_pool2d(F.relu(conv), pool_kernel, pool_stride, ceil_mode=ceil_mode)


def _inputs(case, layout="channels_last"):
    N, C, H, W, M, K, *args = CASES[case]
    x = torch.randn(N, C, H, W)
    x = {"channels_last": x.contiguous(memory_format=torch.channels_last), "nchw": x,
         "strided": torch.randn(N, C, H, 2 * W)[..., ::2]}[layout]
    return x, torch.randn(M, C, K, K) / (C * K * K) ** 0.5, torch.randn(M), args


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "strided"])
@pytest.mark.parametrize("case", list(CASES))
def test_stem_matches_the_reference(case, layout, isa):
    x, w, b, args = _inputs(case, layout)
    with cpu_options(isa=isa):
        out = STEM(x, w, b, *args)
    want = _reference(x, w, b, *args)
    assert out.shape == want.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert_close(out, want)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["x", "weight", "bias"])
def test_nan_and_inf_reach_what_they_reach_in_eager(where, value):
    x, w, b, args = _inputs("padded_odd", "nchw")
    {"x": x, "weight": w, "bias": b}[where].view(-1)[11] = value
    out, want = STEM(x, w, b, *args), _reference(x, w, b, *args)
    assert torch.equal(out.isnan(), want.isnan()) and torch.equal(out.isinf(), want.isinf())
    assert_close(out.nan_to_num(0, 0, 0), want.nan_to_num(0, 0, 0))


def test_the_comparison_catches_a_planted_bug():
    """Test of the test: one output off by 10⁻⁴ of its value fails it, as does floor instead of ceil pooling."""
    x, w, b, args = _inputs("squeezenet1_1")
    out = STEM(x, w, b, *args)
    off = out.contiguous()
    off.view(-1)[1234] += 1e-4 * (1 + off.view(-1)[1234].abs())
    want = _reference(x, w, b, *args)
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(off, want)
    x, w, b, args = _inputs("padded_5x5")  # ceil_mode: the last window starts in the conv's last 2 rows and columns
    no_ceil = F.max_pool2d(F.relu(F.conv2d(x, w, b, 2, 2)), 3, 2)
    with pytest.raises(AssertionError, match="torch.Size"):
        assert_close(no_ceil, _reference(x, w, b, *args))


def test_stem_names_what_is_wrong():
    x, w, b, args = _inputs("padded_odd")
    with pytest.raises(RuntimeError, match="native_stem takes float32 tensors, got Double"):
        STEM(x.double(), w, b, *args)
    with pytest.raises(RuntimeError, match=r"weight must be \(M, C, K, K\) = \(20, 5, 3, 3\), got \(20, 5, 3, 2\)"):
        STEM(x, w[..., :2], b, *args)
    with pytest.raises(RuntimeError, match=r"bias must be \(M\) = \(20,\), got \(19,\)"):
        STEM(x, w, b[:19], *args)
    with pytest.raises(RuntimeError, match="1 <= pool_kernel <= 8, got stride 1, padding 1, pool_kernel 9"):
        STEM(x, w, b, 1, 1, 9, 2, False)
    with pytest.raises(RuntimeError, match="padding 2 must be at most half the kernel size 3"):
        STEM(x, w, b, 1, 2, 2, 2, False)
    with pytest.raises(RuntimeError, match=r"x of \(3, 5, 2, 30\) is too small for a 3x3 conv"):
        STEM(x[:, :, :2], w, b, 1, 0, 2, 2, False)


def test_opcheck():
    x, w, b, args = _inputs("padded_odd")
    torch.library.opcheck(STEM.default, (x[:1, :, :9, :11], w, b, *args))


def _next_fire(cin):
    """The weights of a Fire after the stem (S = 16, E1 = 8, E3 = 32) and their pack."""
    params = [p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p
              for p in fire_params(cin, 16, 8, 32)]
    return params, torch.ops.fusedfire.native_fire_pack(*params[:5])


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("case", ["squeezenet1_1", "padded_odd", "pool_gaps"])
def test_stem_applies_the_next_squeeze(case, layout, isa):
    """With the next Fire's squeeze weight and pack, out is that Fire's s, which the Fire takes as squeezed: the same
    bits as the Fire on the stem's output, and the fp64 truth within the fp32 tolerance."""
    x, w, b, args = _inputs(case, layout)
    params, packed = _next_fire(w.shape[0])
    fire = torch.ops.fusedfire.native_fire_packed
    with cpu_options(isa=isa):
        s = STEM(x, w, b, *args, params[0], packed)
        out = fire(s, *params, packed, squeezed=True)
        want = fire(STEM(x, w, b, *args), *params, packed)
    assert s.shape == (x.shape[0], 16, *want.shape[2:]) and s.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, want)
    assert_close(out, reference64(_reference(x, w, b, *args).float(), params), **WINOGRAD_FP32)


def test_stem_next_squeeze_names_what_is_wrong():
    x, w, b, args = _inputs("padded_odd")
    params, packed = _next_fire(20)
    with pytest.raises(RuntimeError, match="native_stem takes next_squeeze_weight and next_packed together"):
        STEM(x, w, b, *args, params[0])
    with pytest.raises(RuntimeError, match=r"next_squeeze_weight must be \(next_s, out_channels, 1, 1\) = \(16, 20"):
        STEM(x, w, b, *args, params[0][:, :19], packed)
    torch.library.opcheck(STEM.default, (x[:1, :, :9, :11], w, b, *args, params[0], packed))


# -------------------------------------------------------------------------------------------- native_max_pool

MAX_POOL = torch.ops.fusedfire.native_max_pool
POOLS = {  # (N, C, H, W, kernel, stride, ceil_mode)
    "squeezenet_55": (1, 128, 55, 55, 3, 2, True),
    "squeezenet_27_n3": (3, 256, 27, 27, 3, 2, True),
    "ceil_clips": (2, 20, 14, 15, 3, 2, True),  # C = 20: a partial last vector; the last window past the edge
    "floor": (2, 20, 14, 15, 3, 2, False),
    "gaps": (1, 7, 11, 9, 2, 3, False),  # stride past the kernel
    "whole": (2, 5, 4, 4, 4, 1, False),
}


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("case", list(POOLS))
def test_max_pool_is_atens(case, isa):
    """Maxima are exact: the same values as ATen's max_pool2d, NaN included."""
    N, C, H, W, kernel, stride, ceil_mode = POOLS[case]
    x = torch.randn(N, C, H, W)
    x.view(-1)[::97] = float("nan")
    x.view(-1)[5::89] = -float("inf")
    x = x.contiguous(memory_format=torch.channels_last)
    with cpu_options(isa=isa):
        out = MAX_POOL(x, kernel, stride, ceil_mode)
    want = F.max_pool2d(x, kernel, stride, ceil_mode=ceil_mode)
    assert out.shape == want.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, want, rtol=0, atol=0, equal_nan=True)


def test_max_pool_names_what_is_wrong():
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="native_max_pool takes a dense channels_last x, got strides"):
        MAX_POOL(x.contiguous(), 3, 2, False)
    with pytest.raises(RuntimeError, match="native_max_pool takes a float32 x, got Double"):
        MAX_POOL(x.double(), 3, 2, False)
    with pytest.raises(RuntimeError, match="1 <= kernel <= 8 and stride >= 1, got kernel 9, stride 2"):
        MAX_POOL(x, 9, 2, False)
    with pytest.raises(RuntimeError, match=r"x of \(2, 8, 2, 9\) is smaller than the 3x3 kernel"):
        MAX_POOL(x[:, :, :2].contiguous(memory_format=torch.channels_last), 3, 2, False)


def test_max_pool_opcheck():
    x = torch.randn(2, 8, 9, 7).contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(MAX_POOL.default, (x, 3, 2, True))
