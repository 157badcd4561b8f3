// The stem of a SqueezeNet, fused: out = max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool_kernel,
// pool_stride, ceil_mode), square kernels and strides, fp32, out channels_last. Per image and chunk of pooled rows:
//
//   col[OW][K·K·C]   = the patches of one conv row (im2col, (kh, kw, c) order), except where a channels_last x's
//                      patches are K runs of K·C floats in place (every pixel of an unpadded conv)
//   row[OW][M]       = relu(A · col + bias)                      k.conv1x1, into a ring of pool_kernel conv rows
//   out[r][PW][M]    = max over the pooled row's conv rows       k.max_pool_row
//
// so the conv's output (4× the pooled one) never goes through memory; with the next Fire's squeeze (next), each
// pooled row goes to a row buffer and out[r] is its squeeze (k.conv1x1), that Fire's s.
// NOTE: (EPYC, AVX-512) optimize's whole network with this stem against conv (oneDNN), pool, ReLU (2 threads,
// interleaved, paired medians): squeezenet1_1 0.92× the time at N=1, 0.95× at N=8; squeezenet1_0 0.97× at N=1,
// 0.88× and 1.05× at N=8 (two runs). The stem alone (1 thread, hot caches): 639 µs for squeezenet1_1's at N=1, 61%
// in k.conv1x1 (~87 GFLOP/s), 20% im2col (k.copy's short rows; since read in place: conv_row), 13% pooling.
#include "bands.h"
#include "fire.h"
#include "out_blocks.h"
#include "pack.h"

namespace fusedfire_cpu {

int64_t pooled_size(int64_t size, int64_t kernel, int64_t stride, bool ceil_mode) {
  int64_t out = (size - kernel + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= size) --out;
  return out;
}

Tensor stem(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
            int64_t pool_kernel, int64_t pool_stride, bool ceil_mode, const Padded1x1& next, const Kernels& k) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t M = weight.size(0), K = weight.size(2), KC = K * C, KKC = K * KC;
  const int64_t OH = (H + 2 * padding - K) / stride + 1, OW = (W + 2 * padding - K) / stride + 1;
  const int64_t PH = pooled_size(OH, pool_kernel, pool_stride, ceil_mode);
  const int64_t PW = pooled_size(OW, pool_kernel, pool_stride, ceil_mode);
  const int64_t OC = next.w ? next.M : M;  // out's channels
  Tensor out = kept_empty(N, OC, PH, PW, torch::headeronly::MemoryFormat::ChannelsLast);  // out_blocks.h
  if (out.numel() == 0) return out;

