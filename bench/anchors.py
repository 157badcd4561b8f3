"""The CPU inference engines a user would pick instead of fusedfire: ONNX Runtime and OpenVINO, as benchmark
providers. Each runs a model exported by `torch.onnx.export(..., dynamo=True)`, fp32, NCHW input, with torch's
thread count, and is checked against the eager model's output when built.

Optional (`pip install .[bench]`): a provider is listed only where its package imports.
"""
import importlib.util
import os
import tempfile

import torch
from torch import nn

ENGINES = ("onnxruntime", "openvino")


def available() -> list:
    """The engines whose packages (and onnxscript, which the exporter needs) import here."""
    if importlib.util.find_spec("onnxscript") is None:
        return []
    return [name for name in ENGINES if importlib.util.find_spec(name) is not None]


class Engine(nn.Module):
    """A compiled engine behind a module's call: torch tensor in, torch tensor out (no copy where the input is
    contiguous NCHW fp32)."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def forward(self, x):
        return torch.from_numpy(self.run(x.detach().contiguous().numpy()))


def _onnx_file(model: nn.Module, x: torch.Tensor, folder: str) -> str:
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
    return path


def _onnxruntime(path: str, threads: int):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _openvino(path: str, threads: int):
    import openvino
    # f32: on a CPU with AVX-512 BF16 or AMX, OpenVINO's default inference precision is bf16 (max |err| 4e-3)
    compiled = openvino.Core().compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS":
                                                           threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda x: request.infer([x], share_inputs=True)[compiled.output(0)].copy()


def build(engine: str, model: nn.Module, x: torch.Tensor) -> Engine:
    """`model` (eval, fp32) exported for input shape x.shape and compiled by `engine`; its output on x is
    checked against the model's (fp32: different algorithms, so rtol 1e-4, atol 1e-4 of O(1) activations)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    if x.dtype != torch.float32:
        raise ValueError(f"{engine}: the benchmarks run it in float32 only, got {x.dtype}")
    x = x.contiguous()
    with tempfile.TemporaryDirectory() as folder:
        path = _onnx_file(model, x, folder)
        run = (_onnxruntime if engine == "onnxruntime" else _openvino)(path, torch.get_num_threads())
        runner = Engine(run)
        with torch.no_grad():
            torch.testing.assert_close(runner(x), model(x), rtol=1e-4, atol=1e-4,
                                       msg=lambda m: f"{engine} does not compute what eager does: {m}")
    return runner
