// The CPU backward, the VJP of the ops.py docstring, fused band by band like the forward (forward.cpp): BLAS GEMMs
// for the 1×1 convolutions' gradients, Winograd F(4×4, 3×3) or im2col/col2im GEMMs for the 3×3 expand's, from the
// saved x, s and out; no G, grad_s or expand-sized tensor is ever materialised.
#include <torch/csrc/stable/c/shim.h>

#include <array>
#include <iterator>
#include <numeric>
#include <vector>

#include "bands.h"
#include "blas.h"
#include "elementwise.h"
#include "fire.h"
#include "winograd_plan.h"

namespace fusedfire_cpu {
namespace {

// The weight gradients' accumulators: one row of n per worker of the parallel region (its slot), in kept scratch,
// each zeroed by its worker on first use; total() sums the used rows in slot order (for a given thread count the
// same sum on every call).
// NOTE: (EPYC, AVX-512) a fresh tensor, torch's zero_ and sum over the rows took 17% of a 13×13 backward at N=1
// (1_1.features.11, 1 thread, perf): its pages faulted in on every call.
template <typename acc_t>
struct Accumulators {
  Accumulators(int64_t slots, int64_t n) : slots(slots), n(n), used(slots, 0) {
    p = thread_scratch<acc_t, 5>(slots * n, fresh);
  }
  acc_t* row(uint32_t slot) {
    STD_TORCH_CHECK(slot < slots, "fusedfire cpu: more workers than accumulators");
    acc_t* r = p + slot * n;
    if (!used[slot]) std::fill_n(r, n, acc_t(0)), used[slot] = 1;
    return r;
  }
  acc_t* total() {
    acc_t* t = nullptr;
    for (int64_t i = 0; i < slots; ++i) {
      if (!used[i]) continue;
      const acc_t* __restrict__ r = p + i * n;
      if (!t) {
        t = p + i * n;
      } else {
        for (int64_t j = 0; j < n; ++j) t[j] += r[j];
      }
    }
    return t ? t : row(0);  // no worker: zeros
  }
  const int64_t slots, n;
  acc_t* p;
  Fresh fresh;
  std::vector<char> used;  // one element per slot, each written by its own worker only
};

// Per (image, row chunk) and per band of R rows, like the forward:
//
//   pass 1, per band:  G[E][rows]  = grad_out ⊙ (out > 0)                  (+ the chunk's halo rows, see below)
//                      gb1, gb3   += Σ_p G1, G3;  gW1 += G1·sᵀ;  gW3 += G3·im2col(s)ᵀ
//                      gs[rows]   += W1ᵀ·G1;  gs += col2im(W3ᵀ·G3)       gs: the chunk's grad_s, L2-sized
//   pass 2, per band:  gs ⊙= (s > 0);  gbsq += Σ_p gs;  gWsq += gs·xᵀ;  grad_x[rows] = Wsqᵀ·gs
//
// col2im spreads row r of W3ᵀ·G3 over grad_s rows r-1..r+1, so a chunk also takes W3ᵀ·G3 of the G rows just
// above and below it (masked again there, counted in no weight or bias gradient). Weight gradients accumulate per
// thread and are summed in thread order: for a given thread count the result is the same on every call.
// The masks are eager's (threshold_backward): zero only where out <= 0 (or s <= 0), so a NaN passes its gradient.
// NOTE: (Xeon) against the ATen backward it replaced (mask into a full G tensor, three convolution_backward calls on
// its channel views, grad_s summed and masked as tensors), A/B over the 16 Fires × 2 layouts: 0.62× the time at
// N=1, 0.65× at N=8 (every case faster; 13×13 with E = 512 least, 0.71–0.83×).
template <typename scalar_t>
void backward_kernel(const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out, const Tensor& wsq,
                     const Tensor& w1, const Tensor& w3, const Tensor& grad_x, Accumulators<acc_type_of<scalar_t>>& wacc,
                     bool wino, const Options& opt, const Kernels& k) {
  using acc_t = acc_type_of<scalar_t>;
  const GemmWith gw = gemm_with(k, opt.gemm);  // blas.h
  constexpr bool lowp = !std::is_same_v<scalar_t, acc_t>;
  constexpr bool fp32 = std::is_same_v<acc_t, float>;
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0), E = E1 + E3, K3 = 9 * S;
  const int64_t xN = x.stride(0), xC = x.stride(1), xP = pixel_stride(x);
  const int64_t sN = s.stride(0), sC = s.stride(1), sP = pixel_stride(s);
  const int64_t gxN = grad_x.stride(0), gxC = grad_x.stride(1), gxP = pixel_stride(grad_x);
  const auto gos = grad_out.strides(), os = out.strides();  // any strides (an expanded grad_out has zeros)

