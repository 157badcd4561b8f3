"""The Fire kernels (math and VJP: fusedfire/ops.py). Launchers: fusedfire/triton/launchers.py; tile configs: tuning.py.

Every activation is read and written through its four (n, c, h, w) strides, so NCHW, channels_last, sliced views
and 0-stride (expanded) gradients share one path. Pixels are flattened as p = (n·H + h)·W + w over N·H·W; a tile
is BLOCK_M (or BLOCK_P) pixels × a block of channels, and every GEMM is a `tl.dot` over channel blocks.

    squeeze_kernel  y = act(a·Wᵀ + b)            s = relu(Wsq·x + bsq);  grad_x = Wsqᵀ·grad_s (transposed view)
    expand_kernel   out[:, :E1] = relu(W1·s + b1),  out[:, E1:] = relu(W3 ⊛ s + b3)           (one launch)
    grad_s_kernel   grad_s = (W1ᵀ·G1 + W3ᵀ ⊛ᵀ G3) ⊙ (s > 0),  G = grad_out ⊙ (out > 0)      (one launch)
    wgrad_kernel    partial[c, e, k, tap] = Σ_{p∈chunk c} G[p, e]·in[p + shift_tap, k],  partial_b[c, e] = Σ G[p, e]

Conventions shared by all kernels:
- Accumulators are fp32 (fp64 when ACC_FP64, i.e. for fp64 inputs); results are cast to the output's dtype.
- Offsets into activations are int64: the int32 pixel/channel indices are cast before they meet a stride.
  NOTE: an int64 offset costs two registers and a 64-bit multiply-add per index, but KernelBench's `out`
  (128·128·256·256 = 2³⁰ elements) is one doubling of the batch away from wrapping int32 offsets. Weight offsets
  stay int32 (the launcher checks every weight has < 2³¹ elements).
- Every dot casts its narrower operand to the wider one's dtype (fp16/bf16 weights against the fp32 grad_s).
  Under the interpreter, bf16 activations are upcast to fp32 as they are loaded (UPCAST): the interpreter stores
  bf16 as uint16, so its comparisons and arithmetic on them are wrong; fp32 products of bf16 values are exact,
  which is what the tensor cores compute before their fp32 accumulation.
- NOTE: the interpreter costs ~0.5-1 ms per tl op whatever the tile size (cProfile: semantic type checks and
  casts), and re-patches triton.language on every @triton.jit helper call; so the channel loops hoist their
  invariant offsets and call no helper. Measured on the loaded 2-core CI machine, the expand launch of
  SqueezeNet's widest Fire (bf16, 13×13) went from 13.7 s to 9.8 s; on a GPU it is fewer integer ops too.
- Activation tiles are loaded channel-major, [channels, pixels], and transposed into the dot (tl.trans); results
  are stored the same way. NOTE: with generic strides Triton spreads a tile's last dimension over the 32 lanes;
  pixel-major [64 pixels, 32 channels] tiles left each thread 16 pixels, so every per-pixel vector (n, h, w, the
  masks, one int64 row offset per tensor) cost 16-32 registers and stayed live through the loop. Channel-major,
  a thread holds 2 pixels (and lanes walk the W-contiguous pixels of NCHW). ptxas -v, sm_80 fp16: grad_s
  64×32×32 went from 255 registers + 256 B of spill stores to 160 with none; expand 64×64×32 241 -> 166 (mean over
  all 168 variants: 222 -> 169 registers, 19 spilling -> 0; tests/test_aot.py prints the table).
- `tl.dot` needs every tile dimension ≥ 16 when compiled: all BLOCK sizes are ≥ 16 and channel counts such as
  3, 5 or 9 are handled by masks (masked elements load as 0 and contribute nothing).
"""
import triton
import triton.language as tl


@triton.jit
def _zeros(M: tl.constexpr, N: tl.constexpr, ACC_FP64: tl.constexpr):
    """An M×N accumulator: fp64 for fp64 inputs, else fp32."""
    if ACC_FP64:
        acc = tl.zeros((M, N), dtype=tl.float64)
    else:
        acc = tl.zeros((M, N), dtype=tl.float32)
    return acc


@triton.jit
def _pixels(pid, BLOCK: tl.constexpr, start, end, H, W):
    """The BLOCK pixels from start + pid·BLOCK: their (n, h, w), int32, and the mask p < end."""
    p = start + pid * BLOCK + tl.arange(0, BLOCK)
    n = p // (H * W)
    hw = p % (H * W)
    return n, hw // W, hw % W, p < end


