"""The modules optimize puts in its snapshot (fusedfire/frozen.py): FrozenFire's direct call of the cpu op and every
way it falls back to the general path, its pack kept current, its errors for bad inputs; PooledClassifier against the
eager classifier."""
import copy
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fusedfire
from fusedfire import FusedFire, frozen
from fusedfire.frozen import (FrozenFire, FrozenMaxPool2d, PooledClassifier, FusedSequential, classifier_problem,
                              pool_problem, stem_problem)
from fusedfire.testing import assert_close, reference64

CPU_NATIVE = "cpu" in fusedfire.backends("cpu")
needs_cpu_backend = pytest.mark.skipif(not CPU_NATIVE, reason="fusedfire._cpu is not built")
LAYOUTS = pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])


def _recorded(monkeypatch, *names):
    """The calls made through frozen.py's op handles `names` (each still runs its op)."""
    calls = []
    for name in names:
        real = getattr(frozen, name)
        monkeypatch.setattr(frozen, name, lambda *args, real=real: calls.append(args) or real(*args))
    return calls


@pytest.fixture
def op_calls(monkeypatch):
    """The calls FrozenFire makes to the cpu ops directly (its fast path), packed or not."""
    return _recorded(monkeypatch, "_NATIVE_FIRE", "_NATIVE_FIRE_PACKED")


def _frozen_fire(backend="auto"):
    fire = FrozenFire.from_fire(FusedFire(24, 8, 12, 20), backend=backend)
    return fire.eval().requires_grad_(False)


def _params(fire):
    return (fire.squeeze.weight, fire.squeeze.bias, fire.expand1x1.weight, fire.expand1x1.bias,
            fire.expand3x3.weight, fire.expand3x3.bias)


# ------------------------------------------------------------------------------------------------ FrozenFire

@needs_cpu_backend
@LAYOUTS
@pytest.mark.parametrize("grad_enabled", [False, True], ids=["no_grad", "grad"])
def test_frozen_fire_calls_the_op_directly(op_calls, layout, grad_enabled):
    fire = _frozen_fire()
    x = torch.randn(3, 24, 7, 5).contiguous(memory_format=layout)
    with torch.set_grad_enabled(grad_enabled):
        out = fire(x)
    assert len(op_calls) == 1 and out.grad_fn is None
    assert_close(out, reference64(x, _params(fire)))


@needs_cpu_backend
def test_frozen_fire_follows_its_weights(op_calls):
    """load_state_dict and a dtype change reach the direct call (it looks the parameters up per call)."""
    fire, other = _frozen_fire(), FusedFire(24, 8, 12, 20)
    fire.load_state_dict(other.state_dict())
    x = torch.randn(2, 24, 6, 6)
    assert_close(fire(x), reference64(x, _params(other)))
    fire.double()
    out = fire(x.double())
    assert out.dtype == torch.float64 and len(op_calls) == 2
    assert_close(out, reference64(x, _params(other)), rtol=1e-12, atol=1e-12)


def _winograd_fire():
    """A FrozenFire whose pack holds a Winograd transform (S, E3 multiples of 16), with an input that runs it."""
    fire = FrozenFire.from_fire(FusedFire(32, 16, 8, 32)).eval().requires_grad_(False)
    return fire, torch.randn(2, 32, 13, 13)


@needs_cpu_backend
@pytest.mark.parametrize("change", ["in_place", "load_state_dict", "new_parameter", "layout_round_trip"])
def test_frozen_fire_repacks_when_its_weights_change(op_calls, change):
    """After a first call (the pack made), each way torch changes a weight reaches the output: the pack follows."""
    fire, x = _winograd_fire()
    fire(x)
    other = FusedFire(32, 16, 8, 32)
    with torch.no_grad():
        if change == "in_place":
            fire.expand3x3.weight.mul_(-2)
            fire.squeeze.bias.add_(0.5)
        elif change == "load_state_dict":
            fire.load_state_dict(other.state_dict())
        elif change == "new_parameter":
            fire.expand3x3.weight = nn.Parameter(other.expand3x3.weight.clone(), requires_grad=False)
        else:  # new storages, the second possibly where the first weights were
            fire.to(memory_format=torch.channels_last).to(memory_format=torch.contiguous_format)
            fire.expand1x1.weight.mul_(3)
    out = fire(x)
    assert len(op_calls) == 2 and op_calls[-1][-1].dim() == 1  # the packed op, with a pack
    assert_close(out, reference64(x, _params(fire)), rtol=5e-5, atol=5e-5)


