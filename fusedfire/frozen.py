"""The inference-only modules `optimize` puts in its snapshot. Each keeps the children, hence the state_dict keys, of
the module it replaces and only changes `forward`: less Python per call and packed weights (FrozenFire), fused layers
(FusedSequential: the stem, each Fire with the max pool or the Fire after it) or fewer, larger ops (PooledClassifier,
FrozenMaxPool2d). Anything their fast path does not cover (grad, tracing, compile, autocast, another device, a bad
input) takes the general path, with its checks and messages."""
import operator
from collections import OrderedDict

import torch
from torch import Tensor, nn

from .modules import FusedFire
from .ops import resolve_backend

_NATIVE_FIRE = torch.ops.fusedfire.native_fire.default  # the overload: the packet's overload lookup skipped
_NATIVE_FIRE_PACKED = torch.ops.fusedfire.native_fire_packed.default
_NATIVE_FIRE_PACK = torch.ops.fusedfire.native_fire_pack.default
_NATIVE_STEM = torch.ops.fusedfire.native_stem.default
_NATIVE_MAX_POOL = torch.ops.fusedfire.native_max_pool.default
_NATIVE_CLASSIFIER_PACK = torch.ops.fusedfire.native_classifier_pack.default
_NATIVE_CLASSIFIER = torch.ops.fusedfire.native_classifier.default
# oneDNN's linear with a fused activation, what torch.compile's CPU freezing pass emits (torch._inductor mkldnn_fusion)
_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_LINEAR_POINTWISE = torch.ops.mkldnn._linear_pointwise.default if _MKLDNN else None


class _Packs:
    """A module whose cpu op takes its fp32 weights packed (`_make_pack`, a pack op): the pack kept current."""

    def __getstate__(self):  # pickled and deep-copied without the pack (derived; remade at the next call)
        state = super().__getstate__()
        state.pop("_pack", None)
        return state

    @torch.jit.unused
    def _current_pack(self, weights):
        """The pack of `weights` (fp32), remade where any of them is another tensor or was written in place since;
        None where one is an inference tensor (no version counter to follow), on another device or of another dtype."""
        # NOTE: packs 0.82-0.91× the time of a whole optimized SqueezeNet (csrc/cpu/pack.h); this check ~1 µs a call
        try:
            key = [(t.data_ptr(), t._version) for t in weights]
        except RuntimeError:
            return None
        pack = self.__dict__.get("_pack")
        if pack is None or pack[0] != key:
            if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in weights):
                return None
            # the weights themselves kept with the key: their memory cannot be reused by another tensor meanwhile
            pack = self._pack = (key, self._make_pack(*weights), [t.detach() for t in weights])
        return pack[1]


