"""Bounds-and-race checker for Triton kernels run by the interpreter (``TRITON_INTERPRET=1``).

The interpreter executes a launch's programs one after another on host memory and never bounds-checks, so an
off-by-one mask or a race between programs passes silently on CPU and only shows up on a GPU.  While
:func:`checked` is active every interpreted launch is watched:

Rule 1 (bounds)  every masked-in lane of every load / store / atomic must lie, whole (``addr .. addr+size``),
                 inside the memory span of ONE tensor argument of that launch: from the lowest to the highest
                 address of that tensor's own elements (sizes / strides / storage offset), plus one element.
                 Being inside the tensor's *storage* is not enough: reading a slice past its end is an error.
                 Checked before the access is performed, so a wild store is stopped before it corrupts memory.
Rule 2 (races)   within one launch, an address stored to by two different programs, or stored to by one
                 program and loaded by another, is an error (order does not matter: on a GPU programs run
                 concurrently).  Atomics (``atomic_rmw`` / ``atomic_cas``) are exempt from this rule.
                 Checked at the end of the launch, vectorised with numpy over all accesses of the launch.

A violation raises :class:`TritonMemoryError` naming the kernel, the program id, the op (with the kernel source
line), the address, and the nearest tensor argument with how many bytes / elements it is off by.

How it hooks in (``triton.runtime.interpreter``, identical in triton 3.6 and 3.8; every hook is checked on
entry and a missing one raises :class:`TritonCheckerUnsupported` instead of silently checking nothing):

* ``GridExecutor._init_args_hst`` — wrapped to capture the *host* tensors the launch really uses.  The
  interpreter copies every argument's storage to the host (``storage.cpu()``, a no-op for CPU tensors, a copy
  for CUDA ones) and re-views it with the argument's own size / stride / offset; the pointers the kernel sees
  are ``data_ptr()`` of those host tensors, so spans computed from them map addresses back to the argument
  they came from whichever way the copy went.
* ``GridExecutor.__call__`` — wrapped to open / close a launch record, run the race check at its end, and
  unwrap our error from the ``InterpreterError`` the interpreter wraps every kernel exception in.
* the module global ``_interpreter`` (the C extension doing the actual memory access) — replaced by a proxy
  whose ``load`` / ``store`` / ``atomic_rmw`` / ``atomic_cas`` check first and then forward; everything else
  is forwarded untouched.
  NOTE: we hook this one C-level chokepoint rather than the ``InterpreterBuilder.create_*`` methods because
  every memory path ends there (``create_load`` -> ``create_masked_load``, tensor descriptors, 3.6's block
  pointers, gather / scatter descriptors), so no path can bypass the check and nothing is counted twice; and
  the element size we check is the number of bytes the C code really touches (``load``'s ``dtype``, the
  itemsize of the stored / atomic values).
* the current program id is read from ``interpreter_builder.grid_idx`` (set by ``set_grid_idx`` before each
  program runs), the grid from ``interpreter_builder.grid_dim``.

Everything is restored on exit; :func:`checked` nests (an inner ``with checked()`` under the autouse fixture
of ``tests/conftest.py`` is a no-op) and :func:`unchecked` suspends checking for code that must do something
the rules forbid.

Limitations (by design or not yet done):
* Rule 1 checks the *span* of an argument, not its exact element set: the gaps of a strided view (e.g. the
  columns a ``[:, :8]`` slice skips) lie inside its span and are not flagged; nor is an address computed from
  argument A that lands inside argument B (no pointer provenance).  A pointer passed as a plain integer, or
  memory not passed as a tensor argument, is always "out of bounds".
* Rule 2 knows nothing of locks or memory ordering: plain stores guarded by an ``atomic_cas`` spin-lock are
  reported as races; atomics are exempt entirely, so a plain store racing an atomic on the same address is not
  reported.  Lanes of ONE program writing the same address (e.g. a broadcast store) are not flagged.
* Messages for a device tensor quote the addresses of its host copy (what the kernel really touched).

NOTE (measured: process CPU time, 15 interleaved plain / checked runs, shared 2-core machine at load ~6): the
access hooks cost ~20 us per load / store (the interpreter itself spends ~250 us on one), the race check ~0.12 s
per million stored elements. Median slow-down: elementwise add, 512 programs x 16 lanes ~10%; add, 64 programs x
1024 lanes ~7-17%; 128^3 matmul, 16 programs of 32x32 tiles ~4%. The hooks alone (no checks) cost nothing
measurable. fusedfire's own tests/test_triton.py: 437 launches, 13.9 M lanes checked per full run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import sys
from typing import Iterator, List, Optional, Tuple

import numpy as np

__all__ = ["TritonMemoryError", "TritonCheckerUnsupported", "checked", "unchecked", "Checker", "active_checker"]


class TritonMemoryError(RuntimeError):
    """An interpreted Triton launch broke rule 1 (out-of-bounds access) or rule 2 (race between programs)."""


class TritonCheckerUnsupported(RuntimeError):
    """The installed triton's interpreter lacks a hook point the checker needs (so it cannot check anything)."""