@needs_cpu_backend
def test_frozen_fire_pack_is_not_copied_and_inference_weights_need_none(op_calls):
    fire, x = _winograd_fire()
    want = fire(x)
    copied = copy.deepcopy(fire)
    assert "_pack" in fire.__dict__ and "_pack" not in copied.__dict__  # derived: remade at the copy's first call
    assert torch.equal(copied(x), want) and "_pack" in copied.__dict__
    with torch.inference_mode():  # inference tensors have no version counter to follow: the unpacked op
        made_in_inference = FrozenFire.from_fire(FusedFire(32, 16, 8, 32)).eval().requires_grad_(False)
    out = made_in_inference(x)
    assert "_pack" not in made_in_inference.__dict__ and op_calls[-1][-1].dim() == 1  # b3, not a pack
    assert_close(out, reference64(x, _params(made_in_inference)), rtol=5e-5, atol=5e-5)


@needs_cpu_backend
def test_repacking_is_what_the_test_above_sees(monkeypatch):
    """Test of the test: a FrozenFire that kept its first pack fails the comparison after an in-place change."""
    fire, x = _winograd_fire()
    first = fire._current_pack(_params(fire)[:5])
    monkeypatch.setattr(fire, "_current_pack", lambda weights: first)
    with torch.no_grad():
        fire.expand3x3.weight.mul_(-2)
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(fire(x), reference64(x, _params(fire)), rtol=5e-5, atol=5e-5)


@pytest.mark.parametrize("case", ["x_requires_grad", "params_require_grad", "autocast", "jit_trace", "backend_arg",
                                  "backend_env"])
def test_frozen_fire_takes_the_general_path(op_calls, monkeypatch, case):
    """Whatever the direct call does not cover runs fusedfire.fire, as FusedFire does."""
    if case == "backend_env":
        monkeypatch.setenv(fusedfire.ops.BACKEND_ENV, "reference")  # read once, when the FrozenFire is built
    fire = _frozen_fire(backend="reference" if case == "backend_arg" else "auto")
    monkeypatch.delenv(fusedfire.ops.BACKEND_ENV, raising=False)
    x = torch.randn(2, 24, 5, 5)
    if case == "x_requires_grad":
        x.requires_grad_()
    if case == "params_require_grad":
        fire.requires_grad_(True)
    if case == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fire(x)
        assert out.dtype == torch.bfloat16
    elif case == "jit_trace":
        traced = torch.jit.trace(fire, x, check_trace=False)
        assert "native_fire" not in str(traced.graph)  # the general path's op, resolved where the trace runs
        out = traced(x)
    else:
        out = fire(x)
    assert op_calls == []
    if case in ("x_requires_grad", "params_require_grad"):
        out.sum().backward()  # a graph was recorded
    if case != "autocast":
        assert_close(out, reference64(x, _params(fire)))


@pytest.mark.parametrize("x, error, message", [
    (torch.randn(2, 23, 5, 5), ValueError, r"squeeze_weight must have shape .* given x with Cin=23 channels"),
    (torch.randn(2, 24, 5, 5, dtype=torch.float64), TypeError,
     "squeeze_weight has dtype torch.float32 but x has torch.float64"),
    (torch.randn(24, 5, 5), ValueError, r"x must be 4-D \(N, C, H, W\), got 3-D"),
    (torch.ones(2, 24, 5, 5, dtype=torch.int32), TypeError, "x must be float16, bfloat16, float32 or float64"),
    ([[1.0]], TypeError, "x must be a Tensor, got list"),
    (torch.randn(2, 24, 5, 5, device="meta"), ValueError, "squeeze_weight is on cpu but x is on meta"),
], ids=["channels", "dtype", "3d", "int", "list", "device"])
def test_frozen_fire_names_what_is_wrong(op_calls, x, error, message):
    with pytest.raises(error, match=message):
        _frozen_fire()(x)
    assert op_calls == []


# -------------------------------------------------------------------------------------------- FusedSequential

@pytest.fixture
def stem_calls(monkeypatch):
    return _recorded(monkeypatch, "_NATIVE_STEM")


