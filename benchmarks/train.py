"""Training throughput: images/s at 128 px for each architecture size, precision and layout.

Each point times full training steps of the shared machinery (the stage-0 teacher step:
forward under autocast, Charbonnier loss, backward, gradient clipping, Adam, schedule, EMA) on
random in-memory batches, so it measures the network + optimiser, not data loading. The
result per point is the median of ``--steps`` timed steps after ``--warmup`` untimed ones,
with the min/max spread. Writes ``train.json`` and ``train.md`` (machine description included)
into ``--out``.

    python benchmarks/train.py --out bench_out                  # CPU (and CUDA when present)
    python benchmarks/train.py --archs nafnet-small --precisions fp32 --steps 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from uniremoval.sysinfo import machine


def measure(arch: str, device: str, precision: str, channels_last: bool, batch: int, px: int, warmup: int, steps: int) -> dict[str, Any]:
    """Time ``steps`` teacher training steps; returns the point's record."""
    import torch

    from uniremoval import nets
    from uniremoval.stages.teacher import LossConfig, pixel_loss
    from uniremoval.train.config import OptimConfig, RunConfig, ScheduleConfig
    from uniremoval.train.distributed import DistEnv
    from uniremoval.train.trainer import Trainer

    amp = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}[precision]
    with tempfile.TemporaryDirectory() as tmp:
        run = RunConfig(out_dir=tmp, amp=amp, channels_last=channels_last, progress=False, steps=10_000)  # type: ignore[arg-type]
        tr = Trainer(run, run, global_batch=batch, env=DistEnv(device=torch.device(device)))
        net = nets.build(arch)
        params = sum(p.numel() for p in net.parameters())
        model = tr.add("net", net, OptimConfig(grad_clip=0.5), ScheduleConfig(warmup_steps=100), ema=True)
        g = torch.Generator().manual_seed(0)
        batch_data = tr.to_device({"input": torch.rand(batch, 3, px, px, generator=g), "target": torch.rand(batch, 3, px, px, generator=g)})
        loss_cfg = LossConfig()
        cuda = device.startswith("cuda")
        times: list[float] = []
        for i in range(warmup + steps):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with tr.autocast():
                out = model(batch_data["input"])
            loss = pixel_loss(out, batch_data["target"], loss_cfg)
            tr.optimize("net", loss)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        tr.close()
    med = statistics.median(times)
    rec: dict[str, Any] = {
        "arch": arch,
        "params_M": round(params / 1e6, 3),
        "device": device,
        "precision": precision,
        "channels_last": channels_last,
        "batch": batch,
        "px": px,
        "steps_timed": len(times),
        "step_s_median": round(med, 4),
        "images_per_s": round(batch / med, 2),
        "images_per_s_min": round(batch / max(times), 2),
        "images_per_s_max": round(batch / min(times), 2),
    }
    if cuda:
        rec["peak_mem_GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
    return rec


def to_markdown(info: dict[str, object], rows: list[dict[str, Any]]) -> str:
    lines = ["# Training throughput (teacher step, 128 px crops)", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "",
        "Median of timed steps (min-max in brackets); random data in memory, so data loading is excluded.",
        "",
        "| arch | params (M) | device | precision | channels_last | batch | images/s | step (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | | {r['device']} | {r['precision']} | {r['channels_last']} | | error: {r['error']} | |")
            continue
        lines.append(
            f"| {r['arch']} | {r['params_M']} | {r['device']} | {r['precision']} | {r['channels_last']} | {r['batch']} | "
            f"{r['images_per_s']} ({r['images_per_s_min']}-{r['images_per_s_max']}) | {r['step_s_median']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--archs", default="nafnet-small,nafnet-base")
    ap.add_argument("--px", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="CPU batch (GPU uses --gpu-batch)")
    ap.add_argument("--gpu-batch", type=int, default=16)
    ap.add_argument("--precisions", default="fp32,bf16", help="CPU precisions (GPU: fp32,fp16,bf16)")
    ap.add_argument("--channels-last", default="off,on")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-cpu", action="store_true")
    ap.add_argument("--no-gpu", action="store_true")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    layouts = [x == "on" for x in args.channels_last.split(",")]
    plan: list[tuple[str, str, str, bool, int]] = []
    for arch in args.archs.split(","):
        if not args.no_cpu:
            for prec in args.precisions.split(","):
                for cl in layouts:
                    plan.append((arch, "cpu", prec, cl, args.batch))
        if torch.cuda.is_available() and not args.no_gpu:
            for prec in ("fp32", "fp16", "bf16"):
                for cl in layouts:
                    plan.append((arch, "cuda", prec, cl, args.gpu_batch))
    rows = []
    for arch, dev, prec, cl, batch in plan:
        try:
            rec = measure(arch, dev, prec, cl, batch, args.px, args.warmup, args.steps)
        except Exception as e:  # one failing point (e.g. a precision a device lacks) should not sink the run
            rec = {"arch": arch, "device": dev, "precision": prec, "channels_last": cl, "error": f"{type(e).__name__}: {e}"[:200]}
        rows.append(rec)
        print(json.dumps(rec), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
    (out / "train.md").write_text(to_markdown(info, rows))
    print(f"wrote {out / 'train.json'} and {out / 'train.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
