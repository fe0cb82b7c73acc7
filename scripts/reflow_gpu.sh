#!/usr/bin/env bash
# Make flow-class-reflow (#23, docs/reflow.md) on one CUDA GPU inside a time budget:
#   1. the teacher's pairs: python -m engine reflow-pairs (stops making more at PAIRS_S seconds);
#   2. a short probe of every variant's training speed, all at once (the GPU is shared);
#   3. the variants, side by side, with as many epochs as fit the rest of DEADLINE_S;
#   4. each finished run packed into $GPU_OUT as VARIANT.tgz (weights, manifest, loss log).
#
#   GPU_OUT=/some/dir DEADLINE_S=480 scripts/reflow_gpu.sh
#
# The shipped variant is "half" (t_zero_share 0.5); "uniform" (plain reflow, Liu et al.) and
# "zero" (t = 0 only: one-step distillation) are the ablation. Try it on a CPU with
#   DEVICE=cpu COUNT=256 PAIR_STEPS=2 PAIRS_S=60 DEADLINE_S=200 BATCH=64 GPU_OUT=/tmp/o scripts/reflow_gpu.sh
set -u
cd "$(dirname "$0")/.."
out=${GPU_OUT:?set GPU_OUT to a folder for the packed results}
deadline=${DEADLINE_S:-480}
device=${DEVICE:-cuda}
count=${COUNT:-100000}
pair_steps=${PAIR_STEPS:-32}
pairs_s=${PAIRS_S:-150}
batch=${BATCH:-512}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
mkdir -p "$out"
work=cache/reflow
mkdir -p "$work"
if [ "$device" = cuda ]; then
  nvidia-smi -L || exit 1
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
fi

echo "== pairs (at most $pairs_s s) at $(elapsed) s"
$py -m engine reflow-pairs --teacher flow-class --count "$count" --steps "$pair_steps" --batch 4096 \
  --device "$device" --max-seconds "$pairs_s" --out "$work/flow-class-pairs.safetensors" 2>&1 \
  | tr '\r' '\n' | grep -v "pair/s]$" || exit 1
[ -f "$work/flow-class-pairs.safetensors" ] || { echo "== no pairs"; exit 1; }
n=$($py -c "from engine.reflow import load_pairs; print(len(load_pairs('$work/flow-class-pairs.safetensors')[0]['labels']))")
echo "== $n pairs at $(elapsed) s"

declare -A share=([half]=0.5 [uniform]=0.0 [zero]=1.0)
variants=${VARIANTS:-"half uniform zero"}
train() {  # train VARIANT DIR EPOCHS SECONDS [ARGS...]: SIGTERM at SECONDS (a checkpoint, "cancelled")
  local v=$1 dir=$2 epochs=$3 limit=$4; shift 4
  timeout -s TERM "$limit" $py -m engine train flow-class-reflow --pairs "$work/flow-class-pairs.safetensors" --batch-size "$batch" \
    --t-zero-share "${share[$v]}" --epochs "$epochs" --device "$device" --threads "${THREADS:-4}" --no-progress \
    --out "$dir" "$@"
}

echo "== probe at $(elapsed) s"
probe_steps=${PROBE_STEPS:-80}
pids=()
for v in $variants; do
  rm -rf "/tmp/probe-$v"
  train "$v" "/tmp/probe-$v" 1000 120 --max-steps "$probe_steps" > "/tmp/probe-$v.out" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# steps per second once warm (steps 20..80 of the log), the slowest variant's
rate=$($py - "$probe_steps" $variants <<'EOF'
import json, sys
steps, rates = int(sys.argv[1]), []
for v in sys.argv[2:]:
    log = [json.loads(line) for line in open(f"/tmp/probe-{v}/log.jsonl")]
    a, b = log[steps // 4], log[steps - 1]
    rates.append((b["step"] - a["step"]) / max(b["time"] - a["time"], 1e-6))
print(f"{min(rates):.3f}")
EOF
) || { echo "== probe failed"; cat /tmp/probe-*.out; exit 1; }
spe=$(( n / batch ))
left=$(( deadline - $(elapsed) - 45 ))  # 45 s for start-up and packing
epochs=$($py -c "print(max(1, int(0.85 * $left * $rate / $spe)))")
echo "== $rate steps/s per run with all variants at once; $spe steps an epoch; $left s left: $epochs epochs"

pids=()
for v in $variants; do
  rm -rf "$work/$v"
  train "$v" "$work/$v" "$epochs" $(( deadline - $(elapsed) - 20 )) > "$work/$v.out" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "== trained at $(elapsed) s"
for v in $variants; do
  echo "-- $v"; tail -2 "$work/$v.out"
  [ -f "$work/$v/model.safetensors" ] && tar czf "$out/$v.tgz" -C "$work" \
    "$v/model.safetensors" "$v/manifest.json" "$v/log.jsonl"
done
$py -c "import json; from engine.checkpoints import load_tensors; print(json.dumps(load_tensors('$work/flow-class-pairs.safetensors')[1]))" \
  > "$out/pairs_meta.json"
ls -la "$out"
echo "== done at $(elapsed) s"
