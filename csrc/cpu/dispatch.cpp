// Which ISA tables this build and CPU run (kernels.h), torch-free so that tests/cpu_isa/kernels_check.cpp links it
// too: the same cpuid rule for the extension and its test.
#include "kernels.h"

#include <array>
#if defined(FF_X86)
#include <cpuid.h>
#endif

namespace fusedfire_cpu {

const char* isa_name(Isa isa) {
  static const char* const names[kIsas] = {"baseline", "avx2", "avx512"};
  return names[int(isa)];
}

// Whether this CPU runs an ISA's kernels (cpuid; the compiler's check includes the OS saving the registers).
static bool cpu_has(Isa isa) {
#if defined(FF_X86) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax, ebx, ecx = 0, edx;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);  // clang 14 has no "f16c" name
  switch (isa) {
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f");
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    case Isa::baseline:
      return true;
  }
  return false;
#else
  return isa == Isa::baseline;
#endif
}

const Kernels* kernels(Isa isa) {
  static const auto tables = [] {
    std::array<const Kernels*, kIsas> t{};
    const Kernels* (*const build[kIsas])() = {baseline_table, avx2_table, avx512_table};
    for (int i = 0; i < kIsas; ++i) t[i] = cpu_has(Isa(i)) ? build[i]() : nullptr;  // null: not in this build
    return t;
  }();
  return tables[int(isa)];
}

}  // namespace fusedfire_cpu
