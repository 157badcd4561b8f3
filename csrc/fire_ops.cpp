// fusedfire._C: registers the CUDA kernels (fire_cuda.cu) for the native_fire* schemas that fusedfire/ops.py
// defines (torch.library, Python side: the ops, fakes and autograd exist even where this module was not built).
// No pybind11: importing the module runs the static registrar below, and a dummy PyInit__C keeps it to the
// Python limited API, so one cp39-abi3 wheel serves every Python >= 3.9.
#include <Python.h>
#include <torch/library.h>

#include <tuple>

namespace fusedfire {
at::Tensor native_fire_cuda(const at::Tensor& x, const at::Tensor& squeeze_weight, const at::Tensor& squeeze_bias,
                            const at::Tensor& expand1x1_weight, const at::Tensor& expand1x1_bias,
                            const at::Tensor& expand3x3_weight, const at::Tensor& expand3x3_bias);
std::tuple<at::Tensor, at::Tensor> native_fire_fwd_cuda(const at::Tensor& x, const at::Tensor& squeeze_weight,
                                                        const at::Tensor& squeeze_bias,
                                                        const at::Tensor& expand1x1_weight,
                                                        const at::Tensor& expand1x1_bias,
                                                        const at::Tensor& expand3x3_weight,
                                                        const at::Tensor& expand3x3_bias);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> native_fire_bwd_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& s, const at::Tensor& out,
    const at::Tensor& squeeze_weight, const at::Tensor& expand1x1_weight, const at::Tensor& expand3x3_weight);
}  // namespace fusedfire

extern "C" {
// Importing fusedfire._C from Python runs the TORCH_LIBRARY_IMPL registrar of this shared library.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr,
                                          nullptr,               nullptr, nullptr, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY_IMPL(fusedfire, CUDA, m) {
  m.impl("native_fire", &fusedfire::native_fire_cuda);
  m.impl("native_fire_fwd", &fusedfire::native_fire_fwd_cuda);
  m.impl("native_fire_bwd", &fusedfire::native_fire_bwd_cuda);
}
