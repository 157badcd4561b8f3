// What the forward and backward share of Winograd (winograd4.h): where it can run, and the transformed
// weights of a call.
#pragma once
#include <torch/csrc/stable/ops.h>

#include "bands.h"
#include "heuristics.h"
#include "kernels.h"
#include "weight_memo.h"

namespace fusedfire_cpu {

// Winograd's transforms run on vectors of kWinogradChannels channels: S and E3 multiples of it.
inline bool winograd_shapes(int64_t S, int64_t E3) {
  return S % kWinogradChannels == 0 && E3 % kWinogradChannels == 0;
}

// S and E3 fit (winograd_shapes) and the weights are finite (a NaN or inf tap spreads over every transformed point:
// eager's inf would come out NaN). w3: fp32, E3 × 9S.
inline bool winograd_can(int64_t S, int64_t E3, const float* w3, const Kernels& k) {
  return winograd_shapes(S, E3) && k.finite(E3, 9 * S, w3, 9 * S);
}

// F(4×4, 3×3)'s tiles (winograd4.h): kWinogradM output pixels per side, kWinogradPoints = (m + 2)² points ξ (GEMMs
// per block).
constexpr int64_t kWinogradM = 4, kWinogradPoints = 36;

// Winograd weights U (kernels.h, winograd_u_at) of an fp32 w3 (E × 9S, element (e, c, tap) at
// e·9S + c·rc + tap·rt: rc = 9, rt = 1 for PyTorch's layout, rc = 1, rt = S for channels_last), written to U
// (kWinogradPoints·E·S floats), the input channels split over the threads.
// NOTE: per call where not packed (pack.h), so made cheap: the taps gathered by block transposes (k.copy) into the
// layout U takes ([tap][c·E + e]; PyTorch's layout through one more transposed buffer, whose rows are then copied),
// so that the vector transform writes U in place: (EPYC, AVX-512) an element-wise gather took 30% of a 13×13 Fire
// at N=1 (1_0.features.12, 1 thread, perf). Taps in kept scratch (slot 1), not a fresh tensor ((Xeon) page faults
// of a new 1 MB took ~2.5% of a 13×13 Fire at N=8), and split over the threads (one thread transforming while the
// other waited was ~8% of a 13×13 Fire at N=2).
inline void winograd_transform(const float* w3, int64_t E, int64_t S, int64_t rc, int64_t rt, const Kernels& k,
                               float* U) {
  const int64_t n = E * S;
  Fresh taps_fresh;
  float* taps = thread_scratch<float, 1>(18 * n, taps_fresh);  // taps, then the transposed w3
  float* wt = taps + 9 * n;  // PyTorch's layout transposed: wt[(c·9 + tap)·E + e]
  torch::stable::parallel_for(0, S, 1, [&](int64_t c0, int64_t c1) {
    if (rc == 1) {  // channels_last: column tap·S + c of w3 is row (tap, c) of taps
      for (int64_t tap = 0; tap < 9; ++tap)
        k.copy(E, c1 - c0, w3 + tap * rt + c0, 9 * S, 1, taps + tap * n + c0 * E, 1, E);
    } else {
      k.copy(E, 9 * (c1 - c0), w3 + c0 * rc, 9 * S, 1, wt + c0 * 9 * E, 1, E);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t tap = 0; tap < 9; ++tap) std::copy_n(wt + (c * 9 + tap) * E, E, taps + tap * n + c * E);
    }
    k.winograd4_weights(taps, E, S, U, c0 * E, c1 * E);
  });
}

// winograd_transform's U, memoized on w3's bytes (weight_memo.h).
inline const float* winograd_weights(const float* w3, int64_t E, int64_t S, int64_t rc, int64_t rt,
                                     const Kernels& k, Fresh& fresh) {
  const int64_t n = E * S, tag = E * 16 + rc;  // E and w3's layout
  return weight_memo(tag, w3, 9 * n, kWinogradPoints * n, fresh,
                     [&](float* U) { winograd_transform(w3, E, S, rc, rt, k, U); });
}

// The transform of the flipped, transposed kernels (grad_s of the 3×3 expand is a 3×3 convolution of its output
// gradient with them, backward.cpp): U' (S outputs × E inputs) of kernel (c, e), w3's kernel (e, c) turned by 180°,
// from a dense fp32 w3 in PyTorch's layout; memoized as winograd_weights.
inline const float* winograd_weights_flipped(const float* w3, int64_t E, int64_t S, const Kernels& k, Fresh& fresh) {
  const int64_t n = E * S, tag = -E - 1;  // negative: apart from winograd_weights' tags
  return weight_memo(tag, w3, 9 * n, kWinogradPoints * n, fresh, [&](float* U) {
    Fresh taps_fresh;
    float* taps = thread_scratch<float, 1>(9 * n, taps_fresh);
    torch::stable::parallel_for(0, E, 1, [&](int64_t e0, int64_t e1) {
      // tap 8 - j of kernel i = e·S + c into row j of taps: block transposes into the rows taken last to first
      k.copy((e1 - e0) * S, 9, w3 + e0 * S * 9, 9, 1, taps + 8 * n + e0 * S, 1, -n);
      k.winograd4_weights(taps, S, E, U, e0 * S, e1 * S);
    });
  });
}

}  // namespace fusedfire_cpu
