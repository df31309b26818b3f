"""Session 25 experiment, kept as run: a benchmark script with ``restore_pyramid``'s coarse levels
limited to removing light (rain streaks and veil add light; sharpening adds both signs), to see
whether the pyramid's blur loss is its coarse sharpening. It is not (README, "Pyramid").

    python benchmarks/results/workscale/pyramid_darken.py benchmarks/synthetic_eval.py --val-dir ... \
        --model r8=default --model r8n=default@pyramid --baseline r8 --out DIR --tag neg_r6
"""
from __future__ import annotations

import runpy
import sys

import uniremoval.workscale as ws


def restore_pyramid(x, restore, factors, progress=None):  # type: ignore[no-untyped-def]
    """``uniremoval.workscale.restore_pyramid`` with each coarse change clamped to <= 0 (as run in session 25)."""
    for d in factors:
        lo = ws.downscale(x, d)
        y = restore(lo, None)
        x = ws.carry_up(x, lo, lo + (y - lo).clamp(max=0), d)
    return restore(x, progress)


ws.restore_pyramid = restore_pyramid
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
