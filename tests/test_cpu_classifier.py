"""The cpu backend's fused classifier (csrc/cpu/classifier.cpp, native_classifier with native_classifier_pack):
adaptive_avg_pool2d(relu(conv2d(x, weight, bias)), 1) for a 1×1 conv against the fp64 reference, SqueezeNet's size and
awkward ones, every input layout and ISA, NaN and inf, its errors, opcheck. optimize's use of it (PooledClassifier):
tests/test_frozen.py."""
import pytest
import torch
import torch.nn.functional as F

import fusedfire
from fusedfire.native import cpu_isas, cpu_options
from fusedfire.testing import assert_close

pytestmark = pytest.mark.skipif(not fusedfire.native.available("cpu"),
                                reason=f"fusedfire._cpu not built: {fusedfire.native.LOAD_ERRORS.get('cpu')}")

PACK, CLASSIFIER = torch.ops.fusedfire.native_classifier_pack, torch.ops.fusedfire.native_classifier
CASES = {  # (N, C, H, W, M)
    "squeezenet": (1, 512, 13, 13, 1000),
    "squeezenet_n3": (3, 512, 13, 13, 1000),  # 2 threads: each image's channels split too (3 × 2 items)
    "odd": (2, 40, 7, 5, 30),  # M = 30: a partial last vector
    "narrow": (1, 3, 1, 1, 1),
    "wide_m": (1, 16, 3, 4, 100),  # channel ranges split at 32-channel units (2 threads: 64 + 36)
}


def _reference(x, w, b):
    """The fp64 truth."""
    return F.adaptive_avg_pool2d(F.relu(F.conv2d(x.double(), w.double(), b.double())), 1)


def _inputs(case, layout="channels_last"):
    N, C, H, W, M = CASES[case]
    x = torch.randn(N, C, H, W).relu_()  # as a Fire's output
    x = {"channels_last": x.contiguous(memory_format=torch.channels_last), "nchw": x,
         "strided": torch.randn(N, C, H, 2 * W).relu_()[..., ::2],  # pixels 2 apart: read in place
         "cropped": torch.randn(N, C, H, W + 3).relu_()[..., 1:W + 1]}[layout]  # pixels not one stride: copied
    return x, torch.randn(M, C, 1, 1) / C ** 0.5, torch.randn(M) * 0.5


@pytest.mark.parametrize("isa", cpu_isas())
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "strided", "cropped"])
@pytest.mark.parametrize("case", list(CASES))
def test_classifier_matches_the_reference(case, layout, isa):
    x, w, b = _inputs(case, layout)
    with cpu_options(isa=isa):
        out = CLASSIFIER(x, w, b, PACK(w, b))
    assert out.shape == (x.shape[0], w.shape[0], 1, 1) and out.is_contiguous()
    assert_close(out, _reference(x, w, b))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["x", "weight", "bias"])
def test_nan_and_inf_reach_what_they_reach_in_eager(where, value):
    x, w, b = _inputs("odd", "nchw")
    {"x": x, "weight": w, "bias": b}[where].view(-1)[11] = value
    out, want = CLASSIFIER(x, w, b, PACK(w, b)), _reference(x, w, b)
    assert torch.equal(out.isnan(), want.isnan()) and torch.equal(out.isinf(), want.isinf())
    assert_close(out.nan_to_num(0, 0, 0), want.nan_to_num(0, 0, 0))


def test_the_comparison_catches_a_planted_bug():
    """Test of the test: the mean taken before the ReLU (a plausible slip) fails it, as does one image's output off
    by 10⁻⁴ of its value."""
    x, w, b = _inputs("squeezenet_n3")
    want = _reference(x, w, b)
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(F.relu(F.conv2d(x.mean((2, 3), keepdim=True), w, b)), want)
    off = CLASSIFIER(x, w, b, PACK(w, b))
    off[2, 999] += 1e-4 * (1 + off[2, 999].abs())
    with pytest.raises(AssertionError, match="worst error"):
        assert_close(off, want)


def test_classifier_names_what_is_wrong():
    x, w, b = _inputs("odd")
    packed = PACK(w, b)
    with pytest.raises(RuntimeError, match="native_classifier takes float32 tensors, got x of Double"):
        CLASSIFIER(x.double(), w, b, packed)
    with pytest.raises(RuntimeError, match="native_classifier takes float32 tensors, got Double"):
        CLASSIFIER(x, w.double(), b, packed)
    with pytest.raises(RuntimeError, match=r"native_classifier: x of \(2, 39, 7, 5\) must have the weight's 40 input"):
        CLASSIFIER(x[:, :39], w, b, packed)
    with pytest.raises(RuntimeError, match=r"weight must be \(M, K, 1, 1\) = \(30, 40, 1, 1\)"):
        CLASSIFIER(x, w.expand(30, 40, 3, 3), b, packed)
    with pytest.raises(RuntimeError, match=r"bias must be \(M\) = \(30,\)"):
        CLASSIFIER(x, w, b[:29], packed)
    with pytest.raises(RuntimeError, match=r"native_classifier_pack\(weight, bias\): 1312 contiguous floats, got"):
        CLASSIFIER(x, w, b, packed[:-1])
    with pytest.raises(RuntimeError, match="native_classifier_pack takes float32 tensors, got Double"):
        PACK(w.double(), b)


def test_opcheck():
    x, w, b = _inputs("odd")
    torch.library.opcheck(PACK.default, (w, b))
    torch.library.opcheck(CLASSIFIER.default, (x, w, b, PACK(w, b)))
