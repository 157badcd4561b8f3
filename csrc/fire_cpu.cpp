// fusedfire._cpu: the fused Fire kernels for CPU tensors (backend "cpu"). The math and its VJP are in the
// docstring of fusedfire/ops.py; the schemas (native_fire, native_fire_fwd, native_fire_bwd) are defined there
// too, this file only implements them for the CPU dispatch key.
//
// Two forwards share the band loop below: BLAS GEMMs (the default), and for fp32 on AVX-512 CPUs fusedfire's own
// direct-convolution micro-kernel (fire_cpu_avx512.h, torch-free; see use_avx512 for which runs). The BLAS
// forward, per image and per band of R output rows (one band's working set stays in L2):
//
//   sbuf[S][R+2 rows]  = relu(Wsq · x[rows h0-1 .. h0+R] + bsq)    squeeze GEMM, halo rows kept rolling
//   out[:, :E1, band]  = relu(W1 · sbuf[center rows] + b1)        1×1 GEMM written straight into out
//   col[9S][R·W]       = im2col(sbuf)                              3×3 taps, zero padding at the borders
//   out[:, E1:, band]  = relu(W3 · col + b3)                       one GEMM, K = 9S, straight into out
//
// or, where it pays (use_winograd), the 3×3 expand by Winograd F(2×2, 3×3): the band's s
// transformed tile by tile, 16 GEMMs with K = S, and the output transform (+ bias + ReLU) into out.
//
// A matrix here is (pointer, row stride, column stride) with one unit stride; NCHW and channels_last differ
// only in those strides (channels_last: out[:, :E1] is a matrix with leading dimension E1+E3), so one code path
// serves both and the concat is just where each GEMM writes. No intermediate expand tensor, no cat copy.
// Where out is larger than the L2 caches (stream_out), each expand GEMM writes a band-sized buffer instead and its
// bias + ReLU epilogue moves it into out with non-temporal stores; channels_last squeezes write a pixel-major s,
// transposed into sbuf.
// Backward: the same bands, BLAS GEMMs for the four gradients of each conv, from the saved x, s, out (see
// fire_backward_kernel); no G, grad_s or expand-sized tensor is ever materialised.
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include "fire_cpu_avx512.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <numeric>
#include <string>
#include <array>
#include <atomic>
#include <utility>
#include <type_traits>

// The Fortran BLAS that libtorch_cpu exports (MKL on x86 wheels). Weak, so that a torch built without a BLAS
// still loads this extension: the GEMMs then go through at::mm_out (same result, more per-call overhead).
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

// The dummy module: importing fusedfire._cpu runs the static TORCH_LIBRARY_IMPL registrar below.
extern "C" PyObject* PyInit__cpu(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_cpu", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

namespace fusedfire_cpu {

using at::Tensor;

// Whether this build and CPU have the AVX-512 kernels of fire_cpu_avx512.h.
static bool have_avx512() {
#ifdef FUSEDFIRE_HAVE_AVX512
  return cpu_has_avx512();
#else
  return false;
#endif
}

// ------------------------------------------------------------------------------------------------ GEMM

// A strided matrix: element (i, j) at p[i * rs + j * cs]; one of rs, cs must be 1 (or its dimension 1).
template <typename T>
struct Mat {
  T* p;
  int64_t rs;  // row stride (elements)
  int64_t cs;  // column stride (elements)
  Mat<T> t() const { return {p, cs, rs}; }
  Mat<const T> c() const { return {p, rs, cs}; }
};

// BLAS wants column-major operands: returns (transpose flag, leading dimension) for a rows×cols view, or
// ('\0', 0) when neither stride is a unit one. Unit-size dimensions may carry any stride, so they are fixed up.
template <typename T>
static std::pair<char, int64_t> blas_operand(Mat<T> m, int64_t rows, int64_t cols) {
  if ((m.rs == 1 || rows == 1) && (cols == 1 || m.cs >= rows))
    return {'N', std::max<int64_t>({cols == 1 ? rows : m.cs, rows, 1})};
  if ((m.cs == 1 || cols == 1) && (rows == 1 || m.rs >= cols))
    return {'T', std::max<int64_t>({rows == 1 ? cols : m.rs, cols, 1})};
  return {'\0', 0};
}

template <typename T, int Slot = 0>
static T* thread_scratch(int64_t n, const at::TensorOptions& opts, Tensor& fresh);
template <typename out_t, typename in_t>
static void copy2d(int64_t rows, int64_t cols, const in_t* src, int64_t srs, int64_t scs, out_t* dst, int64_t drs,
                   int64_t dcs);

// C (m×n) = A (m×k) · B (k×n), overwriting C (BLAS beta = 0), or C += A·B with accumulate (beta = 1).
// NOTE: BLAS, not hand loops, for every FLOP: MKL's sgemm on this machine's band shapes (1 thread, torch.mm,
// thread CPU time) reaches 116–128 GF/s against ~145 GF/s for a 512³ sgemm, and 61–79 GF/s only where K or N is
// S = 16 (1×1 expand / squeeze of the small Fires). Bias + ReLU, im2col and conversions are plain loops over
// L2-resident bands (5–15% of the time in a per-phase profile).
template <typename T>
static void gemm(int64_t m, int64_t n, int64_t k, Mat<const T> A, Mat<const T> B, Mat<T> C,
                 bool accumulate = false) {
  if (m == 0 || n == 0 || (k == 0 && accumulate)) return;
  if (k == 0) {
    for (const auto i : c10::irange(m))
      for (const auto j : c10::irange(n)) C.p[i * C.rs + j * C.cs] = T(0);
    return;
  }
  if (!(C.rs == 1 || m == 1)) {  // C row-major: compute Cᵀ = Bᵀ·Aᵀ, which is column-major
    std::swap(m, n);
    std::swap(A, B);
    A = A.t(), B = B.t(), C = C.t();
    // `A` was Bᵀ of the original problem: its shape is now m×k as required.
  }
  auto [ta, lda] = blas_operand(A, m, k);
  auto [tb, ldb] = blas_operand(B, k, n);
  // NOTE: MKL's 'TT' sgemm collapses where C is narrow (n < 16, a channels_last Fire on a tiny image): one thread,
  // sgemm_ through ctypes, medians: m = 256, k = 576, n = 4 at 2.3 GF/s against 91 as 'TN'; m = 64, k = 512, n = 9
  // at 13 against 89. There B (k × n, at most 16 columns) is first copied column-major.
  Tensor b_fresh;
  if (ta == 'T' && tb == 'T' && n < 16) {
    T* b = thread_scratch<T, 2>(k * n, at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value), b_fresh);
    copy2d(k, n, B.p, B.rs, B.cs, b, int64_t(1), k);
    B = {b, 1, k};
    tb = 'N', ldb = k;
  }
  const int64_t ldc = std::max<int64_t>({n == 1 ? m : C.cs, m, 1});
  TORCH_INTERNAL_ASSERT(ta && tb && (C.rs == 1 || m == 1) && (n == 1 || C.cs >= m),
                        "fusedfire cpu: GEMM operand is not a BLAS matrix (no unit stride, or overlapping)");
  constexpr bool is_float = std::is_same_v<T, float>;
  constexpr bool is_double = std::is_same_v<T, double>;
  static_assert(is_float || is_double, "GEMMs run in fp32 or fp64");
  const bool fits = std::max({m, n, k, lda, ldb, ldc}) <= std::numeric_limits<int>::max();
  if (fits && ((is_float && sgemm_) || (is_double && dgemm_))) {
    const int im = m, in = n, ik = k, ilda = lda, ildb = ldb, ildc = ldc;
    const T one = 1, beta = accumulate ? 1 : 0;
    if constexpr (is_float) {
      sgemm_(&ta, &tb, &im, &in, &ik, &one, A.p, &ilda, B.p, &ildb, &beta, C.p, &ildc);
    } else {
      dgemm_(&ta, &tb, &im, &in, &ik, &one, A.p, &ilda, B.p, &ildb, &beta, C.p, &ildc);
    }
    return;
  }
  // No BLAS symbol (or sizes past int): at::mm_out on views of the same memory.
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  auto view = [&](auto mat, int64_t r, int64_t c) {
    return at::from_blob(const_cast<T*>(mat.p), {r, c}, {mat.rs, mat.cs}, opts);
  };
  Tensor Ct = view(C, m, n);
  if (accumulate) {
    Ct.addmm_(view(A, m, k), view(B, k, n));
  } else {
    at::mm_out(Ct, view(A, m, k), view(B, k, n));
  }
}

// MKL's thread count for the calling thread, restored at scope exit (a no-op without MKL).
struct MklThreadsGuard {
  int previous = 0;
  explicit MklThreadsGuard(int n) {
    if (MKL_Set_Num_Threads_Local) previous = MKL_Set_Num_Threads_Local(n);
  }
  ~MklThreadsGuard() {
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(previous);
  }
};

// ---------------------------------------------------------------------------------------- elementwise

// dst(i, j) = relu(src(i, j) + bias[i]) over channels i < rows and pixels j < cols, in the accumulation type
// (low-precision outputs are converted afterwards by copy2d). The loop order follows dst's unit stride so the
// inner loop is contiguous (auto-vectorised at -O3). src may be dst (in place), hence no __restrict__.
// stream: non-temporal stores (see stream_out), only where the AVX-512 loop runs.
template <typename T>
static void bias_relu(int64_t rows, int64_t cols, const T* src, int64_t srs, int64_t scs, const T* bias, T* dst,
                      int64_t drs, int64_t dcs, bool stream = false) {
#ifdef FUSEDFIRE_HAVE_AVX512
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx512() && ((dcs == 1 && scs == 1) || (drs == 1 && srs == 1)))
      return avx512::bias_relu(rows, cols, src, srs, scs, bias, dst, drs, dcs, stream);
  }
