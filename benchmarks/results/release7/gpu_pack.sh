#!/usr/bin/env bash
# Packs what gpu_teachers.sh needs into .gpu_data/ (git-ignored through .git/info/exclude) so a
# session lent a GPU can carry it: `../shared` does not travel, and the working tree may hold
# 64 MiB in all. The clean training photos go as they are (no re-encoding: they are targets);
# when they do not all fit beside the tree (since release 7 the tree holds two shipped models
# and the prior, ~34 MB, and the 380 photos are ~49 MB), an evenly spread subset goes, leaving
# LAYERS_MB for the Garg & Nayar streak layers. The layers go as the 8-bit grey images the
# rain synthesis reads (degrade/streaks.py converts each layer to "L"), every STRIDE-th one,
# until the budget is reached. Run here, then: device run with carry [".gpu_data"] (see
# gpu_teachers.sh).
# env: DATA (default ../shared/data), BUDGET_MB (default 62: what the whole tree may use),
#      LAYERS_MB (default 6: room kept for streak layers when the photos must be thinned)
set -euo pipefail
M=$(cd "$(dirname "$0")/../../.." && pwd); D=${DATA:-$M/../shared/data}; P=$M/.gpu_data
BUDGET_MB=${BUDGET_MB:-62}; LAYERS_MB=${LAYERS_MB:-6}
mkdir -p "$M/.git/info"
grep -qx '/.gpu_data/' "$M/.git/info/exclude" 2>/dev/null || echo '/.gpu_data/' >> "$M/.git/info/exclude"
rm -rf "$P"; mkdir -p "$P/clean/train" "$P/garg06"
# What travels besides .gpu_data: tracked files and untracked files git does not ignore.
tree=$(cd "$M" && git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
"$M/.venv/bin/python" - "$D/clean/train" "$P/clean/train" $(( BUDGET_MB * 1024 * 1024 - tree - LAYERS_MB * 1024 * 1024 )) <<'PY'
import shutil, sys
from pathlib import Path
src, dst, room = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
files = sorted(p for p in src.iterdir() if p.is_file())
total = sum(p.stat().st_size for p in files)
if total > room:  # an evenly spread subset (every k-th by name, then the gaps), as many as fit
    k = 4
    files = [f for r in range(k) for f in files[r::k]]
used, n = 0, 0
for f in files:
    size = f.stat().st_size
    if used + size > room:
        continue
    shutil.copy2(f, dst / f.name); used += size; n += 1
if n < 50:
    sys.exit(f"gpu_pack: only {n} clean photos fit ({used / 2**20:.1f} MiB); the tree is too large")
print(f"gpu_pack: {n} of {len(files)} clean photos ({used / 2**20:.1f} MiB)")
PY
clean=$(du -sb "$P/clean" | cut -f1)
room=$(( BUDGET_MB * 1024 * 1024 - tree - clean ))
[ "$room" -gt 1000000 ] || { echo "gpu_pack: no room for streak layers (tree $tree B, clean $clean B, budget $BUDGET_MB MiB)" >&2; exit 1; }
"$M/.venv/bin/python" - "$D/rain_streaks/garg06" "$P/garg06" "$room" <<'PY'
import sys
from pathlib import Path
from PIL import Image
src, dst, room = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
files = sorted(src.glob("*.png"))
# Layers are named SEQUENCE-VIEW; every layer of a spread of sequences beats all views of a few.
order = files[::4] + files[1::4] + files[2::4] + files[3::4]
used = 0
for f in order:
    out = dst / f.name
    Image.open(f).convert("L").save(out, optimize=True)
    size = out.stat().st_size
    if used + size > room:
        out.unlink()
        break
    used += size
n = len(list(dst.glob("*.png")))
print(f"gpu_pack: {n} of {len(files)} streak layers ({used / 2**20:.1f} MiB)")
PY
echo "gpu_pack: tree $((tree / 1048576)) MiB + clean $((clean / 1048576)) MiB + layers -> $(du -sh "$P" | cut -f1) in .gpu_data"
