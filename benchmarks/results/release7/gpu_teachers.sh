#!/usr/bin/env bash
# Issue [3/5] stage 0 on a lent GPU: the teachers of teachers.sh (the same recipe, teacher.yaml)
# with 4x the images per step, each stopped at LIMIT
# seconds if it has not finished, exported from its last checkpoint and brought back under
# $OUT. Prepare here with gpu_pack.sh, then one device call:
#   run(command="bash benchmarks/results/release7/gpu_teachers.sh", carry=[".gpu_data"], timeout_s=600)
# Back here: copy $OUT/teacher_KIND.{json,safetensors} to ~/.cache/uniremoval/release7/models/
# and run eval_teacher.sh. Whole command: KINDS x (LIMIT + ~25 s start and export) < 600 s.
# env: KINDS (blur rain: haze has a CPU teacher), RAIN (extra rain parameters, default the r6mix
#      arm's "p_r6_streaks: 0.5"; empty for plain r7), BATCH (32), WORKERS (14), LIMIT (230 s a
#      kind), PROBE (45 s), AMP (bf16), DEVICE (cuda)
set -u -o pipefail
M=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${OUT:-$M/gpu_out}; BATCH=${BATCH:-32}; WORKERS=${WORKERS:-14}
LIMIT=${LIMIT:-230}; PROBE=${PROBE:-45}; AMP=${AMP:-bf16}; DEVICE=${DEVICE:-cuda}; RUNS=${RUNS:-/tmp/release7}
D=${DATA:-$M/.gpu_data}; RAIN=${RAIN-p_r6_streaks: 0.5}
export PYTHONPATH="$M/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
log=$OUT/gpu_teachers.log
{ date; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "layers: $(ls "$D/garg06" | wc -l), photos: $(ls "$D/clean/train" | wc -l)"; } | tee -a "$log"
# The step count is fitted to the time: a probe run (the same run folder, a schedule too long to
# decay) measures images/s for PROBE seconds, then the run resumes with run.steps set so that its
# cosine schedule ends at LIMIT; a teacher stopped mid-schedule (high learning rate) is worse.
train() {  # kind, steps, seconds, extra overrides...
  local kind=$1 steps=$2 secs=$3; shift 3
  timeout --signal=INT --kill-after=20 "$secs" "$py" -m uniremoval train transfer \
    --config "$M/benchmarks/results/release7/teacher.yaml" \
    --set run.steps=$steps --set run.name=teacher-$kind --set "kinds=[$kind]" \
    --set run.device=$DEVICE --set run.threads=null --set run.amp=$AMP \
    --set data.images_per_step=$BATCH --set data.workers=$WORKERS \
    --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/train" \
    --set "data.degrade={kinds: {rain: {streak_dir: $D/garg06${RAIN:+, $RAIN}}}}" \
    --set "model.init=$M/src/uniremoval/models/release6.json" --set run.out_dir=$RUNS/teacher_$kind "$@"
}
for kind in ${KINDS:-blur rain}; do
  run=$RUNS/teacher_$kind; klog=$RUNS/teacher_$kind.log
  t0=$(date +%s)
  train "$kind" 100000 "$PROBE" --set run.log_every=10 --set run.ckpt_every=10 > "$klog" 2>&1
  echo "$kind: probe exit $? after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  at=$(grep -oE "^step [0-9]+" "$klog" | tail -1 | cut -d' ' -f2)
  ips=$(grep -E "^step " "$klog" | tail -3 | grep -oE "images_per_s [0-9.]+" | cut -d' ' -f2 | sort -g | sed -n 2p)
  if [ -z "$at" ] || [ -z "$ips" ] || [ ! -f "$run/teacher-$kind/ckpt/last.pt" ]; then
    cat "$klog" >> "$log"; tail -30 "$klog"; echo "$kind: probe failed, stopping" | tee -a "$log"; exit 1
  fi
  left=$(( LIMIT - ($(date +%s) - t0) - 20 ))
  steps=$(awk -v a="$at" -v i="$ips" -v l="$left" -v b="$BATCH" 'BEGIN { s = a + int(i * l / b); print (s > a + 50 ? s : a + 50) }')
  echo "$kind: probe reached step $at at $ips images/s; resuming to $steps steps in $left s" | tee -a "$log"
  train "$kind" "$steps" "$(( left + 15 ))" --set run.ckpt_every=50 >> "$klog" 2>&1
  echo "$kind: training exit $? after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  cat "$klog" >> "$log"
  # The last checkpoint (every 50 steps, and the final step) as the teacher, named for its kind.
  if "$py" -m uniremoval train export "$run/teacher-$kind" -o "$OUT/teacher_$kind.json" >> "$log" 2>&1; then
    (cd "$OUT" && sha256sum teacher_$kind.safetensors teacher_$kind.json) | tee -a "$log"
  else
    echo "$kind: no checkpoint to export" | tee -a "$log"
  fi
  grep -E "^step " "$klog" | tail -2
done
ls -l "$OUT"