_MEM_FUNCS = ("load", "store", "atomic_rmw", "atomic_cas")


_VERIFIED = None


def _interp_module():
    """The interpreter module, after verifying every hook point we patch or read is there and looks as expected."""
    global _VERIFIED
    if _VERIFIED is not None:
        return _VERIFIED
    try:
        import triton
        from triton.runtime import interpreter as interp
    except Exception as e:  # pragma: no cover - depends on the environment
        raise TritonCheckerUnsupported(f"triton_checker: cannot import triton.runtime.interpreter: {e!r}") from e
    problems = []
    ge = getattr(interp, "GridExecutor", None)
    for name in ("__call__", "_init_args_hst"):
        if not callable(getattr(ge, name, None)):
            problems.append(f"GridExecutor.{name} is missing")
    c_mod = getattr(interp, "_interpreter", None)
    for name in _MEM_FUNCS:
        if not callable(getattr(c_mod, name, None)):
            problems.append(f"_interpreter.{name} (C memory access) is missing")
    builder = getattr(interp, "interpreter_builder", None)
    if builder is None or not hasattr(type(builder), "set_grid_idx"):
        problems.append("interpreter_builder / InterpreterBuilder.set_grid_idx is missing")
    if not hasattr(interp, "InterpreterError"):
        problems.append("InterpreterError is missing")
    if not problems:
        # The hooks only see what really goes through them: make sure the memory ops of the builder still reach
        # the C functions through the module global we replace, and that the executor still uses its hooks.
        expect = {
            interp.InterpreterBuilder.create_masked_load: "_interpreter.load(",
            interp.InterpreterBuilder.create_masked_store: "_interpreter.store(",
            interp.InterpreterBuilder.create_atomic_rmw: "_interpreter.atomic_rmw(",
            interp.InterpreterBuilder.create_atomic_cas: "_interpreter.atomic_cas(",
            ge.__call__: "self._init_args_hst(",
            interp.InterpreterBuilder.create_get_program_id: "self.grid_idx",
        }
        for fn, needle in expect.items():
            try:
                src = inspect.getsource(fn)
            except (OSError, TypeError):
                src = ""
            if needle not in src:
                problems.append(f"{fn.__qualname__} no longer contains `{needle}`")
        if "set_grid_idx(" not in inspect.getsource(ge.__call__):
            problems.append("GridExecutor.__call__ no longer calls interpreter_builder.set_grid_idx")
    if problems:
        raise TritonCheckerUnsupported(
            f"triton_checker cannot hook the interpreter of triton {getattr(triton, '__version__', '?')} "
            f"(written against 3.6 / 3.8): " + "; ".join(problems))
    _VERIFIED = interp
    return interp


_TRITON_DIR = None


def _is_user(filename: str) -> bool:
    return not filename.startswith(_TRITON_DIR) and filename != __file__


_DEPTHS: List[int] = []  # stack depths at which _user_frame found the kernel frame before