#endif
  if (dcs == 1 && scs == 1) {
    for (const auto i : c10::irange(rows)) {
      const T b = bias[i];
      const T* s = src + i * srs;
      T* d = dst + i * drs;
      for (const auto j : c10::irange(cols)) d[j] = std::max(s[j] + b, T(0));
    }
  } else if (drs == 1 && srs == 1) {
    for (const auto j : c10::irange(cols)) {
      const T* s = src + j * scs;
      T* d = dst + j * dcs;
      for (const auto i : c10::irange(rows)) d[i] = std::max(s[i] + bias[i], T(0));
    }
  } else {
    for (const auto i : c10::irange(rows))
      for (const auto j : c10::irange(cols)) dst[i * drs + j * dcs] = std::max(src[i * srs + j * scs] + bias[i], T(0));
  }
}

// dst(i, j) = src(i, j), converting (the low-precision paths, the saved s, the backward's s bands).
template <typename out_t, typename in_t>
static void copy2d(int64_t rows, int64_t cols, const in_t* src, int64_t srs, int64_t scs, out_t* dst, int64_t drs,
                   int64_t dcs) {
#ifdef FUSEDFIRE_HAVE_AVX512
  if constexpr (std::is_same_v<out_t, float> && std::is_same_v<in_t, float>) {
    if (cpu_has_avx512()) return avx512::copy_matrix(rows, cols, src, srs, scs, dst, drs, dcs);  // 16×16 transposes
  }
  // NOTE: the 16-bit conversions vectorised (rows or columns with unit stride): with c10::Half's portable bit
  // manipulation fp16 Fires ran 2–2.5× slower than bf16 ones (N=8, NCHW: 1_0.features.8 21 ms against 8.6,
  // 1_0.features.12 8.5 against 3.9); now fp16 runs at bf16's speed (9.5 and 4.1 ms in one run, bf16 9.5 and 4.1).
  constexpr bool half_in = std::is_same_v<in_t, c10::Half>, bf16_in = std::is_same_v<in_t, c10::BFloat16>;
  constexpr bool half_out = std::is_same_v<out_t, c10::Half>, bf16_out = std::is_same_v<out_t, c10::BFloat16>;
  constexpr bool widen = (half_in || bf16_in) && std::is_same_v<out_t, float>;
  constexpr bool narrow = (half_out || bf16_out) && std::is_same_v<in_t, float>;
  if constexpr (widen || narrow) {
    const bool by_rows = scs == 1 && dcs == 1;
    if (cpu_has_avx512() && (by_rows || (srs == 1 && drs == 1))) {
      constexpr auto kind = half_in || half_out ? avx512::Kind::half : avx512::Kind::bf16;
      const int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
      const int64_t so = by_rows ? srs : scs, do_ = by_rows ? drs : dcs;
      for (const auto i : c10::irange(n)) {
        if constexpr (widen) {
          avx512::to_float<kind>(reinterpret_cast<const uint16_t*>(src + i * so), dst + i * do_, len);
        } else {
          avx512::from_float<kind>(src + i * so, reinterpret_cast<uint16_t*>(dst + i * do_), len);
        }
      }
      return;
    }
  }
#endif
  if (dcs == 1 && scs == 1) {
    for (const auto i : c10::irange(rows)) {
      const in_t* __restrict__ s = src + i * srs;
      out_t* __restrict__ d = dst + i * drs;
      for (const auto j : c10::irange(cols)) d[j] = static_cast<out_t>(s[j]);
    }
  } else if (drs == 1 && srs == 1) {
    for (const auto j : c10::irange(cols)) {
      const in_t* __restrict__ s = src + j * scs;
      out_t* __restrict__ d = dst + j * dcs;
      for (const auto i : c10::irange(rows)) d[i] = static_cast<out_t>(s[i]);
    }
  } else {
    for (const auto i : c10::irange(rows))
      for (const auto j : c10::irange(cols)) dst[i * drs + j * dcs] = static_cast<out_t>(src[i * srs + j * scs]);
  }
}

// im2col of a band of rb output rows: col[c·rc + (ky·3 + kx)·rt][r·W + w] = s(c, r + ky - 1, w + kx - 1), where
// s(c, i - 1, ·) is row i of sbuf's channel c (rb + 2 rows, W wide, channel stride s_ld) and zero left and right.
template <typename T>
static void im2col(int64_t S, int64_t rb, int64_t W, const T* sbuf, int64_t s_ld, T* col, int64_t rc, int64_t rt) {
  const int64_t P = rb * W;
  for (const auto c : c10::irange(S)) {
    for (const auto ky : c10::irange(3)) {
      const T* src = sbuf + c * s_ld + ky * W;
      T* d0 = col + (c * rc + ky * 3 * rt) * P;
      std::memcpy(d0 + rt * P, src, P * sizeof(T));  // kx = 1: the rows as they are
      for (const auto r : c10::irange(rb)) {
        const T* s = src + r * W;
        T* dl = d0 + r * W;               // kx = 0: shifted right, zero at w = 0
        T* dr = d0 + 2 * rt * P + r * W;  // kx = 2: shifted left, zero at w = W-1
        dl[0] = 0;
        std::memcpy(dl + 1, s, (W - 1) * sizeof(T));
        std::memcpy(dr, s + 1, (W - 1) * sizeof(T));
        dr[W - 1] = 0;
      }
    }
  }
}

// col2im, the adjoint of im2col (k = c·9 + ky·3 + kx): gs(c, r + ky - 1, w + kx - 1) += gcol[k][(r - g0)·W + w]
// for the rows r ∈ [g0, g1) of gcol whose target row r + ky - 1 lies in [t0, t1), stored in gs at (t - t0)·W with
// channel stride gs_ld; targets left or right of the image are dropped.
template <typename T>
static void col2im(int64_t S, int64_t W, const T* gcol, int64_t g0, int64_t g1, T* gs, int64_t gs_ld, int64_t t0,
                   int64_t t1) {
  const int64_t P = (g1 - g0) * W;
  for (const auto c : c10::irange(S)) {
    for (const auto ky : c10::irange(3)) {
      for (int64_t r = g0; r < g1; ++r) {
        const int64_t t = r + ky - 1;
        if (t < t0 || t >= t1) continue;
        T* __restrict__ d = gs + c * gs_ld + (t - t0) * W;
        const T* __restrict__ s0 = gcol + (c * 9 + ky * 3) * P + (r - g0) * W;
        const T* __restrict__ s1 = s0 + P;
        const T* __restrict__ s2 = s1 + P;
        for (const auto w : c10::irange(W)) d[w] += s1[w];          // kx = 1
        for (int64_t w = 0; w + 1 < W; ++w) d[w] += s0[w + 1];      // kx = 0: from the pixel right of it
        for (int64_t w = 1; w < W; ++w) d[w] += s2[w - 1];          // kx = 2: from the pixel left of it
      }
    }
  }
}

// --------------------------------------------------------------------------------------------- layout

