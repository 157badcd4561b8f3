// fusedfire._cpu: the fused Fire kernels for CPU tensors (backend "cpu"). The schemas (native_fire,
// native_fire_fwd, native_fire_bwd; native_fire_pack, native_fire_packed, native_stem, native_max_pool,
// native_classifier_pack and native_classifier, CPU only) are defined in fusedfire/ops.py; this file checks the
// arguments, picks the vector kernels' ISA once per call (dispatch.cpp: which this CPU runs), and implements the
// schemas for the CPU dispatch key through LibTorch's stable ABI (one build for every torch >= 2.11). The module
// itself is the private options API of the tests and benchmarks (fusedfire.native.cpu_isas, cpu_options).
#include <Python.h>

#include <torch/csrc/stable/library.h>

#include <cstring>
#include <optional>
#include <string>
#include <tuple>

#include "../checks.h"
#include "fire.h"
#include "heuristics.h"
#include "kernels.h"
#include "out_blocks.h"
#include "pack.h"

namespace fusedfire_cpu {

// ------------------------------------------------------------------------------------------------------ ISA

static Isa best_isa() {
  for (int i = kIsas - 1; i > 0; --i)
    if (kernels(Isa(i))) return Isa(i);
  return Isa::baseline;
}

// ------------------------------------------------------------------------------------------------- options

static const char* const kWinogradNames[] = {"auto", "on", "off"};  // Winograd's order
static const char* const kGemmNames[] = {"auto", "own", "blas"};     // GemmChoice's order

// The calling thread's options (fire.h), read once per call before any parallel region.
static Options& thread_options() {
  thread_local Options options{best_isa(), Winograd::automatic, kBandPixels, GemmChoice::automatic};
  return options;
}

// ---------------------------------------------------------------------------------------------------- ops

// cin: the squeeze's input channels where x has others (a squeezed x), else -1 (x's).
static void check_forward(const Tensor& x, const Tensor& squeeze_weight, const Tensor& squeeze_bias,
                          const Tensor& expand1x1_weight, const Tensor& expand1x1_bias,
                          const Tensor& expand3x3_weight, const Tensor& expand3x3_bias, int64_t cin = -1) {
  CHECK_CPU(x);
  fusedfire::check_fire_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight, cin);
  const int64_t S = squeeze_weight.size(0), E1 = expand1x1_weight.size(0), E3 = expand3x3_weight.size(0);
  CHECK_SHAPE(squeeze_bias, S);
  CHECK_SHAPE(expand1x1_bias, E1);
  CHECK_SHAPE(expand3x3_bias, E3);
  CHECK_LIKE(squeeze_bias, x);
  CHECK_LIKE(expand1x1_bias, x);
  CHECK_LIKE(expand3x3_bias, x);
}

static void check_backward(const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out,
                           const Tensor& squeeze_weight, const Tensor& expand1x1_weight,
                           const Tensor& expand3x3_weight) {
  CHECK_CPU(x);
  fusedfire::check_fire_weights(x, squeeze_weight, expand1x1_weight, expand3x3_weight);
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), S = squeeze_weight.size(0);
  const int64_t E1 = expand1x1_weight.size(0), E3 = expand3x3_weight.size(0);
  CHECK_SHAPE(s, N, S, H, W);
  CHECK_SHAPE(out, N, E1 + E3, H, W);
  CHECK_SHAPE(grad_out, N, E1 + E3, H, W);
  CHECK_LIKE(grad_out, x);
  CHECK_LIKE(s, x);
  CHECK_LIKE(out, x);
}

// A max pooling's kernel (1..8: pool_row's rows) and stride, and an input (`what`, H × W) at least as large as the
// kernel; `who` names the caller in the message.
static void check_pool(const char* who, int64_t kernel, int64_t stride, int64_t H, int64_t W, const std::string& what) {
  FF_CHECK(kernel >= 1 && kernel <= 8 && stride >= 1, who, " needs 1 <= kernel <= 8 and stride >= 1, got kernel ",
           kernel, ", stride ", stride);
  FF_CHECK(H >= kernel && W >= kernel, who, ": ", what, " is smaller than the ", kernel, "x", kernel, " kernel");
}

