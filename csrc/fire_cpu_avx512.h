// fusedfire._cpu's fp32 AVX-512 forward, and the work split it shares with the BLAS forward (included by
// fire_cpu.cpp): torch-free, std + intrinsics only.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

namespace fusedfire_cpu {

// The work split of both fp32 forwards. Items are (image, chunk of rows); with fewer images than threads each image
// is split into row chunks so every thread gets the same number of rows (a chunk boundary recomputes 2 halo rows
// of the squeeze).
inline int64_t row_chunks(int64_t N, int64_t H, int64_t threads) {
  return std::min<int64_t>(H, threads / std::gcd(std::max<int64_t>(N, 1), threads));
}

// Rows per band when a chunk's `rows` split into even bands of ≤ R rows; every band but the last has this many.
// NOTE: even, not R + remainder (27 rows, R = 18: 14 + 13, not 18 + 9).
inline int64_t even_band_rows(int64_t rows, int64_t R) {
  const int64_t bands = (rows + R - 1) / R;
  return (rows + bands - 1) / bands;
}

// The fp32 forward on AVX-512 CPUs: a direct convolution with its own register-blocked micro-kernel instead of
// BLAS calls. Inside a band every activation is channel-major ("cm": channel c's pixels contiguous), the vector
// dimension is 16 pixels, and the weights are broadcast straight from their PyTorch layout:
//
//   acc[e][v] += W[e, c, tap] · a[c][q + v·16 + off(tap)]      ME output channels × NV pixel vectors
//
// The expands run on a padded grid: the band's squeeze rows are stored W+1 wide with a zero column after each
// row, so a 3×3 tap is the same loop with the offset (ky-1)·(W+1) + (kx-1) and reads that zero column where it
// crosses the left or right image edge (rows above and below are the band's halo rows, zeros outside the
// image). Nothing is im2col'd and the inner loop has no masks. Bias + ReLU happen on the accumulators, and the
// store skips the padded grid's junk lanes, so out gets real pixels only: a channel-major (NCHW) out vector by
// vector, a channels_last out pixel by pixel after a 4×16 in-register transpose. NCHW x is read in place, a
// channels_last x band is transposed into an L2-resident buffer (16×16 blocks in registers).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FUSEDFIRE_HAVE_AVX512 1
// GCC 12 reports its own _mm512_undefined_ps() inside avx512fintrin.h as used uninitialized (false positives).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define FF_AVX512 __attribute__((target("avx512f,fma")))

static bool cpu_has_avx512() {
  static const bool v = __builtin_cpu_supports("avx512f");
  return v;
}

namespace avx512 {

constexpr int64_t kLanes = 16;
// NOTE: micro-tile 4 output channels × 6 pixel vectors (96 pixels): 24 accumulators + 6 activation vectors + 1
// broadcast weight = 31 of the 32 zmm registers; per (channel, tap) step 10 loads feed 24 FMAs. A standalone
// C++ loop of this tile (K = 32, 9 taps, L1-resident, one core of this 2.8 GHz Xeon) ran at 124–135 GF/s; in the
// same run, with masked loads (the edge masks of an unpadded grid) at 41–47 GF/s, with masked FMAs at 80–100.
// That is why the grid is padded, and why full blocks use unmasked loads and stores everywhere.
constexpr int kME = 4, kNV = 6;

// The taps of a convolution: tap t reads pixel q + off[t] of a grid.
struct Taps {
  int n;
  int64_t off[9];
};

// A conv weight in any layout: w(e, c, t) = p[e·se + c·sc + t·st] for output channel e, input channel c, tap t
// (PyTorch's (E, C, 3, 3) has st = stride(3) wherever stride(2) = 3·stride(3): contiguous or channels_last).
struct Weights {
  const float* p;
  int64_t se, sc, st;
  Weights at(int64_t e0, int64_t c0) const { return {p + e0 * se + c0 * sc, se, sc, st}; }
};

// One micro-tile of a channel block [c0, c0 + K) at pixel q = v·16 + lane (a, w and part point there already):
//   acc[e][v] = (first ? 0 : part) + Σ_{c<K} Σ_t w(e, c, t) · a[c·lda + q + off[t]]
// then either part = acc (more channel blocks follow) or, for the last block, out = relu(acc + bias[e]) with the
// real lanes keep[v] of vector v stored from real pixel dst[v] on: out element (e, p) at out[e·lde + p·ldq].
// Channel-major out (ldq = 1) gets the kept lanes compressed into one vector, stored whole while dst[v] + 16 ≤
// limit (out's pixel count: the extra lanes land on pixels a later vector or tile stores), else masked.
// Safe: the last vector loads only its `tail` lanes (a is the caller's tensor, which may end there).
template <int ME, int NV, bool Safe>
FF_AVX512 static void conv_tile(int64_t K, const Taps& taps, Weights w, const float* a, int64_t lda,
                                __mmask16 tail, bool first, bool last, float* part, const __mmask16* keep,
                                const int64_t* dst, int64_t limit, const float* bias, float* out, int64_t lde,
                                int64_t ldq) {
  constexpr int64_t ldp = kNV * kLanes;  // part: one row of a pixel tile per output channel
  __m512 acc[ME][NV];
  for (int e = 0; e < ME; ++e)
    for (int v = 0; v < NV; ++v) acc[e][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + e * ldp + v * kLanes);
  const int64_t T = taps.n;
  for (int t = 0; t < T; ++t) {
    const float* at = a + taps.off[t];
    const float* wt = w.p + t * w.st;
    for (int64_t c = 0; c < K; ++c) {
      __m512 av[NV];
      for (int v = 0; v < NV; ++v)
        av[v] = Safe && v == NV - 1 ? _mm512_maskz_loadu_ps(tail, at + c * lda + v * kLanes)
                                    : _mm512_loadu_ps(at + c * lda + v * kLanes);
      for (int e = 0; e < ME; ++e) {
        const __m512 we = _mm512_set1_ps(wt[e * w.se + c * w.sc]);
        for (int v = 0; v < NV; ++v) acc[e][v] = _mm512_fmadd_ps(we, av[v], acc[e][v]);
      }
    }
  }
  if (!last) {
    for (int e = 0; e < ME; ++e)
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(part + e * ldp + v * kLanes, acc[e][v]);
    return;
  }
  const __m512 zero = _mm512_setzero_ps();
  if (ldq == 1) {  // channel-major out: each channel's pixels contiguous
    for (int e = 0; e < ME; ++e) {
      const __m512 b = _mm512_set1_ps(bias[e]);
      for (int v = 0; v < NV; ++v) {
        const __m512 r = _mm512_maskz_compress_ps(keep[v], _mm512_max_ps(_mm512_add_ps(acc[e][v], b), zero));
        if (dst[v] + kLanes <= limit) {  // lanes past the kept ones land on pixels stored later: a plain store
          _mm512_storeu_ps(out + e * lde + dst[v], r);
        } else {
          _mm512_mask_storeu_ps(out + e * lde + dst[v], __mmask16((1u << _mm_popcnt_u32(keep[v])) - 1), r);
        }
      }
    }
    return;
  }
  // Pixel-major out (channels_last, lde = 1): a 4×16 in-register transpose gives each pixel its ME channels.
  for (int v = 0; v < NV; ++v) {
    __m512 r[4];
    for (int e = 0; e < 4; ++e) {  // channels past ME are zeros (e_ keeps the unrolled index in bounds)
      const int e_ = e < ME ? e : 0;
      r[e] = e < ME ? _mm512_max_ps(_mm512_add_ps(acc[e_][v], _mm512_set1_ps(bias[e_])), zero) : zero;
    }
    const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r[0], r[1])),
                  t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r[0], r[1])),
                  t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r[2], r[3])),
                  t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r[2], r[3]));
    alignas(64) float px[4][kLanes];  // px[i][4g .. 4g+3]: the channels of lane (pixel) 4g + i
    _mm512_store_ps(px[0], _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)));
    _mm512_store_ps(px[1], _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)));
    _mm512_store_ps(px[2], _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)));
    _mm512_store_ps(px[3], _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3)));
    int64_t p = dst[v];
    for (int l = 0; l < kLanes; ++l) {
      if (!(keep[v] >> l & 1)) continue;
      const float* src = &px[l % 4][l / 4 * 4];
      if (ME == 4) {
        _mm_storeu_ps(out + p * ldq, _mm_load_ps(src));
      } else {
        for (int e = 0; e < ME; ++e) out[p * ldq + e] = src[e];
      }
      ++p;
    }
  }
}

