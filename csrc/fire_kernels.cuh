// Fire kernels (math and VJP: fusedfire/ops.py), torch-free: nvcc compiles this header into fusedfire._C
// (launchers: fire_cuda.cu) and g++ compiles the very same source for the CPU through tests/simt/simt.h,
// which runs every block's threads as fibers (tests/test_cuda_harness.py).
//
//   squeeze_kernel  y = act(a·Wᵀ + b)           s = relu(Wsq·x + bsq);  grad_x = Wsqᵀ·grad_s (transposed view)
//   expand_kernel   out[:, :E1] = relu(W1·s + b1),  out[:, E1:] = relu(W3 ⊛ s + b3)          (one launch)
//   fire_kernel     both of the above in one launch: the squeeze tile plus its 1-pixel halo lives in shared
//                   memory and feeds both expands; s never reaches global memory (inference, native_fire)
//   grad_s_kernel   grad_s = (W1ᵀ·G1 + W3ᵀ ⊛ᵀ G3) ⊙ (s > 0),  G = grad_out ⊙ (out > 0)     (one launch)
//   wgrad_kernel    partial[c, e, k, tap] = Σ_{p∈chunk c} G[p, e]·in[p + shift_tap, k],  partial_b[c, e] = Σ G
//   reduce_kernel   gW = Σ_c partial[c] in chunk order: deterministic weight gradients, no float atomics
//
// NOTE: every tile kernel has __launch_bounds__(128, 1): with (128) alone, nvcc 13's ptxas capped registers at
// 72-80 and spilled (fire_kernel fp16 sm_80: 24 B stores / 168 B loads; expand fp16 sm_90: 24 / 24), see
// tests/test_cuda_build.py for the budgets.
//
// Conventions (the same as the Triton kernels in fusedfire/triton/kernels.py):
// - Every activation is addressed through its four (n, c, h, w) strides: NCHW, channels_last, slices and 0-stride
//   (expanded) gradients share one path. Activation offsets are int64 (N·C·H·W may pass 2³¹); pixel indices
//   p = (n·H + h)·W + w are int32 (the launchers check N·H·W < 2³¹) and weight offsets int32 (checked too).
// - A block computes a BM×BN tile of a GEMM whose reduction runs over (tap, channel block of BK): A and B tiles
//   are staged in shared memory as [row][k] (k contiguous) in the operand type OpT and multiplied by
//   `tile_mma`: mma.sync tensor cores (fp16/bf16 m16n8k16, tf32 m16n8k8, fp32 accumulation) when TC and the
//   arch has them (sm_80+), else a scalar loop with the same per-lane accumulator layout (fp32 without tf32,
//   fp64 with fp64 accumulation).
// - Every shared-memory access goes through ff_ld / ff_st so that the CPU harness can shadow-track it per
//   barrier epoch (a missing __syncthreads is reported as a race); on the GPU they are plain loads/stores.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#ifdef FF_SIMT  // g++ through tests/simt/simt.h, which provides the CUDA vocabulary and the mma emulation
#ifndef FF_SIMT_H
#error "include tests/simt/simt.h before csrc/fire_kernels.cuh"
#endif
#define FF_HAS_MMA 1
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define FF_DEVICE __device__ __forceinline__
#define FF_SHARED(T, name, count) __shared__ T name[count]
#define FF_DYNAMIC_SHARED(T, name)                                   \
  extern __shared__ __align__(16) unsigned char ff_dynamic_smem[]; \
  T* name = reinterpret_cast<T*>(ff_dynamic_smem)
#define FF_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FF_HAS_MMA 1
#else
#define FF_HAS_MMA 0
#endif
template <class T>
FF_DEVICE T ff_ld(const T* p) { return *p; }
template <class T>
FF_DEVICE void ff_st(T* p, T v) { *p = v; }
#endif

// Planted bugs for the harness's own tests (tests/test_cuda_harness.py): never defined in a real build.
#ifndef FF_PLANT_NO_SYNC
#define FF_PLANT_NO_SYNC 0  // 1: drop the barrier between staging a tile and reading it (a race)
#endif
#ifndef FF_PLANT_OOB
#define FF_PLANT_OOB 0      // 1: the squeeze A loader reads one channel past the end (an out-of-bounds read)
#endif

namespace ff {

// ------------------------------------------------------------------------------------------- numbers

FF_DEVICE float to_f32(float v) { return v; }
FF_DEVICE float to_f32(double v) { return static_cast<float>(v); }
FF_DEVICE float to_f32(__half v) { return __half2float(v); }
FF_DEVICE float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// cvt<To>(v): value conversion with round-to-nearest-even; fp64 stays fp64.
template <class To, class From>
FF_DEVICE To cvt(From v) {
  if constexpr (std::is_same<To, From>::value) {
    return v;
  } else if constexpr (std::is_same<To, double>::value) {
    return static_cast<double>(to_f32(v));
  } else if constexpr (std::is_same<To, float>::value) {
    return to_f32(v);
  } else if constexpr (std::is_same<To, __half>::value) {
    return __float2half_rn(to_f32(v));
  } else {
    static_assert(std::is_same<To, __nv_bfloat16>::value, "unsupported type");
    return __float2bfloat16_rn(to_f32(v));
  }
}

template <class T>
struct Acc { using type = float; };  // accumulate in fp32 ...
template <>
struct Acc<double> { using type = double; };  // ... except for fp64 inputs

// --------------------------------------------------------------------------------------------- tiles

// A block of WM×WN warps computes a BM×BN tile; each warp a (MT·16)×(NT·8) piece as MT×NT m16n8 fragments.
template <int BM_, int BN_, int BK_, int WM_, int WN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WM = WM_, WN = WN_;
  static constexpr int THREADS = 32 * WM * WN;
  static constexpr int MT = BM / WM / 16, NT = BN / WN / 8;
  // NOTE: rows of BK + 8 elements: the 8 lanes that read one k-column of a fragment (rows g = 0..7) then fall in
  // distinct 4-byte banks for 16-bit operands (row pitch 48 B) and 32-bit ones (96 B = 24 banks apart).
  static constexpr int LD = BK + 8;
  static_assert(BM % (WM * 16) == 0 && BN % (WN * 8) == 0 && BK % 16 == 0, "bad tile");
};
using DefaultTile = Tile<64, 64, 16, 2, 2>;  // 128 threads; 32 fp32 accumulators per thread

// Fused Fire: a TH×TW interior tile (= BM pixels) and its squeeze halo of (TH+2)×(TW+2) pixels.
struct FusedTile {
  static constexpr int TH = 8, TW = 8, HH = TH + 2, HW = TW + 2, HP = HH * HW;
};

