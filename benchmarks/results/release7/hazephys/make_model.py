"""Put a trained prior in front of a restoration model: a `haze-prior` model file.
Usage: make_model.py PRIOR_WEIGHTS(.pt|.safetensors) OUT.json [BODY_MODEL=release6]
BODY_MODEL is release 6 (the body of every composite up to release 7) or any model; when it is
itself a `haze-prior` model (release 7 = `default`), its prior is replaced and everything else
(body weights, ``noise_detail`` and the other prior options) is kept.
(physnet_c.safetensors here is phase c's prior, kept in git: the cache is not; phase d, rejected,
stays in the cache as physnet_d.pt.)"""
import hashlib
import sys
from pathlib import Path

import torch

from uniremoval import nets
from uniremoval.modelfile import load_model, save_model

RECIPE = {"c": "", "d": ", PHASE=d 1200", "e": ", PHASE=e 1500"}
prior_path, out = Path(sys.argv[1]), Path(sys.argv[2])
body = load_model(sys.argv[3] if len(sys.argv) > 3 else "release6")
if body.config.arch == "haze-prior":
    net, arch_args = body.net, dict(body.config.arch_args)
else:
    arch_args = {"body": body.config.arch, "body_args": body.config.arch_args}
    net = nets.build("haze-prior", **arch_args)
    net.body.load_state_dict(body.net.state_dict())
if prior_path.suffix == ".safetensors":
    from safetensors.torch import load_file
    net.prior.load_state_dict(load_file(prior_path))
else:
    net.prior.load_state_dict(torch.load(prior_path, weights_only=True))
phase = prior_path.stem.rsplit("_", 1)[-1] if "_" in prior_path.stem else "c"
prov = {"stage": "haze-prior", "body": {"model": body.name, "sha256": body.config.sha256},
        "prior": {"weights": str(prior_path), "sha256": hashlib.sha256(prior_path.read_bytes()).hexdigest(),
                  "recipe": "benchmarks/results/release7/hazephys/train.py (phase a 2800 steps, PHASE=b 3000, PHASE=c 1800"
                  + RECIPE.get(phase, "") + ")"}}
print(save_model(net, out, "haze-prior", arch_args, body.config.kinds, prov))