  // The weight as k.conv1x1 reads it (Padded1x1): A[(kh·K + kw)·C + c][m] (rows padded), the bias as row K·K·C.
  const int64_t lda = padded(M);
  Fresh a_fresh;
  float* A = thread_scratch<float, 3>((KKC + 1) * lda, a_fresh);
  const Padded1x1 conv{A, M, KKC};
  std::fill_n(A, (KKC + 1) * lda, 0.f);
  {
    const Tensor w = dense(weight);
    const float* Wp = w.const_data_ptr<float>();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < K * K; ++t) A[(t * C + c) * lda + m] = Wp[(m * C + c) * K * K + t];
    const Tensor b = dense(bias);
    std::copy_n(b.const_data_ptr<float>(), M, A + KKC * lda);
  }

  const float* X = x.const_data_ptr<float>();
  const int64_t xN = x.stride(0), xC = x.stride(1), xH = x.stride(2), xW = x.stride(3);
  const bool runs = xC == 1 && xW == C;  // channels_last: a patch row's K·C values are contiguous in x
  // the conv's pixels [in0, in1) whose patch rows lie inside the image's columns
  const int64_t in0 = std::min(OW, (padding + stride - 1) / stride);
  const int64_t in1 = std::max(in0, std::min(OW, (W + padding - K) / stride + 1));
  float* O = out.mutable_data_ptr<float>();
  const int64_t chunks = row_chunks(N, PH, num_threads());

  parallel_items(N * chunks, [&](auto take) {
    Fresh fresh;
    float* col = thread_scratch<float>(OW * KKC + pool_kernel * OW * M + (next.w ? PW * M : 0), fresh);
    float* ring = col + OW * KKC;  // conv row i in slot i % pool_kernel
    float* prow = ring + pool_kernel * OW * M;  // next: a pooled row, then squeezed into out
    for (int64_t item; (item = take()) >= 0;) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t r0 = PH * chunk / chunks, r1 = PH * (chunk + 1) / chunks;  // pooled rows [r0, r1)
      const float* Xn = X + n * xN;
      int64_t done = r0 * pool_stride;  // conv rows [first, done) are in the ring
      // the patches of conv row i's pixels [p0, p1) into col, zeros outside the image
      auto patches = [&](int64_t i, int64_t p0, int64_t p1) {
        for (int64_t kh = 0; kh < K; ++kh) {
          const int64_t h = i * stride - padding + kh;
          float* dst = col + kh * KC - p0 * KKC;  // pixel ow's patch at col + (ow - p0)·KKC
          if (h < 0 || h >= H) {
            for (int64_t ow = p0; ow < p1; ++ow) std::fill_n(dst + ow * KKC, KC, 0.f);
            continue;
          }
          const float* src = Xn + h * xH;
          const int64_t a = std::clamp(in0, p0, p1), b = std::clamp(in1, a, p1);  // rows of K·C copied
          if (runs) k.copy(b - a, KC, src + (a * stride - padding) * C, stride * C, 1, dst + a * KKC, KKC, 1);
          auto gather = [&](int64_t ow) {  // one patch row element by element, zeros outside the image
            for (int64_t kw = 0; kw < K; ++kw) {
              const int64_t w = ow * stride - padding + kw;
              for (int64_t c = 0; c < C; ++c)
                dst[ow * KKC + kw * C + c] = w < 0 || w >= W ? 0.f : src[w * xW + c * xC];
            }
          };
          for (int64_t ow = p0; ow < (runs ? a : p1); ++ow) gather(ow);
          for (int64_t ow = runs ? b : p1; ow < p1; ++ow) gather(ow);
        }
      };
      // conv row i's GEMM + bias + ReLU into the ring: the pixels whose patches lie inside a channels_last x read
      // them in place (K runs of K·C floats, xH apart), the others through col
      // NOTE: (EPYC, AVX-512) against every patch through col, hot, medians: the stem alone 0.93× the time
      // (squeezenet1_1's, N=1, 1 and 2 threads), 0.945× (squeezenet1_0's); optimize's whole network (2 threads,
      // interleaved, paired medians) 0.995× / 1.00× at N=1 (1_1 / 1_0), 0.99× / 0.98× at N=8.
      auto conv_row = [&](int64_t i) {
        float* dst = ring + (i % pool_kernel) * OW * M;
        const int64_t h0 = i * stride - padding;
        const bool inside = runs && h0 >= 0 && h0 + K <= H && in1 > in0;
        const int64_t a = inside ? in0 : OW, b = inside ? in1 : OW;  // pixels [a, b) in place
        if (inside)
          conv.run(k, b - a, Xn + h0 * xH + (a * stride - padding) * C, stride * C, 1, dst + a * M, M, false, K, xH);
        for (const auto& [p0, p1] : {std::pair{int64_t(0), a}, std::pair{b, OW}}) {
          if (p0 >= p1) continue;
          patches(i, p0, p1);
          conv.run(k, p1 - p0, col, KKC, 1, dst + p0 * M, M, false);
        }
      };
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t first = r * pool_stride, last = std::min(first + pool_kernel, OH);  // conv rows [first, last)
        for (int64_t i = std::max(first, done); i < last; ++i) conv_row(i);
        done = std::max(done, last);
        auto conv_out = [&](int64_t i) { return ring + (i % pool_kernel) * OW * M; };
        float* dst = O + (n * PH + r) * PW * OC;
        pool_row(k, r, pool_kernel, pool_stride, OH, OW, M, PW, conv_out, next.w ? prow : dst);
        // NOTE: the next Fire's squeeze here, as a Fire's (forward.cpp): (EPYC, AVX-512) optimize's whole network,
        // 2 threads, interleaved, paired medians, against the stem's out in memory: 0.98-1.00× the time at N=1 (two
        // runs each net), 0.98-0.99× at N=8.
        if (next.w) next.run(k, PW, prow, M, 1, dst, OC, false);
      }
    }
  });
  return out;
}

}  // namespace fusedfire_cpu
