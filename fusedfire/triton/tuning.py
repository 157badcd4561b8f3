"""Tile configs of every Fire kernel, in one place, and the AOT variants (kernel × dtype × config) built from them.

A config is the kernel's BLOCK_* meta-parameters plus num_warps / num_stages. On a GPU the launchers autotune
over configs(kernel, fp64) (keyed on the shape ints); under the interpreter they run its first; any launcher
takes `config=` to force one, which is how the tests run every config.

NOTE: no GPU was available while these were chosen, so they rest on reasoning and on the register/spill counts
of `ptxas -v` for sm_80/sm_90 (tests/test_aot.py prints them), not on timings. The first set (128-pixel tiles,
3-4 stages) spilled almost everywhere: e.g. grad_s 128×32×64/3 stages, fp16 sm_90: 255 registers + 4.3 KB spill
stores; expand 128×64×32/3: 255 + 212 B. The strided, per-element int64 address tiles are the register cost,
and each pipeline stage keeps one more of them live. Cut to 64-pixel tiles and 1-2 stages: grad_s 64×32×32/1
and expand 64×64×32/2 compile with 252-255 and 244-254 registers and no spills (fp16, fp32, sm_90); wgrad
64×32×32/1 with 216-236. The others in this list follow the same shape rules but were not all re-measured. Since the kernels load
channel-major tiles (kernels.py's NOTE) every variant compiles without spills on sm_80/sm_90, most at 120-200
registers; the exceptions at 250-255 are wgrad 64×32×32 / 32×32×64 (fp32/fp16/bf16, sm_80) and squeeze grad_x
64×32×64/4 stages (fp16/bf16, sm_80).
- The SqueezeNet Fires have S ∈ {16, 32, 48, 64}, E1 = E3 ∈ {64, 128, 192, 256}, Cin ∈ {64 … 512}; KernelBench's has
  Cin = 3, S = 6. Every BLOCK is ≥ 16 (tl.dot's minimum when compiled), so S = 6 still pays a 16-wide K tile.
- squeeze/expand/grad_s tile pixels by BLOCK_M (64 = one wgmma M) and channels by BLOCK_N; BLOCK_N = 16 or 32
  avoids computing 2-4× padded columns for S = 16/32 (squeeze, grad_s output channels = S).
- wgrad reduces over pixels: BLOCK_P is its K dimension (32 or 64 pixels per dot), BLOCK_E × BLOCK_K its tile of
  the weight gradient (E ≤ 256, K = S ≤ 64 for the expands; E = S, K = Cin ≤ 512 for the squeeze).
"""
import triton.language as tl

CONFIGS = {
    "squeeze": [
        dict(BLOCK_M=64, BLOCK_N=32, BLOCK_K=64, num_warps=4, num_stages=4),
        dict(BLOCK_M=64, BLOCK_N=16, BLOCK_K=64, num_warps=4, num_stages=2),
        dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, num_warps=4, num_stages=2),
    ],
    "expand": [
        dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, num_warps=4, num_stages=2),
        dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, num_warps=4, num_stages=1),
        dict(BLOCK_M=64, BLOCK_N=32, BLOCK_K=32, num_warps=4, num_stages=2),
    ],
    "grad_s": [
        dict(BLOCK_M=64, BLOCK_N=32, BLOCK_K=32, num_warps=4, num_stages=1),
        dict(BLOCK_M=64, BLOCK_N=16, BLOCK_K=32, num_warps=4, num_stages=1),
        # NOTE: 32×32×32 compiled for sm_90 fp32 to 80 registers + 4 B of spill stores (a ptxas choice, not
        # pressure); 32×32×16: 64 registers, no stack.
        dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=16, num_warps=4, num_stages=1),
    ],
    "wgrad": [
        dict(BLOCK_E=64, BLOCK_K=32, BLOCK_P=32, num_warps=4, num_stages=1),
        dict(BLOCK_E=32, BLOCK_K=32, BLOCK_P=64, num_warps=4, num_stages=1),
        dict(BLOCK_E=64, BLOCK_K=16, BLOCK_P=32, num_warps=4, num_stages=1),
    ],
}
# fp64 Fires get their own tiles: every fp64 operand, accumulator and bias element takes two registers.
# NOTE: with CONFIGS' tiles, fp64 expand 64×64×32 ran at 254-255 registers (sm_80/sm_90) and wgrad spilled
# 176-296 B in every config (BLOCK_P = 64: 255 + 168 B on sm_80 even at BLOCK_E = 32, BLOCK_K = 16). Halving
# the expand's BLOCK_N and keeping wgrad at 32 pixels per dot: expand 106-168, wgrad 168-242, no spills.
CONFIGS_FP64 = dict(
    CONFIGS,
    expand=[
        dict(BLOCK_M=64, BLOCK_N=32, BLOCK_K=32, num_warps=4, num_stages=2),
        dict(BLOCK_M=64, BLOCK_N=32, BLOCK_K=16, num_warps=4, num_stages=1),
        dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, num_warps=4, num_stages=2),
    ],
    wgrad=[
        dict(BLOCK_E=32, BLOCK_K=32, BLOCK_P=32, num_warps=4, num_stages=1),
        dict(BLOCK_E=32, BLOCK_K=16, BLOCK_P=32, num_warps=4, num_stages=1),
        dict(BLOCK_E=64, BLOCK_K=16, BLOCK_P=16, num_warps=4, num_stages=1),
    ],
)


