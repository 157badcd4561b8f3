// The CPU harness program: runs the launch sequences of csrc/fire_kernels.cuh (the same host launchers
// fire_cuda.cu calls) on tensors from a file, through tests/simt/simt.h. Driven by tests/test_cuda_harness.py.
//
//   harness fwd|fire|bwd DTYPE TC SCHEDULE SEED IN OUT     DTYPE f16|bf16|f32|f64; TC 0|1; SCHEDULE
//                                                           forward|reverse|random
//   harness selftest CASE SCHEDULE SEED                     the harness's own checks on tiny kernels
//
// IN holds tensors in the order of the op's arguments (fwd/fire: x, Wsq, bsq, W1, b1, W3, b3, out[, s]; bwd:
// grad_out, x, s, out, Wsq, W1, W3, grad_s, grad_x, gWsq, gbsq, gW1, gb1, gW3, gb3), each as
//   int32 dtype (0 f16, 1 bf16, 2 f32, 3 f64), int32 ndim, int64 sizes[ndim], int64 strides[ndim],
//   int64 nbytes, bytes (the strided storage span, from the element at index 0)
// and every tensor gets its own exact-size heap buffer (ASan sees one element past it). OUT: the outputs'
// spans (fwd/fire: out[, s]; bwd: grad_s onwards), same record format.
#include "simt.h"  // before the kernels: the CUDA vocabulary

#include "fire_kernels.cuh"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Tensor {
  int32_t dtype = 0, ndim = 0;
  int64_t size[4] = {1, 1, 1, 1}, stride[4] = {0, 0, 0, 0};
  std::vector<int64_t> sizes, strides;
  int64_t nbytes = 0;
  unsigned char* data = nullptr;  // malloc'd, exactly nbytes (at least 1 for ASan to have a buffer)
};

template <class T>
void read(FILE* f, T* v, size_t n) {
  if (std::fread(v, sizeof(T), n, f) != n) ff_simt::fail("io", "truncated input file");
}

std::vector<Tensor> read_tensors(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (!f) ff_simt::fail("io", std::string("cannot open ") + path);
  int32_t count;
  read(f, &count, 1);
  std::vector<Tensor> ts(count);
  for (Tensor& t : ts) {
    read(f, &t.dtype, 1);
    read(f, &t.ndim, 1);
    t.sizes.resize(t.ndim);
    t.strides.resize(t.ndim);
    read(f, t.sizes.data(), t.ndim);
    read(f, t.strides.data(), t.ndim);
    for (int i = 0; i < t.ndim && i < 4; ++i) {
      t.size[i] = t.sizes[i];
      t.stride[i] = t.strides[i];
    }
    read(f, &t.nbytes, 1);
    t.data = static_cast<unsigned char*>(std::malloc(t.nbytes > 0 ? t.nbytes : 1));
    read(f, t.data, t.nbytes);
  }
  std::fclose(f);
  return ts;
}

void write_tensors(const char* path, const std::vector<Tensor*>& ts) {
  FILE* f = std::fopen(path, "wb");
  if (!f) ff_simt::fail("io", std::string("cannot open ") + path);
  const int32_t count = static_cast<int32_t>(ts.size());
  std::fwrite(&count, 4, 1, f);
  for (Tensor* t : ts) {
    std::fwrite(&t->dtype, 4, 1, f);
    std::fwrite(&t->ndim, 4, 1, f);
    std::fwrite(t->sizes.data(), 8, t->ndim, f);
    std::fwrite(t->strides.data(), 8, t->ndim, f);
    std::fwrite(&t->nbytes, 8, 1, f);
    std::fwrite(t->data, 1, t->nbytes, f);
  }
  std::fclose(f);
}

void strides(int64_t (&dst)[4], const Tensor& t) {
  for (int i = 0; i < 4; ++i) dst[i] = t.stride[i];
}

template <class T>
T* ptr(const Tensor& t) { return reinterpret_cast<T*>(t.data); }

