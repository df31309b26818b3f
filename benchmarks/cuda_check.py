"""GPU sanity check for the inference engine (run on a machine with CUDA):
tiled vs untiled vs CPU agreement, fp16/bf16 closeness, determinism, and that a tiled run
never allocates memory for the whole image on the GPU."""
from __future__ import annotations

import json
import sys

import torch

from uniremoval import nets
from uniremoval.infer import Engine


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device; nothing to check")
        return 0
    torch.manual_seed(0)
    net = nets.build("nafnet-small")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    x = torch.rand(3, 515, 777)
    cpu = Engine(net, "cpu", tile=None)(x)
    res: dict[str, float | bool | str] = {"gpu": torch.cuda.get_device_name(0)}
    gpu = Engine(net, "cuda", tile=None)
    a = gpu(x)
    res["cpu_vs_cuda_fp32_max_abs"] = (a - cpu).abs().max().item()
    res["cuda_deterministic"] = bool(torch.equal(a, gpu(x)))
    for prec in ("bf16", "fp16"):
        res[f"cuda_{prec}_vs_fp32_max_abs"] = (Engine(net, "cuda", precision=prec, tile=None)(x) - a).abs().max().item()
    tiled = Engine(net, "cuda", tile=256, overlap=32, tile_batch=4)
    res["cuda_tiled_vs_untiled_max_abs"] = (tiled(x) - a).abs().max().item()
    # Tiled GPU memory must not grow with the image: only tiles go to the GPU.
    peaks = {}
    for name, shape in (("6mp", (3, 2000, 3000)), ("24mp", (3, 4000, 6000))):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        Engine(net, "cuda", tile=1024, overlap=32, tile_batch=4)(torch.rand(*shape))
        peaks[name] = torch.cuda.max_memory_allocated() / 2**20
        res[f"cuda_{name}_tiled_peak_alloc_mib"] = peaks[name]
    print(json.dumps(res, indent=2))
    ok = (res["cpu_vs_cuda_fp32_max_abs"] < 1e-3 and res["cuda_deterministic"]
          and peaks["24mp"] < 1.2 * peaks["6mp"])
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
