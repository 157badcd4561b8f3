"""Backend "cpu" (csrc/cpu/, fusedfire._cpu): the fused CPU kernels against the fp64 reference on every real Fire
config (small and real spatial sizes), awkward shapes and layouts, every dtype, forward and backward, the thread/band
tiling, every ISA of the vector kernels this CPU runs, and opcheck on the native ops. Skipped where the extension was
not built."""
import platform

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusedfire
from fusedfire._layout import memory_format
from fusedfire.configs import SQUEEZENET_FIRES
from fusedfire.native import cpu_isas, cpu_options
from fusedfire.ops import _NAMES
from fusedfire.reference import fire_reference
from fusedfire.testing import WINOGRAD_FP32, WINOGRAD_FP32_GRAD_SCALE, assert_close, assert_close_lowp, fire_params, reference64

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"),
                                reason=f"fusedfire._cpu not built: {fusedfire.native.LOAD_ERRORS.get('cpu')}")

CONFIGS = [pytest.param(c, id=c.name) for c in SQUEEZENET_FIRES]
ODD = (5, 3, 7, 9)  # Cin, S, E1, E3
LAYOUTS = ["nchw", "channels_last"]


ISAS = cpu_isas()


def _intel() -> bool:
    """Whether this is an Intel CPU (blas.h gemm_with: elsewhere on x86 the FMA ISAs' GEMMs are fusedfire's own, and
    SSE2's stay BLAS)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in f)
    except OSError:
        return "intel" in platform.processor().lower()


OWN_GEMM = platform.machine().lower() in ("x86_64", "amd64") and not _intel()
# (ISA, 3×3 expand, GEMMs) of the fp32 tests: the default ISA with im2col and with Winograd wherever it can run (S
# and E3 multiples of 16; elsewhere im2col), each lower ISA this CPU runs with Winograd (every vector kernel), and
# fusedfire's own GEMMs and BLAS's, whichever this CPU takes by default (OWN_GEMM), with im2col (the most GEMMs).
FP32_KERNELS = [("best", "off", "auto"), ("best", "on", "auto"), ("avx2", "on", "auto"), ("baseline", "on", "auto"),
                ("best", "off", "own"), ("best", "off", "blas"), ("baseline", "off", "own")]


def _skip_unless_lower_isa(isa):
    if isa not in ISAS:
        pytest.skip(f"this CPU or build does not run {isa} (runs {ISAS})")
    if isa == ISAS[0]:
        pytest.skip(f"{isa} is this CPU's default: the 'best' cases cover it")


@pytest.fixture(params=FP32_KERNELS, ids=lambda p: f"{p[0]}-winograd-{p[1]}-gemm-{p[2]}")
def fp32_kernel(request):
    isa, winograd, gemm = request.param
    if isa != "best" and not (isa == "baseline" and gemm == "own"):
        _skip_unless_lower_isa(isa)
    with cpu_options(isa=None if isa == "best" else isa, winograd=winograd, gemm=gemm):
        yield request.param


@pytest.fixture(params=["avx512", "avx2", "baseline"])
def isa(request):
    """Each ISA of the vector kernels that this CPU and build run."""
    if request.param not in ISAS:
        pytest.skip(f"this CPU or build does not run {request.param} (runs {ISAS})")
    with cpu_options(isa=request.param):
        yield request.param


def _x(n, cin, h, w, *, dtype=torch.float32, layout="nchw"):
    x = torch.randn(n, cin, h, w, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _check_forward(x, params, **tol):
    out = torch.ops.fusedfire.native_fire(x, *params)
    out2, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    want = reference64(x, params)
    assert_close(out, want, **tol)
    assert torch.equal(out, out2), "inference and training forward differ"
    s_want = torch.relu(torch.nn.functional.conv2d(x.double(), params[0].double(), params[1].double()))
    assert_close(s, s_want, name="saved s", **tol)
    fmt = memory_format(x)
    assert out.is_contiguous(memory_format=fmt) and s.is_contiguous(memory_format=fmt), (out.stride(), s.stride())
    return out


def _saved(x, params):
    """(s, out) of the training forward, as native_fire_bwd takes them."""
    out, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    return s, out


def _grads(x, params, backend, g):
    x = x.detach().requires_grad_()
    params = [p.detach().requires_grad_() for p in params]
    fn = fire_reference if backend is None else (lambda *a: fusedfire.fire(*a, backend=backend))
    out = fn(x, *params)
    return out, torch.autograd.grad(out, (x, *params), g)


def _check_grads(x, params, *, rtol=1e-4, atol=1e-4):
    """Gradients against fp64 autograd; where the backward may run Winograd (its option not 'off'), each also within
    WINOGRAD_FP32_GRAD_SCALE of its largest value."""
    scale = 0.0 if fusedfire._cpu.get_options()[1] == "off" else WINOGRAD_FP32_GRAD_SCALE
    x = x.detach().requires_grad_()
    params = [p.detach().requires_grad_() for p in params]
    out = fusedfire.fire(x, *params, backend="cpu")
    g = torch.randn(out.shape, dtype=out.dtype)
    grads = torch.autograd.grad(out, (x, *params), g)
    _, grads64 = _grads(x.double(), [p.double() for p in params], None, g.double())
    for name, got, want in zip(_NAMES, grads, grads64):
        assert_close(got, want, name=f"grad {name}", rtol=rtol, atol=max(atol, scale * want.abs().max().item()))
    assert grads[0].is_contiguous(memory_format=memory_format(x))
    assert all(gp.is_contiguous() for gp in grads[1:])


# ----------------------------------------------------------------------------------------- forward, fp32

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_every_fire_small(cfg, layout, fp32_kernel):
    x = _x(3, cfg.inplanes, 7, 5, layout=layout)
    _check_forward(x, fire_params(*cfg[1:5]), **({} if fp32_kernel[1] == "off" else WINOGRAD_FP32))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.usefixtures("fp32_kernel")
def test_every_fire_real_size(cfg, layout):
    """The real spatial size: several row bands per image, split across threads (band and chunk boundaries)."""
    x = _x(1, cfg.inplanes, cfg.size, cfg.size, layout=layout).abs()  # post-ReLU-like input, as in the net
    _check_forward(x, fire_params(*cfg[1:5]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n, h, w", [(0, 5, 6), (1, 1, 1), (3, 1, 9), (3, 9, 1), (1, 2, 2), (2, 5, 6),
                                     (1, 3, 700),  # a band of one row: the rolling halo on every band
                                     (2, 67, 3)])  # tall and narrow: one band per chunk
@pytest.mark.usefixtures("fp32_kernel")
def test_odd_shapes(n, h, w, layout):
    x = _x(n, ODD[0], h, w, layout=layout)
    params = fire_params(*ODD)
    if n == 0:
        out = torch.ops.fusedfire.native_fire(x, *params)
        assert out.shape == fire_reference(x, *params).shape
        return
    _check_forward(x, params)


@pytest.mark.parametrize("cfg", [(1, 1, 1, 1), (2, 1, 3, 1), (7, 13, 1, 2)])
@pytest.mark.usefixtures("fp32_kernel")
def test_unit_channel_counts(cfg):
    _check_forward(_x(2, cfg[0], 4, 5), fire_params(*cfg))


@pytest.mark.parametrize("view", ["crop", "channel_step", "cl_crop", "transposed_hw", "expanded"])
@pytest.mark.usefixtures("fp32_kernel")
def test_non_contiguous_inputs(view):
    base = torch.randn(2, 10, 8, 9)
    x = {"crop": base[:, :5, 1:7, 2:8],                                     # NCHW, pixels not one stride: copied
         "channel_step": base[:, ::2],                                      # NCHW, channel stride 2·HW: in place
         "cl_crop": base.contiguous(memory_format=torch.channels_last)[:, 1:6, :, 1:],  # channels_last crop
         "transposed_hw": base[:, :5].transpose(2, 3),                      # W stride > H stride
         "expanded": torch.randn(1, 5, 1, 1).expand(2, 5, 6, 7)}[view]      # zero strides
    params = fire_params(x.shape[1], 3, 4, 5)
    _check_forward(x, params)


def test_weights_changed_in_place_are_seen():
    """The Winograd weight transform is memoized on the weights' bytes (weight_memo.h): the same weights changed in
    place (as by an optimizer step), or other weights of the same size, must give their own answer, never the
    memoized one."""
    x = _x(2, 24, 9, 11, layout="channels_last")
    params = fire_params(24, 32, 20, 48)
    with cpu_options(winograd="on"):
        for step in range(3):
            _check_forward(x, params, **WINOGRAD_FP32)
            _check_forward(x, params, **WINOGRAD_FP32)  # a hit
            params[4].mul_(-1.5)[3, 5, 1, 2] += 1  # in place, same storage
        _check_forward(x, params, **WINOGRAD_FP32)  # memoized as it is now
        swapped = fire_params(24, 16, 20, 96)  # E3·S as before: a transform of the same size
        swapped[4].copy_(params[4].reshape(96, 16, 3, 3))  # of byte for byte the same w3, read as other kernels
        _check_forward(_x(2, 24, 9, 11, layout="channels_last"), swapped, **WINOGRAD_FP32)


def test_winograd_weights_too_large_to_memoize():
    """A weight transform past the memo's budget (weight_memo.h, kWeightMemoBytes = 32 MiB: here 45·S·E3 floats =
    32.3 MiB) is used for its call only, and computed again for the next call, after the weights changed."""
    x, params = _x(1, 8, 6, 5, layout="channels_last"), fire_params(8, 512, 16, 368)
    with cpu_options(winograd="on"):
        for _ in range(2):
            _check_forward(x, params, **WINOGRAD_FP32)
            params[4].mul_(-1)


@pytest.mark.usefixtures("fp32_kernel")
def test_non_contiguous_weights():
    params = list(fire_params(*ODD))
    params[0] = torch.randn(1, 1, ODD[0], ODD[1]).permute(3, 2, 0, 1)  # (S, Cin, 1, 1), not contiguous
    params[4] = params[4].transpose(2, 3).contiguous().transpose(2, 3)  # (E3, S, 3, 3), strided taps
    params[5] = torch.randn(2 * ODD[3])[::2]
    _check_forward(_x(2, ODD[0], 5, 6), params)
    # model.to(memory_format=torch.channels_last) makes every 4-D weight channels_last (read in place)
    params = [p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p for p in fire_params(*ODD)]
    assert not params[4].is_contiguous()
    _check_forward(_x(2, ODD[0], 5, 6, layout="channels_last"), params)
    # and through Winograd (S, E3 multiples of 16), whose weight transform gathers the taps in either layout
    for layout in ("nchw", "channels_last"):
        params = fire_params(24, 32, 20, 48)
        if layout == "channels_last":
            params = [p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p for p in params]
        with cpu_options(winograd="on"):
            _check_forward(_x(2, 24, 9, 11, layout="channels_last"), params, **WINOGRAD_FP32)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.usefixtures("fp32_kernel")
def test_thread_counts_give_the_same_answer(threads, n):
    """Images are split into row chunks when N < threads; every split must give the reference answer, forward and
    backward (whose chunks take their neighbours' halo rows of G)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = _x(n, 64, 27, 27, layout="channels_last")
        _check_forward(x, fire_params(64, 16, 32, 48), rtol=1e-4, atol=1e-4)
        _check_grads(x, fire_params(64, 16, 32, 48))
    finally:
        torch.set_num_threads(old)


@pytest.mark.usefixtures("fp32_kernel")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfg, n, h, w", [
    (ODD, 2, 9, 8),               # the grid's last 16-lane vector holds only the zero column
    (ODD, 1, 2, 16),              # rows exactly one vector wide
    (ODD, 1, 20, 64),             # bands of ≤ 8 rows (512 band pixels) per row chunk: halo rolled, short band
    ((201, 50, 6, 7), 1, 13, 13), # channel blocks: squeeze 51+51+51+48, 3×3 25+25; output tiles of 2 and 3 channels
    ((3, 17, 33, 31), 3, 1, 37),  # one-row images, 17 squeeze channels
])
def test_fp32_kernel_edges(cfg, n, h, w, layout):
    """Vector edges: rows one vector wide and not, bands and their halo, odd channel counts (partial vectors)."""
    _check_forward(_x(n, cfg[0], h, w, layout=layout), fire_params(*cfg), rtol=1e-4, atol=1e-4)