using TileFn = void (*)(int64_t, const Taps&, Weights, const float*, int64_t, __mmask16, bool, bool, float*,
                        const __mmask16*, const int64_t*, int64_t, const float*, float*, int64_t, int64_t);

template <int ME, bool Safe, size_t... NV>
static constexpr std::array<TileFn, kNV> tile_row(std::index_sequence<NV...>) {
  return {&conv_tile<ME, int(NV) + 1, Safe>...};
}

template <bool Safe>
static constexpr std::array<std::array<TileFn, kNV>, kME> tile_table() {
  using I = std::make_index_sequence<kNV>;
  return {tile_row<1, Safe>(I()), tile_row<2, Safe>(I()), tile_row<3, Safe>(I()), tile_row<4, Safe>(I())};
}

// kTiles[Safe][ME - 1][NV - 1]: every remainder tile is a full template instance (its loops unroll completely).
static const std::array<std::array<std::array<TileFn, kNV>, kME>, 2> kTiles = {tile_table<false>(),
                                                                               tile_table<true>()};

// out[e][p] = relu(bias[e] + conv(w, a)[e][p]) for e < E: a convolution over Q pixels of a grid Wg wide whose
// first W columns are real (Wg = W + 1 leaves a zero column); out gets the real pixels p = row·W + col, element
// (e, p) at out[e·lde + p·ldq] (ldq = 1 or lde = 1). a: cm, channel stride lda, read up to 15 lanes past Q (and
// taps.off around it) unless `exact`. part: E × 96 floats of scratch for the partial sums of channel blocks.
// NOTE: channel blocks of ≤ 24 KB of activations (the tile's pixels plus the taps' reach, per channel) so that a
// block stays in the 48 KB L1 while every output-channel tile sweeps it. Without them a 3×3 tile over 64 channels
// (40 KB) ran at 95 GF/s instead of 130 in the standalone loop, and the 512-channel squeeze at 35 GF/s. Blocks
// are even (S = 64 at 13×13: 32 + 32, not 48 + 16): one Fire (512→64→256+256, 13×13, N=8, one thread) ran at
// 71–75 GF/s with the 16-channel remainder block, 92–98 with even ones; budgets of 16, 24 and 32 KB were then
// within 3% of each other (best of 6 alternating runs).
FF_AVX512 static void conv(int64_t E, int64_t Q, int64_t W, int64_t Wg, int64_t K, const Taps& taps,
                           Weights w, const float* a, int64_t lda, const float* bias, float* out, int64_t lde,
                           int64_t ldq, bool exact, float* part) {
  const int64_t reach =
      *std::max_element(taps.off, taps.off + taps.n) - *std::min_element(taps.off, taps.off + taps.n);
  const int64_t kb_max = std::max<int64_t>(1, (24 << 10) / int64_t(sizeof(float) * (kNV * kLanes + reach)));
  const int64_t KB = (K + (K + kb_max - 1) / kb_max - 1) / ((K + kb_max - 1) / kb_max);  // even blocks (64: 32+32)
  // NOTE: the Q/16 vectors split evenly into tiles of ≤ 6 (98 pixels: 4 + 3, not 6 + 1): a 1-vector tile
  // loads 5 operands per 4 FMAs where a 6-vector one loads 10 per 24.
  const int64_t nvec = (Q + kLanes - 1) / kLanes, ntiles = (nvec + kNV - 1) / kNV;
  for (int64_t i = 0; i < ntiles; ++i) {
    const int64_t q0 = nvec * i / ntiles * kLanes;
    const int nv = int(nvec * (i + 1) / ntiles - nvec * i / ntiles);
    __mmask16 keep[kNV];
    int64_t dst[kNV];
    int64_t col = q0 % Wg, real = (q0 / Wg) * W + std::min(col, W);  // real pixels before q
    for (int v = 0; v < nv; ++v) {
      unsigned k = 0;
      dst[v] = real;
      for (int l = 0; l < kLanes; ++l) {
        if (q0 + v * kLanes + l < Q && col < W) k |= 1u << l, ++real;
        if (++col == Wg) col = 0;
      }
      keep[v] = __mmask16(k);
    }
    const int64_t left = Q - q0 - (nv - 1) * kLanes;  // lanes of the last vector inside Q
    const __mmask16 tail = __mmask16(left >= kLanes ? 0xffff : (1u << left) - 1);
    const bool safe = exact && left < kLanes;
    const int64_t P = (Q / Wg) * W + std::min(Q % Wg, W);  // real pixels: every one is stored by some tile
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t kb = std::min(KB, K - k0);
      for (int64_t e0 = 0; e0 < E; e0 += kME) {
        const int me = int(std::min<int64_t>(kME, E - e0));
        kTiles[safe][me - 1][nv - 1](kb, taps, w.at(e0, k0), a + k0 * lda + q0, lda, tail, k0 == 0,
                                     k0 + kb >= K, part + e0 * kNV * kLanes, keep, dst, P, bias + e0, out + e0 * lde,
                                     lde, ldq);
      }
    }
  }
}

