// The portable vector type of the CPU backend: every ISA-specific line lives here. The kernels (simd.h,
// winograd4.h, conv1x1.h) are written once over `Vec` and compiled once per ISA by the isa_*.cpp translation units, each of
// which defines one FUSEDFIRE_VEC_* macro and FF_ISA (its namespace) and includes this file inside its target
// region (isa.h):
//
//   FUSEDFIRE_VEC_AVX512   16 lanes, AVX-512F (x86-64)
//   FUSEDFIRE_VEC_AVX2      8 lanes, AVX2 + FMA + F16C (x86-64)
//   FUSEDFIRE_VEC_BASELINE  what every CPU of the architecture has: SSE2 on x86-64, NEON on aarch64, else plain C++
//
// Vec is a value of `kLanes` floats: load/store (whole, first n lanes, non-temporal), + - *, relu, an in-register
// kLanes × kLanes transpose, and conversions from/to IEEE fp16 and bf16 (round to nearest even, as c10::Half and
// c10::BFloat16; a NaN stays a NaN). relu(v) keeps a NaN v, as torch.relu does; maximum(a, b) is NaN where either
// is, as torch.maximum and max pooling.
// mul_add(a, b, c) = a·b + c, fused (one rounding) where the ISA has FMA (AVX-512, AVX2, NEON; plain C++ through
// std::fma), two roundings on SSE2. Only the own GEMMs (simd.h gemm_block: Winograd's, the 1×1 convolutions') use it;
// everything else is additions and scalings, so AVX-512, AVX2 and NEON give the same bits, and SSE2 too outside
// those GEMMs (tested).
// kRegisters: the vector registers the ISA has (register blocking).
#pragma once
#include "kernels.h"  // FF_X86, FF_NEON

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(FUSEDFIRE_VEC_AVX512) + defined(FUSEDFIRE_VEC_AVX2) + defined(FUSEDFIRE_VEC_BASELINE) != 1 || !defined(FF_ISA)
#error "vec.h: define FF_ISA and exactly one FUSEDFIRE_VEC_* before including it (see isa.h)"
#endif

namespace fusedfire_cpu::FF_ISA {  // avx512, avx2 or baseline: each ISA's code apart (no ODR clash)

// Scalar IEEE fp16 <-> fp32, as c10::Half converts (Maratyszcza's FP16 library, which c10 uses too): for ISAs
// without a conversion instruction: bit manipulation and a few fp32 operations per value, no table.
inline float bits_to_float(uint32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}
inline float half_to_float(uint16_t h) {
  const uint32_t w = uint32_t(h) << 16, sign = w & 0x80000000u, two_w = w + w;
  const float normal = bits_to_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = bits_to_float((two_w >> 17) | (126u << 23)) - 0.5f;
  return bits_to_float(sign | (two_w < (1u << 27) ? float_to_bits(subnormal) : float_to_bits(normal)));
}
inline uint16_t float_to_half(float f) {
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = float_to_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = bits_to_float((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = float_to_bits(base);
  const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return uint16_t((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}
inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }
inline uint16_t float_to_bf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  const uint32_t w = float_to_bits(f);
  return uint16_t((w + ((w >> 16) & 1u) + 0x7FFFu) >> 16);
}
inline float relu(float v) { return v < 0.f ? 0.f : v; }  // a NaN stays

// ============================================================================================= AVX-512
#if defined(FUSEDFIRE_VEC_AVX512)
constexpr int kLanes = 16;
constexpr int kRegisters = 32;
constexpr bool kStreams = true;  // non-temporal stores of whole aligned vectors
struct Vec {
  __m512 v;
};
inline __mmask16 first(int n) { return __mmask16((1u << n) - 1); }
inline Vec zero() { return {_mm512_setzero_ps()}; }
inline Vec set1(float a) { return {_mm512_set1_ps(a)}; }
inline Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline Vec load_n(const float* p, int n) { return {_mm512_maskz_loadu_ps(first(n), p)}; }
inline void store(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
inline void store_n(float* p, Vec a, int n) { _mm512_mask_storeu_ps(p, first(n), a.v); }
inline void stream(float* p, Vec a) { _mm512_stream_ps(p, a.v); }
inline void stream_fence() { _mm_sfence(); }
inline Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline Vec mul_add(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// maxps returns its second operand when either is NaN
inline Vec relu(Vec a) { return {_mm512_max_ps(_mm512_setzero_ps(), a.v)}; }
// NOTE: max(a, b) where a is a number, else a, in one masked max instead of a max, a compare and a blend: (EPYC, 1
// thread) squeezenet1_1's stem 0.987× the time, a pooled 55×55 Fire 0.975×.
inline Vec maximum(Vec a, Vec b) {
  return {_mm512_mask_max_ps(a.v, _mm512_cmp_ps_mask(a.v, a.v, _CMP_ORD_Q), a.v, b.v)};
}
inline void transpose(Vec (&r)[kLanes]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm512_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  __m512 u[16];
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]), c = _mm512_castps_pd(t[i + 2]),
                  d = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i].v = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8].v = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
inline Vec load_half(const uint16_t* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p))}; }
inline void store_half(uint16_t* p, Vec a) {
  _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline Vec load_bf16(const uint16_t* p) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16))};
}
inline void store_bf16(uint16_t* p, Vec a) {
  const __m512i bits = _mm512_castps_si512(a.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(r));
}

