// Every tuning threshold of the CPU backend, each with the measurement behind it. Figures marked (Xeon) were
// measured on the 2-core AVX-512 Intel Xeon 2.80 GHz of sessions 3-5, (EPYC) on the 2-core AMD EPYC (Zen 4,
// AVX-512) of session 6; "A/B" means interleaved rounds, medians, 2 threads unless said.
#pragma once
#include <cstdint>

namespace fusedfire_cpu {

// Output rows per band: R = max(1, kBandPixels / W) (13×13: the whole image; 27-wide: 18 rows; 54-wide: 9). A
// band's squeeze rows (R+2 with the halo) and im2col buffer (9S × R·W) are re-read by both expand GEMMs, and the
// GEMM's pixel dimension R·W must stay large for MKL's kernels.
// NOTE: (Xeon) 1 thread, thread CPU time, geomean GF/s over the 16 Fires × 2 layouts at N=1, two runs: band pixels
// 256: 69.7 / 70.2, 512: 95.5 / 72.5, 1024: 91.5 / 72.5, 4096: 89.7 / 72.1. The backward: 256 / 512 / 1024 took
// 0.67 / 0.66 / 0.68 the time of ATen's backward. (EPYC, AVX-512) A/B, forward, 16 Fires × {N=1, 8} × 2 layouts,
// medians of 7, time against 512: 256 0.98–1.01×, 1024 1.00×, 2048 1.01–1.03× (flat). Session 8 (own FMA kernels,
// fused F(4×4, 3×3)), the 8 squeezenet1_0 Fires channels_last, 1 thread, forward, N=1 / N=8: 256 1.04× / 1.03×,
// 1024 0.98× / 1.00×.
constexpr int64_t kBandPixels = 512;

// Per-thread scratch kept between calls up to this many bytes; larger requests are fresh tensors (bands.h).
// NOTE: (Xeon) a fresh at::empty per call faulted its pages in each time (1 400 faults a call at 1_0.features.12,
// N=8); kept: backward 0.945× (N=1) / 0.98× (N=8) the time, forward 0.957× / 0.977× (N=1), 0.993× (N=8).
constexpr int64_t kMaxKeptScratch = int64_t(16) << 20;

// Weights derived per call (the Winograd transforms) kept for the next call with the same weights (weight_memo.h),
// per calling thread, up to this many bytes of sources and results.
// NOTE: every Fire of squeezenet1_0 (the largest torchvision Fires) needs 11 MB in all (the F(4×4, 3×3) transform
// of w3, 36·S·E3 floats, and w3 itself).
constexpr int64_t kWeightMemoBytes = int64_t(32) << 20;

// MKL's 'TT' sgemm collapses where C is narrow (a channels_last Fire on a tiny image): below this many columns B
// is copied column-major first (blas.h).
// NOTE: (Xeon) one thread, sgemm_ through ctypes, medians: m = 256, k = 576, n = 4 at 2.3 GF/s against 91 as 'TN';
// m = 64, k = 512, n = 9 at 13 against 89. A channels_last 384→48→192 Fire on a 2×2 image: 264 -> 69 µs.
constexpr int64_t kNarrowTT = 16;

// blas.h's own GEMM (gemm_with) from this many columns: A is packed first, m·k copies against m·n·k FMAs.
// NOTE: not tuned; it keeps the bias gradients' sums (n = 1), where the copy would cost what the product does, on BLAS.
constexpr int64_t kOwnGemmColumns = 8;

// The forward writes out through an L2-sized buffer with non-temporal stores (stream_out) where out is larger
// than the L2 caches of the threads writing it (channels_last: than half of them): its lines go to memory anyway.
// NOTE: (Xeon) MKL's GEMMs writing into out first read every line of it (a write-allocate), at N=8 a quarter of the
// traffic of a 55×55 Fire. A/B at N=8, 6 configs × 2 layouts: buffer + streaming stores 0.96× the time (every case
// faster); buffer + plain stores 1.04×; at N=1, where out fits the caches the next layer reads it from, 1.01×.
// (EPYC, AVX-512) A/B at N=8, 16 Fires, medians of 9: without the buffer 1.07× the time channels_last, 1.02× NCHW.
// Channels_last past half the L2s (2 threads: 1 MB) against past all of them: optimize's squeezenet1_0 at N=1
// 0.986× / 0.987× the time (two runs, paired medians), squeezenet1_1 1.00×; lone Fires at N=1 with out 1.1-1.5 MB
// 0.94-0.99×; NCHW, the same Fires: 1.01-1.03× at 54×54, 0.90-0.92× at 27×27 (not taken: mixed).
constexpr int64_t kDefaultL2 = int64_t(1) << 20;  // where the C library does not say

// Winograd for the 3×3 expand (forward.cpp, use_winograd: F(4×4, 3×3)) where it pays:
// - S and E3 multiples of kWinogradChannels (the transforms' vectors; every SqueezeNet Fire's are);
// - at least kWinogradPixelsPerThread output pixels per thread: below, the weight transform (once per weights,
//   weight_memo.h) and the partly used 4×4 tiles eat the gain.
// NOTE: (EPYC, AVX-512) F(4×4, 3×3) fused against im2col, 1 thread (CPU time), the 16 Fires' channels × 2 layouts on
// one image of a thread's share, weights memoized, medians of 7, time: 14×27 (378 px) 0.53× geomean (0.46-0.61),
// 7×13 (91 px) 0.59× (0.52-0.65), 4×13 (52 px) 0.66× (0.59-0.73), 2×13 (26 px) 0.84× (0.68-0.99). (F(2×2, 3×3)
// through MKL, session 6: 13×13 at 85 a thread 1.02-1.38×, hence 160 then.)
constexpr int64_t kWinogradChannels = 16;
constexpr int64_t kWinogradPixelsPerThread = 24;

// The forward's Winograd F(4×4, 3×3) runs a band in blocks of whole tile rows whose transformed input (36 points ×
// S channels per tile) fits kWinogradBlockBytes, re-read from L2 by every pair of output-channel vectors.
// NOTE: (EPYC, AVX-512) A/B against 256 KB, forward, the 8 squeezenet1_0 Fires, 1 thread (CPU time), medians of 9:
// 96 KB 1.01× / 1.01× the time (N=1 / N=8), 768 KB 1.01× / 1.00× (flat). The fused F(4×4, 3×3) against F(2×2, 3×3)
// through 16 MKL GEMMs (the same A/B): 0.77× the time at N=1, 0.74× at N=8 (every Fire faster, 13×13 least: 0.96×,
// 0.81×); F(4×4, 3×3) through 36 MKL GEMMs alone was 0.91× / 0.85× (2 threads).
constexpr int64_t kWinogradBlockBytes = int64_t(256) << 10;

// The forward's Winograd expand split over output channels (forward.cpp, split) where all the transformed inputs
// of a call fit kSplitExpandBytes: at N=1 the 13×13 and 27×27 Fires with S <= 48 (387 KB), not the 55×55 ones.
// NOTE: (EPYC, AVX-512) optimize's whole network, 2 threads, interleaved rounds, paired medians against no split:
// squeezenet1_1 at N=1 0.97× / 0.94× the time (two runs), squeezenet1_0 0.98× / 0.985×; up to 1 MB (the 55×55 Fires
// too) 0.986× / 0.991×, up to 156 KB (13×13 only) 0.987× / 0.988×; at N=8, up to 2 MB, 1.006×. A Fire alone (hot
// caches) takes 1.05-1.09× the time split: the gain is U (4× w3) read once per call instead of once per thread.
// A Fire that applies the next Fire's squeeze (forward.cpp, next) is not split: split with the Fire's output in a
// buffer squeezed afterwards took 1.03-1.08× the time of not splitting them (session 11, whole networks at N=1); what
// is still split in a chained network (squeezenet1_1's fire9, squeezenet1_0's) then gave 0.99-1.01×.
constexpr int64_t kSplitExpandBytes = int64_t(400) << 10;

// The backward's Winograd F(4×4, 3×3) (backward.cpp) for the 3×3 expand's grad_s and weight gradient: from
// kWinogradBackwardPixelsPerThread output pixels per thread, in blocks of at most kWinogradBackwardTiles tiles (whole
// tile rows; at 512 band pixels, a whole band).
// NOTE: (EPYC) against im2col, the backward alone, 1 thread (CPU time), medians of 7: the 13×13 Fires at 169 px
// (N=1) 0.97-1.01× the time with the AVX-512 kernels, 1.12-1.18× with AVX2 (MKL in AVX2 too); at 338 px (N=2)
// 0.82-0.86× / 0.97-1.03×; the 27×27 Fires at N=1 0.57-0.62× (AVX-512). F(4×4) against the F(2×2, 3×3) through
// MKL it replaced, fwd+bwd, 8 squeezenet1_0 Fires, 1 thread, NCHW: 0.85× the time at N=1 and at N=8 (13×13 N=8
// 1.00×). F(2×2)'s blocks (session 6, AVX2): 32 / 64 / 128 tiles / whole bands 0.86 / 0.88 / 0.85 / 0.83–0.86×.
constexpr int64_t kWinogradBackwardPixelsPerThread = 320;
constexpr int64_t kWinogradBackwardTiles = 1024;

}  // namespace fusedfire_cpu