@pytest.mark.usefixtures("fp32_kernel")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_streamed_output(layout):
    """An out larger than the threads' L2 caches: the BLAS forward writes it through its buffer with non-temporal
    stores (stream_out) from 64-byte boundaries on: W = 101 and 23 + 41 channels, so NCHW rows and the 3×3 half of
    every channels_last pixel start unaligned."""
    cfg = (5, 3, 23, 41)
    pixels = (4 << 20) * torch.get_num_threads() // (4 * (cfg[2] + cfg[3])) + 1  # 4 MB per thread: over any L2
    _check_forward(_x(1, cfg[0], -(-pixels // 101), 101, layout=layout), fire_params(*cfg))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("cfg, n, h, w", [
    ((8, 16, 16, 16), 2, 1, 1),      # one pixel: a single tile, 15 of its 16 outputs dropped
    ((8, 16, 16, 16), 3, 2, 3),      # 2 × 3: the tile's last two rows and last column dropped
    ((24, 16, 32, 48), 3, 5, 7),     # the second tile row holds one row, the second tile column three columns
    ((24, 32, 16, 32), 1, 27, 27),   # bands of 16 + 11 rows (whole tile rows but the last); chunks of 13 and 14 rows
    ((40, 16, 23, 16), 2, 55, 13),   # E1 = 23: the 3×3 half of each pixel starts unaligned; bands of 28 + 27
    ((16, 16, 16, 1024), 1, 27, 27), # E3 = 1024: grad_s sums 1024 channels (its Winograd error grows with them)
    ((16, 128, 16, 16), 1, 9, 60),   # S = 128: the forward's first band of 8 rows in 2 blocks of one tile row
    ((8, 16, 16, 16), 1, 3, 600),    # W > 512 band pixels: bands of one row, each a quarter of a tile row
])
def test_winograd(cfg, n, h, w, threads, layout, isa):
    """The 3×3 expand by Winograd F(4×4, 3×3) on its edges, on every ISA, forward and backward: partial tiles, odd band
    heights, tile-row blocks, row chunks across threads, both outputs (channels_last direct, NCHW through its
    transposing pass); it is Winograd that ran (its rounding differs from im2col's)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, params = _x(n, cfg[0], h, w, layout=layout), fire_params(*cfg)
        with cpu_options(winograd="on"):
            out = _check_forward(x, params, rtol=1e-4, atol=1e-4)
            _check_grads(x, params)
            grads = torch.ops.fusedfire.native_fire_bwd(torch.ones_like(out), x, *_saved(x, params), *params[::2])
        with cpu_options(winograd="off"):
            assert h * w == 1 or not torch.equal(out, torch.ops.fusedfire.native_fire(x, *params)), "im2col ran"
            im2col = torch.ops.fusedfire.native_fire_bwd(torch.ones_like(out), x, *_saved(x, params), *params[::2])
        assert h * w == 1 or not torch.equal(grads[5], im2col[5]), "the backward's im2col ran"
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("hw, nan", [(13, False), (27, False), (13, True)], ids=["13x13", "27x27", "13x13-nan"])
def test_winograd_split_over_output_channels(hw, nan, threads, isa):
    """A small image (transformed inputs <= kSplitExpandBytes) with more than one thread: row chunks squeeze and
    transform, then ranges of output channels (E3 = 48: a unit of 32 and one of 16) expand every tile. With a NaN in
    the first chunk's rows, that chunk runs im2col and the other still splits; NaN lands where eager's does."""
    x, params = _x(1, 40, hw, hw, layout="channels_last"), fire_params(40, 16, 8, 48)
    if nan:
        x[0, 3, 1, 2] = float("nan")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_options(winograd="on"):
            out = torch.ops.fusedfire.native_fire(x, *params)
            out2, _ = torch.ops.fusedfire.native_fire_fwd(x, *params)
    finally:
        torch.set_num_threads(old)
    want = reference64(x, params)
    assert torch.equal(out.isnan(), want.isnan()) and torch.equal(out.nan_to_num(), out2.nan_to_num())
    assert_close(out.nan_to_num(0), want.nan_to_num(0), **WINOGRAD_FP32)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_winograd_blocks_of_tile_rows(layout, isa):
    """Bands of 9 rows 2100 pixels wide (band_pixels raised): forward and backward each run a band's 3 tile rows as 3
    blocks of one (kWinogradBlockBytes, kWinogradBackwardTiles). The backward against im2col's from the same saved
    tensors (the masks of 300k outputs against fp64's would flip where an output is within rounding of 0)."""
    x, params = _x(1, 8, 9, 2100, layout=layout), fire_params(8, 16, 16, 16)
    with cpu_options(winograd="on", band_pixels=9 * 2100):
        out, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
        g = torch.randn(out.shape)
        got = torch.ops.fusedfire.native_fire_bwd(g, x, s, out, *params[::2])
    assert_close(out, reference64(x, params), **WINOGRAD_FP32)
    with cpu_options(winograd="off", band_pixels=9 * 2100):
        want = torch.ops.fusedfire.native_fire_bwd(g, x, s, out, *params[::2])
    for name, a, b in zip(_NAMES, got, want):
        assert_close(a, b, name=f"grad {name}", rtol=1e-4, atol=WINOGRAD_FP32_GRAD_SCALE * b.abs().max().item())
    assert not torch.equal(got[5], want[5]), "the backward's im2col ran"


@pytest.mark.parametrize("layout, e1", [("channels_last", 16), ("channels_last", 23), ("nchw", 23)])
def test_winograd_streamed_output(layout, e1, isa):
    """Winograd into an out larger than the L2 caches: channels_last with non-temporal stores where every pixel's 3×3
    half is vector-aligned (E1 = 16, E1 + E3 = 64), plain stores where it is not (E1 = 23); NCHW (its transposing
    pass)."""
    cfg = (5, 16, e1, 48)
    pixels = (4 << 20) * torch.get_num_threads() // (4 * (cfg[2] + cfg[3])) + 1  # 4 MB per thread: over any L2
    with cpu_options(winograd="on"):
        _check_forward(_x(1, cfg[0], -(-pixels // 101), 101, layout=layout), fire_params(*cfg), **WINOGRAD_FP32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.fixed_dictionaries({
    "n": st.integers(1, 3), "cin": st.integers(1, 40), "s": st.sampled_from([16, 32]), "e1": st.integers(1, 40),
    "e3": st.sampled_from([16, 32, 48]), "h": st.integers(1, 40), "w": st.integers(1, 40),
    "layout": st.sampled_from(["nchw", "channels_last", "strided"]), "threads": st.integers(1, 3),
    "isa": st.sampled_from(ISAS or ["none"]), "seed": st.integers(0, 2**31 - 1)}))
def test_winograd_random_shapes(shape):
    """Random shapes through the Winograd 3×3 expand (forced): any H, W, E1, N, layout, thread count and ISA."""
    g = torch.Generator().manual_seed(shape["seed"])
    n, cin, h, w = shape["n"], shape["cin"], shape["h"], shape["w"]
    strided = shape["layout"] == "strided"
    x = torch.randn(n, cin, h, 2 * w if strided else w, generator=g)
    if strided:
        x = x[..., ::2]
    elif shape["layout"] == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    old = torch.get_num_threads()
    torch.set_num_threads(shape["threads"])
    try:
        with cpu_options(isa=shape["isa"], winograd="on"):
            _check_forward(x, fire_params(cin, shape["s"], shape["e1"], shape["e3"]), rtol=1e-4, atol=1e-4)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("option, value, message", [
    ("isa", "sse9", r"isa must be one this build and CPU run, \[.*'baseline'\], got 'sse9'"),
    ("winograd", "yes", "winograd must be 'auto', 'on' or 'off', got 'yes'"),
    ("band_pixels", 0, r"band_pixels must be in \[1, 1048576\], got 0"),
    ("band_pixels", -1, r"band_pixels must be in \[1, 1048576\], got -1"),
    ("band_pixels", "abc", "band_pixels must be int, got 'abc'"),
    ("isa", 2, "isa must be str, got 2"),
    ("gemm", "fast", "gemm must be 'auto', 'own' or 'blas', got 'fast'"),
    ("gemm", 1, "gemm must be str, got 1"),
])
def test_options_are_checked(option, value, message):
    before = fusedfire._cpu.get_options()
    with pytest.raises((ValueError, TypeError), match=message):
        with cpu_options(**{option: value}):
            pass
    assert fusedfire._cpu.get_options() == before


def test_options_are_per_thread_and_restored():
    import threading
    before = fusedfire._cpu.get_options()
    seen = []
    with cpu_options(isa="baseline", winograd="off", band_pixels=64, gemm="blas"):
        assert fusedfire._cpu.get_options() == ("baseline", "off", 64, "blas")
        thread = threading.Thread(target=lambda: seen.append(fusedfire._cpu.get_options()))
        thread.start()
        thread.join()
    assert seen == [before] and fusedfire._cpu.get_options() == before
    assert before[0] == ISAS[0] and ISAS[-1] == "baseline"


@pytest.mark.parametrize("band_pixels", [1, 37, 4096])
def test_band_sizes(band_pixels):
    """Bands of one row (band_pixels = 1), of odd heights and of whole images give the same answer."""
    x, params = _x(2, 24, 23, 19, layout="channels_last"), fire_params(24, 16, 20, 32)
    with cpu_options(band_pixels=band_pixels):
        _check_forward(x, params, rtol=1e-4, atol=1e-4)
        _check_grads(x, params)


# ------------------------------------------------------------------------------------- every ISA alike

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("winograd", ["on", "off"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_isa_gives_the_same_bits(layout, winograd, dtype, isa):
    """The vector kernels do additions and scalings, and the own GEMMs (Winograd's, the forward's channels_last 1×1
    convolutions) FMAs where the ISA has them (vec.h): every ISA gives the default ISA's bits, forward (streamed out,
    odd sizes, Winograd) and backward (from the same saved tensors); SSE2 (no FMA) rounds those GEMMs its own way,
    so its forward, and its backward with Winograd (or with the own GEMMs: OWN_GEMM), are held to the fp32 Winograd
    tolerances instead."""
    cfg = (40, 16, 17, 48)
    sse2 = isa == "baseline" and platform.machine().lower() in ("x86_64", "amd64")
    pixels = (4 << 20) * torch.get_num_threads() // (4 * (cfg[2] + cfg[3])) + 1  # streamed: over any L2
    for x in (_x(2, cfg[0], 9, 13, layout=layout), _x(1, cfg[0], -(-pixels // 101), 101, layout=layout)):
        x, params = x.to(dtype), fire_params(*cfg, dtype=dtype)
        g = torch.randn(x.shape[0], cfg[2] + cfg[3], *x.shape[2:]).to(dtype)
        with cpu_options(isa=ISAS[0], winograd=winograd):
            want = torch.ops.fusedfire.native_fire_fwd(x, *params)
            want += torch.ops.fusedfire.native_fire_bwd(g, x, want[1], want[0], *params[::2])
        with cpu_options(winograd=winograd):
            got = torch.ops.fusedfire.native_fire_fwd(x, *params)
            got += torch.ops.fusedfire.native_fire_bwd(g, x, want[1], want[0], *params[::2])
        for name, a, b in zip(["out", "s", *_NAMES], got, want):
            if name in ("out", "s") and sse2:
                tol = WINOGRAD_FP32 if dtype == torch.float32 else {}  # fp16/bf16: torch's own for the dtype
                torch.testing.assert_close(a, b, **tol)
                continue
            # the backward's Winograd (or own: OWN_GEMM) GEMMs: the fp32 tolerances, or torch's rtol for the 16-bit
            # dtype (its outputs a rounding step apart) of the gradient's largest value
            if sse2 and (winograd == "on" or OWN_GEMM):
                rtol = {torch.float32: WINOGRAD_FP32["rtol"], torch.float16: 1e-3, torch.bfloat16: 1.6e-2}[dtype]
                scale = WINOGRAD_FP32_GRAD_SCALE if dtype == torch.float32 else rtol
                torch.testing.assert_close(a, b, rtol=rtol, atol=scale * b.abs().max().item(), msg=name)
                continue
            assert torch.equal(a, b), f"{name}: {(a != b).sum().item()} of {a.numel()} differ from {ISAS[0]}'s"


# ---------------------------------------------------------------------------------------- NaN and inf

def _nonfinite_pattern(t):
    return torch.stack([t.isnan(), t.isposinf(), t.isneginf()])


@pytest.mark.parametrize("where", ["x", *_NAMES[1:]])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("winograd", ["on", "off"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_and_inf_propagate_as_eager(layout, winograd, value, where, isa):
    """A NaN or inf in x or any parameter reaches exactly the outputs and gradients it reaches in eager PyTorch's
    fp64 (the truth: every product computed, the padding's zeros too; eager fp32's oneDNN skips some padding
    products, so its NaN patterns vary with the batch size). relu(NaN) is NaN; Winograd, which would spread a NaN over
    whole tiles, steps aside for such bands and weights; threshold_backward passes the gradient of a NaN output."""
    cfg = (24, 16, 16, 32)
    x = _x(2, cfg[0], 11, 9, layout=layout).requires_grad_()
    params = [p.requires_grad_() for p in fire_params(*cfg)]
    target = x if where == "x" else params[_NAMES.index(where) - 1]
    with torch.no_grad():
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(7), target.shape))
        target[index] = value if where != "squeeze_weight" else -value  # -inf: a dead squeeze channel
    g = torch.randn(2, cfg[2] + cfg[3], 11, 9)
    inputs64 = [t.detach().double().requires_grad_() for t in (x, *params)]
    want = fire_reference(*inputs64)
    want_grads = torch.autograd.grad(want, inputs64, g.double())
    with cpu_options(winograd=winograd, band_pixels=27):  # bands of 3 rows: Winograd and im2col bands side by side
        got = fusedfire.fire(x, *params, backend="cpu")
        got_grads = torch.autograd.grad(got, (x, *params), g)
    assert torch.equal(_nonfinite_pattern(got), _nonfinite_pattern(want)), "NaN/inf in other places than eager's"
    assert_close(got.nan_to_num(0, 0, 0), want.nan_to_num(0, 0, 0), rtol=1e-4, atol=1e-4)
    for name, a, b in zip(_NAMES, got_grads, want_grads):
        assert torch.equal(_nonfinite_pattern(a), _nonfinite_pattern(b)), f"grad {name}: NaN/inf unlike eager's"
        assert_close(a.nan_to_num(0, 0, 0), b.nan_to_num(0, 0, 0), name=f"grad {name}", rtol=1e-4, atol=1e-4)


def test_nan_bias_gradient_passes_as_eager():
    """A NaN expand1x1 bias (issue 12's reproducer): its gradient is the sum of grad_out over the NaN channel."""
    params = fire_params(3, 2, 3, 2, requires_grad=True)
    with torch.no_grad():
        params[3][1] = float("nan")
    x = torch.rand(1, 3, 4, 5)
    fusedfire.fire(x, *params, backend="cpu").sum().backward()
    got = params[3].grad.clone()
    for p in params:
        p.grad = None
    fire_reference(x, *params).sum().backward()
    assert torch.equal(got, params[3].grad) and got[1] == 20, (got, params[3].grad)


# -------------------------------------------------------------------------------------- other dtypes

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("cfg, n, size", [(ODD, 2, 6), (SQUEEZENET_FIRES[2][1:5], 1, 54),
                                          (SQUEEZENET_FIRES[-1][1:5], 2, 13)], ids=["odd", "fire5", "fire12"])
def test_low_precision_within_twice_pytorch_error(cfg, n, size, dtype, layout):
    """fp16/bf16 run as fp32 GEMMs on converted bands (documented fallback): error ≤ 2× PyTorch's own."""
    x = _x(n, cfg[0], size, size, layout=layout).abs().to(dtype)
    params = fire_params(*cfg, dtype=dtype)
    out = torch.ops.fusedfire.native_fire(x, *params)
    assert out.dtype == dtype and out.is_contiguous(memory_format=memory_format(x))
    assert_close_lowp(out, reference64(x, params), fire_reference(x, *params))
    out2, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    assert torch.equal(out, out2) and s.dtype == dtype


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_rounds_like_torch(dtype, layout, isa):
    """fp16/bf16 run the fp32 kernels on converted inputs: their output is the fp32 output rounded by torch, bit for
    bit (the vectorised conversions round to nearest even like c10's; 17 and 19 channels leave partial vectors)."""
    x = _x(2, 40, 9, 11, layout=layout).to(dtype)
    params = fire_params(40, 12, 17, 19, dtype=dtype)
    out = torch.ops.fusedfire.native_fire(x, *params)
    want = torch.ops.fusedfire.native_fire(x.float(), *(p.float() for p in params)).to(dtype)
    assert torch.equal(out, want), f"{(out != want).sum().item()} of {out.numel()} elements differ"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_winograd_rounds_like_torch(dtype, isa):
    """channels_last fp16/bf16 take the Winograd 3×3 expand too (through the fp32 buffer, converted pixel by pixel):
    the fp32 Winograd output rounded by torch, bit for bit, on several bands, odd sizes and E1 = 17."""
    x = _x(2, 40, 27, 13, layout="channels_last").to(dtype)
    params = fire_params(40, 16, 17, 32, dtype=dtype)
    with cpu_options(winograd="on"):
        out = torch.ops.fusedfire.native_fire(x, *params)
        want = torch.ops.fusedfire.native_fire(x.float(), *(p.float() for p in params)).to(dtype)
    assert torch.equal(out, want), f"{(out != want).sum().item()} of {out.numel()} elements differ"
    with cpu_options(winograd="off"):
        assert not torch.equal(out, torch.ops.fusedfire.native_fire(x, *params)), "im2col ran"
    assert_close_lowp(out, reference64(x, params), fire_reference(x, *params))


def test_fp64_exact_enough():
    x = _x(2, 96, 11, 10, dtype=torch.float64)
    params = fire_params(96, 16, 64, 64, dtype=torch.float64)
    _check_forward(x, params, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_backward_within_twice_pytorch_error(dtype, layout):
    x = _x(2, 24, 6, 7, layout=layout).abs().to(dtype)
    params = fire_params(24, 6, 8, 10, dtype=dtype)
    g = torch.randn(2, 18, 6, 7).to(dtype)
    _, ours = _grads(x, params, "cpu", g)
    _, theirs = _grads(x, params, None, g)
    _, truth = _grads(x.double(), [p.double() for p in params], None, g.double())
    for name, a, b, t in zip(_NAMES, ours, theirs, truth):
        assert_close_lowp(a, t, b, name=f"grad {name}", atol=1e-3)


# -------------------------------------------------------------------------------------------- backward

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.usefixtures("fp32_kernel")
def test_gradients_every_fire(cfg, layout):
    _check_grads(_x(3, cfg.inplanes, 6, 5, layout=layout), fire_params(*cfg[1:5]))


@pytest.mark.parametrize("gemm", ["own", "blas"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n, h, w", [(1, 1, 1), (3, 1, 7), (2, 7, 1), (1, 27, 27),
                                     (1, 20, 64)])  # 2 row chunks of 2 bands (8-row bands of 512 pixels)
def test_gradients_odd_shapes(n, h, w, layout, gemm):
    with cpu_options(gemm=gemm):
        _check_grads(_x(n, ODD[0], h, w, layout=layout), fire_params(*ODD))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradients_of_a_sum(layout, isa):
    """out.sum()'s backward hands the op an expanded grad_out (every stride 0): gradients as fp64 autograd's."""
    x = _x(2, ODD[0], 7, 13, layout=layout).requires_grad_()
    params = [p.requires_grad_() for p in fire_params(*ODD)]
    grads = torch.autograd.grad(fusedfire.fire(x, *params, backend="cpu").sum(), (x, *params))
    want = torch.autograd.grad(fire_reference(x.double(), *(p.double() for p in params)).sum(), (x, *params))
    for name, got, w in zip(_NAMES, grads, want):
        atol = max(1e-4, WINOGRAD_FP32_GRAD_SCALE * w.abs().max().item())
        assert_close(got, w, name=f"grad {name}", rtol=1e-4, atol=atol)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cfg", [SQUEEZENET_FIRES[i] for i in (0, 4, 7)], ids=lambda c: c.name)  # 54, 27, 13
def test_gradients_real_size(cfg, layout):
    _check_grads(_x(1, cfg.inplanes, cfg.size, cfg.size, layout=layout), fire_params(*cfg[1:5]), rtol=2e-4,
                 atol=2e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradients_grad_out_in_the_other_layout(layout):
    """grad_out need not share out's layout (the masking pass reads it through its strides)."""
    x = _x(2, ODD[0], 5, 6, layout=layout)
    params = fire_params(*ODD)
    out, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    other = torch.contiguous_format if layout == "channels_last" else torch.channels_last
    g = torch.randn(out.shape).contiguous(memory_format=other)
    got = torch.ops.fusedfire.native_fire_bwd(g, x, s, out, params[0], params[2], params[4])
    want = torch.ops.fusedfire.native_fire_bwd(g.contiguous(memory_format=memory_format(x)), x, s, out, params[0],
                                               params[2], params[4])
    for name, a, b in zip(_NAMES, got, want):
        assert_close(a, b, name=f"grad {name}", rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_gradients_with_scratch_past_what_a_thread_keeps(threads):
    """A chunk's grad_s buffer of 48 × 300 × 300 floats (17 MB) is past kMaxKeptScratch: a fresh at::empty. The
    weight gradients sum 180 000 pixels in fp32 (one thread: one running sum), so they are held to a normwise bound,
    max error <= 1e-5 max |gradient| (fp32 accumulation gives 1e-6 here, PyTorch's own fp32 up to 9e-6; a band left
    out would give 1e-2)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, params = _x(2, 4, 300, 300), fire_params(4, 48, 4, 4)
        g = torch.randn(2, 8, 300, 300)
        _, ours = _grads(x, params, "cpu", g)
        _, truth = _grads(x.double(), [p.double() for p in params], None, g.double())
        assert_close(ours[0], truth[0], name="grad x")
        for name, a, t in zip(_NAMES[1:], ours[1:], truth[1:]):
            err, bound = (a.double() - t).abs().max().item(), 1e-5 * t.abs().max().item() + 1e-5
            assert err <= bound, f"grad {name}: max error {err:.3g} > {bound:.3g}"
    finally:
        torch.set_num_threads(old)


def test_concurrent_calls_from_python_threads():
    """Calls from several Python threads at once (each with its own kept scratch) give the single-call answers."""
    import concurrent.futures
    cases = [(_x(2, 24, 9 + i, 7, layout=LAYOUTS[i % 2]), fire_params(24, 6 + i, 8, 10)) for i in range(4)]
    want = [torch.ops.fusedfire.native_fire_fwd(x, *p) for x, p in cases]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda c: torch.ops.fusedfire.native_fire_fwd(c[0], *c[1]), cases))
            assert all(torch.equal(a, b) for g, w in zip(got, want) for a, b in zip(g, w))


def test_backward_is_deterministic():
    """Weight gradients are summed per thread, then across threads in a fixed order: two calls, same bits."""
    x = _x(3, 64, 27, 27, layout="channels_last")
    params = fire_params(64, 16, 32, 48)
    out, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    g = torch.randn(out.shape)
    first = torch.ops.fusedfire.native_fire_bwd(g, x, s, out, params[0], params[2], params[4])
    second = torch.ops.fusedfire.native_fire_bwd(g, x, s, out, params[0], params[2], params[4])
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_gradients_non_contiguous_input_and_expanded_grad_out():
    x = torch.randn(2, 10, 6, 9)[:, ::2, :, 1:8].requires_grad_()
    params = fire_params(5, 3, 4, 5, requires_grad=True)
    fusedfire.fire(x, *params, backend="cpu").sum().backward()  # grad_out: expanded, zero strides
    x64 = x.detach().double().requires_grad_()
    p64 = [p.detach().double().requires_grad_() for p in params]
    fire_reference(x64, *p64).sum().backward()
    for name, got, want in zip(_NAMES, (x, *params), (x64, *p64)):
        assert_close(got.grad, want.grad, name=f"grad {name}", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradcheck_fp64(layout):
    x = _x(2, 3, 3, 4, dtype=torch.float64, layout=layout).requires_grad_()
    params = fire_params(3, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: fusedfire.fire(*a, backend="cpu"), (x, *params))


# --------------------------------------------------------------------------------------------- opcheck

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_native_ops(dtype, layout):
    x = _x(2, 4, 3, 5, dtype=dtype, layout=layout)
    params = fire_params(4, 3, 2, 5, dtype=dtype)
    torch.library.opcheck(torch.ops.fusedfire.native_fire.default, (x, *params))
    torch.library.opcheck(torch.ops.fusedfire.native_fire_fwd.default, (x, *params))
    out, s = torch.ops.fusedfire.native_fire_fwd(x, *params)
    torch.library.opcheck(torch.ops.fusedfire.native_fire_bwd.default,
                          (torch.randn_like(out), x, s, out, params[0], params[2], params[4]))


def test_auto_picks_cpu_and_module_runs():
    assert fusedfire.ops.resolve_backend("auto", "cpu") == "cpu"
    m = fusedfire.FusedFire(*ODD)
    x = torch.randn(2, ODD[0], 5, 6)
    assert_close(m(x), reference64(x, [p for p in m.parameters()]))


def test_native_op_rejects_bad_input_with_a_message():
    params = fire_params(*ODD)
    with pytest.raises(RuntimeError, match="squeeze_weight must be"):
        torch.ops.fusedfire.native_fire(torch.randn(1, 6, 3, 3), *params)
    with pytest.raises(RuntimeError, match="must share x's dtype"):
        torch.ops.fusedfire.native_fire(torch.randn(1, 5, 3, 3), *params[:5], params[5].double())


def test_the_checker_catches_a_planted_bug():
    """Test of the test: an output off by one part in 10⁴ at one element fails the fp32 comparison."""
    x = _x(1, *ODD[:1], 5, 6)
    params = fire_params(*ODD)
    out = torch.ops.fusedfire.native_fire(x, *params).clone()
    out.view(-1)[17] += 1e-4 + 1e-4 * out.view(-1)[17].abs()
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(out, reference64(x, params))
