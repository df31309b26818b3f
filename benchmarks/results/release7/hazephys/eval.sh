#!/usr/bin/env bash
# Score a haze-prior model file (make_model.py) through the product path (Restorer, tiling,
# working scale) against release 6, on everything the issues ask for: the own 48-pair
# evaluation (fixed r6 pairs, with DCP, bootstrap intervals against release 6), 24 r7 pairs,
# external_val (validation only), the scale evaluation, the held-out real split
# (NIQE/BRISQUE/PIQE), the clean validation photos returned, and the visual panel.
# Usage: eval.sh LABEL=MODEL.json   Outputs in ./eval, PNGs in $OUT/panels (outside the repo).
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$HOME/.cache/uniremoval/release7}
M=$(cd ../../../.. && pwd); PY=$M/.venv/bin/python; U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
spec=${1:?usage: eval.sh LABEL=MODEL.json}; n=${spec%%=*}; T=${spec#*=}
models=(--model r6=release6 --model "$spec")
mkdir -p eval "$OUT/panels"
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline r6 --out eval --tag ${n}_r6 2>/dev/null | tail -24
# SKIP_R7=1: leave out the r7 pairs (hazephys/score.py has them).
[ -n "${SKIP_R7:-}" ] || $PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline r6 --preset r7 --count 24 --out eval --tag ${n}_r7 2>/dev/null | tail -14
$PY $M/benchmarks/external_val.py --data $D/external_val "${models[@]}" --out eval --tag $n 2>/dev/null | tail -12
$PY $M/benchmarks/scale_eval.py --val-dir $D/clean/val "${models[@]}" --count 8 --out eval --tag $n 2>/dev/null | tail -10
[ -d /tmp/realsplit ] || $U train adapt-split $D/real -o /tmp/realsplit
$U eval --model identity --model release6 --model "$T" --real /tmp/realsplit/heldout -o eval/real_$n 2>&1 | tail -14
rm -rf /tmp/cleanpairs && mkdir -p /tmp/cleanpairs/input /tmp/cleanpairs/target
for f in $D/clean/val/*; do ln -s "$f" /tmp/cleanpairs/input/; ln -s "$f" /tmp/cleanpairs/target/; done
$U eval --model identity --model release6 --model "$T" --paired /tmp/cleanpairs -o eval/clean_$n 2>&1 | tail -6
mv eval/real_$n/real_grid.png $OUT/panels/real_$n.png; mv eval/clean_$n/paired_grid.png $OUT/panels/clean_$n.png
$PY $M/benchmarks/real_panel.py --real $D/real --model-a r6=release6 --model-b "$spec" --out $OUT/panels/panel_$n.png
