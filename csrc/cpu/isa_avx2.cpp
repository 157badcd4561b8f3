// The kernels of kernels.h for AVX2 + FMA + F16C CPUs (x86-64 only).
#include "kernels.h"

#if defined(FF_X86)
#define FF_ISA avx2
#define FF_TARGET "avx2,fma,f16c"
#define FUSEDFIRE_VEC_AVX2 1
#include "isa.h"
const fusedfire_cpu::Kernels* fusedfire_cpu::avx2_table() { return avx2::table(); }
#else
const fusedfire_cpu::Kernels* fusedfire_cpu::avx2_table() { return nullptr; }
#endif