// ----------------------------------------------------------------------------------- mma.sync wrapper

// d = a·b + d for one m16n8 fragment (PTX ISA "Matrix Fragments for mma.m16n8k16 / m16n8k8"), g = lane / 4,
// t = lane % 4: A rows g and g + 8; B column g; C/D c0,c1 = (g, 2t), (g, 2t+1) and c2,c3 = (g+8, 2t), (g+8, 2t+1).
template <class OpT>
FF_DEVICE void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(FF_SIMT)
  ff_simt::mma_m16n8k16<OpT>(d, a, b);  // the harness's warp-collective emulation
#elif FF_HAS_MMA
  if constexpr (std::is_same<OpT, __half>::value) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#endif
}

FF_DEVICE void mma_1688_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(FF_SIMT)
  ff_simt::mma_m16n8k8_tf32(d, a, b);
#elif FF_HAS_MMA
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

FF_DEVICE uint32_t to_tf32(float f) {  // round to nearest, ties away (cvt.rna), as cuDNN's tf32 convs do
#if defined(FF_SIMT)
  return ff_simt::cvt_rna_tf32(f);
#elif FF_HAS_MMA
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(f));
  return r;
#else
  return __float_as_uint(f);
#endif
}

// acc += A·Bᵀ over one BK slice: A rows via arow(m) (BK contiguous operands), B rows at Bs + n·LD.
template <class Cfg, class OpT, bool TC, class AccT, class ARow>
FF_DEVICE void tile_mma(AccT (&acc)[Cfg::MT][Cfg::NT][4], ARow arow, const OpT* Bs) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm0 = (warp / Cfg::WN) * Cfg::MT * 16, wn0 = (warp % Cfg::WN) * Cfg::NT * 8;
  const int g = lane >> 2, t = lane & 3;
  if constexpr (TC && FF_HAS_MMA && sizeof(OpT) == 2) {
    static_assert(Cfg::BK == 16, "one m16n8k16 step per slice");
    uint32_t a[Cfg::MT][4];
#pragma unroll
    for (int i = 0; i < Cfg::MT; ++i) {
      const OpT* r0 = arow(wm0 + i * 16 + g);
      const OpT* r1 = arow(wm0 + i * 16 + g + 8);
      a[i][0] = ff_ld(reinterpret_cast<const uint32_t*>(r0 + 2 * t));
      a[i][1] = ff_ld(reinterpret_cast<const uint32_t*>(r1 + 2 * t));
      a[i][2] = ff_ld(reinterpret_cast<const uint32_t*>(r0 + 2 * t + 8));
      a[i][3] = ff_ld(reinterpret_cast<const uint32_t*>(r1 + 2 * t + 8));
    }
#pragma unroll
    for (int j = 0; j < Cfg::NT; ++j) {
      const OpT* br = Bs + (wn0 + j * 8 + g) * Cfg::LD;
      const uint32_t b[2] = {ff_ld(reinterpret_cast<const uint32_t*>(br + 2 * t)),
                             ff_ld(reinterpret_cast<const uint32_t*>(br + 2 * t + 8))};
#pragma unroll
      for (int i = 0; i < Cfg::MT; ++i) mma_16816<OpT>(acc[i][j], a[i], b);
    }
  } else if constexpr (TC && FF_HAS_MMA) {
    static_assert(std::is_same<OpT, float>::value && std::is_same<AccT, float>::value, "tf32 takes fp32");
#pragma unroll
    for (int kk = 0; kk < Cfg::BK; kk += 8) {
      uint32_t a[Cfg::MT][4];
#pragma unroll
      for (int i = 0; i < Cfg::MT; ++i) {
        const OpT* r0 = arow(wm0 + i * 16 + g) + kk;
        const OpT* r1 = arow(wm0 + i * 16 + g + 8) + kk;
        a[i][0] = to_tf32(ff_ld(r0 + t));
        a[i][1] = to_tf32(ff_ld(r1 + t));
        a[i][2] = to_tf32(ff_ld(r0 + t + 4));
        a[i][3] = to_tf32(ff_ld(r1 + t + 4));
      }
#pragma unroll
      for (int j = 0; j < Cfg::NT; ++j) {
        const OpT* br = Bs + (wn0 + j * 8 + g) * Cfg::LD + kk;
        const uint32_t b[2] = {to_tf32(ff_ld(br + t)), to_tf32(ff_ld(br + t + 4))};
#pragma unroll
        for (int i = 0; i < Cfg::MT; ++i) mma_1688_tf32(acc[i][j], a[i], b);
      }
    }
  } else {  // scalar fallback, same accumulator layout
#pragma unroll 4
    for (int k = 0; k < Cfg::BK; ++k) {
      AccT a[Cfg::MT][2], b[Cfg::NT][2];
#pragma unroll
      for (int i = 0; i < Cfg::MT; ++i) {
        a[i][0] = cvt<AccT>(ff_ld(arow(wm0 + i * 16 + g) + k));
        a[i][1] = cvt<AccT>(ff_ld(arow(wm0 + i * 16 + g + 8) + k));
      }
#pragma unroll
      for (int j = 0; j < Cfg::NT; ++j) {
        b[j][0] = cvt<AccT>(ff_ld(Bs + (wn0 + j * 8 + 2 * t) * Cfg::LD + k));
        b[j][1] = cvt<AccT>(ff_ld(Bs + (wn0 + j * 8 + 2 * t + 1) * Cfg::LD + k));
      }
#pragma unroll
      for (int i = 0; i < Cfg::MT; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][j][e] += a[i][e >> 1] * b[j][e & 1];
    }
  }
}

// Calls f(row, col, acc element) for each accumulator this thread holds (the m16n8 C layout above).
template <class Cfg, class AccT, class F>
FF_DEVICE void for_each_acc(AccT (&acc)[Cfg::MT][Cfg::NT][4], F f) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm0 = (warp / Cfg::WN) * Cfg::MT * 16, wn0 = (warp % Cfg::WN) * Cfg::NT * 8;
#pragma unroll
  for (int i = 0; i < Cfg::MT; ++i)
#pragma unroll
    for (int j = 0; j < Cfg::NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        f(wm0 + i * 16 + (lane >> 2) + (e >> 1) * 8, wn0 + j * 8 + 2 * (lane & 3) + (e & 1), acc[i][j][e]);
}

