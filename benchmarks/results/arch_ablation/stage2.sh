#!/usr/bin/env bash
# Stage 2 (docs/method.md, docs/adaptation.md) on release 7, issue [3/5]: the shipped model adapted
# to the unpaired real photos of the training split (`train adapt-split`, holdout 0.25, seed 0:
# the held-out side is what the decision is measured on), with synthetic replay on release 7's own
# data (r6prior_mix_cam's kinds and ranges, scales 1 and 4, whole-photo synthesis). No teachers:
# the pseudo-target is the frozen initial student. The prior stays frozen (PriorNet.requires_grad_).
# Resumable: rerun the same command. Checkpoints and the export go to $OUT/$NAME.
#   stage2.sh                                   # adapt7: configs/adapt.yaml as it is (lr 2e-5, EMA 0.999)
#   EXTRA_SETS="--set optim.lr=5e-5 --set run.ema_decay=0.995" NAME=adapt7_lr5 stage2.sh
# RECIPE=r8 adapts release 8 (`default` since 2026-12-07) on its own kinds (release 6's blur as `blur6`, 12 images a
# step in stage 1); the prior reads the whole photo (`data.prior_reads: photo`, the default), as in its stage 1.
#   RECIPE=r8 OUT=~/.cache/uniremoval/adapt8 NAME=adapt8_lr5 EXTRA_SETS="..." stage2.sh
set -euo pipefail
EXTRA=(${EXTRA_SETS:-})
cd "$(dirname "$0")/../../.."
D=${DATA:-../shared/data}; STEPS=${STEPS:-1000}; OUT=${OUT:-$HOME/.cache/uniremoval/adapt7}; SPLIT=${SPLIT:-/tmp/realsplit}
case ${RECIPE:-r7} in
  # r7: r6prior_mix_cam's data (rain without the camera stage); r8: r6prior_b6_fp32_photo's (the `b6` arms of run.sh).
  r7) STUDENT=src/uniremoval/models/release7.json; KINDS='[haze, rain, rain6, blur, clean]'; RAIN="camera: null, " EXTRA_KINDS='' ;;
  r8) STUDENT=src/uniremoval/models/default.json; KINDS='[haze, rain, rain6, blur, blur6, clean]'; RAIN='' EXTRA_KINDS=', blur6: {base: blur}' ;;
  *) echo "unknown RECIPE ${RECIPE}" >&2; exit 2 ;;
esac
[ -d "$SPLIT" ] || .venv/bin/uniremoval train adapt-split $D/real -o "$SPLIT"
.venv/bin/uniremoval train adapt --student $STUDENT --real "$SPLIT/train" \
  --clean $D/clean/train --config configs/adapt.yaml --set data.val_dir=$D/clean/val \
  --set data.real_val_dir="$SPLIT/heldout" --set run.out_dir=$OUT --set run.name=${NAME:-adapt7} \
  --set run.steps=$STEPS --set run.val_every=500 --set run.ckpt_every=100 --set run.threads=2 \
  --set data.workers=1 --set run.progress=false --set "data.kinds=$KINDS" \
  --set "data.degrade={kinds: {rain: {${RAIN}streak_dir: $D/rain_streaks/garg06}, rain6: {base: rain}$EXTRA_KINDS}}" \
  --set 'data.scales=[1, 4]' --set data.whole_photo=true --set data.triplets_per_step=5 --set data.val_count=10 "${EXTRA[@]}"
