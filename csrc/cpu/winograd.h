// Winograd F(2×2, 3×3) for the backward's 3×3 expand (Lavin & Gray 2016; the forward's is F(4×4, 3×3),
// winograd4.h), written once over Vec (vec.h) and compiled per ISA (isa.h). A 2×2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with d the 4×4 input patch around
// it, so the 3×3 convolution becomes 16 GEMMs with K = S (one per point ξ of the 4×4 transformed tile):
// M_ξ (E × tiles) = U_ξ (E × S) · V_ξ (S × tiles), 16·S multiply-adds per output pair against 36·S for 2×2 outputs
// directly. The transforms are additions and halvings only (Bᵀ and Aᵀ hold 0 and ±1):
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]   Aᵀ = [1 1 1 0; 0 1 -1 -1]
// Channels go L at a time: S and E must be multiples of L (winograd_can asks for multiples of 16).
//
// The backward (backward.cpp) runs the forward's transforms too: grad_s of the 3×3 expand is a 3×3 convolution of G3 with the
// flipped, transposed kernel, whose transform is U's with the points ξ = 4i + j permuted (i, j: 0 <-> 3); and the
// weight gradient is Gᵀ [Σ_tiles (A gy Aᵀ) ⊙ (Bᵀ d B)] G, with gy a tile's 2×2 output gradient (winograd_grad_output
// and winograd_weight_grad below, the transposes of the output and weight transforms).
#pragma once

namespace fusedfire_cpu::FF_ISA {

// Input transform of the tile rows [ty0, ty1) of a band of S channels: s is the band pixel-major (s[(i·W + w)·lds +
// c] = row i - 1 of the band, column w; zeros left and right of the image are implied), tile (ty, tx) reads rows
// 2ty .. 2ty+3 and columns 2tx-1 .. 2tx+2. V[ξ·ldv + t·S + c], t = (ty - ty0)·TW + tx.
void winograd_input(int64_t S, int64_t W, int64_t TW, int64_t ty0, int64_t ty1, const float* s, int64_t lds, float* V,
                    int64_t ldv) {
  for (int64_t ty = ty0; ty < ty1; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = (ty - ty0) * TW + tx, w0 = 2 * tx - 1;
      const bool inner = w0 >= 0 && w0 + 3 < W;
      for (int64_t c = 0; c < S; c += L) {
        Vec r[4][4];
        for (int i = 0; i < 4; ++i) {
          const float* row = s + ((2 * ty + i) * W + w0) * lds + c;
          Vec d[4];
          for (int j = 0; j < 4; ++j) d[j] = inner || (w0 + j >= 0 && w0 + j < W) ? load(row + j * lds) : zero();
          r[i][0] = d[0] - d[2];  // d·B
          r[i][1] = d[1] + d[2];
          r[i][2] = d[2] - d[1];
          r[i][3] = d[1] - d[3];
        }
        float* v = V + t * S + c;
        for (int j = 0; j < 4; ++j) {  // Bᵀ·(d·B)
          store(v + (0 + j) * ldv, r[0][j] - r[2][j]);
          store(v + (4 + j) * ldv, r[1][j] + r[2][j]);
          store(v + (8 + j) * ldv, r[2][j] - r[1][j]);
          store(v + (12 + j) * ldv, r[1][j] - r[3][j]);
        }
      }
    }
}

// Weight transform U = G g Gᵀ of kernels [i0, i1) of n: g[k·n + i] is tap k (ky·3 + kx) of kernel i, U[ξ·n + i]
// point ξ of its transform.
void winograd_weights(const float* g, int64_t n, float* U, int64_t i0, int64_t i1) {
  const Vec half = set1(0.5f);
  for (int64_t i = i0; i < i1; i += L) {
    const int m = int(std::min(L, i1 - i));
    auto ld = [&](int64_t k) { return load_first(g + k * n + i, m); };
    auto st = [&](int64_t k, Vec v) { store_first(U + k * n + i, v, m); };
    Vec t[4][3];  // G·g
    for (int j = 0; j < 3; ++j) {
      const Vec a = ld(j), b = ld(3 + j), d = ld(6 + j);
      t[0][j] = a, t[3][j] = d;
      t[1][j] = half * (a + b + d);
      t[2][j] = half * (a - b + d);
    }
    for (int r = 0; r < 4; ++r) {  // (G·g)·Gᵀ
      const Vec a = t[r][0], b = t[r][1], d = t[r][2];
      st(r * 4 + 0, a);
      st(r * 4 + 1, half * (a + b + d));
      st(r * 4 + 2, half * (a - b + d));
      st(r * 4 + 3, d);
    }
  }
}

// Output transform of `tiles` tile rows (TW tiles each) whose output rows are [0, rows) of dst: M[ξ·ldm + t·E + e]
// -> dst[(r·W + w)·ldp + e] for r < rows, w < W (a tile's pixels past either edge are dropped), as it is (the
// backward's grad_s; the forward's bias + ReLU are fused in winograd4.h). dst is pixel-major.
void winograd_output(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* M, int64_t ldm,
                     float* dst, int64_t ldp) {
  for (int64_t ty = 0; ty < tiles; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = ty * TW + tx;
      const bool two_rows = 2 * ty + 1 < rows, two_cols = 2 * tx + 1 < W;
      float* d0 = dst + (2 * ty * W + 2 * tx) * ldp;
      for (int64_t e = 0; e < E; e += L) {
        const float* m = M + t * E + e;
        Vec q[2][4];
        for (int j = 0; j < 4; ++j) {  // Aᵀ·M
          const Vec m0 = load(m + j * ldm), m1 = load(m + (4 + j) * ldm), m2 = load(m + (8 + j) * ldm),
                    m3 = load(m + (12 + j) * ldm);
          q[0][j] = m0 + m1 + m2;
          q[1][j] = m1 - m2 - m3;
        }
        for (int i = 0; i < (two_rows ? 2 : 1); ++i) {  // (Aᵀ·M)·A
          float* d = d0 + i * W * ldp + e;
          store(d, q[i][0] + q[i][1] + q[i][2]);
          if (two_cols) store(d + ldp, q[i][1] - q[i][2] - q[i][3]);
        }
      }
    }
}

// The transpose of the output transform, for the weight gradient: Ĝ = A·gy·Aᵀ of the 2×2 output gradient gy of each
// tile of `tiles` tile rows (TW tiles each, output rows [0, rows)): g[(r·W + w)·ldg + e] for r < rows, w < W (zero
// past them). Ĝ[ξ·ldh + t·E + e]. A = [1 0; 1 1; 1 -1; 0 -1].
void winograd_grad_output(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* g, int64_t ldg,
                          float* Gh, int64_t ldh) {
  for (int64_t ty = 0; ty < tiles; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = ty * TW + tx;
      const bool two_rows = 2 * ty + 1 < rows, two_cols = 2 * tx + 1 < W;
      const float* g0 = g + (2 * ty * W + 2 * tx) * ldg;
      for (int64_t e = 0; e < E; e += L) {
        const Vec y00 = load(g0 + e), y01 = two_cols ? load(g0 + ldg + e) : zero();
        const Vec y10 = two_rows ? load(g0 + W * ldg + e) : zero();
        const Vec y11 = two_rows && two_cols ? load(g0 + (W + 1) * ldg + e) : zero();
        const Vec r[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11}, {zero() - y10, zero() - y11}};
        float* h = Gh + t * E + e;
        for (int i = 0; i < 4; ++i) {  // (A·gy)·Aᵀ
          store(h + (4 * i + 0) * ldh, r[i][0]);
          store(h + (4 * i + 1) * ldh, r[i][0] + r[i][1]);
          store(h + (4 * i + 2) * ldh, r[i][0] - r[i][1]);
          store(h + (4 * i + 3) * ldh, zero() - r[i][1]);
        }
      }
    }
}

