// The forward's 1×1 convolutions (squeeze, expand1x1) into a pixel-major destination, + bias and ReLU, written once
// over Vec (vec.h) and compiled per ISA (isa.h); forward.cpp drives them where the destination is pixel-major
// (channels_last). Register-blocked (simd.h, gemm_block): 2 vectors of output channels × kGroup pixels of
// accumulators, FMA where the ISA has one (vec.h), the epilogue on the accumulators.
#pragma once

namespace fusedfire_cpu::FF_ISA {

// dst[p·ldd + e] = relu(bias[e] + Σ_c A[c·lda + e] · src[p·sp + c·sc]) for channels e < M, pixels p < P, c < K. A
// is the weight transposed (K × M) with its rows zero-padded to lda, a multiple of L, and bias padded alike: every
// load is a whole vector. stream: non-temporal stores where dst and ldd keep every vector aligned. segs > 1: K
// inputs in segs runs of K / segs, run s of each pixel at src + s·ss (a conv's kernel rows read in place: stem.cpp).
// NOTE: in place of a BLAS GEMM and its bias + ReLU pass: no packing, no zeroing of C, no second pass over C; (EPYC,
// AVX-512) 0.89-0.91× a channels_last forward's time (forward.cpp, padded_weights' caller).
void conv1x1(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp, int64_t sc,
             const float* bias, float* dst, int64_t ldd, bool stream, int64_t segs, int64_t ss) {
  stream = stream && kStreams && aligned(dst) && ldd % L == 0;
  for_groups(P, [&](int64_t p0, int nt) {  // a group's src rows stay in L1 over every channel pair
    for (int64_t e0 = 0; e0 < M; e0 += 2 * L) {
      const int64_t rem = M - e0;
      const int mr = rem > L ? 2 : 1, last = int(std::min<int64_t>(L, rem - (mr - 1) * L));
      const Vec b[2] = {load(bias + e0), mr == 2 ? load(bias + e0 + L) : zero()};
      float* d0 = dst + p0 * ldd + e0;
      auto block = [&](const auto& put) {
        gemm_block_n(mr, nt, K / segs, A + e0, lda, src + p0 * sp, sp, sc, put, segs, ss);
      };
      // NOTE: one epilogue per case, not one with its branches: (EPYC, 1 thread, hot) the stem's conv (K = 27, 111
      // pixels × 64 channels) AVX-512 0.90× the time, AVX2 1.00×. With simd.h's do-while, optimize's whole network (2
      // threads, interleaved, paired medians): AVX-512 0.96× / 0.97× (squeezenet1_1 N=1 / N=8), 0.95× (1_0 N=1);
      // AVX2 1.00× (1_1 N=8).
      if (last < L) {
        block([&](int i, int j, Vec acc) {
          float* d = d0 + j * ldd + i * L;
          if (i == mr - 1) {
            store_n(d, relu(acc + b[i]), last);
          } else if (stream) {
            FF_ISA::stream(d, relu(acc + b[i]));
          } else {
            store(d, relu(acc + b[i]));
          }
        });
      } else if (stream) {
        block([&](int i, int j, Vec acc) { FF_ISA::stream(d0 + j * ldd + i * L, relu(acc + b[i])); });
      } else {
        block([&](int i, int j, Vec acc) { store(d0 + j * ldd + i * L, relu(acc + b[i])); });
      }
    }
  });
  if (stream) stream_fence();
}

// sums[e] += Σ_{p < P} relu(bias[e] + Σ_c A[c·lda + e] · src[p·sp + c·sc]) for channels e < M: conv1x1 summed over
// the pixels in registers (the classifier's pooling, classifier.cpp). sums has lda floats (its padding gets zeros).
// NOTE: channel pairs outer (their K rows of A stay in L1/L2 over every pixel), not pixel groups (A, 1-2 MB, read per
// group): (EPYC, 2 threads, 512→1000 on 13×13, hot) AVX2 0.90× / 0.88× the time (N=1 / N=8), AVX-512 1.00× / 0.99×.
void conv1x1_sum(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp,
                 int64_t sc, const float* bias, float* sums) {
  for (int64_t e0 = 0; e0 < M; e0 += 2 * L) {
    const int mr = M - e0 > L ? 2 : 1;
    const Vec b[2] = {load(bias + e0), mr == 2 ? load(bias + e0 + L) : zero()};
    Vec sum[2] = {zero(), zero()};
    for_groups(P, [&](int64_t p0, int nt) {
      gemm_block_n(mr, nt, K, A + e0, lda, src + p0 * sp, sp, sc,
                   [&](int i, int, Vec acc) { sum[i] = sum[i] + relu(acc + b[i]); });
    });
    for (int i = 0; i < mr; ++i) store(sums + e0 + i * L, load(sums + e0 + i * L) + sum[i]);
  }
}

}  // namespace fusedfire_cpu::FF_ISA