static at::MemoryFormat memory_format(const Tensor& x) {  // fusedfire.ops.memory_format, the same rule
  const int64_t C = x.size(1), HW = x.size(2) * x.size(3);
  return x.stride(1) == 1 && C > 1 && HW > 1 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

// Stride between consecutive pixels p = h·W + w of one image, or -1 when pixels are not one uniform stride.
static int64_t pixel_stride(const Tensor& t) {
  const int64_t H = t.size(2), W = t.size(3);
  if (W == 1) return H == 1 ? 1 : t.stride(2);
  if (H == 1 || t.stride(2) == W * t.stride(3)) return t.stride(3);
  return -1;
}

// x as a (channel × pixel) matrix per image is a BLAS operand when its pixels are one uniform stride, one side
// has unit stride and the other does not overlap it (no zero strides of expanded tensors, no aliasing).
static bool gemm_ready(const Tensor& t) {
  const int64_t C = t.size(1), HW = t.size(2) * t.size(3), sc = t.stride(1), sp = pixel_stride(t);
  if (sp < 0) return false;
  if (C == 1 || HW == 1) return (C == 1 || sc > 0) && (HW == 1 || sp > 0);
  return (sp == 1 && sc >= HW) || (sc == 1 && sp >= C);
}

// ---------------------------------------------------------------------------------------------- tiling

// NOTE: band height. A band is R output rows, R = max(1, 512 // W) (13×13: the whole image; 27-wide: 18
// rows; 54-wide: 9 rows); its squeeze rows (R+2 with the halo) and im2col buffer (9S × R·W) are re-read by both
// expand GEMMs, and the GEMM's pixel dimension M = R·W must stay large for MKL's kernels. Measured, 1 thread
// (thread CPU time, so the shared machine's preemptions drop out), geomean GF/s over the 16 SqueezeNet Fires ×
// {NCHW, channels_last} at N=1 (/tmp script of the issue-5 report, run twice, loads 6.6–7):
//   band pixels   256: 69.7 / 70.2    512: 95.5 / 72.5    1024: 91.5 / 72.5    4096: 89.7 / 72.1
// so 512; FUSEDFIRE_CPU_BAND_PIXELS overrides it (read once per process) to redo that measurement.
static int64_t band_pixels() {
  static const int64_t v = [] {
    const char* env = std::getenv("FUSEDFIRE_CPU_BAND_PIXELS");
    return env ? std::max<int64_t>(1, std::atoll(env)) : int64_t(512);
  }();
  return v;
}

// Rows per band of a W-wide image whose row chunks have at most `rows` rows.
static int64_t band_rows(int64_t W, int64_t rows) { return std::clamp<int64_t>(band_pixels() / W, 1, rows); }

// Whether the fp32 BLAS forward writes out through an L2-resident buffer and non-temporal stores: where out is
// larger than the L2 caches of the threads writing it, so its lines go to memory anyway.
// NOTE: MKL's GEMMs writing into out first read every line of it from memory (a write-allocate), at N=8 a
// quarter of the traffic of a 55×55 Fire. Interleaved A/B at N=8 (2 threads, 6 configs × 2 layouts, medians):
// through the buffer with streaming stores 0.96× the time (every case faster); through the buffer with plain
// stores 1.04×; at N=1, where out fits the caches the next layer reads it from, 1.01× (so not there).
static bool stream_out(const Tensor& out) {
  static const int64_t l2 = [] {
#ifdef _SC_LEVEL2_CACHE_SIZE  // glibc
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#else
    const long v = 0;
#endif
    return v > 0 ? int64_t(v) : int64_t(1) << 20;  // 1 MB where the C library does not say
  }();
  return out.scalar_type() == at::kFloat && have_avx512() && int64_t(out.nbytes()) > l2 * at::get_num_threads();
}

// Work items [0, items) on the threads of one at::parallel_for, taken in turn from a shared counter: worker(take)
// runs once per thread, take() returning its next item or -1 when none are left.
// NOTE: dynamic, not at::parallel_for's fixed ranges: on this shared 2-core machine a descheduled thread no longer
// holds back a fixed share. Interleaved A/B at N=8 (BLAS forward, 16 configs × 2 layouts, 2 threads): fixed ranges
// took 1.03× the time, geomean, up to 1.20× (1_1.features.6 NCHW).
template <typename F>
static void parallel_items(int64_t items, const F& worker) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, items, 1, [&](int64_t, int64_t) {
    worker([&] {
      const int64_t item = next++;
      return item < items ? item : int64_t(-1);
    });
  });
}

// Scratch of n elements, 64-byte aligned, kept by the calling thread between calls: a pool thread's buffer grows to
// the largest request and is reused, so repeated calls neither allocate nor touch fresh pages. Requests past
// kMaxKeptScratch bytes are not kept: they go to `fresh` (at::empty with opts), freed with it.
constexpr int64_t kMaxKeptScratch = int64_t(16) << 20;

// Slot: independent buffers of one thread (1: the Winograd weights, read by every worker of the call; 2: gemm's).
template <typename T, int Slot>
static T* thread_scratch(int64_t n, const at::TensorOptions& opts, Tensor& fresh) {
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64 * 64;
  if (bytes > size_t(kMaxKeptScratch)) {
    fresh = at::empty({n}, opts);
    return fresh.data_ptr<T>();
  }
  if (bytes > buf.bytes) {
    std::free(buf.p);
    buf.p = std::aligned_alloc(64, bytes);
    buf.bytes = buf.p ? bytes : 0;
    TORCH_CHECK(buf.p, "fusedfire cpu: out of memory allocating ", bytes, " bytes of scratch");
  }
  return static_cast<T*>(buf.p);
}

#ifdef FUSEDFIRE_HAVE_AVX512
// Winograd F(2×2, 3×3) weights (avx512::winograd_weights) of an fp32 w3 in any layout, as U[ξ][c][e], in the
// calling thread's kept scratch (slot 1; past kMaxKeptScratch in `fresh`), output channels split over the threads.
// NOTE: per call, so made cheap: the taps gathered by copy2d (16×16 transposes) into kept scratch, not
// w3.permute().contiguous() into a fresh tensor (ATen's transposing copy and the page faults of a new 1 MB took
// ~2.5% of a 13×13 Fire at N=8), and split over the threads (one thread transforming while the other waited was
// ~8% of a 13×13 Fire at N=2).
static const float* winograd_weights(const Tensor& w3, Tensor& fresh) {
  const int64_t E = w3.size(0), S = w3.size(1), L = E * S;
  const int64_t se = w3.stride(0), sc = w3.stride(1), sy = w3.stride(2), sx = w3.stride(3);
  float* taps = thread_scratch<float, 1>(41 * L, w3.options(), fresh);  // taps[ky·3 + kx][e·S + c], Uᵀ, U
  const float* w = w3.const_data_ptr<float>();
  at::parallel_for(0, E, 16, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      if (sy == 3 * sx) {  // the 9 taps one stride apart (contiguous or channels_last w3)
        copy2d(9, S, w + e * se, sx, sc, taps + e * S, L, int64_t(1));
      } else {
        for (int64_t ky = 0; ky < 3; ++ky)
          copy2d(3, S, w + e * se + ky * sy, sx, sc, taps + ky * 3 * L + e * S, L, int64_t(1));
      }
    }
    avx512::winograd_weights(taps, L, taps + 9 * L, e0 * S, e1 * S);  // U[ξ][e·S + c]
    for (int64_t xi = 0; xi < 16; ++xi)                                 // -> [ξ][c·E + e]
      copy2d(e1 - e0, S, taps + (9 + xi) * L + e0 * S, S, int64_t(1), taps + (25 + xi) * L + e0, int64_t(1), E);
  });
  return taps + 25 * L;
}
#endif