  constexpr ScalarType acc_type = torch::headeronly::CppTypeToScalarType<acc_t>::value;
  const Tensor wsq_a = dense(to_dtype(wsq, acc_type)), w1_a = dense(to_dtype(w1, acc_type)),
               w3_a = dense(to_dtype(w3, acc_type));
  const acc_t *Wsq = wsq_a.const_data_ptr<acc_t>(), *W1 = w1_a.const_data_ptr<acc_t>(),
              *W3 = w3_a.const_data_ptr<acc_t>();
  const scalar_t *GO = grad_out.const_data_ptr<scalar_t>(), *O = out.const_data_ptr<scalar_t>(),
                 *X = x.const_data_ptr<scalar_t>(), *Sv = s.const_data_ptr<scalar_t>();
  scalar_t* GX = grad_x.mutable_data_ptr<scalar_t>();
  // Offsets of the weight gradients in a row of wacc (see backward): gb1 and gb3 are one vector; with Winograd,
  // the transformed gradient of W3 (dU, 16 × E3 × S) last.
  const int64_t oBsq = S * Cin, oW1 = oBsq + S, oW3 = oW1 + E1 * S, oB = oW3 + E3 * K3, oU = oB + E;

  const int64_t chunks = row_chunks(N, H, num_threads());
  const int64_t R = band_rows(opt.band_pixels, W, H);
  const int64_t chunk_rows = (H + chunks - 1) / chunks;
  // G in out's orientation, so that the masking pass reads grad_out and out along their unit stride.
  const bool g_cm = os[3] == 1;
  // Winograd F(4×4, 3×3) (wino, see backward; winograd4.h): per band, grad_s of the 3×3 expand as the forward's
  // fused Winograd convolution of G3 (its rows h0-1 .. h0+rb) with the flipped, transposed weights U', and
  // dU_ξ += Ĝ_ξ·V_sξᵀ (Ĝ: the band's G3 through the transposed output transform, V_s: s through the input transform),
  // in blocks of TR tile rows. A band whose G3 or s holds a NaN or an inf takes im2col (as the forward); so that the
  // two mix, every band then gathers its own grad_s rows from G rows h0-1 .. h0+rb (the scatter of col2im limited to
  // them), where without Winograd each G row is scattered once, by its own band.
  const int64_t m = kWinogradM, TW = (W + m - 1) / m;  // winograd_plan.h
  const int64_t TR = std::clamp<int64_t>(kWinogradBackwardTiles / TW, 1, (R + m - 1) / m);
  const int64_t tiles = TR * TW;  // per block, at most
  Fresh u_fresh;
  const float* U = nullptr;
  if constexpr (fp32) {
    if (wino) U = winograd_weights_flipped(W3, E3, S, k, u_fresh);
  }