template <class T>
int run_fwd(std::vector<Tensor>& ts, bool fused, bool tc, const char* out_path) {
  ff::FwdArgs<T> a{};
  const Tensor &x = ts[0], &wsq = ts[1], &w1 = ts[3], &w3 = ts[5];
  a.d = ff::Dims{static_cast<int>(x.size[0]), static_cast<int>(x.size[1]), static_cast<int>(wsq.size[0]),
                 static_cast<int>(w1.size[0]), static_cast<int>(w3.size[0]), static_cast<int>(x.size[2]),
                 static_cast<int>(x.size[3])};
  a.x = ptr<T>(x);
  strides(a.sx, x);
  a.wsq = ptr<T>(wsq);
  strides(a.swsq, wsq);
  a.bsq = ptr<T>(ts[2]);
  a.w1 = ptr<T>(w1);
  strides(a.sw1, w1);
  a.b1 = ptr<T>(ts[4]);
  a.w3 = ptr<T>(w3);
  strides(a.sw3, w3);
  a.b3 = ptr<T>(ts[6]);
  a.out = ptr<T>(ts[7]);
  strides(a.sout, ts[7]);
  std::vector<Tensor*> outs{&ts[7]};
  if (!fused) {
    a.s = ptr<T>(ts[8]);
    strides(a.ss, ts[8]);
    outs.push_back(&ts[8]);
  } else if (!ff::fused_fits<T>(a.d.S)) {
    ff_simt::fail("usage", "fire_kernel does not fit shared memory for this S; the dispatch rule says two launches");
  }
  ff::launch_fwd<T>(a, fused, tc, nullptr);
  write_tensors(out_path, outs);
  return 0;
}

template <class T>
int run_bwd(std::vector<Tensor>& ts, bool tc, const char* out_path) {
  using G = typename ff::Acc<T>::type;
  ff::BwdArgs<T> a{};
  const Tensor &x = ts[1], &wsq = ts[4], &w1 = ts[5], &w3 = ts[6];
  a.d = ff::Dims{static_cast<int>(x.size[0]), static_cast<int>(x.size[1]), static_cast<int>(wsq.size[0]),
                 static_cast<int>(w1.size[0]), static_cast<int>(w3.size[0]), static_cast<int>(x.size[2]),
                 static_cast<int>(x.size[3])};
  a.gout = ptr<T>(ts[0]);
  strides(a.sgout, ts[0]);
  a.x = ptr<T>(x);
  strides(a.sx, x);
  a.s = ptr<T>(ts[2]);
  strides(a.ss, ts[2]);
  a.out = ptr<T>(ts[3]);
  strides(a.sout, ts[3]);
  a.wsq = ptr<T>(wsq);
  strides(a.swsq, wsq);
  a.w1 = ptr<T>(w1);
  strides(a.sw1, w1);
  a.w3 = ptr<T>(w3);
  strides(a.sw3, w3);
  a.gs = ptr<G>(ts[7]);
  strides(a.sgs, ts[7]);
  a.gx = ptr<T>(ts[8]);
  strides(a.sgx, ts[8]);
  a.gwsq = ptr<T>(ts[9]);
  a.gbsq = ptr<T>(ts[10]);
  a.gw1 = ptr<T>(ts[11]);
  a.gb1 = ptr<T>(ts[12]);
  a.gw3 = ptr<T>(ts[13]);
  a.gb3 = ptr<T>(ts[14]);
  std::vector<G> work(static_cast<size_t>(ff::bwd_workspace_elems<T>(a.d)), G(-12345));  // poisoned
  a.work = work.data();
  ff::launch_bwd<T>(a, tc, nullptr);
  std::vector<Tensor*> outs;
  for (size_t i = 7; i < ts.size(); ++i) outs.push_back(&ts[i]);
  write_tensors(out_path, outs);
  return 0;
}

// ------------------------------------------------------------------------------ the harness's own checks

__global__ void race_kernel(float* out) {  // no barrier between the write and the neighbour's read
  FF_SHARED(float, buf, 64);
  ff_st(buf + threadIdx.x, 0.0f);
  __syncthreads();
  ff_st(buf + threadIdx.x, static_cast<float>(threadIdx.x));
  out[threadIdx.x] = ff_ld(buf + (threadIdx.x + 1) % 64);
}

__global__ void synced_kernel(float* out) {  // the same with the barrier: no report, rotated values
  FF_SHARED(float, buf, 64);
  ff_st(buf + threadIdx.x, static_cast<float>(threadIdx.x));
  __syncthreads();
  out[threadIdx.x] = ff_ld(buf + (threadIdx.x + 1) % 64);
}

__global__ void uninit_kernel(float* out) {
  FF_SHARED(float, buf, 64);
  if (threadIdx.x > 0) ff_st(buf + threadIdx.x, 1.0f);
  __syncthreads();
  out[threadIdx.x] = ff_ld(buf + 0);
}

