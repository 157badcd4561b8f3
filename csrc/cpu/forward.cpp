// The CPU forward: per image and band of R output rows (one band's working set stays in L2),
//
//   sbuf[S][R+2 rows]  = relu(Wsq · x[rows h0-1 .. h0+R] + bsq)    squeeze GEMM, halo rows kept rolling
//   out[:, :E1, band]  = relu(W1 · sbuf[center rows] + b1)        1×1 GEMM written straight into out
//   col[9S][R·W]       = im2col(sbuf)                              3×3 taps, zero padding at the borders
//   out[:, E1:, band]  = relu(W3 · col + b3)                       one GEMM, K = 9S, straight into out
//
// or, where it pays (use_winograd), the 3×3 expand by Winograd F(4×4, 3×3) (winograd4.h): the band's s transformed
// tile by tile, 36 GEMMs with K = S, and the output transform (+ bias + ReLU) into out.
//
// NCHW and channels_last differ only in strides (channels_last: out[:, :E1] is a matrix with leading dimension
// E1+E3), so one code path serves both and the concat is just where each GEMM writes: no intermediate expand
// tensor, no cat copy. Where out is larger than the L2 caches (stream_out), each expand GEMM writes a band-sized
// buffer instead and its bias + ReLU epilogue moves it into out with non-temporal stores. fp16/bf16 are converted
// per band into fp32 buffers (fp32 accumulation); fp64 runs the same code in fp64.
#include <unistd.h>

#include "bands.h"
#include "blas.h"
#include "elementwise.h"
#include "fire.h"
#include "heuristics.h"
#include "out_blocks.h"
#include "pack.h"
#include "winograd_plan.h"

namespace fusedfire_cpu {
namespace {

// Whether out is larger than the L2 caches of the threads writing it, or, channels_last, than half of them (the
// other half holds their inputs, bands and weights; heuristics.h, kDefaultL2).
bool stream_out(const Tensor& out, const Kernels& k) {
  static const int64_t l2 = [] {
#ifdef _SC_LEVEL2_CACHE_SIZE  // glibc
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#else
    const long v = 0;
#endif
    return v > 0 ? int64_t(v) : kDefaultL2;
  }();
  const int64_t bytes = out.numel() * int64_t(out.element_size());
  const int64_t share = out.stride(1) == 1 ? 2 : 1;
  return out.scalar_type() == ScalarType::Float && k.streams && bytes * share > l2 * num_threads();
}

// Where the forward's 3×3 expand runs by Winograd: wherever it can (can(): winograd_plan.h, or the pack's flag) for
// an fp32 out or a channels_last fp16/bf16 one (converted pixel by pixel; an NCHW one would need a transposing
// conversion); under Winograd::automatic only where it pays (heuristics.h).
template <typename Can>
bool use_winograd(const Options& opt, int64_t pixels, const Tensor& out, const Can& can) {
  if (opt.winograd == Winograd::off) return false;
  const bool cl = out.stride(1) == 1;
  const ScalarType t = out.scalar_type();
  const bool fits = t == ScalarType::Float || (cl && (t == ScalarType::Half || t == ScalarType::BFloat16));
  const bool pays = pixels >= kWinogradPixelsPerThread * num_threads();
  return fits && (opt.winograd == Winograd::on || pays) && can();
}

// The 1×1 weights as k.conv1x1 reads them (pack.h, Padded1x1): the pack's, or padded per call into kept scratch
// (slot 3); null where not asked for (a null weight).
struct PaddedWeights {
  Padded1x1 sq, e1;
};

template <typename T>
PaddedWeights padded_weights(const T* wsq, const T* bsq, int64_t S, int64_t Cin, const T* w1, const T* b1,
                             int64_t E1, const float* packed, const Kernels& k, Fresh& fresh) {
  PaddedWeights pw;
  if constexpr (std::is_same_v<T, float>) {
    const PackLayout l = pack_layout(Cin, S, E1, 0);  // offsets from the pack's start
    const float* base = packed;
    if (!packed && (wsq || w1)) {
      float* buf = thread_scratch<float, 3>(l.u, fresh);
      if (wsq) pad_1x1(wsq, bsq, S, Cin, k, buf + l.sq);
      if (w1) pad_1x1(w1, b1, E1, S, k, buf + l.e1);
      base = buf;
    }
    if (wsq) pw.sq = pack_1x1(base, Cin, S, E1, false);
    if (w1) pw.e1 = pack_1x1(base, Cin, S, E1, true);
  }
  return pw;
}

template <typename scalar_t>
void forward_kernel(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1, const Tensor& b1,
                    const Tensor& w3, const Tensor& b3, const Tensor& out, const Tensor* s_out, const Packed* packed,
                    const Options& opt, const Kernels& k) {
  // Accumulate in fp32 (fp64 for fp64); fp16/bf16 are converted per band into fp32 buffers.
  using acc_t = acc_type_of<scalar_t>;
  const GemmWith gw = gemm_with(k, opt.gemm);  // blas.h
  constexpr bool lowp = !std::is_same_v<scalar_t, acc_t>;
  constexpr bool fp32 = std::is_same_v<acc_t, float>;

  const int64_t N = x.size(0), Cin = wsq.size(1), H = x.size(2), W = x.size(3);  // x: S channels where squeezed
  const int64_t S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0);
  const int64_t xN = x.stride(0), xC = x.stride(1), xP = pixel_stride(x);
  const int64_t oN = out.stride(0), oC = out.stride(1), oP = pixel_stride(out);
  int64_t sN = 0, sC = 0, sP = 0;
  if (s_out) sN = s_out->stride(0), sC = s_out->stride(1), sP = pixel_stride(*s_out);

