"""Inference speed and memory: megapixels/s and peak RSS at 1, 12 and 24 MP, per device,
backend and precision, with the network's FLOPs per pixel and the share of this machine's
measured matrix-multiply peak that it reaches.

Each (device, precision, size) point runs in a fresh subprocess so its peak RSS is its own.
A point restores a JPEG file end to end (decode, pad/tile, network, blend, encode) with the
same code path as `uniremoval restore`; the network is the chosen architecture with
untrained weights (speed and memory do not depend on weight values). Results: median and
spread over repeats, written as JSON and Markdown with the machine's description.

    python benchmarks/infer.py --out bench_out                 # CPU (and CUDA when present)
    python benchmarks/infer.py --sizes 1 --repeats 5 --configs torch/fp32,onnxruntime/fp32

A config is BACKEND/PRECISION with BACKEND one of torch, torch+compile, torch+graphs (CUDA graphs), onnxruntime. FLOPs are
those of convolutions and matrix products (torch's FlopCounterMode; element-wise work is not
counted), so the share of peak is a lower bound on how busy the arithmetic units are.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uniremoval.sysinfo import machine


def flops_per_pixel(arch: str, arch_args: dict[str, object]) -> float:
    """Convolution/matmul FLOPs per pixel of the network: the marginal cost between a 256 and
    a 512 px input, so per-photo work (a context network's thumbnail encoder, counted by
    :func:`flops_per_photo`) is not spread over a small test image."""
    counts = _flops(arch, arch_args, (256, 512))
    return (counts[512] - counts[256]) / (512**2 - 256**2)


def flops_per_photo(arch: str, arch_args: dict[str, object]) -> float:
    """FLOPs spent once per photo whatever its size (the context encoder; 0 for most networks)."""
    counts = _flops(arch, arch_args, (256, 512))
    return max(0.0, counts[256] - 256**2 * (counts[512] - counts[256]) / (512**2 - 256**2))


def _flops(arch: str, arch_args: dict[str, object], sides: tuple[int, ...]) -> dict[int, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from uniremoval import nets

    net = nets.build(arch, **arch_args).eval()
    size = nets.descriptor(net).context_size
    out = {}
    for s in sides:
        x = torch.rand(1, 3, s, s)
        kw = {} if size is None else {"context": nets.thumbnail(x, size)}  # as the engine calls it
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            net(x, **kw)
        out[s] = float(counter.get_total_flops())
    return out


def matmul_peak(device: str, bf16: bool = True) -> dict[str, float]:
    """Measured FLOP/s of a large matrix product per dtype: the attainable peak we compare to.
    ``bf16`` False measures float32 only (a bf16 product on a CPU without native bf16, say
    one capped to AVX2, takes minutes and no fp32-only run needs it)."""
    import torch

    out = {}
    n = 2048 if device == "cpu" else 8192
    for dtype in (torch.float32, torch.bfloat16) if bf16 else (torch.float32,):
        a = torch.rand(n, n, device=device, dtype=dtype)
        b = torch.rand(n, n, device=device, dtype=dtype)
        times = []
        for _ in range(5):
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            a @ b
            if device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        out[str(dtype).replace("torch.", "")] = 2 * n**3 / min(times)
    return out


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
    backend, _, flag = args.backend.partition("+")
    restorer = Restorer.from_pretrained(model_path, device=args.device, precision=args.precision, tile=args.tile,
                                        backend=backend, compile=flag == "compile", cuda_graphs=flag == "graphs",
                                        tile_batch=int(args.tile_batch) if args.tile_batch else None,
                                        overlap=int(args.overlap) if args.overlap else None, scale=args.scale)
    t0 = time.perf_counter()
    restorer(np.zeros((1024, 1024, 3), np.float32))  # warm-up: kernels, allocator, compilation
    warmup_s = time.perf_counter() - t0
    times = []
    x = torch.from_numpy(np.asarray(Image.open(src).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1).contiguous() if args.engine_only else None
    for i in range(args.repeats):
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if x is not None:
            restorer.engine(x)  # network, tiling and blending only: no decode/encode
        else:
            restorer.restore_file(src, tmp / f"out{i}.jpg", max_pixels=None)
        if restorer.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if x is None:
            (tmp / f"out{i}.jpg").unlink()
    d = restorer.engine.work_factor(h, w)
    plan = restorer.engine.plan(-(-h // d), -(-w // d))  # the tiles of the working-resolution image
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    out = {
        "mp": round(w * h / 1e6, 2), "width": w, "height": h, "device": str(restorer.device),
        "precision": args.precision, "backend": args.backend, "compute_dtype": str(restorer.engine.dtype).replace("torch.", ""),
        "warmup_s": warmup_s, "arch": args.arch, "scale": args.scale, "work_factor": d, "tiles": plan.n_tiles, "tile": [plan.tile_h, plan.tile_w], "overlap": plan.overlap,
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
    ap.add_argument("--configs", default=None,
                    help="BACKEND/PRECISION list; default CPU: torch/fp32,torch/bf16,torch+compile/auto,onnxruntime/fp32; CUDA: torch/fp32,torch/bf16,torch/fp16,torch+graphs/bf16,torch+graphs/fp16")
    ap.add_argument("--devices", default="auto", help="auto = cpu, plus cuda when present")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", default=None, help="network preset (default: the bundled default model's)")
    ap.add_argument("--arch-args", default=None, help="JSON keyword arguments (default: the bundled default model's, else {})")
    ap.add_argument("--tile", default="auto")
    ap.add_argument("--overlap", default="", help="tile overlap in pixels (default: the engine's)")
    ap.add_argument("--scale", default="1", help="working resolution: 1 (full), a factor d or auto (restore --scale)")
    ap.add_argument("--tag", default="", help="suffix for the output file names")
    ap.add_argument("--engine-only", action="store_true", help="time the engine on a decoded tensor (no file I/O)")
    ap.add_argument("--tile-batch", default="", help="tiles per forward pass (default per device)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mp", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arch is None:
        from uniremoval.modelfile import read_config

        bundled, _ = read_config("default")
        args.arch = bundled.arch
        if args.arch_args is None:
            args.arch_args = json.dumps(dict(bundled.arch_args))
    if args.arch_args is None:
        args.arch_args = "{}"
    if args.child:
        if args.tile != "auto":
            args.tile = int(args.tile)
        child(args)
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else args.devices.split(",")
    defaults = {"cpu": "torch/fp32,torch/bf16,torch+compile/auto,onnxruntime/fp32", "cuda": "torch/fp32,torch/bf16,torch/fp16,torch+graphs/bf16,torch+graphs/fp16"}
    flops_px = flops_per_pixel(args.arch, json.loads(args.arch_args))
    flops_photo = flops_per_photo(args.arch, json.loads(args.arch_args))
    print(f"{args.arch}: {flops_px / 1e3:.1f} kFLOP per pixel, {flops_photo / 1e6:.1f} MFLOP per photo", flush=True)
    cfgs = {dev: (args.configs or defaults.get(dev, "torch/fp32")).split(",") for dev in devices}
    peaks = {dev: matmul_peak(dev, bf16=any(not c.endswith("/fp32") for c in cfgs[dev])) for dev in devices}
    results = []
    for dev in devices:
        for cfg in cfgs[dev]:
            backend, prec = cfg.split("/")
            for mp in [float(s) for s in args.sizes.split(",")]:
                cmd = [sys.executable, __file__, "--child", "--mp", str(mp), "--device", dev, "--precision", prec, "--backend", backend,
                       "--repeats", str(args.repeats), "--arch", args.arch, "--arch-args", args.arch_args, "--tile", str(args.tile),
                       "--tile-batch", args.tile_batch, "--overlap", args.overlap, "--scale", args.scale] + (["--engine-only"] if args.engine_only else [])
                p = subprocess.run(cmd, capture_output=True, text=True)
                line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
                if p.returncode != 0 or line is None:
                    print(f"{dev} {prec} {mp} MP failed:\n{p.stderr[-2000:]}", file=sys.stderr)
                    results.append({"mp": mp, "device": dev, "precision": prec, "backend": backend, "error": p.stderr.strip().splitlines()[-1:]})
                    continue
                r = json.loads(line[7:])
                peak = peaks[dev].get(r["compute_dtype"], peaks[dev]["float32"])
                r["share_of_matmul_peak"] = flops_px * r["mp_per_s"] * 1e6 / r.get("work_factor", 1) ** 2 / peak
                results.append(r)
                print(f"{dev:5s} {backend:14s} {prec:5s} {r['mp']:6.2f} MP  {r['median_s']:7.2f} s  {r['mp_per_s']:6.3f} MP/s  "
                      f"peak RSS {r['peak_rss_mib']:7.0f} MiB  tiles {r['tiles']}  {100 * r['share_of_matmul_peak']:.1f}% of peak", flush=True)
    report = {"benchmark": "infer", "engine_only": args.engine_only, "tile": args.tile, "overlap": args.overlap or "default", "tile_batch": args.tile_batch, "machine": machine(), "arch": args.arch, "arch_args": json.loads(args.arch_args),
              "flops_per_pixel": flops_px, "flops_per_photo": flops_photo, "matmul_peak_flops": peaks, "load_average": os.getloadavg(),
              "repeats": args.repeats, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "_".join(devices) + ("_" + args.tag if args.tag else "")
    (out / f"infer_{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"infer_{tag}.md").write_text(markdown(report, args))
    print(f"wrote {out / f'infer_{tag}.json'} and .md")


def markdown(report: dict, args: argparse.Namespace) -> str:
    """The report as a Markdown page: the machine, the network's FLOPs, one row per point."""
    flops_px, flops_photo, peaks, results = report["flops_per_pixel"], report["flops_per_photo"], report["matmul_peak_flops"], report["results"]
    m = report["machine"]
    lines = [f"# Inference benchmark ({args.arch})", "",
             f"Machine: {m['cpu']} ({m.get('isa', 'ISA not recorded')}), {m['cores']} cores, torch {m['torch']}" + (f", GPU {m['gpu']}" if "gpu" in m else "") + f"; {report['date']}.",
             ("Engine only (padding, tiles, network, blending; no file I/O)" if args.engine_only else
              "End-to-end file restore (JPEG decode + network + JPEG encode)") + f", median of {args.repeats} runs; "
             f"load average at the end {report['load_average'][0]:.1f}.",
             f"Network: {flops_px / 1e3:.1f} kFLOP per pixel (convolutions and matrix products)"
             + (f" plus {flops_photo / 1e6:.0f} MFLOP per photo (context encoder)" if flops_photo > 1e5 else "") + "; "
             + ", ".join(f"{d} matmul peak {v['float32'] / 1e9:.0f} GFLOP/s fp32" + (f", {v['bfloat16'] / 1e9:.0f} bf16" if "bfloat16" in v else "") for d, v in peaks.items()) + ".", "",
             "Working resolution 1/d (`--scale`): the network runs on the photo area-downscaled by d; the % of peak counts "
             "the network's FLOPs at that resolution.", "",
             "| device | backend | precision | MP | 1/d | tiles | median s | MP/s | % of matmul peak | peak RSS MiB | peak GPU MiB | first-call s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['device']} | {r['backend']} | {r['precision']} | {r['mp']} | | failed: {r['error']} | | | | | | |")
        else:
            lines.append(f"| {r['device']} | {r['backend']} | {r['precision']} ({r['compute_dtype']}) | {r['mp']} | {r.get('work_factor', 1)} | {r['tiles']} | {r['median_s']:.2f} | "
                         f"{r['mp_per_s']:.3f} | {100 * r['share_of_matmul_peak']:.1f} | {r['peak_rss_mib']:.0f} | {r.get('peak_gpu_mib', 0):.0f} | {r['warmup_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