template <class Cfg, class AccT>
FF_DEVICE void zero_acc(AccT (&acc)[Cfg::MT][Cfg::NT][4]) {
#pragma unroll
  for (int i = 0; i < Cfg::MT; ++i)
#pragma unroll
    for (int j = 0; j < Cfg::NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = AccT(0);
}

// ------------------------------------------------------------------------------------ kernel arguments

// A 4-D activation: data and its (n, c, h, w) strides in elements.
template <class T>
struct Act {
  T* p;
  int64_t sn, sc, sh, sw;
  FF_DEVICE int64_t at(int n, int c, int h, int w) const {
    return n * sn + c * sc + h * sh + w * sw;
  }
};

// One reduction phase of a conv GEMM: acc[p, col] += Σ_tap Σ_r A[p + shift_tap, r] · Wt[r, col, tap], zero
// padded, shift_tap = (th - k/2, tw - k/2); the weight is read at (kh, kw) = (th, tw), or flipped when `flip`
// (the transposed conv of grad_s). With a mask source, A is used where mask > 0 (G = grad_out ⊙ (out > 0)).
template <class TA, class TW>
struct Phase {
  Act<const TA> a;                 // A[n, r, h, w]
  Act<const TA> m;                 // ReLU mask source, same indexing as a (m.p == nullptr: no mask)
  const TW* w;                     // weight view Wt[r, col, kh, kw] ...
  int sw_r, sw_c, sw_h, sw_w;      // ... and its strides
  int R, ksize, flip;              // reduction channels, 1 or 3, transposed taps
};

// Pixel coordinates of a block's rows, staged once in shared memory: n = -1 marks a row outside the tensor.
struct Pix {
  int* n;
  int* h;
  int* w;
};

template <class OpT>
FF_DEVICE OpT op_zero() { return cvt<OpT>(0.0f); }

// acc += the phase's GEMM for the block's BM rows (pix) × BN columns from col0, staging through As/Bs.
template <class Cfg, class OpT, bool TC, class AccT, class TA, class TW>
FF_DEVICE void conv_acc(AccT (&acc)[Cfg::MT][Cfg::NT][4], const Phase<TA, TW>& ph, Pix pix, int col0, int C,
                        int H, int W, OpT* As, OpT* Bs) {
  const int tid = threadIdx.x;
  const bool a_cfast = ph.a.sc == 1;  // channels_last: consecutive threads walk channels (coalesced)
  const int taps = ph.ksize * ph.ksize;
  for (int tap = 0; tap < taps; ++tap) {
    const int th = tap / ph.ksize, tw = tap % ph.ksize;
    const int dh = th - ph.ksize / 2, dw = tw - ph.ksize / 2;
    const int kh = ph.flip ? ph.ksize - 1 - th : th, kw = ph.flip ? ph.ksize - 1 - tw : tw;
    for (int r0 = 0; r0 < ph.R; r0 += Cfg::BK) {
      for (int idx = tid; idx < Cfg::BM * Cfg::BK; idx += Cfg::THREADS) {
        const int m = a_cfast ? idx / Cfg::BK : idx % Cfg::BM;
        const int k = a_cfast ? idx % Cfg::BK : idx / Cfg::BM;
        const int n = ff_ld(pix.n + m), h = ff_ld(pix.h + m) + dh, w = ff_ld(pix.w + m) + dw;
        OpT v = op_zero<OpT>();
        if (n >= 0 && r0 + k < ph.R + FF_PLANT_OOB && h >= 0 && h < H && w >= 0 && w < W) {
          const TA a = ph.a.p[ph.a.at(n, r0 + k, h, w)];
          if (ph.m.p == nullptr || to_f32(ph.m.p[ph.m.at(n, r0 + k, h, w)]) > 0.0f) v = cvt<OpT>(a);
        }
        ff_st(As + m * Cfg::LD + k, v);
      }
      for (int idx = tid; idx < Cfg::BN * Cfg::BK; idx += Cfg::THREADS) {
        const int k = idx % Cfg::BK, c = idx / Cfg::BK;
        OpT v = op_zero<OpT>();
        if (r0 + k < ph.R && col0 + c < C)
          v = cvt<OpT>(ph.w[(r0 + k) * ph.sw_r + (col0 + c) * ph.sw_c + kh * ph.sw_h + kw * ph.sw_w]);
        ff_st(Bs + c * Cfg::LD + k, v);
      }
#if !FF_PLANT_NO_SYNC
      __syncthreads();  // tiles staged
#endif
      tile_mma<Cfg, OpT, TC>(acc, [&](int m) { return As + m * Cfg::LD; }, Bs);
      __syncthreads();  // tiles consumed before the next slice overwrites them
    }
  }
}

// Rows row0 .. row0+BM of the flattened pixels p < P: stage their (n, h, w) in shared memory.
template <class Cfg>
FF_DEVICE void stage_pixels(Pix pix, int64_t row0, int64_t P, int H, int W) {
  for (int m = threadIdx.x; m < Cfg::BM; m += Cfg::THREADS) {
    const int64_t p = row0 + m;
    const int hw = static_cast<int>(p % (static_cast<int64_t>(H) * W));
    ff_st(pix.n + m, p < P ? static_cast<int>(p / (static_cast<int64_t>(H) * W)) : -1);
    ff_st(pix.h + m, hw / W);
    ff_st(pix.w + m, hw % W);
  }
  __syncthreads();
}

// y[p, col0 + c] = act(acc + bias) for the block's rows (bias/act/mask per flags).
template <class Cfg, class AccT, class TY, class TB, class TM>
FF_DEVICE void store_tile(AccT (&acc)[Cfg::MT][Cfg::NT][4], Act<TY> y, Pix pix, int col0, int C, const TB* bias,
                          bool relu, Act<const TM> smask) {
  for_each_acc<Cfg>(acc, [&](int m, int c, AccT v) {
    const int n = ff_ld(pix.n + m), col = col0 + c;
    if (n < 0 || col >= C) return;
    const int h = ff_ld(pix.h + m), w = ff_ld(pix.w + m);
    if (bias != nullptr) v += cvt<AccT>(bias[col]);
    if (relu) v = v > AccT(0) ? v : AccT(0);
    if (smask.p != nullptr && !(to_f32(smask.p[smask.at(n, col, h, w)]) > 0.0f)) v = AccT(0);
    y.p[y.at(n, col, h, w)] = cvt<typename std::remove_const<TY>::type>(v);
  });
}

// -------------------------------------------------------------------------------------------- kernels

// y[p, c] = act(Σ_k a[p, k]·w[c, k] + b[c]); grid (pixel tiles, output channel tiles).
template <class Cfg, class OpT, bool TC, class TA, class TW, class TY>
__global__ void __launch_bounds__(Cfg::THREADS, 1)
    squeeze_kernel(Phase<TA, TW> ph,  // A = x (or grad_s), Wt[k, c] = Wsq[c, k] (or Wsq[k, c] for grad_x)
                   const TW* bias,    // [C] or nullptr
                   Act<TY> y,         // s (or grad_x)
                   int64_t P, int H, int W, int C, int relu) {
  using AccT = typename Acc<OpT>::type;
  FF_SHARED(OpT, As, Cfg::BM * Cfg::LD);
  FF_SHARED(OpT, Bs, Cfg::BN * Cfg::LD);
  FF_SHARED(int, pn, Cfg::BM);
  FF_SHARED(int, phh, Cfg::BM);
  FF_SHARED(int, pw, Cfg::BM);
  const Pix pix{pn, phh, pw};
  stage_pixels<Cfg>(pix, static_cast<int64_t>(blockIdx.x) * Cfg::BM, P, H, W);
  AccT acc[Cfg::MT][Cfg::NT][4];
  zero_acc<Cfg>(acc);
  const int col0 = blockIdx.y * Cfg::BN;
  conv_acc<Cfg, OpT, TC>(acc, ph, pix, col0, C, H, W, As, Bs);
  store_tile<Cfg>(acc, y, pix, col0, C, bias, relu != 0, Act<const TY>{nullptr, 0, 0, 0, 0});
}

// out[:, :E1] = relu(W1·s + b1) (channel tiles below cdiv(E1, BN)) and out[:, E1:] = relu(W3 ⊛ s + b3).
template <class Cfg, class OpT, bool TC, class T>
__global__ void __launch_bounds__(Cfg::THREADS, 1)
    expand_kernel(Phase<T, T> ph1, const T* b1, Act<T> y1,  // s against W1 [E1, S]; out[:, :E1]
                  Phase<T, T> ph3, const T* b3, Act<T> y3,  // s against W3 [E3, S, 3, 3]; out[:, E1:]
                  int64_t P, int H, int W, int E1, int E3) {
  using AccT = typename Acc<OpT>::type;
  FF_SHARED(OpT, As, Cfg::BM * Cfg::LD);
  FF_SHARED(OpT, Bs, Cfg::BN * Cfg::LD);
  FF_SHARED(int, pn, Cfg::BM);
  FF_SHARED(int, phh, Cfg::BM);
  FF_SHARED(int, pw, Cfg::BM);
  const Pix pix{pn, phh, pw};
  stage_pixels<Cfg>(pix, static_cast<int64_t>(blockIdx.x) * Cfg::BM, P, H, W);
  AccT acc[Cfg::MT][Cfg::NT][4];
  zero_acc<Cfg>(acc);
  const int t1 = (E1 + Cfg::BN - 1) / Cfg::BN;
  const Act<const T> none{nullptr, 0, 0, 0, 0};
  // NOTE: two calls rather than one on `one ? ph1 : ph3`: selecting a by-value kernel parameter at run time
  // made ptxas copy both to a 240-byte local-memory frame.
  if (static_cast<int>(blockIdx.y) < t1) {
    const int col0 = blockIdx.y * Cfg::BN;
    conv_acc<Cfg, OpT, TC>(acc, ph1, pix, col0, E1, H, W, As, Bs);
    store_tile<Cfg>(acc, y1, pix, col0, E1, b1, true, none);
  } else {
    const int col0 = (blockIdx.y - t1) * Cfg::BN;
    conv_acc<Cfg, OpT, TC>(acc, ph3, pix, col0, E3, H, W, As, Bs);
    store_tile<Cfg>(acc, y3, pix, col0, E3, b3, true, none);
  }
}

// grad_s[p, k] = (Σ_e G1[p, e]·W1[e, k] + Σ_tap Σ_e G3[p - shift_tap, e]·W3[e, k, tap]) ⊙ (s[p, k] > 0).
template <class Cfg, class OpT, bool TC, class T, class TG>
__global__ void __launch_bounds__(Cfg::THREADS, 1)
    grad_s_kernel(Phase<T, T> ph1,    // grad_out[:, :E1] masked by out[:, :E1], against W1 viewed [E1, S]
                  Phase<T, T> ph3,    // grad_out[:, E1:] masked by out[:, E1:], against W3 flipped
                  Act<const T> s,     // squeeze activations (the ReLU mask of grad_s)
                  Act<TG> gs,         // output grad_s (fp32; fp64 for fp64 inputs)
                  int64_t P, int H, int W, int S) {
  using AccT = typename Acc<OpT>::type;
  FF_SHARED(OpT, As, Cfg::BM * Cfg::LD);
  FF_SHARED(OpT, Bs, Cfg::BN * Cfg::LD);
  FF_SHARED(int, pn, Cfg::BM);
  FF_SHARED(int, phh, Cfg::BM);
  FF_SHARED(int, pw, Cfg::BM);
  const Pix pix{pn, phh, pw};
  stage_pixels<Cfg>(pix, static_cast<int64_t>(blockIdx.x) * Cfg::BM, P, H, W);
  AccT acc[Cfg::MT][Cfg::NT][4];
  zero_acc<Cfg>(acc);
  const int col0 = blockIdx.y * Cfg::BN;
  conv_acc<Cfg, OpT, TC>(acc, ph1, pix, col0, S, H, W, As, Bs);
  conv_acc<Cfg, OpT, TC>(acc, ph3, pix, col0, S, H, W, As, Bs);
  store_tile<Cfg>(acc, gs, pix, col0, S, static_cast<const T*>(nullptr), false, s);
}

// partial[c, e, k, tap] = Σ_{p ∈ chunk c} G[p, e]·in[p + shift_tap, k] and partial_b[c, e] = Σ_{p ∈ c} G[p, e].
// Grid (chunks, E tiles, K tiles · ksize²); the (K tile 0, tap 0) blocks write the bias partial.
template <class Cfg, class OpT, bool TC, class TG, class TI>
__global__ void __launch_bounds__(Cfg::THREADS, 1)
    wgrad_kernel(Act<const TG> g,    // G source [N, E, H, W]: a grad_out half, or grad_s
                 Act<const TG> msk,  // ReLU mask source (the matching out half), or p == nullptr
                 Act<const TI> in,   // layer input [N, K, H, W]: s, or x
                 typename Acc<OpT>::type* pw,  // partial weight grads [chunks, E, K, ksize²]
                 typename Acc<OpT>::type* pb,  // partial bias grads [chunks, E]
                 int64_t P, int H, int W, int E, int K, int ksize, int64_t chunk) {
  using AccT = typename Acc<OpT>::type;
  FF_SHARED(OpT, As, Cfg::BM * Cfg::LD);
  FF_SHARED(OpT, Bs, Cfg::BN * Cfg::LD);
  const int tid = threadIdx.x;
  const int taps = ksize * ksize;
  const int tap = blockIdx.z % taps;
  const int dh = tap / ksize - ksize / 2, dw = tap % ksize - ksize / 2;
  const int e0 = blockIdx.y * Cfg::BM, k0 = (blockIdx.z / taps) * Cfg::BN;
  const int64_t start = blockIdx.x * chunk, end = start + chunk < P ? start + chunk : P;
  const bool with_bias = blockIdx.z == 0;
  const int64_t HW = static_cast<int64_t>(H) * W;
  const bool g_cfast = g.sc == 1, i_cfast = in.sc == 1;
  AccT acc[Cfg::MT][Cfg::NT][4];
  zero_acc<Cfg>(acc);
  AccT bias = AccT(0);
  for (int64_t p0 = start; p0 < end; p0 += Cfg::BK) {
    for (int idx = tid; idx < Cfg::BM * Cfg::BK; idx += Cfg::THREADS) {  // As[e][kp] = G[p0 + kp, e0 + e]
      const int e = g_cfast ? idx % Cfg::BM : idx / Cfg::BK;
      const int kp = g_cfast ? idx / Cfg::BM : idx % Cfg::BK;
      const int64_t p = p0 + kp;
      OpT v = op_zero<OpT>();
      if (p < end && e0 + e < E) {
        const int n = static_cast<int>(p / HW), hw = static_cast<int>(p % HW);
        const int64_t off = g.at(n, e0 + e, hw / W, hw % W);
        if (msk.p == nullptr || to_f32(msk.p[msk.at(n, e0 + e, hw / W, hw % W)]) > 0.0f) v = cvt<OpT>(g.p[off]);
      }
      ff_st(As + e * Cfg::LD + kp, v);
    }
    for (int idx = tid; idx < Cfg::BN * Cfg::BK; idx += Cfg::THREADS) {  // Bs[k][kp] = in[p0 + kp + shift, k0 + k]
      const int k = i_cfast ? idx % Cfg::BN : idx / Cfg::BK;
      const int kp = i_cfast ? idx / Cfg::BN : idx % Cfg::BK;
      const int64_t p = p0 + kp;
      OpT v = op_zero<OpT>();
      if (p < end && k0 + k < K) {
        const int n = static_cast<int>(p / HW), hw = static_cast<int>(p % HW);
        const int h = hw / W + dh, w = hw % W + dw;
        if (h >= 0 && h < H && w >= 0 && w < W) v = cvt<OpT>(in.p[in.at(n, k0 + k, h, w)]);
      }
      ff_st(Bs + k * Cfg::LD + kp, v);
    }
#if !FF_PLANT_NO_SYNC
    __syncthreads();
#endif
    if (with_bias && tid < Cfg::BM)
      for (int kp = 0; kp < Cfg::BK; ++kp) bias += cvt<AccT>(ff_ld(As + tid * Cfg::LD + kp));
    tile_mma<Cfg, OpT, TC>(acc, [&](int m) { return As + m * Cfg::LD; }, Bs);
    __syncthreads();
  }
  const int64_t c = blockIdx.x;
  for_each_acc<Cfg>(acc, [&](int e, int k, AccT v) {
    if (e0 + e < E && k0 + k < K) pw[((c * E + e0 + e) * K + k0 + k) * taps + tap] = v;
  });
  if (with_bias && tid < Cfg::BM && e0 + tid < E) pb[c * E + e0 + tid] = bias;
}

// out[i] = Σ_c partial[c, i] in chunk order (deterministic), cast to the weights' dtype.
template <class AccT, class T>
__global__ void __launch_bounds__(256) reduce_kernel(const AccT* partial, int chunks, int64_t count, T* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    AccT sum = AccT(0);
    for (int c = 0; c < chunks; ++c) sum += partial[c * count + i];
    out[i] = cvt<T>(sum);
  }
}