  // Weights in acc_t: (S × Cin), (E1 × S), (E3 × 9S). W3's k = c·rc + tap·rt: PyTorch's c·9 + tap, or tap·S + c
  // for a channels_last W3 (a channels_last model's), which is then used in place and im2col follows its order.
  constexpr ScalarType acc_type = torch::headeronly::CppTypeToScalarType<acc_t>::value;
  auto as_acc = [](const Tensor& t) { return dense(to_dtype(t, acc_type)); };
  const Tensor wsq_a = as_acc(wsq), bsq_a = as_acc(bsq), w1_a = as_acc(w1), b1_a = as_acc(b1), b3_a = as_acc(b3);
  Tensor w3_a = to_dtype(w3, acc_type);
  const bool w3_cl = w3_a.stride(1) == 1 && w3_a.stride(3) == S && w3_a.stride(2) == 3 * S && w3_a.stride(0) == 9 * S;
  if (!w3_cl) w3_a = dense(w3_a);
  const int64_t rc = w3_cl ? 1 : 9, rt = w3_cl ? S : 1;
  const acc_t *Wsq = wsq_a.const_data_ptr<acc_t>(), *Bsq = bsq_a.const_data_ptr<acc_t>(),
              *W1 = w1_a.const_data_ptr<acc_t>(), *B1 = b1_a.const_data_ptr<acc_t>(),
              *W3 = w3_a.const_data_ptr<acc_t>(), *B3 = b3_a.const_data_ptr<acc_t>();
  const scalar_t* X = x.const_data_ptr<scalar_t>();
  scalar_t* O = out.mutable_data_ptr<scalar_t>();
  scalar_t* Sv = s_out ? s_out->mutable_data_ptr<scalar_t>() : nullptr;

  // With a pooling after the Fire (pool_after: fp32, channels_last): out is pooled (PH × PW); the Fire's rows go band
  // by band into a per-thread buffer (fbuf, out's pixel layout), and each pooled row is taken as soon as its window
  // is there. Items are then chunks of pooled rows, each computing the Fire rows its windows cover.
  // NOTE: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved, paired medians, against the Fire and then
  // native_max_pool: 0.974× / 0.978× the time at N=8 (squeezenet1_0 / 1_1), 0.99-1.01× at N=1.
  const bool pool_after = packed && packed->pool_kernel > 0;
  const int64_t pk = pool_after ? packed->pool_kernel : 0, ps = pool_after ? packed->pool_stride : 0;
  const int64_t PH = out.size(2), PW = out.size(3);
  // With the next Fire's squeeze (next: fp32, channels_last), the Fire's rows go band by band into fbuf (rP = E1 + E3
  // floats a pixel), and out's rows are their squeeze by the next Fire's 1×1 weights (k.conv1x1).
  // NOTE: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved, paired medians, against each Fire's out
  // in memory: squeezenet1_1 0.94× / 0.94× the time at N=1 (two runs), 0.95× at N=8; squeezenet1_0 0.95× / 0.95×,
  // 0.95×.
  const bool next = packed && packed->next.w, squeezed = packed && packed->squeezed;
  const int64_t rP = next ? E1 + E3 : oP;  // pixel stride of the Fire's output rows where they are written

