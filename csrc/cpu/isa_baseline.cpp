// The kernels of kernels.h for every CPU of the architecture: SSE2 on x86-64, NEON on aarch64, plain C++ elsewhere.
#define FF_ISA baseline
#define FUSEDFIRE_VEC_BASELINE 1
#include "isa.h"

const fusedfire_cpu::Kernels* fusedfire_cpu::baseline_table() { return baseline::table(); }
