// The elementwise kernels of the table (kernels.h), written once over Vec (vec.h) and compiled per ISA (isa.h):
// bias + ReLU epilogues, fp32 matrix copies and transposes, 16-bit conversions, a finiteness check.
#pragma once

namespace fusedfire_cpu::FF_ISA {

constexpr int64_t L = kLanes;

// Pixels (or Winograd tiles) per register block of the FMA GEMMs (conv1x1.h, winograd4.h): 2 vectors of output
// channels × kGroup of accumulators, 2 vectors of weights and one broadcast beside them.
// NOTE: (EPYC, AVX2 kernels, 1 thread) a 55×55 channels_last Fire (128→32→128+128, N=8): 6 (12 accumulators of 16
// registers) spilled two to the stack, 19.2 ms; 5: 15.8 ms; 4: 17.6 ms; the c loop unrolled by 4 on top: 16.0 ms.
constexpr int kGroup = kRegisters >= 32 ? 12 : 5;

// f(j0, nt) for each group of columns [j0, j0 + nt) when n columns go through gemm_block in groups of at most kGroup:
// as even as can be (111 pixels with kGroup 12: ten groups of 11-12, not nine of 12 and a tail of 3, whose few
// accumulators would wait on FMA latency while still reading the whole block of A).
// NOTE: (EPYC) optimize's whole network, 2 threads, interleaved, paired medians, against kGroup and a tail:
// AVX-512 0.984× / 0.988× the time (squeezenet1_1 N=1, two runs), 0.982× (1_0 N=1), 0.988× / 0.981× (1_1 / 1_0
// N=8); AVX2 0.986× (1_1 N=1), 1.00× (N=8). (Those runs split n by a rounded-up size, which left 111 as 9 × 12 + 3
// and 169 as 14 × 12 + 1; split by count, the stem's conv alone 0.93× the time (AVX-512, 1 thread, hot), the
// whole networks 1.00× (0.997×, 0.997×, 1.02×).)
template <typename F>
inline void for_groups(int64_t n, const F& f) {
  const int64_t groups = (n + kGroup - 1) / kGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t j0 = n * g / groups;
    f(j0, int(n * (g + 1) / groups - j0));
  }
}

// The register block of those GEMMs: acc[i][j] = Σ_{c < K} A[c·lda + i·L + lane] · B[j·bj + c·bc] for MR vectors i
// and NT columns j, accumulated in registers (FMA where the ISA has it, vec.h), then put(i, j, acc[i][j]). Over segs
// segments of K each where asked (the stem's kernel rows): then c < segs·K, segment s's B at B + s·bs.
template <int MR, int NT, typename Put>
inline void gemm_block(int64_t K, const float* A, int64_t lda, const float* B, int64_t bj, int64_t bc, const Put& put,
                       int64_t segs = 1, int64_t bs = 0) {
  if (K <= 0 || segs <= 0) {  // an empty sum
    for (int j = 0; j < NT; ++j)
      for (int i = 0; i < MR; ++i) put(i, j, zero());
    return;
  }
  Vec acc[MR][NT];
  for (auto& row : acc)
    for (Vec& a : row) a = zero();
  // NOTE: the loop over c runs at least once (do-while, the empty sum above): with a for loop GCC 13 moved the
  // accumulators through the stack after it. (EPYC, 1 thread, hot, k.conv1x1) AVX-512: the stem's conv (K = 27 in 3
  // segments, 111 pixels × 64 channels) 0.93× the time, a 16→64 expand 0.88×; AVX2 1.00×. The segments' loop a
  // do-while too: AVX2's stem conv 1.4×.
  for (int64_t s = 0; s < segs; ++s) {
    int64_t c = 0;
    do {
      Vec u[MR];
      for (int i = 0; i < MR; ++i) u[i] = load(A + c * lda + i * L);
      for (int j = 0; j < NT; ++j) {
        const Vec v = set1(B[j * bj + c * bc]);
        for (int i = 0; i < MR; ++i) acc[i][j] = mul_add(u[i], v, acc[i][j]);
      }
    } while (++c < K);
    A += K * lda, B += bs;
  }
  for (int j = 0; j < NT; ++j)
    for (int i = 0; i < MR; ++i) put(i, j, acc[i][j]);
}

// gemm_block for nt <= NT columns (a group's tail), MR = 1 or 2 vectors (mr)
template <int NT = kGroup, typename Put>
inline void gemm_block_n(int mr, int nt, int64_t K, const float* A, int64_t lda, const float* B, int64_t bj,
                         int64_t bc, const Put& put, int64_t segs = 1, int64_t bs = 0) {
  if constexpr (NT > 1) {
    if (nt < NT) return gemm_block_n<NT - 1>(mr, nt, K, A, lda, B, bj, bc, put, segs, bs);
  }
  if (mr == 2) {
    gemm_block<2, NT>(K, A, lda, B, bj, bc, put, segs, bs);
  } else {
    gemm_block<1, NT>(K, A, lda, B, bj, bc, put, segs, bs);
  }
}

// A 64-byte (or vector-size) boundary: where non-temporal stores may start.
inline bool aligned(const float* p) { return reinterpret_cast<uintptr_t>(p) % (L * sizeof(float)) == 0; }

// The first m <= L lanes; whole vectors where m = L (NOTE: unmasked loads and stores where they can be).
inline Vec load_first(const float* p, int m) { return m == L ? load(p) : load_n(p, m); }
inline void store_first(float* p, Vec v, int m) {
  if (m == L) {
    store(p, v);
  } else {
    store_n(p, v, m);
  }
}

