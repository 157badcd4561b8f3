// Launchers of the Fire kernels (csrc/fire_kernels.cuh) for CUDA tensors: argument checks, device guard, the
// current stream, output allocation in memory_format(x), dtype dispatch. Registered in fire_ops.cpp as
// fusedfire::native_fire, native_fire_fwd, native_fire_bwd (schemas and fakes: fusedfire/ops.py).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <tuple>
#include <type_traits>

#include "fire_kernels.cuh"

namespace fusedfire {
namespace {

template <class T>
struct Cuda { using type = T; };
template <>
struct Cuda<at::Half> { using type = __half; };
template <>
struct Cuda<at::BFloat16> { using type = __nv_bfloat16; };

constexpr int64_t kInt32 = int64_t{1} << 31;

// Same rule as fusedfire.ops.memory_format: channels_last when the channel stride is 1 and unambiguous.
at::MemoryFormat memory_format(const at::Tensor& x) {
  return x.stride(1) == 1 && x.size(1) > 1 && x.size(2) * x.size(3) > 1 ? at::MemoryFormat::ChannelsLast
                                                                        : at::MemoryFormat::Contiguous;
}

void check_same(const at::Tensor& t, const at::Tensor& x, const char* name) {
  TORCH_CHECK(t.is_cuda(), "fusedfire: ", name, " must be a CUDA tensor, got ", t.device());
  TORCH_CHECK(t.device() == x.device(), "fusedfire: ", name, " is on ", t.device(), " but x is on ", x.device());
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), "fusedfire: ", name, " has dtype ", t.scalar_type(),
              " but x has ", x.scalar_type(), "; all inputs must share one dtype");
}

void check_shape(const at::Tensor& t, at::IntArrayRef shape, const char* name) {
  TORCH_CHECK(t.sizes() == shape, "fusedfire: ", name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK(t.numel() < kInt32, "fusedfire: ", name, " has ", t.numel(), " elements; weights must have < 2^31");
}

void check_x(const at::Tensor& x) {
  TORCH_CHECK(x.is_cuda(), "fusedfire: x must be a CUDA tensor, got ", x.device());
  TORCH_CHECK(x.dim() == 4, "fusedfire: x must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  const auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kHalf || dt == at::kBFloat16 || dt == at::kFloat || dt == at::kDouble,
              "fusedfire: x must be float16, bfloat16, float32 or float64, got ", dt);
  TORCH_CHECK(x.size(0) * x.size(2) * x.size(3) < kInt32, "fusedfire: N*H*W = ", x.size(0) * x.size(2) * x.size(3),
              " pixels must be < 2^31");
}

void check_weights(const at::Tensor& x, const at::Tensor& wsq, const at::Tensor& w1, const at::Tensor& w3) {
  check_x(x);
  TORCH_CHECK(wsq.dim() == 4 && w1.dim() == 4 && w3.dim() == 4, "fusedfire: the conv weights must be 4-D, got ",
              wsq.dim(), "-D, ", w1.dim(), "-D, ", w3.dim(), "-D");
  const int64_t S = wsq.size(0);
  check_same(wsq, x, "squeeze_weight");
  check_same(w1, x, "expand1x1_weight");
  check_same(w3, x, "expand3x3_weight");
  check_shape(wsq, {S, x.size(1), 1, 1}, "squeeze_weight");
  check_shape(w1, {w1.size(0), S, 1, 1}, "expand1x1_weight");
  check_shape(w3, {w3.size(0), S, 3, 3}, "expand3x3_weight");
  TORCH_CHECK(S >= 1 && w1.size(0) >= 1 && w3.size(0) >= 1, "fusedfire: S, E1 and E3 must be >= 1");
}

at::Tensor check_bias(const at::Tensor& b, const at::Tensor& x, int64_t C, const char* name) {
  check_same(b, x, name);
  check_shape(b, {C}, name);
  return b.contiguous();  // a C-element parameter: the kernels index it densely
}

ff::Dims dims(const at::Tensor& x, const at::Tensor& wsq, const at::Tensor& w1, const at::Tensor& w3) {
  return ff::Dims{static_cast<int>(x.size(0)), static_cast<int>(x.size(1)), static_cast<int>(wsq.size(0)),
                  static_cast<int>(w1.size(0)), static_cast<int>(w3.size(0)), static_cast<int>(x.size(2)),
                  static_cast<int>(x.size(3))};
}

void strides(int64_t (&dst)[4], const at::Tensor& t) {
  for (int i = 0; i < 4; ++i) dst[i] = t.stride(i);
}

// ptr = t's data as P* (const P: read-only, no copy-on-write materialisation), and its 4 strides when given.
template <typename P>
void bind(P*& ptr, const at::Tensor& t) {
  if constexpr (std::is_const_v<P>) {
    ptr = reinterpret_cast<P*>(t.const_data_ptr());
  } else {
    ptr = reinterpret_cast<P*>(t.mutable_data_ptr());
  }
}
template <typename P>
void bind(P*& ptr, int64_t (&st)[4], const at::Tensor& t) {
  bind(ptr, t);
  strides(st, t);
}

// fp16/bf16: mma.sync whenever the arch has it (tile_mma falls back by itself below sm_80); fp32: tf32 exactly
// where eager convs use it (torch.backends.cudnn.allow_tf32); fp64: never.
bool tensor_cores(const at::Tensor& x) {
  return x.scalar_type() != at::kFloat || at::globalContext().allowTF32CuDNN();
}

// s == nullptr: native_fire (the fused kernel when it fits, else two launches through a temporary s).
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& wsq, const at::Tensor& bsq_,
                                           const at::Tensor& w1, const at::Tensor& b1_, const at::Tensor& w3,
                                           const at::Tensor& b3_, bool want_s) {
  check_weights(x, wsq, w1, w3);
  const at::Tensor bsq = check_bias(bsq_, x, wsq.size(0), "squeeze_bias");
  const at::Tensor b1 = check_bias(b1_, x, w1.size(0), "expand1x1_bias");
  const at::Tensor b3 = check_bias(b3_, x, w3.size(0), "expand3x3_bias");
  const c10::cuda::CUDAGuard guard{x.device()};
  const ff::Dims d = dims(x, wsq, w1, w3);
  const auto opts = x.options().memory_format(memory_format(x));
  at::Tensor out = at::empty({d.N, d.E1 + d.E3, d.H, d.W}, opts);
  at::Tensor s;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fusedfire_native_fire", [&] {
    using T = typename Cuda<scalar_t>::type;
    const bool fused = !want_s && ff::fused_fits<T>(d.S);
    if (!fused) s = at::empty({d.N, d.S, d.H, d.W}, opts);
    if (d.P() == 0) return;
    ff::FwdArgs<T> a{};
    a.d = d;
    bind(a.x, a.sx, x);
    bind(a.wsq, a.swsq, wsq);
    bind(a.bsq, bsq);
    bind(a.w1, a.sw1, w1);
    bind(a.b1, b1);
    bind(a.w3, a.sw3, w3);
    bind(a.b3, b3);
    bind(a.out, a.sout, out);
    if (!fused) {
      bind(a.s, a.ss, s);
    }
    ff::launch_fwd<T>(a, fused, tensor_cores(x), at::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, s};
}

}  // namespace