def _user_frame(start: int = 2) -> Tuple[str, int]:
    """(file, line) of the innermost frame outside triton and this file: the kernel source line of the op.

    NOTE: walking frame by frame costs ~30 us per op on Python 3.11 (every f_back materialises a frame object,
    as much as all the other checks together), so the depths where the kernel frame was found before are tried
    first: sys._getframe(d) materialises only the frame asked for. A depth is accepted when frame d is user
    code and frame d - 1 is not; a wrong hit could only misplace the line quoted in a message."""
    for d in _DEPTHS:
        try:
            f = sys._getframe(start + d + 1)
        except ValueError:
            continue
        if _is_user(f.f_code.co_filename) and not _is_user(sys._getframe(start + d).f_code.co_filename):
            return f.f_code.co_filename, f.f_lineno
    f, d = sys._getframe(start + 1), 0
    while f is not None:
        if _is_user(f.f_code.co_filename):
            if d not in _DEPTHS and d > 0:
                _DEPTHS.append(d)
            return f.f_code.co_filename, f.f_lineno
        f, d = f.f_back, d + 1
    return "<unknown>", 0


# --------------------------------------------------------------------------------------------------------------------
# What a launch knows: its tensor arguments, its memory ops.


@dataclasses.dataclass
class _Arg:
    name: str  # argument name as in the kernel signature (tuple elements: `name[i]`, descriptors: `name.base`)
    tensor_desc: str  # dtype / shape / stride, for messages
    ptr: int  # data_ptr() of the host tensor the kernel sees
    elsize: int
    lo: int  # lowest byte of the tensor's own elements
    hi: int  # one past the highest byte of its own elements
    storage_lo: int
    storage_hi: int
    shape: Tuple[int, ...]
    stride: Tuple[int, ...]

    def element_index(self, addr: int) -> str:
        """`[i, j, ...]` of the element at addr, when the layout lets us invert it; else the element offset."""
        off, rem = divmod(addr - self.ptr, self.elsize)
        if rem == 0 and off >= 0:
            idx, left = [0] * len(self.shape), off
            for d in sorted(range(len(self.shape)), key=lambda d: -self.stride[d]):
                if self.stride[d] > 0 and self.shape[d] > 1:
                    idx[d], left = divmod(left, self.stride[d])
            if left == 0 and all(0 <= i < s for i, s in zip(idx, self.shape)):
                return f"element {list(idx)}"
        return f"byte offset {addr - self.ptr}"


def _describe_tensor(t) -> Tuple[str, int, int, int, int, int, tuple, tuple]:
    es = t.element_size()
    ptr = t.data_ptr()
    shape, stride = tuple(t.shape), tuple(t.stride())
    if t.numel() == 0:
        lo = hi = ptr
    else:
        lo = ptr + es * sum(st * (n - 1) for n, st in zip(shape, stride) if st < 0)
        hi = ptr + es * sum(st * (n - 1) for n, st in zip(shape, stride) if st > 0) + es
    st = t.untyped_storage()
    desc = f"{str(t.dtype).replace('torch.', '')}, shape {shape}, stride {stride}"
    return desc, ptr, es, lo, hi, st.data_ptr(), st.data_ptr() + st.nbytes(), shape, stride


def _collect_args(named) -> List[_Arg]:
    from triton.runtime.interpreter import TensorDescriptor, _unwrap_tensor
    out: List[_Arg] = []

    def visit(name, a):
        if isinstance(a, tuple):
            for i, e in enumerate(a):
                visit(f"{name}[{i}]", e)
        elif isinstance(a, TensorDescriptor):
            visit(f"{name}.base", a.base)
        elif hasattr(a, "data_ptr"):
            t = _unwrap_tensor(a)
            desc, ptr, es, lo, hi, slo, shi, shape, stride = _describe_tensor(t)
            out.append(_Arg(name, desc, ptr, es, lo, hi, slo, shi, shape, stride))

    for name, a in named:
        visit(name, a)
    return out


@dataclasses.dataclass
class _Op:
    kind: str  # load / store / atomic_rmw / atomic_cas
    pid: Tuple[int, int, int]
    file: str
    line: int

    @property
    def loc(self) -> str:  # formatted only for messages: relpath costs more than the whole check of an op
        return f"{os.path.relpath(self.file) if not self.file.startswith('<') else self.file}:{self.line}"


