// The band-sized passes around the GEMMs, for every dtype: fp32 and 16-bit work goes to the ISA's vector kernels
// (kernels.h), fp64 and odd strides to plain loops. Low-precision values are converted to fp32 and back here.
#pragma once
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace fusedfire_cpu {

template <typename T>
inline T relu(T v) {  // a NaN stays, as torch.relu's
  return v < T(0) ? T(0) : v;
}

// dst(i, j) = relu(src(i, j) + bias[i]) over channels i < rows and pixels j < cols (src may be dst); stream:
// non-temporal stores where the kernel has them.
template <typename T>
void bias_relu(const Kernels& k, int64_t rows, int64_t cols, const T* src, int64_t srs, int64_t scs, const T* bias,
               T* dst, int64_t drs, int64_t dcs, bool stream = false) {
  if constexpr (std::is_same_v<T, float>) {
    if ((dcs == 1 && scs == 1) || (drs == 1 && srs == 1))
      return k.bias_relu(rows, cols, src, srs, scs, bias, dst, drs, dcs, stream);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * drs + j * dcs] = relu(T(src[i * srs + j * scs] + bias[i]));
}

// dst(i, j) = src(i, j), converting between fp32 and fp16/bf16 where the types differ.
template <typename out_t, typename in_t>
void copy2d(const Kernels& k, int64_t rows, int64_t cols, const in_t* src, int64_t srs, int64_t scs, out_t* dst,
            int64_t drs, int64_t dcs) {
  if constexpr (std::is_same_v<out_t, float> && std::is_same_v<in_t, float>) {
    return k.copy(rows, cols, src, srs, scs, dst, drs, dcs);
  }
  // NOTE: the 16-bit conversions vectorised (rows or columns with unit stride): (Xeon) with Half's portable
  // bit manipulation fp16 Fires ran 2–2.5× slower than bf16 ones (N=8, NCHW: 1_0.features.8 21 ms against 8.6).
  using torch::headeronly::BFloat16, torch::headeronly::Half;
  constexpr bool half_in = std::is_same_v<in_t, Half>, bf16_in = std::is_same_v<in_t, BFloat16>;
  constexpr bool half_out = std::is_same_v<out_t, Half>, bf16_out = std::is_same_v<out_t, BFloat16>;
  constexpr bool widen = (half_in || bf16_in) && std::is_same_v<out_t, float>;
  constexpr bool narrow = (half_out || bf16_out) && std::is_same_v<in_t, float>;
  if constexpr (widen || narrow) {
    const bool by_rows = scs == 1 && dcs == 1;
    if (by_rows || (srs == 1 && drs == 1)) {
      const int kind = bf16_in || bf16_out;
      const int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
      const int64_t so = by_rows ? srs : scs, do_ = by_rows ? drs : dcs;
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (widen) {
          k.widen[kind](reinterpret_cast<const uint16_t*>(src + i * so), dst + i * do_, len);
        } else {
          k.narrow[kind](src + i * so, reinterpret_cast<uint16_t*>(dst + i * do_), len);
        }
      }
      return;
    }
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * drs + j * dcs] = static_cast<out_t>(src[i * srs + j * scs]);
}

// im2col of a band of rb output rows: col[c·rc + (ky·3 + kx)·rt][r·W + w] = s(c, r + ky - 1, w + kx - 1), where
// s(c, i - 1, ·) is row i of sbuf's channel c (rb + 2 rows, W wide, channel stride s_ld) and zero left and right.
template <typename T>
void im2col(int64_t S, int64_t rb, int64_t W, const T* sbuf, int64_t s_ld, T* col, int64_t rc, int64_t rt) {
  const int64_t P = rb * W;
  for (int64_t c = 0; c < S; ++c) {
    for (int64_t ky = 0; ky < 3; ++ky) {
      const T* src = sbuf + c * s_ld + ky * W;
      T* d0 = col + (c * rc + ky * 3 * rt) * P;
      std::memcpy(d0 + rt * P, src, P * sizeof(T));  // kx = 1: the rows as they are
      for (int64_t r = 0; r < rb; ++r) {
        const T* s = src + r * W;
        T* dl = d0 + r * W;               // kx = 0: shifted right, zero at w = 0
        T* dr = d0 + 2 * rt * P + r * W;  // kx = 2: shifted left, zero at w = W-1
        dl[0] = 0;
        std::memcpy(dl + 1, s, (W - 1) * sizeof(T));
        std::memcpy(dr, s + 1, (W - 1) * sizeof(T));
        dr[W - 1] = 0;
      }
    }
  }
}

// col2im, the adjoint of im2col (k = c·9 + ky·3 + kx): gs(c, r + ky - 1, w + kx - 1) += gcol[k][(r - g0)·W + w]
// for the rows r ∈ [g0, g1) of gcol whose target row r + ky - 1 lies in [t0, t1), stored in gs at (t - t0)·W with
// channel stride gs_ld; targets left or right of the image are dropped.
template <typename T>
void col2im(int64_t S, int64_t W, const T* gcol, int64_t g0, int64_t g1, T* gs, int64_t gs_ld, int64_t t0,
            int64_t t1) {
  const int64_t P = (g1 - g0) * W;
  for (int64_t c = 0; c < S; ++c) {
    for (int64_t ky = 0; ky < 3; ++ky) {
      for (int64_t r = g0; r < g1; ++r) {
        const int64_t t = r + ky - 1;
        if (t < t0 || t >= t1) continue;
        T* __restrict__ d = gs + c * gs_ld + (t - t0) * W;
        const T* __restrict__ s0 = gcol + (c * 9 + ky * 3) * P + (r - g0) * W;
        const T* __restrict__ s1 = s0 + P;
        const T* __restrict__ s2 = s1 + P;
        for (int64_t w = 0; w < W; ++w) d[w] += s1[w];          // kx = 1
        for (int64_t w = 0; w + 1 < W; ++w) d[w] += s0[w + 1];  // kx = 0: from the pixel right of it
        for (int64_t w = 1; w < W; ++w) d[w] += s2[w - 1];      // kx = 2: from the pixel left of it
      }
    }
  }
}

}  // namespace fusedfire_cpu