def _stem_model(**pool):
    """A stem (SqueezeNet 1.1's shape, fewer channels) and one more layer, in eval."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(inplace=True),
                         nn.MaxPool2d(**{"kernel_size": 3, "stride": 2, "ceil_mode": True, **pool}),
                         nn.Conv2d(16, 8, 1)).eval().requires_grad_(False)


@needs_cpu_backend
@LAYOUTS
def test_stem_sequential_fuses_the_stem(stem_calls, layout):
    model = _stem_model()
    fused = FusedSequential.from_sequential(model)
    x = torch.randn(2, 3, 33, 30).contiguous(memory_format=layout)
    out = fused(x)
    assert len(stem_calls) == 1
    with torch.no_grad():
        assert_close(out, copy.deepcopy(model).double()(x.double()))
    assert [a is b for a, b in zip(fused, model)] == [True] * 4 and list(fused.state_dict()) == list(model.state_dict())
    assert type(fused[:3]) is FusedSequential and type(fused[1:]) is nn.Sequential and type(fused[1]) is nn.ReLU
    fused[:3](x)  # a slice that keeps the stem fuses it too
    assert len(stem_calls) == 2


@pytest.mark.parametrize("case", ["requires_grad", "float64", "jit_trace", "backend_reference", "small_image"])
def test_stem_sequential_takes_the_layers_otherwise(stem_calls, case):
    """Anything native_stem does not take runs the layers, with the same result: an image whose conv output (2×2
    here) is smaller than the pooling kernel too (ATen's ceil_mode pools it)."""
    model = _stem_model()
    fused = FusedSequential.from_sequential(model, backend="reference" if case == "backend_reference" else "auto")
    x = torch.randn(2, 3, 5 if case == "small_image" else 33, 30)
    if case == "requires_grad":
        x.requires_grad_()
    if case == "float64":
        fused.double()
        x = x.double()
    out = torch.jit.trace(fused, x, check_trace=False)(x) if case == "jit_trace" else fused(x)
    assert stem_calls == []
    with torch.no_grad():
        assert_close(out, copy.deepcopy(model).double()(x.double()))
    if case == "requires_grad":
        out.sum().backward()
        assert x.grad is not None


@pytest.mark.parametrize("seq, problem", [
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "its first layers are"),
    (nn.Sequential(nn.Conv2d(3, 8, (3, 5)), nn.ReLU(), nn.MaxPool2d(3, 2)), "not square"),
    (nn.Sequential(nn.Conv2d(3, 8, 3, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2)), "padding at most half"),
    (nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.MaxPool2d(3, 2)), "or no bias"),
    (nn.Sequential(nn.Conv2d(3, 8, 3, groups=1, dilation=2), nn.ReLU(), nn.MaxPool2d(3, 2)), "dilation"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)), "without padding"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(9, 2)), "at most 8"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d((3, 2), 2)), "not square"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2, return_indices=True)), "indices"),
    (nn.ModuleList([nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2)]), "not an nn.Sequential"),
])
def test_stem_problem_names_what_differs(seq, problem):
    assert problem in stem_problem(seq)
    with pytest.raises(ValueError, match="FusedSequential.from_sequential: "):
        FusedSequential.from_sequential(seq)


def _fire_pool_model():
    """Two FrozenFires each followed by a max pool (as between SqueezeNet's Fire stages), in eval."""
    fires = [FrozenFire.from_fire(FusedFire(3, 16, 8, 24)), FrozenFire.from_fire(FusedFire(32, 16, 16, 16))]
    return nn.Sequential(fires[0], nn.MaxPool2d(3, 2, ceil_mode=True), fires[1],
                         nn.MaxPool2d(2, 2)).eval().requires_grad_(False)


