// The layout of everything a Fire call derives from x, once for both extensions (fusedfire._layout.memory_format's
// rule): channels_last where x's channel stride is 1 and that is not also NCHW (C = 1 or H·W = 1 are ambiguous and
// stay NCHW), else contiguous NCHW.
#pragma once
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/MemoryFormat.h>

namespace fusedfire {

inline torch::headeronly::MemoryFormat memory_format(const torch::stable::Tensor& x) {
  const int64_t C = x.size(1), HW = x.size(2) * x.size(3);
  return x.stride(1) == 1 && C > 1 && HW > 1 ? torch::headeronly::MemoryFormat::ChannelsLast
                                             : torch::headeronly::MemoryFormat::Contiguous;
}

}  // namespace fusedfire
