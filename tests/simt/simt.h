// SIMT-on-CPU: lets g++ compile csrc/fire_kernels.cuh and run its kernels on the CPU, thread by thread.
//
// Every block's threads run as fibers (ucontext) on one OS thread, blocks one after another. A fiber runs until
// it reaches a barrier: __syncthreads (block), __syncwarp / full-mask shuffles / the mma.sync emulation (warp).
// The scheduler then runs the others (order: forward, reverse or random(seed), per round and per block) and
// releases a barrier when every live thread of its block (warp) waits at it. Checked, each a report on stderr
// ("SIMT ERROR [kind]: ...") and exit code 3:
//   race        two threads touch one shared-memory byte in the same barrier interval, one of them writing
//               (shadow per byte: last writer and readers with the __syncthreads epoch and .cuh line);
//   uninit      a shared-memory read of a byte no thread of the block has written (memory starts poisoned, 0xFF);
//   divergence  threads of a block wait at different __syncthreads, or some exited while others wait at one;
//   deadlock    a warp collective waits for lanes that exited or wait elsewhere;
//   smem        static + dynamic shared memory above the 48 KiB a block gets without opting in.
// Global memory is plain host memory: build with -fsanitize=address to catch out-of-bounds accesses.
// NOTE: the race check orders shared accesses by __syncthreads only (warp-synchronous shared-memory exchange
// would be flagged); the kernels of csrc/ exchange data within a warp only through mma.sync.
#pragma once
#define FF_SIMT_H 1
#ifndef FF_SIMT
#define FF_SIMT 1
#endif

#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FF_SIMT_ASAN 1
#else
#define FF_SIMT_ASAN 0
#endif

// ------------------------------------------------------------------------------------ CUDA vocabulary

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using cudaStream_t = void*;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define FF_DEVICE inline

// fp16 / bf16 as bit patterns with round-to-nearest-even conversions (fp16 through GCC's _Float16).
struct __half {
  uint16_t x;
};
struct __nv_bfloat16 {
  uint16_t x;
};
inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.x, 2);
  return static_cast<float>(f);
}
inline __half __float2half_rn(float v) {
  _Float16 f = static_cast<_Float16>(v);
  __half h;
  std::memcpy(&h.x, &f, 2);
  return h;
}
inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = static_cast<uint32_t>(b.x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{static_cast<uint16_t>((u >> 16) | 0x40)};  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<uint16_t>(u >> 16)};
}