// The transpose of the weight transform: the gradient of kernels [i0, i1) of n, dg = Gᵀ·dU·G, from dU[ξ·n + i];
// dg[k·n + i] for tap k = ky·3 + kx.
void winograd_weight_grad(const float* dU, int64_t n, float* dg, int64_t i0, int64_t i1) {
  const Vec half = set1(0.5f);
  for (int64_t i = i0; i < i1; i += L) {
    const int m = int(std::min(L, i1 - i));
    auto ld = [&](int64_t k) { return load_first(dU + k * n + i, m); };
    auto st = [&](int64_t k, Vec v) { store_first(dg + k * n + i, v, m); };
    Vec t[3][4];  // Gᵀ·dU
    for (int j = 0; j < 4; ++j) {
      const Vec u0 = ld(j), u1 = ld(4 + j), u2 = ld(8 + j), u3 = ld(12 + j);
      t[0][j] = u0 + half * (u1 + u2);
      t[1][j] = half * (u1 - u2);
      t[2][j] = half * (u1 + u2) + u3;
    }
    for (int r = 0; r < 3; ++r) {  // (Gᵀ·dU)·G
      st(r * 3 + 0, t[r][0] + half * (t[r][1] + t[r][2]));
      st(r * 3 + 1, half * (t[r][1] - t[r][2]));
      st(r * 3 + 2, half * (t[r][1] + t[r][2]) + t[r][3]);
    }
  }
}

}  // namespace fusedfire_cpu::FF_ISA