class FrozenFire(_Packs, FusedFire):
    """A FusedFire whose inference call on CPU goes straight to the cpu backend's op.

    The backend is resolved once, when it is built (FUSEDFIRE_BACKEND included): a snapshot, like optimize's. Per call
    it checks only what the op's own C++ checks would report less clearly (x a Tensor, 4-D, with Cin channels and the
    weights' dtype) and the states that need the general path; the op checks the rest (shapes, device, dtype).

    With fp32 weights it passes the op their pack (native_fire_pack: the 1×1 weights transposed and padded, the 3×3
    weights' Winograd transform), made at the first call and again whenever a weight changes through torch: another
    tensor, or an in-place write (load_state_dict's copy_ included) that moves its version counter. A write that
    bypasses the counter (through `.data`, NumPy or a raw pointer) is not seen, as a frozen snapshot's would not be:
    call `optimize` again after one."""

    _make_pack = staticmethod(_NATIVE_FIRE_PACK)

    @classmethod
    def from_fire(cls, fire_module: nn.Module, *, backend: str = "auto") -> "FrozenFire":
        self = super().from_fire(fire_module, backend=backend)
        self._native_cpu = _runs_cpu_ops(backend)
        return self

    @torch.jit.unused
    def _fire(self, x):
        # NOTE: 3 µs over the op's own call against 23-27 through FusedFire (its parameters' nn.Module.__getattr__
        # ~8 µs, check_inputs ~7): a 4×4 Fire 18.1-18.5 µs, FusedFire 38-42, the op 15 (2 threads, EPYC Zen 4,
        # bench/outside_fires.py); a 13×13 512→64→256+256 Fire 462-464 against 488-494 µs, 5-7%.
        params = self._direct_params(x)
        if params is None:
            return super()._fire(x)
        out = self._native(x, params)
        return _NATIVE_FIRE(x, *params) if out is None else out

    @torch.jit.unused
    def _fire_pooled(self, x, pool_args):
        """max_pool2d(this Fire(x), *pool_args) (kernel, stride, ceil_mode) in one native_fire_packed call, the Fire's
        output never in memory; or None where that path does not apply (then: this Fire, then the pool's module)."""
        params = self._direct_params(x)
        return None if params is None else self._native(x, params, pool_args)

    def _native(self, x, params, pool_args=()):
        """This Fire, then max_pool2d(·, *pool_args) where given, in one native_fire_packed call with the weights'
        pack, for a caller that has checked the rest of `_direct_params`' conditions; None where that call does not
        apply (not fp32; pooling: not channels_last, or smaller than the pool)."""
        if x.dtype != torch.float32 or x.dim() != 4 or (pool_args and not _poolable(x, pool_args[0])):
            return None
        packed = self._current_pack(params[:5])
        return None if packed is None else _NATIVE_FIRE_PACKED(x, *params, packed, *pool_args)

    def _params(self):
        """(Wsq, bsq, W1, b1, W3, b3), as they are now."""
        m = self._modules
        sq, e1, e3 = m["squeeze"]._parameters, m["expand1x1"]._parameters, m["expand3x3"]._parameters
        return sq["weight"], sq["bias"], e1["weight"], e1["bias"], e3["weight"], e3["bias"]

    def _direct_params(self, x):
        """`_params()` where x can go straight to the cpu op, else None: only what the op's own C++ checks would
        report less clearly (x a Tensor, 4-D, with Cin channels and the weights' dtype) and the states that need the
        general path (tracing, compile, autocast, grad: `_special_mode`, x or a parameter requiring grad)."""
        params = self._params()
        w = params[0]
        if (self._native_cpu and not _special_mode() and type(x) is Tensor and x.is_cpu and x.dim() == 4
                and x.shape[1] == w.shape[1] and x.dtype == w.dtype
                and not (torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)))):
            return params
        return None


def _runs_cpu_ops(backend: str) -> bool:
    """Whether `backend` (resolved once: a snapshot) runs the cpu backend's ops on CPU tensors."""
    try:
        return resolve_backend(backend, "cpu") == "cpu"
    except ValueError:  # a backend that cannot run on CPU: the general path says so when called
        return False


def _special_mode() -> bool:
    """Tracing (jit.trace, the TorchScript ONNX exporter), torch.compile/export, torch.func or CPU autocast."""
    # is_compiling first: Dynamo folds it to True and never meets _is_tracing, which it cannot trace
    return (torch.compiler.is_compiling() or torch._C._is_tracing() or torch._C._are_functorch_transforms_active()
            or torch.is_autocast_enabled("cpu"))


def _poolable(x, kernel: int) -> bool:
    """Whether native_fire_packed pools a Fire's output for x: channels_last (layout.h), at least kernel² pixels."""
    return _channels_last(x) and min(x.shape[2], x.shape[3]) >= kernel


def _chained(layers, j: int, cl: bool):
    """(params, pack) of layers[j] where the op before it can apply its squeeze (native_fire_packed's and
    native_stem's next_squeeze_weight, next_packed): a FrozenFire with a current pack, the op's output channels_last
    (cl) and so the s it gets (more than one channel); else None."""
    if j >= len(layers) or type(layers[j]) is not FrozenFire or not cl:
        return None
    params = layers[j]._params()
    if params[0].shape[0] < 2:
        return None
    pack = layers[j]._current_pack(params[:5])
    return None if pack is None else (params, pack)