@needs_cpu_backend
@LAYOUTS
@pytest.mark.parametrize("grad_enabled", [False, True], ids=["no_grad", "grad"])
def test_fused_sequential_pools_in_the_fire_before(op_calls, layout, grad_enabled):
    """channels_last: each Fire + max pool is one native_fire_packed call with the pool's arguments; NCHW (pooling
    in the Fire needs channels_last): the Fire, then the pool. The same values either way, with grad enabled (each
    Fire checks its call) or not (the call checked once)."""
    model = _fire_pool_model()
    fused = FusedSequential.from_sequential(model)
    assert fused._stem_args is None and fused._pooled_fires == {0: (3, 2, True), 2: (2, 2, False)}
    x = torch.randn(2, 3, 30, 29).contiguous(memory_format=layout)
    with torch.no_grad():
        want = copy.deepcopy(model).double()(x.double())
    op_calls.clear()
    with torch.set_grad_enabled(grad_enabled):
        out = fused(x)
    pooled = [tuple(args[8:11]) for args in op_calls if len(args) > 8 and args[8] != 0]
    assert pooled == ([(3, 2, True), (2, 2, False)] if layout == torch.channels_last else []), pooled
    assert len(op_calls) == 2
    assert_close(out, want, rtol=5e-5, atol=5e-5)


@needs_cpu_backend
@pytest.mark.parametrize("where", ["fire", "pool", "stem_pool", "global"])
def test_fused_sequential_runs_hooks_layer_by_layer(op_calls, stem_calls, where):
    """A forward hook on any layer (or a global one) runs: every layer then takes its own call, with the same values."""
    model = nn.Sequential(*_stem_model()[:3], *_fire_pool_model()[1:]).eval()  # stem, Fire, Fire, max pool
    model[3] = FrozenFire.from_fire(FusedFire(16, 16, 16, 16)).eval().requires_grad_(False)
    fused = FusedSequential.from_sequential(model)
    x = torch.randn(2, 3, 33, 30).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = copy.deepcopy(model).double()(x.double())
    op_calls.clear()
    seen = []
    hook = lambda module, args, out: seen.append(type(module).__name__)  # noqa: E731
    target = {"fire": fused[3], "pool": fused[5], "stem_pool": fused[2]}.get(where)
    handle = target.register_forward_hook(hook) if target else nn.modules.module.register_module_forward_hook(hook)
    try:
        with torch.no_grad():
            out = fused(x)
    finally:
        handle.remove()
    assert seen and stem_calls == [] and [len(args) for args in op_calls] == [8, 8]  # no fused stem or Fire + pool
    assert_close(out, want, rtol=5e-5, atol=5e-5)
    with torch.no_grad():
        fused(x)
    assert len(stem_calls) == 1 and op_calls[-1][8:12] == (2, 2, False, True)  # fused again, hooks removed
    assert stem_calls[0][-2] is fused[3].squeeze.weight and op_calls[-2][11]  # the stem applies the Fire's squeeze


def _fire_chain_model():
    """FrozenFires a, b, a max pool, c, d, e (S, E1 and E3 of Winograd's sizes and others), in eval."""
    def fire(*planes):
        return FrozenFire.from_fire(FusedFire(*planes))
    return nn.Sequential(fire(5, 16, 8, 24), fire(32, 16, 16, 16), nn.MaxPool2d(3, 2, ceil_mode=True),
                         fire(32, 8, 12, 20), fire(32, 16, 5, 32), fire(37, 4, 8, 8)).eval().requires_grad_(False)


@needs_cpu_backend
def test_fused_sequential_chains_fires(op_calls):
    """Under no_grad each Fire followed by a Fire applies the next one's squeeze in its call, which takes the s it
    gets: a(next b), b(squeezed, pooled), c(next d), d(squeezed, next e), e(squeezed). The same bits as the Fires
    called one by one (grad enabled), the fp64 truth within the fp32 tolerance, the next Fire's pack kept current."""
    model = _fire_chain_model()
    fused = FusedSequential.from_sequential(model)
    x = torch.randn(2, 5, 23, 21).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = copy.deepcopy(model).double()(x.double())
        op_calls.clear()
        out = fused(x)
    flags = [(args[8] != 0, args[11], args[12] is not None) for args in op_calls]  # pooled, squeezed, next
    assert flags == [(False, False, True), (True, True, False), (False, False, True), (False, True, True),
                     (False, True, False)], flags
    assert_close(out, want, rtol=5e-5, atol=5e-5)
    assert torch.equal(out, fused(x))  # grad enabled: each Fire by its own call
    with torch.no_grad():
        fused[4].squeeze.weight.mul_(-1)  # d's pack, which c's call uses, must follow
        want = copy.deepcopy(model).double()(x.double())
        assert_close(fused(x), want, rtol=5e-5, atol=5e-5)


