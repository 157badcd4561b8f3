// A plain fp32 GEMM on gemm_block (simd.h), written once over Vec (vec.h) and compiled per ISA (isa.h): blas.h's
// gemm takes it instead of BLAS where BLAS runs narrower code than these kernels (gemm_with).
#pragma once

namespace fusedfire_cpu::FF_ISA {

// C[j·ldc + e] = (C[j·ldc + e] if accumulate, else 0) + Σ_c A[c·lda + e] · B[j·bj + c·bc] for e < M, j < N, c < K.
// A is packed: K rows of lda floats (lda a multiple of L, zeros past M), so that every load of it is a whole vector.
void gemm_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t bj,
                 int64_t bc, float* C, int64_t ldc, bool accumulate) {
  for_groups(N, [&](int64_t j0, int nt) {  // a group's B columns stay in L1 over every channel pair
    for (int64_t e0 = 0; e0 < M; e0 += 2 * L) {
      const int64_t rem = M - e0;
      const int mr = rem > L ? 2 : 1, last = int(std::min<int64_t>(L, rem - (mr - 1) * L));
      float* c0 = C + j0 * ldc + e0;
      gemm_block_n(mr, nt, K, A + e0, lda, B + j0 * bj, bj, bc, [&](int i, int j, Vec acc) {
        float* d = c0 + j * ldc + i * L;
        if (i == mr - 1 && last < L) {
          store_n(d, accumulate ? acc + load_n(d, last) : acc, last);
        } else {
          store(d, accumulate ? acc + load(d) : acc);
        }
      });
    }
  });
}

}  // namespace fusedfire_cpu::FF_ISA
