"""The cpu backend's packed weights (csrc/cpu/pack.h): native_fire_pack and native_fire_packed against the fp64
reference and, bit for bit, against native_fire, which derives the same weights per call; the pack's layout, flag
and errors; opcheck. FrozenFire's use of the pack (kept current as the weights change): tests/test_frozen.py."""
import pytest
import torch

import fusedfire
from fusedfire.native import cpu_isas, cpu_options
from fusedfire.ops import pack_numel
from fusedfire.testing import WINOGRAD_FP32, assert_close, fire_params, reference64

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"),
                                reason=f"fusedfire._cpu not built: {fusedfire.native.LOAD_ERRORS.get('cpu')}")

PACK, PACKED = torch.ops.fusedfire.native_fire_pack, torch.ops.fusedfire.native_fire_packed
LAYOUTS = pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])
# (Cin, S, E1, E3, H, W): Winograd shapes (S, E3 multiples of 16) on a 13×13 and a 27×27 image and an odd one; a
# Fire Winograd cannot run (E3 = 20); E1 and Cin not multiples of any vector
SHAPES = [(512, 64, 256, 256, 13, 13), (128, 32, 128, 128, 27, 27), (24, 16, 5, 32, 11, 9), (24, 8, 12, 20, 7, 5)]


def _weights(cin, s, e1, e3, layout):
    return [p.contiguous(memory_format=layout) if p.dim() == 4 else p for p in fire_params(cin, s, e1, e3)]


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("winograd", ["auto", "on", "off"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@LAYOUTS
def test_packed_forward_is_native_fires(shape, layout, winograd, isa):
    """The same bits as native_fire (which derives the packed weights per call), and within the fp32 tolerance of
    the fp64 truth, for every ISA, with and without Winograd, whatever the weights' and x's layouts."""
    cin, s, e1, e3, h, w = shape
    params = _weights(cin, s, e1, e3, layout)
    packed = PACK(*params[:5])
    assert packed.shape == (pack_numel(cin, s, e1, e3),) and packed.dtype == torch.float32
    assert packed[0].item() == (1.0 if s % 16 == 0 == e3 % 16 else 0.0)  # the Winograd transform is there
    x = torch.randn(2, cin, h, w).contiguous(memory_format=layout)
    with cpu_options(isa=isa, winograd=winograd):
        out = PACKED(x, *params, packed)
        assert torch.equal(out, torch.ops.fusedfire.native_fire(x, *params))
    assert out.is_contiguous(memory_format=layout)
    assert_close(out, reference64(x, params), **WINOGRAD_FP32)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_3x3_weight_packs_no_transform(value):
    """The pack's flag says w3's transform is not there; the packed forward then runs im2col, as native_fire does,
    and NaN/inf reach exactly the outputs they reach in the fp64 truth."""
    params = fire_params(24, 16, 8, 32)
    with torch.no_grad():
        params[4][3, 5, 1, 2] = value
    packed = PACK(*params[:5])
    assert packed[0].item() == 0.0
    x = torch.randn(2, 24, 9, 10)
    with cpu_options(winograd="on"):
        out = PACKED(x, *params, packed)
    want = reference64(x, params)
    assert torch.equal(out.isnan(), want.isnan()) and torch.equal(out.isinf(), want.isinf())
    assert_close(out.nan_to_num(0, 0, 0), want.nan_to_num(0, 0, 0))


def test_a_stale_pack_is_caught_by_the_comparison():
    """Test of the tests: a pack of other weights (what FrozenFire must never pass) fails the reference check."""
    params, other = fire_params(24, 16, 8, 32), fire_params(24, 16, 8, 32)
    x = torch.randn(1, 24, 9, 10)
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(PACKED(x, *params, PACK(*other[:5])), reference64(x, params), **WINOGRAD_FP32)


def test_pack_and_packed_name_what_is_wrong():
    params = fire_params(24, 16, 8, 32)
    x = torch.randn(1, 24, 6, 6)
    with pytest.raises(RuntimeError, match="native_fire_pack takes float32 weights, got Double"):
        PACK(*(p.double() for p in params[:5]))
    with pytest.raises(RuntimeError, match=r"expand3x3_weight must be \(E3, S, 3, 3\) = \(32, 16, 3, 3\)"):
        PACK(*params[:4], params[4][:, :, :2])
    packed = PACK(*params[:5])
    with pytest.raises(RuntimeError, match=rf"packed must be \(numel\) = \({packed.numel()},\), got \(17,\)"):
        PACKED(x, *params, packed[:17])
    with pytest.raises(RuntimeError, match="native_fire_packed takes float32 tensors, got x of Double"):
        PACKED(x.double(), *(p.double() for p in params), packed)
    with pytest.raises(RuntimeError, match="packed must be contiguous"):
        PACKED(x, *params, torch.stack([packed, packed], 1)[:, 0])


def test_opcheck():
    params = fire_params(24, 16, 8, 32)
    packed = PACK(*params[:5])
    torch.library.opcheck(PACK.default, tuple(params[:5]))
    torch.library.opcheck(PACKED.default, (torch.randn(2, 24, 5, 7), *params, packed))


def test_packed_outputs_reuse_freed_blocks_only():
    """Outputs of 1 MB and more come from kept blocks (csrc/cpu/out_blocks.h): a live output's memory is never handed
    out again, a freed one's is, and the values are those of a fresh computation."""
    params = _weights(128, 32, 128, 128, torch.channels_last)
    packed = PACK(*params[:5])
    x = torch.randn(2, 128, 27, 27).contiguous(memory_format=torch.channels_last)  # out: 1.5 MB
    first = PACKED(x, *params, packed)
    address = first.data_ptr()
    second = PACKED(x, *params, packed)
    assert second.data_ptr() != address and torch.equal(first, second)
    del first
    third = PACKED(x, *params, packed)
    assert third.data_ptr() == address and torch.equal(third, second)
    stem = torch.ops.fusedfire.native_stem
    w, b = torch.randn(64, 3, 3, 3), torch.randn(64)
    x = torch.randn(2, 3, 224, 224).contiguous(memory_format=torch.channels_last)  # out: 1.5 MB
    first = stem(x, w, b, 2, 0, 3, 2, True)
    address = first.data_ptr()
    del first
    assert stem(x, w, b, 2, 0, 3, 2, True).data_ptr() == address


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("pool", [(3, 2, True), (2, 2, False), (3, 3, True)], ids=["3s2ceil", "2s2", "3s3ceil"])
@pytest.mark.parametrize("shape", [(64, 16, 32, 32, 27, 27), (24, 16, 5, 32, 14, 11)], ids=["27x27", "14x11"])
def test_packed_forward_pools_its_output(shape, pool, threads, isa):
    """With pool arguments out is max_pool2d of the Fire's output, which never goes through memory: rows of pooled
    windows split over the threads, each computing the Fire rows its windows cover."""
    cin, s, e1, e3, h, w = shape
    params = _weights(cin, s, e1, e3, torch.channels_last)
    packed = PACK(*params[:5])
    x = torch.randn(2, cin, h, w).contiguous(memory_format=torch.channels_last)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_options(isa=isa):
            out = PACKED(x, *params, packed, *pool)
    finally:
        torch.set_num_threads(old)
    want = torch.nn.functional.max_pool2d(reference64(x, params), pool[0], pool[1], ceil_mode=pool[2])
    assert out.shape == want.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert_close(out, want, **WINOGRAD_FP32)


@pytest.mark.parametrize("winograd", ["on", "off"])
def test_packed_pooling_keeps_nan_where_eager_does(winograd):
    """A NaN in x: its band runs im2col (or every band, Winograd off), and the pooled NaNs land where eager's do."""
    params = _weights(24, 16, 8, 32, torch.channels_last)
    x = torch.randn(1, 24, 19, 17)
    x[0, 5, 7, 3] = float("nan")
    x = x.contiguous(memory_format=torch.channels_last)
    with cpu_options(winograd=winograd, band_pixels=5 * 17):  # bands of 5 rows: rows carried between bands
        out = PACKED(x, *params, PACK(*params[:5]), 3, 2, True)
    want = torch.nn.functional.max_pool2d(reference64(x, params), 3, 2, ceil_mode=True)
    assert torch.equal(out.isnan(), want.isnan())
    assert_close(out.nan_to_num(0), want.nan_to_num(0), **WINOGRAD_FP32)


def test_packed_pooling_names_what_is_wrong():
    params = fire_params(24, 16, 8, 32)
    packed = PACK(*params[:5])
    x = torch.randn(1, 24, 9, 9)
    with pytest.raises(RuntimeError, match="native_fire_packed pools a channels_last x's output only"):
        PACKED(x, *params, packed, 3, 2, True)
    x = x.contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="max pooling needs 1 <= kernel <= 8"):
        PACKED(x, *params, packed, 9, 2, True)
    with pytest.raises(RuntimeError, match="max pooling needs 1 <= kernel <= 8 and stride >= 1, got kernel -3"):
        PACKED(x, *params, packed, -3, 2, True)
    with pytest.raises(RuntimeError, match="a Fire output of 9x2 is smaller than the 3x3 kernel"):
        PACKED(x[..., :2].contiguous(memory_format=torch.channels_last), *params, packed, 3, 2, True)
    torch.library.opcheck(PACKED.default, (x, *params, packed, 3, 2, True))


def _fire(cin, s, e1, e3):
    params = _weights(cin, s, e1, e3, torch.channels_last)
    return params, PACK(*params[:5])


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("winograd", ["auto", "off"])
@pytest.mark.parametrize("shape", [(64, (16, 32, 32), (32, 48, 16), (16, 16, 32), 27, 27),
                                   (24, (16, 5, 32), (8, 12, 20), (16, 7, 16), 14, 11)], ids=["27x27", "14x11"])
def test_packed_forward_chains_fires(shape, winograd, threads, isa):
    """Three Fires in three calls, each but the first taking the previous call's output as its squeezed s and each
    but the last applying the next Fire's squeeze to its own output (never in memory), the last pooling: the same
    bits as the three packed calls on whole outputs, and within the fp32 tolerance of the fp64 truth."""
    cin, a, b, c, h, w = shape
    fires = [_fire(cin, *a), _fire(a[1] + a[2], *b), _fire(b[1] + b[2], *c)]
    x = torch.randn(2, cin, h, w).contiguous(memory_format=torch.channels_last)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_options(isa=isa, winograd=winograd):
            (pa, ka), (pb, kb), (pc, kc) = fires
            sb = PACKED(x, *pa, ka, 0, 0, False, False, pb[0], kb)
            sc = PACKED(sb, *pb, kb, 0, 0, False, True, pc[0], kc)
            out = PACKED(sc, *pc, kc, 3, 2, True, True)
            want = PACKED(PACKED(PACKED(x, *pa, ka), *pb, kb), *pc, kc, 3, 2, True)
    finally:
        torch.set_num_threads(old)
    assert sb.shape == (2, b[0], h, w) and sb.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, want)
    assert torch.equal(PACKED(sc.contiguous(), *pc, kc, squeezed=True), PACKED(sc, *pc, kc, squeezed=True))  # NCHW s
    truth = torch.nn.functional.max_pool2d(reference64(reference64(reference64(x, pa), pb), pc), 3, 2, ceil_mode=True)
    assert_close(out, truth, **WINOGRAD_FP32)