// fire_kernel's stage 2 for one channel tile: y[p, col0 + c] = relu(Σ_tap Σ_k st[p + shift_tap, k]·Wt[k, c, tap] + b).
template <class Cfg, class OpT, bool TC, class AccT, class T>
FF_DEVICE void expand_from_tile(AccT (&acc)[Cfg::MT][Cfg::NT][4], const Phase<T, T>& ph, const T* bias, Act<T> y,
                                Pix pix, int col0, int C, int S, int s_pad, const OpT* st, int s_ld, OpT* As,
                                OpT* Bs) {
  using F = FusedTile;
  (void)As;
  zero_acc<Cfg>(acc);
  const int taps = ph.ksize * ph.ksize;
  for (int tap = 0; tap < taps; ++tap) {
    const int th = tap / ph.ksize, tw = tap % ph.ksize;
    const int dh = th - ph.ksize / 2, dw = tw - ph.ksize / 2;
    for (int r0 = 0; r0 < s_pad; r0 += Cfg::BK) {
      for (int idx = threadIdx.x; idx < Cfg::BN * Cfg::BK; idx += Cfg::THREADS) {
        const int k = idx % Cfg::BK, c = idx / Cfg::BK;
        OpT v = op_zero<OpT>();
        if (r0 + k < S && col0 + c < C)
          v = cvt<OpT>(ph.w[(r0 + k) * ph.sw_r + (col0 + c) * ph.sw_c + th * ph.sw_h + tw * ph.sw_w]);
        ff_st(Bs + c * Cfg::LD + k, v);
      }
#if !FF_PLANT_NO_SYNC
      __syncthreads();
#endif
      tile_mma<Cfg, OpT, TC>(
          acc, [&](int m) { return st + ((m / F::TW + 1 + dh) * F::HW + m % F::TW + 1 + dw) * s_ld + r0; }, Bs);
      __syncthreads();
    }
  }
  store_tile<Cfg>(acc, y, pix, col0, C, bias, true, Act<const T>{nullptr, 0, 0, 0, 0});
}

