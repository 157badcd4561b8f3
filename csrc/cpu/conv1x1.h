// The forward's 1×1 convolutions (squeeze, expand1x1) into a pixel-major destination, + bias and ReLU, written once
// over Vec (vec.h) and compiled per ISA (isa.h); forward.cpp drives them where the destination is pixel-major
// (channels_last). Register-blocked as the Winograd GEMM (winograd4.h): 2 vectors of output channels × kGroup
// pixels of accumulators, FMA where the ISA has one (vec.h), the epilogue on the accumulators.
#pragma once

namespace fusedfire_cpu::FF_ISA {

// NT pixels × MR vectors of channels: dst[j·ldd + i·L + lane] = relu(bias + Σ_c A[c·lda + i·L + lane] ·
// src[j·sp + c·sc]); the last vector stores its first `last` lanes only.
template <int MR, int NT>
inline void conv1x1_block(int64_t K, const float* A, int64_t lda, const float* src, int64_t sp, int64_t sc,
                          const Vec (&b)[2], float* dst, int64_t ldd, int last, bool stream) {
  Vec acc[MR][NT];
  for (auto& row : acc)
    for (Vec& a : row) a = zero();
  for (int64_t c = 0; c < K; ++c) {
    Vec u[MR];
    for (int i = 0; i < MR; ++i) u[i] = load(A + c * lda + i * L);
    for (int j = 0; j < NT; ++j) {
      const Vec v = set1(src[j * sp + c * sc]);
      for (int i = 0; i < MR; ++i) acc[i][j] = mul_add(u[i], v, acc[i][j]);
    }
  }
  for (int j = 0; j < NT; ++j)
    for (int i = 0; i < MR; ++i) {
      const Vec o = relu(acc[i][j] + b[i]);
      float* d = dst + j * ldd + i * L;
      if (i == MR - 1 && last < L) {
        store_n(d, o, last);
      } else if (stream) {
        FF_ISA::stream(d, o);
      } else {
        store(d, o);
      }
    }
}

// conv1x1_block for nt <= NT pixels (a group's tail)
template <int MR, int NT = kGroup>
inline void conv1x1_n(int nt, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp, int64_t sc,
                      const Vec (&b)[2], float* dst, int64_t ldd, int last, bool stream) {
  if constexpr (NT > 1) {
    if (nt < NT) return conv1x1_n<MR, NT - 1>(nt, K, A, lda, src, sp, sc, b, dst, ldd, last, stream);
  }
  conv1x1_block<MR, NT>(K, A, lda, src, sp, sc, b, dst, ldd, last, stream);
}

// dst[p·ldd + e] = relu(bias[e] + Σ_c A[c·lda + e] · src[p·sp + c·sc]) for channels e < M, pixels p < P, c < K. A
// is the weight transposed (K × M) with its rows zero-padded to lda, a multiple of L, and bias padded alike: every
// load is a whole vector. stream: non-temporal stores where dst and ldd keep every vector aligned.
// NOTE: in place of a BLAS GEMM and its bias + ReLU pass: no packing, no zeroing of C, no second pass over C; (EPYC,
// AVX-512) 0.89-0.91× a channels_last forward's time (forward.cpp, padded_weights' caller).
void conv1x1(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp, int64_t sc,
             const float* bias, float* dst, int64_t ldd, bool stream) {
  stream = stream && kStreams && aligned(dst) && ldd % L == 0;
  for (int64_t p0 = 0; p0 < P; p0 += kGroup) {  // a group's src rows stay in L1 over every channel pair
    const int nt = int(std::min<int64_t>(kGroup, P - p0));
    for (int64_t e0 = 0; e0 < M; e0 += 2 * L) {
      const int64_t rem = M - e0;
      const int mr = rem > L ? 2 : 1, last = int(std::min<int64_t>(L, rem - (mr - 1) * L));
      const Vec b[2] = {load(bias + e0), mr == 2 ? load(bias + e0 + L) : zero()};
      const float *a = A + e0, *s = src + p0 * sp;
      float* d = dst + p0 * ldd + e0;
      if (mr == 2) {
        conv1x1_n<2>(nt, K, a, lda, s, sp, sc, b, d, ldd, last, stream);
      } else {
        conv1x1_n<1>(nt, K, a, lda, s, sp, sc, b, d, ldd, last, stream);
      }
    }
  }
  if (stream) stream_fence();
}

}  // namespace fusedfire_cpu::FF_ISA
