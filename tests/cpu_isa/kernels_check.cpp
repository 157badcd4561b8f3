// The vector kernels of csrc/cpu (kernels.h) on their own, torch-free: every ISA table this CPU runs against plain
// scalar references, and against the baseline table bit for bit. Built and run by tests/test_cpu_isa.py for this
// machine and, where Debian's cross compiler and qemu-user are installed, for aarch64 (NEON) under qemu.
// Prints one "ok <isa>" line per table; any mismatch prints what and where, and the exit code is 1.
// `kernels_check planted`: the test of this test, on the baseline table with a relu and a max pooling that drop
// NaN, a copy that loses one element, a Winograd weight gradient transform, a fused F(4×4, 3×3) expand and a 1×1
// convolution each off by 10⁻³ of its value at one element, a max pooling missing each window's last column and a
// summed 1×1 convolution missing its last pixel: exit code 0 only if all eight are caught. The own GEMMs
// (Winograd's, the 1×1 convolution's) use FMA where the ISA has it (not on SSE2), so what passes through them is held
// to the references alone, not to the baseline's bits. Which tables the CPU runs: csrc/cpu/dispatch.cpp, as in the
// extension.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../../csrc/cpu/kernels.h"

using namespace fusedfire_cpu;
#if defined(__aarch64__) || defined(__clang__)
using half_t = __fp16;  // the compiler's IEEE fp16, the reference of the conversions
#else
using half_t = _Float16;
#endif

static int failures = 0;
#define EXPECT(cond, ...)                                 \
  do {                                                    \
    if (!(cond) && ++failures <= 10) {  /* the first 10 */ \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
      std::printf(__VA_ARGS__);                           \
      std::printf("\n");                                  \
    }                                                     \
  } while (0)

static std::mt19937 rng(1234);
static std::vector<float> randn(size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}
static bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
static float relu_ref(float v) { return v < 0.f ? 0.f : v; }

