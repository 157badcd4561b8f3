// SqueezeNet's classifier, fused: out[n][m] = mean over x's pixels of relu(conv1x1(x, weight) + bias), fp32, out
// (N, M, 1, 1). Work items are (image, range of output channels), each summed by k.conv1x1_sum in registers: the
// conv's output (M × pixels, 2× x at 512→1000) never goes through memory.
// NOTE: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved, paired medians, against oneDNN's linear
// with a fused ReLU, then the pixel sum: squeezenet1_1 0.93× / 0.91× the time at N=1 (two runs), 0.97× at N=8;
// squeezenet1_0 0.96× at N=1, 0.98× at N=8. Alone, hot: 798 against 926 µs at N=1, 6.50 against 7.32 ms at N=8.
#include "bands.h"
#include "fire.h"

namespace fusedfire_cpu {

Tensor classifier(const Tensor& x, const Padded1x1& conv, const Kernels& k) {
  const int64_t N = x.size(0), C = x.size(1), P = x.size(2) * x.size(3), M = conv.M;
  Tensor out = torch::stable::empty({N, M, 1, 1}, ScalarType::Float);
  if (out.numel() == 0) return out;
  const int64_t sp = pixel_stride(x), sc = x.stride(1);
  const float* X = x.const_data_ptr<float>();
  float* O = out.mutable_data_ptr<float>();
  // with fewer images than threads, each image's channels split so that every thread gets the same share (as
  // row_chunks splits rows), in units of 2 × 16 channels (the kernels' register block on every ISA)
  const int64_t unit = 2 * kPadLanes, units = (M + unit - 1) / unit;
  const int64_t chunks = row_chunks(N, units, num_threads());
  parallel_items(N * chunks, [&](auto take) {
    Fresh fresh;
    float* sums = thread_scratch<float>(conv.ld(), fresh);
    for (int64_t item; (item = take()) >= 0;) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t e0 = units * chunk / chunks * unit, e1 = std::min(M, units * (chunk + 1) / chunks * unit);
      std::fill(sums + e0, sums + (e1 + kPadLanes - 1) / kPadLanes * kPadLanes, 0.f);
      k.conv1x1_sum(e1 - e0, P, C, conv.w + e0, conv.ld(), X + n * x.stride(0), sp, sc, conv.bias() + e0, sums + e0);
      for (int64_t e = e0; e < e1; ++e) O[n * M + e] = sums[e] / float(P);
    }
  });
  return out;
}

}  // namespace fusedfire_cpu