def _replay_model():
    """A stem, two chained FrozenFires, a max pool after the second, and a FrozenFire: every kind of fused call."""
    def fire(*planes):
        return FrozenFire.from_fire(FusedFire(*planes))
    return nn.Sequential(*_stem_model()[:3], fire(16, 8, 8, 8), fire(16, 8, 12, 20), nn.MaxPool2d(3, 2, ceil_mode=True),
                         fire(32, 16, 8, 8)).eval().requires_grad_(False)


def _param(t):
    return nn.Parameter(torch.randn_like(t), requires_grad=False)


REPLAY_CHANGES = {
    "none": lambda fused, x: x,
    "weight_written": lambda fused, x: fused[4].squeeze.weight.mul_(-1).data_ptr() and x,  # in 3's call's pack
    "weight_replaced": lambda fused, x: setattr(fused[4].squeeze, "weight", _param(fused[4].squeeze.weight)) or x,
    "stem_weight_replaced": lambda fused, x: setattr(fused[0], "weight", _param(fused[0].weight)) or x,
    "data_swapped": lambda fused, x: setattr(fused[6].squeeze.weight, "data", torch.randn(16, 32, 1, 1)) or x,
    "submodule_replaced": lambda fused, x: setattr(fused[4], "expand1x1", nn.Conv2d(8, 12, 1).requires_grad_(False)) or x,
    "layer_replaced": lambda fused, x: fused.__setitem__(6, FrozenFire.from_fire(FusedFire(32, 4, 8, 8)).eval()) or x,
    "new_shape": lambda fused, x: torch.randn(2, 3, 47, 41).contiguous(memory_format=torch.channels_last),
    "new_strides": lambda fused, x: x.contiguous(),
}


@needs_cpu_backend
@pytest.mark.parametrize("change", REPLAY_CHANGES)
def test_fused_sequential_replays_its_calls_while_they_hold(op_calls, stem_calls, change):
    """An inference call records the calls it makes (a plan); the next one on an x of the same shape, strides and dtype
    makes them again without redoing its checks, until anything they depend on changes (a weight written, replaced
    or moved, a submodule or layer replaced, another x): then it decides afresh (a new plan). The fp64 truth either
    way."""
    fused = FusedSequential.from_sequential(_replay_model())
    x = torch.randn(2, 3, 45, 41).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fused(x)
        plan, calls = fused._plan, (len(stem_calls), len(op_calls))
        assert plan is not None and calls == (1, 3)
        x = REPLAY_CHANGES[change](fused, x)
        out = fused(x)
        assert (fused._plan is plan) == (change == "none")
        if change == "none":
            assert (len(stem_calls), len(op_calls)) == (2, 6)
        want = copy.deepcopy(nn.Sequential(*fused)).double()(x.double())
    assert_close(out, want, rtol=5e-5, atol=5e-5)


@needs_cpu_backend
def test_fused_sequential_replay_test_catches_a_stale_plan(monkeypatch):
    """Planted bug: a plan that checks only x's shape keeps the replaced weight; the comparison above sees it."""
    monkeypatch.setattr(frozen._Plan, "fits", lambda self, layers, x: (x.shape, x.stride(), x.dtype) == self.x)
    fused = FusedSequential.from_sequential(_replay_model())
    x = torch.randn(2, 3, 45, 41).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fused(x)
        REPLAY_CHANGES["weight_replaced"](fused, x)
        out = fused(x)
        want = copy.deepcopy(nn.Sequential(*fused)).double()(x.double())
    with pytest.raises(AssertionError):
        assert_close(out, want, rtol=5e-5, atol=5e-5)


@needs_cpu_backend
def test_fused_sequential_plan_is_not_copied():
    """deepcopy and pickle leave the plan (derived, with the packs) behind; the copy makes its own."""
    fused = FusedSequential.from_sequential(_replay_model())
    x = torch.randn(1, 3, 45, 41).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = fused(x)
        copied = copy.deepcopy(fused)
        assert "_plan" not in copied.__dict__ and torch.equal(copied(x), out) and copied._plan is not None


# ------------------------------------------------------------------------------------------- FrozenMaxPool2d

@pytest.fixture
def pool_calls(monkeypatch):
    return _recorded(monkeypatch, "_NATIVE_MAX_POOL")


@pytest.mark.parametrize("case", ["channels_last", "nchw", "requires_grad", "float64", "too_small", "jit_trace",
                                  "backend_reference"])
