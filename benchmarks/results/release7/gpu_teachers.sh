#!/usr/bin/env bash
# Issue [3/5] stage 0 on a lent GPU: the three teachers of teachers.sh (same network, warm start,
# r7 synthesis, loss and schedule shape) with 4x the images per step, each stopped at LIMIT
# seconds if it has not finished, exported from its last checkpoint and brought back under
# $OUT. Prepare here with gpu_pack.sh, then one device call:
#   run(command="bash benchmarks/results/release7/gpu_teachers.sh", carry=[".gpu_data"], timeout_s=600)
# Back here: copy $OUT/teacher_KIND.{json,safetensors} to ~/.cache/uniremoval/release7/models/
# and run eval_teacher.sh. Whole command: KINDS x (LIMIT + ~25 s start and export) < 600 s.
# env: KINDS (rain haze blur), STEPS (3000), BATCH (32), WORKERS (14), LIMIT (150), DEVICE (cuda)
set -u -o pipefail
M=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${OUT:-$M/gpu_out}; STEPS=${STEPS:-3000}; BATCH=${BATCH:-32}; WORKERS=${WORKERS:-14}
LIMIT=${LIMIT:-150}; DEVICE=${DEVICE:-cuda}; RUNS=${RUNS:-/tmp/release7}
D=${DATA:-$M/.gpu_data}
export PYTHONPATH="$M/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
log=$OUT/gpu_teachers.log
{ date; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "layers: $(ls "$D/garg06" | wc -l), photos: $(ls "$D/clean/train" | wc -l)"; } | tee -a "$log"
for kind in ${KINDS:-rain haze blur}; do
  run=$RUNS/teacher_$kind
  t0=$(date +%s)
  timeout --signal=INT --kill-after=20 "$LIMIT" "$py" -m uniremoval train transfer \
    --config "$M/benchmarks/results/data_r6_vs_r7/base.yaml" \
    --set run.steps=$STEPS --set run.name=teacher-$kind --set run.ckpt_every=50 \
    --set run.device=$DEVICE --set run.threads=null \
    --set data.images_per_step=$BATCH --set data.workers=$WORKERS \
    --set data.val_count=0 --set run.val_every=100000 \
    --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/train" \
    --set "kinds=[$kind]" --set 'data.scales=[1, 4]' --set data.whole_photo=true \
    --set "data.degrade={kinds: {rain: {streak_dir: $D/garg06}}}" \
    --set model.arch=nafnet-ctx --set "model.init=$M/src/uniremoval/models/default.json" \
    --set model.warm_start=true --set run.out_dir=$run >> "$log" 2>&1
  echo "$kind: training exit $? after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  # The last checkpoint (every 50 steps, and the final step) as the teacher, named for its kind:
  # a finished run's last checkpoint is its own export, a stopped one's is where it stopped.
  if "$py" -m uniremoval train export "$run/teacher-$kind" -o "$OUT/teacher_$kind.json" >> "$log" 2>&1; then
    (cd "$OUT" && sha256sum teacher_$kind.safetensors teacher_$kind.json) | tee -a "$log"
  else
    echo "$kind: no checkpoint to export" | tee -a "$log"
  fi
  grep -E "^step " "$log" | tail -2
done
ls -l "$OUT"