// ================================================================================================ AVX2
#elif defined(FUSEDFIRE_VEC_AVX2)
constexpr int kLanes = 8;
constexpr int kRegisters = 16;
constexpr bool kStreams = true;
struct Vec {
  __m256 v;
};
inline __m256i first(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
inline Vec zero() { return {_mm256_setzero_ps()}; }
inline Vec set1(float a) { return {_mm256_set1_ps(a)}; }
inline Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline Vec load_n(const float* p, int n) { return {_mm256_maskload_ps(p, first(n))}; }
inline void store(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
inline void store_n(float* p, Vec a, int n) { _mm256_maskstore_ps(p, first(n), a.v); }
inline void stream(float* p, Vec a) { _mm256_stream_ps(p, a.v); }
inline void stream_fence() { _mm_sfence(); }
inline Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vec mul_add(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline Vec relu(Vec a) { return {_mm256_max_ps(_mm256_setzero_ps(), a.v)}; }  // NaN: the second operand
inline Vec maximum(Vec a, Vec b) {
  return {_mm256_blendv_ps(_mm256_max_ps(a.v, b.v), a.v, _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q))};
}
inline void transpose(Vec (&r)[kLanes]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm256_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i].v = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4].v = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
inline Vec load_half(const uint16_t* p) { return {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p))}; }
inline void store_half(uint16_t* p, Vec a) {
  _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline Vec load_bf16(const uint16_t* p) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16))};
}
inline void store_bf16(uint16_t* p, Vec a) {
  const __m256i bits = _mm256_castps_si256(a.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), nan);
  _mm_storeu_si128((__m128i*)p, _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}

// ======================================================================================= baseline: SSE2
#elif defined(FF_X86)
constexpr int kLanes = 4;
constexpr int kRegisters = 16;
constexpr bool kStreams = true;
struct Vec {
  __m128 v;
};
inline Vec zero() { return {_mm_setzero_ps()}; }
inline Vec set1(float a) { return {_mm_set1_ps(a)}; }
inline Vec load(const float* p) { return {_mm_loadu_ps(p)}; }
inline void store(float* p, Vec a) { _mm_storeu_ps(p, a.v); }
inline void stream(float* p, Vec a) { _mm_stream_ps(p, a.v); }
inline void stream_fence() { _mm_sfence(); }
inline Vec operator+(Vec a, Vec b) { return {_mm_add_ps(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm_sub_ps(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm_mul_ps(a.v, b.v)}; }
inline Vec mul_add(Vec a, Vec b, Vec c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }  // SSE2 has no FMA
inline Vec relu(Vec a) { return {_mm_max_ps(_mm_setzero_ps(), a.v)}; }  // NaN: the second operand
inline Vec maximum(Vec a, Vec b) {
  const __m128 nan = _mm_cmpunord_ps(a.v, a.v);
  return {_mm_or_ps(_mm_and_ps(nan, a.v), _mm_andnot_ps(nan, _mm_max_ps(a.v, b.v)))};
}
inline void transpose(Vec (&r)[kLanes]) { _MM_TRANSPOSE4_PS(r[0].v, r[1].v, r[2].v, r[3].v); }
inline Vec load_bf16(const uint16_t* p) {
  return {_mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), _mm_loadl_epi64((const __m128i*)p)))};
}
inline void store_bf16(uint16_t* p, Vec a) {
  const __m128i bits = _mm_castps_si128(a.v);
  const __m128i lsb = _mm_and_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(1));
  // arithmetic shift: the low 16 bits are the bf16, sign-extended so that the signed pack keeps them
  __m128i r = _mm_srai_epi32(_mm_add_epi32(bits, _mm_add_epi32(lsb, _mm_set1_epi32(0x7fff))), 16);
  const __m128i nan = _mm_castps_si128(_mm_cmpunord_ps(a.v, a.v));
  r = _mm_or_si128(_mm_andnot_si128(nan, r), _mm_and_si128(nan, _mm_set1_epi32(0x7fc0)));
  _mm_storel_epi64((__m128i*)p, _mm_packs_epi32(r, r));
}
#define FF_SCALAR_HALF 1  // no F16C in the baseline

