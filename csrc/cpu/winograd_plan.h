// What the forward and backward share of Winograd F(2×2, 3×3) (winograd.h): where it can run, and the transformed
// weights of a call.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "bands.h"
#include "elementwise.h"
#include "heuristics.h"
#include "kernels.h"

namespace fusedfire_cpu {

// S and E3 multiples of kWinogradChannels (the transforms' vectors) and finite weights (a NaN or inf tap spreads over
// every transformed point: eager's inf would come out NaN). w3: fp32, E3 × 9S.
inline bool winograd_can(int64_t S, int64_t E3, const float* w3, const Kernels& k) {
  return S % kWinogradChannels == 0 && E3 % kWinogradChannels == 0 && k.finite(E3, 9 * S, w3, 9 * S);
}

// Winograd weights U[ξ][c][e] (U_ξ column-major, see the GEMMs) of an fp32 w3 (E3 × 9S, k = c·rc + tap·rt) in the
// calling thread's kept scratch (slot 1; past kMaxKeptScratch in `fresh`), output channels split over the threads.
// NOTE: per call, so made cheap: the taps gathered by copy2d (block transposes) into kept scratch, not
// w3.permute().contiguous() into a fresh tensor ((Xeon) ATen's transposing copy and the page faults of a new 1 MB
// took ~2.5% of a 13×13 Fire at N=8), and split over the threads (one thread transforming while the other waited
// was ~8% of a 13×13 Fire at N=2).
inline const float* winograd_weights(const float* w3, int64_t E, int64_t S, int64_t rc, int64_t rt,
                                     const Kernels& k, Tensor& fresh) {
  const int64_t L = E * S;
  float* taps = thread_scratch<float, 1>(41 * L, at::TensorOptions().dtype(at::kFloat), fresh);  // taps, Uᵀ, U
  at::parallel_for(0, E, 16, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e)  // taps[ky·3 + kx][e·S + c]
      copy2d(k, 9, S, w3 + e * 9 * S, rt, rc, taps + e * S, L, int64_t(1));
    k.winograd_weights(taps, L, taps + 9 * L, e0 * S, e1 * S);  // U[ξ][e·S + c]
    for (int64_t xi = 0; xi < 16; ++xi)                            // -> [ξ][c·E + e]
      copy2d(k, e1 - e0, S, taps + (9 + xi) * L + e0 * S, S, int64_t(1), taps + (25 + xi) * L + e0, int64_t(1), E);
  });
  return taps + 25 * L;
}

}  // namespace fusedfire_cpu
