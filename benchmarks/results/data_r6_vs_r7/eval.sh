#!/usr/bin/env bash
# Evaluate release 6 and the two comparison students (old vs new data) on everything issue
# [1/5] asks for. Outputs in ./eval (JSON + Markdown) and ./panel.png.
set -euo pipefail
cd "$(dirname "$0")"
M=/work/main; PY=$M/.venv/bin/python; D=/work/shared/data
# Copies named old/new so every report labels them apart (a model is labelled by its file name).
mkdir -p models
for r in old new; do
  $PY -c "import json,shutil,sys; r=sys.argv[1]; src='$PWD/'+r+'/allinone/export/allinone'; d=json.load(open(src+'.json')); d['weights']=r+'.safetensors'; json.dump(d, open('models/'+r+'.json','w'), indent=1, sort_keys=True); shutil.copy(src+'.safetensors', 'models/'+r+'.safetensors')" $r
done
OLD=$PWD/models/old.json; NEW=$PWD/models/new.json
models=(--model r6=release6 --model old=$OLD --model new=$NEW)
mkdir -p eval
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline old --out eval --tag cmp_r6 2>/dev/null | tail -12
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val "${models[@]}" --baseline old --preset r7 --count 24 --out eval --tag cmp_r7 2>/dev/null | tail -12
$PY $M/benchmarks/external_val.py --data $D/external_val "${models[@]}" --out eval --tag cmp 2>/dev/null | tail -20
$PY $M/benchmarks/scale_eval.py --val-dir $D/clean/val "${models[@]}" --count 8 --out eval --tag cmp 2>/dev/null | tail -20
[ -d /tmp/realsplit ] || $M/.venv/bin/uniremoval train adapt-split $D/real -o /tmp/realsplit
$M/.venv/bin/uniremoval eval --model identity --model release6 --model $OLD --model $NEW --real /tmp/realsplit/heldout -o eval/real 2>&1 | tail -20
$PY $M/benchmarks/real_panel.py --real $D/real --model-a old=$OLD --model-b new=$NEW --out $PWD/panel_old_new.png
$PY $M/benchmarks/real_panel.py --real $D/real --model-a r6=release6 --model-b new=$NEW --out $PWD/panel_r6_new.png
# A clean photo must come back nearly unchanged: the clean validation photos as their own targets.
rm -rf /tmp/cleanpairs && mkdir -p /tmp/cleanpairs/input /tmp/cleanpairs/target
for f in $D/clean/val/*; do ln -s "$f" /tmp/cleanpairs/input/; ln -s "$f" /tmp/cleanpairs/target/; done
$M/.venv/bin/uniremoval eval --model identity --model release6 --model $OLD --model $NEW --paired /tmp/cleanpairs -o eval/clean 2>&1 | tail -12
