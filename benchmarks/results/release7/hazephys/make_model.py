"""Put a trained prior in front of a restoration model: a `haze-prior` model file.
Usage: make_model.py PRIOR_WEIGHTS(.pt|.safetensors) OUT.json [BODY_MODEL=release6: release 6, the body of every composite so far]
(physnet_c.safetensors here is phase c's prior, kept in git: the cache is not; phase d, rejected,
stays in the cache as physnet_d.pt.)"""
import hashlib
import sys
from pathlib import Path

import torch

from uniremoval import nets
from uniremoval.modelfile import load_model, save_model

prior_path, out = Path(sys.argv[1]), Path(sys.argv[2])
body = load_model(sys.argv[3] if len(sys.argv) > 3 else "release6")
net = nets.build("haze-prior", body=body.config.arch, body_args=body.config.arch_args)
net.body.load_state_dict(body.net.state_dict())
if prior_path.suffix == ".safetensors":
    from safetensors.torch import load_file
    net.prior.load_state_dict(load_file(prior_path))
else:
    net.prior.load_state_dict(torch.load(prior_path, weights_only=True))
prov = {"stage": "haze-prior", "body": {"model": body.name, "sha256": body.config.sha256},
        "prior": {"weights": str(prior_path), "sha256": hashlib.sha256(prior_path.read_bytes()).hexdigest(),
                  "recipe": "benchmarks/results/release7/hazephys/train.py (phase a 2800 steps, PHASE=b 3000, PHASE=c 1800"
                  + (", PHASE=d 1200)" if prior_path.stem.endswith("_d") else ")")}}
print(save_model(net, out, "haze-prior", {"body": body.config.arch, "body_args": body.config.arch_args}, body.config.kinds, prov))
