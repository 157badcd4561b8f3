"""Tests of the test: tests/triton_checker.py must catch planted out-of-bounds accesses and races in tiny kernels of
our own, and must stay quiet on correct ones (copies in fp16 / bf16 / fp32, strided views, atomics)."""
import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET", "0") != "1":
    pytest.skip("the checker watches the Triton interpreter (TRITON_INTERPRET=1) only", allow_module_level=True)
triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

try:
    from . import triton_checker as tc
except ImportError:  # tests/ is not a package
    import triton_checker as tc
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402

TritonMemoryError, active_checker, checked, unchecked = (tc.TritonMemoryError, tc.active_checker, tc.checked,
                                                         tc.unchecked)

HERE = os.path.basename(__file__)
DTYPES = [torch.float16, torch.bfloat16, torch.float32]
BLOCK = 16
N = 37  # awkward: 2 full blocks and a ragged one


# --- kernels ------------------------------------------------------------------------------------------------------


@triton.jit
def copy_kernel(x_ptr,  # input, n elements at stride x_stride
                y_ptr,  # output, n elements at stride y_stride
                n, x_stride, y_stride, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs * y_stride, tl.load(x_ptr + offs * x_stride, mask=mask), mask=mask)


@triton.jit
def copy_off_by_one_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs <= n  # planted bug: one element too many
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def copy_no_mask_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(y_ptr + offs, x)  # planted bug: the store has no mask


@triton.jit
def copy_2d_kernel(x_ptr,  # input (rows, cols) at strides (sxr, sxc)
                   y_ptr,  # output (rows, cols) at strides (syr, syc)
                   rows, cols, sxr, sxc, syr, syc, ROW_SLACK: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr):
    r = tl.program_id(0) * BR + tl.arange(0, BR)[:, None]
    c = tl.program_id(1) * BC + tl.arange(0, BC)[None, :]
    mask = (r < rows + ROW_SLACK) & (c < cols)  # ROW_SLACK=1 plants an extra row
    tl.store(y_ptr + r * syr + c * syc, tl.load(x_ptr + r * sxr + c * sxc, mask=mask), mask=mask)


@triton.jit
def forgot_pid_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)  # planted bug: every program writes the first block
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def shift_in_place_kernel(x_ptr, n, BLOCK: tl.constexpr):
    # x[i] = x[i + 1], in place: program p reads the first element of program p + 1's block, which that program writes
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    nxt = tl.load(x_ptr + offs + 1, mask=offs + 1 < n)
    tl.store(x_ptr + offs, nxt, mask=offs + 1 < n)


@triton.jit
def scale_in_place_kernel(x_ptr, n, BLOCK: tl.constexpr):
    # read-then-write of one's own elements is not a race
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2, mask=mask)