// dst[j·ldd + i] = src[i·lds + j] for i < rows ≤ 16, j < cols ≤ 16: one 16×16 block through registers.
FF_AVX512 static void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd, int rows, int cols) {
  __m512 r[16], t[16];
  const __mmask16 cm = __mmask16((1u << cols) - 1), rm = __mmask16((1u << rows) - 1);
  const bool full = rows == 16 && cols == 16;  // NOTE: unmasked loads and stores where they can be (see kME)
  for (int i = 0; i < 16; ++i)
    r[i] = full ? _mm512_loadu_ps(src + i * lds)
                : i < rows ? _mm512_maskz_loadu_ps(cm, src + i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]), c = _mm512_castps_pd(t[i + 2]),
                  d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int j = 0; j < cols; ++j) {
    if (full) {
      _mm512_storeu_ps(dst + j * ldd, r[j]);
    } else {
      _mm512_mask_storeu_ps(dst + j * ldd, rm, r[j]);
    }
  }
}

// 16-bit floats <-> fp32, n contiguous elements, as c10::Half and c10::BFloat16 convert them (round to nearest
// even; a NaN stays a NaN). Kind::half: IEEE binary16 (F16C's vcvtph2ps/vcvtps2ph), Kind::bf16: the top half of
// an fp32. The last n % 16 go through a 16-element stack buffer (masked 16-bit loads would need AVX512BW).
enum class Kind { half, bf16 };

