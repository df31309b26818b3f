"""The body on what the engine gives it: crops of WHOLE degraded photos, the photo prior run on
the whole photo (as ``uniremoval restore`` does) or on the crop alone (as training did before
2026-12-07).

``synthetic_eval.py`` degrades each crop alone, so a photo prior there reads the whole pair and
the two cases cannot differ. Here every pair is cut from a whole degraded photo (r7 synthesis by
default, a scale drawn from ``--scales`` as in training, 8-bit files), and for every model with a
photo prior (``haze-prior``) the report gives PSNR with the prior's output

- ``photo``: ``prior.apply_photo`` on the whole degraded photo, cut and resized like the pair
  (what the body gets at inference);
- ``crop``: the prior reading the crop alone (``model(crop)``);

plus ``prior``, the prior's own output (photo case) without the body. Models without a prior get
one number. Per kind: means, and each model's paired difference to ``--baseline`` (photo case)
with a seeded bootstrap 95 % interval resampling photos.

    python benchmarks/whole_photo_eval.py --val-dir ../shared/data/clean/val \\
        --model r7=release7 --model new=path/to/new.json --baseline r7 --out DIR --tag TAG
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from uniremoval import nets
from uniremoval.data import SyntheticPairs
from uniremoval.degrade import Registry
from uniremoval.metrics import psnr
from uniremoval.modelfile import load_model
from uniremoval.stages.common import PriorContext, restore
from uniremoval.sysinfo import cpu_isa, cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_eval import bootstrap  # noqa: E402


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--val-dir", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, help="NAME=MODEL (model name or file)")
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--kinds", default="haze,rain,blur,clean")
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--scales", type=float, nargs=2, default=(1.0, 4.0))
    ap.add_argument("--preset", default="r7")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--tag", default="whole_photo")
    a = ap.parse_args()
    torch.manual_seed(0)
    models = {}
    for spec in a.model:
        name, _, path = spec.partition("=")
        models[name] = load_model(path or name).net.eval()
    base = a.baseline or next(iter(models))
    reg = Registry.preset(a.preset)
    rng = np.random.default_rng(a.seed)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    lines = [f"# Whole-photo evaluation ({a.tag})", "",
             f"{a.count} pairs per kind from `{a.val_dir}`, preset {a.preset}, scales {a.scales[0]:g}-{a.scales[1]:g}, "
             f"{a.crop} px crops of whole degraded photos (8 bits), seed {a.seed}; PSNR dB. "
             f"Machine: {cpu_model()} ({cpu_isa()}), fp32, torch {torch.__version__}.", "",
             "| kind | model | input | prior (photo) | photo | crop | photo - baseline [95 %] |", "|---|---|---|---|---|---|---|"]
    for kind in a.kinds.split(","):
        scores: dict[str, dict[str, list[float]]] = {}
        groups: list[str] = []
        for name, net in models.items():
            s = scores.setdefault(name, {"input": [], "prior": [], "photo": [], "crop": []})
            has_prior = nets.descriptor(net).photo_prior
            # The same seeded pairs for every model; a prior's output on each whole photo comes
            # cut and resized with its pair, as training data carries it (``PriorContext``).
            ds = SyntheticPairs(a.val_dir, kinds=[kind], crop=a.crop, seed=a.seed, length=a.count, hflip=False, registry=reg,
                                scales=tuple(a.scales), whole=True, context=PriorContext(net.prior) if has_prior else None, bits=8)
            items = [ds[i] for i in range(a.count)]
            groups = [it["params"]["source"] for it in items]
            for it in items:
                x, y = it["input"][None], it["target"][None]
                s["input"].append(float(psnr(x, y)[0]))
                s["crop"].append(float(psnr(restore(net, x), y)[0]))
                if has_prior:
                    j = it["context"][None]
                    s["prior"].append(float(psnr(j, y)[0]))
                    s["photo"].append(float(psnr(restore(net, x, context=j), y)[0]))
                else:
                    s["prior"].append(float("nan"))
                    s["photo"].append(s["crop"][-1])
        rows[kind] = {}
        for name, s in scores.items():
            m = {k: float(np.mean(v)) for k, v in s.items()}
            d = np.asarray(s["photo"]) - np.asarray(scores[base]["photo"])
            lo, hi = bootstrap(d, groups, 2000, rng) if name != base else (0.0, 0.0)
            m.update(diff=float(d.mean()), lo=lo, hi=hi, better=int((d > 0).sum()))
            rows[kind][name] = m
            diff = "" if name == base else f"{m['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] ({m['better']}/{a.count})"
            lines.append(f"| {kind} | {name} | {m['input']:.2f} | {m['prior']:.2f} | {m['photo']:.2f} | {m['crop']:.2f} | {diff} |")
            print(lines[-1], flush=True)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / f"whole_photo_{a.tag}.md").write_text("\n".join(lines) + "\n")
        (a.out / f"whole_photo_{a.tag}.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