@triton.jit
def sum_atomic_kernel(x_ptr, out_ptr, n, OUT_OFFSET: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
    tl.atomic_add(out_ptr + OUT_OFFSET, tl.sum(x, axis=0))  # every program to one address (OUT_OFFSET=1: overrun)


@triton.jit
def overlap_kernel(y32_ptr, y16_ptr):
    # y32 and y16 alias one buffer; program 0 stores y32[0] (bytes 0..3), program 1 stores y16[1] (bytes 2..3)
    if tl.program_id(0) == 0:
        tl.store(y32_ptr, 1.0)
    else:
        tl.store(y16_ptr + 1, 2.0)


@triton.jit
def desc_copy_kernel(x_desc, y_desc, BR: tl.constexpr, BC: tl.constexpr):
    r, c = tl.program_id(0) * BR, tl.program_id(1) * BC
    y_desc.store([r, c], x_desc.load([r, c]))  # descriptors clip the ragged edge tiles themselves


@triton.jit
def gather_kernel(x_ptr, idx_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    i = tl.load(idx_ptr + offs, mask=offs < n, other=0)
    tl.store(out_ptr + offs, tl.load(x_ptr + i, mask=offs < n), mask=offs < n)


def grid1(n):
    return (triton.cdiv(n, BLOCK),)


# --- correct kernels pass --------------------------------------------------------------------------------------------


def test_autouse_fixture_checks_every_test():
    assert active_checker() is not None, "conftest's autouse fixture must run every test under checked()"
    before = active_checker().launches
    x = torch.randn(N)
    y = torch.empty_like(x)
    copy_kernel[grid1(N)](x, y, N, 1, 1, BLOCK=BLOCK)
    assert active_checker().launches == before + 1
    assert active_checker().lanes >= 2 * N


@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_copy_passes(dtype):
    x = torch.randn(N).to(dtype)
    y = torch.zeros_like(x)
    with checked():
        copy_kernel[grid1(N)](x, y, N, 1, 1, BLOCK=BLOCK)
    torch.testing.assert_close(y, x, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_views_pass(dtype):
    buf = torch.randn(3 * N + 5).to(dtype)
    x = buf[5::3]  # non-contiguous, storage offset 5, ends exactly at the last element of buf
    out = torch.zeros(2 * N, dtype=dtype)
    y = out[1::2]
    with checked():
        copy_kernel[grid1(N)](x, y, N, x.stride(0), y.stride(0), BLOCK=BLOCK)
    torch.testing.assert_close(y, x, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_2d_copy_passes(dtype):
    x = torch.randn(13, 7).to(dtype).t()  # (7, 13) with strides (1, 7)
    y = torch.zeros(9, 13, dtype=dtype)[1:8]  # (7, 13), storage offset 13
    grid = (triton.cdiv(7, 4), triton.cdiv(13, 8))
    with checked():
        copy_2d_kernel[grid](x, y, 7, 13, *x.stride(), *y.stride(), ROW_SLACK=0, BR=4, BC=8)
    torch.testing.assert_close(y, x, rtol=0, atol=0)


def test_read_then_write_own_elements_is_not_a_race():
    x = torch.arange(N, dtype=torch.float32)
    scale_in_place_kernel[grid1(N)](x, N, BLOCK=BLOCK)
    torch.testing.assert_close(x, 2 * torch.arange(N, dtype=torch.float32))


def test_atomic_add_from_every_program_to_one_address_is_not_a_race():
    x = torch.randn(N)
    out = torch.zeros(1)
    with checked():
        sum_atomic_kernel[grid1(N)](x, out, N, OUT_OFFSET=0, BLOCK=BLOCK)
    torch.testing.assert_close(out, x.sum().reshape(1), rtol=1e-5, atol=1e-5)


def test_tensor_descriptors_and_keyword_arguments_pass():
    x = torch.randn(37, 24)
    y = torch.zeros_like(x)
    grid = (triton.cdiv(37, 16), triton.cdiv(24, 16))
    with checked() as checker:
        desc_copy_kernel[grid](x_desc=TensorDescriptor.from_tensor(x, [16, 16]),
                               y_desc=TensorDescriptor.from_tensor(y, [16, 16]), BR=16, BC=16)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    assert checker.lanes >= 2 * x.numel()  # descriptor loads / stores were seen


def test_arguments_copied_to_host_buffers_map_back(monkeypatch):
    """For device tensors the interpreter runs on host copies of their storages (``storage.cpu()``); simulate that
    on CPU: the addresses the kernel sees are the copies', and must still map back to the right argument."""
    monkeypatch.setattr(torch.UntypedStorage, "cpu", lambda self: self.clone())
    base = torch.randn(64)
    x = base[10:10 + N]
    y = torch.zeros(N)
    copy_kernel[grid1(N)](x, y, N, 1, 1, BLOCK=BLOCK)
    torch.testing.assert_close(y, x, rtol=0, atol=0)  # the kernel really ran on copies, copied back
    with pytest.raises(TritonMemoryError) as info:
        copy_kernel[grid1(N + 1)](x, torch.zeros(N + 1), N + 1, 1, 1, BLOCK=BLOCK)
    msg = str(info.value)
    assert "`x_ptr` (float32, shape (37,), stride (1,))" in msg and "1 element of 4 bytes) past the end" in msg
    assert f"{x.data_ptr():#x}" not in msg  # the addresses are the host copy's
    assert "still inside `x_ptr`'s storage" in msg


# --- rule 1: planted out-of-bounds accesses are caught ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_off_by_one_mask_is_caught(dtype):
    es = torch.empty(0, dtype=dtype).element_size()
    x = torch.randn(N).to(dtype)
    y = torch.empty_like(x)
    with checked(), pytest.raises(TritonMemoryError) as info:
        copy_off_by_one_kernel[grid1(N)](x, y, N, BLOCK=BLOCK)
    msg = str(info.value)
    assert "out-of-bounds load" in msg
    assert "kernel `copy_off_by_one_kernel`" in msg
    assert "program_id=(2, 0, 0) of grid (3, 1, 1)" in msg  # the ragged last block
    assert f"address {x.data_ptr() + N * es:#x} ({es}-byte access)" in msg
    assert f"nearest tensor argument: `x_ptr` ({str(dtype)[6:]}, shape ({N},), stride (1,))" in msg
    assert f"{es} bytes (1 element of {es} bytes) past the end" in msg
    assert "1 of 6 masked-in lanes" in msg
    assert HERE in msg  # points at the kernel source line


def test_missing_store_mask_is_caught_before_it_writes():
    x = torch.randn(N)
    buf = torch.full((N + BLOCK,), -1.0)
    y = buf[:N]  # the rest of buf is a canary the bad store would overwrite
    with checked(), pytest.raises(TritonMemoryError) as info:
        copy_no_mask_kernel[grid1(N)](x, y, N, BLOCK=BLOCK)
    msg = str(info.value)
    assert "out-of-bounds store in kernel `copy_no_mask_kernel`" in msg
    assert "program_id=(2, 0, 0)" in msg
    assert "`y_ptr`" in msg and "4 bytes (1 element of 4 bytes) past the end" in msg
    assert "11 of 16 masked-in lanes" in msg  # lanes 37..47 of the last block
    assert "still inside `y_ptr`'s storage" in msg
    assert (buf[N:] == -1.0).all(), "the out-of-bounds store must be stopped before it happens"


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_past_end_of_slice_inside_storage_is_caught(dtype):
    es = torch.empty(0, dtype=dtype).element_size()
    base = torch.randn(64).to(dtype)
    x = base[10:10 + N]  # storage continues well past the view
    y = torch.empty(N + 3, dtype=dtype)
    with checked(), pytest.raises(TritonMemoryError) as info:
        copy_kernel[grid1(N + 3)](x, y, N + 3, 1, 1, BLOCK=BLOCK)  # reads 3 elements past the view's end
    msg = str(info.value)
    assert "out-of-bounds load in kernel `copy_kernel`" in msg
    assert f"`x_ptr` ({str(dtype)[6:]}, shape ({N},), stride (1,))" in msg
    assert f"{es} bytes (1 element of {es} bytes) past the end" in msg  # the first bad lane: x[N]
    assert "3 of 8 masked-in lanes" in msg
    assert "still inside `x_ptr`'s storage" in msg


def test_read_before_start_of_view_is_caught():
    base = torch.randn(N + 4)
    x = base[4:]
    y = torch.empty(N)
    with checked(), pytest.raises(TritonMemoryError) as info:
        copy_kernel[grid1(N)](x, y, N, -1, 1, BLOCK=BLOCK)  # planted bug: walks x backwards from x[0]
    msg = str(info.value)
    assert "out-of-bounds load in kernel `copy_kernel` (program_id=(0, 0, 0)" in msg
    assert "`x_ptr`" in msg and "4 bytes (1 element of 4 bytes) before the start" in msg
    assert "still inside `x_ptr`'s storage" in msg  # x[-1] is base[3]


@pytest.mark.parametrize("dtype", DTYPES)
def test_extra_row_of_strided_2d_view_is_caught(dtype):
    big = torch.randn(9, 16).to(dtype)
    x = big[2:7, 3:11]  # (5, 8), strides (16, 1): rows 7 and 8 of big lie past the view
    y = torch.empty(6, 8, dtype=dtype)
    with checked(), pytest.raises(TritonMemoryError) as info:
        copy_2d_kernel[(2, 1)](x, y, 5, 8, *x.stride(), *y.stride(), ROW_SLACK=1, BR=4, BC=8)
    msg = str(info.value)
    assert "out-of-bounds load in kernel `copy_2d_kernel`" in msg
    assert "program_id=(1, 0, 0) of grid (2, 1, 1)" in msg
    assert "block shape (4, 8)" in msg
    assert "`x_ptr`" in msg and f"shape (5, 8), stride (16, 1)" in msg
    assert "still inside `x_ptr`'s storage" in msg


def test_atomic_overrun_is_caught():
    x = torch.randn(N)
    out = torch.zeros(1)
    with checked(), pytest.raises(TritonMemoryError) as info:
        sum_atomic_kernel[grid1(N)](x, out, N, OUT_OFFSET=1, BLOCK=BLOCK)
    msg = str(info.value)
    assert "out-of-bounds atomic_rmw in kernel `sum_atomic_kernel`" in msg
    assert "`out_ptr` (float32, shape (1,), stride (1,))" in msg and "past the end" in msg


def test_data_dependent_index_out_of_range_is_caught():
    x = torch.randn(N)
    idx = torch.randint(0, N, (N,), dtype=torch.int32)
    idx[29] = N + 100  # planted bug: one bad index in the data, in program 1
    out = torch.empty(N)
    with checked(), pytest.raises(TritonMemoryError) as info:
        gather_kernel[grid1(N)](x, idx, out, N, BLOCK=BLOCK)
    msg = str(info.value)
    assert "out-of-bounds load in kernel `gather_kernel` (program_id=(1, 0, 0)" in msg
    assert "at lane (13,)" in msg
    assert "1 of 16 masked-in lanes" in msg


def test_gap_inside_a_views_span_is_a_known_limitation():
    """Rule 1 checks a tensor's span, not its exact element set: a column slice's gaps lie inside its span."""
    big = torch.randn(5, 16)
    x = big[:, :8]  # span: big[0, 0] .. big[4, 7]
    y = torch.empty(4, 9)
    copy_2d_kernel[(1, 1)](x, y, 4, 9, *x.stride(), *y.stride(), ROW_SLACK=0, BR=4, BC=16)  # reads column 8
    assert torch.equal(y, big[:4, :9])  # not caught: big[0:4, 8] is outside x but inside its span


# --- rule 2: planted races are caught --------------------------------------------------------------------------------


def test_two_programs_writing_the_same_address_is_caught():
    x = torch.randn(N)
    y = torch.zeros(N)
    with checked(), pytest.raises(TritonMemoryError) as info:
        forgot_pid_kernel[grid1(N)](x, y, N, BLOCK=BLOCK)
    msg = str(info.value)
    assert "write-write race in kernel `forgot_pid_kernel` (grid (3, 1, 1))" in msg
    assert f"address {y.data_ptr():#x} (`y_ptr` element [0])" in msg
    assert "stored by program (0, 0, 0)" in msg and "stored by program (1, 0, 0)" in msg
    assert "16 addresses affected" in msg
    assert HERE in msg


def test_write_by_one_program_read_by_another_is_caught():
    x = torch.arange(N, dtype=torch.float32)
    with checked(), pytest.raises(TritonMemoryError) as info:
        shift_in_place_kernel[grid1(N)](x, N, BLOCK=BLOCK)
    msg = str(info.value)
    assert "write-read race in kernel `shift_in_place_kernel`" in msg
    assert f"`x_ptr` element [{BLOCK}]" in msg
    assert "stored by program (1, 0, 0)" in msg and "loaded by program (0, 0, 0)" in msg
    assert "2 addresses affected" in msg  # x[16] and x[32]


def test_partially_overlapping_writes_of_mixed_sizes_are_caught():
    buf = torch.zeros(4, dtype=torch.uint8)
    y32, y16 = buf.view(torch.float32), buf.view(torch.float16)
    with checked(), pytest.raises(TritonMemoryError) as info:
        overlap_kernel[(2,)](y32, y16)
    msg = str(info.value)
    assert "write-write race in kernel `overlap_kernel`" in msg
    assert "2 bytes affected" in msg  # bytes 2 and 3 only
    assert "program (0, 0, 0)" in msg and "program (1, 0, 0)" in msg


# --- the hooks ------------------------------------------------------------------------------------------------------


@pytest.mark.triton_unchecked
def test_hooks_are_restored_and_nest():
    from triton.runtime import interpreter as interp
    orig = (interp.GridExecutor.__call__, interp.GridExecutor._init_args_hst, interp._interpreter)
    assert active_checker() is None
    with checked():
        assert interp._interpreter is not orig[2]
        with checked():
            pass
        assert interp._interpreter is not orig[2], "an inner checked() must not uninstall the outer one"
        with pytest.raises(TritonMemoryError):
            forgot_pid_kernel[grid1(N)](torch.randn(N), torch.zeros(N), N, BLOCK=BLOCK)
    assert (interp.GridExecutor.__call__, interp.GridExecutor._init_args_hst, interp._interpreter) == orig
    forgot_pid_kernel[grid1(N)](torch.randn(N), torch.zeros(N), N, BLOCK=BLOCK)  # unchecked again


@pytest.mark.triton_unchecked
def test_missing_hook_point_raises_instead_of_checking_nothing(monkeypatch):
    from types import SimpleNamespace

    from triton.runtime import interpreter as interp
    c_mod = interp._interpreter
    monkeypatch.setattr(interp, "_interpreter", SimpleNamespace(load=c_mod.load, atomic_rmw=c_mod.atomic_rmw,
                                                                atomic_cas=c_mod.atomic_cas))  # no `store`
    monkeypatch.setattr(tc, "_VERIFIED", None)
    with pytest.raises(tc.TritonCheckerUnsupported, match=r"_interpreter\.store \(C memory access\) is missing"):
        with checked():
            pass
    assert active_checker() is None


def test_unchecked_suspends_checking():
    with unchecked():
        forgot_pid_kernel[grid1(N)](torch.randn(N), torch.zeros(N), N, BLOCK=BLOCK)
    with pytest.raises(TritonMemoryError):
        forgot_pid_kernel[grid1(N)](torch.randn(N), torch.zeros(N), N, BLOCK=BLOCK)
