// The vector kernels of the CPU backend, one table per ISA. simd.h, winograd4.h, conv1x1.h, gemm.h and pool.h write
// them once over vec.h's Vec; isa_avx512.cpp, isa_avx2.cpp and isa_baseline.cpp compile them for one ISA each
// (isa.h), and ops.cpp picks one table per call from the options (the best this build and CPU run, unless a test
// forces a lower one; which run: dispatch.cpp).
// Everything else of the backend (forward.cpp, backward.cpp) is compiled for the baseline and calls these.
#pragma once
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define FF_X86 1
#elif defined(__aarch64__)
#define FF_NEON 1
#endif

namespace fusedfire_cpu {

enum class Isa : int { baseline, avx2, avx512 };  // baseline: SSE2 on x86-64, NEON on aarch64, else plain C++
constexpr int kIsas = 3;

// Whose fp32 GEMMs blas.h's gemm runs (Options, fire.h): fusedfire's own where BLAS runs narrower code (gemm_with),
// always, or never.
enum class GemmChoice { automatic, own, blas };

struct Kernels {
  Isa isa;
  int lanes;     // floats per vector
  bool streams;  // non-temporal stores exist (elsewhere `stream` asks for plain stores)
  // dst(i, j) = relu(src(i, j) + bias[i]) for channels i < rows, pixels j < cols, where src and dst share one unit
  // stride (scs = dcs = 1 or srs = drs = 1; src may be dst). stream: non-temporal stores of dst's aligned vectors.
  void (*bias_relu)(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, const float* bias,
                    float* dst, int64_t drs, int64_t dcs, bool stream);
  // dst(i, j) = src(i, j): row copies, or lanes × lanes block transposes where the unit strides differ.
  void (*copy)(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, float* dst, int64_t drs,
               int64_t dcs);
  // n contiguous 16-bit floats to fp32 and back, [0] IEEE fp16, [1] bf16 (round to nearest even, as c10).
  void (*widen[2])(const uint16_t* src, float* dst, int64_t n);
  void (*narrow[2])(const float* src, uint16_t* dst, int64_t n);
  // Whether the rows × cols values p[i·ld + j] are all finite (no NaN, no ±inf).
  bool (*finite)(int64_t rows, int64_t cols, const float* p, int64_t ld);
  // Winograd F(4×4, 3×3): weight and input transforms, and the GEMMs + output transform (+ bias, ReLU; streamed
  // where aligned) fused (winograd4.h)
  void (*winograd4_weights)(const float* g, int64_t E, int64_t K, float* U, int64_t i0, int64_t i1);
  void (*winograd4_input)(int64_t S, int64_t W, int64_t TW, int64_t ty0, int64_t ty1, const float* s, int64_t lds,
                          float* V, int64_t ldv);
  void (*winograd4_expand)(int64_t S, int64_t E, int64_t ea, int64_t eb, int64_t W, int64_t TW, int64_t tiles,
                           int64_t rows, const float* V, int64_t ldv, const float* U, const float* bias, float* dst,
                           int64_t ldp, bool stream);
  // and the backward's: the output gradient's transform, the weight gradient's GEMMs and its transform.
  void (*winograd4_grad_output)(int64_t E, int64_t W, int64_t TW, int64_t tiles, int64_t rows, const float* g,
                                int64_t ldg, float* Gh, int64_t ldh);
  void (*winograd4_grad_weights)(int64_t S, int64_t E, int64_t T, const float* Gh, int64_t ldh, const float* V,
                                 int64_t ldv, float* dU);
  void (*winograd4_weight_grad)(const float* dU, int64_t n, float* dg, int64_t i0, int64_t i1);
  // The forward's 1×1 convolutions into a pixel-major dst, + bias and ReLU (conv1x1.h); the stem's conv, its inputs
  // in segs runs ss apart.
  void (*conv1x1)(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp,
                  int64_t sc, const float* bias, float* dst, int64_t ldd, bool stream, int64_t segs, int64_t ss);
  // and summed over the pixels instead (the classifier's pooling).
  void (*conv1x1_sum)(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp,
                      int64_t sc, const float* bias, float* sums);
  // The stem's max pooling of pixel-major rows (pool.h).
  void (*max_pool_row)(int64_t M, int64_t W, int64_t Q, int64_t kernel, int64_t stride, const float* const* rows,
                       int64_t nr, float* dst);
  // C (M × N, column-major) = or += A · B, A packed (gemm.h): blas.h's gemm where BLAS runs narrower code (gemm_with).
  void (*gemm_packed)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t bj,
                      int64_t bc, float* C, int64_t ldc, bool accumulate);
};

// Winograd's transformed weights U of E output × K input channels (E a multiple of 16), as winograd4_weights writes
// and winograd4_expand reads them: blocks of kWinogradBlock output channels, each block's 36 points × K inputs ×
// (up to) kWinogradBlock outputs contiguous; point ξ, input c, output e at winograd_u_at(E, K, ξ, c, e).
// NOTE: a pair of AVX-512 vectors of output channels (the expand's register block) reads its weights as one
// stream, not 36·K rows E floats apart: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved rounds,
// paired medians, against U[ξ][c·E + e]: squeezenet1_1 0.93-0.95× the time at N=1, squeezenet1_0 0.96×; N=8 1.00×.
constexpr int64_t kWinogradBlock = 32;
inline int64_t winograd_u_at(int64_t E, int64_t K, int64_t xi, int64_t c, int64_t e) {
  const int64_t b0 = e / kWinogradBlock * kWinogradBlock, wb = E - b0 < kWinogradBlock ? E - b0 : kWinogradBlock;
  return 36 * K * b0 + (xi * K + c) * wb + (e - b0);
}

// The table of an ISA, or null where this build or this CPU lacks it (dispatch.cpp).
const Kernels* kernels(Isa isa);
const char* isa_name(Isa isa);

// Each isa_*.cpp's table, null where the build has no such ISA. Call only where the CPU has the ISA: kernels().
const Kernels* avx512_table();
const Kernels* avx2_table();
const Kernels* baseline_table();

}  // namespace fusedfire_cpu