__global__ void divergent_kernel(float* out) {  // two different __syncthreads
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void exited_kernel(float* out) {  // some threads leave before a barrier the others wait at
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void shuffle_deadlock_kernel(float* out) {  // a full-mask shuffle after lane 3 exited
  if (threadIdx.x % 32 == 3) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1.0f, 0);
}

__global__ void shuffle_kernel(float* out) {  // warp sum by xor-shuffles, then one atomicAdd per warp
  float v = static_cast<float>(threadIdx.x);
  for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
  if (threadIdx.x % 32 == 0) atomicAdd(out, v);
}

int selftest(const std::string& which) {
  std::vector<float> out(64, 0.0f);
  float* o = out.data();
  if (which == "race") FF_LAUNCH(race_kernel, dim3(1), dim3(64), 0, nullptr, o);
  else if (which == "synced") FF_LAUNCH(synced_kernel, dim3(1), dim3(64), 0, nullptr, o);
  else if (which == "uninit") FF_LAUNCH(uninit_kernel, dim3(1), dim3(64), 0, nullptr, o);
  else if (which == "divergent") FF_LAUNCH(divergent_kernel, dim3(2), dim3(64), 0, nullptr, o);
  else if (which == "exited") FF_LAUNCH(exited_kernel, dim3(1), dim3(64), 0, nullptr, o);
  else if (which == "shuffle_deadlock") FF_LAUNCH(shuffle_deadlock_kernel, dim3(1), dim3(64), 0, nullptr, o);
  else if (which == "shuffle") FF_LAUNCH(shuffle_kernel, dim3(3), dim3(64), 0, nullptr, o);
  else ff_simt::fail("usage", "unknown selftest " + which);
  if (which == "synced")
    for (int i = 0; i < 64; ++i)
      if (out[i] != static_cast<float>((i + 1) % 64)) ff_simt::fail("selftest", "synced_kernel: wrong value");
  if (which == "shuffle" && out[0] != 3.0f * (63 * 64 / 2)) ff_simt::fail("selftest", "shuffle_kernel: wrong sum");
  std::printf("ok %s\n", which.c_str());
  return 0;
}

ff_simt::Schedule schedule(const std::string& s) {
  if (s == "forward") return ff_simt::Schedule::Forward;
  if (s == "reverse") return ff_simt::Schedule::Reverse;
  if (s == "random") return ff_simt::Schedule::Random;
  ff_simt::fail("usage", "unknown schedule " + s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) ff_simt::fail("usage", "harness fwd|fire|bwd|selftest ...");
  const std::string mode = argv[1];
  if (mode == "selftest") {
    if (argc != 5) ff_simt::fail("usage", "harness selftest CASE SCHEDULE SEED");
    ff_simt::set_schedule(schedule(argv[3]), std::stoull(argv[4]));
    return selftest(argv[2]);
  }
  if (argc != 8) ff_simt::fail("usage", "harness fwd|fire|bwd DTYPE TC SCHEDULE SEED IN OUT");
  const std::string dtype = argv[2];
  const bool tc = std::string(argv[3]) == "1";
  ff_simt::set_schedule(schedule(argv[4]), std::stoull(argv[5]));
  std::vector<Tensor> ts = read_tensors(argv[6]);
  int rc = 0;
  auto dispatch = [&](auto tag) {
    using T = decltype(tag);
    if (mode == "bwd") rc = run_bwd<T>(ts, tc, argv[7]);
    else rc = run_fwd<T>(ts, mode == "fire", tc, argv[7]);
  };
#ifndef FF_HARNESS_F32_ONLY  // the planted-bug builds: fp32 only, to compile faster
  if (dtype == "f16") dispatch(__half{});
  else if (dtype == "bf16") dispatch(__nv_bfloat16{});
  else if (dtype == "f64") dispatch(double{});
  else
#endif
  if (dtype == "f32") dispatch(float{});
  else ff_simt::fail("usage", "unknown dtype " + dtype);
  for (Tensor& t : ts) std::free(t.data);
  std::fprintf(stderr, "simt: %lld launches, %lld blocks, %lld fiber switches\n", ff_simt::sim().launches,
               ff_simt::sim().blocks_run, ff_simt::sim().switches);
  return rc;
}