// Where the fp32 BLAS forward computes the 3×3 expand by Winograd F(2×2, 3×3) (fire_cpu_avx512.h) instead of
// im2col + one GEMM: on AVX-512, S and E3 multiples of 16 (the transforms' vectors), an fp32 out or a channels_last
// fp16/bf16 one (converted pixel by pixel; an NCHW one would need a transposing conversion), and an NCHW out only
// from S = 48 on. $FUSEDFIRE_CPU_WINOGRAD (read per call): "auto" (default) where it pays, "1" wherever it can run
// (NCHW whatever S), "0" never.
// NOTE: interleaved A/B against im2col, N=8, 2 threads, time, medians of 11: channels_last, all 16 Fires
// 0.68–0.85× (geomean 0.77); NCHW, whose out takes a transposing pass and no non-temporal stores, S = 48 and 64
// 0.78–0.89×, but S = 32 0.96–1.08× and S = 16 1.17–1.23×.
// The same in bench/results/cpu-fwd/cpu-kernels.json (pytest-benchmark, see use_avx512; Winograd / im2col,
// geomean per size and layout): N=8 13×13 0.79–0.82, 27×27 0.70 channels_last / 0.93 NCHW (0.78–1.07), 54×54
// 0.73 / 1.06; N=1 13×13 1.10 / 1.21.
// It pays from 160 output pixels per thread on (below, the per-call weight transform and GEMMs over a few tiles eat
// the gain): N=1, channels_last, 27×27 and 54×54 (364–1512 pixels a thread) 0.70–0.87×; 13×13 (85) 1.08–1.17× in
// either layout; N=2 13×13 (169) 0.92–1.03×; N=8 7×7 (196) 0.63–0.97×, 3×3 (36) 1.06–1.85×. fp16 and bf16,
// channels_last, N=8, 1_0.features.5/.9/.12 and 1_1.features.6: 0.67–0.81×.
static bool use_winograd(int64_t pixels, int64_t S, int64_t E3, const Tensor& out) {
  const char* env = std::getenv("FUSEDFIRE_CPU_WINOGRAD");
  const std::string v = env && *env ? env : "auto";
  TORCH_CHECK(v == "auto" || v == "0" || v == "1", "fusedfire cpu: FUSEDFIRE_CPU_WINOGRAD must be auto, 0 or 1, got '",
              v, "'");
  const bool cl = out.stride(1) == 1;
  const bool can = (out.scalar_type() == at::kFloat || (cl && at::isReducedFloatingType(out.scalar_type()))) &&
                   have_avx512() && S % 16 == 0 && E3 % 16 == 0;
  const bool pays = (cl || S >= 48) && pixels >= 160 * at::get_num_threads();
  return can && (v == "1" || (v == "auto" && pays));
}

// ------------------------------------------------------------------------------------------------ forward

template <typename scalar_t>
static void fire_forward_kernel(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                const Tensor& b1, const Tensor& w3, const Tensor& b3, const Tensor& out,
                                const Tensor* s_out) {
  // Accumulate in fp32 (fp64 for fp64); fp16/bf16 are converted per band into fp32 buffers.
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  constexpr bool lowp = !std::is_same_v<scalar_t, acc_t>;

  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0);
  const int64_t xN = x.stride(0), xC = x.stride(1), xP = pixel_stride(x);
  const int64_t oN = out.stride(0), oC = out.stride(1), oP = pixel_stride(out);
  int64_t sN = 0, sC = 0, sP = 0;
  if (s_out) sN = s_out->stride(0), sC = s_out->stride(1), sP = pixel_stride(*s_out);

  // Weights in acc_t: (S × Cin), (E1 × S), (E3 × 9S). W3's k = c·rc + tap·rt: PyTorch's c·9 + tap, or tap·S + c
  // for a channels_last W3 (a channels_last model's), which is then used in place and im2col follows its order.
  constexpr auto acc_type = c10::CppTypeToScalarType<acc_t>::value;
  const auto acc_opts = x.options().dtype(acc_type);
  auto as_acc = [](const Tensor& t) { return t.to(acc_type).contiguous(); };
  const Tensor wsq_a = as_acc(wsq), bsq_a = as_acc(bsq), w1_a = as_acc(w1), b1_a = as_acc(b1), b3_a = as_acc(b3);
  Tensor w3_a = w3.to(acc_type);
  const bool w3_cl = w3_a.stride(1) == 1 && w3_a.stride(3) == S && w3_a.stride(2) == 3 * S && w3_a.stride(0) == 9 * S;
  if (!w3_cl) w3_a = w3_a.contiguous();
  const int64_t rc = w3_cl ? 1 : 9, rt = w3_cl ? S : 1;
  const acc_t *Wsq = wsq_a.data_ptr<acc_t>(), *Bsq = bsq_a.data_ptr<acc_t>(), *W1 = w1_a.data_ptr<acc_t>(),
              *B1 = b1_a.data_ptr<acc_t>(), *W3 = w3_a.data_ptr<acc_t>(), *B3 = b3_a.data_ptr<acc_t>();
  const scalar_t* X = x.const_data_ptr<scalar_t>();
  scalar_t* O = out.mutable_data_ptr<scalar_t>();
  scalar_t* Sv = s_out ? s_out->mutable_data_ptr<scalar_t>() : nullptr;

  // Work items: (image, chunk of rows), see row_chunks.
  // NOTE: one at::parallel_for per call, MKL single-threaded inside it (nested OpenMP): one barrier per Fire
  // instead of one per GEMM, which matters on a shared machine where any descheduled thread stalls a barrier.
  const int64_t chunks = row_chunks(N, H, at::get_num_threads());
  const int64_t R = band_rows(W, H);
  const bool stream = stream_out(out);
  // NOTE: a channels_last x (fp32, AVX-512) is squeezed into a pixel-major buffer (sgemm M = S), then transposed
  // into the channel-major sbuf (16×16 register blocks). Squeezing straight into sbuf reads x transposed with
  // M = pixels, which MKL ran at 39–46 GF/s on the 13×13 squeezes against 91–103 untransposed (one thread, hot
  // caches); the M = S form ran at 80–99 GF/s, and s (S × pixels) is 4–8× smaller than x (Cin × pixels) to transpose.
  // Interleaved A/B at N=8 (16 configs, channels_last, 2 threads), against transposing x for bands of ≤ 256 pixels
  // and reading it in place otherwise (the previous rule): 0.975× and 0.982× the time in two runs; N=1 0.999×.
  // (fp16 / bf16 x is first converted to fp32, in its own orientation, then squeezed the same way.)
  const bool s_transposes = std::is_same_v<acc_t, float> && xC == 1 && Cin > 1 && have_avx512();
  // The 3×3 expand by Winograd (use_winograd): bands are cut into blocks of TR tile rows (2 output rows each),
  // whose input transforms queue up, over the bands of a work item, until the next would pass `cap` tiles; then
  // 16 GEMMs over all of them and their output transforms.
  // NOTE: cap = 32768 / E3 tiles (128 KB of transformed output per point ξ, all 16 of them 2 MB, past L2): MKL's
  // GEMMs gain more from the wider N than the output transform loses. Interleaved A/B, N=8, channels_last, geomean
  // best eager / fusedfire over the 16 Fires, one band's block per flush: 8192: 1.26, 16384: 1.41, 32768: 1.43,
  // whole bands: 1.34 (the 54×54 Fires up to 2× slower there).
  const int64_t TW = (W + 1) / 2;  // tiles per row
  const int64_t cap = std::max<int64_t>(32768 / E3, TW);
  const int64_t TR = std::clamp<int64_t>(cap / TW, 1, (R + 1) / 2);  // tile rows per block
  const bool wino = std::is_same_v<acc_t, float> && use_winograd(N * H * W, S, E3, out);
  Tensor u_fresh;
  const float* U = nullptr;
#ifdef FUSEDFIRE_HAVE_AVX512
  if (wino) U = winograd_weights(w3_a, u_fresh);