// NOTE: vectors with a masked tail; the portable loop of the AVX-512-only code (SSE at this file's baseline
// flags, with runtime alias checks) took 11% of a 54×54 Fire's time (1_0.features.5, perf, one thread).
void bias_relu(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, const float* bias, float* dst,
               int64_t drs, int64_t dcs, bool stream) {
  const bool channel_major = scs == 1 && dcs == 1;  // else srs == drs == 1: pixel-major (channels_last)
  const int64_t outer = channel_major ? rows : cols, inner = channel_major ? cols : rows;
  const int64_t so = channel_major ? srs : scs, do_ = channel_major ? drs : dcs;
  stream = stream && kStreams;
  for (int64_t o = 0; o < outer; ++o) {
    const float* s = src + o * so;
    float* d = dst + o * do_;
    const Vec b = set1(channel_major ? bias[o] : 0.f);
    auto bias_at = [&](int64_t i) { return channel_major ? b : load(bias + i); };  // pixel-major: per lane
    int64_t i = 0;
    if (stream) {  // up to d's first aligned vector one float at a time, then whole aligned vectors
      for (; i < inner && !aligned(d + i); ++i) d[i] = relu(s[i] + (channel_major ? bias[o] : bias[i]));
      for (; i + L <= inner; i += L) FF_ISA::stream(d + i, relu(load(s + i) + bias_at(i)));
    }
    for (; i + L <= inner; i += L) store(d + i, relu(load(s + i) + bias_at(i)));
    if (i < inner) {
      const int n = int(inner - i);
      store_n(d + i, relu(load_n(s + i, n) + (channel_major ? b : load_n(bias + i, n))), n);
    }
  }
  if (stream) stream_fence();  // order the non-temporal stores before whatever reads out next
}

// dst[j·ldd + i] = src[i·lds + j] for i < rows ≤ L, j < cols ≤ L: one block through registers.
inline void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd, int rows, int cols) {
  Vec r[kLanes];
  for (int i = 0; i < L; ++i) r[i] = i < rows ? load_first(src + i * lds, cols) : zero();
  transpose(r);
  for (int j = 0; j < cols; ++j) store_first(dst + j * ldd, r[j], rows);
}

void copy(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, float* dst, int64_t drs,
          int64_t dcs) {
  if (scs == 1 && dcs == 1 && cols <= 2 * L) {  // short rows (the stem's patches): no memcpy call per row
    const int64_t full = cols / L * L;
    const int tail = int(cols - full);
    for (int64_t i = 0; i < rows; ++i) {
      const float* s = src + i * srs;
      float* d = dst + i * drs;
      for (int64_t j = 0; j < full; j += L) store(d + j, load(s + j));
      if (tail) store_n(d + full, load_n(s + full, tail), tail);
    }
  } else if (scs == 1 && dcs == 1) {
    for (int64_t i = 0; i < rows; ++i) std::memcpy(dst + i * drs, src + i * srs, cols * sizeof(float));
  } else if (srs == 1 && drs == 1) {
    for (int64_t j = 0; j < cols; ++j) std::memcpy(dst + j * dcs, src + j * scs, rows * sizeof(float));
  } else if (srs == 1 && dcs == 1) {  // src column-major: its columns j are contiguous over i
    for (int64_t j = 0; j < cols; j += L)
      for (int64_t i = 0; i < rows; i += L)
        transpose_block(src + j * scs + i, scs, dst + i * drs + j, drs, int(std::min(L, cols - j)),
                        int(std::min(L, rows - i)));
  } else if (scs == 1 && drs == 1) {
    for (int64_t i = 0; i < rows; i += L)
      for (int64_t j = 0; j < cols; j += L)
        transpose_block(src + i * srs + j, srs, dst + j * dcs + i, dcs, int(std::min(L, rows - i)),
                        int(std::min(L, cols - j)));
  } else {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) dst[i * drs + j * dcs] = src[i * srs + j * scs];
  }
}

// The last n % L values go through a stack buffer (masked 16-bit loads and stores are not in every ISA).
template <bool bf16>
void widen(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) store(dst + i, bf16 ? load_bf16(src + i) : load_half(src + i));
  if (i < n) {
    uint16_t tail[kLanes] = {};
    std::memcpy(tail, src + i, (n - i) * sizeof(uint16_t));
    store_n(dst + i, bf16 ? load_bf16(tail) : load_half(tail), int(n - i));
  }
}

template <bool bf16>
void narrow(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    if (bf16) {
      store_bf16(dst + i, load(src + i));
    } else {
      store_half(dst + i, load(src + i));
    }
  }
  if (i < n) {
    uint16_t tail[kLanes];
    const Vec v = load_n(src + i, int(n - i));
    if (bf16) {
      store_bf16(tail, v);
    } else {
      store_half(tail, v);
    }
    std::memcpy(dst + i, tail, (n - i) * sizeof(uint16_t));
  }
}

// v·0 is 0 for a finite v and NaN otherwise; the sum of them stays 0 until a NaN arrives.
bool finite(int64_t rows, int64_t cols, const float* p, int64_t ld) {
  Vec acc = zero();
  const Vec z = zero();
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = p + i * ld;
    int64_t j = 0;
    for (; j + L <= cols; j += L) acc = acc + load(r + j) * z;
    if (j < cols) acc = acc + load_n(r + j, int(cols - j)) * z;
  }
  float lanes[kLanes];
  store(lanes, acc);
  for (const float v : lanes)
    if (v != 0.f) return false;
  return true;
}

}  // namespace fusedfire_cpu::FF_ISA
