// Packed weights: what an fp32 forward derives from a Fire's parameters (the 1×1 weights transposed and padded for
// k.conv1x1, the 3×3 weights' Winograd transform), derived once by native_fire_pack for the calls that pass them to
// native_fire_packed (optimize's FrozenFire) instead of per call. One dense fp32 tensor:
//
//   [kPackHeader floats: [0] = 1 where U holds w3's transform, 0 where w3 is not finite (im2col then)]
//   [squeeze: (Cin + 1) × padded(S)] [expand1x1: (S + 1) × padded(E1)] [U: kWinogradPoints·S·E3, where S, E3 allow]
//
// NOTE: (EPYC, AVX-512) per call, a memoized transform still scans w3 for NaN/inf and memcmps it against the memo,
// and the 1×1 weights are padded afresh: optimize's model with packs took 0.86× / 0.82× the time of one without
// (squeezenet1_0 / 1_1, N=1; 0.88× / 0.91× at N=8), 2 threads, interleaved rounds, paired medians.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels.h"
#include "winograd_plan.h"

namespace fusedfire_cpu {

constexpr int64_t kPadLanes = 16;    // the widest Vec's floats: one padding serves every ISA's conv1x1
constexpr int64_t kPackHeader = 16;  // 64 bytes: every section starts 64-byte aligned
inline int64_t padded(int64_t M) { return (M + kPadLanes - 1) / kPadLanes * kPadLanes; }

// Offsets of the sections, in floats, and the whole length.
struct PackLayout {
  int64_t sq, e1, u, numel;
};

inline PackLayout pack_layout(int64_t Cin, int64_t S, int64_t E1, int64_t E3) {
  PackLayout l;
  l.sq = kPackHeader;
  l.e1 = l.sq + (Cin + 1) * padded(S);
  l.u = l.e1 + (S + 1) * padded(E1);
  l.numel = l.u + (winograd_shapes(S, E3) ? kWinogradPoints * S * E3 : 0);
  return l;
}

// A 1×1 convolution's weights (M outputs, K inputs) as k.conv1x1 reads them: K rows of ld() = padded(M) floats (the
// weight transposed, each row zero-padded), then the bias row; null w: none. A pack's squeeze and expand1x1 sections
// (pack_1x1), the stem's weight (stem.cpp).
struct Padded1x1 {
  const float* w = nullptr;
  int64_t M = 0, K = 0;
  int64_t ld() const { return padded(M); }
  const float* bias() const { return w + K * ld(); }
  // dst[p·ldd + m] = relu(bias[m] + Σ_c w · src[p·sp + c·sc]) for P pixels (k.conv1x1; segs, ss: its runs)
  void run(const Kernels& k, int64_t P, const float* src, int64_t sp, int64_t sc, float* dst, int64_t ldd,
           bool stream, int64_t segs = 1, int64_t ss = 0) const {
    k.conv1x1(M, P, K, w, ld(), src, sp, sc, bias(), dst, ldd, stream, segs, ss);
  }
};

// The squeeze (e1 false) or expand1x1 (e1 true) section of a Fire's pack, or of a buffer laid out alike.
inline Padded1x1 pack_1x1(const float* pack, int64_t Cin, int64_t S, int64_t E1, bool e1) {
  const PackLayout l = pack_layout(Cin, S, E1, 0);
  return e1 ? Padded1x1{pack + l.e1, E1, S} : Padded1x1{pack + l.sq, S, Cin};
}

// dst (K + 1 rows of padded(M)) = w (M × K, dense) transposed, each row zero-padded, then the bias b as row K.
inline void pad_1x1(const float* w, const float* b, int64_t M, int64_t K, const Kernels& k, float* dst) {
  std::fill_n(dst, (K + 1) * padded(M), 0.f);
  k.copy(M, K, w, K, 1, dst, 1, padded(M));  // block transposes
  std::copy_n(b, M, dst + K * padded(M));
}

// Fills `out` (pack_layout(...).numel floats) from dense fp32 weights (w3 in PyTorch's layout: E3 × 9S).
inline void pack(const float* wsq, const float* bsq, const float* w1, const float* b1, const float* w3, int64_t Cin,
                 int64_t S, int64_t E1, int64_t E3, const Kernels& k, float* out) {
  const PackLayout l = pack_layout(Cin, S, E1, E3);
  std::fill_n(out, kPackHeader, 0.f);
  pad_1x1(wsq, bsq, S, Cin, k, out + l.sq);
  pad_1x1(w1, b1, E1, S, k, out + l.e1);
  if (l.u < l.numel && winograd_can(S, E3, w3, k)) {
    winograd_transform(w3, E3, S, 9, 1, k, out + l.u);
    out[0] = 1.f;
  }
}

}  // namespace fusedfire_cpu
