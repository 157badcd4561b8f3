// Weights derived per call (the Winograd transforms), memoized on the exact bytes they are derived from, per calling
// thread: an inference that calls a Fire with the same weights again skips the transform; weights changed in place
// (a training step) no longer match byte for byte and are transformed afresh. Never stale: a hit compares every
// byte of its source.
#pragma once
#include <cstdint>
#include <cstring>
#include <list>
#include <vector>

#include "bands.h"
#include "heuristics.h"

namespace fusedfire_cpu {

// The memoized `out_n` floats derived by make(out) from the `src_n` floats at src, under `tag` (what the derivation
// is: it must tell apart any two derivations of equal sizes). The pointer stays valid until this thread's next call
// (a result too large to keep goes to `fresh`, or the thread's kept scratch slot 4).
// NOTE: (EPYC, AVX-512) the F(4×4, 3×3) weight transform took 25% of a 13×13 Fire at N=1 (1_0.features.12, 1 thread,
// perf); a hit costs one memcmp of w3. At most kWeightMemoBytes of sources and results kept, least recently used
// dropped first.
template <typename Make>
const float* weight_memo(int64_t tag, const float* src, int64_t src_n, int64_t out_n, Fresh& fresh, const Make& make) {
  struct Entry {
    int64_t tag;
    std::vector<float> src, out;
  };
  thread_local std::list<Entry> entries;  // most recently used first
  thread_local int64_t bytes = 0;
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->tag == tag && int64_t(it->src.size()) == src_n && int64_t(it->out.size()) == out_n &&
        std::memcmp(it->src.data(), src, src_n * sizeof(float)) == 0) {
      entries.splice(entries.begin(), entries, it);
      return entries.front().out.data();
    }
  }
  const int64_t need = (src_n + out_n) * int64_t(sizeof(float));
  if (need > kWeightMemoBytes) {
    float* out = thread_scratch<float, 4>(out_n, fresh);
    make(out);
    return out;
  }
  while (!entries.empty() && bytes + need > kWeightMemoBytes) {
    bytes -= int64_t(entries.back().src.size() + entries.back().out.size()) * int64_t(sizeof(float));
    entries.pop_back();
  }
  entries.push_front({tag, std::vector<float>(src, src + src_n), std::vector<float>(out_n)});
  bytes += need;
  make(entries.front().out.data());
  const float* out = entries.front().out.data();
  return out;
}

}  // namespace fusedfire_cpu
