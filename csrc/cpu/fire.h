// The CPU backend's forward and backward (forward.cpp, backward.cpp), called by ops.cpp with checked tensors, the
// calling thread's options and the kernel table of their ISA. The math and its VJP: the docstring of
// fusedfire/ops.py.
#pragma once
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <algorithm>
#include <tuple>
#include <type_traits>

#include "../dtypes.h"
#include "kernels.h"
#include "pack.h"

namespace fusedfire_cpu {

using Tensor = torch::stable::Tensor;
using torch::headeronly::ScalarType;

// t in dtype d, and t contiguous (dense, row-major): t itself where it already is (a torch::stable op is a boxed
// dispatcher call).
// NOTE: the stable ABI's per-call cost, with these: (EPYC) A/B against the ATen build, 1 thread, a 16→16→16+16 Fire
// on 2×2 (a call is all overhead): forward 9.8 µs against 7.7, backward 23.8 against 27.0.
inline Tensor to_dtype(const Tensor& t, ScalarType d) { return t.scalar_type() == d ? t : torch::stable::to(t, d); }
inline Tensor dense(const Tensor& t) { return t.is_contiguous() ? t : torch::stable::contiguous(t); }

// The accumulation dtype of a dtype: fp64 for fp64, fp32 for fp32, fp16 and bf16.
template <typename scalar_t>
using acc_type_of = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// How the 3×3 expand is computed: Winograd where it pays (heuristics.h), wherever it can run, or never (im2col).
enum class Winograd { automatic, on, off };

// How a call runs. Users never set these: tests and benchmarks force them through fusedfire.native.cpu_options
// (fusedfire._cpu.set_options), per Python thread, read once per call.
struct Options {
  Isa isa;               // the vector kernels' ISA: the best this build and CPU run, unless lowered
  Winograd winograd;
  int64_t band_pixels;   // kBandPixels
  GemmChoice gemm;
};

// What optimize's inference path (native_fire_packed, fp32) adds to a forward: the weights' pack (pack.h) and
// - where pool_kernel > 0, a max pooling of the Fire's output (channels_last), which is then never in memory: out is
//   max_pool2d(fire(x), pool_kernel, pool_stride, ceil_mode=pool_ceil);
// - where next.w is set, the next Fire's squeeze (its pack's, pack_1x1) of the Fire's output (channels_last), which
//   is then never in memory: out is that next Fire's s;
// - squeezed: x is this Fire's s (S channels): its squeeze is skipped.
// Checked by the caller.
struct Packed {
  const float* pack = nullptr;  // the pack's data
  int64_t pool_kernel = 0, pool_stride = 0;
  bool pool_ceil = false;
  bool squeezed = false;
  Padded1x1 next;
};

// (out, s): s only where save_s (the training forward), else an undefined tensor. packed: null, or optimize's.
std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                   const Tensor& b1, const Tensor& w3, const Tensor& b3, bool save_s,
                                   const Packed* packed, const Options& opt, const Kernels& k);

// (grad_x, gWsq, gbsq, gW1, gb1, gW3, gb3).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> backward(
    const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out, const Tensor& wsq, const Tensor& w1,
    const Tensor& w3, const Options& opt, const Kernels& k);

// The stem (stem.cpp): max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool_kernel, pool_stride,
// ceil_mode), fp32, square kernel and strides, out channels_last; where next.w is set, out is the next Fire's s
// (its squeeze, pack_1x1, of those rows). Arguments checked by the caller.
Tensor stem(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
            int64_t pool_kernel, int64_t pool_stride, bool ceil_mode, const Padded1x1& next, const Kernels& k);

// SqueezeNet's classifier (classifier.cpp): adaptive_avg_pool2d(relu(conv2d(x, weight, bias)), 1) for a 1×1 conv
// (conv: its weights as pad_1x1 lays them out), fp32, x's pixels one uniform stride (pixel_stride); out (N, M, 1, 1).
Tensor classifier(const Tensor& x, const Padded1x1& conv, const Kernels& k);

// max_pool2d(x, kernel, stride, ceil_mode) of a dense channels_last fp32 x (pool.cpp), out channels_last; arguments
// checked by the caller.
Tensor max_pool(const Tensor& x, int64_t kernel, int64_t stride, bool ceil_mode, const Kernels& k);

// PyTorch's pooling_output_shape without padding or dilation: the pooled size of `size`.
int64_t pooled_size(int64_t size, int64_t kernel, int64_t stride, bool ceil_mode);

// Pooled row r (PW pixels × C channels, pixel-major, into dst) of a max pooling (kernel <= 8: ops.cpp checks) over
// H rows of W pixels, row(i) pointing at input row i.
template <typename Row>
void pool_row(const Kernels& k, int64_t r, int64_t kernel, int64_t stride, int64_t H, int64_t W, int64_t C,
              int64_t PW, const Row& row, float* dst) {
  const float* rows[8];
  const int64_t first = r * stride, last = std::min(first + kernel, H);
  for (int64_t i = first; i < last; ++i) rows[i - first] = row(i);
  k.max_pool_row(C, W, PW, kernel, stride, rows, last - first, dst);
}

}  // namespace fusedfire_cpu
