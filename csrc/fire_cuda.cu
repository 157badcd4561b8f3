// Launchers of the Fire kernels (csrc/fire_kernels.cuh) for CUDA tensors: argument checks (checks.h), device guard,
// the current stream, output allocation in memory_format(x) (layout.h), dtype dispatch. LibTorch's stable ABI only
// (target 2.11: one build for every torch >= 2.11). Registered in fire_ops.cpp as fusedfire::native_fire,
// native_fire_fwd, native_fire_bwd (schemas and fakes: fusedfire/ops.py).
#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <tuple>
#include <type_traits>

#include "checks.h"
#include "dtypes.h"
#include "fire_kernels.cuh"
#include "layout.h"

namespace fusedfire {

using Tensor = torch::stable::Tensor;
using torch::headeronly::ScalarType;

bool cudnn_allow_tf32();  // fire_ops.cpp

namespace {

template <class T>
struct Cuda { using type = T; };
template <>
struct Cuda<torch::headeronly::Half> { using type = __half; };
template <>
struct Cuda<torch::headeronly::BFloat16> { using type = __nv_bfloat16; };

constexpr int64_t kInt32 = int64_t{1} << 31;

// x's 4 dims and the weights' shapes, dtypes and devices; every tensor the kernels index with int32 offsets
// (x by pixel, the weights by element) within 2^31.
void check_weights(const Tensor& x, const Tensor& squeeze_weight, const Tensor& expand1x1_weight,
                   const Tensor& expand3x3_weight) {
  CHECK_CUDA(x);
  fusedfire::check_fire_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  FF_CHECK(x.size(0) * x.size(2) * x.size(3) < kInt32, "x has N·H·W = ", x.size(0) * x.size(2) * x.size(3),
           " pixels; the kernels take < 2^31");
  for (const Tensor* w : {&squeeze_weight, &expand1x1_weight, &expand3x3_weight})
    FF_CHECK(w->numel() < kInt32, "a weight has ", w->numel(), " elements; the kernels take < 2^31");
}

ff::Dims dims(const Tensor& x, const Tensor& wsq, const Tensor& w1, const Tensor& w3) {
  return ff::Dims{static_cast<int>(x.size(0)), static_cast<int>(x.size(1)), static_cast<int>(wsq.size(0)),
                  static_cast<int>(w1.size(0)), static_cast<int>(w3.size(0)), static_cast<int>(x.size(2)),
                  static_cast<int>(x.size(3))};
}

void strides(int64_t (&dst)[4], const Tensor& t) {
  for (int i = 0; i < 4; ++i) dst[i] = t.stride(i);
}

// ptr = t's data as P* (const P: read-only, no copy-on-write materialisation), and its 4 strides when given.
template <typename P>
void bind(P*& ptr, const Tensor& t) {
  if constexpr (std::is_const_v<P>) {
    ptr = reinterpret_cast<P*>(t.const_data_ptr());
  } else {
    ptr = reinterpret_cast<P*>(t.mutable_data_ptr());
  }
}
template <typename P>
void bind(P*& ptr, int64_t (&st)[4], const Tensor& t) {
  bind(ptr, t);
  strides(st, t);
}

// fp16/bf16: mma.sync whenever the arch has it (tile_mma falls back by itself below sm_80); fp32: tf32 exactly
// where eager convs use it (torch.backends.cudnn.allow_tf32); fp64: never.
bool tensor_cores(const Tensor& x) {
  return x.scalar_type() != ScalarType::Float || cudnn_allow_tf32();
}

// The current CUDA stream of x's device (torch.cuda.current_stream), through the C shim.
cudaStream_t current_stream(const Tensor& x) {
  void* stream = nullptr;
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(x.get_device_index(), &stream));
  return static_cast<cudaStream_t>(stream);
}

// A new tensor on x's device in `dtype`, laid out in memory_format(x).
Tensor empty_like_x(const Tensor& x, std::initializer_list<int64_t> sizes, ScalarType dtype) {
  return torch::stable::empty(sizes, dtype, std::nullopt, x.device(), std::nullopt, memory_format(x));
}

// A C-element parameter: the kernels index it densely.
Tensor dense_bias(const Tensor& b) { return b.is_contiguous() ? b : torch::stable::contiguous(b); }

// (out, s); want_s false: native_fire (the fused kernel when it fits, s undefined; else two launches through s).
std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& squeeze_weight, const Tensor& squeeze_bias,
                                   const Tensor& expand1x1_weight, const Tensor& expand1x1_bias,
                                   const Tensor& expand3x3_weight, const Tensor& expand3x3_bias, bool want_s) {
  check_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  CHECK_SHAPE(squeeze_bias, squeeze_weight.size(0));
  CHECK_SHAPE(expand1x1_bias, expand1x1_weight.size(0));
  CHECK_SHAPE(expand3x3_bias, expand3x3_weight.size(0));
  CHECK_LIKE(squeeze_bias, x);
  CHECK_LIKE(expand1x1_bias, x);
  CHECK_LIKE(expand3x3_bias, x);
  const Tensor bsq = dense_bias(squeeze_bias), b1 = dense_bias(expand1x1_bias), b3 = dense_bias(expand3x3_bias);
  const torch::stable::accelerator::DeviceGuard guard(x.get_device_index());
  const ff::Dims d = dims(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  Tensor out = empty_like_x(x, {d.N, d.E1 + d.E3, d.H, d.W}, x.scalar_type());
  Tensor s;
  FF_DISPATCH_FLOATING(x.scalar_type(), "fusedfire_native_fire", [&] {
    using T = typename Cuda<scalar_t>::type;
    const bool fused = !want_s && ff::fused_fits<T>(d.S);
    if (!fused) s = empty_like_x(x, {d.N, d.S, d.H, d.W}, x.scalar_type());
    if (d.P() == 0) return;
    ff::FwdArgs<T> a{};
    a.d = d;
    bind(a.x, a.sx, x);
    bind(a.wsq, a.swsq, squeeze_weight);
    bind(a.bsq, bsq);
    bind(a.w1, a.sw1, expand1x1_weight);
    bind(a.b1, b1);
    bind(a.w3, a.sw3, expand3x3_weight);
    bind(a.b3, b3);
    bind(a.out, a.sout, out);
    if (!fused) {
      bind(a.s, a.ss, s);
    }
    ff::launch_fwd<T>(a, fused, tensor_cores(x), current_stream(x));
    STD_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, s};
}

}  // namespace

Tensor native_fire_cuda(const Tensor& x, const Tensor& squeeze_weight, const Tensor& squeeze_bias,
                        const Tensor& expand1x1_weight, const Tensor& expand1x1_bias, const Tensor& expand3x3_weight,
                        const Tensor& expand3x3_bias) {
  return std::get<0>(forward(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                             expand3x3_bias, false));
}

std::tuple<Tensor, Tensor> native_fire_fwd_cuda(const Tensor& x, const Tensor& squeeze_weight,
                                                const Tensor& squeeze_bias, const Tensor& expand1x1_weight,
                                                const Tensor& expand1x1_bias, const Tensor& expand3x3_weight,
                                                const Tensor& expand3x3_bias) {
  return forward(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                 expand3x3_bias, true);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> native_fire_bwd_cuda(
    const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out, const Tensor& squeeze_weight,
    const Tensor& expand1x1_weight, const Tensor& expand3x3_weight) {
  check_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  const ff::Dims d = dims(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  CHECK_SHAPE(grad_out, d.N, d.E1 + d.E3, d.H, d.W);
  CHECK_SHAPE(s, d.N, d.S, d.H, d.W);
  CHECK_SHAPE(out, d.N, d.E1 + d.E3, d.H, d.W);
  CHECK_LIKE(grad_out, x);
  CHECK_LIKE(s, x);
  CHECK_LIKE(out, x);
  const torch::stable::accelerator::DeviceGuard guard(x.get_device_index());
  const ScalarType dtype = x.scalar_type(), acc = dtype == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
  Tensor gx = empty_like_x(x, {d.N, d.Cin, d.H, d.W}, dtype);
  auto weight_grad = [&](torch::headeronly::IntHeaderOnlyArrayRef sizes) {  // contiguous, like the weights' grads
    return torch::stable::empty(sizes, dtype, std::nullopt, x.device());
  };
  const int64_t S[] = {d.S}, E1[] = {d.E1}, E3[] = {d.E3};
  Tensor gwsq = weight_grad(squeeze_weight.sizes()), gbsq = weight_grad(S);
  Tensor gw1 = weight_grad(expand1x1_weight.sizes()), gb1 = weight_grad(E1);
  Tensor gw3 = weight_grad(expand3x3_weight.sizes()), gb3 = weight_grad(E3);
  if (d.P() == 0) {  // no pixel contributes: zero weight gradients, nothing launched
    for (Tensor* t : {&gwsq, &gbsq, &gw1, &gb1, &gw3, &gb3}) torch::stable::zero_(*t);
    return {gx, gwsq, gbsq, gw1, gb1, gw3, gb3};
  }
  Tensor gs = empty_like_x(x, {d.N, d.S, d.H, d.W}, acc);
  FF_DISPATCH_FLOATING(dtype, "fusedfire_native_fire_bwd", [&] {
    using T = typename Cuda<scalar_t>::type;
    const int64_t work_elems[] = {ff::bwd_workspace_elems<T>(d)};
    Tensor work = torch::stable::empty(work_elems, acc, std::nullopt, x.device());
    ff::BwdArgs<T> a{};
    a.d = d;
    bind(a.gout, a.sgout, grad_out);
    bind(a.x, a.sx, x);
    bind(a.s, a.ss, s);
    bind(a.out, a.sout, out);
    bind(a.wsq, a.swsq, squeeze_weight);
    bind(a.w1, a.sw1, expand1x1_weight);
    bind(a.w3, a.sw3, expand3x3_weight);
    bind(a.gs, a.sgs, gs);
    bind(a.gx, a.sgx, gx);
    bind(a.gwsq, gwsq);
    bind(a.gbsq, gbsq);
    bind(a.gw1, gw1);
    bind(a.gb1, gb1);
    bind(a.gw3, gw3);
    bind(a.gb3, gb3);
    bind(a.work, work);
    ff::launch_bwd<T>(a, tensor_cores(x), current_stream(x));
    STD_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gx, gwsq, gbsq, gw1, gb1, gw3, gb3};
}

}  // namespace fusedfire