  // Work items: (image, chunk of rows), see row_chunks.
  // NOTE: one parallel_for per call, MKL single-threaded inside it (nested OpenMP): one barrier per Fire
  // instead of one per GEMM, which matters on a shared machine where any descheduled thread stalls a barrier.
  const int64_t chunks = row_chunks(N, pool_after ? PH : H, num_threads());
  const int64_t R = band_rows(opt.band_pixels, W, H);
  const bool stream = !pool_after && !next && stream_out(out, k);
  // NOTE: a channels_last x (fp32) is squeezed into a pixel-major buffer (sgemm M = S), then transposed into the
  // channel-major sbuf. (Xeon) Squeezing straight into sbuf reads x transposed with M = pixels, which MKL ran at
  // 39–46 GF/s on the 13×13 squeezes against 91–103 untransposed (one thread, hot caches); the M = S form ran at
  // 80–99 GF/s, and s (S × pixels) is 4–8× smaller than x (Cin × pixels) to transpose. A/B at N=8 (16 configs,
  // channels_last), against transposing x for bands of ≤ 256 pixels and reading it in place otherwise: 0.975× and
  // 0.982× the time in two runs; N=1 0.999×. (EPYC, AVX-512, 16 Fires, medians of 9) 0.993× at N=1, 0.985× at N=8.
  // (fp16 / bf16 x is first converted to fp32 in its own orientation.)
  const bool s_transposes = fp32 && xC == 1 && Cin > 1;
  // The 3×3 expand by Winograd (use_winograd): bands are cut into blocks of TR tile rows (m = 4 output rows each),
  // at most `cap` tiles (kWinogradBlockBytes of transformed input); each block's input transform, then its fused
  // GEMMs and output transform (winograd4.h). A band whose s holds a NaN or an inf takes im2col instead: a transform
  // mixes 36 inputs into every point, so a NaN would reach outputs that eager's convolution keeps finite (and inf -
  // inf gives NaN where eager gives inf).
  const int64_t m = kWinogradM, TW = (W + m - 1) / m;  // tiles per row (winograd_plan.h)
  const int64_t tile_bytes = int64_t(sizeof(float)) * kWinogradPoints * std::max<int64_t>(S, 1);
  const int64_t cap = std::max<int64_t>(kWinogradBlockBytes / tile_bytes, TW);
  const int64_t TR = std::clamp<int64_t>(cap / TW, 1, (R + m - 1) / m);  // tile rows per block
  // fp32 only: a pack (pack.h, fire.h Packed) replaces the per-call derivations below
  const float* Pk = packed ? packed->pack : nullptr;
  bool wino = false;
  Fresh u_fresh;
  const float* U = nullptr;
  if constexpr (fp32) {
    wino = use_winograd(opt, N * H * W, out, [&] { return Pk ? Pk[0] == 1.f : winograd_can(S, E3, W3, k); });
    if (wino) U = Pk ? Pk + pack_layout(Cin, S, E1, E3).u : winograd_weights(W3, E3, S, rc, rt, k, u_fresh);
  }
  // The 1×1 convolutions into pixel-major destinations (the squeeze of a channels_last x, expand1x1 into a
  // channels_last out) by k.conv1x1 (conv1x1.h), their weights transposed and padded once per call.
  // NOTE: (EPYC, AVX-512) A/B against BLAS GEMMs and their bias + ReLU pass, forward, the 8 squeezenet1_0 Fires
  // channels_last, 1 thread (CPU time), medians of 9: 0.91× the time at N=1 (0.84-0.97), 0.89× at N=8 (0.81-0.92).
  const bool sq_pm = s_transposes, e1_pm = fp32 && oC == 1;
  // A squeezed, channels_last x (s from the Fire before) with Winograd and expand1x1 pixel-major (direct): both
  // expands read x's rows where they are (into spw, by expand1x1 in place), not through the channel-major sbuf and
  // back; sbuf only for a band that takes im2col (a NaN or an inf in its s).
  // NOTE: (EPYC) optimize's whole network, 2 threads, interleaved, paired medians: AVX-512 squeezenet1_1 0.985× /
  // 0.979× the time (N=1 / N=8), squeezenet1_0 0.993× / 0.992×; AVX2 squeezenet1_1 0.977× (N=8).
  const bool direct = squeezed && wino && e1_pm && xC == 1 && !s_out;
  Fresh pm_fresh;
  const PaddedWeights pw = padded_weights(sq_pm ? Wsq : nullptr, Bsq, S, Cin, e1_pm ? W1 : nullptr, B1, E1, Pk,
                                          k, pm_fresh);