// Every kernel's output on fixed inputs, flattened: compared against the references here and across ISAs.
static std::vector<float> run_all(const Kernels& k, const char* name) {
  rng.seed(1234);  // the same inputs for every ISA
  std::vector<float> all;
  // ---- conv1x1: M = 23 (a partial last vector), pixel groups with a tail, src pixel-major and channel-major, dst
  // with a pixel stride past M (its gaps untouched); against a double reference (FMA where the ISA has it: not
  // bit-compared with the baseline)
  for (const bool pixel_major : {true, false}) {
    const int64_t M = 23, P = 29, K = 13, lda = (M + k.lanes - 1) / k.lanes * k.lanes, ldd = 31;
    const std::vector<float> w = randn(M * K), b = randn(M), src = randn(P * K);
    std::vector<float> A((K + 1) * lda, 0.f), dst(P * ldd, -7.f);
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t c = 0; c < K; ++c) A[c * lda + m] = w[m * K + c];
      A[K * lda + m] = b[m];
    }
    const int64_t sp = pixel_major ? K : 1, sc = pixel_major ? 1 : P;
    k.conv1x1(M, P, K, A.data(), lda, src.data(), sp, sc, A.data() + K * lda, dst.data(), ldd, false, 1, 0);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t m = 0; m < ldd; ++m) {
        double acc = m < M ? b[m] : -7.0;
        for (int64_t c = 0; m < M && c < K; ++c) acc += double(w[m * K + c]) * src[p * sp + c * sc];
        const float want = m < M && acc < 0 ? 0.f : float(acc), got = dst[p * ldd + m];
        EXPECT(std::fabs(got - want) <= 1e-5f * (1 + std::fabs(want)), "%s conv1x1 (pixel %ld, channel %ld): %g, "
               "want %g", name, long(p), long(m), got, want);
      }
    // conv1x1_sum: the same, summed over the pixels onto what sums held (its padding lanes get zeros)
    std::vector<float> sums(lda, 0.5f);
    k.conv1x1_sum(M, P, K, A.data(), lda, src.data(), sp, sc, A.data() + K * lda, sums.data());
    for (int64_t m = 0; m < lda; ++m) {
      double want = 0.5, scale = 1;
      for (int64_t p = 0; m < M && p < P; ++p) {
        double acc = b[m];
        for (int64_t c = 0; c < K; ++c) acc += double(w[m * K + c]) * src[p * sp + c * sc];
        want += acc < 0 ? 0 : acc, scale += std::fabs(acc);
      }
      EXPECT(std::fabs(sums[m] - want) <= 1e-5 * scale, "%s conv1x1_sum (channel %ld): %g, want %g", name, long(m),
             sums[m], want);
    }
  }
  // ---- conv1x1 over segments (the stem's kernel rows read in place): K = 3 runs of 4 inputs, ss apart
  {
    const int64_t M = 23, P = 29, segs = 3, Ks = 4, K = segs * Ks, ss = P * Ks + 5, lda = (M + k.lanes - 1) /
        k.lanes * k.lanes;
    const std::vector<float> w = randn(M * K), b = randn(M), src = randn(segs * ss);
    std::vector<float> A((K + 1) * lda, 0.f), dst(P * M);
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t c = 0; c < K; ++c) A[c * lda + m] = w[m * K + c];
      A[K * lda + m] = b[m];
    }
    k.conv1x1(M, P, K, A.data(), lda, src.data(), Ks, 1, A.data() + K * lda, dst.data(), M, false, segs, ss);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t m = 0; m < M; ++m) {
        double acc = b[m];
        for (int64_t c = 0; c < K; ++c) acc += double(w[m * K + c]) * src[p * Ks + c / Ks * ss + c % Ks];
        const float want = acc < 0 ? 0.f : float(acc), got = dst[p * M + m];
        EXPECT(std::fabs(got - want) <= 1e-5f * (1 + std::fabs(want)), "%s conv1x1 segments (pixel %ld, channel "
               "%ld): %g, want %g", name, long(p), long(m), got, want);
      }
  }
  // ---- bias_relu: channel-major and pixel-major, odd sizes, NaN/inf in, streamed from an unaligned start
  for (const bool channel_major : {true, false})
    for (const bool stream : {false, true}) {
      const int64_t rows = 7, cols = 53;
      std::vector<float> src = randn(rows * cols), bias = randn(rows * cols + 1);
      src[3] = NAN, src[40] = INFINITY, src[77] = -INFINITY, bias[2] = NAN;
      std::vector<float> dst(rows * cols + 16, -1.f);
      float* d = dst.data() + 1;  // unaligned
      const int64_t srs = channel_major ? cols : 1, scs = channel_major ? 1 : rows;
      k.bias_relu(rows, cols, src.data(), srs, scs, bias.data(), d, srs, scs, stream);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float want = relu_ref(src[i * srs + j * scs] + bias[i]), got = d[i * srs + j * scs];
          EXPECT(same(got, want), "%s bias_relu cm=%d stream=%d (%ld, %ld): %g, want %g", name, channel_major, stream,
                 long(i), long(j), got, want);
        }
      EXPECT(dst[0] == -1.f && dst[rows * cols + 1] == -1.f, "%s bias_relu wrote outside", name);
      all.insert(all.end(), dst.begin(), dst.end());
    }
  // ---- copy: every orientation, sizes that leave partial blocks
  for (int o = 0; o < 4; ++o) {
    const int64_t rows = 19, cols = 23;
    const std::vector<float> src = randn(rows * cols);
    std::vector<float> dst(rows * cols, 0.f);
    const int64_t srs = o & 1 ? 1 : cols, scs = o & 1 ? rows : 1, drs = o & 2 ? 1 : cols, dcs = o & 2 ? rows : 1;
    k.copy(rows, cols, src.data(), srs, scs, dst.data(), drs, dcs);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        EXPECT(dst[i * drs + j * dcs] == src[i * srs + j * scs], "%s copy orientation %d (%ld, %ld)", name, o,
               long(i), long(j));
    all.insert(all.end(), dst.begin(), dst.end());
  }
  // ---- max_pool_row: M = 23 (a partial last vector), the last window clipped at the right edge, NaN and -inf in;
  // then blocks of channels (M = 600) and of columns (W = 300), windows with gaps (stride > kernel), a kernel of 8
  {
    struct Case { int64_t M, W, nr, kernel, stride; };
    for (const Case c : {Case{23, 10, 3, 3, 2}, Case{600, 17, 2, 3, 2}, Case{16, 300, 3, 2, 3}, Case{5, 41, 8, 8, 1}}) {
      const int64_t M = c.M, W = c.W, nr = c.nr, kernel = c.kernel, stride = c.stride;
      const int64_t Q = (W - 1) / stride + 1;  // the last window clipped where it passes W
      std::vector<float> in = randn(nr * W * M);
      in[5] = NAN, in[W * M + 3 * M + 4] = NAN, in[(nr - 1) * W * M + (W - 1) * M + M - 1] = -INFINITY;
      for (int64_t i = 0; i < W * M; ++i) in[(nr - 1) * W * M + i] -= 10.f * (i % 3 == 0);  // ties, lows
      std::vector<const float*> rows;
      for (int64_t r = 0; r < nr; ++r) rows.push_back(in.data() + r * W * M);
      std::vector<float> dst(Q * M + 1, -7.f);
      k.max_pool_row(M, W, Q, kernel, stride, rows.data(), nr, dst.data());
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t e = 0; e < M; ++e) {
          float want = -INFINITY;
          for (int64_t r = 0; r < nr; ++r)
            for (int64_t j = q * stride; j < std::min(q * stride + kernel, W); ++j) {
              const float v = rows[r][j * M + e];
              want = std::isnan(want) || v < want ? want : v;  // NaN wins
            }
          EXPECT(same(dst[q * M + e], want), "%s max_pool_row M=%ld W=%ld (%ld, %ld): %g, want %g", name, long(M),
                 long(W), long(q), long(e), dst[q * M + e], want);
        }
      EXPECT(dst[Q * M] == -7.f, "%s max_pool_row M=%ld wrote outside", name, long(M));
      all.insert(all.end(), dst.begin(), dst.end());
    }
  }
  // ---- 16-bit conversions: every fp16 bit pattern, bf16 patterns and rounding ties, NaN and inf
  {
    const int64_t n = 65536;
    std::vector<uint16_t> bits(n);
    for (int64_t i = 0; i < n; ++i) bits[i] = uint16_t(i);
    for (const int bf16 : {0, 1}) {
      std::vector<float> wide(n);
      k.widen[bf16](bits.data(), wide.data(), n);
      std::vector<uint16_t> back(n);
      k.narrow[bf16](wide.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        float want;
        if (bf16) {
          const uint32_t w = uint32_t(i) << 16;
          std::memcpy(&want, &w, 4);
        } else {
          half_t h;
          std::memcpy(&h, &bits[i], 2);
          want = float(h);
        }
        EXPECT(same(wide[i], want), "%s widen[%d] of 0x%04x: %g, want %g", name, bf16, unsigned(i), wide[i], want);
        EXPECT(back[i] == bits[i] || (std::isnan(wide[i]) && std::isnan(wide[i])), "%s narrow[%d] round trip 0x%04x",
               name, bf16, unsigned(i));
      }
      all.insert(all.end(), wide.begin(), wide.end());
    }
    std::vector<float> f = randn(1001);
    f[5] = NAN, f[6] = INFINITY, f[7] = 65520.f, f[8] = 1e-8f, f[9] = -0.f;
    for (const int bf16 : {0, 1}) {
      std::vector<uint16_t> h(f.size());
      k.narrow[bf16](f.data(), h.data(), int64_t(f.size()));
      for (size_t i = 0; i < f.size(); ++i) {
        uint16_t want;
        if (bf16) {
          uint32_t w;
          std::memcpy(&w, &f[i], 4);
          want = std::isnan(f[i]) ? 0x7FC0 : uint16_t((w + ((w >> 16) & 1u) + 0x7FFFu) >> 16);
        } else {
          const half_t v = half_t(f[i]);
          std::memcpy(&want, &v, 2);
        }
        EXPECT(h[i] == want || (std::isnan(f[i]) && (h[i] & 0x7fff) > (bf16 ? 0x7f80 : 0x7c00)),
               "%s narrow[%d] of %.9g: 0x%04x, want 0x%04x", name, bf16, f[i], h[i], want);
        all.push_back(float(h[i]));
      }
    }
  }
  // ---- finite
  {
    std::vector<float> v = randn(9 * 37);
    EXPECT(k.finite(9, 35, v.data(), 37), "%s finite: finite values", name);
    for (const float bad : {NAN, INFINITY, -INFINITY}) {
      v[8 * 37 + 34] = bad;
      EXPECT(!k.finite(9, 35, v.data(), 37), "%s finite missed %g in the last element", name, bad);
      EXPECT(k.finite(8, 37, v.data(), 37), "%s finite looked past its rows", name);
      v[8 * 37 + 34] = 0.f;
    }
    v[36] = NAN;  // past the 35 columns of row 0
    EXPECT(k.finite(9, 35, v.data(), 37), "%s finite looked past its columns", name);
  }
  // ---- Winograd F(4×4, 3×3) against a direct 3×3 convolution, 2 tile rows (one partial) and a partial last tile
  // column: the forward's weight and input transforms and fused GEMMs + output transform + bias + ReLU; the
  // backward's weight gradient Gᵀ[Σ_t (A gy Aᵀ) ⊙ V_t]G and grad_s (the forward's kernels on the output gradient gy
  // with the flipped, transposed kernels, plain output). The transforms are bit-compared across ISAs; what passed
  // through the GEMMs (FMA where the ISA has it) is held to the references alone.
  {
    const int64_t S = 16, E = 48, W = 7, rows = 5, TW = (W + 3) / 4, TH = (rows + 3) / 4, T = TH * TW, n = E * S;
    const std::vector<float> g = randn(E * S * 9), bias = randn(E), band = randn(rows * W * S), gy = randn(rows * W * E);
    // pixel-major, row i = image row i - 1, zero rows around: s (the band's input) and gy padded alike
    std::vector<float> s((4 * TH + 2) * W * S, 0.f), gpad((4 * TH + 2) * W * E, 0.f);
    std::copy(band.begin(), band.end(), s.begin() + W * S);
    std::copy(gy.begin(), gy.end(), gpad.begin() + W * E);
    auto near = [](double got, double want) { return std::fabs(got - want) <= 1e-4 * (1 + std::fabs(want)); };

    std::vector<float> taps(9 * n), U(36 * n), V(36 * T * S), out(rows * W * E, -1.f);
    for (int64_t e = 0; e < E; ++e)  // the taps of kernel c·E + e (input c, output e): [tap][c·E + e]
      for (int64_t c = 0; c < S; ++c)
        for (int tap = 0; tap < 9; ++tap) taps[tap * n + c * E + e] = g[(e * S + c) * 9 + tap];
    k.winograd4_weights(taps.data(), E, S, U.data(), 0, n);
    k.winograd4_input(S, W, TW, 0, TH, s.data(), S, V.data(), T * S);
    for (const int64_t ea : {0, 16, 32})  // ranges of output channels, as a split expand (forward.cpp) runs them
      k.winograd4_expand(S, E, ea, ea + 16, W, TW, TH, rows, V.data(), T * S, U.data(), bias.data(), out.data(), E,
                         false);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t e = 0; e < E; ++e) {
          double acc = bias[e];
          for (int64_t c = 0; c < S; ++c)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int64_t wx = w + kx - 1;
                if (wx >= 0 && wx < W) acc += double(g[(e * S + c) * 9 + ky * 3 + kx]) * s[((r + ky) * W + wx) * S + c];
              }
          const double want = acc < 0 ? 0 : acc, got = out[(r * W + w) * E + e];
          EXPECT(near(got, want), "%s winograd4 (%ld, %ld, %ld): %g, want %g", name, long(r), long(w), long(e), got,
                 want);
        }

    std::vector<float> Gh(36 * T * E), dU(36 * n, 0.f), dg(9 * n);
    k.winograd4_grad_output(E, W, TW, TH, rows, gy.data(), E, Gh.data(), T * E);
    k.winograd4_grad_weights(S, E, T, Gh.data(), T * E, V.data(), T * S, dU.data());
    k.winograd4_weight_grad(dU.data(), n, dg.data(), 0, n);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t c = 0; c < S; ++c)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            double want = 0;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t w = 0; w < W; ++w) {
                const int64_t wx = w + kx - 1;
                if (wx >= 0 && wx < W) want += double(gy[(r * W + w) * E + e]) * s[((r + ky) * W + wx) * S + c];
              }
            const float got = dg[(ky * 3 + kx) * n + c * E + e];
            EXPECT(near(got, want), "%s winograd4 weight grad (%ld, %ld, %d, %d): %g, want %g", name, long(e), long(c),
                   ky, kx, got, want);
          }

    std::vector<float> ftaps(9 * n), Uf(36 * n), Vg(36 * T * E), gs(rows * W * S, -1.f);
    for (int64_t e = 0; e < E; ++e)  // kernel (c, e): w3's (e, c) turned by 180°, [tap][e·S + c]
      for (int64_t c = 0; c < S; ++c)
        for (int tap = 0; tap < 9; ++tap) ftaps[tap * n + e * S + c] = g[(e * S + c) * 9 + 8 - tap];
    k.winograd4_weights(ftaps.data(), S, E, Uf.data(), 0, n);
    k.winograd4_input(E, W, TW, 0, TH, gpad.data(), E, Vg.data(), T * E);
    k.winograd4_expand(E, S, 0, S, W, TW, TH, rows, Vg.data(), T * E, Uf.data(), nullptr, gs.data(), S, false);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t c = 0; c < S; ++c) {
          double want = 0;
          for (int64_t e = 0; e < E; ++e)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int64_t ry = r - ky + 1, wx = w - kx + 1;
                if (ry >= 0 && ry < rows && wx >= 0 && wx < W)
                  want += double(g[(e * S + c) * 9 + ky * 3 + kx]) * gy[(ry * W + wx) * E + e];
              }
          const float got = gs[(r * W + w) * S + c];
          EXPECT(near(got, want), "%s winograd4 grad_s (%ld, %ld, %ld): %g, want %g", name, long(r), long(w), long(c),
                 got, want);
        }
    for (const std::vector<float>* v : {&U, &V, &Gh, &Uf, &Vg}) all.insert(all.end(), v->begin(), v->end());
  }
  return all;
}