def configs(name: str, fp64: bool = False) -> list:
    """The configs kernel `name` autotunes over: CONFIGS_FP64 for fp64 Fires, else CONFIGS (config i of one list
    is the same tile role as config i of the other, so tests that pair configs by index cover both)."""
    return (CONFIGS_FP64 if fp64 else CONFIGS)[name]


# wgrad chunks pixels in multiples of the largest BLOCK_P, so the chunk count (and the partial buffer) does not
# depend on which config runs: autotuning may then try every config on the same buffers.
CHUNK_ALIGN = max(c["BLOCK_P"] for table in (CONFIGS, CONFIGS_FP64) for c in table["wgrad"])


def meta(config: dict) -> dict:
    """The constexpr part of a config (BLOCK_*), without num_warps / num_stages."""
    return {k: v for k, v in config.items() if k.startswith("BLOCK_")}


# ------------------------------------------------------------------------------------------------ AOT variants

_TT = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp64": "fp64"}
DTYPES = ("fp32", "fp16", "bf16", "fp64")


def _dot_precision(operand: str) -> str:
    # fp32 operands: tf32 (the default of cudnn.allow_tf32, and always for the fp32 grad_s of lowp inputs);
    # the AOT build compiles the tf32 form, the ieee form differs only in the mma instruction's input type.
    return "tf32" if operand == "fp32" else "ieee"


def variants():
    """Every (kernel, mode, dtype, config) the launchers can run, as what triton.compile(ASTSource(...)) needs:
    dicts with name, fn, signature, constexprs, num_warps, num_stages, dtype and a `tensor_cores` flag (fp16/bf16
    dots that must become mma/wgmma). Strides and sizes are i32 here (the launchers pass what torch has)."""
    from . import kernels as K  # noqa: N812

    out = []

    def add(name, fn, dtype, config, pointers, ints, constexprs, dot_operand):
        sig = {p: "*" + t for p, t in pointers.items()}
        sig.update({i: "i32" for i in ints})
        consts = dict(constexprs, **meta(config), PRECISION=_dot_precision(dot_operand),
                      ACC_FP64=dtype == "fp64", UPCAST=False)
        sig.update({c: "constexpr" for c in consts})
        order = fn.arg_names
        out.append(dict(name=name, fn=fn, signature={a: sig[a] for a in order}, constexprs=consts,
                        num_warps=config["num_warps"], num_stages=config["num_stages"], dtype=dtype,
                        tensor_cores=dot_operand in ("fp16", "bf16")))

    for dtype in DTYPES:
        t = _TT[dtype]
        table = CONFIGS_FP64 if dtype == "fp64" else CONFIGS
        gs = "fp64" if dtype == "fp64" else "fp32"  # grad_s storage
        strides = lambda *names: [f"s{n}_{d}" for n in names for d in "nchw"]  # noqa: E731
        for i, config in enumerate(table["squeeze"]):
            ints = ["P", "H", "W", "K", "C"] + strides("a")[:4] + ["sw_c", "sw_k"] + strides("y")
            add(f"squeeze.fwd.c{i}", K.squeeze_kernel, dtype, config,
                dict(a_ptr=t, w_ptr=t, b_ptr=t, y_ptr=t), ints, dict(HAS_BIAS=True, RELU=True), t)
            add(f"squeeze.grad_x.c{i}", K.squeeze_kernel, dtype, config,
                dict(a_ptr=gs, w_ptr=t, b_ptr=t, y_ptr=t), ints, dict(HAS_BIAS=False, RELU=False), gs)
        for i, config in enumerate(table["expand"]):
            ints = ["P", "H", "W", "S", "E1", "E3", "ss_n", "ss_c", "ss_h", "ss_w", "sw1_e", "sw1_k", "sw3_e",
                    "sw3_k", "sw3_h", "sw3_w", "sy_n", "sy_c", "sy_h", "sy_w"]
            add(f"expand.c{i}", K.expand_kernel, dtype, config,
                {p: t for p in ("s_ptr", "w1_ptr", "b1_ptr", "w3_ptr", "b3_ptr", "y1_ptr", "y3_ptr")}, ints, {}, t)
        for i, config in enumerate(table["grad_s"]):
            ints = ["P", "H", "W", "S", "E1", "E3"] + strides("g", "o", "s") + \
                ["sw1_e", "sw1_k", "sw3_e", "sw3_k", "sw3_h", "sw3_w"] + strides("gs")
            ptrs = {p: t for p in ("g1_ptr", "g3_ptr", "o1_ptr", "o3_ptr", "s_ptr", "w1_ptr", "w3_ptr")}
            add(f"grad_s.c{i}", K.grad_s_kernel, dtype, config, dict(ptrs, gs_ptr=gs), ints, {}, t)
        for i, config in enumerate(table["wgrad"]):
            ints = ["P", "H", "W", "E", "K", "CHUNK"] + strides("g", "m", "i")
            acc = "fp64" if dtype == "fp64" else "fp32"
            for mode, g, ksize, masked in (("w1", t, 1, True), ("w3", t, 3, True), ("wsq", gs, 1, False)):
                add(f"wgrad.{mode}.c{i}", K.wgrad_kernel, dtype, config,
                    dict(g_ptr=g, m_ptr=t, i_ptr=t, pw_ptr=acc, pb_ptr=acc), ints,
                    dict(KSIZE=ksize, MASKED=masked), g)
    return out