// The next Fire's squeeze weight and pack (both or neither), applied by `who` to its channels_last output of
// out_channels (x: the op's input, for dtype and device): the pack's squeeze section, or none (null w).
static Padded1x1 next_squeeze(const char* who, const Tensor& x, bool cl, int64_t out_channels,
                              const std::optional<Tensor>& next_squeeze_weight_opt,
                              const std::optional<Tensor>& next_packed_opt) {
  FF_CHECK(next_squeeze_weight_opt.has_value() == next_packed_opt.has_value(), who,
           " takes next_squeeze_weight and next_packed together");
  if (!next_packed_opt) return {};
  const Tensor &next_squeeze_weight = *next_squeeze_weight_opt, &next_packed = *next_packed_opt;
  FF_CHECK(cl, who, " applies the next squeeze to a channels_last x's output only, got x of strides ",
           fusedfire::shape_str(x.strides()));
  CHECK_CPU(next_squeeze_weight);
  CHECK_CPU(next_packed);
  CHECK_LIKE(next_squeeze_weight, x);
  CHECK_LIKE(next_packed, x);
  CHECK_DIM(next_squeeze_weight, 4);
  const int64_t next_s = next_squeeze_weight.size(0);
  CHECK_SHAPE(next_squeeze_weight, next_s, out_channels, 1, 1);
  FF_CHECK(next_packed.dim() == 1 && next_packed.is_contiguous() &&
               next_packed.size(0) >= pack_layout(out_channels, next_s, 0, 0).e1,
           "next_packed must be the next Fire's pack (native_fire_pack), got ",
           fusedfire::shape_str(next_packed.sizes()));
  return pack_1x1(next_packed.const_data_ptr<float>(), out_channels, next_s, 0, false);
}

static Tensor native_fire(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1, const Tensor& b1,
                          const Tensor& w3, const Tensor& b3) {
  check_forward(x, wsq, bsq, w1, b1, w3, b3);
  const Options opt = thread_options();
  return std::get<0>(forward(x, wsq, bsq, w1, b1, w3, b3, false, nullptr, opt, *kernels(opt.isa)));
}

// The pack of fp32 weights (pack.h), for native_fire_packed.
static Tensor native_fire_pack(const Tensor& squeeze_weight, const Tensor& squeeze_bias,
                               const Tensor& expand1x1_weight, const Tensor& expand1x1_bias,
                               const Tensor& expand3x3_weight) {
  const Tensor* weights[] = {&squeeze_weight, &squeeze_bias, &expand1x1_weight, &expand1x1_bias, &expand3x3_weight};
  for (const Tensor* t : weights) {
    CHECK_CPU(*t);
    FF_CHECK(t->scalar_type() == ScalarType::Float, "native_fire_pack takes float32 weights, got ", t->scalar_type());
  }
  CHECK_DIM(squeeze_weight, 4);
  const int64_t S = squeeze_weight.size(0), Cin = squeeze_weight.size(1);
  const int64_t E1 = expand1x1_weight.size(0), E3 = expand3x3_weight.size(0);
  CHECK_SHAPE(squeeze_weight, S, Cin, 1, 1);
  CHECK_SHAPE(squeeze_bias, S);
  CHECK_SHAPE(expand1x1_weight, E1, S, 1, 1);
  CHECK_SHAPE(expand1x1_bias, E1);
  CHECK_SHAPE(expand3x3_weight, E3, S, 3, 3);
  Tensor d[5];
  for (int i = 0; i < 5; ++i) d[i] = dense(*weights[i]);
  const PackLayout l = pack_layout(Cin, S, E1, E3);
  Tensor out = torch::stable::empty({l.numel}, ScalarType::Float);
  pack(d[0].const_data_ptr<float>(), d[1].const_data_ptr<float>(), d[2].const_data_ptr<float>(),
       d[3].const_data_ptr<float>(), d[4].const_data_ptr<float>(), Cin, S, E1, E3, *kernels(best_isa()),
       out.mutable_data_ptr<float>());
  return out;
}