// ---- planted bugs (see the header)
static const Kernels* real;
static void relu_drops_nan(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, const float* bias,
                           float* dst, int64_t drs, int64_t dcs, bool stream) {
  real->bias_relu(rows, cols, src, srs, scs, bias, dst, drs, dcs, stream);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      if (std::isnan(dst[i * drs + j * dcs])) dst[i * drs + j * dcs] = 0.f;
}
static void copy_loses_one(int64_t rows, int64_t cols, const float* src, int64_t srs, int64_t scs, float* dst,
                           int64_t drs, int64_t dcs) {
  real->copy(rows, cols, src, srs, scs, dst, drs, dcs);
  dst[(rows - 1) * drs + (cols - 1) * dcs] = 0.f;
}
static void weight_grad_off(const float* dU, int64_t n, float* dg, int64_t i0, int64_t i1) {
  real->winograd4_weight_grad(dU, n, dg, i0, i1);
  dg[n + 1] += 1e-3f * (1 + std::fabs(dg[n + 1]));  // past the checks' relative 1e-4
}

static void expand_off(int64_t S, int64_t E, int64_t ea, int64_t eb, int64_t W, int64_t TW, int64_t tiles,
                       int64_t rows, const float* V, int64_t ldv, const float* U, const float* bias, float* dst,
                       int64_t ldp, bool stream) {
  real->winograd4_expand(S, E, ea, eb, W, TW, tiles, rows, V, ldv, U, bias, dst, ldp, stream);
  dst[ldp + 1] += 1e-3f * (1 + std::fabs(dst[ldp + 1]));  // past the checks' relative 1e-4
}