// Inference Fire in one launch. Block = one TH×TW tile of one image; grid = N·tiles_h·tiles_w.
// Stage 1: s on the tile's (TH+2)×(TW+2) halo into shared memory (zero outside the image = the 3×3's padding),
// S_LD = S rounded up to BK (zero columns) + 8. Stage 2: every expand channel tile of both branches reads its
// A operand straight from that shared tile (the 3×3 through shifted rows), so s never touches global memory.
// NOTE: the halo costs HP / (TH·TW) = 100 / 64 = 1.56× the squeeze MACs; the squeeze is ~1/9 of a SqueezeNet
// Fire's MACs, so ≈ +6% MACs for skipping s's round trip (2·S bytes/pixel/element) and a second launch.
template <class Cfg, class OpT, bool TC, class T>
__global__ void __launch_bounds__(Cfg::THREADS, 1)
    fire_kernel(Phase<T, T> phq, const T* bq,    // x against Wsq viewed [Cin, S]; squeeze bias
                Phase<T, T> ph1, const T* b1,    // (a unused) W1 viewed [S, E1]; bias
                Phase<T, T> ph3, const T* b3,    // (a unused) W3 viewed [S, E3, 3, 3]; bias
                Act<T> y1, Act<T> y3,            // out[:, :E1], out[:, E1:]
                int H, int W, int S, int E1, int E3, int tiles_w, int tiles_hw, int s_ld) {
  using AccT = typename Acc<OpT>::type;
  using F = FusedTile;
  static_assert(F::TH * F::TW == Cfg::BM, "one interior row per GEMM row");
  constexpr int HP_PAD = (F::HP + Cfg::BM - 1) / Cfg::BM * Cfg::BM;
  FF_SHARED(OpT, As, Cfg::BM * Cfg::LD);
  FF_SHARED(OpT, Bs, Cfg::BN * Cfg::LD);
  FF_SHARED(int, pn, HP_PAD);
  FF_SHARED(int, phh, HP_PAD);
  FF_SHARED(int, pw, HP_PAD);
  FF_DYNAMIC_SHARED(OpT, st);  // s tile [HP][s_ld]
  const int n = blockIdx.x / tiles_hw, tile = blockIdx.x % tiles_hw;
  const int h0 = (tile / tiles_w) * F::TH, w0 = (tile % tiles_w) * F::TW;
  for (int i = threadIdx.x; i < HP_PAD; i += Cfg::THREADS) {  // halo pixels, n = -1 outside the image
    const int h = h0 - 1 + i / F::HW, w = w0 - 1 + i % F::HW;
    ff_st(pn + i, i < F::HP && h >= 0 && h < H && w >= 0 && w < W ? n : -1);
    ff_st(phh + i, h);
    ff_st(pw + i, w);
  }
  __syncthreads();
  AccT acc[Cfg::MT][Cfg::NT][4];
  const int s_pad = (S + Cfg::BK - 1) / Cfg::BK * Cfg::BK;
  for (int mb = 0; mb < HP_PAD; mb += Cfg::BM) {  // stage 1: st = relu(Wsq·x + bsq) on the halo, 0 outside
    const Pix pix{pn + mb, phh + mb, pw + mb};
    for (int col0 = 0; col0 < s_pad; col0 += Cfg::BN) {
      zero_acc<Cfg>(acc);
      conv_acc<Cfg, OpT, TC>(acc, phq, pix, col0, S, H, W, As, Bs);
      for_each_acc<Cfg>(acc, [&](int m, int c, AccT v) {
        const int row = mb + m, col = col0 + c;
        if (row >= F::HP || col >= s_pad) return;
        v = ff_ld(pix.n + m) >= 0 && col < S ? v + cvt<AccT>(bq[col]) : AccT(0);
        ff_st(st + row * s_ld + col, cvt<OpT>(v > AccT(0) ? v : AccT(0)));
      });
    }
  }
  __syncthreads();  // the s tile is complete
  for (int m = threadIdx.x; m < Cfg::BM; m += Cfg::THREADS) {  // stage 2's rows: the interior pixels
    const int h = h0 + m / F::TW, w = w0 + m % F::TW;
    ff_st(pn + m, h < H && w < W ? n : -1);
    ff_st(phh + m, h);
    ff_st(pw + m, w);
  }
  __syncthreads();
  const Pix pix{pn, phh, pw};
  for (int col0 = 0; col0 < E1; col0 += Cfg::BN)  // stage 2: both expands from the shared s tile
    expand_from_tile<Cfg, OpT, TC>(acc, ph1, b1, y1, pix, col0, E1, S, s_pad, st, s_ld, As, Bs);
  for (int col0 = 0; col0 < E3; col0 += Cfg::BN)
    expand_from_tile<Cfg, OpT, TC>(acc, ph3, b3, y3, pix, col0, E3, S, s_pad, st, s_ld, As, Bs);
}

