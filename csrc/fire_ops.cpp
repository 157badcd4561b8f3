// fusedfire._C: registers the CUDA kernels (fire_cuda.cu) for the native_fire* schemas that fusedfire/ops.py
// defines (torch.library, Python side: the ops, fakes and autograd exist even where this module was not built),
// through LibTorch's stable ABI. No pybind11: importing the module runs the static registrar below, and a dummy
// PyInit__C keeps it to the Python limited API, so one cp39-abi3 wheel serves every Python >= 3.9 and torch >= 2.11.
#include <Python.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/tensor.h>

#include <tuple>

namespace fusedfire {

using Tensor = torch::stable::Tensor;

Tensor native_fire_cuda(const Tensor& x, const Tensor& squeeze_weight, const Tensor& squeeze_bias,
                        const Tensor& expand1x1_weight, const Tensor& expand1x1_bias, const Tensor& expand3x3_weight,
                        const Tensor& expand3x3_bias);
std::tuple<Tensor, Tensor> native_fire_fwd_cuda(const Tensor& x, const Tensor& squeeze_weight,
                                                const Tensor& squeeze_bias, const Tensor& expand1x1_weight,
                                                const Tensor& expand1x1_bias, const Tensor& expand3x3_weight,
                                                const Tensor& expand3x3_bias);
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> native_fire_bwd_cuda(
    const Tensor& grad_out, const Tensor& x, const Tensor& s, const Tensor& out, const Tensor& squeeze_weight,
    const Tensor& expand1x1_weight, const Tensor& expand3x3_weight);

// torch.backends.cudnn.allow_tf32, which fp32 calls follow as eager convs do (fire_cuda.cu, tensor_cores). The flag
// lives in ATen's global context, which the stable ABI does not reach: it is read from Python (the limited API;
// the calling thread may not hold the GIL). Without an interpreter (a C++-only caller), cuDNN's default: on. Where
// torch refuses to answer (legacy and fp32_precision flags mixed), exact fp32.
bool cudnn_allow_tf32() {
  if (!Py_IsInitialized()) return true;
  const PyGILState_STATE gil = PyGILState_Ensure();
  static PyObject* const get = [] {  // torch._C._get_cudnn_allow_tf32, kept for the process
    PyObject* module = PyImport_ImportModule("torch._C");
    PyObject* f = module ? PyObject_GetAttrString(module, "_get_cudnn_allow_tf32") : nullptr;
    Py_XDECREF(module);
    return f;
  }();
  PyObject* value = get ? PyObject_CallObject(get, nullptr) : nullptr;
  const int on = value ? PyObject_IsTrue(value) : -1;
  Py_XDECREF(value);
  if (on < 0) PyErr_Clear();
  PyGILState_Release(gil);
  return on > 0;
}

}  // namespace fusedfire

namespace {

// cudnn_allow_tf32() -> bool, read as a kernel call reads it: without the GIL, as torch.ops calls run. For the tests.
PyObject* py_cudnn_allow_tf32(PyObject*, PyObject*) {
  bool on;
  Py_BEGIN_ALLOW_THREADS
  on = fusedfire::cudnn_allow_tf32();
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(on);
}

PyMethodDef methods[] = {
    {"cudnn_allow_tf32", py_cudnn_allow_tf32, METH_NOARGS, "Whether fp32 calls use tf32 tensor cores now."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// Importing fusedfire._C from Python also runs the STABLE_TORCH_LIBRARY_IMPL registrar below.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}

STABLE_TORCH_LIBRARY_IMPL(fusedfire, CUDA, m) {
  m.impl("native_fire", TORCH_BOX(&fusedfire::native_fire_cuda));
  m.impl("native_fire_fwd", TORCH_BOX(&fusedfire::native_fire_fwd_cuda));
  m.impl("native_fire_bwd", TORCH_BOX(&fusedfire::native_fire_bwd_cuda));
}
