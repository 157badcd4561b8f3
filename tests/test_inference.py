"""fusedfire.optimize: a whole SqueezeNet for inference, a snapshot with the original's state_dict keys."""
import copy
import warnings

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.squeezenet import Fire

import fusedfire
from fusedfire import FusedFire, optimize
from fusedfire.frozen import FrozenFire, FrozenMaxPool2d, PooledClassifier, FusedSequential
from fusedfire.inference import _channels_last_input
from fusedfire.testing import assert_close


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])
@pytest.mark.parametrize("N", [1, 3])
def test_matches_eager(name, layout, N):
    """Against the eager model in fp64, with its 1000 classes (the classifier's real GEMM) on fresh random data."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    fast = optimize(model)
    x = torch.randn(N, 3, 99, 87).contiguous(memory_format=layout)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(x.double())
    out = fast(x)  # with grad enabled, as a user may call it
    assert out.grad_fn is None  # nothing to differentiate: no graph is recorded even with grad enabled
    assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_matches_eager_tolerance_catches_a_planted_bug():
    """Test of the test: the last Fire's expand3x3 bias off by 1e-3 fails the comparison above."""
    model = torchvision.models.squeezenet1_1().eval()
    fast = optimize(model)
    with torch.no_grad():
        fast.features[12].expand3x3.bias.add_(1e-3)
    x = torch.randn(1, 3, 99, 87)
    with torch.no_grad(), pytest.raises(AssertionError, match="worst error"):
        assert_close(fast(x), model.double()(x.double()), rtol=1e-4, atol=1e-5)


def test_what_it_swaps():
    """Fires → FrozenFire, the classifier → PooledClassifier, features → FusedSequential (the stem fused), the max
    pools → FrozenMaxPool2d; the keys stay."""
    model = torchvision.models.squeezenet1_1()
    fast = optimize(model)
    assert type(fast.features) is FusedSequential and type(fast.features[:3]) is FusedSequential
    assert [type(m) for m in fast.features[:3]] == [nn.Conv2d, nn.ReLU, FrozenMaxPool2d]
    assert [i for i, m in enumerate(fast.features) if type(m) is FrozenMaxPool2d] == [2, 5, 8]
    assert fast.features._pooled_fires == {4: (3, 2, True), 7: (3, 2, True)}  # each later pool in its Fire's call
    assert sum(isinstance(m, FrozenFire) for m in fast.modules()) == 8
    assert type(fast.classifier) is PooledClassifier
    assert list(fast.state_dict()) == list(model.state_dict())
    assert isinstance(optimize(Fire(8, 3, 4, 5)), FrozenFire)  # a Fire alone


def test_leaves_what_it_does_not_know():
    """A classifier of another shape stays an nn.Sequential; a ReLU then a pool with padding is still swapped
    (max and ReLU commute there too), one returning indices is not."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, padding=1), Fire(16, 4, 8, 8),
                          nn.Sequential(nn.Dropout(), nn.Conv2d(16, 10, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(2)), nn.Flatten()).eval()
    fast = optimize(model)
    assert type(fast[1]) is nn.MaxPool2d and type(fast[2]) is nn.ReLU and type(fast[4]) is nn.Sequential
    x = torch.randn(3, 3, 21, 18)
    with torch.no_grad():
        assert_close(fast(x), model.double()(x.double()), rtol=1e-4, atol=1e-5)
    indices = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    fast = optimize(nn.Sequential(Fire(4, 2, 2, 2), indices))
    assert type(fast[1][0]) is nn.ReLU


def test_traces_to_standard_ops():
    """jit.trace (and the TorchScript ONNX exporter, which traces) sees standard ops: no oneDNN or native op."""
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    fast = optimize(model)
    x = torch.randn(2, 3, 64, 64)
    traced = torch.jit.trace(fast, x, check_trace=False)
    graph = str(traced.graph)
    assert not any(op in graph for op in ("mkldnn", "native_fire", "native_stem", "native_classifier"))
    with torch.no_grad():
        assert_close(traced(x), model.double()(x.double()), rtol=1e-4, atol=1e-5)


def test_is_a_snapshot_with_the_same_keys():
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(num_classes=10)  # training mode, left as it is
    fast = optimize(model)
    assert list(fast.state_dict()) == list(model.state_dict())
    assert model.training and not fast.training
    assert not any(isinstance(m, FusedFire) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters()) and not any(p.requires_grad for p in fast.parameters())
    x = torch.randn(1, 3, 64, 64)
    before = fast(x)
    with torch.no_grad():
        model.features[3].expand3x3.bias.add_(1.0)
    torch.testing.assert_close(fast(x), before)  # the original's later changes do not reach the snapshot
    fast.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model.eval()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not fusedfire.native.available("cpu"), reason="fusedfire._cpu is not built")
def test_empty_cache_frees_the_kept_outputs_only():
    """optimize's outputs of 1 MB or more come from kept blocks: freed ones are kept until empty_cache, live ones
    are never touched, and inference goes on after it."""
    fast = optimize(torchvision.models.squeezenet1_1(num_classes=10).eval())
    x = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        want = fast(x)
        pooled = torch.ops.fusedfire.native_max_pool(torch.rand(1, 64, 200, 200).contiguous(
            memory_format=torch.channels_last), 3, 2, False)  # 2.5 MB, from a kept block, alive
        copied = pooled.clone()
        assert fusedfire.empty_cache() > 0 and fusedfire.empty_cache() == 0
        assert torch.equal(pooled, copied)
        del pooled
        assert fusedfire.empty_cache() == copied.numel() * 4
        assert torch.equal(fast(x), want)
    assert "empty_cache" in fusedfire.__all__


def test_refuses_what_it_cannot_optimize():
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        optimize("squeezenet1_1")
    with pytest.raises(ValueError, match="Sequential has no Fire module to fuse"):
        optimize(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    assert "optimize" in fusedfire.__all__


def test_compiles_as_the_converted_model_does():
    """torch.compile traces the frozen modules' general paths: no graph break beyond the converted model's with the
    same input hook (which Dynamo compiles apart: one break)."""
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    fast = optimize(model)
    converted = fusedfire.convert(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    converted.register_forward_pre_hook(_channels_last_input)
    breaks = [torch._dynamo.explain(m)(x).graph_break_count for m in (fast, converted)]
    assert breaks[0] <= breaks[1], breaks
    torch._dynamo.reset()
    with torch.no_grad():
        assert_close(torch.compile(fast)(x), model.double()(x.double()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_export_is_standard_and_runs_in_onnxruntime(dynamo, tmp_path):
    """Both exporters see the frozen modules' standard ops (and the stem's ReLU after its pool)."""
    onnx, onnxruntime = pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    path = str(tmp_path / "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(optimize(model), (x,), path, dynamo=dynamo)
    ops = {(node.domain or "ai.onnx", node.op_type) for node in onnx.load(path).graph.node}
    assert {("ai.onnx", "Conv"), ("ai.onnx", "Relu"), ("ai.onnx", "Concat")} <= ops
    assert all(domain == "ai.onnx" for domain, _ in ops), ops
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert_close(torch.from_numpy(y), model.double()(x.double()), rtol=1e-4, atol=1e-5)