def _next_args(ready) -> tuple:
    """The next_squeeze_weight and next_packed arguments of an op whose output `_chained`'s `ready` squeezes."""
    return (ready[0][0], ready[1]) if ready else (None, None)


def _channels_last(x) -> bool:
    """Whether x is channels_last as layout.h tells (a unit channel stride, more than one channel and pixel)."""
    return x.stride(1) == 1 and x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1


def _any_hooks(layers) -> bool:
    """Whether a module call of one of `layers` would run hooks (its own or global ones)."""
    g = nn.modules.module
    return bool(g._global_forward_hooks or g._global_forward_pre_hooks or g._global_backward_hooks
                or g._global_backward_pre_hooks
                or any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
                       for m in layers))


class FusedSequential(nn.Sequential):
    """An nn.Sequential whose layers optimize fuses for fp32 CPU inference: SqueezeNet's stem, Conv2d, ReLU, MaxPool2d
    (`stem_problem`), in one pass of the cpu backend's native_stem (the conv's output, 4× the pooled one, never goes
    through memory), each FrozenFire followed by a max pool (`pool_problem`) in one native_fire_packed call (the
    Fire's output, 4× the pooled one, never goes through memory), and each FrozenFire followed by another with the
    other's squeeze in its call (its output, 5-8× the other's s in SqueezeNets, never goes through memory; the other
    takes that s). Inference calls (no grad) check what those calls need once, not layer by layer. The same children,
    hence keys and indexing; a hook on any of them (or a global one) runs every layer by its own call, and anything
    the fused ops do not cover (grad, tracing, compile, autocast, other dtypes, layouts and devices, another backend)
    runs the layers one by one, the stem's MaxPool2d before its ReLU (max and ReLU commute; ~4× fewer values to
    ReLU)."""

    @classmethod
    def from_sequential(cls, seq: nn.Sequential, *, backend: str = "auto") -> "FusedSequential":
        problem = fused_sequential_problem(seq)
        if problem:
            raise ValueError(f"FusedSequential.from_sequential: {problem}")
        self = cls(OrderedDict(seq.named_children()))
        self._backend = backend
        self._native_cpu = _runs_cpu_ops(backend)
        self._stem_args = self._stem_min_size = None
        if stem_problem(seq) is None:
            conv = seq[0]
            self._stem_args = (conv.stride[0], conv.padding[0], *_pool_args(seq[2]))
            # the smallest H and W native_stem takes: a conv output as large as the pooling kernel (ATen's ceil_mode
            # also pools a smaller one, through the layers)
            stride, padding, kernel = self._stem_args[:3]
            self._stem_min_size = conv.kernel_size[0] - 2 * padding + (kernel - 1) * stride
        self._pooled_fires = _pooled_fires(seq)
        self.train(seq.training)
        return self

    def __getitem__(self, idx):
        got = super().__getitem__(idx)
        if isinstance(idx, slice):  # a FusedSequential where the slice still has something to fuse
            plain = nn.Sequential(OrderedDict(got.named_children()))
            if fused_sequential_problem(plain):
                return plain
            return FusedSequential.from_sequential(plain, backend=self._backend)
        return got

    def __getstate__(self):  # pickled and deep-copied without the plan (derived; remade at the next call)
        state = super().__getstate__()
        state.pop("_plan", None)
        return state

    def forward(self, x):
        layers = tuple(self._modules.values())
        if _any_hooks(layers):  # the fused calls would skip them: every layer's own call
            for layer in layers:
                x = layer(x)
            return x
        # NOTE: an inference call (no grad) checks what the Fires' direct calls need once, not Fire by Fire:
        # (EPYC, AVX-512) optimize's squeezenet1_1 at N=1, 2 threads: 8 instead of 14 µs between two Fires' ops (the
        # Python runs on cold caches there); the whole network 0.99-1.00× the time (4 runs, paired medians).
        lean = (not torch.is_grad_enabled() and self._native_cpu and type(x) is Tensor and x.is_cpu
                and not _special_mode())
        if not lean:
            return self._run(x, layers)
        plan = self.__dict__.get("_plan")
        if plan is not None and plan.fits(layers, x):
            # NOTE: (EPYC Zen 4, AVX-512, 2 threads) optimize's whole network, replayed against decided afresh (in
            # process, interleaved rounds, paired medians): N=1 0.978× / 0.994× the time (squeezenet1_0, two runs),
            # 0.985× / 0.987× (squeezenet1_1); N=8 0.995× (1_1). fits: ~13 µs hot (squeezenet1_0).
            for op, args in plan.steps:
                x = op(x, *args)
            return x
        steps = []
        out = self._run(x, layers, steps)
        self._plan = _Plan.of(layers, x, steps)
        return out

    def _run(self, x, layers, steps=None):
        """The layers on x, fused where they can be; `steps` (an inference call's, its checks passed: `lean`) gets
        each call made, (op, args) for h = op(h, *args)."""
        lean = steps is not None
        h, i = x, 0
        ready = None  # (params, pack) of layers[i] where the op before applied its squeeze: h is then its s
        if self._stem_args:
            (h, ready), i = self._stem(x, *layers[:3], layers if lean else None, steps), 3
        while i < len(layers):
            layer, pool = layers[i], self._pooled_fires.get(i)  # pool: a max pool after a Fire
            if lean and type(layer) is FrozenFire and h.dtype == torch.float32 and h.dim() == 4:
                squeezed = ready is not None  # (then always this branch: h is an s no module call takes)
                if squeezed:
                    params, pack = ready
                else:
                    params = layer._params()
                    pack = layer._current_pack(params[:5])
                if pack is not None:
                    if pool and not _poolable(h, pool[0]):
                        pool = None  # the pool's own call, next
                    ready = None if pool else _chained(layers, i + 1, _channels_last(h))
                    args = (*params, pack, *(pool or (0, 0, False)), squeezed, *_next_args(ready))
                    steps.append((_NATIVE_FIRE_PACKED, args))
                    h = _NATIVE_FIRE_PACKED(h, *args)
                    i += 2 if pool else 1
                    continue
            elif pool and not lean:  # each Fire checks its call (grad mode, ...)
                out = layer._fire_pooled(h, pool)
                if out is not None:
                    h, i = out, i + 2
                    continue
            if lean:
                steps.append((layer, ()))
            h, i = layer(h), i + 1
        return h

    def _stem(self, x, conv, relu, pool, layers=None, steps=None):
        """(out, ready): the stem's layers by native_stem where it takes x, else one by one; with `layers` (an
        inference call's), the squeeze of the FrozenFire after the stem applied too where it can (`_chained`), out
        then its s and ready its (params, pack), else None; `steps` (idem) gets the call made (`_run`)."""
        w, b = conv._parameters["weight"], conv._parameters["bias"]
        if (self._native_cpu and not _special_mode() and type(x) is Tensor and x.is_cpu and x.dim() == 4
                and x.dtype == torch.float32 and w.dtype == torch.float32 and x.shape[1] == w.shape[1]
                and min(x.shape[2], x.shape[3]) >= self._stem_min_size
                and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or b.requires_grad))):
            ready = _chained(layers, 3, w.shape[0] > 1) if layers is not None else None  # out: channels_last
            args = (w, b, *self._stem_args, *_next_args(ready))
            if steps is not None:
                steps.append((_NATIVE_STEM, args))
            return _NATIVE_STEM(x, *args), ready
        if steps is not None:
            steps.append((_stem_layers, (conv, relu, pool)))
        return _stem_layers(x, conv, relu, pool), None


