// The CPU backend's GEMMs: the Fortran BLAS that libtorch_cpu exports (MKL on x86 wheels, OpenBLAS on aarch64 ones),
// or fusedfire's own FMA GEMM where that BLAS runs narrower code (gemm_with); a matrix is (pointer, row stride,
// column stride) with one unit stride.
#pragma once
#include <torch/csrc/stable/ops.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>

#include "bands.h"
#include "heuristics.h"
#include "kernels.h"

// Weak, so that a torch built without a BLAS still loads the extension: the GEMMs then go through torch's matmul
// (same result, more per-call overhead). Plain C symbols, outside torch's C++ ABI.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
// MKL's per-thread thread count (0: its global one); returns the previous value.
int MKL_Set_Num_Threads_Local(int nt) __attribute__((weak));  // mkl_service.h's C name (lowercase: Fortran)
}

namespace fusedfire_cpu {

// A strided matrix: element (i, j) at p[i * rs + j * cs]; one of rs, cs must be 1 (or its dimension 1).
template <typename T>
struct Mat {
  T* p;
  int64_t rs;  // row stride (elements)
  int64_t cs;  // column stride (elements)
  Mat<T> t() const { return {p, cs, rs}; }
};

// BLAS wants column-major operands: returns (transpose flag, leading dimension) for a rows×cols view, or
// ('\0', 0) when neither stride is a unit one. Unit-size dimensions may carry any stride, so they are fixed up.
template <typename T>
std::pair<char, int64_t> blas_operand(Mat<T> m, int64_t rows, int64_t cols) {
  if ((m.rs == 1 || rows == 1) && (cols == 1 || m.cs >= rows))
    return {'N', std::max<int64_t>({cols == 1 ? rows : m.cs, rows, 1})};
  if ((m.cs == 1 || cols == 1) && (rows == 1 || m.rs >= cols))
    return {'T', std::max<int64_t>({rows == 1 ? cols : m.rs, cols, 1})};
  return {'\0', 0};
}

// Whose fp32 products gemm() runs, from kOwnGemmColumns columns: BLAS's, or k.gemm_packed's (own).
struct GemmWith {
  const Kernels& k;
  bool own;
};

// A call's GemmWith: own where asked, or (automatic) with FMA kernels (AVX-512, AVX2: the same bits) on an x86 CPU
// not Intel's, where MKL (it picks its code by vendor) runs its AVX2 sgemm.
// NOTE: (EPYC Zen 5) MKL's sgemm (torch.mm, 2048³) 111 GFLOP/s a thread, 40% of the AVX-512 FMA peak (~274), where
// gemm_block's register block runs the classifier's GEMM at ~260. Forward + backward at N=8 (2 threads, alternating
// builds, paired medians), 512→64→256+256 13×13 / 256→48→192+192 13×13 / 128→32→128+128 27×27 / 128→16→64+64
// 55×55: NCHW 0.77× / 0.83× / 0.82× / 0.89× the time, channels_last 0.77× / 0.81× / 0.79× / 1.00×; AVX2 kernels
// (against MKL's AVX2 sgemm) NCHW 0.99× / 0.98× / 0.97× / 0.90×.
inline GemmWith gemm_with(const Kernels& k, GemmChoice choice) {
  bool own = choice == GemmChoice::own;
#if defined(FF_X86)
  static const bool intel = __builtin_cpu_is("intel");
  own = own || (choice == GemmChoice::automatic && k.isa != Isa::baseline && !intel);
#endif
  return {k, own};
}

// C (m×n) = A (m×k) · B (k×n), overwriting C (BLAS beta = 0), or C += A·B with accumulate (beta = 1).
// NOTE: BLAS (or the own register blocks, gemm_with), not hand loops: (Xeon) MKL's sgemm on the band shapes (1
// thread, torch.mm, thread CPU time) reaches 116–128 GF/s against ~145 for a 512³ sgemm, and 61–79 only where K or N
// is S = 16.
template <typename T>
void gemm(const GemmWith& with, int64_t m, int64_t n, int64_t k, Mat<const T> A, Mat<const T> B, Mat<T> C,
          bool accumulate = false) {
  if (m == 0 || n == 0 || (k == 0 && accumulate)) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) C.p[i * C.rs + j * C.cs] = T(0);
    return;
  }
  if (!(C.rs == 1 || m == 1)) {  // C row-major: compute Cᵀ = Bᵀ·Aᵀ, which is column-major
    std::swap(m, n);
    std::swap(A, B);
    A = A.t(), B = B.t(), C = C.t();
  }
  const bool c_column_major = (C.rs == 1 || m == 1) && (n == 1 || C.cs >= m);  // and its columns apart
  if constexpr (std::is_same_v<T, float>) {
    if (n >= kOwnGemmColumns && with.own) {  // A packed (kernels.h), B read in place
      STD_TORCH_CHECK(c_column_major, "fusedfire cpu: GEMM output overlaps itself");
      const Kernels& kt = with.k;
      const int64_t lda = (m + kt.lanes - 1) / kt.lanes * kt.lanes;
      Fresh a_fresh;
      float* a = thread_scratch<float, 2>(k * lda, a_fresh);
      kt.copy(k, m, A.p, A.cs, A.rs, a, lda, 1);
      if (lda > m)
        for (int64_t c = 0; c < k; ++c) std::fill(a + c * lda + m, a + (c + 1) * lda, 0.f);
      kt.gemm_packed(m, n, k, a, lda, B.p, B.cs, B.rs, C.p, C.cs, accumulate);
      return;
    }
  }
  auto [ta, lda] = blas_operand(A, m, k);
  auto [tb, ldb] = blas_operand(B, k, n);
  Fresh b_fresh;
  if (ta == 'T' && tb == 'T' && n < kNarrowTT) {  // B (k × n) copied column-major (heuristics.h)
    T* b = thread_scratch<T, 2>(k * n, b_fresh);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) b[j * k + i] = B.p[i * B.rs + j * B.cs];
    B = {b, 1, k};
    tb = 'N', ldb = k;
  }
  const int64_t ldc = std::max<int64_t>({n == 1 ? m : C.cs, m, 1});
  STD_TORCH_CHECK(ta && tb && c_column_major,
                  "fusedfire cpu: GEMM operand is not a BLAS matrix (no unit stride, or overlapping)");
  constexpr bool is_float = std::is_same_v<T, float>;
  static_assert(is_float || std::is_same_v<T, double>, "GEMMs run in fp32 or fp64");
  const bool fits = std::max({m, n, k, lda, ldb, ldc}) <= std::numeric_limits<int>::max();
  if (fits && (is_float ? sgemm_ != nullptr : dgemm_ != nullptr)) {
    const int im = m, in = n, ik = k, ilda = lda, ildb = ldb, ildc = ldc;
    const T one = 1, beta = accumulate ? 1 : 0;
    if constexpr (is_float) {
      sgemm_(&ta, &tb, &im, &in, &ik, &one, A.p, &ilda, B.p, &ildb, &beta, C.p, &ildc);
    } else {
      dgemm_(&ta, &tb, &im, &in, &ik, &one, A.p, &ilda, B.p, &ildb, &beta, C.p, &ildc);
    }
    return;
  }
  // No BLAS symbol (or sizes past int): torch's matmul on views of the same memory, its product then stored (or
  // added) into C.
  auto view = [](auto mat, int64_t r, int64_t c) {
    const int64_t sizes[] = {r, c}, strides[] = {mat.rs, mat.cs};
    return torch::stable::from_blob(const_cast<T*>(mat.p), sizes, strides,
                                    torch::stable::Device(torch::headeronly::DeviceType::CPU),
                                    torch::headeronly::CppTypeToScalarType<T>::value);
  };
  const Tensor AB = torch::stable::contiguous(torch::stable::matmul(view(A, m, k), view(B, k, n)));
  const T* ab = AB.const_data_ptr<T>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T& c = C.p[i * C.rs + j * C.cs];
      c = accumulate ? c + ab[i * n + j] : ab[i * n + j];
    }
}

// MKL's thread count for the calling thread, restored at scope exit (a no-op without MKL).
// NOTE: one MKL thread per worker of our one parallel region (nested OpenMP): torch.set_num_threads(n) also sets
// MKL's count with dynamic adjustment off, so each worker's sgemm spawned n threads of its own: (Xeon)
// 1_0.features.12 at N=1 on 2 threads ran at 760–785 µs after torch.set_num_threads(2), 460–530 µs without.
struct MklThreadsGuard {
  int previous = 0;
  explicit MklThreadsGuard(int n) {
    if (MKL_Set_Num_Threads_Local) previous = MKL_Set_Num_Threads_Local(n);
  }
  ~MklThreadsGuard() {
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(previous);
  }
};

}  // namespace fusedfire_cpu
