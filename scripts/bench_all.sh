#!/usr/bin/env bash
# Runs every scripts/bench_*.py one after another (never in parallel), each with the command that
# README's performance rows quote, and writes runs/bench/benchmarks.json (one JSON record per
# benchmark, with the load it ran under) plus runs/bench/benchmarks.md (one Markdown table).
# Run it with nothing else on the machine: before each benchmark it waits (up to 5 minutes) for
# the 1-minute load to fall to 1.0 (the previous benchmark's own load lingers in the average,
# and a benchmark's start-up adds some), and every record says whether it ran loaded (> 1.5).
#
#   scripts/bench_all.sh                 # all of them
#   scripts/bench_all.sh sinkhorn apw    # a subset, by name
#   BENCH_OUT=/tmp/b scripts/bench_all.sh
#   BENCH_APPEND=1 scripts/bench_all.sh sinkhorn   # add to the existing benchmarks.json
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
out=${BENCH_OUT:-runs/bench}
mkdir -p "$out"
json="$out/benchmarks.json"
[ -n "${BENCH_APPEND:-}" ] || : > "$json"
export JAXLAB_BENCH_JSON="$PWD/$json" JAXLAB_NO_PROGRESS=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cores=$(nproc)

declare -A CMD=(
  [sinkhorn]="scripts/bench_sinkhorn.py --reps 5"
  [apw]="scripts/bench_apw.py --iterations 10 --sweep-iterations 5 --sklearn-sweep-runs 2"
  [self_consuming]="scripts/bench_self_consuming.py --seeds 100 --modes binned"
  [dqs]="scripts/bench_dqs.py --loop-setups 20 --batch 512"
  [patching]="scripts/bench_patching.py --prompts 8 --heads 6 --threads $cores"
  [decoder]="scripts/bench_decoder.py --batch 2 --prompt-len 24 --new 8 --repeats 3 --threads $cores"
  [spt]="scripts/bench_spt.py --steps 3"
  [federated]="scripts/bench_federated.py --models mlp,cnn --clients 10,100 --repeats 2"
  [federated_sweep]="scripts/bench_federated.py --sweep"
  [fedimpro]="scripts/bench_fedimpro.py"
  [fedfed]="scripts/bench_fedfed.py --reps 3"
  [twin_sight]="scripts/bench_twin_sight.py --reps 3"
  [federated_scale]="scripts/bench_federated.py --scale --cpu-devices 8 --scale-tables sharded,host-disk --repeats 2"
  [lvlm]="scripts/bench_lvlm.py --batch 8 --new 64 --reps 3 --threads $cores"
)
ORDER=(sinkhorn apw self_consuming dqs patching decoder spt federated federated_sweep fedimpro fedfed twin_sight lvlm federated_scale)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${ORDER[@]}")
for n in "${names[@]}"; do
  if [ -z "${CMD[$n]:-}" ]; then
    echo "bench_all: no benchmark '$n'; available: ${ORDER[*]}" >&2
    exit 2
  fi
done
for n in "${names[@]}"; do
  .venv/bin/python -m jaxlab.core.bench wait 300 1.0 >/dev/null
  echo "=== $n: .venv/bin/python ${CMD[$n]}"
  # shellcheck disable=SC2086
  if ! .venv/bin/python ${CMD[$n]} 2>&1 | tee "$out/$n.log"; then
    echo "bench_all: $n failed (see $out/$n.log); going on" >&2
  fi
done
.venv/bin/python -m jaxlab.core.bench table "$json" > "$out/benchmarks.md"
echo "=== wrote $json and $out/benchmarks.md ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
cat "$out/benchmarks.md"
