#!/usr/bin/env bash
# The owed GPU figures of docs/results.md in one command, on a machine with CUDA:
#   bash benchmarks/gpu_figures.sh OUTDIR [PYTHON]
# Each run gets a wall-clock limit (seconds, below) so that one slow run cannot eat the
# others' time (a run stopped at its limit still writes its partial report); OUTDIR/<name>/
# holds its run folder, OUTDIR/log.txt everything printed. docs/results.md gives what it
# measured on an H200 and the limits of that lease.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_figures.sh OUTDIR [PYTHON]}
python=${2:-python}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log="$out/log.txt"

step() {  # step NAME LIMIT COMMAND...: run it, log its status and wall time
    local name=$1 limit=$2
    shift 2
    echo "== $name: $* (limit ${limit} s)" | tee -a "$log"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "== $name: exit $? after $((SECONDS - start)) s" | tee -a "$log"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$python" -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name(0))"
} >>"$log" 2>&1

# first (issue 20's bar): aten operations (launches) per Adam step and the wall time of
# 3000 steps, the autograd step against the fused one, eager and as CUDA graphs, each size
step step-ops 900 "$python" -m benchmarks.step_ops --device cuda --sizes 64,784,3025 \
    --modes autograd,fused,graph --out "$out/step_ops"
step digits 600 "$python" -m linvae.compare --device cuda --out "$out/digits"
step patches 900 "$python" -m linvae.compare --device cuda --dataset patches --n 60000 \
    --out "$out/patches"
step d3025 300 "$python" -m linvae.compare --device cuda --dataset patches --patch-size 55 \
    --n 20000 --latent 64 --baselines 0 --out "$out/d3025"
step pytest-gpu 300 "$python" -m pytest -m gpu -q -p no:cacheprovider
# issue 20: the ten β-VAEs as one batched bank (its polish reads nothing to the host)
step bank 300 "$python" -m linvae.compare --device cuda --baseline-form bank --out "$out/bank"
# issue 18: the sampled route's step (the pair in closed form against its two draws) and
# its training at d ≈ 10⁴ (100×100 patches)
step sampled-step 120 "$python" -m benchmarks.sampled_step --device cuda \
    --sizes 784,3025,10000 --out "$out/sampled_step"
step sampled-1e4 600 "$python" -m benchmarks.sampled_recipe --device cuda --dataset patches \
    --patch-size 100 --n 20000 --latent 64 --rows default --out "$out/sampled_1e4"
# issue 18: the sampled route against the exact route at d = 3025, time to the same excess
step race-3025 600 "$python" -m benchmarks.time_to_excess --device cuda --dataset patches \
    --patch-size 55 --n 20000 --latent 64 --sampled-steps 4000,8000 \
    --polish-budgets 0,250,500,1500 --out "$out/time_to_excess"
