"""The Python API: ``Restorer.from_pretrained(...)(image)`` for arrays, PIL images, tensors
and files, returning the same type it was given."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, overload

import numpy as np
import torch
from PIL import Image as PILImage

from . import image_io, nets
from .image_io import Image
from .infer import Engine
from .modelfile import DEFAULT_MODEL, LoadedModel, load_model

BACKENDS = ("torch", "onnxruntime")


class Restorer:
    """Restores photos with one model; never told which degradation a photo has.

    Build it with :meth:`from_pretrained`; call it on a numpy array (uint8, uint16 or float
    in [0, 1]; H x W, H x W x 1/2/3/4), a PIL image or a float tensor ((C, H, W) or
    (N, C, H, W), C = 1/3/4, values in [0, 1]). The result has the input's type, dtype,
    shape and size; alpha channels are carried through untouched.
    """

    def __init__(self, model: LoadedModel, engine: Engine) -> None:
        self.model = model
        self.engine = engine

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | str | None = "auto",
        overlap: int | None = None,
        tile_batch: int | None = None,
        backend: str = "torch",
        threads: int | None = None,
        compile: bool = False,
        cuda_graphs: bool = False,
        on_message: Callable[[str], None] | None = None,
        scale: int | str | None = None,
    ) -> "Restorer":
        """Load a bundled model by name, or a model file by path (see ``load_model``).

        ``backend="onnxruntime"`` runs the model's ONNX export (made once and cached by
        checksum; see :mod:`uniremoval.export`); ``threads`` caps CPU threads either way.
        ``scale``: the working resolution (``Engine``'s; ``"auto"`` restores large photos at
        a fraction of their size and carries the change up; ``"pyramid"`` restores coarse to fine).
        ``on_message`` receives one-line notes for the user about slow one-time work (the
        first ONNX export of a model announces itself and its duration).
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if threads:
            torch.set_num_threads(threads)
        model = load_model(name_or_path)
        net: Any = model.net
        prior = None
        if backend == "onnxruntime":
            if nets.descriptor(net).photo_prior:
                prior = net.prior  # runs in PyTorch on the whole photo; the graph is the body
            from .export import OnnxNet, cached_onnx

            net = OnnxNet(cached_onnx(model, on_message=on_message), threads=threads, device=str(device))
        engine = Engine(net, device=device, precision=precision, tile=tile, overlap=overlap, tile_batch=tile_batch, compile=compile, cuda_graphs=cuda_graphs, scale=scale, prior=prior)
        return cls(model, engine)

    @property
    def device(self) -> torch.device:
        return self.engine.device

    # ------------------------------------------------------------------ core

    def restore_pixels(self, pixels: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Restore float32 (H, W, 1|3) pixels in [0, 1]; returns the same shape, clipped."""
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            raise ValueError(f"pixels must be (H, W, 1) or (H, W, 3), got {pixels.shape}")
        gray = pixels.shape[2] == 1
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)
        if gray:
            # The networks are trained on RGB; a gray photo is restored as neutral RGB and
            # averaged back, so grayscale in gives grayscale out.
            x = x.expand(3, -1, -1)
        y = self.engine(x, progress=progress).clamp(0, 1)
        if gray:
            y = y.mean(0, keepdim=True)
        return y.permute(1, 2, 0).numpy()

    def restore_image(self, img: Image, progress: Callable[[int, int], None] | None = None) -> Image:
        """Restore a decoded :class:`~uniremoval.image_io.Image`, keeping alpha and metadata."""
        return img.with_pixels(self.restore_pixels(img.pixels, progress))

    def restore_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        jpeg_quality: int = 95,
        max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Read ``src``, restore it and write ``dst`` atomically; returns notes for the user."""
        if Path(src).resolve() == Path(dst).resolve():
            raise image_io.ImageWriteError(f"{dst}: refusing to overwrite the input")
        img = image_io.read_image(src, max_pixels=max_pixels)
        out = self.restore_image(img, progress)
        return img.notes + image_io.write_image(out, dst, jpeg_quality=jpeg_quality)

    # ------------------------------------------------------------------ typed entry points

    @overload
    def __call__(self, image: np.ndarray) -> np.ndarray: ...
    @overload
    def __call__(self, image: PILImage.Image) -> PILImage.Image: ...
    @overload
    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, image: Any) -> Any:
        """Restore ``image`` and return the same type (see the class docstring)."""
        if isinstance(image, np.ndarray):
            return self._numpy(image)
        if isinstance(image, PILImage.Image):
            return self._pil(image)
        if isinstance(image, torch.Tensor):
            return self._tensor(image)
        raise TypeError(f"cannot restore a {type(image).__name__}; pass a numpy array, PIL image or torch tensor")

    def _numpy(self, a: np.ndarray) -> np.ndarray:
        if a.ndim == 2:
            return self._numpy(a[..., None])[..., 0]
        if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"array must be H x W or H x W x 1/2/3/4, got {a.shape}")
        if a.dtype == np.uint8:
            scale = 255.0
        elif a.dtype == np.uint16:
            scale = 65535.0
        elif np.issubdtype(a.dtype, np.floating):
            scale = 1.0
        else:
            raise TypeError(f"unsupported array dtype {a.dtype}; use uint8, uint16 or float")
        colour = 1 if a.shape[2] in (1, 2) else 3
        restored = self.restore_pixels(a[..., :colour].astype(np.float32) / scale)
        if scale == 1.0:
            out = restored.astype(a.dtype)
        else:
            out = np.floor(restored * scale + 0.5).astype(a.dtype)
        if a.shape[2] in (2, 4):
            out = np.concatenate([out, a[..., colour:]], axis=2)
        return out

    def _pil(self, im: PILImage.Image) -> PILImage.Image:
        mode = im.mode
        if mode in ("RGB", "RGBA", "L", "LA"):
            return PILImage.fromarray(self._numpy(np.asarray(im)))
        if mode.startswith("I;16"):
            out = self._numpy(np.asarray(im).astype(np.uint16))
            return PILImage.fromarray(out)
        # Palette, CMYK, 1-bit, ...: restored in RGB(A), the only modes the network's output fits.
        conv = im.convert("RGBA" if ("transparency" in im.info or mode in ("PA", "RGBa")) else "RGB")
        return self._pil(conv)

    def _tensor(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4:
            return torch.stack([self._tensor(s) for s in t])
        if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
            raise ValueError(f"tensor must be (C, H, W) or (N, C, H, W) with C in 1/3/4, got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError("tensor must be floating point with values in [0, 1]")
        colour = 1 if t.shape[0] == 1 else 3
        px = t[:colour].detach().float().cpu().permute(1, 2, 0).numpy()
        out = torch.from_numpy(self.restore_pixels(px)).permute(2, 0, 1).to(device=t.device, dtype=t.dtype)
        if t.shape[0] == 4:
            out = torch.cat([out, t[3:].detach()], 0)
        return out
