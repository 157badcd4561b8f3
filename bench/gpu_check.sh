#!/usr/bin/env bash
# One command for a lent GPU machine (no network): build, test, sanitize, benchmark; all within ~8 minutes.
#
#   bash bench/gpu_check.sh [OUTDIR]        on the GPU machine (OUTDIR: default $OUT, else bench/results/gpu_check)
#   bash bench/gpu_check.sh --dry-run [OUTDIR]   here/CI, on CPU: checks the script and runs every step tiny
#
# Steps (each under `timeout`, each logged to OUTDIR/gpu_check.log, a short table printed last):
#   1 info      python -m fusedfire info
#   2 build     the CUDA/C++ extension of csrc/ against the torch found here (skipped when csrc/ has no sources)
#   3 tests     python -m pytest tests -x -q
#   4 sanitize  compute-sanitizer memcheck, racecheck, synccheck on bench/sanitize_fire.py (skipped without
#               the tool or without a fused CUDA backend)
#   5 bench     bench/report.py --subset quick: OUTDIR/<device>.csv, .md, .png (the headline table)
# Outputs stay few (the device tool returns at most 8 files): gpu_check.log, <device>.csv/.md/.png.
# Environment: PYTHON (default: .venv/bin/python if present, else python3), FIRE_CHECK_BUDGET (seconds, default
# 480), FIRE_SANITIZE_KERNELS (a compute-sanitizer --kernel-name filter, e.g. kns=expand; default: all kernels).
set -uo pipefail

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi
if [ $DRY = 1 ]; then OUTDIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
else OUTDIR=${1:-${OUT:-bench/results/gpu_check}}
fi
mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/gpu_check.log
: >"$LOG"
BUDGET=${FIRE_CHECK_BUDGET:-480}
export PYTHONUNBUFFERED=1
SUMMARY=()
FAILED=0

log() { echo "$*" | tee -a "$LOG"; }

# step NAME LIMIT_S RESERVE_S CMD...: runs CMD under timeout min(LIMIT, time left - RESERVE), output to the log.
step() {
  local name=$1 limit=$2 reserve=$3; shift 3
  local left=$((BUDGET - SECONDS - reserve))
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  if [ "$limit" -lt 10 ]; then
    log "=== $name: SKIPPED (out of time: ${SECONDS}s of ${BUDGET}s used)"
    SUMMARY+=("$(printf '%-22s %-8s %5ss' "$name" SKIP 0)")
    return 0
  fi
  log "=== $name (limit ${limit}s): $*"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  local status=PASS
  if [ $rc = 124 ] || [ $rc = 137 ]; then status=TIMEOUT; FAILED=1
  elif [ $rc != 0 ]; then status="FAIL($rc)"; FAILED=1
  fi
  log "=== $name: $status in $((SECONDS - t0))s"
  SUMMARY+=("$(printf '%-22s %-8s %5ss' "$name" "$status" $((SECONDS - t0)))")
}

skip() { log "=== $1: SKIPPED ($2)"; SUMMARY+=("$(printf '%-22s %-8s %5ss  %s' "$1" SKIP 0 "$2")"); }

log "gpu_check: $(date -Is) root=$ROOT python=$PY out=$OUTDIR dry_run=$DRY budget=${BUDGET}s"

# ---- 0 the script itself (dry run): syntax, shellcheck, Python sources compile
if [ $DRY = 1 ]; then
  step "self:bash-n" 20 0 bash -n "${BASH_SOURCE[0]}"
  if command -v shellcheck >/dev/null; then step "self:shellcheck" 30 0 shellcheck "${BASH_SOURCE[0]}"
  else skip "self:shellcheck" "shellcheck not installed"
  fi
  step "self:py_compile" 30 0 "$PY" -m py_compile bench/conftest.py bench/firebench.py bench/report.py bench/runner.py \
    bench/stats.py bench/render.py bench/sanitize_fire.py bench/test_fire.py fusedfire/__main__.py fusedfire/roofline.py