// ======================================================================================= baseline: NEON
#elif defined(FF_NEON)
constexpr int kLanes = 4;
constexpr int kRegisters = 32;
constexpr bool kStreams = false;  // no non-temporal store intrinsic: stream() is a plain store
struct Vec {
  float32x4_t v;
};
inline Vec zero() { return {vdupq_n_f32(0.f)}; }
inline Vec set1(float a) { return {vdupq_n_f32(a)}; }
inline Vec load(const float* p) { return {vld1q_f32(p)}; }
inline void store(float* p, Vec a) { vst1q_f32(p, a.v); }
inline void stream(float* p, Vec a) { vst1q_f32(p, a.v); }
inline void stream_fence() {}
inline Vec operator+(Vec a, Vec b) { return {vaddq_f32(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {vsubq_f32(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {vmulq_f32(a.v, b.v)}; }
inline Vec mul_add(Vec a, Vec b, Vec c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
inline Vec relu(Vec a) { return {vmaxq_f32(a.v, vdupq_n_f32(0.f))}; }  // FMAX returns NaN if either is NaN
inline Vec maximum(Vec a, Vec b) { return {vmaxq_f32(a.v, b.v)}; }
inline void transpose(Vec (&r)[kLanes]) {
  const float32x4x2_t a = vtrnq_f32(r[0].v, r[1].v), b = vtrnq_f32(r[2].v, r[3].v);
  r[0].v = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
  r[1].v = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
  r[2].v = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
  r[3].v = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
}
inline Vec load_half(const uint16_t* p) { return {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))}; }
inline void store_half(uint16_t* p, Vec a) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(a.v))); }
inline Vec load_bf16(const uint16_t* p) { return {vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))}; }
inline void store_bf16(uint16_t* p, Vec a) {
  const uint32x4_t bits = vreinterpretq_u32_f32(a.v);
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(1));
  const uint32x4_t r = vshrq_n_u32(vaddq_u32(bits, vaddq_u32(lsb, vdupq_n_u32(0x7fff))), 16);
  vst1_u16(p, vmovn_u32(vbslq_u32(vceqq_f32(a.v, a.v), r, vdupq_n_u32(0x7fc0))));
}

// ================================================================================ baseline: plain C++
#else
constexpr int kLanes = 4;
constexpr int kRegisters = 16;
constexpr bool kStreams = false;
struct Vec {
  float v[kLanes];
};
inline Vec zero() { return {{0.f, 0.f, 0.f, 0.f}}; }
inline Vec set1(float a) { return {{a, a, a, a}}; }
inline Vec load(const float* p) {
  Vec r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline void store(float* p, Vec a) { std::memcpy(p, a.v, sizeof a.v); }
inline void stream(float* p, Vec a) { store(p, a); }
inline void stream_fence() {}
#define FF_LANEWISE(op)                                  \
  inline Vec operator op(Vec a, Vec b) {                 \
    for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] op b.v[i]; \
    return a;                                            \
  }
FF_LANEWISE(+)
FF_LANEWISE(-)
FF_LANEWISE(*)
#undef FF_LANEWISE
inline Vec mul_add(Vec a, Vec b, Vec c) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return a;
}
inline Vec relu(Vec a) {
  for (float& v : a.v) v = relu(v);
  return a;
}
inline Vec maximum(Vec a, Vec b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] != a.v[i] || a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return a;
}
inline void transpose(Vec (&r)[kLanes]) {
  for (int i = 0; i < kLanes; ++i)
    for (int j = i + 1; j < kLanes; ++j) {
      const float t = r[i].v[j];
      r[i].v[j] = r[j].v[i], r[j].v[i] = t;
    }
}
inline Vec load_bf16(const uint16_t* p) {
  Vec r;
  for (int i = 0; i < kLanes; ++i) r.v[i] = bf16_to_float(p[i]);
  return r;
}
inline void store_bf16(uint16_t* p, Vec a) {
  for (int i = 0; i < kLanes; ++i) p[i] = float_to_bf16(a.v[i]);
}
#define FF_SCALAR_HALF 1
#endif

// -------------------------------------------------------------------- what some ISAs build from the rest
#if !defined(FUSEDFIRE_VEC_AVX512) && !defined(FUSEDFIRE_VEC_AVX2)
// the first n < kLanes lanes, through a stack buffer (the rest are zeros; nothing past n is read or written)
inline Vec load_n(const float* p, int n) {
  float t[kLanes] = {};
  std::memcpy(t, p, n * sizeof(float));
  return load(t);
}
inline void store_n(float* p, Vec a, int n) {
  float t[kLanes];
  store(t, a);
  std::memcpy(p, t, n * sizeof(float));
}
#endif
#if defined(FF_SCALAR_HALF)
inline Vec load_half(const uint16_t* p) {
  float t[kLanes];
  for (int i = 0; i < kLanes; ++i) t[i] = half_to_float(p[i]);
  return load(t);
}
inline void store_half(uint16_t* p, Vec a) {
  float t[kLanes];
  store(t, a);
  for (int i = 0; i < kLanes; ++i) p[i] = float_to_half(t[i]);
}
#undef FF_SCALAR_HALF
#endif

}  // namespace fusedfire_cpu::FF_ISA