def test_packed_chain_keeps_nan_where_eager_does():
    """A NaN in x reaches the next Fire's s through the first Fire's output, as in eager."""
    (pa, ka), (pb, kb) = _fire(24, 16, 8, 32), _fire(40, 16, 8, 16)
    x = torch.randn(1, 24, 19, 17)
    x[0, 5, 7, 3] = float("nan")
    x = x.contiguous(memory_format=torch.channels_last)
    out = PACKED(PACKED(x, *pa, ka, 0, 0, False, False, pb[0], kb), *pb, kb, squeezed=True)
    want = reference64(reference64(x, pa), pb)
    assert torch.equal(out.isnan(), want.isnan())
    assert_close(out.nan_to_num(0), want.nan_to_num(0), **WINOGRAD_FP32)


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bad", ["none", "nan", "inf"])
def test_squeezed_fire_reads_s_in_place(bad, threads, isa):
    """A squeezed Fire with Winograd reads its s's rows in place (no channel-major copy): the same bits as taking s as
    x's squeeze, over several bands (a non-finite s value in a halo row takes im2col for the bands that read it)."""
    (pa, ka), (pb, kb) = _fire(24, 16, 8, 24), _fire(32, 16, 16, 32)
    x = torch.randn(2, 24, 21, 13)
    if bad != "none":
        x[1, 3, 8, 5] = float(bad)  # reaches s's rows 7-9 of image 1: the edges of 4-row bands
    x = x.contiguous(memory_format=torch.channels_last)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_options(isa=isa, winograd="on", band_pixels=4 * 13):
            s = PACKED(x, *pa, ka, 0, 0, False, False, pb[0], kb)
            out = PACKED(s, *pb, kb, squeezed=True)
            want = PACKED(PACKED(x, *pa, ka), *pb, kb)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(out.isnan(), want.isnan())
    assert torch.equal(out.nan_to_num(0), want.nan_to_num(0))
    truth = reference64(reference64(x, pa), pb)
    assert torch.equal(out.isnan(), truth.isnan())
    assert_close(out.nan_to_num(0), truth.nan_to_num(0), **WINOGRAD_FP32)