#endif

  parallel_items(N * chunks, [&](auto take) {
    // NOTE: one MKL thread per worker. torch.set_num_threads(n) also sets MKL's count with dynamic adjustment off,
    // so without this each worker's sgemm spawned n threads of its own: 1_0.features.12 at N=1 on 2 threads ran
    // at 760–785 µs after torch.set_num_threads(2) against 460–530 µs without that call.
    const MklThreadsGuard one_mkl_thread(1);
    const int64_t s_ld = (R + 2) * W;  // sbuf channel stride: R+2 rows (1-row halo on each side)
    const int64_t col_n = wino ? 0 : 9 * S * R * W;
    const int64_t spw_n = wino ? S * (R + 3) * W : 0, v_n = wino ? 16 * cap * S : 0, m_n = wino ? 16 * cap * E3 : 0;
    const int64_t xbuf_n = (lowp ? Cin : 0) * (R + 2) * W, spm_n = (s_transposes ? S : 0) * (R + 2) * W;
    const int64_t obuf_n = lowp || stream || (wino && oC != 1) ? std::max(E1, E3) * R * W : 0;
    // NOTE: kept per thread between calls (thread_scratch): against a fresh at::empty per call, interleaved A/B over
    // the 16 Fires × 2 layouts: 0.957× and 0.977× the time at N=1 (allocation is a larger share of a small call),
    // 0.993× at N=8.
    Tensor fresh;
    acc_t* sbuf = thread_scratch<acc_t>(S * s_ld + col_n + xbuf_n + spm_n + obuf_n + spw_n + v_n + m_n,
                                        acc_opts, fresh);
    acc_t* col = sbuf + S * s_ld;
    acc_t* xbuf = col + col_n;
    acc_t* spm = xbuf + xbuf_n;  // a band of s, pixel-major (see s_transposes)
    acc_t* obuf = spm + spm_n;
    acc_t* spw = obuf + obuf_n;  // Winograd: the band's s pixel-major, one extra zero row
    acc_t* V = spw + spw_n;      // transformed inputs, 16 × (tiles × S)
    acc_t* Mw = V + v_n;         // transformed outputs, 16 × (tiles × E3)
    struct Block {               // a queued Winograd block: its tile rows and output rows, where they go in out
      int64_t t0, tile_rows, rows;
      scalar_t* out;
    };
    std::vector<Block> queue;
    int64_t queued = 0;  // tiles
    auto flush = [&] {   // the 16 GEMMs over every queued tile, then each block's output transform
#ifdef FUSEDFIRE_HAVE_AVX512
      if constexpr (std::is_same_v<acc_t, float>) {
        if (queued == 0) return;
        // NOTE: M_ξ = U_ξ·V_ξ as 'NN' (U_ξ column-major, M_ξ(e, t) at t·E3 + e): MKL, one thread, the Fires' shapes
        // (E3 × 98–256 tiles × S): 67–150 GF/s, against 51–148 as 'TN' and 52–145 for Mᵀ (tiles × E3) in either
        // orientation; S = 16–32 gain most.
        for (int xi = 0; xi < 16; ++xi)
          gemm<float>(E3, queued, S, {U + xi * E3 * S, 1, E3}, {V + xi * cap * S, 1, S}, {Mw + xi * cap * E3, 1, E3});
        for (const Block& b : queue) {
          if (!lowp && oC == 1) {  // channels_last: each pixel's 3×3 half is 16-channel vectors, written as they come
            float* o = reinterpret_cast<float*>(b.out);
            const bool aligned = reinterpret_cast<uintptr_t>(o) % 64 == 0 && oP % 16 == 0;
            avx512::winograd_output(E3, W, TW, b.tile_rows, b.rows, Mw + b.t0 * E3, cap * E3, B3, o, oP,
                                    stream && aligned);
          } else {  // pixel-major through obuf, then into out: 16×16 transposes (NCHW) or conversions (fp16/bf16)
            avx512::winograd_output(E3, W, TW, b.tile_rows, b.rows, Mw + b.t0 * E3, cap * E3, B3, obuf, E3, false);
            copy2d(E3, b.rows * W, obuf, int64_t(1), E3, b.out, oC, oP);
          }
        }
        queue.clear();
        queued = 0;
      }
#endif
    };

    // NOTE: an item's Winograd blocks are flushed at its end, not whenever a thread's queue fills: which items a
    // thread takes varies from call to call, and the result must not.
    for (int64_t item; (item = take()) >= 0; flush()) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t c0 = H * chunk / chunks, c1 = H * (chunk + 1) / chunks;  // output rows [c0, c1)
      const scalar_t* Xn = X + n * xN;

      // sbuf row i holds squeeze row h0 - 1 + i of the current band (zeros outside the image).
      auto squeeze_rows = [&](int64_t r0, int64_t r1, int64_t h0) {  // image rows [r0, r1) into sbuf
        for (int64_t r = r0; r < r1; ++r) {
          if (r < 0 || r >= H) {
            acc_t* dst = sbuf + (r - h0 + 1) * W;
            for (const auto c : c10::irange(S)) std::fill_n(dst + c * s_ld, W, acc_t(0));
          }
        }
        const int64_t a = std::max<int64_t>(r0, 0), b = std::min<int64_t>(r1, H);
        if (a >= b) return;
        const int64_t npix = (b - a) * W;
        const Mat<acc_t> dst{sbuf + (a - h0 + 1) * W, s_ld, 1};
        Mat<const acc_t> xb;  // x's band as a Cin × npix matrix
        if constexpr (lowp) {
          copy2d(Cin, npix, Xn + a * W * xP, xC, xP, xbuf, xC == 1 ? 1 : npix, xC == 1 ? Cin : 1);
          xb = xC == 1 ? Mat<const acc_t>{xbuf, 1, Cin} : Mat<const acc_t>{xbuf, npix, 1};
        } else {
          xb = {Xn + a * W * xP, xC, xP};
        }
        if (s_transposes) {
          gemm<acc_t>(S, npix, Cin, {Wsq, Cin, 1}, xb, {spm, 1, S});
          copy2d(S, npix, spm, int64_t(1), S, dst.p, s_ld, int64_t(1));
        } else {
          gemm<acc_t>(S, npix, Cin, {Wsq, Cin, 1}, xb, dst);
        }
        bias_relu(S, npix, dst.p, s_ld, int64_t(1), Bsq, dst.p, s_ld, int64_t(1));
      };

      int64_t Rb = even_band_rows(c1 - c0, R);  // every band but the last: the halo move relies on it
      // Winograd: even bands (whole tile rows) but the last, where R allows (R = 1: one-row bands, half-used tiles)
      if (wino && Rb % 2 && Rb > 1 && Rb < c1 - c0) Rb += Rb < R ? 1 : -1;
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        if (h0 == c0) {
          squeeze_rows(h0 - 1, h0 + rb + 1, h0);
        } else {  // rows h0-1 and h0 were the previous band's last two: move them to the front
          for (const auto c : c10::irange(S))
            std::memmove(sbuf + c * s_ld, sbuf + c * s_ld + Rb * W, 2 * W * sizeof(acc_t));
          squeeze_rows(h0 + 1, h0 + rb + 1, h0);
        }
        if (s_out) {  // the training forward saves s (band rows only: halo rows belong to other bands)
          copy2d(S, P, sbuf + W, s_ld, int64_t(1), Sv + n * sN + h0 * W * sP, sC, sP);
        }

        if (!wino) im2col(S, rb, W, sbuf, s_ld, col, rc, rt);

        // Both expands, each into its channel slice of out (the concat is where they write): straight into out, or
        // through obuf (in out's orientation) for a low-precision out or a streamed one (stream_out).
        // NOTE: each epilogue right after its GEMM, while that GEMM's output is still in L2 (both GEMMs first, then
        // both epilogues: the E1 slice was evicted by the 3×3 GEMM's traffic; interleaved A/B at N=8, 2 threads,
        // 4 configs × 2 layouts: this order 0.95× the time, geomean, every case faster).
        auto expand = [&](int64_t E, int64_t K, Mat<const acc_t> Wt, Mat<const acc_t> act, const acc_t* bias,
                          int64_t c0) {
          scalar_t* Oc = O + n * oN + h0 * W * oP + c0 * oC;
          if (lowp || stream) {
            const int64_t bC = oP == 1 ? P : 1, bP = oP == 1 ? 1 : E;
            gemm<acc_t>(E, P, K, Wt, act, {obuf, bC, bP});
            if constexpr (lowp) {  // in place in fp32, then converted (both vectorised)
              bias_relu(E, P, obuf, bC, bP, bias, obuf, bC, bP);
              copy2d(E, P, obuf, bC, bP, Oc, oC, oP);
            } else {
              bias_relu(E, P, obuf, bC, bP, bias, Oc, oC, oP, stream);
            }
          } else if constexpr (!lowp) {
            gemm<acc_t>(E, P, K, Wt, act, {Oc, oC, oP});
            bias_relu(E, P, Oc, oC, oP, bias, Oc, oC, oP);
          }
        };
        expand(E1, S, {W1, S, 1}, {sbuf + W, s_ld, 1}, B1, 0);
        if (!wino) {
          expand(E3, 9 * S, {W3, 9 * S, 1}, {col, P, 1}, B3, E1);
          continue;
        }
#ifdef FUSEDFIRE_HAVE_AVX512
        if constexpr (std::is_same_v<acc_t, float>) {
          copy2d(S, (rb + 2) * W, sbuf, s_ld, int64_t(1), spw, int64_t(1), S);
          if (rb & 1) std::fill_n(spw + (rb + 2) * W * S, W * S, 0.f);  // read by the last tile row's 4th row
          const int64_t TH = (rb + 1) / 2;
          for (int64_t ty0 = 0; ty0 < TH; ty0 += TR) {
            const int64_t ty1 = std::min(TH, ty0 + TR), nt = (ty1 - ty0) * TW;
            if (queued + nt > cap) flush();
            avx512::winograd_input(S, W, TW, ty0, ty1, spw, V + queued * S, cap * S);
            const int64_t r0 = 2 * ty0, r1 = std::min(rb, 2 * ty1);
            queue.push_back({queued, ty1 - ty0, r1 - r0, O + n * oN + (h0 + r0) * W * oP + E1 * oC});
            queued += nt;
          }
        }
#endif
      }
    }
  });
}