  // A small image's Winograd expand split over output channels instead (split): the items (image, row chunk) squeeze,
  // expand 1×1 and transform their tiles into Vs; a second parallel region then runs the 3×3 expand of every tile by
  // ranges of output channels, so that each thread reads its share of U, not all of it (heuristics.h).
  const int64_t items = N * chunks, chunk_rows = (H + chunks - 1) / chunks;
  const int64_t item_tiles = (chunk_rows + m - 1) / m * TW;  // at most, per item
  const bool split = fp32 && !lowp && wino && oC == 1 && !pool_after && !next && num_threads() > 1 &&
                     R >= chunk_rows &&
                     items * item_tiles * kWinogradPoints * S * int64_t(sizeof(float)) <= kSplitExpandBytes;
  const int64_t ldvs = items * item_tiles * S;  // Vs[ξ·ldvs + (item·item_tiles + t)·S + c]
  Fresh vs_fresh;
  float* Vs = split ? thread_scratch<float, 6>(kWinogradPoints * ldvs, vs_fresh) : nullptr;
  std::vector<uint8_t> transformed(split ? items : 0);  // the items whose tiles are in Vs (not im2col's)

  parallel_items(items, [&](auto take) {
    const MklThreadsGuard one_mkl_thread(1);  // blas.h
    const int64_t s_ld = (R + 2) * W;         // sbuf channel stride: R+2 rows (1-row halo on each side)
    const int64_t spw_n = wino ? S * (R + m + 1) * W : 0, v_n = wino ? kWinogradPoints * cap * S : 0;
    const int64_t xbuf_n = (lowp ? Cin : 0) * (R + 2) * W, spm_n = (s_transposes ? S : 0) * (R + 2) * W;
    const int64_t obuf_n = lowp || stream || (wino && oC != 1) ? std::max(E1, E3) * R * W : 0;
    const int64_t fbuf_n = pool_after ? (R + pk) * W * oP : next ? R * W * rP : 0;  // pooling: pk - 1 kept rows too
    const int64_t col_n = 9 * S * R * W;  // last: with Winograd only a non-finite band touches it
    Fresh fresh;  // heuristics.h, kMaxKeptScratch
    acc_t* sbuf = thread_scratch<acc_t>(S * s_ld + xbuf_n + spm_n + obuf_n + spw_n + v_n + fbuf_n + col_n, fresh);
    acc_t* xbuf = sbuf + S * s_ld;
    acc_t* spm = xbuf + xbuf_n;  // a band of s, pixel-major (see s_transposes)
    acc_t* obuf = spm + spm_n;
    acc_t* spw = obuf + obuf_n;  // Winograd: the band's s pixel-major, up to m - 1 extra zero rows
    acc_t* V = spw + spw_n;      // transformed inputs, points × (tiles × S)
    acc_t* fbuf = V + v_n;       // pool_after: the Fire's rows [f_lo, ...)
    acc_t* col = fbuf + fbuf_n;

    for (int64_t item; (item = take()) >= 0;) {
      const int64_t n = item / chunks, chunk = item % chunks;
      int64_t c0 = H * chunk / chunks, c1 = H * (chunk + 1) / chunks;  // output rows [c0, c1)
      const int64_t p0 = PH * chunk / chunks, p1 = PH * (chunk + 1) / chunks;  // pool_after: pooled rows [p0, p1)
      if (pool_after) c0 = p0 * ps, c1 = std::min((p1 - 1) * ps + pk, H);
      const scalar_t* Xn = X + n * xN;
      int64_t f_lo = c0, next_r = p0;  // pool_after: fbuf's first row; the next pooled row
      auto orow = [&](int64_t h) {  // where the Fire's output row h goes
        if (pool_after || next) return reinterpret_cast<scalar_t*>(fbuf) + (h - f_lo) * W * rP;
        return O + n * oN + h * W * oP;
      };
      // pool_after: the pooled rows whose windows end by row h_end, then fbuf's rows still needed moved to its front
      auto pool_ready = [&](int64_t h_end) {
        if constexpr (fp32 && !lowp) {
          if (!pool_after) return;
          for (; next_r < p1 && std::min(next_r * ps + pk, H) <= h_end; ++next_r)
            pool_row(k, next_r, pk, ps, H, W, oP, PW, [&](int64_t i) { return fbuf + (i - f_lo) * W * oP; },
                     O + n * oN + next_r * PW * oP);
          const int64_t keep = std::min(next_r < p1 ? next_r * ps : h_end, h_end);
          if (keep > f_lo) {
            std::memmove(fbuf, fbuf + (keep - f_lo) * W * oP, (h_end - keep) * W * oP * sizeof(float));
            f_lo = keep;
          }
        }
      };

      // the band [h0, h0 + rb) of the Fire's rows is in fbuf, then: the pooled rows it completes, or the next squeeze
      auto band_done = [&](int64_t h0, int64_t rb) {
        if constexpr (fp32 && !lowp) {
          if (next) {
            packed->next.run(k, rb * W, fbuf, rP, 1, O + n * oN + h0 * W * oP, oP, false);
            f_lo = h0 + rb;
          }
        }
        pool_ready(h0 + rb);
      };

      // sbuf row i holds squeeze row h0 - 1 + i of the current band (zeros outside the image).
      auto squeeze_rows = [&](int64_t r0, int64_t r1, int64_t h0) {  // image rows [r0, r1) into sbuf
        for (int64_t r = r0; r < r1; ++r) {
          if (r < 0 || r >= H) {
            acc_t* dst = sbuf + (r - h0 + 1) * W;
            for (int64_t c = 0; c < S; ++c) std::fill_n(dst + c * s_ld, W, acc_t(0));
          }
        }
        const int64_t a = std::max<int64_t>(r0, 0), b = std::min<int64_t>(r1, H);
        if (a >= b) return;
        const int64_t npix = (b - a) * W;
        const Mat<acc_t> dst{sbuf + (a - h0 + 1) * W, s_ld, 1};
        if (squeezed) {  // x is s (fp32): its rows into the channel-major sbuf
          if constexpr (fp32) copy2d(k, S, npix, Xn + a * W * xP, xC, xP, dst.p, s_ld, int64_t(1));
          return;
        }
        Mat<const acc_t> xb;  // x's band as a Cin × npix matrix
        if constexpr (lowp) {
          copy2d(k, Cin, npix, Xn + a * W * xP, xC, xP, xbuf, xC == 1 ? 1 : npix, xC == 1 ? Cin : 1);
          xb = xC == 1 ? Mat<const acc_t>{xbuf, 1, Cin} : Mat<const acc_t>{xbuf, npix, 1};
        } else {
          xb = {Xn + a * W * xP, xC, xP};
        }
        if (sq_pm) {  // + bias, ReLU in the kernel, then transposed into sbuf
          if constexpr (fp32) pw.sq.run(k, npix, xb.p, xb.cs, xb.rs, spm, S, false);
          copy2d(k, S, npix, spm, int64_t(1), S, dst.p, s_ld, int64_t(1));
        } else {
          gemm<acc_t>(gw, S, npix, Cin, {Wsq, Cin, 1}, xb, dst);
          bias_relu(k, S, npix, dst.p, s_ld, int64_t(1), Bsq, dst.p, s_ld, int64_t(1));
        }
      };

      // every band but the last Rb rows: the halo move relies on it
      const int64_t Rb = wino ? tile_band_rows(c1 - c0, R, m) : even_band_rows(c1 - c0, R);
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        if (direct) {  // x's rows h0 - 1 .. h0 + rb into spw, zeros outside the image
          if constexpr (fp32 && !lowp) {
            const int64_t a = std::max<int64_t>(h0 - 1, 0), b = std::min<int64_t>(h0 + rb + 1, H);
            std::fill_n(spw, (a - h0 + 1) * W * S, 0.f);
            copy2d(k, (b - a) * W, S, Xn + a * W * xP, xP, int64_t(1), spw + (a - h0 + 1) * W * S, S, int64_t(1));
            std::fill_n(spw + (b - h0 + 1) * W * S, (h0 + rb + 1 - b) * W * S, 0.f);
          }
        } else if (h0 == c0) {
          squeeze_rows(h0 - 1, h0 + rb + 1, h0);
        } else {  // rows h0-1 and h0 were the previous band's last two: move them to the front
          for (int64_t c = 0; c < S; ++c)
            std::memmove(sbuf + c * s_ld, sbuf + c * s_ld + Rb * W, 2 * W * sizeof(acc_t));
          squeeze_rows(h0 + 1, h0 + rb + 1, h0);
        }
        if (s_out) {  // the training forward saves s (band rows only: halo rows belong to other bands)
          copy2d(k, S, P, sbuf + W, s_ld, int64_t(1), Sv + n * sN + h0 * W * sP, sC, sP);
        }

        // Both expands, each into its channel slice of out (the concat is where they write): straight into out, or
        // through obuf (in out's orientation) for a low-precision out or a streamed one (stream_out).
        // NOTE: each epilogue right after its GEMM, while that GEMM's output is still in L2 ((Xeon) both GEMMs
        // first, then both epilogues: the E1 slice was evicted by the 3×3 GEMM's traffic; A/B at N=8, 4 configs ×
        // 2 layouts: this order 0.95× the time, geomean, every case faster).
        auto expand = [&](int64_t E, int64_t K, Mat<const acc_t> Wt, Mat<const acc_t> act, const acc_t* bias,
                          int64_t e0) {
          scalar_t* Oc = orow(h0) + e0 * oC;
          if (lowp || stream) {
            const int64_t bC = oP == 1 ? P : 1, bP = oP == 1 ? 1 : E;
            gemm<acc_t>(gw, E, P, K, Wt, act, {obuf, bC, bP});
            if constexpr (lowp) {  // in place in fp32, then converted (both vectorised)
              bias_relu(k, E, P, obuf, bC, bP, bias, obuf, bC, bP);
              copy2d(k, E, P, obuf, bC, bP, Oc, oC, oP);
            } else {
              bias_relu(k, E, P, obuf, bC, bP, bias, Oc, oC, oP, stream);
            }
          } else if constexpr (!lowp) {
            gemm<acc_t>(gw, E, P, K, Wt, act, {Oc, oC, rP});
            bias_relu(k, E, P, Oc, oC, rP, bias, Oc, oC, rP);
          }
        };
        if (e1_pm) {  // channels_last: straight into out (fp32; streamed where aligned) or through obuf (fp16/bf16)
          if constexpr (fp32) {
            scalar_t* Oc = orow(h0);
            float* d = lowp ? obuf : reinterpret_cast<float*>(Oc);
            if (direct) {
              pw.e1.run(k, P, reinterpret_cast<const float*>(Xn) + h0 * W * xP, xP, 1, d, rP, stream);
            } else {
              pw.e1.run(k, P, sbuf + W, 1, s_ld, d, lowp ? E1 : rP, stream);
            }
            if (lowp) copy2d(k, E1, P, obuf, int64_t(1), E1, Oc, oC, oP);
          }
        } else {
          expand(E1, S, {W1, S, 1}, {sbuf + W, s_ld, 1}, B1, 0);
        }
        const bool finite = direct ? k.finite((rb + 2) * W, S, reinterpret_cast<const float*>(spw), S)
                                   : wino && k.finite(S, (rb + 2) * W, reinterpret_cast<const float*>(sbuf), s_ld);
        if (!finite) {
          if (direct) squeeze_rows(h0 - 1, h0 + rb + 1, h0);
          im2col(S, rb, W, sbuf, s_ld, col, rc, rt);
          expand(E3, 9 * S, {W3, 9 * S, 1}, {col, P, 1}, B3, E1);
          band_done(h0, rb);
          continue;
        }
        if constexpr (fp32) {
          if (!direct) copy2d(k, S, (rb + 2) * W, sbuf, s_ld, int64_t(1), spw, int64_t(1), S);
          const int64_t TH = (rb + m - 1) / m;  // the last tile row reads m·TH - rb rows past the band's: zeros
          std::fill_n(spw + (rb + 2) * W * S, (m * TH - rb) * W * S, 0.f);
          if (split) {  // the item is one band: its tiles into Vs, expanded after this region
            k.winograd4_input(S, W, TW, 0, TH, spw, S, Vs + item * item_tiles * S, ldvs);
            transformed[item] = 1;
            continue;
          }
          for (int64_t ty0 = 0; ty0 < TH; ty0 += TR) {
            const int64_t ty1 = std::min(TH, ty0 + TR), r0 = m * ty0, r1 = std::min(rb, m * ty1);
            k.winograd4_input(S, W, TW, ty0, ty1, spw, S, V, cap * S);
            scalar_t* Oc = orow(h0 + r0) + E1 * oC;
            if (!lowp && oC == 1) {  // channels_last: each pixel's 3×3 half written as it comes (streamed if aligned)
              k.winograd4_expand(S, E3, 0, E3, W, TW, ty1 - ty0, r1 - r0, V, cap * S, U, B3,
                                 reinterpret_cast<float*>(Oc), rP, stream);
            } else {  // pixel-major through obuf, then into out: block transposes (NCHW) or conversions (fp16/bf16)
              k.winograd4_expand(S, E3, 0, E3, W, TW, ty1 - ty0, r1 - r0, V, cap * S, U, B3, obuf, E3, false);
              copy2d(k, E3, (r1 - r0) * W, obuf, int64_t(1), E3, Oc, oC, oP);
            }
          }
        }
        band_done(h0, rb);
      }
    }
  });
  if (!split) return;
  if constexpr (fp32) {
    const int64_t unit = 32, units = (E3 + unit - 1) / unit;  // a pair of AVX-512 vectors: the kernel's block
    parallel_items(units, [&](auto take) {
      for (int64_t u; (u = take()) >= 0;) {
        const int64_t ea = u * unit, eb = std::min(E3, ea + unit);
        for (int64_t item = 0; item < items; ++item) {
          if (!transformed[item]) continue;
          const int64_t n = item / chunks, chunk = item % chunks;
          const int64_t c0 = H * chunk / chunks, c1 = H * (chunk + 1) / chunks;
          float* Oc = reinterpret_cast<float*>(O + n * oN + c0 * W * oP + E1);
          k.winograd4_expand(S, E3, ea, eb, W, TW, (c1 - c0 + m - 1) / m, c1 - c0, Vs + item * item_tiles * S,
                             ldvs, U, B3, Oc, oP, stream);
        }
      }
    });
  }
}

}  // namespace

