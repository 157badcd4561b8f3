"""A converted model goes wherever an eager SqueezeNet goes: both ONNX exporters (run by ONNX Runtime), fx and
torchvision's feature extractor, TorchScript (trace with its checks, script), torch.func (grad, vjp, vmap),
in-place use of the output, and torch.compile without warnings."""
import io
import warnings

import onnx
import onnxruntime
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import fusedfire
from fusedfire import FusedFire, convert
from fusedfire.reference import Fire
from fusedfire.testing import fire_params


def _pair(name="squeezenet1_1"):
    """An eager torchvision model (eval) and its converted twin with the same weights."""
    torch.manual_seed(0)
    eager = getattr(torchvision.models, name)(num_classes=10).eval()
    ours = getattr(torchvision.models, name)(num_classes=10).eval()
    ours.load_state_dict(eager.state_dict())
    return eager, convert(ours)


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_export_is_standard_and_runs_in_onnxruntime(dynamo, tmp_path):
    eager, ours = _pair()
    x = torch.randn(2, 3, 64, 64)
    path = str(tmp_path / "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(ours, (x,), path, dynamo=dynamo)
    graph = onnx.load(path).graph
    ops = {(node.domain or "ai.onnx", node.op_type) for node in graph.node}
    assert {("ai.onnx", "Conv"), ("ai.onnx", "Relu"), ("ai.onnx", "Concat")} <= ops
    assert all(domain == "ai.onnx" for domain, _ in ops), ops
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        _close(torch.from_numpy(y), eager(x))


def test_fx_symbolic_trace():
    """torchvision's _check_fx_compatible: trace, run, compare with the eager output."""
    eager, ours = _pair()
    x = torch.randn(2, 3, 64, 64)
    traced = torch.fx.symbolic_trace(ours)
    with torch.no_grad():
        _close(traced(x), eager(x))
    assert sum("fire" in str(node.target) for node in traced.graph.nodes) == 8  # each Fire one leaf call


def test_create_feature_extractor():
    eager, ours = _pair()
    x = torch.randn(2, 3, 64, 64)
    extractor = create_feature_extractor(ours, return_nodes=["features.3", "features.12"])
    with torch.no_grad():
        features = extractor(x)
        _close(features["features.3"], eager.features[:4](x))
        _close(features["features.12"], eager.features(x))
    assert not ours.training


def test_torchscript_trace_with_its_checks():
    eager, ours = _pair()
    x = torch.randn(2, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(ours, x)  # check_trace=True: reruns under no_grad and compares
    with torch.no_grad():
        _close(traced(x), eager(x))


def test_torchscript_script_forward_backward_and_save():
    eager, ours = _pair()
    x = torch.randn(2, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(ours)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    with torch.no_grad():
        _close(scripted(x), eager(x))
        _close(loaded(x), eager(x))
    scripted(x).square().sum().backward()
    eager(x).square().sum().backward()
    _close(ours.features[3].expand3x3.weight.grad, eager.features[3].expand3x3.weight.grad)


def _fire_pair():
    torch.manual_seed(0)
    ref = Fire(8, 4, 5, 6)
    ours = FusedFire(8, 4, 5, 6)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _params(module):
    return {k: v.detach() for k, v in module.named_parameters()}


def test_func_grad_vjp_jacrev():
    ref, ours = _fire_pair()
    x = torch.randn(2, 8, 5, 7)

    def loss(module):
        return lambda p, x: torch.func.functional_call(module, p, (x,)).square().sum()
    expected = torch.func.grad(loss(ref), argnums=(0, 1))(_params(ref), x)
    got = torch.func.grad(loss(ours), argnums=(0, 1))(_params(ours), x)
    _close(got[1], expected[1])
    for name in expected[0]:
        _close(got[0][name], expected[0][name])
    out, vjp = torch.func.vjp(ours, x)
    out_ref, vjp_ref = torch.func.vjp(ref, x)
    _close(out, out_ref)
    g = torch.randn_like(out)
    _close(vjp(g)[0], vjp_ref(g)[0])
    b = _params(ours)["expand3x3.bias"]
    jacobian = lambda module: torch.func.jacrev(  # noqa: E731
        lambda b: torch.func.functional_call(module, {**_params(module), "expand3x3.bias": b}, (x,)).relu().sum())
    _close(jacobian(ours)(b), jacobian(ref)(b))


@pytest.mark.parametrize("grad", [True, False], ids=["params-need-grad", "inference"])
@pytest.mark.parametrize("batched", ["x", "weights"])
def test_vmap_has_batching_rules(batched, grad):
    """x alone batched: one call over B·N images; batched weights: one call per element (no fallback warning)."""
    ref, ours = _fire_pair()
    ours.requires_grad_(grad)
    xb = torch.randn(3, 2, 8, 5, 7)
    params = {k: torch.stack([v * (1 + i / 10) for i in range(3)]) for k, v in _params(ours).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "There is a performance drop ..." if a batching rule is missing
        if batched == "x":
            got = torch.func.vmap(ours)(xb)
        else:
            got = torch.func.vmap(lambda p, x: torch.func.functional_call(ours, p, (x,)))(params, xb)
    if batched == "x":
        expected = torch.stack([ref(x) for x in xb])
    else:
        expected = torch.stack([torch.func.functional_call(ref, {k: v[i] for k, v in params.items()}, (xb[i],))
                                for i in range(3)])
    _close(got, expected)


def test_per_example_gradients():
    """vmap(grad): the weight gradients of each example, through the backward's batching rule."""
    ref, ours = _fire_pair()
    xb = torch.randn(3, 8, 5, 7)

    def per_example(module):
        loss = lambda p, x: torch.func.functional_call(module, p, (x[None],)).square().sum()  # noqa: E731
        return torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(_params(module), xb)
    got, expected = per_example(ours), per_example(ref)
    for name in expected:
        _close(got[name], expected[name])


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_output_changed_in_place_backpropagates_as_eager(backend):
    """Eager's concatenated output is saved by nobody, so `out.add_(1)` (a bypass added in place) is fine there;
    FusedFire recomputes what it needs when its output's version moved."""
    if backend not in fusedfire.backends("cpu"):
        pytest.skip(f"backend {backend!r} not built")
    ref, ours = _fire_pair()
    ours.backend = backend
    x = torch.randn(2, 8, 5, 7)
    grads = []
    for module in (ref, ours):
        xi = x.clone().requires_grad_()
        out = module(xi)
        out.add_(1).mul_(2)
        out.square().sum().backward()
        grads.append([xi.grad] + [p.grad for p in module.parameters()])
    for got, expected in zip(grads[1], grads[0]):
        _close(got, expected)


def test_compile_without_warnings_and_inplace_output():
    _, ours = _fire_pair()
    torch._dynamo.reset()
    x = torch.randn(2, 8, 5, 7, requires_grad=True)
    step = torch.compile(lambda x: ours(x).add_(1).square().sum(), fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Dynamo's "call to a functools.lru_cache-wrapped function"
        step(x).backward()
    expected_x = x.detach().clone().requires_grad_()
    ours(expected_x).add(1).square().sum().backward()
    _close(x.grad, expected_x.grad)


def test_messages_say_what_is_wrong():
    x = torch.randn(2, 8, 5, 5)
    p = fire_params(8, 4, 5, 6)
    with pytest.raises(ValueError, match=r"expand1x1_weight must have at least one output channel \(E1 >= 1\), "
                                         r"got shape \(0, 4, 1, 1\)"):
        fusedfire.fire(x, p[0], p[1], torch.empty(0, 4, 1, 1), torch.empty(0), p[4], p[5])
    with pytest.raises(ValueError, match=r"x must have at least one channel"):
        fusedfire.fire(x[:, :0], *p)
    with pytest.raises(ValueError, match=r"squeeze_weight must be 4-D \(S, Cin, 1, 1\), got 2-D with shape \(4, 8\)"):
        fusedfire.fire(x, p[0].flatten(1), *p[1:])
    with pytest.raises(TypeError, match=r"backend must be a str.*got list \['cpu'\]"):
        fusedfire.fire(x, *p, backend=["cpu"])
    with pytest.raises(ValueError, match=r"unknown backend 'gpu'"):
        torch.ops.fusedfire.fire(x, *p, "gpu")


def test_ops_take_auto():
    """torch.ops.fusedfire.* resolve "auto" like fusedfire.fire (TorchScript and traced graphs keep it)."""
    x = torch.randn(2, 8, 5, 5)
    p = fire_params(8, 4, 5, 6)
    _close(torch.ops.fusedfire.fire(x, *p, "auto"), fusedfire.fire(x, *p))
    out, s = torch.ops.fusedfire.fire_fwd(x, *p, "auto")
    _close(out, fusedfire.fire(x, *p))


def test_chain_with_bypass_trains_as_eager():
    """SqueezeNet with simple bypass, the bypass added in place to the Fire's output."""
    torch.manual_seed(0)
    eager = nn.ModuleList([Fire(16, 4, 8, 8), Fire(16, 4, 8, 8)])
    ours = convert(nn.ModuleList([Fire(16, 4, 8, 8), Fire(16, 4, 8, 8)]))
    ours.load_state_dict(eager.state_dict())
    x = torch.randn(2, 16, 6, 6)
    for model in (eager, ours):
        h = model[0](x)
        model[1](h).add_(h).square().sum().backward()
    for (name, got), expected in zip(ours.named_parameters(), eager.parameters()):
        _close(got.grad, expected.grad)


@pytest.mark.parametrize("in_place", [False, True])
def test_checkpoint_drops_and_recomputes_the_output(in_place):
    """Under non-reentrant checkpointing (saved-tensor hooks) the Fire's output goes through the hooks like every
    saved tensor (so checkpointing frees it); gradients as eager's, also with the output changed in place."""
    from torch.utils.checkpoint import checkpoint
    torch.manual_seed(0)
    eager = nn.Sequential(Fire(16, 4, 8, 8), Fire(16, 4, 8, 8))
    ours = convert(nn.Sequential(Fire(16, 4, 8, 8), Fire(16, 4, 8, 8)))
    ours.load_state_dict(eager.state_dict())
    x = torch.randn(2, 16, 6, 6)

    def segment(model):
        def run(x):
            out = model(x)
            return out.add_(1) if in_place else out
        return run
    for model in (eager, ours):
        checkpoint(segment(model), x.requires_grad_(), use_reentrant=False).square().sum().backward()
    for got, expected in zip(ours.parameters(), eager.parameters()):
        _close(got.grad, expected.grad)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        out = ours[0](torch.randn(2, 16, 6, 6, requires_grad=True))
    assert any(t.untyped_storage().data_ptr() == out.untyped_storage().data_ptr() for t in kept)
    assert out.grad_fn.out is None  # nothing kept outside the hooks
