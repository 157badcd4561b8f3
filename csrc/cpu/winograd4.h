// Winograd F(4×4, 3×3) for the 3×3 expand (Lavin & Gray 2016), written once over Vec (vec.h) and compiled per ISA
// (isa.h); forward.cpp and backward.cpp drive it. A 4×4 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with d the 6×6 input
// patch around it, so the 3×3 convolution becomes 36 GEMMs with K = S (one per point ξ of the 6×6 transformed tile):
// M_ξ (E × tiles) = U_ξ (E × S) · V_ξ (S × tiles), 36·S multiply-adds per 16 outputs against 144·S directly (64·S by
// F(2×2, 3×3)).
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// The transforms scale by 2, 4, 8 and ¼, ⅙, 1/24 (rounded): fp32 errors ~10× direct summation's, ~5e-6 of the
// output's scale at S = 64 (tests hold them to the fp32 tolerance). The transforms are multiplications and additions
// (the same bits on every ISA); the GEMMs use FMA where the ISA has one (vec.h).
#pragma once

namespace fusedfire_cpu::FF_ISA {

// y = Bᵀ x (6 values)
inline void winograd4_bt(const Vec (&x)[6], Vec (&y)[6]) {
  const Vec two = set1(2.f), four = set1(4.f);
  const Vec c = x[4] - x[2], a = x[4] - four * x[2], b = x[3] - four * x[1], e = two * (x[3] - x[1]);
  y[0] = four * (x[0] - x[2]) + c;
  y[1] = a + b;
  y[2] = a - b;
  y[3] = c + e;
  y[4] = c - e;
  y[5] = four * (x[1] - x[3]) + (x[5] - x[3]);
}

// y = G g (3 values -> 6)
inline void winograd4_g(Vec g0, Vec g1, Vec g2, Vec (&y)[6]) {
  const Vec two = set1(2.f), four = set1(4.f), sixth = set1(1.f / 6), twentyfourth = set1(1.f / 24);
  const Vec even = g0 + g2, even4 = g0 + four * g2, odd2 = two * g1;
  y[0] = set1(0.25f) * g0;
  y[1] = zero() - sixth * (even + g1);
  y[2] = zero() - sixth * (even - g1);
  y[3] = twentyfourth * (even4 + odd2);
  y[4] = twentyfourth * (even4 - odd2);
  y[5] = g2;
}

// y = Gᵀ u (6 values -> 3): the transpose of winograd4_g, for the weight gradient
inline void winograd4_gt(const Vec (&u)[6], Vec (&y)[3]) {
  const Vec sixth = set1(1.f / 6), twelfth = set1(1.f / 12), twentyfourth = set1(1.f / 24);
  const Vec p = u[1] + u[2], q = u[3] + u[4];
  y[0] = set1(0.25f) * u[0] + (twentyfourth * q - sixth * p);
  y[1] = sixth * (u[2] - u[1]) + twelfth * (u[3] - u[4]);
  y[2] = sixth * (q - p) + u[5];
}

// y = A g (4 values -> 6): the transpose of winograd4_at, for the output gradient
inline void winograd4_a(const Vec (&g)[4], Vec (&y)[6]) {
  const Vec even = g[0] + g[2], odd = g[1] + g[3];
  const Vec even4 = g[0] + set1(4.f) * g[2], odd8 = set1(2.f) * (g[1] + set1(4.f) * g[3]);
  y[0] = g[0];
  y[1] = even + odd;
  y[2] = even - odd;
  y[3] = even4 + odd8;
  y[4] = even4 - odd8;
  y[5] = g[3];
}

// y = Aᵀ m (6 values -> 4)
inline void winograd4_at(const Vec (&m)[6], Vec (&y)[4]) {
  const Vec p = m[1] + m[2], q = m[1] - m[2], r = m[3] + m[4], t = m[3] - m[4];
  y[0] = m[0] + p + r;
  y[1] = q + set1(2.f) * t;
  y[2] = p + set1(4.f) * r;
  y[3] = q + set1(8.f) * t + m[5];
}

// Input transform of the tile rows [ty0, ty1) of a band of S channels: s is the band pixel-major (s[(i·W + w)·lds +
// c] = row i - 1 of the band, column w; zeros left and right of the image are implied), tile (ty, tx) reads rows
// 4ty .. 4ty+5 and columns 4tx-1 .. 4tx+4. V[ξ·ldv + t·S + c], t = (ty - ty0)·TW + tx.
void winograd4_input(int64_t S, int64_t W, int64_t TW, int64_t ty0, int64_t ty1, const float* s, int64_t lds,
                     float* V, int64_t ldv) {
  for (int64_t ty = ty0; ty < ty1; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = (ty - ty0) * TW + tx, w0 = 4 * tx - 1;
      const bool inner = w0 >= 0 && w0 + 5 < W;
      for (int64_t c = 0; c < S; c += L) {
        Vec r[6][6];  // r[i] = Bᵀ·(row i of d)
        for (int i = 0; i < 6; ++i) {
          const float* row = s + (4 * ty + i) * W * lds + c;
          Vec d[6];
          for (int j = 0; j < 6; ++j)
            d[j] = inner || (w0 + j >= 0 && w0 + j < W) ? load(row + (w0 + j) * lds) : zero();
          winograd4_bt(d, r[i]);
        }
        float* v = V + t * S + c;
        for (int j = 0; j < 6; ++j) {  // Bᵀ·(d·B), column j
          const Vec col[6] = {r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]};
          Vec y[6];
          winograd4_bt(col, y);
          for (int i = 0; i < 6; ++i) store(v + (6 * i + j) * ldv, y[i]);
        }
      }
    }
}