// ------------------------------------------------------------------------------------------ launchers
// Host side, shared by fire_cuda.cu and the harness: shapes and pointers in, launches out (no checks here:
// fire_cuda.cu checks; the harness's inputs come from tests that build them valid).

struct Dims {
  int N, Cin, S, E1, E3, H, W;
  int64_t P() const { return static_cast<int64_t>(N) * H * W; }
};

template <class T>
Act<T> act(T* p, const int64_t* st) { return Act<T>{p, st[0], st[1], st[2], st[3]}; }

template <class TA, class TW>
Phase<TA, TW> phase(Act<const TA> a, Act<const TA> m, const TW* w, const int64_t* sw, int R, int ksize, int flip) {
  return Phase<TA, TW>{a, m, w, static_cast<int>(sw[0]), static_cast<int>(sw[1]), static_cast<int>(sw[2]),
                       static_cast<int>(sw[3]), R, ksize, flip};
}

template <class T>
struct FwdArgs {            // every stride array is (n, c, h, w) for activations, the 4 dims for weights
  Dims d;
  const T* x; int64_t sx[4];
  const T* wsq; int64_t swsq[4]; const T* bsq;
  const T* w1; int64_t sw1[4]; const T* b1;
  const T* w3; int64_t sw3[4]; const T* b3;
  T* out; int64_t sout[4];   // [N, E1 + E3, H, W]
  T* s; int64_t ss[4];       // [N, S, H, W] (the two-launch path only)
};

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bytes of dynamic shared memory fire_kernel needs (its s tile), and the row pitch of that tile.
template <class T>
int fused_s_ld(int S) { return static_cast<int>(cdiv(S, DefaultTile::BK) * DefaultTile::BK) + 8; }
template <class T>
size_t fused_smem_bytes(int S) {
  using OpT = T;
  return static_cast<size_t>(FusedTile::HP) * fused_s_ld<T>(S) * sizeof(OpT);
}
// Shared memory of fire_kernel: its static staging (As, Bs, halo pixel coordinates) and the dynamic s tile.
template <class T>
size_t fused_static_smem_bytes() {
  using Cfg = DefaultTile;
  constexpr int HP_PAD = (FusedTile::HP + Cfg::BM - 1) / Cfg::BM * Cfg::BM;
  return (Cfg::BM + Cfg::BN) * Cfg::LD * sizeof(T) + 3 * HP_PAD * sizeof(int);
}
// NOTE: dispatch rule of native_fire (no GPU here to measure it, so it is a rule, not a tuning result): the
// single-launch fire_kernel whenever its shared memory fits the 48 KiB a block gets without opting in:
// S ≤ 80 for fp32, S ≤ 192 for fp16/bf16, S ≤ 16 for fp64 (static staging 13.5 / 7.5 / 25.5 KiB + the s tile
// 100·(S + 8)·sizeof) — every SqueezeNet Fire (S ≤ 64) in fp16/bf16/fp32; otherwise squeeze_kernel +
// expand_kernel through s in global memory. To measure on a GPU: bench/ with FUSEDFIRE_BACKEND=cuda.
constexpr size_t kSmemPerBlock = 48 * 1024;
template <class T>
bool fused_fits(int S) { return fused_static_smem_bytes<T>() + fused_smem_bytes<T>(S) <= kSmemPerBlock; }

