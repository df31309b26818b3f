#!/usr/bin/env bash
# Issue [3/5] stage 0 on a CPU: one specialist teacher per kind (recipe: teacher.yaml), trained on the r7 synthesis
# (camera stage after haze and rain, Garg & Nayar streak layers, scales 1-4, whole-photo
# synthesis), supervised on its own kind only. A teacher is `nafnet-ctx` (release 6's
# full-resolution blocks plus the whole-photo context) warm-started from release 6: larger and
# slower than the student it will teach (`uniremoval-net`, 2.4x faster at 12 MP), and it starts
# from release 6's ~10 CPU hours instead of from zero, which a 2-core CPU cannot repeat per kind.
# Resumable: rerun the same command after an interruption. Checkpoints, logs and the exported
# teacher (model file + sha256) go under $OUT (outside the repo).
# Usage: teachers.sh KIND...   (KIND: haze | rain | blur)   env: STEPS (default 3000), OUT, DATA,
#   VARIANT (a name for an A/B arm: teacher_KIND_VARIANT) with RAIN or BLUR (extra rain / blur
#   parameters, YAML flow entries, e.g. RAIN="p_r6_streaks: 0.5", BLUR="camera: {p_highlights: 0.0}").
set -euo pipefail
cd "$(dirname "$0")"
STEPS=${STEPS:-3000}
OUT=${OUT:-$HOME/.cache/uniremoval/release7}
M=$(cd ../../.. && pwd); U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
R6=$M/src/uniremoval/models/release6.json
[ $# -gt 0 ] || { echo "usage: teachers.sh KIND... (haze | rain | blur)" >&2; exit 2; }
mkdir -p "$OUT"
for kind in "$@"; do
  case $kind in haze|rain|blur) ;; *) echo "unknown kind $kind" >&2; exit 2 ;; esac
  n=teacher_$kind${VARIANT:+_$VARIANT}; rn=teacher-$kind${VARIANT:+-$VARIANT}
  $U train transfer --config teacher.yaml \
    --set run.steps=$STEPS --set run.name=$rn --set "kinds=[$kind]" \
    --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/val" \
    --set "data.degrade={kinds: {rain: {streak_dir: $D/rain_streaks/garg06${RAIN:+, $RAIN}}${BLUR:+, blur: {$BLUR}}}}" \
    --set "model.init=$R6" --set run.out_dir=$OUT/$n 2>&1 | tee -a $OUT/$n.log
  f=$(ls -t $OUT/$n/$rn/export/*.json 2>/dev/null | head -1 || true)
  [ -n "$f" ] && sha256sum "${f%.json}.safetensors" "$f" | tee $OUT/$n.sha256
done