template <Kind kind>
FF_AVX512 static inline __m512 widen(__m256i h) {
  if constexpr (kind == Kind::half) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <Kind kind>
FF_AVX512 static inline __m256i narrow(__m512 v) {
  if constexpr (kind == Kind::half) return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  return _mm512_cvtepi32_epi16(r);
}

template <Kind kind>
FF_AVX512 static void to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    _mm512_storeu_ps(dst + i, widen<kind>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    alignas(32) uint16_t tail[kLanes] = {};
    std::memcpy(tail, src + i, (n - i) * sizeof(uint16_t));
    _mm512_mask_storeu_ps(dst + i, __mmask16((1u << (n - i)) - 1), widen<kind>(_mm256_load_si256(
                                                                       reinterpret_cast<const __m256i*>(tail))));
  }
}

template <Kind kind>
FF_AVX512 static void from_float(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), narrow<kind>(_mm512_loadu_ps(src + i)));
  if (i < n) {
    alignas(32) uint16_t tail[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tail),
                       narrow<kind>(_mm512_maskz_loadu_ps(__mmask16((1u << (n - i)) - 1), src + i)));
    std::memcpy(dst + i, tail, (n - i) * sizeof(uint16_t));
  }
}

// dst(i, j) = src(i, j) for a rows × cols matrix, element (i, j) at p[i·rs + j·cs]: row copies when both have
// unit column stride, 16×16 block transposes when src has unit row stride and dst unit column stride (or the
// other way round), element by element otherwise.
FF_AVX512 static void copy_matrix(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, float* dst,
                                  int64_t drs, int64_t dcs) {
  if (scs == 1 && dcs == 1) {
    for (int64_t i = 0; i < rows; ++i) std::memcpy(dst + i * drs, src + i * srs, cols * sizeof(float));
  } else if (srs == 1 && dcs == 1) {  // src column-major: its rows j are contiguous over i
    for (int64_t j = 0; j < cols; j += kLanes)
      for (int64_t i = 0; i < rows; i += kLanes)
        transpose_block(src + j * scs + i, scs, dst + i * drs + j, drs, int(std::min(kLanes, cols - j)),
                        int(std::min(kLanes, rows - i)));
  } else if (scs == 1 && drs == 1) {
    for (int64_t i = 0; i < rows; i += kLanes)
      for (int64_t j = 0; j < cols; j += kLanes)
        transpose_block(src + i * srs + j, srs, dst + j * dcs + i, dcs, int(std::min(kLanes, rows - i)),
                        int(std::min(kLanes, cols - j)));
  } else {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) dst[i * drs + j * dcs] = src[i * srs + j * scs];
  }
}

