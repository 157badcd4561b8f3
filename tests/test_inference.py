"""fusedfire.optimize: a whole SqueezeNet for inference, a snapshot with the original's state_dict keys."""
import pytest
import torch
import torchvision
from torch import nn

import fusedfire
from fusedfire import FusedFire, optimize


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])
def test_matches_eager(name, layout):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=20).eval()
    fast = optimize(model)
    x = torch.randn(2, 3, 96, 80).contiguous(memory_format=layout)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    assert fast(x).grad_fn is None  # nothing to differentiate: no graph is recorded even with grad enabled


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


def test_refuses_what_it_cannot_optimize():
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        optimize("squeezenet1_1")
    with pytest.raises(ValueError, match="Sequential has no Fire module to fuse"):
        optimize(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    assert "optimize" in fusedfire.__all__