def test_packed_chain_names_what_is_wrong():
    (pa, ka), (pb, kb) = _fire(24, 16, 8, 32), _fire(40, 16, 8, 16)
    x = torch.randn(1, 24, 9, 9).contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="either pools or applies the next squeeze, not both"):
        PACKED(x, *pa, ka, 3, 2, True, False, pb[0], kb)
    with pytest.raises(RuntimeError, match="applies the next squeeze to a channels_last x's output only"):
        PACKED(x.contiguous(), *pa, ka, next_squeeze_weight=pb[0], next_packed=kb)
    with pytest.raises(RuntimeError, match="takes next_squeeze_weight and next_packed together"):
        PACKED(x, *pa, ka, next_squeeze_weight=pb[0])
    with pytest.raises(RuntimeError, match=r"next_squeeze_weight must be \(next_s, out_channels, 1, 1\) = \(16, 40"):
        PACKED(x, *pa, ka, next_squeeze_weight=pb[0][:, :39], next_packed=kb)
    with pytest.raises(RuntimeError, match=r"next_packed must be the next Fire's pack \(native_fire_pack\), got \(17"):
        PACKED(x, *pa, ka, next_squeeze_weight=pb[0], next_packed=kb[:17])
    with pytest.raises(RuntimeError, match="a squeezed x has the squeeze's 16 channels, got x of"):
        PACKED(x, *pa, ka, squeezed=True)
    s = PACKED(x, *pa, ka, next_squeeze_weight=pb[0], next_packed=kb)
    torch.library.opcheck(PACKED.default, (x, *pa, ka, 0, 0, False, False, pb[0], kb))
    torch.library.opcheck(PACKED.default, (s, *pb, kb, 0, 0, False, True))