def test_frozen_max_pool(pool_calls, case):
    """The cpu op for a dense channels_last fp32 tensor at inference; nn.MaxPool2d's forward for anything else (an
    input smaller than the kernel: ATen's ceil_mode pools a clipped window); the same values either way."""
    pool = FrozenMaxPool2d.from_pool(nn.MaxPool2d(3, 2, ceil_mode=True),
                                     backend="reference" if case == "backend_reference" else "auto")
    x = torch.randn(2, 24, 2 if case == "too_small" else 14, 15)
    x = x.double() if case == "float64" else x
    x = x if case == "nchw" else x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(case == "requires_grad")
    out = torch.jit.trace(pool, x, check_trace=False)(x) if case == "jit_trace" else pool(x)
    assert len(pool_calls) == (case == "channels_last" and CPU_NATIVE)
    torch.testing.assert_close(out, nn.functional.max_pool2d(x, 3, 2, ceil_mode=True), rtol=0, atol=0)


@pytest.mark.parametrize("pool, problem", [
    (nn.MaxPool2d((3, 2), 2), "not square"),
    (nn.MaxPool2d(3, (2, 1)), "not square"),
    (nn.MaxPool2d(9, 2), "at most 8"),
    (nn.MaxPool2d(3, 2, padding=1), "without padding"),
    (nn.MaxPool2d(3, 2, dilation=2), "dilation"),
    (nn.MaxPool2d(3, 2, return_indices=True), "indices"),
    (nn.AvgPool2d(3, 2), "AvgPool2d is not an nn.MaxPool2d"),
])
def test_pool_problem_names_what_differs(pool, problem):
    assert problem in pool_problem(pool)
    with pytest.raises(ValueError, match="FrozenMaxPool2d.from_pool"):
        FrozenMaxPool2d.from_pool(pool)


# ------------------------------------------------------------------------------------------ PooledClassifier

def _classifier(cin=40, classes=30, bias=True):
    return nn.Sequential(nn.Dropout(0.5), nn.Conv2d(cin, classes, 1, bias=bias), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d((1, 1))).eval()


def _eager64(classifier, x):
    """The eager classifier in fp64: the truth."""
    with torch.no_grad():
        return classifier.double()(x.double()).float()


@LAYOUTS
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_pooled_classifier_matches_eager(layout, N, dtype, bias):
    """SqueezeNet's real classifier size (512 → 1000 on 13×13) and an awkward one."""
    for cin, classes, H, W in ((512, 1000, 13, 13), (40, 30, 7, 5)):
        eager = _classifier(cin, classes, bias)
        pooled = PooledClassifier.from_sequential(eager).to(dtype=dtype, memory_format=torch.channels_last)
        x = torch.randn(N, cin, H, W).relu_().to(dtype=dtype).contiguous(memory_format=layout)
        with torch.no_grad():
            out = pooled(x)
        assert out.shape == (N, classes, 1, 1) and out.dtype == dtype
        assert_close(out, _eager64(eager, x), rtol=1e-4, atol=1e-5)


def test_pooled_classifier_tolerance_catches_a_planted_bug():
    """Test of the test: the mean taken before the ReLU (a plausible slip) fails the comparison above."""
    eager = _classifier(512, 1000)
    x = torch.randn(1, 512, 13, 13).relu_()
    conv = eager[1]
    with torch.no_grad():
        planted = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), conv.weight, conv.bias))
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(planted, _eager64(eager, x), rtol=1e-4, atol=1e-5)


@needs_cpu_backend
def test_pooled_classifier_runs_the_cpu_op_for_fp32_inference_only(monkeypatch):
    calls = _recorded(monkeypatch, "_NATIVE_CLASSIFIER", "_LINEAR_POINTWISE")
    pooled = PooledClassifier.from_sequential(_classifier()).requires_grad_(False)
    x = torch.randn(2, 40, 6, 6)
    pooled(x)
    assert len(calls) == 1 and calls[0][-1].dim() == 1  # the op, with the pack
    pooled.double()(x.double())  # fp64: addmm
    pooled.float().requires_grad_(True)(x)  # autograd: addmm
    with torch.no_grad():
        nobias = PooledClassifier.from_sequential(_classifier(bias=False))
        nobias(x)  # no bias: oneDNN's linear where torch has it, else addmm
        PooledClassifier.from_sequential(_classifier(), backend="reference")(x)  # another backend: not the op
    assert len(calls) == 1 + 2 * frozen._MKLDNN