// native_fire with the weights' pack from native_fire_pack (the caller keeps it current: optimize's FrozenFire), its
// output max-pooled (pool_kernel, pool_stride, ceil_mode=pool_ceil_mode) where pool_kernel is not 0, or squeezed by
// the next Fire (next_squeeze_weight, with that Fire's pack next_packed: out is that Fire's s) where given; squeezed:
// x is this Fire's own s (its squeeze skipped).
static Tensor native_fire_packed(const Tensor& x, const Tensor& wsq, const Tensor& bsq, const Tensor& w1,
                                 const Tensor& b1, const Tensor& w3, const Tensor& b3, const Tensor& packed,
                                 int64_t pool_kernel, int64_t pool_stride, bool pool_ceil_mode, bool squeezed,
                                 std::optional<Tensor> next_squeeze_weight_opt, std::optional<Tensor> next_packed_opt) {
  if (squeezed) {
    CHECK_DIM(wsq, 4);
    CHECK_DIM(x, 4);
    FF_CHECK(x.size(1) == wsq.size(0), "native_fire_packed: a squeezed x has the squeeze's ", wsq.size(0),
             " channels, got x of ", fusedfire::shape_str(x.sizes()));
  }
  check_forward(x, wsq, bsq, w1, b1, w3, b3, squeezed ? wsq.size(1) : -1);
  FF_CHECK(x.scalar_type() == ScalarType::Float, "native_fire_packed takes float32 tensors, got x of ",
           x.scalar_type());
  CHECK_CPU(packed);
  CHECK_LIKE(packed, x);
  const int64_t numel = pack_layout(wsq.size(1), wsq.size(0), w1.size(0), w3.size(0)).numel;
  CHECK_SHAPE(packed, numel);
  FF_CHECK(packed.is_contiguous(), "packed must be contiguous");
  const bool cl = memory_format(x) == torch::headeronly::MemoryFormat::ChannelsLast;
  if (pool_kernel != 0) {  // 0: no pooling; a negative kernel is an error, not "none"
    FF_CHECK(cl, "native_fire_packed pools a channels_last x's output only, got x of strides ",
             fusedfire::shape_str(x.strides()));
    check_pool("max pooling", pool_kernel, pool_stride, x.size(2), x.size(3),
               "a Fire output of " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
  }
  Packed p{packed.const_data_ptr<float>(), pool_kernel, pool_stride, pool_ceil_mode, squeezed};
  FF_CHECK(pool_kernel == 0 || !next_packed_opt,
           "native_fire_packed either pools or applies the next squeeze, not both");
  p.next = next_squeeze("native_fire_packed", x, cl, w1.size(0) + w3.size(0), next_squeeze_weight_opt,
                        next_packed_opt);
  const Options opt = thread_options();
  return std::get<0>(forward(x, wsq, bsq, w1, b1, w3, b3, false, &p, opt, *kernels(opt.isa)));
}

static std::tuple<Tensor, Tensor> native_fire_fwd(const Tensor& x, const Tensor& wsq, const Tensor& bsq,
                                                  const Tensor& w1, const Tensor& b1, const Tensor& w3,
                                                  const Tensor& b3) {
  check_forward(x, wsq, bsq, w1, b1, w3, b3);
  const Options opt = thread_options();
  return forward(x, wsq, bsq, w1, b1, w3, b3, true, nullptr, opt, *kernels(opt.isa));
}

static std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> native_fire_bwd(
    const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out, const Tensor& wsq, const Tensor& w1,
    const Tensor& w3) {
  check_backward(grad_out, x, s, out, wsq, w1, w3);
  const Options opt = thread_options();
  return backward(grad_out, x, s, out, wsq, w1, w3, opt, *kernels(opt.isa));
}

// The fused stem (stem.cpp): a square conv with bias, ReLU, a square max pooling; fp32.
static Tensor native_stem(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
                          int64_t pool_kernel, int64_t pool_stride, bool ceil_mode,
                          std::optional<Tensor> next_squeeze_weight, std::optional<Tensor> next_packed) {
  for (const Tensor* t : {&x, &weight, &bias}) {
    CHECK_CPU(*t);
    FF_CHECK(t->scalar_type() == ScalarType::Float, "native_stem takes float32 tensors, got ", t->scalar_type());
  }
  CHECK_DIM(x, 4);
  CHECK_DIM(weight, 4);
  const int64_t M = weight.size(0), C = x.size(1), K = weight.size(2);
  CHECK_SHAPE(weight, M, C, K, K);
  CHECK_SHAPE(bias, M);
  FF_CHECK(stride >= 1 && padding >= 0 && pool_stride >= 1 && pool_kernel >= 1 && pool_kernel <= 8,
           "native_stem needs stride >= 1, padding >= 0, pool_stride >= 1 and 1 <= pool_kernel <= 8, got stride ",
           stride, ", padding ", padding, ", pool_kernel ", pool_kernel, ", pool_stride ", pool_stride);
  FF_CHECK(2 * padding <= K, "native_stem: padding ", padding, " must be at most half the kernel size ", K);
  const int64_t OH = (x.size(2) + 2 * padding - K) / stride + 1, OW = (x.size(3) + 2 * padding - K) / stride + 1;
  FF_CHECK(x.size(2) + 2 * padding >= K && x.size(3) + 2 * padding >= K && OH >= pool_kernel && OW >= pool_kernel &&
               pooled_size(OH, pool_kernel, pool_stride, ceil_mode) >= 1,
           "native_stem: x of ", fusedfire::shape_str(x.sizes()), " is too small for a ", K, "x", K,
           " conv (stride ", stride, ", padding ", padding, ") and a ", pool_kernel, "x", pool_kernel, " pooling");
  // the stem's output is channels_last whatever x's layout
  const Padded1x1 next = next_squeeze("native_stem", x, true, M, next_squeeze_weight, next_packed);
  const Options opt = thread_options();
  return stem(x, weight, bias, stride, padding, pool_kernel, pool_stride, ceil_mode, next, *kernels(opt.isa));
}

// A 1×1 conv's fp32 weight (M, K, 1, 1) and bias (M) checked for `who`: (M, K).
static std::pair<int64_t, int64_t> check_conv1x1(const char* who, const Tensor& weight, const Tensor& bias) {
  for (const Tensor* t : {&weight, &bias}) {
    CHECK_CPU(*t);
    FF_CHECK(t->scalar_type() == ScalarType::Float, who, " takes float32 tensors, got ", t->scalar_type());
  }
  CHECK_DIM(weight, 4);
  const int64_t M = weight.size(0), K = weight.size(1);
  CHECK_SHAPE(weight, M, K, 1, 1);
  CHECK_SHAPE(bias, M);
  return {M, K};
}

// The classifier's 1×1 conv weight and bias as k.conv1x1_sum reads them (pack.h, pad_1x1), for native_classifier.
static Tensor native_classifier_pack(const Tensor& weight, const Tensor& bias) {
  const auto [M, K] = check_conv1x1("native_classifier_pack", weight, bias);
  Tensor out = torch::stable::empty({(K + 1) * padded(M)}, ScalarType::Float);
  pad_1x1(dense(weight).const_data_ptr<float>(), dense(bias).const_data_ptr<float>(), M, K, *kernels(best_isa()),
          out.mutable_data_ptr<float>());
  return out;
}

// SqueezeNet's classifier (classifier.cpp) with its weights' pack from native_classifier_pack.
static Tensor native_classifier(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& packed) {
  const auto [M, K] = check_conv1x1("native_classifier", weight, bias);
  CHECK_CPU(x);
  FF_CHECK(x.scalar_type() == ScalarType::Float, "native_classifier takes float32 tensors, got x of ",
           x.scalar_type());
  CHECK_DIM(x, 4);
  FF_CHECK(x.size(1) == K, "native_classifier: x of ", fusedfire::shape_str(x.sizes()), " must have the weight's ",
           K, " input channels");
  CHECK_CPU(packed);
  CHECK_LIKE(packed, x);
  FF_CHECK(packed.dim() == 1 && packed.size(0) == (K + 1) * padded(M) && packed.is_contiguous(),
           "packed must be native_classifier_pack(weight, bias): ", (K + 1) * padded(M),
           " contiguous floats, got ", fusedfire::shape_str(packed.sizes()));
  const Options opt = thread_options();
  const Tensor xr = pixel_stride(x) >= 0 ? x : torch::stable::contiguous(x, memory_format(x));
  return classifier(xr, Padded1x1{packed.const_data_ptr<float>(), M, K}, *kernels(opt.isa));
}

// Max pooling of a channels_last fp32 x (pool.cpp).
static Tensor native_max_pool(const Tensor& x, int64_t kernel, int64_t stride, bool ceil_mode) {
  CHECK_CPU(x);
  FF_CHECK(x.scalar_type() == ScalarType::Float, "native_max_pool takes a float32 x, got ", x.scalar_type());
  CHECK_DIM(x, 4);
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  FF_CHECK(x.stride(1) == 1 && x.stride(3) == C && x.stride(2) == W * C && x.stride(0) == H * W * C,
           "native_max_pool takes a dense channels_last x, got strides ", fusedfire::shape_str(x.strides()));
  check_pool("native_max_pool", kernel, stride, H, W, "x of " + fusedfire::shape_str(x.sizes()));
  const Options opt = thread_options();
  return max_pool(x, kernel, stride, ceil_mode, *kernels(opt.isa));
}

}  // namespace fusedfire_cpu

