"""The CUDA kernels of csrc/fire_kernels.cuh, executed on the CPU by the SIMT harness (tests/simt/): g++ compiles
the very same kernels and host launchers that fusedfire._C runs, every block's threads run as fibers, and the
outputs are compared with the fp64 reference. Also: the harness's own checks (races, barrier divergence,
deadlock), and planted bugs it must catch (a missing __syncthreads; an out-of-bounds read under ASan).

Needs g++ only (no GPU, no nvcc). Builds are cached in a temp dir per test session and run concurrently.
"""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fusedfire._layout import memory_format
from fusedfire.eager import conv_bwd
from fusedfire.testing import assert_close, assert_close_lowp, fire_params

ROOT = Path(__file__).resolve().parents[1]
SIMT = ROOT / "tests" / "simt"
SOURCES = [ROOT / "csrc" / "fire_kernels.cuh", SIMT / "simt.h", SIMT / "harness.cpp"]
CXX = os.environ.get("CXX", "g++")
BASE_FLAGS = ["-std=c++17", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
              f"-I{ROOT / 'csrc'}", f"-I{SIMT}"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
# NOTE: compile cost (user CPU s, g++ 12): all four dtypes -O1 9.5 (-O1 -g 13, -O0 5), with ASan+UBSan -O1 41 vs
# -O0 14; fp32-only planted builds -O0 3.3 (7.5 with ASan). Only the build that runs ~200 cases is optimized.
BUILDS = {  # name -> extra flags
    "plain": ["-O1"],
    "asan": ["-O0", *SANITIZE],
    "nosync": ["-O0", "-DFF_PLANT_NO_SYNC=1", "-DFF_HARNESS_F32_ONLY"],
    "oob": ["-O0", *SANITIZE, "-DFF_PLANT_OOB=1", "-DFF_HARNESS_F32_ONLY"],
}
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:detect_stack_use_after_return=0",
            "UBSAN_OPTIONS": "print_stacktrace=1"}
TIMEOUT = 600

pytestmark = pytest.mark.skipif(shutil.which(CXX) is None, reason=f"{CXX} not found: the SIMT harness needs it")


class Builds:
    """Starts every harness build at once (they compile in parallel); `get(name)` waits for one."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.procs = {}
        for name, flags in BUILDS.items():
            out = directory / f"harness_{name}"
            cmd = [CXX, *BASE_FLAGS, *flags, str(SIMT / "harness.cpp"), "-o", str(out)]
            self.procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                                out, cmd)

    def get(self, name: str) -> Path:
        proc, out, cmd = self.procs[name]
        log, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f"harness build {name} failed: {' '.join(cmd)}\n{log}"
        return out


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    return Builds(tmp_path_factory.mktemp("simt"))


# ------------------------------------------------------------------------------------ tensor files

CODES = {torch.float16: 0, torch.bfloat16: 1, torch.float32: 2, torch.float64: 3}
DTYPES = {code: dtype for dtype, code in CODES.items()}
NAMES = {torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32", torch.float64: "f64"}


def _span(t):
    return 0 if t.numel() == 0 else 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))


def _write(path, tensors):
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(tensors)))
        for t in tensors:
            base = torch.as_strided(t, (_span(t),), (1,), t.storage_offset()).contiguous()
            data = base.view(torch.uint8).numpy().tobytes() if base.numel() else b""
            f.write(struct.pack("<ii", CODES[t.dtype], t.dim()))
            f.write(struct.pack(f"<{t.dim()}q", *t.shape))
            f.write(struct.pack(f"<{t.dim()}q", *t.stride()))
            f.write(struct.pack("<q", len(data)))
            f.write(data)


def _read(path):
    out = []
    with open(path, "rb") as f:
        (count,) = struct.unpack("<i", f.read(4))
        for _ in range(count):
            code, ndim = struct.unpack("<ii", f.read(8))
            shape = struct.unpack(f"<{ndim}q", f.read(8 * ndim))
            strides = struct.unpack(f"<{ndim}q", f.read(8 * ndim))
            (nbytes,) = struct.unpack("<q", f.read(8))
            raw = torch.frombuffer(bytearray(f.read(nbytes)), dtype=torch.uint8) if nbytes else \
                torch.empty(0, dtype=torch.uint8)
            out.append(torch.as_strided(raw.view(DTYPES[code]), shape, strides))
    return out


class HarnessError(AssertionError):
    pass


def run_harness(binary, mode, dtype, tc, tensors, tmp_path, *, schedule="forward", seed=0, env=None):
    """Runs one launch sequence on the CPU; returns the output tensors or raises HarnessError(stderr)."""
    src, dst = tmp_path / f"{mode}_in.bin", tmp_path / f"{mode}_out.bin"
    _write(src, tensors)
    cmd = [str(binary), mode, NAMES[dtype], "1" if tc else "0", schedule, str(seed), str(src), str(dst)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} -> rc {r.returncode}\n{r.stderr[-4000:]}")
    return _read(dst)


# ---------------------------------------------------------------------------------- references

def _tf32(t):
    """fp32 rounded to tf32 like cvt.rna.tf32.f32 (nearest, ties away from zero; 10 mantissa bits)."""
    i = t.float().view(torch.int32)
    return ((i + 0x1000) & -0x2000).view(torch.float32)


def _lowp_ops(dtype, tc):
    """(operand rounding, result rounding) of PyTorch's own conv in `dtype` (tf32 for fp32 with tc)."""
    if dtype in (torch.float16, torch.bfloat16):
        return (lambda t: t.float()), (lambda t: t.to(dtype))
    return (_tf32 if tc else (lambda t: t.float())), (lambda t: t)


