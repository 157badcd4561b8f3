"""FusedFire as a drop-in for torchvision's Fire: state_dict, shared parameters, convert(), whole-network parity,
torch.compile, torch.export, and the activation memory saved for backward."""
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.squeezenet import Fire

import fusedfire
from fusedfire import FusedFire, convert
from fusedfire.testing import assert_close

from .conftest import DEVICE

BACKENDS = fusedfire.backends(DEVICE)


def test_state_dict_round_trip_both_ways():
    tv = Fire(96, 16, 64, 64)
    ff = FusedFire(96, 16, 64, 64)
    assert list(ff.state_dict()) == list(tv.state_dict())
    assert ff.inplanes == tv.inplanes == 96
    for a, b in zip(ff.modules(), tv.modules()):
        assert type(a) is type(b) or (a is ff and b is tv)
    ff.load_state_dict(tv.state_dict())
    tv2 = Fire(96, 16, 64, 64)
    tv2.load_state_dict(ff.state_dict())
    for (k, a), (_, b) in zip(tv.state_dict().items(), tv2.state_dict().items()):
        assert torch.equal(a, b), k


def test_unknown_backend_is_rejected_at_construction():
    with pytest.raises(ValueError, match="unknown backend 'trition'"):
        FusedFire(4, 2, 3, 3, backend="trition")


def test_from_fire_shares_parameters_and_optimizer_keeps_working():
    tv = Fire(8, 3, 5, 6)
    opt = torch.optim.SGD(tv.parameters(), lr=0.1)
    ff = FusedFire.from_fire(tv, backend="reference")
    assert all(a is b for a, b in zip(ff.parameters(), tv.parameters()))
    before = tv.squeeze.weight.detach().clone()
    ff(torch.randn(2, 8, 4, 4)).square().sum().backward()
    opt.step()
    assert not torch.equal(before, tv.squeeze.weight)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_convert_whole_network_output_and_gradients(name, backend):
    """Converted SqueezeNet vs the original on the same weights, fp64 so only the kernels' error shows."""
    if backend == "triton" and DEVICE == "cpu" and name == "squeezenet1_0":
        pytest.skip("one network suffices under the (slow) interpreter")
    model = getattr(torchvision.models, name)(num_classes=10).double().to(DEVICE)
    fused = getattr(torchvision.models, name)(num_classes=10).double().to(DEVICE)
    fused.load_state_dict(model.state_dict())
    assert convert(fused, backend=backend) is fused
    fires = [m for m in fused.modules() if isinstance(m, FusedFire)]
    assert len(fires) == 8 and not any(isinstance(m, Fire) for m in fused.modules())
    x = torch.randn(2, 3, 40, 40, dtype=torch.float64, device=DEVICE)
    torch.manual_seed(1)  # the same dropout mask in both
    out = fused(x)
    torch.manual_seed(1)
    want = model(x)
    assert_close(out, want, rtol=1e-9, atol=1e-9)
    out.square().sum().backward()
    want.square().sum().backward()
    for (k, a), b in zip(fused.named_parameters(), model.parameters()):
        assert_close(a.grad, b.grad, name=k, rtol=1e-8, atol=1e-9)


def test_convert_takes_lookalikes_and_leaves_other_modules():
    class MyFire(nn.Module):  # same three convs, not torchvision's class
        def __init__(self):
            super().__init__()
            self.squeeze = nn.Conv2d(4, 2, 1)
            self.expand1x1 = nn.Conv2d(2, 3, 1)
            self.expand3x3 = nn.Conv2d(2, 3, 3, padding=1)

    model = nn.Sequential(nn.Conv2d(3, 4, 1), MyFire(), nn.ReLU())
    convert(model)
    assert isinstance(model[1], FusedFire) and isinstance(model[0], nn.Conv2d)
    assert isinstance(convert(Fire(4, 2, 3, 3)), FusedFire)  # a Fire given itself comes back converted


def test_convert_leaves_a_lookalike_with_another_activation():
    model = nn.Sequential(Fire(4, 2, 3, 3))
    model[0].__class__ = type("LeakyFire", (Fire,), {})  # not torchvision's class: skipped, not refused
    model[0].expand3x3_activation = nn.LeakyReLU()
    convert(model)
    assert not isinstance(model[0], FusedFire)
    with pytest.raises(ValueError, match="expand3x3_activation is LeakyReLU, not nn.ReLU"):
        FusedFire.from_fire(model[0])


def test_convert_refuses_a_fire_it_cannot_run():
    model = nn.Sequential(Fire(4, 2, 3, 3))
    model[0].expand3x3 = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    with pytest.raises(ValueError, match="0 is a torchvision Fire that FusedFire cannot run: expand3x3 has no bias"):
        convert(model)


def test_compile_fullgraph_converted_squeezenet1_1():
    torch._dynamo.reset()
    model = convert(torchvision.models.squeezenet1_1(num_classes=10).eval())  # "auto": the default backend
    x = torch.randn(1, 3, 48, 48)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_export_fusedfire():
    ff = FusedFire(6, 3, 4, 5, backend="reference").eval()
    x = torch.randn(2, 6, 5, 5)
    ep = torch.export.export(ff, (x,))
    assert any("fusedfire" in str(node.target) for node in ep.graph.nodes)
    assert_close(ep.module()(x), ff(x))


def _saved_bytes(model, x):
    """Bytes that autograd keeps for backward, each storage counted once: the saved tensors and the output that
    each FusedFire keeps beside them (ctx.out, see ops._setup_context)."""
    seen = {}

    def keep(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        y = model(x)
    nodes, todo = set(), [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            if isinstance(getattr(node, "out", None), torch.Tensor):
                keep(node.out)
            todo.extend(next_node for next_node, _ in node.next_functions)
    y.sum().backward()
    assert any(hasattr(node, "out") for node in nodes) == any(isinstance(m, FusedFire) for m in model.modules())
    return sum(seen.values())


def _chain(k, backend=None):
    torch.manual_seed(0)
    chain = nn.Sequential(*[Fire(128, 16, 64, 64) for _ in range(k)])
    return chain if backend is None else convert(chain, backend=backend)


def test_saves_a_third_less_activation_memory_per_fire():
    """Per Fire inside a network, eager keeps s, both expand outputs and the concatenated output (saved by the
    next layer); FusedFire keeps s and out only. Measured as the bytes one more Fire adds to a chain:
    eager 16+64+64+128 = 272 channels, ours 16+128 = 144 (0.53×)."""
    x = torch.randn(2, 128, 16, 16, requires_grad=True)
    eager = _saved_bytes(_chain(3), x) - _saved_bytes(_chain(2), x)
    ours = _saved_bytes(_chain(3, "reference"), x) - _saved_bytes(_chain(2, "reference"), x)
    assert ours <= 0.65 * eager, (ours, eager)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_whole_network_saves_less(name):
    """Whole `features` (the first conv, ReLU and max-pools count too): 0.80× and 0.85× of eager at 96×96."""
    model = getattr(torchvision.models, name)().features
    x = torch.randn(1, 3, 96, 96, requires_grad=True)
    eager = _saved_bytes(model, x)
    ours = _saved_bytes(convert(model, backend="reference"), x)
    assert ours <= 0.9 * eager, (ours, eager)