STABLE_TORCH_LIBRARY_IMPL(fusedfire, CPU, m) {
  m.impl("native_fire", TORCH_BOX(&fusedfire_cpu::native_fire));
  m.impl("native_fire_fwd", TORCH_BOX(&fusedfire_cpu::native_fire_fwd));
  m.impl("native_fire_bwd", TORCH_BOX(&fusedfire_cpu::native_fire_bwd));
  m.impl("native_fire_pack", TORCH_BOX(&fusedfire_cpu::native_fire_pack));
  m.impl("native_fire_packed", TORCH_BOX(&fusedfire_cpu::native_fire_packed));
  m.impl("native_stem", TORCH_BOX(&fusedfire_cpu::native_stem));
  m.impl("native_max_pool", TORCH_BOX(&fusedfire_cpu::native_max_pool));
  m.impl("native_classifier_pack", TORCH_BOX(&fusedfire_cpu::native_classifier_pack));
  m.impl("native_classifier", TORCH_BOX(&fusedfire_cpu::native_classifier));
}

// ------------------------------------------------------------------------------------------ Python module

namespace {

using namespace fusedfire_cpu;

// isas() -> list of str: the ISAs this build and CPU run, best (the default) first.
PyObject* py_isas(PyObject*, PyObject*) {
  PyObject* names = PyList_New(0);
  for (int i = kIsas - 1; names && i >= 0; --i) {
    if (!kernels(Isa(i))) continue;
    PyObject* name = PyUnicode_FromString(isa_name(Isa(i)));
    if (!name || PyList_Append(names, name) < 0) Py_CLEAR(names);
    Py_XDECREF(name);
  }
  return names;
}

// get_options() -> (isa, winograd, band_pixels, gemm) of the calling thread.
PyObject* py_get_options(PyObject*, PyObject*) {
  const Options& o = thread_options();
  return Py_BuildValue("(ssLs)", isa_name(o.isa), kWinogradNames[int(o.winograd)], (long long)o.band_pixels,
                       kGemmNames[int(o.gemm)]);
}

// The index of value among an option's three names, or -1 with a ValueError naming them.
int choice(const char* option, const char* value, const char* const (&names)[3]) {
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(value, names[i]) == 0) return i;
  PyErr_Format(PyExc_ValueError, "fusedfire cpu: %s must be '%s', '%s' or '%s', got '%s'", option, names[0], names[1],
               names[2], value);
  return -1;
}

