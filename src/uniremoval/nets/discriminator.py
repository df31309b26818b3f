"""PatchGAN discriminator with spectral normalisation (stage 2's D, METHOD.md).

Pix2pix-style: strided 4x4 convolutions with LeakyReLU, one real/fake score per overlapping
patch (70x70 receptive field with the defaults). Spectral norm on every convolution bounds the
Lipschitz constant, which stabilises adversarial training without batch norm (whose batch
statistics would couple real and fake batches).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from . import register


@register("patchgan")
class PatchDiscriminator(nn.Module):
    """Scores an image patch-wise: (N, C, H, W) -> (N, 1, H', W') logits.

    Args:
        in_channels: image channels.
        width: channels of the first layer (doubled per layer, capped at 8x).
        n_layers: strided layers after the first (3 gives the 70x70 PatchGAN).
        spectral: apply spectral norm to every convolution.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, spectral: bool = True) -> None:
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = [sn(nn.Conv2d(in_channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):
            c_out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [sn(nn.Conv2d(c, c_out, 4, stride=stride, padding=1)), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(sn(nn.Conv2d(c, 1, 4, stride=1, padding=1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
