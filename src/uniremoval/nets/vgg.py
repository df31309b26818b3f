"""VGG-19 convolutional features, our own definition, read from a weights file the user supplies.

The image-grain contrast of Chen et al. uses ImageNet VGG-19 features; nothing is downloaded
here (the project works offline), so the weights come from a file: torchvision's
``vgg19-*.pth`` state dict (keys ``features.N.weight`` / ``features.N.bias``; classifier keys
are ignored) read with ``torch.load(weights_only=True)``, or the same keys in a
``.safetensors`` file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import register

#: torchvision's VGG-19 ``features`` configuration ("M" = 2x2 max pool).
CFG19: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
#: Indices in ``features`` of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (AECR-Net's slices).
DEFAULT_LAYERS: tuple[int, ...] = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _make_features(cfg: Sequence[int | str]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


@register("vgg19-features")
class VGG19Features(nn.Module):
    """VGG-19 ``features`` (same layer indices as torchvision), truncated after the last tap.

    ``forward(x)`` takes images in [0, 1], normalises them with the ImageNet mean/std and
    returns the activations at ``layers`` (indices into ``features``), shallowest first.
    """

    def __init__(self, layers: Sequence[int] | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.layers = tuple(sorted(layers if layers is not None else DEFAULT_LAYERS))
        full = _make_features(CFG19)
        if not self.layers or self.layers[-1] >= len(full) or self.layers[0] < 0:
            raise ValueError(f"layers must be indices in [0, {len(full) - 1}]")
        # Keep the torchvision indices (features.N) so state dicts load as they are.
        self.features = nn.Sequential(*list(full.children())[: self.layers[-1] + 1])
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype) if self.normalize else x
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layers:
                outs.append(h)
        return outs

    def load_features_state_dict(self, state: dict[str, Any]) -> None:
        """Load a torchvision-layout state dict: every needed ``features.N.*`` key must be there;
        keys of later layers and of the classifier are ignored."""
        needed = set(self.features.state_dict())
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.") and k[len("features.") :] in needed}
        missing = sorted(needed - set(feats))
        if missing:
            raise KeyError(f"weights lack {', '.join('features.' + m for m in missing[:6])}{' ...' if len(missing) > 6 else ''}")
        self.features.load_state_dict(feats, strict=True)

    @classmethod
    def from_file(cls, path: str | Path, layers: Sequence[int] | None = None) -> "VGG19Features":
        """Build and load from a ``.pth``/``.pt`` (``torch.load(weights_only=True)``) or ``.safetensors``."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such VGG-19 weights file (nothing is downloaded; supply torchvision's vgg19 .pth)")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: dict[str, Any] = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path}: not a state dict")
        net = cls(layers=layers)
        net.load_features_state_dict(state)
        return net.eval()