@needs_cpu_backend
@pytest.mark.parametrize("change", ["in_place", "load_state_dict", "new_parameter"])
def test_pooled_classifier_repacks_when_its_weights_change(change):
    """After a first call (the pack made), each way torch changes a weight reaches the output: the pack follows."""
    pooled = PooledClassifier.from_sequential(_classifier()).requires_grad_(False)
    x = torch.randn(2, 40, 6, 6)
    pooled(x)
    other = _classifier()
    with torch.no_grad():
        if change == "in_place":
            pooled[1].bias.add_(1)
        elif change == "load_state_dict":
            pooled.load_state_dict(other.state_dict())
        else:
            pooled[1].weight = nn.Parameter(other[1].weight.clone(), requires_grad=False)
    assert_close(pooled(x), _eager64(pooled, x), rtol=1e-4, atol=1e-5)


@needs_cpu_backend
def test_pooled_classifier_repacking_is_what_the_test_above_sees(monkeypatch):
    """Test of the test: a PooledClassifier that kept its first pack fails the comparison after an in-place change."""
    pooled = PooledClassifier.from_sequential(_classifier()).requires_grad_(False)
    x = torch.randn(2, 40, 6, 6)
    first = pooled._current_pack((pooled[1].weight, pooled[1].bias))
    monkeypatch.setattr(pooled, "_current_pack", lambda weights: first)
    with torch.no_grad():
        pooled[1].bias.add_(1)
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(pooled(x), _eager64(pooled, x), rtol=1e-4, atol=1e-5)


def test_pooled_classifier_gradients_match_eager():
    eager = _classifier()
    pooled = PooledClassifier.from_sequential(_classifier())
    pooled.load_state_dict(eager.state_dict())
    x = torch.randn(3, 40, 6, 7, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    eager(x).square().sum().backward()
    pooled(x2).square().sum().backward()
    assert_close(x2.grad, x.grad, rtol=1e-4, atol=1e-6)
    for (name, a), b in zip(eager.named_parameters(), pooled.parameters()):
        assert_close(b.grad, a.grad, name=name, rtol=1e-4, atol=1e-6)


def test_pooled_classifier_keeps_keys_children_and_training():
    named = nn.Sequential(OrderedDict(drop=nn.Dropout(0.5), conv=nn.Conv2d(40, 30, 1), relu=nn.ReLU(),
                                      pool=nn.AdaptiveAvgPool2d(1)))
    pooled = PooledClassifier.from_sequential(named)
    assert list(pooled.state_dict()) == ["conv.weight", "conv.bias"] == list(named.state_dict())
    assert all(a is b for a, b in zip(pooled, named)) and pooled.training
    x = torch.randn(2, 40, 5, 5)
    torch.manual_seed(1)
    dropped = pooled(x)  # training: Dropout runs, as in the eager Sequential
    torch.manual_seed(1)
    torch.testing.assert_close(dropped, named(x))
    with pytest.raises(RuntimeError, match="to have 40 channels, but got 39"):
        pooled.eval()(torch.randn(2, 39, 5, 5))


@pytest.mark.parametrize("module, problem", [
    (nn.Sequential(nn.Dropout(), nn.Conv2d(8, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1)), "kernel_size is"),
    (nn.Sequential(nn.Dropout(), nn.Conv2d(8, 4, 1, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1)), "stride is"),
    (nn.Sequential(nn.Dropout(), nn.Conv2d(8, 4, 1, groups=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1)), "groups is"),
    (nn.Sequential(nn.Dropout(), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2)), "output_size is 2"),
    (nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)), "its layers are"),
    (nn.Sequential(nn.Dropout(), nn.Conv2d(8, 4, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1)), "ReLU6"),
    (nn.ModuleList([nn.Dropout(), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)]), "not an nn.Sequential"),
])
def test_classifier_problem_says_what_differs(module, problem):
    assert problem in classifier_problem(module)
    with pytest.raises(ValueError, match="not a SqueezeNet classifier"):
        PooledClassifier.from_sequential(module)
    assert classifier_problem(_classifier()) is None