// Weight transform U = G g Gᵀ of kernels [i0, i1) of n = E·K, kernel i = c·E + e from input c to output e (i0, i1
// multiples of E): g[k·n + i] is tap k (ky·3 + kx) of kernel i, U (kernels.h, winograd_u_at) its points.
void winograd4_weights(const float* g, int64_t E, int64_t K, float* U, int64_t i0, int64_t i1) {
  const int64_t n = E * K;
  for (int64_t i = i0; i < i1; i += L) {  // L outputs of one input: contiguous in g and in U's block (E % 16 = 0)
    const int64_t c = i / E, e = i % E;
    auto ld = [&](int64_t k) { return load(g + k * n + i); };
    Vec t[3][6];  // t[kx] = G·(column kx of g)
    for (int kx = 0; kx < 3; ++kx) winograd4_g(ld(kx), ld(3 + kx), ld(6 + kx), t[kx]);
    for (int r = 0; r < 6; ++r) {  // (G·g)·Gᵀ, row r
      Vec u[6];
      winograd4_g(t[0][r], t[1][r], t[2][r], u);
      for (int j = 0; j < 6; ++j) store(U + winograd_u_at(E, K, 6 * r + j, c, e), u[j]);
    }
  }
}

// The 3×3 expand of `tiles` tile rows (TW tiles each) whose output rows are [0, rows) of dst, output channels
// [ea, eb) of E (multiples of L), from their transformed inputs V[ξ·ldv + t·S + c] and the transformed weights U
// (kernels.h, winograd_u_at): per pair of output-channel vectors and group of tiles (for_groups), the 36 products
// M_ξ = U_ξ·V_ξ (K = S) into a buffer that stays in L1, then their output transform + bias, ReLU, into
// dst[(r·W + w)·ldp + e] for r < rows, w < W (a tile's pixels past either edge are dropped); a null bias: the output
// transform alone (the backward's grad_s). dst is pixel-major (a channels_last out, or a buffer); stream: non-temporal
// stores where dst and ldp keep every vector aligned (plain ones elsewhere).
// NOTE: fused, not 36 BLAS GEMMs between transforms: M (36 values per tile and channel) never goes through memory,
// and nothing is packed or zeroed for the GEMM: (EPYC, AVX-512) 0.77-0.74× the forward's time (heuristics.h,
// kWinogradBlockBytes).
void winograd4_expand(int64_t S, int64_t E, int64_t ea, int64_t eb, int64_t W, int64_t TW, int64_t tiles,
                      int64_t rows, const float* V, int64_t ldv, const float* U, const float* bias, float* dst,
                      int64_t ldp, bool stream) {
  stream = stream && kStreams && aligned(dst) && ldp % L == 0;
  // NOTE: where a vector is less than a cache line (AVX2: half of one), a streamed tile is staged in L1 and each
  // pixel's two vectors streamed together: lines are written whole, not as halves 16 stores apart. (EPYC, AVX2) a
  // 55×55 Fire alone: 0.64× the time (N=1, 1 thread), 0.66× / 0.82× (two Fires, N=8, 2 threads); plain stores instead
  // 0.66×, 0.77× / 0.92×. With AVX-512's whole-line vectors staging took 1.02-1.05×.
  const bool staged = stream && L * sizeof(float) < 64;
  alignas(64) float Mb[36 * kGroup * 2 * L];  // [ξ][tile j][2 vectors]
  alignas(64) float tile[16 * 2 * L];         // staged: a tile's outputs [pixel][2 vectors]
  const int64_t T = tiles * TW;
  for (int64_t e0 = ea; e0 < eb; e0 += 2 * L) {
    const int mr = eb - e0 >= 2 * L ? 2 : 1;
    const int64_t wb = std::min(kWinogradBlock, E - e0 / kWinogradBlock * kWinogradBlock);  // U's block width
    const Vec b[2] = {bias ? load(bias + e0) : zero(), bias && mr == 2 ? load(bias + e0 + L) : zero()};
    for_groups(T, [&](int64_t t0, int nt) {
      for (int xi = 0; xi < 36; ++xi) {
        float* mb = Mb + xi * kGroup * 2 * L;  // M_ξ of tile j, vector i at mb[j·2L + i·L]
        gemm_block_n(mr, nt, S, U + winograd_u_at(E, S, xi, 0, e0), wb, V + xi * ldv + t0 * S, S, 1,
                     [mb](int i, int j, Vec m) { store(mb + j * 2 * L + i * L, m); });
      }
      for (int j = 0; j < nt; ++j) {  // output transform of tile t0 + j
        const int64_t ty = (t0 + j) / TW, tx = (t0 + j) % TW;
        const int nr = int(std::min<int64_t>(4, rows - 4 * ty)), nc = int(std::min<int64_t>(4, W - 4 * tx));
        float* d0 = dst + (4 * ty * W + 4 * tx) * ldp + e0;
        for (int i = 0; i < mr; ++i) {
          const float* m = Mb + j * 2 * L + i * L;
          const int64_t ldm = kGroup * 2 * L;
          Vec q[4][6];  // Aᵀ·M
          for (int c = 0; c < 6; ++c) {
            const Vec col[6] = {load(m + c * ldm), load(m + (6 + c) * ldm), load(m + (12 + c) * ldm),
                                load(m + (18 + c) * ldm), load(m + (24 + c) * ldm), load(m + (30 + c) * ldm)};
            Vec y[4];
            winograd4_at(col, y);
            for (int r = 0; r < 4; ++r) q[r][c] = y[r];
          }
          for (int r = 0; r < nr; ++r) {  // (Aᵀ·M)·A + bias, ReLU
            Vec o[4];
            winograd4_at(q[r], o);
            float* d = d0 + r * W * ldp + i * L;
            for (int c = 0; c < nc; ++c) {
              const Vec v = bias ? relu(o[c] + b[i]) : o[c];
              if (staged) {
                store(tile + (4 * r + c) * 2 * L + i * L, v);
              } else if (stream) {
                FF_ISA::stream(d + c * ldp, v);
              } else {
                store(d + c * ldp, v);
              }
            }
          }
        }
        if (staged)  // each pixel's vectors streamed together
          for (int r = 0; r < nr; ++r)
            for (int c = 0; c < nc; ++c)
              for (int i = 0; i < mr; ++i)
                FF_ISA::stream(d0 + (r * W + c) * ldp + i * L, load(tile + (4 * r + c) * 2 * L + i * L));
      }
    });
  }
  if (stream) stream_fence();
}