def _stem_layers(x, conv, relu, pool):
    return relu(pool(conv(x)))


class _Plan:
    """The calls an inference call of a FusedSequential made (`steps`: (op, args), h = op(h, *args) from h = x), to
    make them again for an x of the same shape, strides and dtype while every decision they took still holds: the
    same layers (and none from outside torch.nn and fusedfire, whose output may differ per call), each FrozenFire's
    and the stem conv's parameters the same tensors, and those the packs and checks came from neither moved nor
    written since (data pointer and version counter, as `_current_pack`)."""

    __slots__ = ("layers", "x", "owners", "params", "sources", "versions", "steps")

    @classmethod
    def of(cls, layers, x, steps):
        """The plan of `steps`, or None where one of its layers could not be replayed or a parameter has no version
        counter (an inference tensor)."""
        if any(isinstance(op, nn.Module) and not type(op).__module__.startswith(("torch.nn.", "fusedfire."))
               for op, _ in steps):
            return None
        self = cls()
        self.layers, self.x, self.steps = layers, (x.shape, x.stride(), x.dtype), steps
        self.owners = [m for m in layers if type(m) is FrozenFire] + [m for op, args in steps if op is _NATIVE_STEM
                                                                      for m in layers[:1]]
        self.params = [p for m in self.owners for p in _own_params(m)]
        # a Fire's pack comes from its first five parameters; the stem's weight and bias decide its call
        self.sources = [t for op, args in steps if op in (_NATIVE_FIRE_PACKED, _NATIVE_STEM)
                        for t in args[:5 if op is _NATIVE_FIRE_PACKED else 2]]
        try:
            self.versions = _versions(self.sources)
        except RuntimeError:
            return None
        return self

    def fits(self, layers, x) -> bool:
        """Whether this plan's calls are what a call on x would make now."""
        return (layers == self.layers and (x.shape, x.stride(), x.dtype) == self.x
                and all(map(operator.is_, [p for m in self.owners for p in _own_params(m)], self.params))
                and _versions(self.sources) == self.versions)


