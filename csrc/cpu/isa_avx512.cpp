// The kernels of kernels.h for AVX-512F CPUs (x86-64 only).
#include "kernels.h"

#if defined(FF_X86)
#define FF_ISA avx512
#define FF_TARGET "avx512f,avx2,fma,f16c"
#define FUSEDFIRE_VEC_AVX512 1
#include "isa.h"
const fusedfire_cpu::Kernels* fusedfire_cpu::avx512_table() { return avx512::table(); }
#else
const fusedfire_cpu::Kernels* fusedfire_cpu::avx512_table() { return nullptr; }
#endif