template <class T, bool TC>
void launch_fwd_impl(const FwdArgs<T>& a, bool fused, cudaStream_t stream) {
  using Cfg = DefaultTile;
  using OpT = T;
  const Dims& d = a.d;
  const int64_t P = d.P();
  if (P == 0) return;
  const Act<const T> none{nullptr, 0, 0, 0, 0};
  const int64_t sout3[4] = {a.sout[0], a.sout[1], a.sout[2], a.sout[3]};
  T* out3 = a.out + d.E1 * a.sout[1];
  // Weight views Wt[r, col, kh, kw]: Wsq[col=s, r=cin] -> strides (Wsq.stride(1), Wsq.stride(0), 0, 0), etc.
  const int64_t vq[4] = {a.swsq[1], a.swsq[0], 0, 0};
  const int64_t v1[4] = {a.sw1[1], a.sw1[0], 0, 0};
  const int64_t v3[4] = {a.sw3[1], a.sw3[0], a.sw3[2], a.sw3[3]};
  if (fused) {
    const int tiles_w = static_cast<int>(cdiv(d.W, FusedTile::TW)), tiles_h = static_cast<int>(cdiv(d.H, FusedTile::TH));
    const auto phq = phase<T, T>(act(a.x, a.sx), none, a.wsq, vq, d.Cin, 1, 0);
    const auto ph1 = phase<T, T>(none, none, a.w1, v1, d.S, 1, 0);
    const auto ph3 = phase<T, T>(none, none, a.w3, v3, d.S, 3, 0);
    const dim3 grid(static_cast<unsigned>(static_cast<int64_t>(d.N) * tiles_h * tiles_w));
    FF_LAUNCH((fire_kernel<Cfg, OpT, TC, T>), grid, dim3(Cfg::THREADS), fused_smem_bytes<T>(d.S), stream, phq,
              a.bsq, ph1, a.b1, ph3, a.b3, act(a.out, a.sout), act(out3, sout3), d.H, d.W, d.S, d.E1, d.E3,
              tiles_w, tiles_h * tiles_w, fused_s_ld<T>(d.S));
    return;
  }
  const auto phq = phase<T, T>(act(a.x, a.sx), none, a.wsq, vq, d.Cin, 1, 0);
  FF_LAUNCH((squeeze_kernel<Cfg, OpT, TC, T, T, T>), dim3(cdiv(P, Cfg::BM), cdiv(d.S, Cfg::BN)),
            dim3(Cfg::THREADS), 0, stream, phq, a.bsq, act(a.s, a.ss), P, d.H, d.W, d.S, 1);
  const Act<const T> s = act(static_cast<const T*>(a.s), a.ss);
  const auto ph1 = phase<T, T>(s, none, a.w1, v1, d.S, 1, 0);
  const auto ph3 = phase<T, T>(s, none, a.w3, v3, d.S, 3, 0);
  FF_LAUNCH((expand_kernel<Cfg, OpT, TC, T>), dim3(cdiv(P, Cfg::BM), cdiv(d.E1, Cfg::BN) + cdiv(d.E3, Cfg::BN)),
            dim3(Cfg::THREADS), 0, stream, ph1, a.b1, act(a.out, a.sout), ph3, a.b3, act(out3, sout3), P, d.H,
            d.W, d.E1, d.E3);
}

// fused: fire_kernel (s is not written); else squeeze_kernel writes a.s and expand_kernel reads it.
// tc: tensor cores (fp16/bf16: always on sm_80+; fp32: tf32 when allowed); ignored for fp64.
template <class T>
void launch_fwd(const FwdArgs<T>& a, bool fused, bool tc, cudaStream_t stream) {
  if constexpr (std::is_same<T, double>::value) {
    launch_fwd_impl<T, false>(a, fused, stream);
  } else if constexpr (std::is_same<T, float>::value) {
    if (tc) launch_fwd_impl<T, true>(a, fused, stream);
    else launch_fwd_impl<T, false>(a, fused, stream);
  } else {
    launch_fwd_impl<T, true>(a, fused, stream);  // arches without mma.sync run tile_mma's scalar path
  }
}

template <class T>
struct BwdArgs {
  Dims d;
  const T* gout; int64_t sgout[4];  // any strides, 0 included
  const T* x; int64_t sx[4];
  const T* s; int64_t ss[4];
  const T* out; int64_t sout[4];
  const T* wsq; int64_t swsq[4];
  const T* w1; int64_t sw1[4];
  const T* w3; int64_t sw3[4];
  typename Acc<T>::type* gs; int64_t sgs[4];  // grad_s workspace [N, S, H, W]
  T* gx; int64_t sgx[4];
  T *gwsq, *gbsq, *gw1, *gb1, *gw3, *gb3;     // contiguous
  typename Acc<T>::type* work;                // bwd_workspace_elems<T>(d) elements
};