// The backward's transposes (backward.cpp). grad_s of the 3×3 expand is the forward's kernels run on the output
// gradient with the flipped, transposed weights (winograd_plan.h); the weight gradient is
// Gᵀ [Σ_tiles (A gy Aᵀ) ⊙ (Bᵀ d B)] G, gy a tile's 4×4 output gradient, d its 6×6 input patch:

// Ĝ = A·gy·Aᵀ of the 4×4 output gradient gy of each tile of `tiles` tile rows (TW tiles each, output rows
// [0, rows)): g[(r·W + w)·ldg + e] for r < rows, w < W (zero past them). Ĝ[ξ·ldh + t·E + e].
void winograd4_grad_output(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* g,
                           int64_t ldg, float* Gh, int64_t ldh) {
  for (int64_t ty = 0; ty < tiles; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = ty * TW + tx;
      const int nr = int(std::min<int64_t>(4, rows - 4 * ty)), nc = int(std::min<int64_t>(4, W - 4 * tx));
      const float* g0 = g + (4 * ty * W + 4 * tx) * ldg;
      for (int64_t e = 0; e < E; e += L) {
        Vec r[4][6];  // r[i] = A·(row i of gy)
        for (int i = 0; i < 4; ++i) {
          Vec y[4];
          for (int j = 0; j < 4; ++j) y[j] = i < nr && j < nc ? load(g0 + (i * W + j) * ldg + e) : zero();
          winograd4_a(y, r[i]);
        }
        float* h = Gh + t * E + e;
        for (int j = 0; j < 6; ++j) {  // A·(column j)
          const Vec col[4] = {r[0][j], r[1][j], r[2][j], r[3][j]};
          Vec y[6];
          winograd4_a(col, y);
          for (int i = 0; i < 6; ++i) store(h + (6 * i + j) * ldh, y[i]);
        }
      }
    }
}