static void conv1x1_off(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src, int64_t sp,
                        int64_t sc, const float* bias, float* dst, int64_t ldd, bool stream, int64_t segs,
                        int64_t ss) {
  real->conv1x1(M, P, K, A, lda, src, sp, sc, bias, dst, ldd, stream, segs, ss);
  dst[ldd + 1] += 1e-3f * (1 + std::fabs(dst[ldd + 1]));
}

static void conv1x1_sum_off(int64_t M, int64_t P, int64_t K, const float* A, int64_t lda, const float* src,
                            int64_t sp, int64_t sc, const float* bias, float* sums) {
  real->conv1x1_sum(M, P - 1, K, A, lda, src, sp, sc, bias, sums);  // the last pixel left out
}

static void max_pool_drops_nan(int64_t M, int64_t W, int64_t Q, int64_t kernel, int64_t stride,
                               const float* const* rows, int64_t nr, float* dst) {
  real->max_pool_row(M, W, Q, kernel, stride, rows, nr, dst);
  for (int64_t i = 0; i < Q * M; ++i)
    if (std::isnan(dst[i])) dst[i] = 0.f;
}

static void max_pool_short_window(int64_t M, int64_t W, int64_t Q, int64_t kernel, int64_t stride,
                                  const float* const* rows, int64_t nr, float* dst) {
  real->max_pool_row(M, W, Q, kernel > 1 ? kernel - 1 : kernel, stride, rows, nr, dst);  // a window's last column
}