// dst(i, j) = relu(src(i, j) + bias[i]) for channels i < rows and pixels j < cols, where one side's unit stride
// is the same for src and dst (src may be dst): the BLAS forward's epilogue after each GEMM. stream: dst's aligned
// vectors are written with non-temporal stores (no read of dst's lines before they are written, no cache fill).
// NOTE: 16 lanes with masked tails; the portable loop (SSE at this file's flags, with runtime alias checks) took
// 11% of a 54×54 Fire's time (1_0.features.5, perf, one thread).
FF_AVX512 static inline __m512 bias_relu_lanes(const float* s, const float* bias, __m512 b, __mmask16 m) {
  const bool all = m == __mmask16(0xffff);  // NOTE: unmasked loads where they can be (see kME)
  const __m512 bv = bias ? all ? _mm512_loadu_ps(bias) : _mm512_maskz_loadu_ps(m, bias) : b;
  const __m512 v = all ? _mm512_loadu_ps(s) : _mm512_maskz_loadu_ps(m, s);
  return _mm512_max_ps(_mm512_add_ps(v, bv), _mm512_setzero_ps());
}

FF_AVX512 static void bias_relu(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs,
                                const float* bias, float* dst, int64_t drs, int64_t dcs, bool stream) {
  const bool channel_major = scs == 1 && dcs == 1;  // else srs == drs == 1: pixel-major (channels_last)
  const int64_t outer = channel_major ? rows : cols, inner = channel_major ? cols : rows;
  const int64_t so = channel_major ? srs : scs, do_ = channel_major ? drs : dcs;
  auto lanes = [](int64_t k) { return k >= kLanes ? __mmask16(0xffff) : __mmask16((1u << k) - 1); };
  for (int64_t o = 0; o < outer; ++o) {
    const float* s = src + o * so;
    float* d = dst + o * do_;
    const __m512 b = _mm512_set1_ps(channel_major ? bias[o] : 0.f);
    const float* bv = channel_major ? nullptr : bias;  // per-lane biases (pixel-major), else b
    int64_t i = 0;
    if (stream) {  // up to d's first 64-byte boundary, then whole aligned vectors
      i = std::min<int64_t>(inner, (64 - reinterpret_cast<uintptr_t>(d) % 64) % 64 / sizeof(float));
      if (i) _mm512_mask_storeu_ps(d, lanes(i), bias_relu_lanes(s, bv, b, lanes(i)));
      for (; i + kLanes <= inner; i += kLanes)
        _mm512_stream_ps(d + i, bias_relu_lanes(s + i, bv ? bv + i : nullptr, b, lanes(kLanes)));
    }
    for (; i < inner; i += kLanes) {
      const __mmask16 m = lanes(inner - i);
      _mm512_mask_storeu_ps(d + i, m, bias_relu_lanes(s + i, bv ? bv + i : nullptr, b, m));
    }
  }
  if (stream) _mm_sfence();  // order the non-temporal stores before whatever reads out next
}

