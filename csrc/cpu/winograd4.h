// Winograd F(4×4, 3×3) for the forward's 3×3 expand (Lavin & Gray 2016), written once over Vec (vec.h) and compiled
// per ISA (isa.h); forward.cpp drives it. As F(2×2, 3×3) (winograd.h), with 4×4 output tiles from 6×6 input patches:
// 36 GEMMs M_ξ (E × tiles) = U_ξ (E × S) · V_ξ (S × tiles), 36·S multiply-adds per 16 outputs against 64·S by
// F(2×2, 3×3) and 144·S directly, and 2.25 transformed values per output pixel and channel through memory against 4.
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// The transforms scale by 2, 4, 8 and ¼, ⅙, 1/24 (rounded): fp32 errors ~10× direct summation's, ~5e-6 of the
// output's scale at S = 64 (tests hold them to the fp32 tolerance). Multiplications and additions, no FMA: every ISA
// gives the same bits. The backward keeps F(2×2, 3×3).
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

// Weight transform U = G g Gᵀ of kernels [i0, i1) of n: g[k·n + i] is tap k (ky·3 + kx) of kernel i, U[ξ·n + i]
// point ξ of its transform.
void winograd4_weights(const float* g, int64_t n, float* U, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += L) {
    const int m = int(std::min(L, i1 - i));
    auto ld = [&](int64_t k) { return load_first(g + k * n + i, m); };
    Vec t[3][6];  // t[kx] = G·(column kx of g)
    for (int kx = 0; kx < 3; ++kx) winograd4_g(ld(kx), ld(3 + kx), ld(6 + kx), t[kx]);
    for (int r = 0; r < 6; ++r) {  // (G·g)·Gᵀ, row r
      Vec u[6];
      winograd4_g(t[0][r], t[1][r], t[2][r], u);
      for (int j = 0; j < 6; ++j) store_first(U + (6 * r + j) * n + i, u[j], m);
    }
  }
}

// Output transform of `tiles` tile rows (TW tiles each) whose output rows are [0, rows) of dst, + bias and ReLU:
// M[ξ·ldm + t·E + e] -> dst[(r·W + w)·ldp + e] for r < rows, w < W (a tile's pixels past either edge are dropped).
// dst is pixel-major (a channels_last out, or a buffer); stream: non-temporal stores where dst and ldp keep every
// vector aligned (plain ones elsewhere).
void winograd4_output(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* M, int64_t ldm,
                      const float* bias, float* dst, int64_t ldp, bool stream) {
  stream = stream && kStreams && aligned(dst) && ldp % L == 0;
  for (int64_t ty = 0; ty < tiles; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = ty * TW + tx;
      const int nr = int(std::min<int64_t>(4, rows - 4 * ty)), nc = int(std::min<int64_t>(4, W - 4 * tx));
      float* d0 = dst + (4 * ty * W + 4 * tx) * ldp;
      for (int64_t e = 0; e < E; e += L) {
        const float* m = M + t * E + e;
        Vec q[4][6];  // Aᵀ·M
        for (int j = 0; j < 6; ++j) {
          const Vec col[6] = {load(m + j * ldm), load(m + (6 + j) * ldm), load(m + (12 + j) * ldm),
                              load(m + (18 + j) * ldm), load(m + (24 + j) * ldm), load(m + (30 + j) * ldm)};
          Vec y[4];
          winograd4_at(col, y);
          for (int i = 0; i < 4; ++i) q[i][j] = y[i];
        }
        const Vec b = load(bias + e);
        for (int i = 0; i < nr; ++i) {  // (Aᵀ·M)·A + bias, ReLU
          Vec o[4];
          winograd4_at(q[i], o);
          float* d = d0 + i * W * ldp + e;
          for (int j = 0; j < nc; ++j) {
            if (stream) {
              FF_ISA::stream(d + j * ldp, relu(o[j] + b));
            } else {
              store(d + j * ldp, relu(o[j] + b));
            }
          }
        }
      }
    }
  if (stream) stream_fence();
}

}  // namespace fusedfire_cpu::FF_ISA