#ifdef FUSEDFIRE_HAVE_AVX512
static void fire_forward_avx512(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                const Tensor& b1, const Tensor& w3, const Tensor& b3, const Tensor& out,
                                const Tensor* s_out) {
  // NOTE: weights are read through their strides (a channels_last model's 3×3 weights were copied on every call
  // before: 0.6 ms of a 10 ms squeezenet1_0 forward at N=1); only the tiny biases and odd strides are copied.
  auto weights = [](const Tensor& w, Tensor& keep) {
    keep = w.stride(2) == 3 * w.stride(3) || w.size(2) == 1 ? w : w.contiguous();
    return avx512::Weights{keep.const_data_ptr<float>(), keep.stride(0), keep.stride(1), keep.stride(3)};
  };
  Tensor wsq_k, w1_k, w3_k;
  const Tensor bsq_c = bsq.contiguous(), b1_c = b1.contiguous(), b3_c = b3.contiguous();
  avx512::FireArgs f{};
  f.x = x.const_data_ptr<float>(), f.out = out.mutable_data_ptr<float>();
  int64_t last = 0;  // offset of x's last element
  for (const auto d : c10::irange(x.dim())) last += (x.size(d) - 1) * x.stride(d);
  f.x_end = f.x + last + 1;
  f.s = s_out ? s_out->mutable_data_ptr<float>() : nullptr;
  f.wsq = weights(wsq, wsq_k), f.w1 = weights(w1, w1_k), f.w3 = weights(w3, w3_k);
  f.bsq = bsq_c.const_data_ptr<float>(), f.b1 = b1_c.const_data_ptr<float>(), f.b3 = b3_c.const_data_ptr<float>();
  f.N = x.size(0), f.Cin = x.size(1), f.H = x.size(2), f.W = x.size(3);
  f.S = wsq.size(0), f.E1 = w1.size(0), f.E3 = w3.size(0);
  f.xN = x.stride(0), f.xC = x.stride(1), f.xP = pixel_stride(x);
  f.oN = out.stride(0), f.oC = out.stride(1), f.oP = pixel_stride(out);
  TORCH_INTERNAL_ASSERT(f.oP == 1 || f.oC == 1, "fusedfire cpu: out must be NCHW or channels_last");
  if (s_out) f.sN = s_out->stride(0), f.sC = s_out->stride(1), f.sP = pixel_stride(*s_out);
  f.chunks = row_chunks(f.N, f.H, at::get_num_threads());
  f.R = band_rows(f.W, (f.H + f.chunks - 1) / f.chunks);
  const avx512::Scratch layout(f);
  parallel_items(f.N * f.chunks, [&](auto take) {
    // Kept per thread between calls, like the BLAS forward's (see there). The padded squeeze band is zeroed once a
    // call: lanes past a band's last row read its slack (their results are never stored, but stale memory could
    // hold denormals, which slow FMAs down).
    Tensor fresh;
    float* scratch = thread_scratch<float>(layout.total, x.options(), fresh);
    std::fill_n(scratch, layout.sflat, 0.f);
    for (int64_t item; (item = take()) >= 0;) avx512::fire_items(f, layout, item, item + 1, scratch);
  });
}
#endif

// Which fp32 forward runs: $FUSEDFIRE_CPU_KERNEL = "auto", "avx512" or "blas" (read per call, so tests and
// benchmarks can compare both in one process). "auto": BLAS where torch exports one (MKL on x86 wheels), else the
// AVX-512 micro-kernel where the CPU has it.
// NOTE: BLAS is the faster of the two here (bench/results/cpu-fwd/cpu-kernels.json, from `pytest
// bench/test_cpu_kernels.py --benchmark-only --fire-device cpu --fire-budget 0.4 --benchmark-json=...`, 2 threads):
// BLAS (3×3 by im2col) median / micro-kernel median, geomean per size, NCHW / channels_last: 13×13 0.77 / 0.84,
// 27×27 0.90 / 0.76, 54×54 0.90 / 0.87; all 64 cases 0.84 (0.61–1.31); at parity (0.95) before the BLAS forward's
// AVX-512 epilogue, streamed out and transposed short squeezes, which the micro-kernel does not have. Winograd
// (use_winograd) takes BLAS further.
// A torch without a BLAS would run every GEMM through at::mm_out (a tensor op per GEMM), hence the micro-kernel.
static bool use_avx512() {
  const char* env = std::getenv("FUSEDFIRE_CPU_KERNEL");
  const std::string kind = env && *env ? env : "auto";
  TORCH_CHECK(kind == "auto" || kind == "avx512" || kind == "blas",
              "fusedfire cpu: FUSEDFIRE_CPU_KERNEL must be auto, avx512 or blas, got '", kind, "'");
  const bool have = have_avx512();
  TORCH_CHECK(kind != "avx512" || have, "fusedfire cpu: FUSEDFIRE_CPU_KERNEL=avx512, but this CPU or build has no "
              "AVX-512");
  return have && (kind == "avx512" || (kind == "auto" && sgemm_ == nullptr));
}

static void check_args(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1, const Tensor& b1,
                       const Tensor& w3, const Tensor& b3) {
  TORCH_CHECK(x.dim() == 4, "fusedfire cpu: x must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  const int64_t Cin = x.size(1);
  TORCH_CHECK(wsq.dim() == 4 && wsq.size(1) == Cin && wsq.size(2) == 1 && wsq.size(3) == 1,
              "fusedfire cpu: squeeze_weight must be (S, Cin=", Cin, ", 1, 1), got ", wsq.sizes());
  const int64_t S = wsq.size(0);
  TORCH_CHECK(w1.dim() == 4 && w1.size(1) == S && w1.size(2) == 1 && w1.size(3) == 1,
              "fusedfire cpu: expand1x1_weight must be (E1, S=", S, ", 1, 1), got ", w1.sizes());
  TORCH_CHECK(w3.dim() == 4 && w3.size(1) == S && w3.size(2) == 3 && w3.size(3) == 3,
              "fusedfire cpu: expand3x3_weight must be (E3, S=", S, ", 3, 3), got ", w3.sizes());
  TORCH_CHECK(bsq.dim() == 1 && bsq.size(0) == S, "fusedfire cpu: squeeze_bias must be (", S, ",), got ", bsq.sizes());
  TORCH_CHECK(b1.dim() == 1 && b1.size(0) == w1.size(0), "fusedfire cpu: expand1x1_bias must be (", w1.size(0),
              ",), got ", b1.sizes());
  TORCH_CHECK(b3.dim() == 1 && b3.size(0) == w3.size(0), "fusedfire cpu: expand3x3_bias must be (", w3.size(0),
              ",), got ", b3.sizes());
  for (const Tensor* t : {&wsq, &bsq, &w1, &b1, &w3, &b3}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "fusedfire cpu: all inputs must share x's dtype ",
                x.scalar_type(), ", got ", t->scalar_type());
    TORCH_CHECK(t->device().is_cpu(), "fusedfire cpu: all inputs must be CPU tensors, got ", t->device());
  }
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "fusedfire cpu: x must be floating point, got ", x.scalar_type());
}

static std::tuple<Tensor, Tensor> forward(const Tensor& x_in, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                          const Tensor& b1, const Tensor& w3, const Tensor& b3, bool save_s) {
  check_args(x_in, wsq, bsq, w1, b1, w3, b3);
  const auto fmt = memory_format(x_in);
  const int64_t N = x_in.size(0), H = x_in.size(2), W = x_in.size(3);
  Tensor out = at::empty({N, w1.size(0) + w3.size(0), H, W}, x_in.options().memory_format(fmt));
  Tensor s = save_s ? at::empty({N, wsq.size(0), H, W}, x_in.options().memory_format(fmt)) : Tensor();
  if (out.numel() == 0) return {out, s};
  // NOTE: the GEMMs read x as a (channel × pixel) matrix per image. A view whose pixels are not one uniform
  // stride (a crop like x[..., 1:8]) or without a unit stride is copied once to memory_format(x); x is the
  // smallest activation of a Fire (Cin ≤ E1+E3), and every contiguous or channels_last x is read in place.
  const Tensor x = gemm_ready(x_in) ? x_in : x_in.contiguous(fmt);
  if (x.scalar_type() == at::kFloat && use_avx512()) {  // never true (an error if asked for) without AVX-512
#ifdef FUSEDFIRE_HAVE_AVX512
    fire_forward_avx512(x, wsq, bsq, w1, b1, w3, b3, out, save_s ? &s : nullptr);
    return {out, s};
#endif
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fusedfire_cpu_forward", [&] {
    fire_forward_kernel<scalar_t>(x, wsq, bsq, w1, b1, w3, b3, out, save_s ? &s : nullptr);
  });
  return {out, s};
}