// Chunks of pixels for a weight gradient [E, K, ksize²]: ~1024 blocks, chunk a multiple of the BK pixel slice.
struct WgradPlan {
  int chunks;
  int64_t chunk;
};
inline WgradPlan wgrad_plan(int64_t P, int E, int K, int ksize) {
  using Cfg = DefaultTile;
  // NOTE: as the Triton launcher: ~1024 blocks fill an H100's 132 SMs several times over (not measured here).
  const int64_t per_chunk = cdiv(E, Cfg::BM) * cdiv(K, Cfg::BN) * ksize * ksize;
  int64_t chunks = cdiv(P, 64) < cdiv(1024, per_chunk) ? cdiv(P, 64) : cdiv(1024, per_chunk);
  chunks = chunks < 1 ? 1 : chunks;
  const int64_t chunk = cdiv(cdiv(P, chunks), 64) * 64;
  return WgradPlan{static_cast<int>(cdiv(P, chunk)), chunk};
}
inline int64_t wgrad_elems(int64_t P, int E, int K, int ksize) {
  const WgradPlan w = wgrad_plan(P, E, K, ksize);
  return static_cast<int64_t>(w.chunks) * (static_cast<int64_t>(E) * K * ksize * ksize + E);
}
template <class T>
int64_t bwd_workspace_elems(const Dims& d) {  // one buffer, reused by the three weight gradients in turn
  const int64_t P = d.P() > 0 ? d.P() : 1;
  int64_t m = wgrad_elems(P, d.E1, d.S, 1);
  const int64_t m3 = wgrad_elems(P, d.E3, d.S, 3), mq = wgrad_elems(P, d.S, d.Cin, 1);
  m = m > m3 ? m : m3;
  return m > mq ? m : mq;
}

template <class OpT, bool TC, class TG, class TI, class T>
void launch_wgrad(int64_t P, int H, int W, Act<const TG> g, Act<const TG> msk, Act<const TI> in, int E, int K,
                  int ksize, T* gw, T* gb, typename Acc<OpT>::type* work, cudaStream_t stream) {
  using Cfg = DefaultTile;
  using AccT = typename Acc<OpT>::type;
  const WgradPlan plan = wgrad_plan(P, E, K, ksize);
  const int64_t nw = static_cast<int64_t>(E) * K * ksize * ksize;
  AccT* pw = work;
  AccT* pb = work + plan.chunks * nw;
  FF_LAUNCH((wgrad_kernel<Cfg, OpT, TC, TG, TI>),
            dim3(plan.chunks, cdiv(E, Cfg::BM), cdiv(K, Cfg::BN) * ksize * ksize), dim3(Cfg::THREADS), 0, stream,
            g, msk, in, pw, pb, P, H, W, E, K, ksize, plan.chunk);
  const int64_t blocks_w = cdiv(nw, 256) < 4096 ? cdiv(nw, 256) : 4096;
  FF_LAUNCH((reduce_kernel<AccT, T>), dim3(blocks_w), dim3(256), 0, stream, static_cast<const AccT*>(pw),
            plan.chunks, nw, gw);
  FF_LAUNCH((reduce_kernel<AccT, T>), dim3(cdiv(E, 256)), dim3(256), 0, stream, static_cast<const AccT*>(pb),
            plan.chunks, static_cast<int64_t>(E), gb);
}

template <class T, bool TC>
void launch_bwd_impl(const BwdArgs<T>& a, cudaStream_t stream) {
  using Cfg = DefaultTile;
  using G = typename Acc<T>::type;  // grad_s: fp32 (fp64); its consumers use OpT = G (tf32 for fp16/bf16)
  const Dims& d = a.d;
  const int64_t P = d.P();
  if (P == 0) return;
  const Act<const T> gout1 = act(a.gout, a.sgout), out1 = act(a.out, a.sout);
  const Act<const T> gout3 = act(a.gout + d.E1 * a.sgout[1], a.sgout), out3 = act(a.out + d.E1 * a.sout[1], a.sout);
  const Act<const T> s = act(a.s, a.ss), x = act(a.x, a.sx);
  // grad_s: rows r = expand channels e, columns = squeeze channels k: W1[e, k] -> (sw1[0], sw1[1]).
  const int64_t v1[4] = {a.sw1[0], a.sw1[1], 0, 0};
  const int64_t v3[4] = {a.sw3[0], a.sw3[1], a.sw3[2], a.sw3[3]};
  const auto ph1 = phase<T, T>(gout1, out1, a.w1, v1, d.E1, 1, 0);
  const auto ph3 = phase<T, T>(gout3, out3, a.w3, v3, d.E3, 3, 1);
  FF_LAUNCH((grad_s_kernel<Cfg, T, TC, T, G>), dim3(cdiv(P, Cfg::BM), cdiv(d.S, Cfg::BN)), dim3(Cfg::THREADS), 0,
            stream, ph1, ph3, s, act(a.gs, a.sgs), P, d.H, d.W, d.S);
  // grad_x = Wsqᵀ·grad_s: rows r = squeeze channels, columns = input channels: Wsq[r, col] -> (swsq[0], swsq[1]).
  const Act<const G> gs = act(static_cast<const G*>(a.gs), a.sgs);
  const Act<const G> gnone{nullptr, 0, 0, 0, 0};
  const int64_t vq[4] = {a.swsq[0], a.swsq[1], 0, 0};
  const auto phx = phase<G, T>(gs, gnone, a.wsq, vq, d.S, 1, 0);
  FF_LAUNCH((squeeze_kernel<Cfg, G, TC, G, T, T>), dim3(cdiv(P, Cfg::BM), cdiv(d.Cin, Cfg::BN)),
            dim3(Cfg::THREADS), 0, stream, phx, static_cast<const T*>(nullptr), act(a.gx, a.sgx), P, d.H, d.W,
            d.Cin, 0);
  launch_wgrad<T, TC>(P, d.H, d.W, gout1, out1, s, d.E1, d.S, 1, a.gw1, a.gb1, a.work, stream);
  launch_wgrad<T, TC>(P, d.H, d.W, gout3, out3, s, d.E3, d.S, 3, a.gw3, a.gb3, a.work, stream);
  launch_wgrad<G, TC>(P, d.H, d.W, gs, gnone, x, d.S, d.Cin, 1, a.gwsq, a.gbsq, a.work, stream);
}

// P == 0 launches nothing: the caller zero-fills the weight gradients.
template <class T>
void launch_bwd(const BwdArgs<T>& a, bool tc, cudaStream_t stream) {
  if constexpr (std::is_same<T, double>::value) {
    launch_bwd_impl<T, false>(a, stream);
  } else if constexpr (std::is_same<T, float>::value) {
    if (tc) launch_bwd_impl<T, true>(a, stream);
    else launch_bwd_impl<T, false>(a, stream);
  } else {
    launch_bwd_impl<T, true>(a, stream);
  }
}

}  // namespace ff
