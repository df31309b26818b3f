#!/usr/bin/env bash
# A/B for data.bits (docs/data.md, 8-bit pairs): the haze teacher fine-tuned STEPS more steps on
# float pairs (as it was trained) vs on 8-bit pairs, everything else equal (teacher.yaml, same
# seed, so the same photos, crops and degradations). Question: does the mesh it paints in real
# dense-haze skies come from never having seen 8-bit inputs? Scored on the held-out hazy photos
# (NIQE/BRISQUE/PIQE, grid kept outside git), the fixed r6 haze pairs and the r7 haze pairs.
# Resumable; runs under $OUT/bits_ab. env: STEPS (300), OUT, DATA.
set -euo pipefail
cd "$(dirname "$0")"
STEPS=${STEPS:-300}
OUT=${OUT:-$HOME/.cache/uniremoval/release7}
M=$(cd ../../.. && pwd); U=$M/.venv/bin/uniremoval; PY=$M/.venv/bin/python; D=${DATA:-$M/../shared/data}
T=$OUT/models/teacher_haze.json
[ -f "$T" ] || { echo "bits_ab.sh: missing $T (teachers.sh haze, eval_teacher.sh haze)" >&2; exit 2; }
mkdir -p "$OUT/bits_ab" "$OUT/panels" eval
for arm in float 8bit; do
  bits=null; [ $arm = 8bit ] && bits=8
  $U train transfer --config teacher.yaml \
    --set run.steps=$STEPS --set run.name=haze-$arm --set "kinds=[haze]" \
    --set optim.lr=1.0e-4 --set schedule.warmup_steps=20 --set data.bits=$bits \
    --set "data.clean_dir=$D/clean/train" --set "data.val_dir=$D/clean/val" \
    --set "model.init=$T" --set run.out_dir=$OUT/bits_ab 2>&1 | tail -2
  $U train export "$OUT/bits_ab/haze-$arm" -o "$OUT/bits_ab/haze_$arm.json" >/dev/null
done
A=$OUT/bits_ab/haze_float.json; B=$OUT/bits_ab/haze_8bit.json
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val --kinds haze --model float=$A --model 8bit=$B --baseline float --out eval --tag bits_ab_r6 2>/dev/null | tail -8
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val --kinds haze --model float=$A --model 8bit=$B --baseline float --preset r7 --count 24 --out eval --tag bits_ab_r7 2>/dev/null | tail -8
[ -d /tmp/realsplit ] || $U train adapt-split $D/real -o /tmp/realsplit
rm -rf /tmp/real_haze && mkdir -p /tmp/real_haze && ln -s /tmp/realsplit/heldout/hazy /tmp/real_haze/hazy
$U eval --model identity --model $A --model $B --real /tmp/real_haze -o eval/real_bits_ab --grid-rows 10 2>&1 | tail -6
mv eval/real_bits_ab/real_grid.png $OUT/panels/real_bits_ab.png