  torch::stable::parallel_for(0, N * chunks, 1, [&](int64_t begin, int64_t end) {
    const MklThreadsGuard one_mkl_thread(1);  // blas.h
    uint32_t slot = 0;  // the worker's index in the parallel region (at::get_thread_num)
    TORCH_ERROR_CODE_CHECK(torch_get_thread_idx(&slot));
    acc_t* acc = wacc.row(slot);
    acc_t *gWsq = acc, *gBsq = acc + oBsq, *gW1 = acc + oW1, *gW3 = acc + oW3, *gB = acc + oB, *dU = acc + oU;

    const int64_t s_ld = (R + 2) * W, gs_ld = chunk_rows * W;
    const int64_t gbuf_n = E * (R + 2) * W, col_n = K3 * R * W, gcol_n = K3 * (R + 2) * W;
    const int64_t xbuf_n = lowp ? Cin * R * W : 0;
    // Winograd: s and G3 pixel-major with their halo rows (+ up to m - 1 zero rows), V_s, Ĝ then V_g (G3's
    // transform), grad_s pixel-major
    const int64_t spw_n = S * (R + m + 1) * W, gpw_n = E3 * (R + m + 1) * W;
    const int64_t wino_n = wino ? spw_n + gpw_n + kWinogradPoints * tiles * (S + E3) + S * R * W : 0;
    const int64_t scratch_n = gbuf_n + S * s_ld + S * gs_ld + xbuf_n + R * W + wino_n + col_n + gcol_n;
    Fresh fresh;  // heuristics.h, kMaxKeptScratch
    acc_t* gbuf = thread_scratch<acc_t>(scratch_n, fresh);
    acc_t* sbuf = gbuf + gbuf_n;
    acc_t* gs = sbuf + S * s_ld;
    acc_t* xbuf = gs + S * gs_ld;
    acc_t* ones = xbuf + xbuf_n;  // bias gradients are GEMVs against it
    acc_t* spw = ones + R * W;
    acc_t* gpw = spw + spw_n;
    acc_t* Vs = gpw + gpw_n;
    acc_t* Gv = Vs + kWinogradPoints * tiles * S;  // Ĝ, then V_g
    acc_t* gsp = Gv + kWinogradPoints * tiles * E3;
    acc_t* col = ones + R * W + wino_n;  // last: with Winograd only a non-finite band touches them
    acc_t* gcol = col + col_n;
    std::fill_n(ones, R * W, acc_t(1));

    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t c0 = H * chunk / chunks, c1 = H * (chunk + 1) / chunks;  // rows [c0, c1)
      if (c0 == c1) continue;
      const int64_t Rb = wino ? tile_band_rows(c1 - c0, R, m) : even_band_rows(c1 - c0, R);
      std::fill_n(gs, S * gs_ld, acc_t(0));

      // G rows [g0, g1) into gbuf (Pg = (g1 - g0)·W pixels), in out's orientation.
      // NOTE: both operands loaded unconditionally, so that the select vectorises ((Xeon) a conditional load of
      // grad_out compiled to a scalar loop with a branch: 25% of a channels_last backward at N=8).
      auto mask_rows = [&](int64_t g0, int64_t g1, int64_t Pg) {
        for (int64_t r = g0; r < g1; ++r) {
          const scalar_t* go_r = GO + n * gos[0] + r * gos[2];
          const scalar_t* o_r = O + n * os[0] + r * os[2];
          // (inner count, inner strides of grad_out and out, outer count and strides, gbuf strides)
          const int64_t ni = g_cm ? W : E, gi = g_cm ? gos[3] : gos[1], oi = g_cm ? os[3] : os[1];
          const int64_t no = g_cm ? E : W, go_o = g_cm ? gos[1] : gos[3], o_o = g_cm ? os[1] : os[3];
          const int64_t d_o = g_cm ? Pg : E;
          acc_t* d_r = gbuf + (r - g0) * W * (g_cm ? 1 : E);
          for (int64_t j = 0; j < no; ++j) {
            const scalar_t* __restrict__ go = go_r + j * go_o;
            const scalar_t* __restrict__ o = o_r + j * o_o;
            acc_t* __restrict__ d = d_r + j * d_o;
            if (gi == 1 && oi == 1) {
              for (int64_t i = 0; i < ni; ++i) {
                const acc_t g = static_cast<acc_t>(go[i]);
                d[i] = o[i] <= scalar_t(0) ? acc_t(0) : g;
              }
            } else if (gi == 0 && oi == 1) {  // an expanded grad_out (out.sum()'s): one value
              // NOTE: not the strided loop (scalar, a branch an element): (EPYC Zen 5, AVX-512, 2 threads, alternating
              // builds) forward + out.sum()'s backward at N=8, four Fires 13×13 to 55×55, 0.50-0.73× the time NCHW,
              // 0.46-0.72× channels_last.
              const acc_t g = static_cast<acc_t>(go[0]);
              for (int64_t i = 0; i < ni; ++i) d[i] = o[i] <= scalar_t(0) ? acc_t(0) : g;
            } else {
              for (int64_t i = 0; i < ni; ++i) {
                const acc_t g = static_cast<acc_t>(go[i * gi]);
                d[i] = o[i * oi] <= scalar_t(0) ? acc_t(0) : g;
              }
            }
          }
        }
      };
      // s rows [h0 - 1, h0 + rb + 1) into sbuf, channel-major, zeros outside the image.
      auto load_s = [&](int64_t h0, int64_t rb) {
        for (int64_t r = h0 - 1; r <= h0 + rb; ++r)
          if (r < 0 || r >= H)
            for (int64_t c = 0; c < S; ++c) std::fill_n(sbuf + c * s_ld + (r - h0 + 1) * W, W, acc_t(0));
        const int64_t a = std::max<int64_t>(h0 - 1, 0), b = std::min<int64_t>(h0 + rb + 1, H);
        copy2d(k, S, (b - a) * W, Sv + n * sN + a * W * sP, sC, sP, sbuf + (a - h0 + 1) * W, s_ld, int64_t(1));
      };

      // The 3×3 expand's gradients of a band by Winograd (see wino above): gpw holds G3 rows [g0, g1), the band's
      // and its halo, at rows g0 - h0 + 1 .. (row i: image row h0 - 1 + i), zeros around.
      auto winograd_band = [&](int64_t h0, int64_t rb, int64_t g0, int64_t g1, Mat<const acc_t> G3all) {
        if constexpr (fp32) {
          const int64_t TH = (rb + m - 1) / m;  // the last tile row reads m·TH - rb rows past the band's: zeros
          copy2d(k, S, (rb + 2) * W, sbuf, s_ld, int64_t(1), spw, int64_t(1), S);
          std::fill_n(spw + (rb + 2) * W * S, (m * TH - rb) * W * S, 0.f);
          std::fill_n(gpw, (g0 - h0 + 1) * W * E3, 0.f);
          copy2d(k, E3, (g1 - g0) * W, G3all.p, G3all.rs, G3all.cs, gpw + (g0 - h0 + 1) * W * E3, int64_t(1), E3);
          std::fill(gpw + (g1 - h0 + 1) * W * E3, gpw + (m * TH + 2) * W * E3, 0.f);
          for (int64_t ty0 = 0; ty0 < TH; ty0 += TR) {
            const int64_t ty1 = std::min(TH, ty0 + TR), r0 = m * ty0, rows = std::min(rb, m * ty1) - r0;
            const int64_t ldv = tiles * S, ldg = tiles * E3;
            k.winograd4_input(S, W, TW, ty0, ty1, spw, S, Vs, ldv);
            k.winograd4_grad_output(E3, W, TW, ty1 - ty0, rows, gpw + (r0 + 1) * W * E3, E3, Gv, ldg);
            k.winograd4_grad_weights(S, E3, (ty1 - ty0) * TW, Gv, ldg, Vs, ldv, dU);  // dU_ξ += Ĝ_ξ·V_sξᵀ
            k.winograd4_input(E3, W, TW, ty0, ty1, gpw, E3, Gv, ldg);
            k.winograd4_expand(E3, S, 0, S, W, TW, ty1 - ty0, rows, Gv, ldg, U, nullptr, gsp + r0 * W * S, S,
                               false);
          }
          copy2d(k, S, rb * W, gsp, int64_t(1), S, gs + (h0 - c0) * W, gs_ld, int64_t(1));  // grad_s3, overwritten
        }
      };

      // Pass 1: G, the expand gradients and grad_s (unmasked) of rows [c0, c1).
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        // G rows [g0, g1): the band's and, with Winograd, its halo rows; else the chunk's halo rows at its edges
        const int64_t g0 = wino || h0 == c0 ? std::max<int64_t>(h0 - 1, 0) : h0;
        const int64_t g1 = wino || h0 + rb == c1 ? std::min<int64_t>(h0 + rb + 1, H) : h0 + rb;
        const int64_t Pg = (g1 - g0) * W;
        mask_rows(g0, g1, Pg);
        const int64_t gC = g_cm ? Pg : 1, gP = g_cm ? 1 : E;
        const Mat<const acc_t> G1{gbuf + (h0 - g0) * W * gP, gC, gP}, G3{G1.p + E1 * gC, gC, gP},
            G3all{gbuf + E1 * gC, gC, gP};
        load_s(h0, rb);

        gemm<acc_t>(gw, E, 1, P, G1, {ones, 1, P}, {gB, 1, E}, true);            // gb1, gb3 += Σ_p G
        gemm<acc_t>(gw, E1, S, P, G1, {sbuf + W, 1, s_ld}, {gW1, S, 1}, true);  // gW1 += G1·sᵀ
        bool finite = false;
        if constexpr (fp32) {
          finite = wino && k.finite(S, (rb + 2) * W, sbuf, s_ld) &&
                   (g_cm ? k.finite(E3, Pg, G3all.p, Pg) : k.finite(Pg, E3, G3all.p, E));
        }
        if (finite) {
          winograd_band(h0, rb, g0, g1, G3all);  // gW3 (through dU) and grad_s3, before anything adds to it
        } else {
          im2col(S, rb, W, sbuf, s_ld, col, int64_t(9), int64_t(1));
          gemm<acc_t>(gw, E3, K3, P, G3, {col, 1, P}, {gW3, K3, 1}, true);  // gW3 += G3·colᵀ
          gemm<acc_t>(gw, K3, Pg, E3, {W3, 1, K3}, G3all, {gcol, Pg, 1});   // gcol = W3ᵀ·G3
          const int64_t t0 = wino ? h0 : c0, t1 = wino ? h0 + rb : c1;  // the grad_s rows it adds to
          col2im(S, W, gcol, g0, g1, gs + (t0 - c0) * W, gs_ld, t0, t1);
        }
        gemm<acc_t>(gw, S, P, E1, {W1, 1, S}, G1, {gs + (h0 - c0) * W, gs_ld, 1}, true);  // gs += W1ᵀ·G1
      }

      // Pass 2: the squeeze's gradients, band by band.
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        acc_t* g = gs + (h0 - c0) * W;
        load_s(h0, rb);
        for (int64_t c = 0; c < S; ++c) {
          acc_t* __restrict__ v = g + c * gs_ld;
          const acc_t* __restrict__ sc = sbuf + c * s_ld + W;
          for (int64_t p = 0; p < P; ++p) v[p] = sc[p] <= acc_t(0) ? acc_t(0) : v[p];
        }
        const Mat<const acc_t> gsm{g, gs_ld, 1};
        gemm<acc_t>(gw, S, 1, P, gsm, {ones, 1, P}, {gBsq, 1, S}, true);  // gbsq += Σ_p grad_s
        const scalar_t* xb = X + n * xN + h0 * W * xP;
        scalar_t* gxb = GX + n * gxN + h0 * W * gxP;
        if constexpr (lowp) {
          copy2d(k, Cin, P, xb, xC, xP, xbuf, P, int64_t(1));
          gemm<acc_t>(gw, S, Cin, P, gsm, {xbuf, 1, P}, {gWsq, Cin, 1}, true);  // gWsq += gs·xᵀ
          gemm<acc_t>(gw, Cin, P, S, {Wsq, 1, Cin}, gsm, {xbuf, P, 1});        // grad_x = Wsqᵀ·gs
          copy2d(k, Cin, P, xbuf, P, int64_t(1), gxb, gxC, gxP);
        } else {
          gemm<acc_t>(gw, S, Cin, P, gsm, {xb, xP, xC}, {gWsq, Cin, 1}, true);
          gemm<acc_t>(gw, Cin, P, S, {Wsq, 1, Cin}, gsm, {gxb, gxC, gxP});
        }
      }
    }
  });
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> backward(
    const Tensor& grad_out, const Tensor& x_in, const Tensor& s_in, const Tensor& out, const Tensor& wsq,
    const Tensor& w1, const Tensor& w3, const Options& opt, const Kernels& k) {
  const int64_t Cin = x_in.size(1), S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0);
  const auto fmt = memory_format(x_in);
  // x and s are read as (channel × pixel) matrices (see forward); out and grad_out through their 4 strides.
  const Tensor x = gemm_ready(x_in) ? x_in : torch::stable::contiguous(x_in, fmt);
  const Tensor s = gemm_ready(s_in) ? s_in : torch::stable::contiguous(s_in, fmt);
  Tensor grad_x = torch::stable::empty(x_in.sizes(), x_in.scalar_type(), std::nullopt, std::nullopt, std::nullopt, fmt);
  const ScalarType acc_type = x.scalar_type() == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
  // Winograd for the 3×3 expand's gradients (see backward_kernel), in fp32 accumulation, where it can run
  // (winograd_plan.h) and, under Winograd::automatic, where it pays (heuristics.h).
  // w3 in the acc dtype, contiguous: what backward_kernel reads (its own conversion is then a no-op).
  const Tensor w3_a = dense(to_dtype(w3, acc_type));
  bool wino = false;
  if (acc_type == ScalarType::Float && opt.winograd != Winograd::off && x.numel() > 0 && out.numel() > 0) {
    const bool pays = x.size(0) * x.size(2) * x.size(3) >= kWinogradBackwardPixelsPerThread * num_threads();
    wino = (opt.winograd == Winograd::on || pays) && winograd_can(S, E3, w3_a.const_data_ptr<float>(), k);
  }
  // One row per thread: gWsq (S·Cin), gbsq (S), gW1 (E1·S), gW3 (E3·9S), gb1 (E1), gb3 (E3), with Winograd dU
  // (36·E3·S, dU[ξ][c·E3 + e]), in the acc dtype.
  const int64_t sizes[] = {S * Cin, S, E1 * S, E3 * 9 * S, E1, E3, wino ? kWinogradPoints * E3 * S : 0};
  const std::array<torch::headeronly::IntHeaderOnlyArrayRef, 6> shapes{
      wsq.sizes(), wsq.sizes().slice(0, 1), w1.sizes(), w3.sizes(), w1.sizes().slice(0, 1), w3.sizes().slice(0, 1)};
  std::array<Tensor, 6> g;
  FF_DISPATCH_FLOATING(x.scalar_type(), "fusedfire_cpu_backward", [&] {
    using acc_t = acc_type_of<scalar_t>;
    Accumulators<acc_t> wacc(num_threads(), std::accumulate(std::begin(sizes), std::end(sizes), int64_t(0)));
    if (x.numel() > 0 && out.numel() > 0) {
      backward_kernel<scalar_t>(grad_out, x, s, out, wsq, w1, w3_a, grad_x, wacc, wino, opt, k);
    } else {
      torch::stable::zero_(grad_x);
    }
    acc_t* total = wacc.total();
    if (wino) {  // gW3 += Gᵀ·dU·G, its taps (dg[tap][c·E3 + e]) into gW3's (e, c, tap) order
      float* t = reinterpret_cast<float*>(total);  // wino: fp32 accumulation
      const int64_t n = E3 * S, oW3 = sizes[0] + sizes[1] + sizes[2], oU = oW3 + sizes[3] + E1 + E3;
      Fresh dg_fresh;
      float* dg = thread_scratch<float, 1>(9 * n, dg_fresh);
      torch::stable::parallel_for(0, n, 1024, [&](int64_t i0, int64_t i1) {
        k.winograd4_weight_grad(t + oU, n, dg, i0, i1);
        for (int64_t tap = 0; tap < 9; ++tap)
          for (int64_t i = i0; i < i1; ++i) t[oW3 + ((i % E3) * S + i / E3) * 9 + tap] += dg[tap * n + i];
      });
    }
    // Each gradient a new tensor of its weight's shape (contiguous) in x's dtype, converted from its slice of total.
    int64_t offset = 0;
    for (int i = 0; i < 6; offset += sizes[i++]) {
      g[i] = torch::stable::empty(shapes[i], x.scalar_type());
      scalar_t* dst = g[i].mutable_data_ptr<scalar_t>();
      for (int64_t j = 0; j < sizes[i]; ++j) dst[j] = static_cast<scalar_t>(total[offset + j]);
    }
  });
  return {grad_x, g[0], g[1], g[2], g[4], g[3], g[5]};
}

}  // namespace fusedfire_cpu