def fwd_truth(x, params):
    """(out, s) in fp64 from the given inputs."""
    x64, (wq, bq, w1, b1, w3, b3) = x.double(), [p.double() for p in params]
    s = F.relu(F.conv2d(x64, wq, bq))
    return torch.cat([F.relu(F.conv2d(s, w1, b1)), F.relu(F.conv2d(s, w3, b3, padding=1))], 1), s


def fwd_lowp(x, params, dtype, tc):
    """PyTorch's own forward in `dtype`: fp32-accumulated convs whose results are rounded to `dtype`."""
    op, res = _lowp_ops(dtype, tc)
    wq, bq, w1, b1, w3, b3 = params
    s = res(F.relu(F.conv2d(op(x), op(wq), bq.float())))
    out = torch.cat([F.relu(F.conv2d(op(s), op(w1), b1.float())),
                     F.relu(F.conv2d(op(s), op(w3), b3.float(), padding=1))], 1)
    return res(out), s


def bwd_model(g, x, s, out, wq, w1, w3, op=lambda t: t.double(), res=lambda t: t):
    """fire_bwd (the VJP of ops.py) from saved x, s, out: every conv gets `op`-rounded operands, `res` rounds
    every conv result (fp64 truth: op = double, res = identity)."""
    E1 = w1.shape[0]
    G = op(g) * (out > 0)
    gs1, gw1, gb1 = (res(t) for t in conv_bwd(G[:, :E1], op(s), op(w1), 0))
    gs3, gw3, gb3 = (res(t) for t in conv_bwd(G[:, E1:], op(s), op(w3), 1))
    grad_s = res(gs1.double() + gs3.double()) * (s > 0)
    gx, gwq, gbq = (res(t) for t in conv_bwd(op(grad_s), op(x), op(wq), 0))
    return grad_s, gx, gwq, gbq, gw1, gb1, gw3, gb3


# -------------------------------------------------------------------------------------- cases

# (N, Cin, S, E1, E3, H, W): odd channel counts; H or W = 1; Cin > 16 (several reduction slices); > 64 pixels
# (several pixel tiles) and > 8×8 (several fused tiles).
SHAPES = [(2, 5, 3, 7, 9, 5, 6), (1, 20, 16, 16, 16, 3, 1), (2, 6, 4, 5, 3, 1, 9), (1, 18, 8, 6, 10, 9, 10)]
# (dtype, tensor cores): fp16/bf16 through mma.sync m16n8k16, fp32 through tf32 m16n8k8 and the scalar path.
VARIANTS = [(torch.float16, True), (torch.bfloat16, True), (torch.float32, True), (torch.float32, False),
            (torch.float64, False)]
SCHEDULES = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2)]


def _vid(v):
    return f"{NAMES[v[0]]}-{'tc' if v[1] else 'simt'}"


def _inputs(shape, dtype, channels_last):
    N, Cin, S, E1, E3, H, W = shape
    x = torch.randn(N, Cin, H, W, dtype=torch.float64).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    return x, fire_params(Cin, S, E1, E3, dtype=dtype)


def _empty(shape, like, dtype=None, fmt=torch.contiguous_format):
    return torch.full(shape, float("nan"), dtype=dtype or like.dtype).contiguous(memory_format=fmt)