// Winograd F(2×2, 3×3) for the 3×3 expand (Lavin & Gray 2016): a 2×2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A,
// with d the 4×4 input patch around it, so the 3×3 convolution becomes 16 GEMMs with K = S (one per point ξ of the
// 4×4 transformed tile): M_ξ (E × tiles) = U_ξ (E × S) · V_ξ (S × tiles), 16·S multiply-adds per output pair
// against 36·S for 2×2 outputs directly. Both transforms are additions only (Bᵀ, Aᵀ hold 0 and ±1).
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]      Aᵀ = [1 1 1 0; 0 1 -1 -1]
// Input transform of the tile rows [ty0, ty1) of a band, 16 channels at a time: s is the band pixel-major
// (s[(i·W + w)·S + c] = squeeze row i - 1 of the band, column w; zeros left and right of the image are implied),
// tile (ty, tx) reads rows 2ty .. 2ty+3 and columns 2tx-1 .. 2tx+2. V[ξ·ldv + t·S + c], t = (ty - ty0)·TW + tx.
FF_AVX512 static void winograd_input(int64_t S, int64_t W, int64_t TW, int64_t ty0, int64_t ty1, const float* s,
                                     float* V, int64_t ldv) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t ty = ty0; ty < ty1; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = (ty - ty0) * TW + tx, w0 = 2 * tx - 1;
      const bool inner = w0 >= 0 && w0 + 3 < W;
      for (int64_t c = 0; c < S; c += kLanes) {
        __m512 r[4][4];
        for (int i = 0; i < 4; ++i) {
          const float* row = s + ((2 * ty + i) * W + w0) * S + c;
          __m512 d[4];
          for (int j = 0; j < 4; ++j)
            d[j] = inner || (w0 + j >= 0 && w0 + j < W) ? _mm512_loadu_ps(row + j * S) : zero;
          r[i][0] = _mm512_sub_ps(d[0], d[2]);  // d·B
          r[i][1] = _mm512_add_ps(d[1], d[2]);
          r[i][2] = _mm512_sub_ps(d[2], d[1]);
          r[i][3] = _mm512_sub_ps(d[1], d[3]);
        }
        float* v = V + t * S + c;
        for (int j = 0; j < 4; ++j) {  // Bᵀ·(d·B)
          _mm512_storeu_ps(v + (0 + j) * ldv, _mm512_sub_ps(r[0][j], r[2][j]));
          _mm512_storeu_ps(v + (4 + j) * ldv, _mm512_add_ps(r[1][j], r[2][j]));
          _mm512_storeu_ps(v + (8 + j) * ldv, _mm512_sub_ps(r[2][j], r[1][j]));
          _mm512_storeu_ps(v + (12 + j) * ldv, _mm512_sub_ps(r[1][j], r[3][j]));
        }
      }
    }
}

// Weight transform U = G g Gᵀ, G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], of kernels [i0, i1) of L: g[k·L + i] is tap k
// (ky·3 + kx) of kernel i, U[ξ·L + i] point ξ of its transform.
FF_AVX512 static void winograd_weights(const float* g, int64_t L, float* U, int64_t i0, int64_t i1) {
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int64_t i = i0; i < i1; i += kLanes) {
    const __mmask16 m = i1 - i >= kLanes ? __mmask16(0xffff) : __mmask16((1u << (i1 - i)) - 1);
    __m512 t[4][3];  // G·g
    for (int j = 0; j < 3; ++j) {
      const __m512 a = _mm512_maskz_loadu_ps(m, g + j * L + i), b = _mm512_maskz_loadu_ps(m, g + (3 + j) * L + i),
                   d = _mm512_maskz_loadu_ps(m, g + (6 + j) * L + i);
      t[0][j] = a, t[3][j] = d;
      t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(a, b), d));
      t[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(a, b), d));
    }
    for (int r = 0; r < 4; ++r) {  // (G·g)·Gᵀ
      const __m512 a = t[r][0], b = t[r][1], d = t[r][2];
      _mm512_mask_storeu_ps(U + (r * 4 + 0) * L + i, m, a);
      _mm512_mask_storeu_ps(U + (r * 4 + 1) * L + i, m, _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(a, b), d)));
      _mm512_mask_storeu_ps(U + (r * 4 + 2) * L + i, m, _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(a, b), d)));
      _mm512_mask_storeu_ps(U + (r * 4 + 3) * L + i, m, d);
    }
  }
}

