#!/usr/bin/env bash
# Evaluate the arms of run.sh on everything issue [2/5] asks for: the own 48-pair evaluation
# (release 6's fixed r6 pairs, with DCP and bootstrap intervals against release 6's
# architecture), 24 r7 pairs per kind, external_val (per image), the scale evaluation (x1/x2/x4),
# SSIM (in every table), the held-out real split (NIQE/BRISQUE/PIQE) and the visual panel.
# Usage: eval.sh ARM...  (arms that finished; default: r6arch uninet). Outputs in ./eval and
# panel PNGs outside the repo ($OUT). TAG (default abl) names the output files; BASELINE (default
# r6arch; r6 = release 6) is the row the others get intervals against.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$HOME/.cache/uniremoval/arch_ablation}
M=$(cd ../../.. && pwd); PY=$M/.venv/bin/python; U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
arms=("$@"); [ ${#arms[@]} -gt 0 ] || arms=(r6arch uninet)
TAG=${TAG:-abl}; BASELINE=${BASELINE:-r6arch}; sfx=$([ "$TAG" = abl ] || echo "_$TAG")
mkdir -p "$OUT/models" eval
models=(--model r6=release6); paths=()
for a in "${arms[@]}"; do
  # Copies named after the arm so every report labels them apart (a model is labelled by its file name).
  $PY copy_model.py "$OUT/$a/allinone/export/allinone.json" "$OUT/models" "$a"
  models+=(--model "$a=$OUT/models/$a.json"); paths+=("$OUT/models/$a.json")
done
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline $BASELINE --out eval --tag ${TAG}_r6 2>/dev/null | tail -20
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline $BASELINE --preset r7 --count 24 --out eval --tag ${TAG}_r7 2>/dev/null | tail -20
$PY $M/benchmarks/external_val.py --data $D/external_val "${models[@]}" --out eval --tag $TAG 2>/dev/null | tail -20
$PY $M/benchmarks/scale_eval.py --val-dir $D/clean/val "${models[@]}" --count 8 --out eval --tag $TAG 2>/dev/null | tail -20
[ -d /tmp/realsplit ] || $U train adapt-split $D/real -o /tmp/realsplit
$U eval --model identity --model release6 "${paths[@]/#/--model=}" --real /tmp/realsplit/heldout -o eval/real$sfx 2>&1 | tail -20
if [ ${#paths[@]} -ge 2 ]; then
  $PY $M/benchmarks/real_panel.py --real $D/real --model-a "${arms[0]}=${paths[0]}" --model-b "${arms[1]}=${paths[1]}" --out $OUT/panel_${arms[0]}_${arms[1]}.png
fi
# A clean photo must come back nearly unchanged: the clean validation photos as their own targets.
rm -rf /tmp/cleanpairs && mkdir -p /tmp/cleanpairs/input /tmp/cleanpairs/target
for f in $D/clean/val/*; do ln -s "$f" /tmp/cleanpairs/input/; ln -s "$f" /tmp/cleanpairs/target/; done
$U eval --model identity --model release6 "${paths[@]/#/--model=}" --paired /tmp/cleanpairs -o eval/clean$sfx 2>&1 | tail -12
