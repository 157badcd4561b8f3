// What each isa_*.cpp compiles: simd.h, winograd4.h, conv1x1.h, gemm.h and pool.h for one ISA, inside a target
// region, and that ISA's table.
// The including file defines FF_ISA (the namespace: avx512, avx2, baseline), one FUSEDFIRE_VEC_* (vec.h) and, except
// for the baseline, FF_TARGET (the compiler's target string). Standard headers come first, outside the region, so
// that no inline function they define is compiled for the ISA (the linker keeps one copy of each, maybe that one).
#pragma once
#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(FF_X86)
#include <immintrin.h>
#elif defined(FF_NEON)
#include <arm_neon.h>
#endif

// (FF_TARGET is expanded by the inner macro's argument substitution, which # alone would not do)
#define FF_PRAGMA(tokens) _Pragma(#tokens)
#define FF_TARGET_PUSH(isa) FF_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define FF_GCC_TARGET(isa) FF_PRAGMA(GCC target(isa))
#if defined(FF_TARGET) && defined(__clang__)
FF_TARGET_PUSH(FF_TARGET)
#elif defined(FF_TARGET)
FF_PRAGMA(GCC push_options)
FF_GCC_TARGET(FF_TARGET)
// GCC 12 reports its own _mm512_undefined_ps() inside avx512fintrin.h as used uninitialized (false positives)
FF_PRAGMA(GCC diagnostic push)
FF_PRAGMA(GCC diagnostic ignored "-Wuninitialized")
FF_PRAGMA(GCC diagnostic ignored "-Wmaybe-uninitialized")
#endif

#include "vec.h"
#include "simd.h"
#include "winograd4.h"
#include "conv1x1.h"
#include "gemm.h"
#include "pool.h"

namespace fusedfire_cpu::FF_ISA {
// Constant-initialised: nothing of the ISA runs before kernels() has checked the CPU.
inline const Kernels* table() {
  static const Kernels k{Isa::FF_ISA, kLanes, kStreams, bias_relu, copy, {widen<false>, widen<true>},
                         {narrow<false>, narrow<true>}, finite, winograd4_weights, winograd4_input, winograd4_expand,
                         winograd4_grad_output, winograd4_grad_weights, winograd4_weight_grad, conv1x1,
                         conv1x1_sum, max_pool_row, gemm_packed};
  return &k;
}
}  // namespace fusedfire_cpu::FF_ISA

#if defined(FF_TARGET) && defined(__clang__)
FF_PRAGMA(clang attribute pop)
#elif defined(FF_TARGET)
FF_PRAGMA(GCC diagnostic pop)
FF_PRAGMA(GCC pop_options)
#endif