def _own_params(module):
    """A FrozenFire's `_params()`, a Conv2d's (weight, bias)."""
    if type(module) is FrozenFire:
        return module._params()
    p = module._parameters
    return p["weight"], p["bias"]


def _versions(tensors) -> list:
    return [(t.data_ptr(), t._version) for t in tensors]


def _pool_args(pool: nn.MaxPool2d) -> tuple:
    """(kernel, stride, ceil_mode) of a square max pool."""
    return _pair(pool.kernel_size)[0], _pair(pool.stride)[0], pool.ceil_mode


def _pooled_fires(seq: nn.Sequential) -> dict:
    """{index of a FrozenFire: (kernel, stride, ceil_mode) of the max pool (`pool_problem`) right after it} in seq."""
    layers = list(seq)
    return {i: _pool_args(layers[i + 1]) for i in range(len(layers) - 1)
            if isinstance(layers[i], FrozenFire) and pool_problem(layers[i + 1]) is None}


def fused_sequential_problem(seq: nn.Module):
    """None if `seq` is an nn.Sequential with something for FusedSequential to fuse (a leading stem, or a FrozenFire
    followed by a max pool or by another FrozenFire), else why not."""
    if type(seq) is not nn.Sequential:
        return f"{type(seq).__name__} is not an nn.Sequential"
    stem = stem_problem(seq)
    layers = list(seq)
    pairs = any(type(a) is FrozenFire is type(b) for a, b in zip(layers, layers[1:]))
    if stem is not None and not _pooled_fires(seq) and not pairs:
        return f"nothing to fuse: no stem ({stem}) and no FrozenFire followed by a max pool or another FrozenFire"
    return None


