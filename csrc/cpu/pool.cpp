// Max pooling of a channels_last fp32 tensor (square kernel and stride, no padding), rows of pooled pixels taken by
// the threads, each by k.max_pool_row; out from kept blocks (out_blocks.h). optimize's max pools that no Fire's call
// takes (fire.h Packed: a pool right after a Fire runs in that Fire's call).
// NOTE: (EPYC, AVX-512, 2 threads) against ATen's channels_last max_pool2d (which also writes indices): alone, hot
// caches, 0.33-0.67× the time (128×55×55 at N=1: 32 against 70 µs; 512×27×27 at N=8: 191 against 576); optimize's
// whole network (interleaved, paired medians) 0.97-0.98× at N=1, 0.98-0.99× at N=8.
#include "bands.h"
#include "fire.h"
#include "out_blocks.h"

namespace fusedfire_cpu {

Tensor max_pool(const Tensor& x, int64_t kernel, int64_t stride, bool ceil_mode, const Kernels& k) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t PH = pooled_size(H, kernel, stride, ceil_mode), PW = pooled_size(W, kernel, stride, ceil_mode);
  Tensor out = kept_empty(N, C, PH, PW, torch::headeronly::MemoryFormat::ChannelsLast);
  if (out.numel() == 0) return out;
  const float* X = x.const_data_ptr<float>();
  float* O = out.mutable_data_ptr<float>();
  const int64_t chunks = std::min<int64_t>(PH, std::max<int64_t>(1, 4 * num_threads() / std::max<int64_t>(N, 1)));
  parallel_items(N * chunks, [&](auto take) {
    for (int64_t item; (item = take()) >= 0;) {
      const int64_t n = item / chunks, chunk = item % chunks;
      for (int64_t r = PH * chunk / chunks; r < PH * (chunk + 1) / chunks; ++r)
        pool_row(k, r, kernel, stride, H, W, C, PW, [&](int64_t i) { return X + (n * H + i) * W * C; },
                 O + (n * PH + r) * PW * C);
    }
  });
  return out;
}

}  // namespace fusedfire_cpu
