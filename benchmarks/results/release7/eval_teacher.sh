#!/usr/bin/env bash
# Score a teacher of teachers.sh on its own kind against release 6 and an all-in-one student:
# the own evaluation (release 6's fixed r6 pairs, 48, bootstrap intervals against release 6; and
# 24 r7 pairs), external_val (rain_fu for rain, haze_sots_indoor for haze; validation only), the
# scale evaluation (x1/x2/x4, 8 pairs), the held-out real photos of that kind (NIQE/BRISQUE/PIQE)
# and the clean validation photos returned (PSNR against themselves).
# Usage: eval_teacher.sh KIND [LABEL=MODEL.json ...]   (extra rows, e.g. the all-in-one student)
# Outputs in ./eval (named teacher_KIND*). env VARIANT: score teachers.sh's arm of that name.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$HOME/.cache/uniremoval/release7}
M=$(cd ../../.. && pwd); PY=$M/.venv/bin/python; U=$M/.venv/bin/uniremoval; D=${DATA:-$M/../shared/data}
kind=${1:?usage: eval_teacher.sh KIND [LABEL=MODEL.json ...]}; shift
case $kind in haze) ext=haze_sots_indoor; real=hazy ;; rain) ext=rain_fu; real=rain ;; blur) ext=""; real=blur ;;
  *) echo "unknown kind $kind" >&2; exit 2 ;; esac
n=teacher_$kind${VARIANT:+_$VARIANT}; rn=teacher-$kind${VARIANT:+-$VARIANT}
mkdir -p "$OUT/models" eval
# A finished teacher's last checkpoint (its final step) exported under its own name, so every report
# labels it apart (a model is labelled by its file name). A teacher brought back from
# gpu_teachers.sh has no run folder here: it is scored as it is.
[ ! -f "$OUT/$n/$rn/export/$rn.json" ] || $U train export "$OUT/$n/$rn" -o "$OUT/models/$n.json" >/dev/null
T=$OUT/models/$n.json
models=(--model r6=release6 --model "$n=$T"); paths=("$T")
for extra in "$@"; do models+=(--model "$extra"); paths+=("${extra#*=}"); done
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val --kinds $kind "${models[@]}" --baseline r6 --out eval --tag ${n}_r6 2>/dev/null | tail -12
$PY $M/benchmarks/synthetic_eval.py --val-dir $D/clean/val --kinds $kind "${models[@]}" --baseline r6 --preset r7 --count 24 --out eval --tag ${n}_r7 2>/dev/null | tail -12
[ -z "$ext" ] || $PY $M/benchmarks/external_val.py --data $D/external_val --sets $ext "${models[@]}" --out eval --tag $n 2>/dev/null | tail -12
$PY $M/benchmarks/scale_eval.py --val-dir $D/clean/val --kinds $kind "${models[@]}" --count 8 --out eval --tag $n 2>/dev/null | tail -8
[ -d /tmp/realsplit ] || $U train adapt-split $D/real -o /tmp/realsplit
rm -rf /tmp/real_$kind && mkdir -p /tmp/real_$kind && ln -s /tmp/realsplit/heldout/$real /tmp/real_$kind/$real
$U eval --model identity --model release6 "${paths[@]/#/--model=}" --real /tmp/real_$kind -o eval/real_$n 2>&1 | tail -12
# A clean photo must come back nearly unchanged: the clean validation photos as their own targets.
rm -rf /tmp/cleanpairs && mkdir -p /tmp/cleanpairs/input /tmp/cleanpairs/target
for f in $D/clean/val/*; do ln -s "$f" /tmp/cleanpairs/input/; ln -s "$f" /tmp/cleanpairs/target/; done
$U eval --model identity --model release6 "${paths[@]/#/--model=}" --paired /tmp/cleanpairs -o eval/clean_$n 2>&1 | tail -6
# The grids show ../shared photos, which never go into git: they are kept beside the teachers.
mkdir -p $OUT/panels
mv eval/real_$n/real_grid.png $OUT/panels/real_$n.png
mv eval/clean_$n/paired_grid.png $OUT/panels/clean_$n.png
sha256sum $OUT/models/$n.safetensors | tee eval/$n.sha256