def stem_problem(seq: nn.Module):
    """None if `seq` is an nn.Sequential whose first three layers are a Conv2d (square kernel, stride and padding,
    padding at most half the kernel, no dilation or groups, zero padding, a bias), a ReLU and a MaxPool2d (square
    kernel of at most 8 and stride, no padding or dilation, no indices), else what differs."""
    if type(seq) is not nn.Sequential:
        return f"{type(seq).__name__} is not an nn.Sequential"
    kinds = [type(m) for m in list(seq)[:3]]
    if kinds not in ([nn.Conv2d, nn.ReLU, nn.MaxPool2d], [nn.Conv2d, nn.ReLU, FrozenMaxPool2d]):
        return f"its first layers are {[k.__name__ for k in kinds]}, not Conv2d, ReLU, MaxPool2d"
    conv, pool = seq[0], seq[2]
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    if not (k[0] == k[1] and s[0] == s[1] and isinstance(p, tuple) and p[0] == p[1] and 2 * p[0] <= k[0]):
        return f"its Conv2d is not square with padding at most half its kernel (kernel {k}, stride {s}, padding {p})"
    if conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros" or conv.bias is None:
        return "its Conv2d has dilation, groups, a padding mode other than zeros, or no bias"
    problem = pool_problem(pool)
    return f"its {problem}" if problem else None


class FrozenMaxPool2d(nn.MaxPool2d):
    """An nn.MaxPool2d (`pool_problem`: square, no padding) whose inference call on a dense channels_last fp32 CPU
    tensor runs the cpu backend's native_max_pool: no indices computed, the output from kept blocks. Anything else
    (grad, tracing, compile, another layout, dtype or device, another backend) runs nn.MaxPool2d's forward."""

    @classmethod
    def from_pool(cls, pool: nn.MaxPool2d, *, backend: str = "auto") -> "FrozenMaxPool2d":
        problem = pool_problem(pool)
        if problem:
            raise ValueError(f"FrozenMaxPool2d.from_pool: {problem}")
        self = cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.return_indices, pool.ceil_mode)
        self._native_cpu = _runs_cpu_ops(backend)
        self._pool_args = _pool_args(pool)
        return self

    def forward(self, x):
        kernel = self._pool_args[0]
        if (self._native_cpu and not _special_mode() and type(x) is Tensor and x.is_cpu and x.dtype == torch.float32
                and x.dim() == 4 and x.shape[2] >= kernel and x.shape[3] >= kernel and x.stride(1) == 1
                and x.is_contiguous(memory_format=torch.channels_last)
                and not (torch.is_grad_enabled() and x.requires_grad)):
            return _NATIVE_MAX_POOL(x, *self._pool_args)
        return super().forward(x)


