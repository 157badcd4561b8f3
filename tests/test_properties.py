"""Property tests: random Fire shapes, layouts and batch sizes, every available backend vs the fp64 truth."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusedfire
from fusedfire.testing import assert_close, fire_params, reference64

from .conftest import DEVICE

shapes = st.fixed_dictionaries({
    "n": st.integers(1, 3), "cin": st.integers(1, 20), "s": st.integers(1, 18), "e1": st.integers(1, 20),
    "e3": st.integers(1, 20), "h": st.integers(1, 7), "w": st.integers(1, 7), "layout": st.sampled_from(
        ["nchw", "channels_last", "strided"]), "seed": st.integers(0, 2**31 - 1)})


@pytest.mark.parametrize("backend", fusedfire.backends(DEVICE))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes)
def test_random_shapes_forward_and_backward(backend, shape):
    g = torch.Generator().manual_seed(shape["seed"])
    n, cin, h, w = shape["n"], shape["cin"], shape["h"], shape["w"]
    x = torch.randn(n, cin, h, 2 * w if shape["layout"] == "strided" else w, generator=g)
    if shape["layout"] == "strided":
        x = x[..., ::2]
    elif shape["layout"] == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    x = x.to(DEVICE).requires_grad_()
    params = fire_params(cin, shape["s"], shape["e1"], shape["e3"], device=DEVICE, requires_grad=True)
    out = fusedfire.fire(x, *params, backend=backend)
    assert_close(out, reference64(x, params), rtol=1e-4, atol=1e-5)
    grad = torch.randn(out.shape, generator=g).to(DEVICE)
    grads = torch.autograd.grad(out, (x, *params), grad)
    x64 = x.detach().double().cpu().requires_grad_()
    p64 = [p.detach().double().cpu().requires_grad_() for p in params]
    want = torch.autograd.grad(fusedfire.reference.fire_reference(x64, *p64), (x64, *p64), grad.double().cpu())
    for name, a, b in zip(fusedfire.ops._NAMES, grads, want):
        assert_close(a, b, name=name, rtol=1e-4, atol=1e-4)