namespace ff_simt {

[[noreturn]] inline void fail(const char* kind, const std::string& msg) {
  std::fprintf(stderr, "SIMT ERROR [%s]: %s\n", kind, msg.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

enum class Schedule { Forward, Reverse, Random };
enum class State { Runnable, BlockBarrier, WarpBarrier, Exited };

constexpr size_t kSmemLimit = 48 * 1024;  // per block, without cudaFuncSetAttribute opt-in
constexpr size_t kStaticRegion = 64 * 1024, kArena = 2 * kStaticRegion;
constexpr size_t kStack = FF_SIMT_ASAN ? 512 * 1024 : 128 * 1024;

struct Thread {
  ucontext_t ctx;
  dim3 idx;
  int linear = 0;
  State state = State::Exited;
  int site = 0;  // line of the barrier it waits at
  const char* site_file = "";
  unsigned collective_calls = 0;  // parity of the double-buffered warp exchange slots
  std::vector<char> stack;
  void* fake_stack = nullptr;
};

struct Shadow {  // per shared-memory byte
  uint32_t w_epoch = 0, r_epoch = 0;
  int32_t w_tid = -1, r_tid = -1, w_line = 0, r_line = 0;
  bool init = false;
};

// A warp's exchange slot: every lane deposits 32 bytes, then reads the others' after the warp barrier.
struct Slot {
  unsigned char lane[32][48];
};

struct Sim {
  Schedule schedule = Schedule::Forward;
  std::mt19937_64 rng{0};
  const char* kernel = "";
  dim3 grid, block, block_idx;
  size_t dynamic_smem = 0, static_used = 0;
  std::map<const void*, size_t> static_offsets;
  std::vector<unsigned char> arena = std::vector<unsigned char>(kArena);
  std::vector<Shadow> shadow = std::vector<Shadow>(kArena);
  uint32_t epoch = 1;
  int last_barrier_line = 0;
  std::vector<Thread> threads;
  std::vector<Slot> slots[2];
  Thread* cur = nullptr;
  ucontext_t sched_ctx;
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  std::function<void()> body;
  long long launches = 0, blocks_run = 0, switches = 0;
};

inline Sim& sim() {
  static Sim s;
  return s;
}

inline void set_schedule(Schedule s, uint64_t seed) {
  sim().schedule = s;
  sim().rng.seed(seed);
}

inline std::string thread_name(const Thread& t) {
  return "thread (" + std::to_string(t.idx.x) + "," + std::to_string(t.idx.y) + "," + std::to_string(t.idx.z) +
         ") of block (" + std::to_string(sim().block_idx.x) + "," + std::to_string(sim().block_idx.y) + "," +
         std::to_string(sim().block_idx.z) + ") of " + sim().kernel;
}

inline const dim3& thread_idx() { return sim().cur->idx; }

// ------------------------------------------------------------------------------------ fiber switching

inline void to_scheduler() {  // from a fiber
  Sim& s = sim();
  Thread* t = s.cur;
  ++s.switches;
#if FF_SIMT_ASAN
  __sanitizer_start_switch_fiber(t->state == State::Exited ? nullptr : &t->fake_stack, s.sched_bottom,
                                 s.sched_size);
#endif
  swapcontext(&t->ctx, &s.sched_ctx);
#if FF_SIMT_ASAN
  __sanitizer_finish_switch_fiber(t->fake_stack, &s.sched_bottom, &s.sched_size);
#endif
}

inline void fiber_main() {
  Sim& s = sim();
#if FF_SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &s.sched_bottom, &s.sched_size);
#endif
  s.body();
  s.cur->state = State::Exited;
  to_scheduler();
  fail("internal", "an exited fiber was resumed");
}

inline void run_fiber(Thread& t) {  // from the scheduler
  Sim& s = sim();
  s.cur = &t;
#if FF_SIMT_ASAN
  __sanitizer_start_switch_fiber(&s.sched_fake, t.stack.data(), t.stack.size());
#endif
  swapcontext(&s.sched_ctx, &t.ctx);
#if FF_SIMT_ASAN
  __sanitizer_finish_switch_fiber(s.sched_fake, nullptr, nullptr);
#endif
  s.cur = nullptr;
}

inline void wait(State st, const char* file, int line) {
  Thread* t = sim().cur;
  t->state = st;
  t->site = line;
  t->site_file = file;
  to_scheduler();
}

inline void syncthreads(const char* file, int line) { wait(State::BlockBarrier, file, line); }
inline void syncwarp(const char* file, int line) { wait(State::WarpBarrier, file, line); }

// ------------------------------------------------------------------------------------ the scheduler

inline std::string describe_states(const std::vector<Thread*>& ts) {
  std::map<std::string, int> counts;
  for (Thread* t : ts) {
    std::string k = t->state == State::Exited         ? "exited"
                    : t->state == State::BlockBarrier ? "__syncthreads at line " + std::to_string(t->site)
                    : t->state == State::WarpBarrier  ? "warp collective at line " + std::to_string(t->site)
                                                      : "runnable";
    counts[k]++;
  }
  std::string out;
  for (auto& kv : counts) out += (out.empty() ? "" : ", ") + std::to_string(kv.second) + "× " + kv.first;
  return out;
}

// Releases what can be released; false when nothing could (the caller reports).
inline bool release() {
  Sim& s = sim();
  const int n = static_cast<int>(s.threads.size());
  bool released = false;
  for (int w0 = 0; w0 < n; w0 += 32) {  // warps whose every lane waits at a warp collective
    const int w1 = std::min(n, w0 + 32);
    int waiting = 0, exited = 0, line = -1;
    bool same = true;
    for (int i = w0; i < w1; ++i) {
      const Thread& t = s.threads[i];
      if (t.state == State::WarpBarrier) {
        ++waiting;
        same = same && (line < 0 || line == t.site);
        line = t.site;
      } else if (t.state == State::Exited) {
        ++exited;
      }
    }
    if (waiting == 0) continue;
    if (exited > 0) {
      std::vector<Thread*> ts;
      for (int i = w0; i < w1; ++i) ts.push_back(&s.threads[i]);
      fail("deadlock", "warp " + std::to_string(w0 / 32) + " of block (" + std::to_string(s.block_idx.x) + "," +
                           std::to_string(s.block_idx.y) + "," + std::to_string(s.block_idx.z) + ") of " +
                           s.kernel + ": a full-mask warp collective waits for lanes that exited (" +
                           describe_states(ts) + ")");
    }
    if (waiting == w1 - w0) {
      if (!same) {
        std::vector<Thread*> ts;
        for (int i = w0; i < w1; ++i) ts.push_back(&s.threads[i]);
        fail("divergence", "lanes of warp " + std::to_string(w0 / 32) + " of " + s.kernel +
                               " wait at different warp collectives (" + describe_states(ts) + ")");
      }
      for (int i = w0; i < w1; ++i) s.threads[i].state = State::Runnable;
      released = true;
    }
  }
  if (released) return true;
  int waiting = 0, exited = 0, line = -1;
  bool same = true;
  std::vector<Thread*> all;
  for (Thread& t : s.threads) {
    all.push_back(&t);
    if (t.state == State::BlockBarrier) {
      ++waiting;
      same = same && (line < 0 || line == t.site);
      line = t.site;
    } else if (t.state == State::Exited) {
      ++exited;
    }
  }
  if (waiting == 0) return false;
  if (waiting + exited == n) {
    if (exited > 0 || !same)
      fail("divergence", std::string("__syncthreads in block (") + std::to_string(s.block_idx.x) + "," +
                             std::to_string(s.block_idx.y) + "," + std::to_string(s.block_idx.z) + ") of " +
                             s.kernel + " not reached by every thread at one place: " + describe_states(all));
    for (Thread& t : s.threads) t.state = State::Runnable;
    ++s.epoch;  // a new barrier interval: earlier shared accesses are ordered before later ones
    s.last_barrier_line = line;
    return true;
  }
  fail("deadlock", std::string("block (") + std::to_string(s.block_idx.x) + "," + std::to_string(s.block_idx.y) +
                       "," + std::to_string(s.block_idx.z) + ") of " + s.kernel +
                       ": threads wait at barriers that can never complete: " + describe_states(all));
}

inline void run_block() {
  Sim& s = sim();
  const int n = static_cast<int>(s.block.x * s.block.y * s.block.z);
  if (static_cast<int>(s.threads.size()) < n) s.threads.resize(n);
  s.threads.resize(n);
  for (int w = 0; w < 2; ++w) s.slots[w].assign((n + 31) / 32, Slot{});
  std::fill(s.arena.begin(), s.arena.end(), 0xFF);  // poison: NaN for fp16/bf16/fp32/fp64
  std::fill(s.shadow.begin(), s.shadow.end(), Shadow{});
  s.epoch = 1;
  for (int i = 0; i < n; ++i) {
    Thread& t = s.threads[i];
    t.linear = i;
    t.idx = dim3(i % s.block.x, (i / s.block.x) % s.block.y, i / (s.block.x * s.block.y));
    t.state = State::Runnable;
    t.collective_calls = 0;
    if (t.stack.size() != kStack) t.stack.assign(kStack, 0);
    getcontext(&t.ctx);
    t.ctx.uc_stack.ss_sp = t.stack.data();
    t.ctx.uc_stack.ss_size = t.stack.size();
    t.ctx.uc_link = nullptr;
    makecontext(&t.ctx, fiber_main, 0);
  }
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  if (s.schedule == Schedule::Reverse) std::reverse(order.begin(), order.end());
  for (;;) {
    if (s.schedule == Schedule::Random) std::shuffle(order.begin(), order.end(), s.rng);
    for (int i : order)
      if (s.threads[i].state == State::Runnable) run_fiber(s.threads[i]);
    bool done = true;
    for (const Thread& t : s.threads) done = done && t.state == State::Exited;
    if (done) break;
    if (!release())
      fail("deadlock", std::string("block of ") + s.kernel + " cannot make progress");
  }
  ++s.blocks_run;
}

template <class F>
void launch(const char* kernel, dim3 grid, dim3 block, size_t dynamic_smem, F body) {
  Sim& s = sim();
  if (block.x * block.y * block.z == 0 || block.x * block.y * block.z > 1024)
    fail("launch", std::string(kernel) + ": invalid block size");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    fail("launch", std::string(kernel) + ": invalid grid (" + std::to_string(grid.x) + "," +
                       std::to_string(grid.y) + "," + std::to_string(grid.z) + ")");
  if (dynamic_smem > kSmemLimit) fail("smem", std::string(kernel) + ": dynamic shared memory above 48 KiB");
  s.kernel = kernel;
  s.grid = grid;
  s.block = block;
  s.dynamic_smem = dynamic_smem;
  s.static_used = 0;
  s.static_offsets.clear();
  s.body = body;
  ++s.launches;
  std::vector<dim3> blocks;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) blocks.push_back(dim3(x, y, z));
  if (s.schedule == Schedule::Reverse) std::reverse(blocks.begin(), blocks.end());
  if (s.schedule == Schedule::Random) std::shuffle(blocks.begin(), blocks.end(), s.rng);
  for (const dim3& b : blocks) {
    s.block_idx = b;
    run_block();
  }
}

// --------------------------------------------------------------------------------- shared memory

inline void* static_shared(const void* key, size_t bytes, size_t align) {
  Sim& s = sim();
  auto it = s.static_offsets.find(key);
  if (it == s.static_offsets.end()) {
    size_t off = (s.static_used + align - 1) / align * align;
    s.static_used = off + bytes;
    if (s.static_used + s.dynamic_smem > kSmemLimit)
      fail("smem", std::string(s.kernel) + ": static (" + std::to_string(s.static_used) + " B) + dynamic (" +
                       std::to_string(s.dynamic_smem) + " B) shared memory above 48 KiB");
    it = s.static_offsets.emplace(key, off).first;
  }
  return s.arena.data() + it->second;
}

inline void* dynamic_shared() { return sim().arena.data() + kStaticRegion; }

inline Shadow* shadow_of(const void* p, size_t n) {
  Sim& s = sim();
  const unsigned char* b = static_cast<const unsigned char*>(p);
  if (b < s.arena.data() || b + n > s.arena.data() + s.arena.size()) return nullptr;
  const size_t off = b - s.arena.data();
  if (off >= kStaticRegion ? off + n > kStaticRegion + s.dynamic_smem : off + n > s.static_used)
    fail("smem-bounds", thread_name(*s.cur) + " accesses shared memory outside its allocations (offset " +
                            std::to_string(off) + ")");
  return &s.shadow[off];
}

inline std::string where(size_t off) {
  return (off >= kStaticRegion ? "dynamic shared offset " + std::to_string(off - kStaticRegion)
                               : "static shared offset " + std::to_string(off));
}

template <class T>
T ld(const T* p, int line) {
  Sim& s = sim();
  Shadow* sh = shadow_of(p, sizeof(T));
  if (sh != nullptr) {
    const int me = s.cur->linear;
    const size_t off = reinterpret_cast<const unsigned char*>(p) - s.arena.data();
    for (size_t i = 0; i < sizeof(T); ++i) {
      Shadow& b = sh[i];
      if (!b.init)
        fail("uninit", thread_name(*s.cur) + " reads " + where(off + i) + " (line " +
                           std::to_string(line) + ") before any thread wrote it");
      if (b.w_epoch == s.epoch && b.w_tid != me)
        fail("race", thread_name(*s.cur) + " reads " + where(off + i) + " at line " +
                         std::to_string(line) + ", written by thread " + std::to_string(b.w_tid) + " at line " +
                         std::to_string(b.w_line) + " with no __syncthreads in between");
      if (b.r_epoch != s.epoch) {
        b.r_epoch = s.epoch;
        b.r_tid = me;
      } else if (b.r_tid != me) {
        b.r_tid = -2;  // several readers
      }
      b.r_line = line;
    }
  }
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
void st(T* p, T v, int line) {
  Sim& s = sim();
  Shadow* sh = shadow_of(p, sizeof(T));
  if (sh != nullptr) {
    const int me = s.cur->linear;
    const size_t off = reinterpret_cast<unsigned char*>(p) - s.arena.data();
    for (size_t i = 0; i < sizeof(T); ++i) {
      Shadow& b = sh[i];
      if (b.w_epoch == s.epoch && b.w_tid != me)
        fail("race", thread_name(*s.cur) + " writes " + where(off + i) + " at line " +
                         std::to_string(line) + ", also written by thread " + std::to_string(b.w_tid) +
                         " at line " + std::to_string(b.w_line) + " in the same barrier interval");
      if (b.r_epoch == s.epoch && b.r_tid != me)
        fail("race", thread_name(*s.cur) + " writes " + where(off + i) + " at line " +
                         std::to_string(line) + ", read by " +
                         (b.r_tid == -2 ? std::string("several threads") : "thread " + std::to_string(b.r_tid)) +
                         " at line " + std::to_string(b.r_line) + " in the same barrier interval");
      b.w_epoch = s.epoch;
      b.w_tid = me;
      b.w_line = line;
      b.init = true;
    }
  }
  std::memcpy(p, &v, sizeof(T));
}

// ------------------------------------------------------------------------------------ warp collectives

// Deposits `bytes` of this lane's data, waits for the warp, returns the warp's slot (all 32 lanes' data).
inline const Slot& exchange(const void* data, size_t bytes, const char* file, int line) {
  Sim& s = sim();
  Thread* t = s.cur;
  Slot& slot = s.slots[t->collective_calls++ & 1][t->linear / 32];
  std::memcpy(slot.lane[t->linear % 32], data, bytes);
  syncwarp(file, line);
  return slot;  // double-buffered: the next collective uses the other slot, so this one is stable until the
                // one after it, which no lane can reach before every lane has passed the next barrier
}

inline void check_full_mask(unsigned mask, const char* what) {
  if (mask != 0xffffffffu) fail("unsupported", std::string(what) + " with a partial mask");
  if (sim().block.x * sim().block.y * sim().block.z % 32 != 0)
    fail("unsupported", std::string(what) + " in a block that is not a whole number of warps");
}

template <class T>
T shfl(unsigned mask, T v, int src_lane, const char* file, int line) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  check_full_mask(mask, "__shfl_sync");
  const Slot& slot = exchange(&v, sizeof(T), file, line);
  T r;
  std::memcpy(&r, slot.lane[src_lane & 31], sizeof(T));
  return r;
}

inline int lane_id() { return sim().cur->linear % 32; }

inline float tf32_value(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t cvt_rna_tf32(float f) {  // cvt.rna.tf32.f32: nearest, ties away from zero, 10 mantissa bits
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;
  return u & 0xffffe000u;
}

struct MmaLane {
  uint32_t a[4], b[2];
};

inline float half_value(uint16_t bits, bool bf16) {
  return bf16 ? __bfloat162float(__nv_bfloat16{bits}) : __half2float(__half{bits});
}

// d += A·B for the warp's m16n8kK fragments (PTX ISA fragment layouts), emulated: gather all lanes' A and B
// fragments at a warp barrier, rebuild the 16×K and K×8 matrices, compute this lane's four D elements.
inline void mma_emulate(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], int K, int kind,
                        int line) {
  MmaLane mine;
  std::memcpy(mine.a, a, sizeof(mine.a));
  std::memcpy(mine.b, b, sizeof(mine.b));
  const Slot& slot = exchange(&mine, sizeof(mine), "mma.sync", line);
  float A[16][16], B[16][8];
  for (int L = 0; L < 32; ++L) {
    MmaLane f;
    std::memcpy(&f, slot.lane[L], sizeof(f));
    const int g = L >> 2, t = L & 3;
    if (kind == 2) {  // tf32 m16n8k8
      A[g][t] = tf32_value(f.a[0]);
      A[g + 8][t] = tf32_value(f.a[1]);
      A[g][t + 4] = tf32_value(f.a[2]);
      A[g + 8][t + 4] = tf32_value(f.a[3]);
      B[t][g] = tf32_value(f.b[0]);
      B[t + 4][g] = tf32_value(f.b[1]);
    } else {  // f16 / bf16 m16n8k16: the low half of each register is the lower column (k)
      const bool bf = kind == 1;
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = half_value(static_cast<uint16_t>(f.a[0] >> (16 * h)), bf);
        A[g + 8][2 * t + h] = half_value(static_cast<uint16_t>(f.a[1] >> (16 * h)), bf);
        A[g][2 * t + 8 + h] = half_value(static_cast<uint16_t>(f.a[2] >> (16 * h)), bf);
        A[g + 8][2 * t + 8 + h] = half_value(static_cast<uint16_t>(f.a[3] >> (16 * h)), bf);
        B[2 * t + h][g] = half_value(static_cast<uint16_t>(f.b[0] >> (16 * h)), bf);
        B[2 * t + 8 + h][g] = half_value(static_cast<uint16_t>(f.b[1] >> (16 * h)), bf);
      }
    }
  }
  const int L = lane_id(), g = L >> 2, t = L & 3;
  for (int e = 0; e < 4; ++e) {
    const int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
    float acc = 0.0f;  // products of fp16/bf16/tf32 values are exact in fp32
    for (int k = 0; k < K; ++k) acc += A[row][k] * B[k][col];
    d[e] += acc;
  }
}

template <class OpT>
void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], int line = 0) {
  mma_emulate(d, a, b, 16, std::is_same<OpT, __nv_bfloat16>::value ? 1 : 0, line);
}
inline void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], int line = 0) {
  mma_emulate(d, a, b, 8, 2, line);
}

}  // namespace ff_simt