@triton.jit
def _conv_acc(acc, a_ptr, sa_n, sa_c, sa_h, sa_w, m_ptr, sm_n, sm_c, sm_h, sm_w, w_ptr, sw_r, sw_c, sw_h, sw_w,
              n, h, w, pmask, cols, cmask, R, H, W,
              KSIZE: tl.constexpr, FLIP: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
              PRECISION: tl.constexpr, BLOCK_K: tl.constexpr):
    """acc[p, j] += Σ_tap Σ_r A[p + shift_tap, r] · Wt[r, j, tap] over R reduction channels, zero-padded.

    shift_tap = (th - KSIZE//2, tw - KSIZE//2) for tap = th·KSIZE + tw. The weight tile is read as
    w[r·sw_r + j·sw_c + kh·sw_h + kw·sw_w] with (kh, kw) = (th, tw), or (KSIZE-1-th, KSIZE-1-tw) when FLIP: the
    forward conv (A = s, rows r = input channels) and its transpose (A = G3, rows r = output channels) share
    this loop. With MASKED, A is multiplied by (M > 0) read at the same place (G = grad_out ⊙ (out > 0)).
    """
    n64 = n.to(tl.int64)
    h64 = h.to(tl.int64)
    w64 = w.to(tl.int64)
    a_base = (n64 * sa_n + h64 * sa_h + w64 * sa_w)[None, :]
    m_base = (n64 * sm_n + h64 * sm_h + w64 * sm_w)[None, :]
    kk = tl.arange(0, BLOCK_K)
    w_offs = kk[:, None] * sw_r + cols[None, :] * sw_c  # at channel block 0, tap (0, 0)
    k_tiles = tl.cdiv(R, BLOCK_K)
    # NOTE: one runtime loop over (tap, channel block) rather than a static tap loop around a channel loop: the
    # Fire widths give S ≤ 64, a single channel block, so only the flat loop has iterations to software-pipeline.
    # Loop-invariant offsets are hoisted: the interpreter pays ~0.7 ms per tl op whatever the tile size.
    for it in range(0, KSIZE * KSIZE * k_tiles):
        tap = it // k_tiles
        k0 = (it - tap * k_tiles) * BLOCK_K
        th = tap // KSIZE
        tw = tap - th * KSIZE
        dh = th - KSIZE // 2
        dw = tw - KSIZE // 2
        rmask = kk < R - k0
        if KSIZE > 1:
            hh = h + dh
            ww = w + dw
            valid = pmask & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
        else:
            valid = pmask
        amask = rmask[:, None] & valid[None, :]
        chan = (k0 + kk).to(tl.int64)[:, None]
        a = tl.load(a_ptr + (chan * sa_c + (dh * sa_h + dw * sa_w)) + a_base, mask=amask, other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
        if MASKED:
            m = tl.load(m_ptr + (chan * sm_c + (dh * sm_h + dw * sm_w)) + m_base, mask=amask, other=0.0)
            if UPCAST:
                m = m.to(tl.float32)
            a = tl.where(m > 0, a, 0.0)
        if FLIP:
            kh = KSIZE - 1 - th
            kw = KSIZE - 1 - tw
        else:
            kh = th
            kw = tw
        wt = tl.load(w_ptr + (w_offs + (k0 * sw_r + kh * sw_h + kw * sw_w)), mask=rmask[:, None] & cmask[None, :],
                     other=0.0)
        acc = tl.dot(tl.trans(a), wt.to(a.dtype), acc, input_precision=PRECISION, out_dtype=acc.dtype)
    return acc


@triton.jit
def _store_tile(y_ptr, sy_n, sy_c, sy_h, sy_w, acc, n, h, w, pmask, cols, cmask, UPCAST: tl.constexpr):
    """y[p, cols] = acc (cast to y's dtype), through y's strides.

    With UPCAST (bf16 under the interpreter) acc is first rounded to bf16 precision, to nearest even, in fp32
    bits: the interpreter's fp32 -> bf16 cast truncates, which biases every stored value downwards (a planted
    test at SqueezeNet's widest Fire saw 2.5× eager's error from that alone); compiled code rounds (cvt.rn).
    """
    if UPCAST:
        bits = acc.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        acc = bits.to(tl.float32, bitcast=True)
    offs = cols.to(tl.int64)[:, None] * sy_c + \
        (n.to(tl.int64) * sy_n + h.to(tl.int64) * sy_h + w.to(tl.int64) * sy_w)[None, :]
    tl.store(y_ptr + offs, tl.trans(acc.to(y_ptr.dtype.element_ty)), mask=cmask[:, None] & pmask[None, :])


@triton.jit
def _bias_act(acc, b_ptr, cols, cmask, HAS_BIAS: tl.constexpr, RELU: tl.constexpr):
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=cmask, other=0.0).to(acc.dtype)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    return acc