def pool_problem(pool: nn.Module):
    """None if `pool` is an nn.MaxPool2d with a square kernel of at most 8, a square stride, no padding or dilation,
    and no indices, else what differs."""
    if not isinstance(pool, nn.MaxPool2d):
        return f"{type(pool).__name__} is not an nn.MaxPool2d"
    pk, ps, pp, pd = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding), _pair(pool.dilation)
    if pk[0] != pk[1] or ps[0] != ps[1] or pk[0] > 8 or pp != (0, 0) or pd != (1, 1) or pool.return_indices:
        return f"MaxPool2d is not square (at most 8) without padding, dilation or indices: {pool}"
    return None


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class PooledClassifier(_Packs, nn.Sequential):
    """SqueezeNet's classifier, Sequential(Dropout, Conv2d 1×1, ReLU, AdaptiveAvgPool2d(1)), in eval as one op: for
    fp32 inference on CPU with a conv bias, the cpu backend's native_classifier (the conv's weights packed once and
    kept current as FrozenFire's; its output summed over the pixels in registers, never in memory); else the
    activation viewed as (N·H·W, C) (no copy in channels_last) times the conv's weight as (C, K), plus its bias, ReLU
    (fused in oneDNN's linear where there is no grad; else addmm then relu_), then the mean over each image's pixels.
    Either way (N, K, 1, 1) as the eager classifier returns. Same children and keys as the Sequential it replaces;
    in training mode (Dropout), under tracing or compile, or for an input it does not take it runs them one by one."""

    _make_pack = staticmethod(_NATIVE_CLASSIFIER_PACK)

    @classmethod
    def from_sequential(cls, classifier: nn.Sequential, *, backend: str = "auto") -> "PooledClassifier":
        problem = classifier_problem(classifier)
        if problem:
            raise ValueError(f"PooledClassifier.from_sequential: not a SqueezeNet classifier: {problem}")
        self = cls(OrderedDict(classifier.named_children()))  # the children's names: the state_dict keys
        self._conv = list(classifier._modules)[1]  # the Conv2d's name ("1" in torchvision)
        self._native_cpu = _runs_cpu_ops(backend)
        self.train(classifier.training)
        return self

    def forward(self, x):
        conv = self._modules[self._conv]._parameters
        w, b = conv["weight"], conv["bias"]
        if self.training or _special_mode() or type(x) is not Tensor or x.dim() != 4 or x.shape[1] != w.shape[1]:
            return super().forward(x)  # dropout; standard ops to trace and export; the eager layers' own errors
        no_grad = not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or
                                                    (b is not None and b.requires_grad)))
        if self._native_cpu and no_grad and b is not None and x.is_cpu and x.dtype == torch.float32:
            packed = self._current_pack((w, b))
            if packed is not None:
                # NOTE: (EPYC, AVX-512, 2 threads) 512→1000 on 13×13, hot: 798 against oneDNN's 926 µs at N=1, 6.50
                # against 7.32 ms at N=8
                return _NATIVE_CLASSIFIER(x, w, b, packed)
        N, C, H, W = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(N * H * W, C)
        K = w.shape[0]
        weight = w.reshape(K, C)
        if _MKLDNN and x.is_cpu and x.dtype == torch.float32 and w.dtype == torch.float32 and no_grad:
            # NOTE: 912-945 µs against addmm + relu_ 1006-1043, eager NCHW 989-1023, eager channels_last 1340-1454
            # (N=1, 512→1000 on 13×13, 2 threads, EPYC Zen 4, bench/outside_fires.py, 2 runs); N=8: 6767-7113
            # against 6952-7258, 7108-7582, 7113-7736. MKL's packed linear (torch.compile's): as addmm.
            y = _LINEAR_POINTWISE(pixels, weight, b, "relu", [], "")
        else:  # autograd, other dtypes and devices
            y = (torch.addmm(b, pixels, weight.t()) if b is not None else pixels @ weight.t()).relu_()
        # NOTE: sum then divide, 60 against mean's 175 µs at N=8 (14 / 19 µs at N=1), 13×13×1000, 2 threads.
        return y.view(N, H * W, K).sum(1).div_(H * W).view(N, K, 1, 1)


def classifier_problem(module: nn.Module):
    """None if `module` is exactly nn.Sequential(Dropout, Conv2d 1×1 stride 1 unpadded ungrouped, ReLU,
    AdaptiveAvgPool2d(1)), else what differs."""
    if type(module) is not nn.Sequential:
        return f"{type(module).__name__} is not an nn.Sequential"
    kinds = [type(m) for m in module]
    if kinds != [nn.Dropout, nn.Conv2d, nn.ReLU, nn.AdaptiveAvgPool2d]:
        return f"its layers are {[k.__name__ for k in kinds]}, not Dropout, Conv2d, ReLU, AdaptiveAvgPool2d"
    conv, pool = module[1], module[3]
    for attr, value in dict(kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1).items():
        if getattr(conv, attr) != value:
            return f"its Conv2d's {attr} is {getattr(conv, attr)}, expected {value}"
    if pool.output_size not in (1, (1, 1)):
        return f"its AdaptiveAvgPool2d's output_size is {pool.output_size}, expected 1"
    return None