def _check(name, actual, truth, lowp, dtype, tc):
    if dtype in (torch.float16, torch.bfloat16) or (dtype == torch.float32 and tc):
        assert_close_lowp(actual, truth, lowp.to(actual.dtype), name=name)
    elif dtype == torch.float32:
        assert_close(actual, truth, name=name)
    else:
        assert_close(actual, truth, name=name, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
@pytest.mark.parametrize("mode", ["fwd", "fire"])
def test_forward(builds, tmp_path, mode, variant, shape, channels_last):
    dtype, tc = variant
    x, params = _inputs(shape, dtype, channels_last)
    N, Cin, S, E1, E3, H, W = shape
    fmt = memory_format(x)
    out = _empty((N, E1 + E3, H, W), x, fmt=fmt)
    s = _empty((N, S, H, W), x, fmt=fmt)
    if mode == "fire" and dtype == torch.float64 and S > 16:
        pytest.skip("fp64 with S > 16 does not fit fire_kernel's shared memory: native_fire uses two launches")
    i = SHAPES.index(shape) + 2 * VARIANTS.index(variant) + channels_last
    schedule, seed = SCHEDULES[i % len(SCHEDULES)]
    res = run_harness(builds.get("plain"), mode, dtype, tc, [x, *params, out] + ([s] if mode == "fwd" else []),
                      tmp_path, schedule=schedule, seed=seed)
    truth, s_truth = fwd_truth(x, params)
    lowp, s_lowp = fwd_lowp(x, params, dtype, tc)
    assert res[0].stride() == out.stride()
    _check("out", res[0], truth, lowp, dtype, tc)
    if mode == "fwd":
        _check("s", res[1], s_truth, s_lowp, dtype, tc)


def _bwd_inputs(shape, dtype, channels_last, grad_kind):
    x, params = _inputs(shape, dtype, channels_last)
    N, Cin, S, E1, E3, H, W = shape
    out64, s64 = fwd_truth(x, params)
    fmt = memory_format(x)
    out = out64.to(dtype).contiguous(memory_format=fmt)
    s = s64.to(dtype).contiguous(memory_format=fmt)
    if grad_kind == "expanded":  # 0-stride, as from out.sum().backward()
        g = torch.randn(1, 1, 1, 1, dtype=torch.float64).to(dtype).expand(N, E1 + E3, H, W)
    elif grad_kind == "sliced":  # a non-dense view
        g = torch.randn(N, E1 + E3 + 3, H, W + 2, dtype=torch.float64).to(dtype)[:, 2:E1 + E3 + 2, :, 1:W + 1]
    else:
        g = torch.randn(N, E1 + E3, H, W, dtype=torch.float64).to(dtype).contiguous(memory_format=fmt)
    wq, _, w1, _, w3, _ = params
    return g, x, s, out, wq, w1, w3


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
@pytest.mark.parametrize("shape", SHAPES[:3], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_backward(builds, tmp_path, variant, shape, channels_last):
    _backward(builds, tmp_path, variant, shape, channels_last, "dense")


@pytest.mark.parametrize("grad_kind", ["expanded", "sliced"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_backward_grad_out_strides(builds, tmp_path, variant, grad_kind):
    """grad_out with 0 strides (expanded) or as a non-dense slice: read in place through its strides."""
    _backward(builds, tmp_path, variant, SHAPES[0], False, grad_kind)


def _backward(builds, tmp_path, variant, shape, channels_last, grad_kind):
    dtype, tc = variant
    g, x, s, out, wq, w1, w3 = _bwd_inputs(shape, dtype, channels_last, grad_kind)
    N, Cin, S, E1, E3, H, W = shape
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    outs = [_empty(s.shape, s, acc, memory_format(x)), _empty(x.shape, x, fmt=memory_format(x))]
    outs += [_empty(t.shape, t) for t in (wq, wq[:, 0, 0, 0], w1, w1[:, 0, 0, 0], w3, w3[:, 0, 0, 0])]
    i = SHAPES.index(shape) + VARIANTS.index(variant) + channels_last
    schedule, seed = SCHEDULES[i % len(SCHEDULES)]
    res = run_harness(builds.get("plain"), "bwd", dtype, tc, [g, x, s, out, wq, w1, w3, *outs], tmp_path,
                      schedule=schedule, seed=seed)
    truth = bwd_model(g, x, s, out, wq, w1, w3)
    op, rnd = _lowp_ops(dtype, tc)
    lowp = bwd_model(g, x, s, out, wq, w1, w3, op=lambda t: op(t).double(),
                     res=lambda t: rnd(t.float()).double())
    names = ["grad_s", "grad_x", "gWsq", "gbsq", "gW1", "gb1", "gW3", "gb3"]
    for name, a, t, lp in zip(names, res, truth, lowp):
        if name == "grad_s":  # fp32 (fp64): PyTorch's would be in `dtype`; judged by what it feeds, below
            continue
        _check(name, a, t, lp.to(dtype), dtype, tc)


def test_empty_batch(builds, tmp_path):
    """N = 0: nothing is launched and nothing is touched (the glue zero-fills the weight gradients)."""
    shape = (0, 5, 3, 7, 9, 5, 6)
    x, params = _inputs(shape, torch.float32, False)
    out = _empty((0, 16, 5, 6), x)
    s = _empty((0, 3, 5, 6), x)
    res = run_harness(builds.get("plain"), "fwd", torch.float32, True, [x, *params, out, s], tmp_path)
    assert res[0].shape == (0, 16, 5, 6)


# ------------------------------------------------------------------------- sanitizers, planted bugs

@pytest.mark.parametrize("mode", ["fwd", "fire", "bwd"])
@pytest.mark.parametrize("variant", [(torch.float16, True), (torch.float32, True), (torch.float64, False)], ids=_vid)
def test_asan_ubsan(builds, tmp_path, mode, variant):
    """The kernels under -fsanitize=address,undefined: no out-of-bounds access, no undefined behaviour."""
    dtype, tc = variant
    shape = SHAPES[0]
    if mode == "bwd":
        g, x, s, out, wq, w1, w3 = _bwd_inputs(shape, dtype, True, "dense")
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        outs = [_empty(s.shape, s, acc, memory_format(x)), _empty(x.shape, x, fmt=memory_format(x))]
        outs += [_empty(t.shape, t) for t in (wq, wq[:, 0, 0, 0], w1, w1[:, 0, 0, 0], w3, w3[:, 0, 0, 0])]
        tensors = [g, x, s, out, wq, w1, w3, *outs]
    else:
        x, params = _inputs(shape, dtype, True)
        N, Cin, S, E1, E3, H, W = shape
        tensors = [x, *params, _empty((N, E1 + E3, H, W), x, fmt=memory_format(x))]
        if mode == "fwd":
            tensors.append(_empty((N, S, H, W), x, fmt=memory_format(x)))
    run_harness(builds.get("asan"), mode, dtype, tc, tensors, tmp_path, schedule="random", seed=3, env=ASAN_ENV)


def _planted_inputs(channels_last=False):
    shape = (1, 20, 16, 16, 16, 3, 5)  # Cin = 20: two reduction slices
    x, params = _inputs(shape, torch.float32, channels_last)
    return [x, *params, _empty((1, 32, 3, 5), x, fmt=memory_format(x)), _empty((1, 16, 3, 5), x, fmt=memory_format(x))]


@pytest.mark.parametrize("mode", ["fwd", "fire"])
def test_planted_missing_syncthreads_is_caught(builds, tmp_path, mode):
    tensors = _planted_inputs()[:-1] if mode == "fire" else _planted_inputs()
    # the shadow check reports the reader that got ahead of the writers: a race, or a read of poisoned memory
    with pytest.raises(HarnessError, match=r"SIMT ERROR \[(race|uninit)\]"):
        run_harness(builds.get("nosync"), mode, torch.float32, True, tensors, tmp_path)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
def test_planted_out_of_bounds_read_is_caught(builds, tmp_path, channels_last):
    with pytest.raises(HarnessError, match=r"AddressSanitizer: heap-buffer-overflow"):
        run_harness(builds.get("oob"), "fwd", torch.float32, True, _planted_inputs(channels_last), tmp_path,
                    env=ASAN_ENV)


def test_planted_builds_are_otherwise_correct(builds, tmp_path):
    """The planted flags change only what they say: the same kernels without them pass (test of the test)."""
    tensors = _planted_inputs()
    res = run_harness(builds.get("plain"), "fwd", torch.float32, True, tensors, tmp_path)
    x, params = tensors[0], tensors[1:7]
    _check("out", res[0], fwd_truth(x, params)[0], fwd_lowp(x, params, torch.float32, True)[0], torch.float32, True)


@pytest.mark.parametrize("case,kind", [("race", "race"), ("uninit", "uninit"), ("divergent", "divergence"),
                                       ("exited", "divergence"), ("shuffle_deadlock", "deadlock")])
@pytest.mark.parametrize("schedule", ["forward", "reverse", "random"])
def test_harness_reports(builds, case, kind, schedule):
    r = subprocess.run([str(builds.get("plain")), "selftest", case, schedule, "7"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 3 and f"SIMT ERROR [{kind}]" in r.stderr, (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("case", ["synced", "shuffle"])
def test_harness_passes_correct_kernels(builds, case):
    r = subprocess.run([str(builds.get("plain")), "selftest", case, "random", "7"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and f"ok {case}" in r.stdout, (r.returncode, r.stdout, r.stderr)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
