"""Ahead-of-time compilation of every Triton kernel variant (kernel × dtype × config, fusedfire.triton.variants())
for sm_80 and sm_90, with no GPU: compile errors fail, register spills fail, and fp16/bf16 dots must become tensor
core instructions. `pytest -s` prints the table of registers, stack (spill) bytes and shared memory.

The compiles run in subprocesses without TRITON_INTERPRET (conftest sets it for this session, and interpreted
jit functions cannot be compiled); Triton's on-disk cache makes reruns fast (a cold run compiles ~170 kernels).
Registers and stack come from `cuobjdump -res-usage` on the cubin Triton built with its bundled ptxas; a variant
with a stack frame is re-run through `ptxas -v` for its spill-store/load bytes.
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

ARCHS = (80, 90)
WORKERS = 2  # this machine has 2 cores


def _bin(name):
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def _compile(variant, arch):
    """One variant for sm_<arch>: a dict of its resource usage and tensor-core instructions, or its error."""
    import triton
    from triton.backends.compiler import GPUTarget

    row = dict(name=variant["name"], dtype=variant["dtype"], arch=arch, tensor_cores=variant["tensor_cores"])
    try:
        src = triton.compiler.ASTSource(variant["fn"], signature=variant["signature"],
                                        constexprs=variant["constexprs"])
        kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                                options=dict(num_warps=variant["num_warps"], num_stages=variant["num_stages"]))
    except Exception as e:  # noqa: BLE001  (reported and failed by the test)
        return dict(row, error=f"{type(e).__name__}: {e}"[-3000:])
    ptx = kernel.asm["ptx"]
    row.update(mma="mma.sync" in ptx or "mma.aligned" in ptx, wgmma="wgmma" in ptx,
               shared=kernel.metadata.shared)
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        with open(cubin, "wb") as f:
            f.write(kernel.asm["cubin"])
        usage = subprocess.run([_bin("cuobjdump"), "-res-usage", cubin], capture_output=True, text=True,
                               check=True).stdout
        fields = dict(kv.split(":") for line in usage.splitlines() if "REG:" in line for kv in line.split())
        row.update(regs=int(fields["REG"]), stack=int(fields["STACK"]), spill_stores=0, spill_loads=0)
        if row["stack"]:
            path = os.path.join(tmp, "k.ptx")
            with open(path, "w") as f:
                f.write(ptx)
            log = subprocess.run([_bin("ptxas"), "-v", f"--gpu-name=sm_{arch}{'a' if arch == 90 else ''}", path,
                                  "-o", os.devnull], capture_output=True, text=True).stderr
            for line in log.splitlines():
                if "spill stores" in line:
                    words = line.replace(",", "").split()
                    row.update(spill_stores=int(words[words.index("spill") - 2]),
                               spill_loads=int(words[words.index("spill", words.index("spill") + 1) - 2]))
    return row


def _worker(index, count):
    """Entry point of one subprocess: compiles its share of (variant, arch) pairs, one JSON line each."""
    from fusedfire.triton import INTERPRETED, variants
    assert not INTERPRETED
    jobs = [(v, arch) for v in variants() for arch in ARCHS]
    for v, arch in jobs[index::count]:
        print(json.dumps(_compile(v, arch)), flush=True)


@pytest.fixture(scope="module")
def rows():
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), str(i), str(WORKERS)], env=env, cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(WORKERS)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=3600)
        assert p.returncode == 0, f"AOT worker failed:\n{stderr[-5000:]}"
        out += [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    out.sort(key=lambda r: (r["name"].split(".")[0], r["name"], r["dtype"], r["arch"]))
    _print_table(out)
    return out


def _print_table(rows):
    print(f"\n{'variant':<22}{'dtype':<6}{'sm':>4}{'regs':>6}{'stack':>7}{'spill st/ld':>13}{'smem':>8}  tensor cores")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<22}{r['dtype']:<6}{r['arch']:>4}  ERROR {r['error'][:80]}")
            continue
        tc = "wgmma" if r["wgmma"] else "mma" if r["mma"] else "-"
        print(f"{r['name']:<22}{r['dtype']:<6}{r['arch']:>4}{r['regs']:>6}{r['stack']:>7}"
              f"{r['spill_stores']:>7}/{r['spill_loads']:<5}{r['shared']:>8}  {tc}")


def test_every_variant_listed(rows):
    from fusedfire.triton import CONFIGS
    kernels = {r["name"].split(".")[0] for r in rows}
    assert kernels == set(CONFIGS), kernels
    assert {r["dtype"] for r in rows} == {"fp32", "fp16", "bf16", "fp64"}
    assert {r["arch"] for r in rows} == set(ARCHS)
    for name, configs in CONFIGS.items():
        assert {r["name"].rsplit(".c", 1)[1] for r in rows if r["name"].startswith(name)} == \
            {str(i) for i in range(len(configs))}


def test_compiles(rows):
    errors = [f"{r['name']} {r['dtype']} sm_{r['arch']}: {r['error']}" for r in rows if "error" in r]
    assert not errors, "\n\n".join(errors)


def test_no_spills(rows):
    spilled = [(r["name"], r["dtype"], r["arch"], r["regs"], r["stack"], r["spill_stores"]) for r in rows
               if "error" not in r and (r["stack"] or r["spill_stores"] or r["spill_loads"])]
    assert not spilled, f"register spills (name, dtype, sm, regs, stack bytes, spill-store bytes): {spilled}"


def test_tensor_cores(rows):
    """fp16/bf16 dots use mma (sm_80) or wgmma/mma (sm_90); fp32 ones too, as tf32."""
    missing = [(r["name"], r["dtype"], r["arch"]) for r in rows
               if "error" not in r and r["tensor_cores"] and not (r["mma"] or (r["arch"] == 90 and r["wgmma"]))]
    assert not missing, f"no tensor-core instruction in the PTX of: {missing}"


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]))
