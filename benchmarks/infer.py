"""Inference speed and memory: megapixels/s and peak RSS at 1, 12 and 24 MP.

Each (device, precision, size) point runs in a fresh subprocess so its peak RSS is its own.
A point restores a JPEG file end to end (decode, pad/tile, network, blend, encode) with the
same code path as `uniremoval restore`; the network is the chosen architecture with
untrained weights (speed and memory do not depend on weight values). Results: median and
spread over repeats, written as JSON and Markdown with the machine's description.

    python benchmarks/infer.py --out bench_out                 # CPU (and CUDA when present)
    python benchmarks/infer.py --sizes 1 --repeats 5 --precisions fp32,bf16
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> dict[str, object]:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def child(args: argparse.Namespace) -> None:
    """One measurement point; prints a JSON line."""
    import numpy as np
    import torch
    from PIL import Image

    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.restorer import Restorer

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="uniremoval-bench-"))
    arch_args = json.loads(args.arch_args)
    model_path = save_model(nets.build(args.arch, **arch_args), tmp / "m.json", args.arch, arch_args)
    w = int(round((args.mp * 1e6 * 4 / 3) ** 0.5))
    h = int(round(args.mp * 1e6 / w))
    # A smooth photo-like pattern: its JPEG decodes at realistic cost.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([np.sin(xx / 97) * 0.5 + 0.5, np.cos(yy / 61) * 0.5 + 0.5, ((xx + yy) % 256) / 255], -1)
    src = tmp / "in.jpg"
    Image.fromarray((img * 255).astype(np.uint8)).save(src, quality=92)
    del img, yy, xx
    restorer = Restorer.from_pretrained(model_path, device=args.device, precision=args.precision, tile=args.tile)
    restorer(np.zeros((64, 64, 3), np.float32))  # warm-up: kernels, allocator
    times = []
    for i in range(args.repeats):
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        restorer.restore_file(src, tmp / f"out{i}.jpg", max_pixels=None)
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        (tmp / f"out{i}.jpg").unlink()
    plan = restorer.engine.plan(h, w)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    out = {
        "mp": round(w * h / 1e6, 2), "width": w, "height": h, "device": str(restorer.device),
        "precision": args.precision, "arch": args.arch, "tiles": plan.n_tiles, "tile": [plan.tile_h, plan.tile_w],
        "times_s": times, "median_s": statistics.median(times), "mp_per_s": w * h / 1e6 / statistics.median(times),
        "peak_rss_mib": rss,
    }
    if restorer.device.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--sizes", default="1,12,24", help="megapixels, comma separated")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--devices", default="auto", help="auto = cpu, plus cuda when present")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", default="nafnet-small")
    ap.add_argument("--arch-args", default="{}")
    ap.add_argument("--tile", default="auto")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mp", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.tile != "auto":
            args.tile = int(args.tile)
        child(args)
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else args.devices.split(",")
    results = []
    for dev in devices:
        for prec in args.precisions.split(","):
            if dev == "cpu" and prec == "fp16":
                continue
            for mp in [float(s) for s in args.sizes.split(",")]:
                cmd = [sys.executable, __file__, "--child", "--mp", str(mp), "--device", dev, "--precision", prec,
                       "--repeats", str(args.repeats), "--arch", args.arch, "--arch-args", args.arch_args, "--tile", str(args.tile)]
                p = subprocess.run(cmd, capture_output=True, text=True)
                line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
                if p.returncode != 0 or line is None:
                    print(f"{dev} {prec} {mp} MP failed:\n{p.stderr[-2000:]}", file=sys.stderr)
                    results.append({"mp": mp, "device": dev, "precision": prec, "error": p.stderr.strip().splitlines()[-1:]})
                    continue
                r = json.loads(line[7:])
                results.append(r)
                print(f"{dev:5s} {prec:5s} {r['mp']:6.2f} MP  {r['median_s']:7.2f} s  {r['mp_per_s']:6.3f} MP/s  "
                      f"peak RSS {r['peak_rss_mib']:7.0f} MiB  tiles {r['tiles']}", flush=True)
    report = {"benchmark": "infer", "machine": machine(), "arch": args.arch, "arch_args": json.loads(args.arch_args),
              "repeats": args.repeats, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "_".join(devices)
    (out / f"infer_{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    lines = [f"# Inference benchmark ({args.arch})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}" + (f", GPU {m['gpu']}" if "gpu" in m else "") + f"; {report['date']}.",
             f"End-to-end file restore (JPEG decode + network + JPEG encode), median of {args.repeats} runs.", "",
             "| device | precision | MP | tiles | median s | MP/s | peak RSS MiB | peak GPU MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['device']} | {r['precision']} | {r['mp']} | failed: {r['error']} | | | | |")
        else:
            lines.append(f"| {r['device']} | {r['precision']} | {r['mp']} | {r['tiles']} | {r['median_s']:.2f} | {r['mp_per_s']:.3f} | "
                         f"{r['peak_rss_mib']:.0f} | {r.get('peak_gpu_mib', 0):.0f} |")
    (out / f"infer_{tag}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / f'infer_{tag}.json'} and .md")


if __name__ == "__main__":
    main()
