"""optimize(): a SqueezeNet (or any model with Fires) made ready for fast inference, as a frozen snapshot."""
import copy

import torch
from torch import nn

from .frozen import (FrozenFire, FrozenMaxPool2d, FusedSequential, PooledClassifier, classifier_problem,
                     fused_sequential_problem, pool_problem)
from .modules import FusedFire, convert
from .native import cpu_empty_cache


def optimize(model: nn.Module, *, backend: str = "auto") -> nn.Module:
    """A copy of `model` for inference: every Fire fused (`convert`) and frozen (`FrozenFire`: the cpu op called
    with the least Python, its weights packed), SqueezeNet's classifier as one op (`PooledClassifier`), its stem
    (Conv2d, ReLU, MaxPool2d) as one pass and each max pool after a Fire in that Fire's call (`FusedSequential`), the
    other max pools by the cpu backend (`FrozenMaxPool2d`),
    each other ReLU that precedes a MaxPool2d moved after it, every weight in channels_last, the input turned to
    channels_last on the way in (whatever layout it comes in), eval mode, no parameter requiring grad. Its
    state_dict keys are `model`'s.

    Like `torch.jit.freeze` or OpenVINO's compile, it is a snapshot: later changes to `model`'s weights do not
    reach it. Its own weights may be replaced through `load_state_dict` (whose keys are `model`'s) or written in
    place through torch, not through `.data` or NumPy (see FrozenFire). `model` itself is left as it was. For
    training, use `convert`, which swaps the Fires in place and keeps everything else."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"fusedfire.optimize: model must be an nn.Module, got {type(model).__name__}")
    snapshot = copy.deepcopy(model)
    snapshot = convert(snapshot, backend=backend)
    if isinstance(snapshot, FusedFire):  # a Fire given alone
        snapshot = FrozenFire.from_fire(snapshot, backend=snapshot.backend)
    _freeze_children(snapshot, backend)
    _pool_before_relu(snapshot)
    snapshot.eval().requires_grad_(False)
    snapshot.to(memory_format=torch.channels_last)  # NOTE: eager channels_last 1.6-1.9× NCHW (bench/results/NOTES.md)
    snapshot.register_forward_pre_hook(_channels_last_input)
    if not any(isinstance(m, FusedFire) for m in snapshot.modules()):
        raise ValueError(f"fusedfire.optimize: {type(model).__name__} has no Fire module to fuse")
    return snapshot


def empty_cache() -> int:
    """Frees the memory `optimize`'s CPU inference keeps between calls: the blocks of its outputs of 1 MB or more
    (up to 256 MB in all) that no tensor holds any more, kept so that the next call of the same sizes reuses them
    instead of faulting fresh pages in. Returns the bytes freed. As with torch.cuda.empty_cache, live tensors are
    untouched, and later calls keep blocks again."""
    return cpu_empty_cache()


def _freeze_children(model: nn.Module, backend: str):
    """Swaps, in place, each FusedFire for a FrozenFire, each SqueezeNet classifier for a PooledClassifier, each
    nn.Sequential with a SqueezeNet stem or a Fire followed by a max pool for a FusedSequential (each sharing the
    replaced module's children, hence its Parameters and state_dict keys) and each square unpadded nn.MaxPool2d for a
    FrozenMaxPool2d."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FusedFire) and not isinstance(child, FrozenFire):
                setattr(parent, name, FrozenFire.from_fire(child, backend=child.backend))
            elif classifier_problem(child) is None:
                setattr(parent, name, PooledClassifier.from_sequential(child, backend=backend))
    for parent in list(model.modules()):  # after the Fires: a FusedSequential takes the children as they are now
        for name, child in list(parent.named_children()):
            if fused_sequential_problem(child) is None:
                setattr(parent, name, FusedSequential.from_sequential(child, backend=backend))
    for parent in list(model.modules()):  # after the stems, which want nn.MaxPool2d itself
        for name, child in list(parent.named_children()):
            if type(child) is nn.MaxPool2d and pool_problem(child) is None:
                setattr(parent, name, FrozenMaxPool2d.from_pool(child, backend=backend))


def _pool_before_relu(model: nn.Module):
    """Swaps, in place, each ReLU directly followed by a MaxPool2d in an nn.Sequential: max and ReLU commute, and the
    ReLU then runs on the pooled tensor, ~4× smaller after SqueezeNet's stem (3×3, stride 2)."""
    # NOTE: the stem (conv, ReLU, pool) 1.02-1.05× faster so at N=1 (squeezenet1_1 426-444 against 434-467 µs),
    # 1.02-1.20× at N=8 (2 threads, EPYC Zen 4, bench/outside_fires.py, 2 runs). A conv with the ReLU fused
    # (mkldnn._convolution_pointwise) measured 0.83-1.11× eager in the same runs: not used. The pools stay ATen's
    # channels_last kernel: four maxima of strided views ran 1.2-1.6× faster at N=1 but 0.4-0.9× at N=8, oneDNN's
    # pooling needs a layout conversion each way (10× slower), x.unfold(...).amax 0.02-0.5×.
    for seq in model.modules():
        if type(seq) is not nn.Sequential:
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            relu, pool = seq._modules[a], seq._modules[b]
            if type(relu) is nn.ReLU and isinstance(pool, nn.MaxPool2d) and not pool.return_indices:
                seq._modules[a], seq._modules[b] = pool, relu


def _channels_last_input(module, args):
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return None
