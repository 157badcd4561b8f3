// Max pooling of a row of the stem (stem.cpp) over pixel-major rows, written once over Vec (vec.h) and compiled per
// ISA (isa.h).
#pragma once

namespace fusedfire_cpu::FF_ISA {

// One window of max_pool_row for NV channel vectors at rows[r] + j·M + v·L (the last vector `last` lanes wide).
template <int NV>
inline void max_window(const float* const* rows, int64_t nr, int64_t j0, int64_t j1, int64_t M, int last,
                       float* dst) {
  auto at = [&](int64_t r, int64_t j, int v) {
    const float* p = rows[r] + j * M + v * L;
    return v == NV - 1 && last < L ? load_n(p, last) : load(p);
  };
  Vec m[NV];
  for (int v = 0; v < NV; ++v) m[v] = at(0, j0, v);
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t j = r == 0 ? j0 + 1 : j0; j < j1; ++j)
      for (int v = 0; v < NV; ++v) m[v] = maximum(at(r, j, v), m[v]);  // m second: the NaN test off its chain
  for (int v = 0; v < NV; ++v) {
    if (v == NV - 1 && last < L) {
      store_n(dst + v * L, m[v], last);
    } else {
      store(dst + v * L, m[v]);
    }
  }
}

// Channel vectors per window pass of max_pool_row (see its NOTE).
constexpr int kPoolVectors = 8;

// max_window for nv <= NV vectors
template <int NV = kPoolVectors>
inline void max_window_n(int nv, const float* const* rows, int64_t nr, int64_t j0, int64_t j1, int64_t M, int last,
                         float* dst) {
  if constexpr (NV > 1) {
    if (nv < NV) return max_window_n<NV - 1>(nv, rows, nr, j0, j1, M, last, dst);
  }
  max_window<NV>(rows, nr, j0, j1, M, last, dst);
}

// dst[q·M + e] = the maximum over rows[r] (r < nr) and columns j in [q·stride, min(q·stride + kernel, W)) of
// rows[r][j·M + e], for q < Q, channels e < M: a NaN anywhere in a window is the window's maximum.
// NOTE: kPoolVectors (8) channel vectors at a time, not one (a window's maxima are a chain of dependent maxima): (EPYC, 1 thread,
// hot, kernel 3, stride 2; 128 channels × 55 pixels, 64 × 111, 256 × 27) AVX-512 0.71-0.74× the time, AVX2
// 0.42-0.47×; 4 vectors at a time 0.74-0.76×, 0.56-0.58×. optimize's whole network (2 threads, interleaved, paired
// medians): squeezenet1_1 0.97× at N=1 and N=8 (AVX2 0.955× at N=8), squeezenet1_0 0.98× at N=1 and N=8.
// NOTE: maximum(load, m), not (m, load): m's chain is then one masked max a step, not a compare and a max; (EPYC Zen 5,
// AVX-512, 2 threads, alternating builds, paired medians) squeezenet1_1's stem alone 0.94× the time at N=8 (it had
// spent 20% in pooling), squeezenet1_0's 1.00× at N=1; the whole networks within noise (0.99-1.02×).
void max_pool_row(int64_t M, int64_t W, int64_t Q, int64_t kernel, int64_t stride, const float* const* rows,
                  int64_t nr, float* dst) {
  constexpr int64_t kBlock = kPoolVectors * L;
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t j0 = q * stride, j1 = std::min(j0 + kernel, W);
    for (int64_t e = 0; e < M; e += kBlock) {
      const float* r[8];
      for (int64_t i = 0; i < nr; ++i) r[i] = rows[i] + e;
      const int64_t n = std::min(kBlock, M - e), nv = (n + L - 1) / L;
      max_window_n(int(nv), r, nr, j0, j1, M, int(n - (nv - 1) * L), dst + q * M + e);
    }
  }
}

}  // namespace fusedfire_cpu::FF_ISA