// dU[ξ·E·S + c·E + e] += Σ_{t < T} Ĝ[ξ·ldh + t·E + e] · V[ξ·ldv + t·S + c] (the transformed weight gradient,
// row-major per point, not blocked as U): per point ξ, pair of E vectors and group of kGroup channels c, the block's
// T tiles summed in registers.
void winograd4_grad_weights(int64_t S, int64_t E, int64_t T, const float* Gh, int64_t ldh, const float* V,
                            int64_t ldv, float* dU) {
  for (int xi = 0; xi < 36; ++xi) {
    float* du = dU + xi * E * S;
    for (int64_t e0 = 0; e0 < E; e0 += 2 * L) {
      const int mr = E - e0 >= 2 * L ? 2 : 1;
      for (int64_t c0 = 0; c0 < S; c0 += kGroup) {
        const int nc = int(std::min<int64_t>(kGroup, S - c0));
        gemm_block_n(mr, nc, T, Gh + xi * ldh + e0, E, V + xi * ldv + c0, 1, S, [&](int i, int j, Vec m) {
          float* d = du + (c0 + j) * E + e0 + i * L;
          store(d, load(d) + m);
        });
      }
    }
  }
}

// The transpose of the weight transform: the gradient of kernels [i0, i1) of n, dg = Gᵀ·dU·G, from dU[ξ·n + i];
// dg[k·n + i] for tap k = ky·3 + kx.
void winograd4_weight_grad(const float* dU, int64_t n, float* dg, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += L) {
    const int m = int(std::min(L, i1 - i));
    Vec t[6][3];  // t[p] = Gᵀ·(row p of dU)
    for (int p = 0; p < 6; ++p) {
      Vec u[6];
      for (int q = 0; q < 6; ++q) u[q] = load_first(dU + (6 * p + q) * n + i, m);
      winograd4_gt(u, t[p]);
    }
    for (int kx = 0; kx < 3; ++kx) {  // Gᵀ·(column kx)
      const Vec col[6] = {t[0][kx], t[1][kx], t[2][kx], t[3][kx], t[4][kx], t[5][kx]};
      Vec y[3];
      winograd4_gt(col, y);
      for (int ky = 0; ky < 3; ++ky) store_first(dg + (3 * ky + kx) * n + i, y[ky], m);
    }
  }
}

}  // namespace fusedfire_cpu::FF_ISA