fi

# ---- 1 info
step info 60 0 "$PY" -m fusedfire info

# ---- 2 build (the extension of csrc/, if any, against the torch installed here)
if compgen -G "csrc/*.cu" >/dev/null || compgen -G "csrc/*.cpp" >/dev/null; then
  if [ $DRY = 1 ]; then
    step build:check 30 0 "$PY" -c "import setuptools, torch.utils.cpp_extension; print('build: setup.py build_ext --inplace would run')"
  else
    if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
      TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null)
      export TORCH_CUDA_ARCH_LIST
    fi
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}
    step build 240 200 "$PY" setup.py build_ext --inplace
  fi
else
  skip build "csrc/ has no .cu/.cpp sources"
fi

# ---- 3 tests
if [ $DRY = 1 ]; then
  step tests:collect 120 0 "$PY" -m pytest tests -q --collect-only -p no:cacheprovider
else
  step tests 150 180 "$PY" -m pytest tests -x -q -p no:cacheprovider
fi

# ---- 4 compute-sanitizer on a small Fire forward + backward
if [ $DRY = 1 ]; then
  step sanitize:script 120 0 env TRITON_INTERPRET=1 "$PY" bench/sanitize_fire.py --device cpu --tiny
  if command -v compute-sanitizer >/dev/null; then skip sanitize "dry run"; else skip sanitize "compute-sanitizer not installed"; fi
elif ! command -v compute-sanitizer >/dev/null; then
  skip sanitize "compute-sanitizer not installed"
elif ! "$PY" -c "import fusedfire, sys; sys.exit(0 if set(fusedfire.backends('cuda')) - {'reference'} else 1)" >/dev/null 2>&1; then
  skip sanitize "no fused CUDA backend"
else
  FILTER=()
  if [ -n "${FIRE_SANITIZE_KERNELS:-}" ]; then FILTER=(--kernel-name "$FIRE_SANITIZE_KERNELS"); fi
  # NOTE: without the caching allocator every tensor is its own cudaMalloc, so memcheck sees overruns that
  # would otherwise land inside a pooled block.
  step sanitize:memcheck 75 170 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck \
    --error-exitcode 1 --leak-check no "${FILTER[@]}" "$PY" bench/sanitize_fire.py
  step sanitize:racecheck 75 170 compute-sanitizer --tool racecheck --error-exitcode 1 "${FILTER[@]}" \
    "$PY" bench/sanitize_fire.py
  step sanitize:synccheck 60 170 compute-sanitizer --tool synccheck --error-exitcode 1 "${FILTER[@]}" \
    "$PY" bench/sanitize_fire.py
fi

# ---- 5 the benchmark subset behind the headline table
if [ $DRY = 1 ]; then
  # NOTE: torch.compile is left out here (CI's smoke run, pytest bench/ -m smoke, compiles): the dry run checks
  # the report pipeline, and two CPU compiles would double its time.
  step bench 240 0 "$PY" bench/report.py --subset smoke --tiny --device cpu --providers eager,fusedfire-reference \
    --out "$OUTDIR"
else
  # report.py stops its benchmarks at --time-limit and still writes the rows it finished.
  left=$((BUDGET - SECONDS - 25))
  step bench $((left > 10 ? left : 10)) 15 "$PY" bench/report.py --subset quick --budget 0.3 \
    --time-limit $((left > 40 ? left - 30 : 10)) --out "$OUTDIR"
fi

# ---- the short table, last
log ""
log "gpu_check summary ($(date -Is), ${SECONDS}s, log: $LOG)"
for line in "${SUMMARY[@]}"; do log "  $line"; done
for csv in "$OUTDIR"/*.csv; do
  [ -e "$csv" ] || continue
  log ""
  "$PY" bench/report.py --from-csv "$csv" --summary 2>&1 | tee -a "$LOG"
done
ls -1 "$OUTDIR" | tee -a "$LOG"
exit $FAILED
