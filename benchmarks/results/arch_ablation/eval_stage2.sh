#!/usr/bin/env bash
# The checks of issue [3/5]'s stage-2 rule for a stage2.sh run NAME against release 7 (`release7`, the default until 2026-12-07) or BASE:
# the own r6 pairs (at most 0.3 dB lost), the held-out real split's NIQE / BRISQUE / PIQE per kind,
# texture added to flat regions of the training-split real hazy photos, the fixed visual panel,
# and the r7 pairs. Usage: eval_stage2.sh NAME (after stage2.sh with the same NAME and OUT).
set -euo pipefail
cd "$(dirname "$0")/../../.."
NAME=${1:?usage: eval_stage2.sh NAME}
# The model NAME is compared with: release 7 (as in sessions 19-24), or BASE=default BASE_LABEL=r8 for release 8.
B=${BASE:-release7}; BL=${BASE_LABEL:-r7}
P=.venv/bin/python; U=.venv/bin/uniremoval; D=${DATA:-../shared/data}; SPLIT=${SPLIT:-/tmp/realsplit}
A=${OUT:-$HOME/.cache/uniremoval/adapt7}; M=$A/models; E=benchmarks/results/arch_ablation/eval
mkdir -p "$M"
# A copy named after the run, so every report labels it apart.
$P benchmarks/results/arch_ablation/copy_model.py "$A/$NAME/export/$NAME.json" "$M" "$NAME"
$P benchmarks/synthetic_eval.py --val-dir $D/clean/val --model r6=release6 --model $BL=$B --model $NAME=$M/$NAME.json --baseline $BL --out $E --tag ${NAME}_r6 2>/dev/null | tail -22
$U eval --model identity --model release6 --model $B --model $M/$NAME.json --real "$SPLIT/heldout" -o $A/real_$NAME 2>&1 | tail -14
cp $A/real_$NAME/real_summary.md $E/real_$NAME.md; cp $A/real_$NAME/real_summary.json $E/real_$NAME.json
$P benchmarks/real_nr_diff.py $A/real_$NAME/real_per_image.csv --a $B --b $NAME | tee $E/real_nr_diff_$NAME.md
$P benchmarks/flat_regions.py --real $D/real --side train --model $BL=$B --model $NAME=$M/$NAME.json --out $E --tag train_$NAME 2>/dev/null | grep "^| "
$P benchmarks/real_panel.py --real $D/real --model-a $BL=$B --model-b $NAME=$M/$NAME.json --out $A/panel_${BL}_$NAME.png 2>&1 | tail -1
$P benchmarks/synthetic_eval.py --val-dir $D/clean/val --model r6=release6 --model $BL=$B --model $NAME=$M/$NAME.json --baseline $BL --preset r7 --count 24 --out $E --tag ${NAME}_r7 2>/dev/null | tail -22
