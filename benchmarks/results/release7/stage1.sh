#!/usr/bin/env bash
# Issue [3/5] the long stage-1 run on a CPU: uniremoval-net (warm-started from release 6) taught
# by the release-7 teachers in $OUT/models (teacher_haze, the rain teacher named by RAIN_T,
# teacher_blur), clean photos untaught; r7 synthesis with the rain recipe of the chosen rain
# teacher (r6mix: half of the streaks at release 6's size), scales 1-4, whole-photo synthesis.
# Recipe: stage1.yaml. Resumable over sittings: rerun the same command; it checkpoints every 100
# steps under $OUT/stage1 (outside the repo). Never beside tests on the 2 cores.
# env: STEPS (stage1.yaml's 30000), OUT, DATA, RAIN_T (teacher_rain_r6mix), RAIN ("p_r6_streaks: 0.5"),
#      SET (extra --set overrides, space-separated, for a dry run)
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$HOME/.cache/uniremoval/release7}
M=$(cd ../../.. && pwd); U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
RAIN_T=${RAIN_T:-teacher_rain_r6mix}; RAIN=${RAIN-p_r6_streaks: 0.5}
T=$OUT/models
for f in teacher_haze $RAIN_T teacher_blur; do
  [ -f "$T/$f.json" ] || { echo "stage1.sh: missing teacher $T/$f.json (teachers.sh, then eval_teacher.sh exports it)" >&2; exit 2; }
done
extra=(); for s in ${SET:-}; do extra+=(--set "$s"); done
mkdir -p "$OUT/stage1"
$U train transfer --config stage1.yaml \
  --teachers "haze=$T/teacher_haze.json,rain=$T/$RAIN_T.json,blur=$T/teacher_blur.json" \
  ${STEPS:+--set run.steps=$STEPS} \
  --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/val" \
  --set "data.degrade={kinds: {rain: {streak_dir: $D/rain_streaks/garg06${RAIN:+, $RAIN}}}}" \
  --set "model.init=$M/src/uniremoval/models/release6.json" \
  --set run.out_dir=$OUT/stage1 "${extra[@]}" 2>&1 | tee -a $OUT/stage1.log
