// The dtypes the Fire kernels compute (fp32 accumulation for the 16-bit ones), and the switch that instantiates a
// kernel for each: `scalar_t` inside the body is the C++ type (Half and BFloat16 are torch's header-only types).
#pragma once
#include <torch/headeronly/core/Dispatch.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

namespace fusedfire {

inline bool is_fire_dtype(torch::headeronly::ScalarType t) {
  using torch::headeronly::ScalarType;
  return t == ScalarType::Half || t == ScalarType::BFloat16 || t == ScalarType::Float || t == ScalarType::Double;
}

}  // namespace fusedfire

// AT_DISPATCH_FLOATING_TYPES_AND2(kHalf, kBFloat16, ...) on the stable ABI's header-only switch.
#define FF_DISPATCH_FLOATING(TYPE, NAME, ...)                                                 \
  THO_DISPATCH_SWITCH(TYPE, NAME,                                                             \
                      THO_DISPATCH_CASE(torch::headeronly::ScalarType::Double, __VA_ARGS__)   \
                      THO_DISPATCH_CASE(torch::headeronly::ScalarType::Float, __VA_ARGS__)    \
                      THO_DISPATCH_CASE(torch::headeronly::ScalarType::Half, __VA_ARGS__)     \
                      THO_DISPATCH_CASE(torch::headeronly::ScalarType::BFloat16, __VA_ARGS__))