std::tuple<Tensor, Tensor> forward(const Tensor& x_in, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                   const Tensor& b1, const Tensor& w3, const Tensor& b3, bool save_s,
                                   const Packed* packed, const Options& opt, const Kernels& k) {
  const auto fmt = memory_format(x_in);
  const int64_t N = x_in.size(0), H = x_in.size(2), W = x_in.size(3);
  auto empty = [&](int64_t C) {
    const int64_t sizes[] = {N, C, H, W};
    return torch::stable::empty(sizes, x_in.scalar_type(), std::nullopt, std::nullopt, std::nullopt, fmt);
  };
  // optimize's inference path (a pack) takes its out, pooled or the next Fire's s where it asks, from kept blocks
  // (out_blocks.h)
  Tensor out;
  if (packed) {
    const int64_t kp = packed->pool_kernel, sp = packed->pool_stride;
    const bool c = packed->pool_ceil;
    out = kept_empty(N, packed->next.w ? packed->next.M : w1.size(0) + w3.size(0),
                     kp > 0 ? pooled_size(H, kp, sp, c) : H, kp > 0 ? pooled_size(W, kp, sp, c) : W, fmt);
  } else {
    out = empty(w1.size(0) + w3.size(0));
  }
  Tensor s = save_s ? empty(wsq.size(0)) : Tensor();
  if (out.numel() == 0) return {out, s};
  // NOTE: the GEMMs read x as a (channel × pixel) matrix per image. A view whose pixels are not one uniform
  // stride (a crop like x[..., 1:8]) or without a unit stride is copied once to memory_format(x); x is the
  // smallest activation of a Fire (Cin ≤ E1+E3), and every contiguous or channels_last x is read in place.
  const Tensor x = gemm_ready(x_in) ? x_in : torch::stable::contiguous(x_in, fmt);
  FF_DISPATCH_FLOATING(x.scalar_type(), "fusedfire_cpu_forward", [&] {
    forward_kernel<scalar_t>(x, wsq, bsq, w1, b1, w3, b3, out, save_s ? &s : nullptr, packed, opt, k);
  });
  return {out, s};
}

}  // namespace fusedfire_cpu
