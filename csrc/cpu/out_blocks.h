// Outputs of optimize's inference ops (native_fire_packed, native_stem) in memory blocks kept between calls: every
// inference of a network asks for the same sizes again, and a fresh large allocation faults in each of its pages
// (glibc returns freed large blocks to the system: mmap, or trimming the heap's top). A block comes back when its
// tensor's storage is freed (from_blob's deleter) and serves the next request of exactly its size; a tensor of these
// cannot be resized in place (its storage is not torch's), which optimize's intermediate activations never need.
// NOTE: (EPYC, AVX-512) optimize's squeezenet1_1 at N=8 faulted in 4 000-6 000 pages an inference (getrusage); with
// glibc told to keep its memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) it took 0.76-0.87× the time.
#pragma once
#include <torch/csrc/stable/ops.h>
#include <torch/headeronly/core/MemoryFormat.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "bands.h"

namespace fusedfire_cpu {

// Below this many bytes the C library's own free lists serve (no page faults); at most kMaxKeptOutBytes kept.
constexpr size_t kMinKeptOutBytes = size_t(1) << 20;
constexpr size_t kMaxKeptOutBytes = size_t(256) << 20;

class OutBlocks {
 public:
  void* take(size_t bytes) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        kept_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    STD_TORCH_CHECK(p, "fusedfire cpu: out of memory allocating ", bytes, " bytes for an output");
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (kept_ + bytes <= kMaxKeptOutBytes) {
        free_.emplace(bytes, p);
        kept_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  // Frees every kept block (none is in use: a block in use is a live tensor's); the bytes freed.
  size_t release() {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [bytes, p] : free_) std::free(p);
    free_.clear();
    const size_t freed = kept_;
    kept_ = 0;
    return freed;
  }

 private:
  std::mutex mutex_;
  std::unordered_multimap<size_t, void*> free_;  // by size in bytes
  size_t kept_ = 0;
};

// Never destroyed: a tensor may be freed after static destructors have run.
inline OutBlocks& out_blocks() {
  static OutBlocks* blocks = new OutBlocks;
  return *blocks;
}

// An fp32 N × C × H × W tensor in memory format fmt (channels_last or contiguous), from a kept block where it is
// large enough to matter.
inline Tensor kept_empty(int64_t N, int64_t C, int64_t H, int64_t W, torch::headeronly::MemoryFormat fmt) {
  const int64_t sizes[] = {N, C, H, W};
  const size_t bytes = size_t(N * C * H * W) * sizeof(float);
  if (bytes < kMinKeptOutBytes) {
    return torch::stable::empty(sizes, ScalarType::Float, std::nullopt, std::nullopt, std::nullopt, fmt);
  }
  const bool cl = fmt == torch::headeronly::MemoryFormat::ChannelsLast;
  const int64_t strides[] = {C * H * W, cl ? 1 : H * W, cl ? W * C : W, cl ? C : 1};
  void* p = out_blocks().take(bytes);
  try {
    return torch::stable::from_blob(p, sizes, strides, torch::stable::Device(torch::headeronly::DeviceType::CPU),
                                    ScalarType::Float, [bytes](void* data) { out_blocks().give(data, bytes); });
  } catch (...) {
    out_blocks().give(p, bytes);
    throw;
  }
}

}  // namespace fusedfire_cpu