Tensor native_fire_cpu(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1, const Tensor& b1,
                       const Tensor& w3, const Tensor& b3) {
  return std::get<0>(forward(x, wsq, bsq, w1, b1, w3, b3, false));
}

std::tuple<Tensor, Tensor> native_fire_fwd_cpu(const Tensor& x, const Tensor& wsq, const Tensor& bsq,
                                               const Tensor& w1, const Tensor& b1, const Tensor& w3,
                                               const Tensor& b3) {
  return forward(x, wsq, bsq, w1, b1, w3, b3, true);
}

// ----------------------------------------------------------------------------------------------- backward

// The VJP of the ops.py docstring, per (image, row chunk) and per band of R rows, like the forward:
//
//   pass 1, per band:  G[E][rows]  = grad_out ⊙ (out > 0)                  (+ the chunk's halo rows, see below)
//                      gb1, gb3   += Σ_p G1, G3;  gW1 += G1·sᵀ;  gW3 += G3·im2col(s)ᵀ
//                      gs[rows]   += W1ᵀ·G1;  gs += col2im(W3ᵀ·G3)       gs: the chunk's grad_s, L2-sized
//   pass 2, per band:  gs ⊙= (s > 0);  gbsq += Σ_p gs;  gWsq += gs·xᵀ;  grad_x[rows] = Wsqᵀ·gs
//
// col2im spreads row r of W3ᵀ·G3 over grad_s rows r-1..r+1, so a chunk also takes W3ᵀ·G3 of the G rows just
// above and below it (masked again there, counted in no weight or bias gradient). Weight gradients accumulate per
// thread and are summed in thread order: for a given thread count the result is the same on every call.
// NOTE: against the ATen backward it replaced (mask into a full G tensor, three convolution_backward calls on its
// channel views, grad_s summed and masked as tensors), interleaved A/B over the 16 Fires × 2 layouts, 2 threads,
// medians: 0.62× the time at N=1, 0.65× at N=8 (every case faster; 13×13 with E = 512 least, 0.71–0.83×). Band
// pixels 256 / 512 / 1024: 0.67 / 0.66 / 0.68, so the forward's 512.
template <typename scalar_t>
static void fire_backward_kernel(const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out,
                                 const Tensor& wsq, const Tensor& w1, const Tensor& w3, const Tensor& grad_x,
                                 const Tensor& wacc) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  constexpr bool lowp = !std::is_same_v<scalar_t, acc_t>;
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0), E = E1 + E3, K3 = 9 * S;
  const int64_t xN = x.stride(0), xC = x.stride(1), xP = pixel_stride(x);
  const int64_t sN = s.stride(0), sC = s.stride(1), sP = pixel_stride(s);
  const int64_t gxN = grad_x.stride(0), gxC = grad_x.stride(1), gxP = pixel_stride(grad_x);
  const auto gos = grad_out.strides(), os = out.strides();  // any strides (an expanded grad_out has zeros)

  constexpr auto acc_type = c10::CppTypeToScalarType<acc_t>::value;
  const auto acc_opts = x.options().dtype(acc_type);
  const Tensor wsq_a = wsq.to(acc_type).contiguous(), w1_a = w1.to(acc_type).contiguous(),
               w3_a = w3.to(acc_type).contiguous();
  const acc_t *Wsq = wsq_a.const_data_ptr<acc_t>(), *W1 = w1_a.const_data_ptr<acc_t>(),
              *W3 = w3_a.const_data_ptr<acc_t>();
  const scalar_t *GO = grad_out.const_data_ptr<scalar_t>(), *O = out.const_data_ptr<scalar_t>(),
                 *X = x.const_data_ptr<scalar_t>(), *Sv = s.const_data_ptr<scalar_t>();
  scalar_t* GX = grad_x.mutable_data_ptr<scalar_t>();
  // Offsets of the weight gradients in a row of wacc (see native_fire_bwd_cpu): gb1 and gb3 are one vector.
  const int64_t oBsq = S * Cin, oW1 = oBsq + S, oW3 = oW1 + E1 * S, oB = oW3 + E3 * K3;

  const int64_t chunks = row_chunks(N, H, at::get_num_threads());
  const int64_t R = band_rows(W, H);
  const int64_t chunk_rows = (H + chunks - 1) / chunks;
  // G in out's orientation, so that the masking pass reads grad_out and out along their unit stride.
  const bool g_cm = os[3] == 1;

  at::parallel_for(0, N * chunks, 1, [&](int64_t begin, int64_t end) {
    const MklThreadsGuard one_mkl_thread(1);  // see the forward
    const int slot = at::get_thread_num();
    TORCH_INTERNAL_ASSERT(slot < wacc.size(0), "fusedfire cpu: more workers than accumulators");
    acc_t* acc = wacc.data_ptr<acc_t>() + slot * wacc.stride(0);
    acc_t *gWsq = acc, *gBsq = acc + oBsq, *gW1 = acc + oW1, *gW3 = acc + oW3, *gB = acc + oB;

    const int64_t s_ld = (R + 2) * W, gs_ld = chunk_rows * W;
    const int64_t gbuf_n = E * (R + 2) * W, col_n = K3 * R * W, gcol_n = K3 * (R + 2) * W;
    const int64_t xbuf_n = lowp ? Cin * R * W : 0;
    const int64_t scratch_n = gbuf_n + S * s_ld + col_n + gcol_n + S * gs_ld + xbuf_n + R * W;
    // NOTE: kept per thread between calls (thread_scratch): a fresh at::empty per call faulted its pages in
    // again every time (1 400 page faults per call at 1_0.features.12, N=8), which cost 0.945× (N=1) and 0.98×
    // (N=8) the time in an interleaved A/B over the 16 Fires × 2 layouts.
    Tensor fresh;
    acc_t* gbuf = thread_scratch<acc_t>(scratch_n, acc_opts, fresh);
    acc_t* sbuf = gbuf + gbuf_n;
    acc_t* col = sbuf + S * s_ld;
    acc_t* gcol = col + col_n;
    acc_t* gs = gcol + gcol_n;
    acc_t* xbuf = gs + S * gs_ld;
    acc_t* ones = xbuf + xbuf_n;  // bias gradients are GEMVs against it
    std::fill_n(ones, R * W, acc_t(1));

    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t c0 = H * chunk / chunks, c1 = H * (chunk + 1) / chunks;  // rows [c0, c1)
      if (c0 == c1) continue;
      const int64_t Rb = even_band_rows(c1 - c0, R);
      std::fill_n(gs, S * gs_ld, acc_t(0));

      // G rows [g0, g1) into gbuf (Pg = (g1 - g0)·W pixels), in out's orientation.
      // NOTE: both operands loaded unconditionally, so that the select vectorises (a conditional load of
      // grad_out compiled to a scalar loop with a branch: 25% of a channels_last backward at N=8).
      auto mask_rows = [&](int64_t g0, int64_t g1, int64_t Pg) {
        for (int64_t r = g0; r < g1; ++r) {
          const scalar_t* go_r = GO + n * gos[0] + r * gos[2];
          const scalar_t* o_r = O + n * os[0] + r * os[2];
          // (inner count, inner strides of grad_out and out, outer count and strides, gbuf strides)
          const int64_t ni = g_cm ? W : E, gi = g_cm ? gos[3] : gos[1], oi = g_cm ? os[3] : os[1];
          const int64_t no = g_cm ? E : W, go_o = g_cm ? gos[1] : gos[3], o_o = g_cm ? os[1] : os[3];
          const int64_t d_o = g_cm ? Pg : E;
          acc_t* d_r = gbuf + (r - g0) * W * (g_cm ? 1 : E);
          for (const auto j : c10::irange(no)) {
            const scalar_t* __restrict__ go = go_r + j * go_o;
            const scalar_t* __restrict__ o = o_r + j * o_o;
            acc_t* __restrict__ d = d_r + j * d_o;
            if (gi == 1 && oi == 1) {
              for (const auto i : c10::irange(ni)) {
                const acc_t g = static_cast<acc_t>(go[i]);
                d[i] = o[i] > scalar_t(0) ? g : acc_t(0);
              }
            } else {
              for (const auto i : c10::irange(ni)) {
                const acc_t g = static_cast<acc_t>(go[i * gi]);
                d[i] = o[i * oi] > scalar_t(0) ? g : acc_t(0);
              }
            }
          }
        }
      };
      // s rows [h0 - 1, h0 + rb + 1) into sbuf, channel-major, zeros outside the image.
      auto load_s = [&](int64_t h0, int64_t rb) {
        for (int64_t r = h0 - 1; r <= h0 + rb; ++r)
          if (r < 0 || r >= H)
            for (const auto c : c10::irange(S)) std::fill_n(sbuf + c * s_ld + (r - h0 + 1) * W, W, acc_t(0));
        const int64_t a = std::max<int64_t>(h0 - 1, 0), b = std::min<int64_t>(h0 + rb + 1, H);
        copy2d(S, (b - a) * W, Sv + n * sN + a * W * sP, sC, sP, sbuf + (a - h0 + 1) * W, s_ld, int64_t(1));
      };

      // Pass 1: G, the expand gradients and grad_s (unmasked) of rows [c0, c1).
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        const int64_t g0 = h0 == c0 ? std::max<int64_t>(c0 - 1, 0) : h0;            // G rows [g0, g1): the band's
        const int64_t g1 = h0 + rb == c1 ? std::min<int64_t>(c1 + 1, H) : h0 + rb;  // and the chunk's halo rows
        const int64_t Pg = (g1 - g0) * W;
        mask_rows(g0, g1, Pg);
        const int64_t gC = g_cm ? Pg : 1, gP = g_cm ? 1 : E;
        const Mat<const acc_t> G1{gbuf + (h0 - g0) * W * gP, gC, gP}, G3{G1.p + E1 * gC, gC, gP},
            G3all{gbuf + E1 * gC, gC, gP};
        load_s(h0, rb);
        im2col(S, rb, W, sbuf, s_ld, col, int64_t(9), int64_t(1));

        gemm<acc_t>(E, 1, P, G1, {ones, 1, P}, {gB, 1, E}, true);            // gb1, gb3 += Σ_p G
        gemm<acc_t>(E1, S, P, G1, {sbuf + W, 1, s_ld}, {gW1, S, 1}, true);  // gW1 += G1·sᵀ
        gemm<acc_t>(E3, K3, P, G3, {col, 1, P}, {gW3, K3, 1}, true);        // gW3 += G3·colᵀ
        gemm<acc_t>(S, P, E1, {W1, 1, S}, G1, {gs + (h0 - c0) * W, gs_ld, 1}, true);  // gs += W1ᵀ·G1
        gemm<acc_t>(K3, Pg, E3, {W3, 1, K3}, G3all, {gcol, Pg, 1});                  // gcol = W3ᵀ·G3
        col2im(S, W, gcol, g0, g1, gs, gs_ld, c0, c1);
      }

      // Pass 2: the squeeze's gradients, band by band.
      for (int64_t h0 = c0; h0 < c1; h0 += Rb) {
        const int64_t rb = std::min(Rb, c1 - h0), P = rb * W;
        acc_t* g = gs + (h0 - c0) * W;
        load_s(h0, rb);
        for (const auto c : c10::irange(S)) {
          acc_t* __restrict__ v = g + c * gs_ld;
          const acc_t* __restrict__ sc = sbuf + c * s_ld + W;
          for (const auto p : c10::irange(P)) v[p] = sc[p] > acc_t(0) ? v[p] : acc_t(0);
        }
        const Mat<const acc_t> gsm{g, gs_ld, 1};
        gemm<acc_t>(S, 1, P, gsm, {ones, 1, P}, {gBsq, 1, S}, true);  // gbsq += Σ_p grad_s
        const scalar_t* xb = X + n * xN + h0 * W * xP;
        scalar_t* gxb = GX + n * gxN + h0 * W * gxP;
        if constexpr (lowp) {
          copy2d(Cin, P, xb, xC, xP, xbuf, P, int64_t(1));
          gemm<acc_t>(S, Cin, P, gsm, {xbuf, 1, P}, {gWsq, Cin, 1}, true);  // gWsq += gs·xᵀ
          gemm<acc_t>(Cin, P, S, {Wsq, 1, Cin}, gsm, {xbuf, P, 1});        // grad_x = Wsqᵀ·gs
          copy2d(Cin, P, xbuf, P, int64_t(1), gxb, gxC, gxP);
        } else {
          gemm<acc_t>(S, Cin, P, gsm, {xb, xP, xC}, {gWsq, Cin, 1}, true);
          gemm<acc_t>(Cin, P, S, {Wsq, 1, Cin}, gsm, {gxb, gxC, gxP});
        }
      }
    }
  });
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> native_fire_bwd_cpu(
    const Tensor& grad_out, const Tensor& x_in, const Tensor& s_in, const Tensor& out, const Tensor& wsq,
    const Tensor& w1, const Tensor& w3) {
  TORCH_CHECK(x_in.dim() == 4 && s_in.dim() == 4 && out.dim() == 4, "fusedfire cpu: backward wants 4-D x, s and "
              "out, got ", x_in.sizes(), ", ", s_in.sizes(), ", ", out.sizes());
  const int64_t N = x_in.size(0), Cin = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  TORCH_CHECK(wsq.dim() == 4 && w1.dim() == 4 && w3.dim() == 4 && wsq.size(1) == Cin && w1.size(1) == wsq.size(0)
                  && w3.size(1) == wsq.size(0) && w3.size(2) == 3 && w3.size(3) == 3,
              "fusedfire cpu: backward weights must be (S, Cin, 1, 1), (E1, S, 1, 1), (E3, S, 3, 3), got ",
              wsq.sizes(), ", ", w1.sizes(), ", ", w3.sizes());
  const int64_t S = wsq.size(0), E1 = w1.size(0), E3 = w3.size(0);
  TORCH_CHECK(s_in.sizes() == at::IntArrayRef({N, S, H, W}) && out.sizes() == at::IntArrayRef({N, E1 + E3, H, W})
                  && grad_out.sizes() == out.sizes(),
              "fusedfire cpu: backward wants s ", at::IntArrayRef({N, S, H, W}), " and out, grad_out ",
              at::IntArrayRef({N, E1 + E3, H, W}), ", got ", s_in.sizes(), ", ", out.sizes(), ", ", grad_out.sizes());
  for (const Tensor* t : {&grad_out, &s_in, &out, &wsq, &w1, &w3})
    TORCH_CHECK(t->scalar_type() == x_in.scalar_type() && t->device().is_cpu(), "fusedfire cpu: backward tensors "
                "must be CPU tensors of x's dtype ", x_in.scalar_type(), ", got ", t->scalar_type(), " on ",
                t->device());
  const auto fmt = memory_format(x_in);
  // x and s are read as (channel × pixel) matrices (see forward); out and grad_out through their 4 strides.
  const Tensor x = gemm_ready(x_in) ? x_in : x_in.contiguous(fmt);
  const Tensor s = gemm_ready(s_in) ? s_in : s_in.contiguous(fmt);
  Tensor grad_x = at::empty(x_in.sizes(), x_in.options().memory_format(fmt));
  // One row per thread: gWsq (S·Cin), gbsq (S), gW1 (E1·S), gW3 (E3·9S), gb1 (E1), gb3 (E3), in the acc dtype.
  const auto acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t sizes[] = {S * Cin, S, E1 * S, E3 * 9 * S, E1, E3};
  Tensor wacc = at::zeros({at::get_num_threads(), std::accumulate(std::begin(sizes), std::end(sizes), int64_t(0))},
                          x.options().dtype(acc_type));
  if (x.numel() > 0 && out.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fusedfire_cpu_backward", [&] {
      fire_backward_kernel<scalar_t>(grad_out, x, s, out, wsq, w1, w3, grad_x, wacc);
    });
  } else {
    grad_x.zero_();
  }
  const Tensor total = wacc.sum(0);
  std::array<Tensor, 6> g;
  const std::array<at::IntArrayRef, 6> shapes{wsq.sizes(), wsq.sizes().slice(0, 1), w1.sizes(), w3.sizes(),
                                              w1.sizes().slice(0, 1), w3.sizes().slice(0, 1)};
  for (int64_t i = 0, offset = 0; i < 6; offset += sizes[i++])
    g[i] = total.narrow(0, offset, sizes[i]).view(shapes[i]).to(x.scalar_type(), false, true);
  return {grad_x, g[0], g[1], g[2], g[4], g[3], g[5]};
}

}  // namespace fusedfire_cpu

TORCH_LIBRARY_IMPL(fusedfire, CPU, m) {
  m.impl("native_fire", &fusedfire_cpu::native_fire_cpu);
  m.impl("native_fire_fwd", &fusedfire_cpu::native_fire_fwd_cpu);
  m.impl("native_fire_bwd", &fusedfire_cpu::native_fire_bwd_cpu);
}