// Output transform + bias + ReLU of `tiles` tile rows (TW tiles each) whose output rows are [0, rows) of dst, 16
// channels at a time: M[ξ·ldm + t·E + e] -> dst[(r·W + w)·ldp + e] for r < rows, w < W (a tile's pixels past
// either edge are dropped). dst is pixel-major (channels_last out, or a buffer); stream: non-temporal stores,
// where dst and ldp keep every vector 64-byte aligned.
FF_AVX512 static void winograd_output(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* M,
                                      int64_t ldm, const float* bias, float* dst, int64_t ldp, bool stream) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t ty = 0; ty < tiles; ++ty)
    for (int64_t tx = 0; tx < TW; ++tx) {
      const int64_t t = ty * TW + tx;
      const bool two_rows = 2 * ty + 1 < rows, two_cols = 2 * tx + 1 < W;
      float* d0 = dst + (2 * ty * W + 2 * tx) * ldp;
      for (int64_t e = 0; e < E; e += kLanes) {
        const float* m = M + t * E + e;
        __m512 q[2][4];
        for (int j = 0; j < 4; ++j) {  // Aᵀ·M
          const __m512 m0 = _mm512_loadu_ps(m + j * ldm), m1 = _mm512_loadu_ps(m + (4 + j) * ldm),
                       m2 = _mm512_loadu_ps(m + (8 + j) * ldm), m3 = _mm512_loadu_ps(m + (12 + j) * ldm);
          q[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
          q[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 b = _mm512_loadu_ps(bias + e);
        for (int i = 0; i < (two_rows ? 2 : 1); ++i) {  // (Aᵀ·M)·A, + bias, ReLU
          const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(q[i][0], q[i][1]), q[i][2]), b);
          const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(q[i][1], q[i][2]), q[i][3]), b);
          float* d = d0 + i * W * ldp + e;
          if (stream) {
            _mm512_stream_ps(d, _mm512_max_ps(y0, zero));
            if (two_cols) _mm512_stream_ps(d + ldp, _mm512_max_ps(y1, zero));
          } else {
            _mm512_storeu_ps(d, _mm512_max_ps(y0, zero));
            if (two_cols) _mm512_storeu_ps(d + ldp, _mm512_max_ps(y1, zero));
          }
        }
      }
    }
  if (stream) _mm_sfence();
}

// One Fire for every image and row chunk of the parallel range [begin, end): the items and the rolling halo of
// the BLAS path, with the micro-kernel doing all arithmetic.
struct FireArgs {
  const float *x, *bsq, *b1, *b3;
  Weights wsq, w1, w3;
  const float* x_end;  // one past x's last element: vector loads of x must stop there
  float *out, *s;  // s: the training forward's saved squeeze output, or null
  int64_t N, Cin, H, W, S, E1, E3, chunks, R;
  int64_t xN, xC, xP, oN, oC, oP, sN, sC, sP;
};

// Per-thread scratch, in floats: the padded squeeze band (front slack, S channels of ld_s), the squeeze output
// before padding, and x's band channel-major when x is channels_last.
struct Scratch {
  int64_t ld_s, spad, sflat, xbuf, part, total;
  explicit Scratch(const FireArgs& f) {
    const int64_t Wg = f.W + 1;
    // ≥ 16 lanes past the last halo row, and an odd number of cache lines (channels spread over the L1 sets).
    ld_s = ((f.R + 2) * Wg + 2 * kLanes + kLanes - 1) / kLanes * kLanes;
    ld_s += (ld_s / kLanes) % 2 == 0 ? kLanes : 0;
    spad = kLanes;                                                       // tap (0, 0) of pixel 0 reads index -1
    sflat = spad + f.S * ld_s;
    xbuf = sflat + f.S * (f.R + 2) * f.W;
    part = xbuf + (f.xP == 1 ? 0 : f.Cin * (f.R + 2) * f.W);
    total = part + std::max({f.S, f.E1, f.E3}) * kNV * kLanes;
  }
};