// set_options(isa, winograd, band_pixels, gemm): the calling thread's options; ValueError naming what is wrong.
PyObject* py_set_options(PyObject*, PyObject* args) {
  const char *isa, *winograd, *gemm;
  long long band_pixels;
  if (!PyArg_ParseTuple(args, "ssLs", &isa, &winograd, &band_pixels, &gemm)) return nullptr;
  Options o = thread_options();
  int i = 0;
  while (i < kIsas && std::strcmp(isa, isa_name(Isa(i))) != 0) ++i;
  if (i == kIsas || !kernels(Isa(i))) {
    PyObject* available = py_isas(nullptr, nullptr);
    PyErr_Format(PyExc_ValueError, "fusedfire cpu: isa must be one this build and CPU run, %R, got '%s'", available,
                 isa);
    Py_XDECREF(available);
    return nullptr;
  }
  o.isa = Isa(i);
  const int w = choice("winograd", winograd, kWinogradNames);
  if (w < 0) return nullptr;
  o.winograd = Winograd(w);
  constexpr long long kMaxBandPixels = 1 << 20;
  if (band_pixels < 1 || band_pixels > kMaxBandPixels) {
    PyErr_Format(PyExc_ValueError, "fusedfire cpu: band_pixels must be in [1, %lld], got %lld", kMaxBandPixels,
                 band_pixels);
    return nullptr;
  }
  o.band_pixels = band_pixels;
  const int g = choice("gemm", gemm, kGemmNames);
  if (g < 0) return nullptr;
  o.gemm = GemmChoice(g);
  thread_options() = o;
  Py_RETURN_NONE;
}

// empty_cache() -> int: the kept output blocks (out_blocks.h) freed, in bytes.
PyObject* py_empty_cache(PyObject*, PyObject*) { return PyLong_FromSize_t(out_blocks().release()); }

PyMethodDef methods[] = {
    {"isas", py_isas, METH_NOARGS, "The ISAs of the vector kernels this build and CPU run, best first."},
    {"get_options", py_get_options, METH_NOARGS, "(isa, winograd, band_pixels, gemm) of the calling thread."},
    {"set_options", py_set_options, METH_VARARGS,
     "set_options(isa, winograd, band_pixels, gemm) for the calling thread."},
    {"empty_cache", py_empty_cache, METH_NOARGS, "Frees the kept output blocks; returns the bytes freed."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// Importing fusedfire._cpu also runs the static STABLE_TORCH_LIBRARY_IMPL registrar above.
extern "C" PyObject* PyInit__cpu(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_cpu", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}