at::Tensor native_fire_cuda(const at::Tensor& x, const at::Tensor& squeeze_weight, const at::Tensor& squeeze_bias,
                            const at::Tensor& expand1x1_weight, const at::Tensor& expand1x1_bias,
                            const at::Tensor& expand3x3_weight, const at::Tensor& expand3x3_bias) {
  return std::get<0>(forward(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                             expand3x3_bias, false));
}

std::tuple<at::Tensor, at::Tensor> native_fire_fwd_cuda(const at::Tensor& x, const at::Tensor& squeeze_weight,
                                                        const at::Tensor& squeeze_bias,
                                                        const at::Tensor& expand1x1_weight,
                                                        const at::Tensor& expand1x1_bias,
                                                        const at::Tensor& expand3x3_weight,
                                                        const at::Tensor& expand3x3_bias) {
  return forward(x, squeeze_weight, squeeze_bias, expand1x1_weight, expand1x1_bias, expand3x3_weight,
                 expand3x3_bias, true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> native_fire_bwd_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& s, const at::Tensor& out,
    const at::Tensor& squeeze_weight, const at::Tensor& expand1x1_weight, const at::Tensor& expand3x3_weight) {
  check_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  const ff::Dims d = dims(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  for (auto [t, name, C] : {std::make_tuple(&grad_out, "grad_out", d.E1 + d.E3), std::make_tuple(&s, "s", d.S),
                            std::make_tuple(&out, "out", d.E1 + d.E3)}) {
    check_same(*t, x, name);
    TORCH_CHECK(t->dim() == 4 && t->sizes() == at::IntArrayRef({d.N, C, d.H, d.W}), "fusedfire: ", name,
                " must have shape (", d.N, ", ", C, ", ", d.H, ", ", d.W, "), got ", t->sizes());
  }
  const c10::cuda::CUDAGuard guard{x.device()};
  const auto fmt = memory_format(x);
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor gx = at::empty(x.sizes(), x.options().memory_format(fmt));
  const auto w = squeeze_weight.options();
  at::Tensor gwsq = at::empty(squeeze_weight.sizes(), w), gbsq = at::empty({d.S}, w);
  at::Tensor gw1 = at::empty(expand1x1_weight.sizes(), w), gb1 = at::empty({d.E1}, w);
  at::Tensor gw3 = at::empty(expand3x3_weight.sizes(), w), gb3 = at::empty({d.E3}, w);
  if (d.P() == 0) {  // no pixel contributes: zero weight gradients, nothing launched
    for (at::Tensor* t : {&gwsq, &gbsq, &gw1, &gb1, &gw3, &gb3}) t->zero_();
    return {gx, gwsq, gbsq, gw1, gb1, gw3, gb3};
  }
  at::Tensor gs = at::empty({d.N, d.S, d.H, d.W}, x.options().dtype(acc).memory_format(fmt));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fusedfire_native_fire_bwd", [&] {
    using T = typename Cuda<scalar_t>::type;
    using G = typename ff::Acc<T>::type;
    at::Tensor work = at::empty({ff::bwd_workspace_elems<T>(d)}, x.options().dtype(acc));
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
    ff::launch_bwd<T>(a, tensor_cores(x), at::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gx, gwsq, gbsq, gw1, gb1, gw3, gb3};
}

}  // namespace fusedfire