// The CUDA names kernels use.
#define threadIdx (::ff_simt::thread_idx())
#define blockIdx (::ff_simt::sim().block_idx)
#define blockDim (::ff_simt::sim().block)
#define gridDim (::ff_simt::sim().grid)
#define __syncthreads() ::ff_simt::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::ff_simt::syncwarp(__FILE__, __LINE__)
#define __shfl_sync(mask, v, src, ...) ::ff_simt::shfl(mask, v, src, __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, x, ...) ::ff_simt::shfl(mask, v, ::ff_simt::lane_id() ^ (x), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...)                                                               \
  ::ff_simt::shfl(mask, v, ::ff_simt::lane_id() + (d) < 32 ? ::ff_simt::lane_id() + (d) : ::ff_simt::lane_id(), \
                  __FILE__, __LINE__)
template <class T>
T atomicAdd(T* p, T v) {  // one OS thread: a plain read-modify-write is atomic
  T old = *p;
  *p = old + v;
  return old;
}

// The project macros of fire_kernels.cuh.
#define ff_ld(p) ::ff_simt::ld((p), __LINE__)
#define ff_st(p, v) ::ff_simt::st((p), (v), __LINE__)
#define FF_SHARED(T, name, count)      \
  static char ff_shared_key_##name;    \
  T* name = static_cast<T*>(::ff_simt::static_shared(&ff_shared_key_##name, sizeof(T) * (count), alignof(T)))
#define FF_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::ff_simt::dynamic_shared())
#define FF_LAUNCH(kernel, grid, block, smem, stream, ...)               \
  do {                                                                  \
    (void)(stream);                                                     \
    ::ff_simt::launch(#kernel, grid, block, smem, [&] { kernel(__VA_ARGS__); }); \
  } while (0)