class _Launch:
    """One interpreted launch: its arguments, and the addresses each program loaded / stored."""

    def __init__(self, kernel: str, builder):
        self.kernel = kernel
        self.builder = builder  # the interpreter's InterpreterBuilder: grid_idx is the running program
        self.args: List[_Arg] = []
        self.lo = self.hi = np.zeros(0, np.uint64)
        self.spans: List[Tuple[int, int]] = []
        self.grid = (0, 0, 0)
        self.ops: List[_Op] = []
        # per plain load / store: masked-in addresses, access size, op index, linear program id, [lowest, end)
        self.reads: List[Tuple[np.ndarray, int, int, int, int, int]] = []
        self.writes: List[Tuple[np.ndarray, int, int, int, int, int]] = []
        self.n_lanes = 0

    def set_args(self, args: List[_Arg]):
        self.args = args
        self.lo = np.array([a.lo for a in args], dtype=np.uint64)
        self.hi = np.array([a.hi for a in args], dtype=np.uint64)
        self.spans = [(a.lo, a.hi) for a in args]

    def where(self, pid=None) -> str:
        p = f"program_id={pid} of " if pid is not None else ""
        return f"kernel `{self.kernel}` ({p}grid {self.grid})"

    def arg_of(self, addr: int, size: int) -> Optional[_Arg]:
        for a in self.args:
            if a.lo <= addr and addr + size <= a.hi:
                return a
        return None

    # -- rule 1 -------------------------------------------------------------------------------------------------------
    def check_bounds(self, kind: str, ptrs: np.ndarray, mask, size: int):
        """Raise on any masked-in lane outside every tensor argument; return (addrs, op, lowest, end) of the op."""
        pid = self.builder.grid_idx
        self.grid = self.builder.grid_dim
        op = _Op(kind, pid, *_user_frame(1))
        self.ops.append(op)
        p = np.asarray(ptrs)
        if mask is None:
            addrs = p.reshape(-1).copy()
            m = None
        else:
            m = np.asarray(mask, dtype=bool)
            if m.shape != p.shape:
                m = np.broadcast_to(m, p.shape)
            addrs = p[m]
        addrs = addrs.astype(np.uint64, copy=False)
        self.n_lanes += addrs.size
        if not addrs.size:
            return addrs, op, 0, 0
        # NOTE: argmin / argmax, not min / max: the ufunc reductions cost ~5 us each even on 16 lanes, 4x more.
        lowest, end = int(addrs[addrs.argmin()]), int(addrs[addrs.argmax()]) + size
        # NOTE: fast path first: a block almost always touches one tensor, so [min, max] inside one span settles it
        # (a few us per op); only otherwise test every lane against every span.
        if not any(lo <= lowest and end <= hi for lo, hi in self.spans):
            ok = np.zeros(addrs.shape, dtype=bool)
            ends = addrs + np.uint64(size)
            for lo, hi in zip(self.lo, self.hi):
                ok |= (addrs >= lo) & (ends <= hi)
            if not ok.all():
                self._raise_oob(op, p, m, addrs, ok, size)
        return addrs, op, lowest, end

    def _raise_oob(self, op: _Op, p, m, addrs, ok, size):
        bad = int(np.flatnonzero(~ok)[0])
        addr = int(addrs[bad])
        lane_flat = int(np.flatnonzero(m.reshape(-1))[bad]) if m is not None else bad
        lane = tuple(int(i) for i in np.unravel_index(lane_flat, p.shape)) if p.ndim else ()
        lines = [f"out-of-bounds {op.kind} in {self.where(op.pid)} at {op.loc}:",
                 f"  address {addr:#x} ({size}-byte access) at lane {lane} of block shape {tuple(p.shape)}; "
                 f"{int((~ok).sum())} of {addrs.size} masked-in lanes fall outside every tensor argument"]
        if not self.args:
            lines.append("  the launch has no tensor arguments")
        else:
            def dist(a: _Arg):
                return a.lo - addr if addr < a.lo else addr + size - a.hi

            a = min(self.args, key=dist)
            d = dist(a)
            side = "before the start" if addr < a.lo else "past the end"
            n_el = -(-d // a.elsize)
            lines.append(f"  nearest tensor argument: `{a.name}` ({a.tensor_desc}), spanning "
                         f"[{a.lo:#x}, {a.hi:#x}): {d} bytes ({n_el} element{'s' if n_el != 1 else ''} of "
                         f"{a.elsize} bytes) {side} of it")
            if a.storage_lo <= addr and addr + size <= a.storage_hi:
                lines.append(f"  (the address is still inside `{a.name}`'s storage "
                             f"[{a.storage_lo:#x}, {a.storage_hi:#x}): the access overruns the view, not the "
                             f"allocation, so it would not crash — it reads / writes someone else's data)")
            lines.append("  tensor arguments: " + ", ".join(f"`{x.name}` [{x.lo:#x}, {x.hi:#x})" for x in self.args))
        raise TritonMemoryError("\n".join(lines))

    def record(self, kind: str, ptrs, mask, size: int):
        addrs, op, lowest, end = self.check_bounds(kind, ptrs, mask, size)
        if kind in ("load", "store") and addrs.size:
            x, y, z = op.pid
            lin = (x * self.grid[1] + y) * self.grid[2] + z
            (self.reads if kind == "load" else self.writes).append((addrs, size, len(self.ops) - 1, lin, lowest, end))

    # -- rule 2 -------------------------------------------------------------------------------------------------------
    def _reads_near_writes(self):
        """The read records whose [lowest, end) meets some written interval; the others cannot race."""
        if not self.reads:
            return []
        w_lo = np.array([r[4] for r in self.writes], dtype=np.uint64)
        w_hi = np.array([r[5] for r in self.writes], dtype=np.uint64)
        order = np.argsort(w_lo, kind="stable")
        w_lo, w_hi = w_lo[order], np.maximum.accumulate(w_hi[order])
        first = np.ones(w_lo.size, dtype=bool)
        first[1:] = w_lo[1:] >= w_hi[:-1]  # merge overlapping / touching intervals
        m_lo, m_hi = w_lo[first], w_hi[np.r_[np.flatnonzero(first)[1:] - 1, w_lo.size - 1]]
        r_lo = np.array([r[4] for r in self.reads], dtype=np.uint64)
        r_hi = np.array([r[5] for r in self.reads], dtype=np.uint64)
        k = np.searchsorted(m_lo, r_hi, side="left") - 1  # last merged interval starting before the read ends
        meets = (k >= 0) & (m_hi[np.maximum(k, 0)] > r_lo)
        return [self.reads[i] for i in np.flatnonzero(meets)]

    def check_races(self):
        """Rule 2 over the whole launch.

        NOTE: reads are first filtered per op to those whose address range meets a written range (inputs never
        get that far), then addresses become units: one access when every access has the same size and
        alignment (the normal case), else one byte (accesses of mixed sizes can overlap partially). Writes are
        deduplicated per (unit, program) with one int64 sort of a packed key."""
        if not self.writes:
            return
        reads = self._reads_near_writes()
        recs = self.writes + reads
        nw = sum(r[0].size for r in self.writes)
        addr = np.concatenate([r[0] for r in recs])
        counts = np.array([r[0].size for r in recs], dtype=np.int64)
        op = np.repeat(np.array([r[2] for r in recs], dtype=np.int64), counts)
        pid = np.repeat(np.array([r[3] for r in recs], dtype=np.int64), counts)
        sizes = {r[1] for r in recs}
        s = sizes.pop() if len(sizes) == 1 else None
        if s is not None and s & (s - 1) == 0:  # one power-of-two size: shifts and masks, no division
            shift, low = np.uint64(s.bit_length() - 1), np.uint64(s - 1)
            aligned = s == 1 or not np.any((addr & low) != (addr[0] & low))
        else:
            aligned = False
        if aligned:
            unit, unit_size = addr >> shift, s
        else:  # mixed sizes / alignments: expand every access to its bytes
            lens = np.repeat(np.array([r[1] for r in recs], dtype=np.int64), counts)
            rep = np.repeat(np.arange(addr.size), lens)
            offs = np.arange(rep.size) - np.repeat(np.cumsum(lens) - lens, lens)
            nw = int(lens[:nw].sum())
            unit, unit_size = addr[rep] + offs.astype(np.uint64), 1
            op, pid = op[rep], pid[rep]
        w_unit, w_op, w_pid = unit[:nw], op[:nw], pid[:nw]
        r_unit, r_op, r_pid = unit[nw:], op[nw:], pid[nw:]

        # write-write: distinct (unit, program) pairs, sorted; a unit appearing twice among them has two writers.
        base = w_unit.min()
        span_bits = int(w_unit.max() - base).bit_length()
        pid_bits = max(1, (self.grid[0] * self.grid[1] * self.grid[2] - 1).bit_length())
        if span_bits + pid_bits <= 62:
            key = np.sort(((w_unit - base).astype(np.int64) << pid_bits) | w_pid)
            key = key[np.r_[True, key[1:] != key[:-1]]]  # NOTE: not np.unique: numpy 2.4 hashes first, 6x slower
            u, p = (key >> pid_bits).astype(np.uint64) + base, key & ((1 << pid_bits) - 1)
        else:  # addresses too far apart to pack: two-key sort
            order = np.lexsort((w_pid, w_unit))
            u, p = w_unit[order], w_pid[order]
            keep = np.ones(u.size, dtype=bool)
            keep[1:] = (u[1:] != u[:-1]) | (p[1:] != p[:-1])
            u, p = u[keep], p[keep]
        dup = np.flatnonzero(u[1:] == u[:-1])
        if dup.size:
            i = int(dup[0])

            def first_op(unit, prog):
                return int(w_op[np.flatnonzero((w_unit == unit) & (w_pid == prog))[0]])

            self._raise_race("store", first_op(u[i], p[i]), "store", first_op(u[i + 1], p[i + 1]),
                             int(u[i]) * unit_size, unit_size, int(np.unique(u[dup]).size))
        # write-read: every written unit now has exactly one writer; a read of it by another program races.
        if r_unit.size:
            pos = np.searchsorted(u, r_unit)
            posc = np.minimum(pos, u.size - 1)
            hit = (pos < u.size) & (u[posc] == r_unit) & (p[posc] != r_pid)
            if hit.any():
                j = int(np.flatnonzero(hit)[0])
                writer = int(w_op[np.flatnonzero((w_unit == r_unit[j]) & (w_pid == p[posc[j]]))[0]])
                self._raise_race("store", writer, "load", int(r_op[j]), int(r_unit[j]) * unit_size,
                                 unit_size, int(np.unique(r_unit[hit]).size))

    def _raise_race(self, kind1, op1, kind2, op2, addr, unit_size, n_units):
        a, b = self.ops[op1], self.ops[op2]
        arg = self.arg_of(addr, 1)
        what = f"`{arg.name}` {arg.element_index(addr)}" if arg is not None else "no argument"
        title = "write-write race" if kind2 == "store" else "write-read race"
        unit = "address" if unit_size > 1 else "byte"
        unit += "" if n_units == 1 else "es" if unit_size > 1 else "s"
        raise TritonMemoryError(
            f"{title} in {self.where()}: address {addr:#x} ({what}) is {kind1}d by program {a.pid} ({a.kind} at "
            f"{a.loc}) and {'stored' if kind2 == 'store' else 'loaded'} by program {b.pid} ({b.kind} at {b.loc}) "
            f"without atomics; {n_units} {unit} affected in this launch")


# --------------------------------------------------------------------------------------------------------------------
# The checker: installs / removes the hooks.


class _CProxy:
    """Stands in for the interpreter's C module: checks load / store / atomics, forwards everything else."""

    def __init__(self, real, checker: "Checker"):
        self._real = real
        self._checker = checker

    def __getattr__(self, name):
        return getattr(self._real, name)

    def load(self, ptrs, mask, other, dtype):
        self._checker._on_access("load", ptrs, mask, np.dtype(dtype).itemsize)
        return self._real.load(ptrs, mask, other, dtype)

    def store(self, ptrs, value, mask):
        self._checker._on_access("store", ptrs, mask, np.asarray(value).itemsize)
        return self._real.store(ptrs, value, mask)

    def atomic_rmw(self, op, ptr, val, mask, sem):
        self._checker._on_access("atomic_rmw", ptr, mask, np.asarray(val).itemsize)
        return self._real.atomic_rmw(op, ptr, val, mask, sem)

    def atomic_cas(self, ptr, cmp, val, sem):
        self._checker._on_access("atomic_cas", ptr, None, np.asarray(cmp).itemsize)
        return self._real.atomic_cas(ptr, cmp, val, sem)


class Checker:
    """Installed hooks plus counters (``launches``, ``ops``, ``lanes``: how much was checked)."""

    def __init__(self):
        self.depth = 0
        self.suspended = 0
        self.launches = self.ops = self.lanes = 0
        self._stack: List[_Launch] = []
        self._saved = None

    # -- install / remove ---------------------------------------------------------------------------------------------
    def _install(self):
        global _TRITON_DIR
        interp = _interp_module()
        import triton
        _TRITON_DIR = os.path.dirname(triton.__file__)
        ge = interp.GridExecutor
        orig_call, orig_init = ge.__call__, ge._init_args_hst
        checker = self

        def _init_args_hst(executor, args_dev, kwargs):
            args_hst, kwargs_hst = orig_init(executor, args_dev, kwargs)
            launch = checker._current()
            if launch is not None:
                names = list(executor.arg_names) if executor.arg_names else []
                named = [(names[i] if i < len(names) else f"args[{i}]", a) for i, a in enumerate(args_hst)]
                launch.set_args(_collect_args(named + list(kwargs_hst.items())))
            return args_hst, kwargs_hst

        def __call__(executor, *args, **kwargs):
            if checker.suspended:
                return orig_call(executor, *args, **kwargs)
            launch = _Launch(getattr(executor.fn, "__name__", "?"), interp.interpreter_builder)
            checker._stack.append(launch)
            try:
                try:
                    orig_call(executor, *args, **kwargs)
                except interp.InterpreterError as e:
                    cause = e.__cause__
                    while cause is not None and not isinstance(cause, TritonMemoryError):
                        cause = cause.__cause__
                    if cause is not None:
                        raise cause from None
                    raise
                launch.check_races()
            finally:
                checker._stack.pop()
                checker.launches += 1
                checker.ops += len(launch.ops)
                checker.lanes += launch.n_lanes

        self._saved = (interp, orig_call, orig_init, interp._interpreter)
        ge._init_args_hst = _init_args_hst
        ge.__call__ = __call__
        interp._interpreter = _CProxy(interp._interpreter, self)

    def _uninstall(self):
        interp, orig_call, orig_init, c_mod = self._saved
        interp.GridExecutor.__call__ = orig_call
        interp.GridExecutor._init_args_hst = orig_init
        interp._interpreter = c_mod
        self._saved = None

    def _current(self) -> Optional[_Launch]:
        return self._stack[-1] if self._stack else None

    def _on_access(self, kind, ptrs, mask, size):
        launch = self._current()
        if launch is None:
            if self.suspended:
                return
            raise TritonMemoryError(f"triton_checker: an interpreter {kind} ran outside any kernel launch it saw; "
                                    f"the hooks no longer match this triton's interpreter")
        launch.record(kind, ptrs, mask, size)


_CHECKER = Checker()


def active_checker() -> Optional[Checker]:
    """The installed checker (with its counters), or None when no :func:`checked` block is active."""
    return _CHECKER if _CHECKER.depth else None


@contextlib.contextmanager
def checked() -> Iterator[Checker]:
    """Check every interpreted Triton launch inside the block; raises :class:`TritonMemoryError` on a violation.

    Nests: only the outermost block installs and removes the hooks."""
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        raise TritonCheckerUnsupported("triton_checker only watches the interpreter: set TRITON_INTERPRET=1 "
                                       "before importing the kernels")
    if _CHECKER.depth == 0:
        _CHECKER._install()
    _CHECKER.depth += 1
    try:
        yield _CHECKER
    finally:
        _CHECKER.depth -= 1
        if _CHECKER.depth == 0:
            _CHECKER._uninstall()


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Suspend checking inside the block (for code that must break the rules on purpose)."""
    _CHECKER.suspended += 1
    try:
        yield
    finally:
        _CHECKER.suspended -= 1
