// The argument checks of both extensions (fusedfire._cpu and fusedfire._C), one line each, in flash-attention's
// CHECK_* style: each names the argument, what it must be and what it got. They guard the kernels; the detailed
// user-facing messages are fusedfire/ops.py's check_inputs, which runs first on every public path. LibTorch's stable
// ABI only (STD_TORCH_CHECK throws std::runtime_error: a RuntimeError in Python).
#pragma once
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>

#include "dtypes.h"

#define FF_CHECK(cond, ...) STD_TORCH_CHECK(cond, "fusedfire: ", __VA_ARGS__)

// x.dim() == n
#define CHECK_DIM(x, n) FF_CHECK((x).dim() == (n), #x " must be " #n "-D, got ", (x).dim(), "-D")
// x's sizes are exactly these, e.g. CHECK_SHAPE(squeeze_bias, S): "squeeze_bias must be (S) = (16,), got (8,)"
#define CHECK_SHAPE(x, ...)                                                                                        \
  FF_CHECK(fusedfire::has_shape(x, {__VA_ARGS__}), #x " must be (" #__VA_ARGS__ ") = ",                            \
           fusedfire::shape_str({__VA_ARGS__}), ", got ", fusedfire::shape_str((x).sizes()))
// x is one of the dtypes the kernels compute
#define CHECK_FLOATING(x)                                                                                          \
  FF_CHECK(fusedfire::is_fire_dtype((x).scalar_type()), #x " must be float16, bfloat16, float32 or float64, got ", \
           (x).scalar_type())
// x is a CPU (CUDA) tensor
#define CHECK_CPU(x) FF_CHECK((x).is_cpu(), #x " must be a CPU tensor, got one on ", fusedfire::device_str(x))
#define CHECK_CUDA(x) FF_CHECK((x).is_cuda(), #x " must be a CUDA tensor, got one on ", fusedfire::device_str(x))
// x has like's dtype and device
#define CHECK_LIKE(x, like)                                                                                        \
  do {                                                                                                             \
    FF_CHECK((x).scalar_type() == (like).scalar_type(), #x " must share " #like "'s dtype ", (like).scalar_type(), \
             ", got ", (x).scalar_type());                                                                         \
    FF_CHECK((x).device() == (like).device(), #x " must be on " #like "'s device ", fusedfire::device_str(like),   \
             ", got ", fusedfire::device_str(x));                                                                  \
  } while (0)

namespace fusedfire {

// "(2, 96, 55, 55)", "(16,)"
inline std::string shape_str(torch::headeronly::IntHeaderOnlyArrayRef sizes) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < sizes.size(); ++i) s << (i ? ", " : "") << sizes[i];
  s << (sizes.size() == 1 ? ",)" : ")");
  return s.str();
}

inline bool has_shape(const torch::stable::Tensor& t, std::initializer_list<int64_t> shape) {
  return t.sizes() == torch::headeronly::IntHeaderOnlyArrayRef(shape);
}

// "cpu", "cuda:1"
inline std::string device_str(const torch::stable::Tensor& t) {
  const auto d = t.device();
  return d.is_cpu() ? "cpu" : (d.is_cuda() ? "cuda:" : "device:") + std::to_string(d.index());
}

// x (N, Cin, H, W) in a kernel dtype and the three weights of a Fire: 4-D, shapes that agree, S, E1, E3 >= 1, x's
// dtype and device. Each extension adds its device and its own limits.
inline void check_fire_weights(const torch::stable::Tensor& x, const torch::stable::Tensor& squeeze_weight,
                               const torch::stable::Tensor& expand1x1_weight,
                               const torch::stable::Tensor& expand3x3_weight, int64_t cin = -1) {
  CHECK_DIM(x, 4);
  CHECK_FLOATING(x);
  CHECK_DIM(squeeze_weight, 4);
  CHECK_DIM(expand1x1_weight, 4);
  CHECK_DIM(expand3x3_weight, 4);
  const int64_t Cin = cin < 0 ? x.size(1) : cin, S = squeeze_weight.size(0), E1 = expand1x1_weight.size(0);
  const int64_t E3 = expand3x3_weight.size(0);
  FF_CHECK(S >= 1 && E1 >= 1 && E3 >= 1, "S, E1 and E3 must be >= 1, got ", S, ", ", E1, ", ", E3);
  CHECK_SHAPE(squeeze_weight, S, Cin, 1, 1);
  CHECK_SHAPE(expand1x1_weight, E1, S, 1, 1);
  CHECK_SHAPE(expand3x3_weight, E3, S, 3, 3);
  CHECK_LIKE(squeeze_weight, x);
  CHECK_LIKE(expand1x1_weight, x);
  CHECK_LIKE(expand3x3_weight, x);
}

}  // namespace fusedfire
