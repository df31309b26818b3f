#!/usr/bin/env bash
# Issue [1/5] "measure the effect": release 6's architecture and weights, all-in-one supervised
# (stage 1, ground-truth term only), trained the same number of steps on the old (r6) and the
# new (r7: ranges, scales 1-4, Garg & Nayar streaks, clean photos) synthesis. Resumable: rerun.
set -euo pipefail
cd "$(dirname "$0")"
STEPS=${STEPS:-1200}
U=/work/main/.venv/bin/uniremoval
common=(--config base.yaml --set run.steps=$STEPS --set data.images_per_step=8 --set data.val_count=0 --set run.val_every=100000)
$U train transfer "${common[@]}" --set run.out_dir=$PWD/old --set 'kinds=[haze, rain, blur]' \
   --set 'data.kind_mix={haze: 2}' --set 'data.degrade={preset: r6}' 2>&1 | tee -a old.log
$U train transfer "${common[@]}" --set run.out_dir=$PWD/new --set 'kinds=[haze, rain, blur, clean]' \
   --set 'data.scales=[1, 4]' --set 'data.degrade={kinds: {rain: {streak_dir: /work/shared/data/rain_streaks/garg06}}}' 2>&1 | tee -a new.log