FF_AVX512 static void fire_items(const FireArgs& f, const Scratch& sc, int64_t begin, int64_t end, float* scratch) {
  const int64_t W = f.W, Wg = W + 1, H = f.H, S = f.S, R = f.R;
  const int64_t ld_s = sc.ld_s, ld_f = (R + 2) * W;
  float* spad = scratch + sc.spad;  // S × ld_s: rows h0-1 .. h0+R of the band, Wg wide, zero column at W
  float* sflat = scratch + sc.sflat;
  float* xbuf = scratch + sc.xbuf;
  float* part = scratch + sc.part;
  const Taps t1{1, {0}};
  Taps t3{9, {}};
  for (int ky = 0; ky < 3; ++ky)
    for (int kx = 0; kx < 3; ++kx) t3.off[ky * 3 + kx] = (ky - 1) * Wg + (kx - 1);

  for (int64_t item = begin; item < end; ++item) {
    const int64_t n = item / f.chunks, chunk = item % f.chunks;
    const int64_t c0 = H * chunk / f.chunks, c1 = H * (chunk + 1) / f.chunks;  // output rows [c0, c1)
    const float* Xn = f.x + n * f.xN;
    const int64_t Rb = even_band_rows(c1 - c0, R);
    for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
      const int64_t rb = std::min(Rb, c1 - h0);
      // Squeeze image rows [r0, r1) into spad (row i of spad = image row h0 - 1 + i); zeros outside the image.
      int64_t r0 = h0 - 1, r1 = h0 + rb + 1;
      if (h0 != c0) {  // rows h0-1 and h0 were the previous band's last two: move them to the front
        for (int64_t c = 0; c < S; ++c)
          std::memmove(spad + c * ld_s, spad + c * ld_s + Rb * Wg, 2 * Wg * sizeof(float));
        r0 = h0 + 1;
      }
      for (int64_t r = r0; r < r1; ++r)
        if (r < 0 || r >= H)
          for (int64_t c = 0; c < S; ++c) std::fill_n(spad + c * ld_s + (r - h0 + 1) * Wg, Wg, 0.f);
      const int64_t a = std::max<int64_t>(r0, 0), b = std::min(r1, H);
      if (a < b) {
        const int64_t np = (b - a) * W;
        const float* src = Xn + a * W * f.xP;
        int64_t lda = f.xC;
        if (f.xP != 1) {
          copy_matrix(f.Cin, np, src, f.xC, f.xP, xbuf, np, 1);
          src = xbuf, lda = np;
        }
        // A tile's last vector reads up to 15 lanes past the band: only past x's end does that need masked loads.
        const bool exact = src != xbuf && src + (f.Cin - 1) * lda + np + kLanes > f.x_end;
        conv(S, np, W, W, f.Cin, t1, f.wsq, src, lda, f.bsq, sflat, ld_f, 1, exact, part);
        for (int64_t c = 0; c < S; ++c)
          for (int64_t r = a; r < b; ++r) {
            float* row = spad + c * ld_s + (r - h0 + 1) * Wg;
            std::memcpy(row, sflat + c * ld_f + (r - a) * W, W * sizeof(float));
            row[W] = 0.f;
          }
      }
      const float* centre = spad + Wg;  // the band's own rows
      if (f.s)
        for (int64_t r = 0; r < rb; ++r)
          copy_matrix(S, W, centre + r * Wg, ld_s, 1, f.s + n * f.sN + (h0 + r) * W * f.sP, f.sC, f.sP);

      // Both expands, each into its channel slice of out (the concat is where they write).
      float* On = f.out + n * f.oN + h0 * W * f.oP;
      conv(f.E1, rb * Wg, W, Wg, S, t1, f.w1, centre, ld_s, f.b1, On, f.oC, f.oP, false, part);
      conv(f.E3, rb * Wg, W, Wg, S, t3, f.w3, centre, ld_s, f.b3, On + f.E1 * f.oC, f.oC, f.oP, false, part);
    }
  }
}

}  // namespace avx512
#pragma GCC diagnostic pop
#endif  // x86-64

}  // namespace fusedfire_cpu