static int planted() {
  real = kernels(Isa::baseline);
  int caught = 0;
  for (int bug = 0; bug < 8; ++bug) {
    Kernels k = *real;
    if (bug == 0) k.bias_relu = relu_drops_nan;
    if (bug == 1) k.copy = copy_loses_one;
    if (bug == 2) k.winograd4_weight_grad = weight_grad_off;
    if (bug == 3) k.winograd4_expand = expand_off;
    if (bug == 4) k.conv1x1 = conv1x1_off;
    if (bug == 5) k.max_pool_row = max_pool_drops_nan;
    if (bug == 6) k.max_pool_row = max_pool_short_window;
    if (bug == 7) k.conv1x1_sum = conv1x1_sum_off;
    failures = 0;
    run_all(k, "planted");
    caught += failures > 0;
    std::printf("planted bug %d: %d failures\n", bug, failures);
  }
  return caught == 8 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "planted") == 0) return planted();
  const std::vector<float> base = run_all(*kernels(Isa::baseline), "baseline");
  std::printf("ok baseline (%d lanes)\n", kernels(Isa::baseline)->lanes);
  for (const Isa isa : {Isa::avx2, Isa::avx512}) {
    const Kernels* k = kernels(isa);  // null where this build or CPU lacks it
    if (!k) continue;
    const std::vector<float> got = run_all(*k, isa_name(isa));
    EXPECT(got.size() == base.size(), "%s: %zu outputs, baseline %zu", isa_name(isa), got.size(), base.size());
    for (size_t i = 0; i < got.size() && i < base.size(); ++i)
      if (!same(got[i], base[i]) || std::signbit(got[i]) != std::signbit(base[i])) {
        EXPECT(false, "%s differs from baseline at output %zu: %g against %g", isa_name(isa), i, got[i], base[i]);
        break;
      }
    std::printf("ok %s (%d lanes)\n", isa_name(isa), k->lanes);
  }
  if (failures) std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
