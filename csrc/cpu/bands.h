// How the forward and backward split their work: layouts of the activations, work items (image, row chunk) taken
// by the threads, bands of rows inside an item, and the per-thread scratch the bands live in.
#pragma once
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <vector>

#include "../layout.h"
#include "heuristics.h"

namespace fusedfire_cpu {

using Tensor = torch::stable::Tensor;
using fusedfire::memory_format;

// ------------------------------------------------------------------------------------------------ layouts

// Stride between consecutive pixels p = h·W + w of one image, or -1 when pixels are not one uniform stride.
inline int64_t pixel_stride(const Tensor& t) {
  const int64_t H = t.size(2), W = t.size(3);
  if (W == 1) return H == 1 ? 1 : t.stride(2);
  if (H == 1 || t.stride(2) == W * t.stride(3)) return t.stride(3);
  return -1;
}

// Whether t, as a (channel × pixel) matrix per image, is a BLAS operand: its pixels one uniform stride, one side
// of unit stride and the other not overlapping it (no zero strides of expanded tensors, no aliasing).
inline bool gemm_ready(const Tensor& t) {
  const int64_t C = t.size(1), HW = t.size(2) * t.size(3), sc = t.stride(1), sp = pixel_stride(t);
  if (sp < 0) return false;
  if (C == 1 || HW == 1) return (C == 1 || sc > 0) && (HW == 1 || sp > 0);
  return (sp == 1 && sc >= HW) || (sc == 1 && sp >= C);
}

// ------------------------------------------------------------------------------------------- work split

// The threads of torch's parallel_for (torch.get_num_threads()).
inline int64_t num_threads() { return int64_t(torch::stable::get_num_threads()); }

// Work items are (image, chunk of rows); with fewer images than threads each image is split into row chunks, so
// that every thread gets the same number of rows (a chunk boundary recomputes 2 halo rows of the squeeze).
inline int64_t row_chunks(int64_t N, int64_t H, int64_t threads) {
  return std::min<int64_t>(H, threads / std::gcd(std::max<int64_t>(N, 1), threads));
}

// Rows per band of a W-wide image whose row chunks have at most `rows` rows (kBandPixels, or a test's).
inline int64_t band_rows(int64_t band_pixels, int64_t W, int64_t rows) {
  return std::clamp<int64_t>(band_pixels / W, 1, rows);
}

// Rows per band when a chunk's `rows` split into even bands of ≤ R rows; every band but the last has this many.
// NOTE: even, not R + remainder (27 rows, R = 18: 14 + 13, not 18 + 9).
inline int64_t even_band_rows(int64_t rows, int64_t R) {
  const int64_t bands = (rows + R - 1) / R;
  return (rows + bands - 1) / bands;
}

// The band height Rb of even_band_rows for Winograd tiles of m rows: whole tile rows (a multiple of m) for every
// band but the last, where R allows (R < m: partly used tiles).
inline int64_t tile_band_rows(int64_t rows, int64_t R, int64_t m) {
  const int64_t Rb = even_band_rows(rows, R);
  if (Rb % m == 0 || Rb >= rows) return Rb;
  const int64_t up = (Rb + m - 1) / m * m, down = Rb / m * m;
  return up <= R ? up : down > 0 ? down : Rb;
}

// Work items [0, items) on the threads of one parallel_for (torch's: ATen's OpenMP pool): worker(take) runs once per
// thread, take() returning its next item or -1 when none are left. Thread t first takes the items of its own range
// [items·t/T, items·(t+1)/T), in order, then what is left of the others' (from the next thread's on): the same
// thread gets the same rows of the same images in every call, hence in consecutive layers, where what it wrote is
// still in its caches.
// NOTE: dynamic, not parallel_for's fixed ranges: on a shared 2-core machine a descheduled thread no longer
// holds back a fixed share. (Xeon) A/B at N=8, 16 configs × 2 layouts: fixed ranges took 1.03× the time, geomean,
// up to 1.20× (1_1.features.6 NCHW).
// NOTE: own range first: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved rounds, paired medians,
// against one shared counter: squeezenet1_1 0.94-0.99× the time at N=1 (3 runs), squeezenet1_0 1.00×, N=8 1.00×;
// each squeezenet1_1 Fire in the network at N=1 0.96-1.00×.
// NOTE: torch's parallel_for (a call through the stable ABI's C shim), not an OpenMP region of this library: (EPYC)
// A/B against `#pragma omp parallel` here, forward, the 8 squeezenet1_0 Fires, 2 threads: 1.005× the time at N=1,
// 0.999× at N=8 (geomeans of the fastest of 11 interleaved samples), and the build needs no OpenMP.
template <typename F>
void parallel_items(int64_t items, const F& worker) {
  if (items <= 0) return;
  const int64_t T = std::clamp<int64_t>(num_threads(), 1, items);
  struct alignas(64) Range {
    std::atomic<int64_t> next;
    int64_t end;
  };
  std::vector<Range> ranges(T);
  for (int64_t t = 0; t < T; ++t) ranges[t].next = items * t / T, ranges[t].end = items * (t + 1) / T;
  torch::stable::parallel_for(0, T, 1, [&](int64_t t0, int64_t) {  // one t per thread (all of them if nested)
    int64_t r = 0;                                                 // ranges tried so far
    worker([&] {
      for (; r < T; ++r) {
        Range& range = ranges[(t0 + r) % T];
        const int64_t item = range.next++;
        if (item < range.end) return item;
      }
      return int64_t(-1);
    });
  });
}

// ---------------------------------------------------------------------------------------------- scratch

// Scratch of n elements, 64-byte aligned, kept by the calling thread between calls (kMaxKeptScratch): a pool
// thread's buffer grows to the largest request and is reused, so repeated calls neither allocate nor touch fresh
// pages. Larger requests go to `fresh` (a new CPU tensor), freed with it. Slot: independent buffers of one
// thread (0: a forward's or backward's bands, 1: the Winograd weight taps or weight gradient's taps, 2: gemm's, 3: the
// forward's 1×1 weights and 4: a Winograd weight transform too large to memoize, both read by every worker of the
// call, 5: the backward's weight gradient accumulators, 6: the transformed inputs of a forward's split expand).
// NOTE: `fresh` is a std::optional, empty unless used: a default torch::stable::Tensor is not free (it allocates an
// undefined tensor through the C shim, and frees it), and gemm() may ask for scratch on every call. (EPYC) A/B
// against a plain Tensor, forward, the 8 squeezenet1_0 Fires, 2 threads: 0.994× the time at N=1, 0.993× at N=8.
using Fresh = std::optional<Tensor>;

template <typename T, int Slot = 0>
T* thread_scratch(int64_t n, Fresh& fresh) {
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64 * 64;
  if (bytes > size_t(kMaxKeptScratch)) {
    fresh = torch::stable::empty({n}, torch::headeronly::CppTypeToScalarType<T>::value);
    return fresh->mutable_data_ptr<T>();
  }
  if (bytes > buf.bytes) {
    std::free(buf.p);
    buf.p = std::aligned_alloc(64, bytes);
    buf.bytes = buf.p ? bytes : 0;
    STD_TORCH_CHECK(buf.p, "fusedfire cpu: out of memory allocating ", bytes, " bytes of scratch");
  }
  return static_cast<T*>(buf.p);
}

}  // namespace fusedfire_cpu
