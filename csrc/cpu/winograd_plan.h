// What the forward and backward share of Winograd (winograd.h, winograd4.h): where it can run, and the transformed
// weights of a call.
#pragma once
#include <torch/csrc/stable/ops.h>

#include "bands.h"
#include "heuristics.h"
#include "kernels.h"

namespace fusedfire_cpu {

// S and E3 multiples of kWinogradChannels (the transforms' vectors) and finite weights (a NaN or inf tap spreads over
// every transformed point: eager's inf would come out NaN). w3: fp32, E3 × 9S.
inline bool winograd_can(int64_t S, int64_t E3, const float* w3, const Kernels& k) {
  return S % kWinogradChannels == 0 && E3 % kWinogradChannels == 0 && k.finite(E3, 9 * S, w3, 9 * S);
}

// The transforms of one Winograd tile size: F(2×2, 3×3) (the backward's) or F(4×4, 3×3) (the forward's).
struct WinogradTile {
  int m;       // output pixels per tile side
  int points;  // (m + 2)², points ξ per tile: GEMMs per block
  void (*weights)(const float* g, int64_t n, float* U, int64_t i0, int64_t i1);
};
inline WinogradTile winograd2(const Kernels& k) { return {2, 16, k.winograd_weights}; }
inline WinogradTile winograd4(const Kernels& k) { return {4, 36, k.winograd4_weights}; }

// Winograd weights U[ξ][c·E + e] (U_ξ column-major, see the GEMMs) of an fp32 w3 (E × 9S, element (e, c, tap) at
// e·9S + c·rc + tap·rt) in the calling thread's kept scratch (slot 1; past kMaxKeptScratch in `fresh`), the input
// channels split over the threads.
// NOTE: per call, so made cheap: the taps gathered by a plain loop straight into the layout U takes ([tap][c·E + e]),
// so that the vector transform writes U in place: (EPYC, AVX2) the gather by block transposes per output channel
// and U transposed afterwards took 29% of a 13×13 Fire at N=1 (1_1.features.11, perf). Kept scratch, not a fresh
// tensor ((Xeon) page faults of a new 1 MB took ~2.5% of a 13×13 Fire at N=8), and split over the threads (one
// thread transforming while the other waited was ~8% of a 13×13 Fire at N=2).
inline const float* winograd_weights(const float* w3, int64_t E, int64_t S, int64_t rc, int64_t rt,
                                     const WinogradTile& tile, Fresh& fresh) {
  const int64_t n = E * S;
  float* taps = thread_scratch<float, 1>((9 + tile.points) * n, fresh);  // taps, then U
  torch::stable::parallel_for(0, S, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t e = 0; e < E; ++e) {
        const float* w = w3 + e * 9 * S + c * rc;
        for (int64_t tap = 0; tap < 9; ++tap) taps[tap * n + c * E + e] = w[tap * rt];
      }
    tile.weights(taps, n, taps + 9 * n, c0 * E, c1 * E);
  });
  return taps + 9 * n;
}

}  // namespace fusedfire_cpu