@triton.jit
def squeeze_kernel(
    a_ptr,                                # input activations a[N, K, H, W] (x, or grad_s for grad_x)
    w_ptr,                                # weight viewed as [C, K] (Wsq, or Wsqᵀ for grad_x)
    b_ptr,                                # bias [C] (read only when HAS_BIAS)
    y_ptr,                                # output y[N, C, H, W] (s, or grad_x)
    P, H, W, K, C,                        # pixels N·H·W, height, width, input channels, output channels
    sa_n, sa_c, sa_h, sa_w,               # strides of a
    sw_c, sw_k,                           # strides of the weight view (output channel, input channel)
    sy_n, sy_c, sy_h, sy_w,               # strides of y
    HAS_BIAS: tl.constexpr, RELU: tl.constexpr, ACC_FP64: tl.constexpr, UPCAST: tl.constexpr,
    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """y[p, c] = act(Σ_k a[p, k]·w[c, k] + b[c]): the squeeze conv s = relu(Wsq·x + bsq) and, with the
    transposed weight view and no bias or ReLU, grad_x = Wsqᵀ·grad_s. Grid: (pixel tiles, output channel tiles).
    """
    n, h, w, pmask = _pixels(tl.program_id(0), BLOCK_M, 0, P, H, W)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    cmask = cols < C
    acc = _zeros(BLOCK_M, BLOCK_N, ACC_FP64)
    acc = _conv_acc(acc, a_ptr, sa_n, sa_c, sa_h, sa_w, a_ptr, 0, 0, 0, 0, w_ptr, sw_k, sw_c, 0, 0,
                    n, h, w, pmask, cols, cmask, K, H, W, 1, False, False, UPCAST, PRECISION, BLOCK_K)
    acc = _bias_act(acc, b_ptr, cols, cmask, HAS_BIAS, RELU)
    _store_tile(y_ptr, sy_n, sy_c, sy_h, sy_w, acc, n, h, w, pmask, cols, cmask, UPCAST)


@triton.jit
def expand_kernel(
    s_ptr,                                # squeeze activations s[N, S, H, W]
    w1_ptr, b1_ptr,                       # expand1x1 weight [E1, S, 1, 1] and bias [E1]
    w3_ptr, b3_ptr,                       # expand3x3 weight [E3, S, 3, 3] and bias [E3]
    y1_ptr, y3_ptr,                       # out[:, :E1] and out[:, E1:] (two views of one tensor, same strides)
    P, H, W, S, E1, E3,                   # pixels N·H·W, height, width, squeeze / expand channels
    ss_n, ss_c, ss_h, ss_w,               # strides of s
    sw1_e, sw1_k,                         # strides of W1 (output, input channel)
    sw3_e, sw3_k, sw3_h, sw3_w,           # strides of W3
    sy_n, sy_c, sy_h, sy_w,               # strides of out
    ACC_FP64: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """out[:, :E1] = relu(W1·s + b1) and out[:, E1:] = relu(W3 ⊛ s + b3), padding 1, in one launch.

    Grid: (pixel tiles, cdiv(E1, BLOCK_N) + cdiv(E3, BLOCK_N)); channel tiles below cdiv(E1, BLOCK_N) compute
    the 1×1 branch, the rest the 3×3 branch (9 shifted, zero-padded s tiles against W3's taps).
    """
    n, h, w, pmask = _pixels(tl.program_id(0), BLOCK_M, 0, P, H, W)
    t1 = tl.cdiv(E1, BLOCK_N)
    pid_n = tl.program_id(1)
    acc = _zeros(BLOCK_M, BLOCK_N, ACC_FP64)
    if pid_n < t1:
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        cmask = cols < E1
        acc = _conv_acc(acc, s_ptr, ss_n, ss_c, ss_h, ss_w, s_ptr, 0, 0, 0, 0, w1_ptr, sw1_k, sw1_e, 0, 0,
                        n, h, w, pmask, cols, cmask, S, H, W, 1, False, False, UPCAST, PRECISION, BLOCK_K)
        acc = _bias_act(acc, b1_ptr, cols, cmask, True, True)
        _store_tile(y1_ptr, sy_n, sy_c, sy_h, sy_w, acc, n, h, w, pmask, cols, cmask, UPCAST)
    else:
        cols = (pid_n - t1) * BLOCK_N + tl.arange(0, BLOCK_N)
        cmask = cols < E3
        acc = _conv_acc(acc, s_ptr, ss_n, ss_c, ss_h, ss_w, s_ptr, 0, 0, 0, 0, w3_ptr, sw3_k, sw3_e, sw3_h, sw3_w,
                        n, h, w, pmask, cols, cmask, S, H, W, 3, False, False, UPCAST, PRECISION, BLOCK_K)
        acc = _bias_act(acc, b3_ptr, cols, cmask, True, True)
        _store_tile(y3_ptr, sy_n, sy_c, sy_h, sy_w, acc, n, h, w, pmask, cols, cmask, UPCAST)


@triton.jit
def grad_s_kernel(
    g1_ptr, g3_ptr,                       # grad_out[:, :E1] and grad_out[:, E1:] (any strides, 0 included)
    o1_ptr, o3_ptr,                       # out[:, :E1] and out[:, E1:] (for the ReLU masks)
    s_ptr,                                # squeeze activations s[N, S, H, W] (for the squeeze ReLU mask)
    w1_ptr, w3_ptr,                       # expand weights W1 [E1, S, 1, 1], W3 [E3, S, 3, 3]
    gs_ptr,                               # output grad_s[N, S, H, W] (fp32, fp64 for fp64 inputs)
    P, H, W, S, E1, E3,                   # pixels N·H·W, height, width, squeeze / expand channels
    sg_n, sg_c, sg_h, sg_w,               # strides of grad_out
    so_n, so_c, so_h, so_w,               # strides of out
    ss_n, ss_c, ss_h, ss_w,               # strides of s
    sw1_e, sw1_k,                         # strides of W1
    sw3_e, sw3_k, sw3_h, sw3_w,           # strides of W3
    sgs_n, sgs_c, sgs_h, sgs_w,           # strides of grad_s
    ACC_FP64: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """grad_s[p, k] = (Σ_e G1[p, e]·W1[e, k] + Σ_tap Σ_e G3[p - shift_tap, e]·W3[e, k, tap]) ⊙ (s[p, k] > 0),
    G = grad_out ⊙ (out > 0) read in place from both halves. Grid: (pixel tiles, squeeze channel tiles).

    NOTE: grad_s is stored in fp32 even for fp16/bf16 inputs. Gradients are small: fp16 flushes below 6e-8 (why
    AMP needs loss scaling) and bf16 keeps 8 significant bits; both consumers (grad_x and gWsq, ~13% of the
    backward MACs of a SqueezeNet Fire) read it as tf32, which has fp32's range and 10 mantissa bits, so the
    fp16/bf16 operands they meet (x, Wsq) convert exactly. The price: 2 more bytes per element of an S-channel
    tensor, S ≤ 64 against the E1 + E3 ≥ 128 channels of grad_out that this kernel reads.
    """
    n, h, w, pmask = _pixels(tl.program_id(0), BLOCK_M, 0, P, H, W)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    cmask = cols < S
    acc = _zeros(BLOCK_M, BLOCK_N, ACC_FP64)
    acc = _conv_acc(acc, g1_ptr, sg_n, sg_c, sg_h, sg_w, o1_ptr, so_n, so_c, so_h, so_w, w1_ptr, sw1_e, sw1_k, 0, 0,
                    n, h, w, pmask, cols, cmask, E1, H, W, 1, False, True, UPCAST, PRECISION, BLOCK_K)
    acc = _conv_acc(acc, g3_ptr, sg_n, sg_c, sg_h, sg_w, o3_ptr, so_n, so_c, so_h, so_w, w3_ptr, sw3_e, sw3_k,
                    sw3_h, sw3_w, n, h, w, pmask, cols, cmask, E3, H, W, 3, True, True, UPCAST, PRECISION, BLOCK_K)
    s_offs = cols.to(tl.int64)[:, None] * ss_c + \
        (n.to(tl.int64) * ss_n + h.to(tl.int64) * ss_h + w.to(tl.int64) * ss_w)[None, :]
    s = tl.trans(tl.load(s_ptr + s_offs, mask=cmask[:, None] & pmask[None, :], other=0.0))
    if UPCAST:
        s = s.to(tl.float32)
    acc = tl.where(s > 0, acc, 0.0)
    _store_tile(gs_ptr, sgs_n, sgs_c, sgs_h, sgs_w, acc, n, h, w, pmask, cols, cmask, False)


@triton.jit
def wgrad_kernel(
    g_ptr,                                # G source [N, E, H, W]: a grad_out half, or grad_s
    m_ptr,                                # ReLU mask source, same shape (the matching out half; when MASKED)
    i_ptr,                                # layer input [N, K, H, W]: s, or x
    pw_ptr,                               # partial weight grads [chunks, E, K, KSIZE²], fp32 (fp64)
    pb_ptr,                               # partial bias grads [chunks, E], fp32 (fp64)
    P, H, W, E, K, CHUNK,                 # pixels, height, width, output / input channels, pixels per chunk
    sg_n, sg_c, sg_h, sg_w,               # strides of G
    sm_n, sm_c, sm_h, sm_w,               # strides of the mask source
    si_n, si_c, si_h, si_w,               # strides of the input
    KSIZE: tl.constexpr, MASKED: tl.constexpr, ACC_FP64: tl.constexpr, UPCAST: tl.constexpr,
    PRECISION: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """partial[c, e, k, tap] = Σ_{p ∈ chunk c} G[p, e]·in[p + shift_tap, k],  partial_b[c, e] = Σ_{p ∈ c} G[p, e].

    G = g ⊙ (m > 0) when MASKED. The launcher sums the partials over chunks (torch .sum(0)): a deterministic
    reduction with no atomics, gW = Σ_c partial. Grid: (chunks, E tiles, K tiles · KSIZE²); the bias partial is
    written by the (K tile 0, tap 0) programs.
    NOTE: every program also sums its G tiles for the bias (BLOCK_E·BLOCK_P adds per BLOCK_E·BLOCK_P·BLOCK_K MACs)
    rather than branching inside the pixel loop, which would split the loop the pipeliner overlaps; the tiles are
    added elementwise and reduced over pixels once after the loop (no cross-lane shuffles per iteration).
    """
    chunk = tl.program_id(0)
    TAPS: tl.constexpr = KSIZE * KSIZE
    tap = tl.program_id(2) % TAPS
    dh = tap // KSIZE - KSIZE // 2
    dw = tap % KSIZE - KSIZE // 2
    rows = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    rmask = rows < E
    cols = (tl.program_id(2) // TAPS) * BLOCK_K + tl.arange(0, BLOCK_K)
    cmask = cols < K
    rows64 = rows.to(tl.int64)
    cols64 = cols.to(tl.int64)
    start = chunk * CHUNK
    end = tl.minimum(start + CHUNK, P)
    acc = _zeros(BLOCK_E, BLOCK_K, ACC_FP64)
    bias = _zeros(BLOCK_E, BLOCK_P, ACC_FP64)  # Σ of the G tiles, reduced over pixels after the loop
    for i in range(0, tl.cdiv(end - start, BLOCK_P)):
        p = start + i * BLOCK_P + tl.arange(0, BLOCK_P)
        pmask = p < end
        n = p // (H * W)
        h = (p % (H * W)) // W
        w = p % W
        n64 = n.to(tl.int64)
        h64 = h.to(tl.int64)
        w64 = w.to(tl.int64)
        gmask = rmask[:, None] & pmask[None, :]
        g = tl.load(g_ptr + rows64[:, None] * sg_c + (n64 * sg_n + h64 * sg_h + w64 * sg_w)[None, :], mask=gmask,
                    other=0.0)
        if UPCAST:
            g = g.to(tl.float32)
        if MASKED:
            m = tl.load(m_ptr + rows64[:, None] * sm_c + (n64 * sm_n + h64 * sm_h + w64 * sm_w)[None, :],
                        mask=gmask, other=0.0)
            if UPCAST:
                m = m.to(tl.float32)
            g = tl.where(m > 0, g, 0.0)
        hh = h + dh
        ww = w + dw
        valid = pmask & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
        x = tl.load(i_ptr + cols64[:, None] * si_c + (n64 * si_n + (h64 + dh) * si_h + (w64 + dw) * si_w)[None, :],
                    mask=cmask[:, None] & valid[None, :], other=0.0)
        if UPCAST:
            x = x.to(tl.float32)
        acc = tl.dot(g, tl.trans(x).to(g.dtype), acc, input_precision=PRECISION, out_dtype=acc.dtype)
        bias += g.to(acc.dtype)
    offs = ((chunk.to(tl.int64) * E + rows64[:, None]) * K + cols64[None, :]) * TAPS + tap
    tl.store(pw_ptr + offs, acc, mask=rmask[:, None] & cmask[None, :])
    tl.store(pb_ptr + chunk.to(tl.int64) * E + rows64, tl.sum(bias, axis=1), mask=rmask & (tl.program_id(2) == 0))
