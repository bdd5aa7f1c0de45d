#!/usr/bin/env bash
# One command for a machine with a GPU or TPU: runs every scripts/bench_*.py at accelerator size
# (larger batches, more clients, more prompts) within a total budget of 8 minutes and writes ONE
# JSON file with every benchmark's record, the device each ran on and its wall time.
#
#   scripts/accelerator_check.sh                    # accelerator sizes; -> runs/accel/accelerator_check.json
#   scripts/accelerator_check.sh --cpu-smoke        # tiny sizes on CPU (checks the wiring; budget 25 min)
#   ACCEL_OUT=/tmp/a ACCEL_BUDGET_S=480 scripts/accelerator_check.sh
#
# Each benchmark gets at most its share of the remaining budget (`timeout`); one that fails or
# runs out of time is recorded with its exit status and the check goes on. The JSON says which
# device (jax.devices()) gave every number.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=accel
[ "${1:-}" = "--cpu-smoke" ] && mode=cpu-smoke
py=${PYTHON:-.venv/bin/python}
out=${ACCEL_OUT:-runs/accel}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# 8 minutes on an accelerator; a CPU smoke run only checks the wiring and may take longer
if [ "$mode" = cpu-smoke ]; then budget=${ACCEL_BUDGET_S:-1500}; else budget=${ACCEL_BUDGET_S:-480}; fi
records="$out/records.jsonl"
: > "$records"
export JAXLAB_BENCH_JSON="$records" JAXLAB_NO_PROGRESS=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$mode" = cpu-smoke ]; then
  export JAX_PLATFORMS=cpu
fi

declare -A ACCEL=(
  [sinkhorn]="scripts/bench_sinkhorn.py --batch 256 --prompts 8 --reps 3"
  [apw]="scripts/bench_apw.py --iterations 10 --sweep-iterations 5 --sweep-size 64 --sklearn-sweep-runs 2"
  [self_consuming]="scripts/bench_self_consuming.py --seeds 1000 --modes binned"
  [dqs]="scripts/bench_dqs.py --loop-setups 20 --batch 8192"
  [patching]="scripts/bench_patching.py --prompts 64 --heads 6"
  [decoder]="scripts/bench_decoder.py --batch 32 --prompt-len 48 --new 32 --repeats 3"
  [decoder_mesh]="scripts/bench_decoder.py --mesh data=2,model=4 --batch 16 --prompt-len 48 --new 16 --repeats 2"
  [spt]="scripts/bench_spt.py --steps 3 --batch 32"
  [federated]="scripts/bench_federated.py --models mlp,cnn --clients 100,1000 --repeats 1"
  [fedimpro]="scripts/bench_fedimpro.py"
)
declare -A SMOKE=(
  [sinkhorn]="scripts/bench_sinkhorn.py --batch 4 --prompts 2 --reps 1 --calls 2 --no-ott"
  [apw]="scripts/bench_apw.py --iterations 2 --sweep-iterations 1 --sweep-size 2 --sklearn-sweep-runs 1 --reps 1"
  [self_consuming]="scripts/bench_self_consuming.py --seeds 4 --grid 64 --modes binned --reps 1 --check-seeds 1"
  [dqs]="scripts/bench_dqs.py --photons 4 --loop-setups 2 --batch 16"
  [patching]="scripts/bench_patching.py --prompts 2 --heads 2"
  [decoder]="scripts/bench_decoder.py --batch 2 --prompt-len 12 --new 4 --repeats 1"
  [decoder_mesh]="scripts/bench_decoder.py --mesh data=2,model=4 --batch 2 --prompt-len 12 --new 4 --repeats 1"
  [spt]="scripts/bench_spt.py --steps 1 --batch 2"
  [federated]="scripts/bench_federated.py --models mlp --clients 10 --repeats 1 --engines vmap"
  [fedimpro]="scripts/bench_fedimpro.py"
)
ORDER=(decoder decoder_mesh patching spt sinkhorn dqs self_consuming apw federated fedimpro)
# every scripts/bench_*.py runs: one without an entry here runs with its own defaults
for f in scripts/bench_*.py; do
  n=$(basename "$f" .py); n=${n#bench_}
  if [ -z "${ACCEL[$n]:-}" ]; then
    echo "accelerator_check: scripts/bench_$n.py has no entry here; running it with its defaults" >&2
    ACCEL[$n]="scripts/bench_$n.py"; SMOKE[$n]="scripts/bench_$n.py"; ORDER+=("$n")
  fi
done

start=$(date +%s)
status="$out/status.jsonl"
: > "$status"
left_names=${#ORDER[@]}
for n in "${ORDER[@]}"; do
  if [ "$mode" = cpu-smoke ]; then cmd=${SMOKE[$n]}; else cmd=${ACCEL[$n]}; fi
  now=$(date +%s)
  remaining=$(( budget - (now - start) ))
  if [ "$remaining" -le 5 ]; then
    echo "{\"bench\": \"$n\", \"rc\": null, \"skipped\": \"budget of ${budget}s spent\"}" >> "$status"
    left_names=$((left_names - 1))
    continue
  fi
  share=$(( remaining / left_names ))
  [ "$share" -lt 30 ] && share=$remaining
  echo "=== $n (<= ${share}s): $py $cmd"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  timeout "$share" $py $cmd > "$out/$n.log" 2>&1
  rc=$?
  echo "{\"bench\": \"$n\", \"rc\": $rc, \"wall_s\": $(( $(date +%s) - t0 )), \"cmd\": \"$cmd\"}" >> "$status"
  [ $rc -eq 0 ] || echo "accelerator_check: $n exited $rc (see $out/$n.log)" >&2
  left_names=$((left_names - 1))
done

$py - "$records" "$status" "$out/accelerator_check.json" "$mode" "$budget" "$start" <<'EOF'
import json, sys, time
records_path, status_path, out_path, mode, budget, start = sys.argv[1:7]
read = lambda p: [json.loads(l) for l in open(p) if l.strip()]
import jax
devs = jax.devices()
doc = {"mode": mode, "budget_s": int(budget), "wall_s": round(time.time() - int(start), 1),
       "devices": f"{len(devs)} x {devs[0].device_kind} ({devs[0].platform})",
       "runs": read(status_path), "records": read(records_path)}
doc["headline"] = [{"bench": r["bench"], "what": row["what"], "ratio": row.get("ratio"),
                    "device": r.get("jax_devices")}
                   for r in doc["records"] for row in r["rows"]]
json.dump(doc, open(out_path, "w"), indent=1, default=str)
ok = sum(1 for r in doc["runs"] if r.get("rc") == 0)
print(f"accelerator_check: {ok}/{len(doc['runs'])} benchmarks ran, {len(doc['headline'])} numbers "
      f"on {doc['devices']} in {doc['wall_s']}s -> {out_path}")
EOF
