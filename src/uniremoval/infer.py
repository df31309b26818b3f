"""Inference engine: any image size in, exactly that size out, in bounded memory.

How a (3, H, W) image goes through a network:
1. It is reflect-padded at the bottom and right to the network's size multiple (the
   U-Net halves the resolution several times), so the network never sees a ragged size.
   The size multiple, the precisions the network supports and its receptive radius come
   from its descriptor (:mod:`uniremoval.nets.descriptor`).
2. Small images run in one pass. Once an image exceeds a pixel budget it is cut into tiles
   that overlap; tiles start at multiples of the size multiple, so a U-Net sees each tile's
   pixels on the same grid as the whole image.
3. Tiles are blended with separable weights that are exactly zero over the outer quarter of
   each overlap and ramp smoothly (raised cosine) over its middle half. A pixel near a tile's
   inner edge, where the tile lacks context, therefore never contributes: for a network whose
   receptive radius is at most a quarter of the overlap, tiled output equals untiled output.
4. The padding is cropped away.

With ``scale`` (``"auto"`` or a factor d > 1) a large photo is first area-downscaled by d,
restored as above, and the change carried back to full resolution by a guided filter
(:mod:`uniremoval.workscale`): the networks restore degradations at the pixel size they were
trained on, and a 12 MP photo's rain and blur are several times larger (``"pyramid"``: at
every power-of-two level, coarse to fine, then at full resolution).

A network that reads the whole photo (descriptor ``context_size``) gets its thumbnail
(:func:`uniremoval.nets.thumbnail` of the unpadded image, computed once per photo) with every
tile and with the one-pass run alike: the photo's global tone cannot depend on the tiling.

Tiles are batched and only tiles ever go to the accelerator; the full image and the output
accumulator stay in host memory.
"""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Callable, Iterator, Literal

import torch
from torch import nn

from .sysinfo import cpu_has_fast_bf16
from .options import DEFAULT_OVERLAP, DEFAULT_PIXEL_BUDGET, DEFAULT_TILE, DEFAULT_TILE_BATCH, parse_scale, resolve_device
from . import nets
from .hostmem import tune_malloc
from .nets import pad_to_multiple, reflect_indices
from .tiling import TilePlan, blend_window, plan_tiles, tile_starts
from .workscale import restore_at_scale, work_factor

__all__ = [
    "DEFAULT_OVERLAP", "DEFAULT_PIXEL_BUDGET", "DEFAULT_TILE", "DEFAULT_TILE_BATCH", "Engine", "PRECISIONS",
    "Precision", "TilePlan", "blend_window", "cpu_has_fast_bf16", "plan_tiles", "reflect_indices",
    "resolve_precision", "select_device", "tile_starts",
]

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

#: Tile once an image has more pixels than this (per device type). On the CPU tiles are
#: faster than one pass whatever the image size, because a tile's activations stay in cache:
#: nafnet-small bf16 runs at ~2.0 MP/s on 384-640 px tiles, 1.25 MP/s at 768 px and 0.9 MP/s
#: at 1024 px (2-core Zen 4). Tiles much smaller than 384 px cost quality: NAFNet's channel
#: attention pools over 192 px windows (TLC), which a tile edge clips (256/32 tiles: 34 dB
#: from the one-pass output on a real photo; 384/64: 41 dB). The tables live in :mod:`uniremoval.options`
#: (CLI help quotes them without importing torch); ``DEFAULT_TILE`` tiles shrink to fit the photo
#: (``plan_tiles(fit=True)``): 12 MP on the CPU gets 63 tiles of 464x480 px, 14.0 M pixels of work
#: instead of 15.9 M with fixed 384 px tiles (12 MP: 8.7 -> 7.5 s).


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, then Apple MPS, else the CPU
    (:func:`uniremoval.options.resolve_device`, the one rule for every entry point)."""
    return resolve_device(name)




def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Map a precision name to the compute dtype for ``device``.

    ``auto`` is the measured best (benchmarks/README.md): bf16 on a CPU with native bf16
    (12 MP: 9.5 s fp32 -> 7.5 s bf16 with 512 px tiles; 0.01 dB PSNR change on the synthetic
    evaluation set, 54-64 dB from the fp32 output), fp32 on other CPUs and on accelerators
    (where fp16/bf16 are opt-in), compiled or not.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cpu":
        raise ValueError("fp16 is not supported on the CPU (use bf16 or fp32)")
    return torch.float16


class Engine:
    """Runs a restoration network over images of any size (see the module docstring).

    Args:
        net: the network (put in eval mode and moved to ``device``), or an
            :class:`~uniremoval.export.OnnxNet` run by onnxruntime (fp32, its own threads).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ... or a ``torch.device``.
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (autocast compute dtype).
        tile: ``"auto"`` (tile above the device's pixel budget, tiles of the device's default
            side times the descriptor's ``tile_scale``), ``None``/``0`` (never
            tile), or a tile side in pixels.
        overlap: minimum overlap between neighbouring tiles in pixels (widened where the tile
            count allows); None means the device's default (CPU 32, else 64), but at most a
            quarter of the tile, so a small ``tile`` alone is a valid choice.
        tile_batch: tiles per forward pass (default per device).
        pixel_budget: pixels above which ``tile="auto"`` tiles (default per device).
        channels_last: NHWC memory layout (faster convolutions on CPU and tensor cores).
        deterministic: ask cuDNN for deterministic kernels (CPU kernels already are).
        compile: run full tiles through ``torch.compile`` (fixed shapes, so one compilation;
            Inductor caches it on disk for later runs). Pays off on many or large photos.
        cuda_graphs: CUDA only: record the forward pass of a batch of full tiles once as a
            CUDA graph and replay it for every later batch of that shape, which removes the
            per-kernel launch cost of a small network (other shapes run normally).
        scale: working resolution: 1 (restore at full resolution), a factor d (restore at
            1/d, carry the change up), ``"auto"`` (d from the photo's size,
            :func:`uniremoval.workscale.auto_factor`; 1 up to 724 px), or ``"pyramid"``
            (:func:`uniremoval.workscale.restore_pyramid`); None: the default
            (:data:`uniremoval.options.DEFAULT_SCALE`).
        prior: a photo prior (:mod:`uniremoval.nets.hazeprior`) run once on the whole photo
            first; a ``photo_prior`` net's own (only its body is tiled), or given for ONNX.
    """

    def __init__(
        self,
        net: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | str | None = "auto",
        overlap: int | None = None,
        tile_batch: int | None = None,
        pixel_budget: int | None = None,
        channels_last: bool = True,
        deterministic: bool = True,
        compile: bool = False,
        cuda_graphs: bool = False,
        scale: int | str | None = None,
        prior: nn.Module | None = None,
    ) -> None:
        self.scale = parse_scale(scale)
        if prior is None and isinstance(net, nn.Module) and nets.descriptor(net).photo_prior:
            # body(prior(x)): the prior reads the whole photo once, only the body is tiled.
            prior, net = net.prior, net.body
        self.prior = prior
        self.device = select_device(device) if isinstance(device, str) else device
        self.is_torch = isinstance(net, nn.Module)
        if not self.is_torch:
            # onnxruntime takes host arrays and picks its own execution provider.
            self.device = torch.device("cpu")
            if precision not in ("auto", "fp32"):
                raise ValueError(f"precision {precision} is not available with the onnxruntime backend (fp32 only)")
            channels_last = False
        compile = compile and self.is_torch
        if cuda_graphs and (self.device.type != "cuda" or not self.is_torch):
            raise ValueError("CUDA graphs need the torch backend on a CUDA device (--device cuda)")
        self.cuda_graphs = cuda_graphs
        self._graph: tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None
        self.descriptor = nets.descriptor(net)
        self.dtype = self._precision(precision)
        kind = self.device.type
        self.tile: int | None = None
        self.pixel_budget: int | None = None
        self.overlap: int | None = None
        self._set_tiling(tile, pixel_budget)
        self._set_overlap(overlap)
        self.tile_batch = max(1, tile_batch or DEFAULT_TILE_BATCH.get(kind, 1))
        if kind == "cpu":
            # Full-resolution activations otherwise get fresh pages from the kernel on every
            # pass (hostmem's docstring): 384 px tile 166 -> ~115 ms here.
            tune_malloc()
        self.channels_last = channels_last
        if kind == "cuda" and deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        if self.prior is not None:
            self.prior = self.prior.eval().float().to(self.device)
        if isinstance(net, nn.Module):
            net = net.eval().to(self.device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
        self.net = net
        self.multiple = self.descriptor.size_multiple
        # Compiled for one input shape (a batch of full tiles); other shapes run eagerly, so a
        # folder of odd sizes never triggers a recompilation per photo.
        self._compiled = None
        if compile:
            # Inductor's on-disk cache makes later runs start in seconds; keep it with ours
            # rather than in /tmp, which may be cleared between runs.
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "uniremoval" / "inductor"))
            # Freezing folds the weights into the graph as constants, which lets Inductor
            # pre-pack them for oneDNN on the CPU: 107 -> 86 ms per 384 px bf16 tile here.
            opts = {"freezing": True} if self.device.type == "cpu" else None
            self._compiled = torch.compile(net, dynamic=False, options=opts)

    def _precision(self, precision: str) -> torch.dtype:
        """The compute dtype: ``precision`` resolved for the device, within what the network's
        descriptor supports (``auto`` falls back to fp32, an explicit choice is refused)."""
        dtype = resolve_precision(precision, self.device)
        name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        if self.descriptor.supports(name):
            return dtype
        if precision == "auto":
            return torch.float32
        raise ValueError(f"precision {precision} is not supported by {self.descriptor.arch} (supports: {', '.join(self.descriptor.precisions)})")

    def tiling_is_exact(self, height: int, width: int) -> bool:
        """Whether the output for an image of this size equals the one-pass output: it runs
        in one pass, or its tiles overlap enough for the network's receptive radius."""
        plan = self.plan(height, width)
        if not plan.tiled:
            return True
        axes = ((plan.overlap_h, len(plan.ys)), (plan.overlap_w, len(plan.xs)))
        return self.descriptor.tiling_exact(min(ov for ov, n in axes if n > 1))

    def plan(self, height: int, width: int) -> TilePlan:
        """The tile plan this engine uses for an image of the given size."""
        use_tiles = self.tile is not None and (self.pixel_budget == 0 or height * width > (self.pixel_budget or 0))
        overlap = self.overlap
        if overlap is None:
            overlap = min(DEFAULT_OVERLAP.get(self.device.type, 64), (self.tile or 0) // 4)
        # Compiled graphs and CUDA graphs are recorded for one tile shape: keep it fixed there.
        fit = self._compiled is None and not self.cuda_graphs
        return plan_tiles(height, width, self.multiple, self.tile if use_tiles else None, overlap, fit=fit)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _set_tiling(self, tile: int | str | None, pixel_budget: int | None = None) -> None:
        """Interpret ``tile`` (``"auto"``, 0/None = one pass, or a size in pixels)."""
        kind = self.device.type
        if isinstance(tile, str):
            if tile != "auto":
                raise ValueError(f"tile must be 'auto', 0 or a size in pixels, not {tile!r}")
            self.tile = DEFAULT_TILE.get(kind, 768)
            scale, m = self.descriptor.tile_scale, self.descriptor.size_multiple
            if scale != 1:
                # Smaller activations per pixel: larger tiles at the same footprint (descriptor).
                self.tile = max(m, round(self.tile * scale / m) * m)
            self.pixel_budget = pixel_budget or DEFAULT_PIXEL_BUDGET.get(kind, 2_000_000)
        elif not tile:
            self.tile, self.pixel_budget = None, None
        else:
            if int(tile) < 1:
                raise ValueError("tile size must be positive")
            self.tile, self.pixel_budget = int(tile), 0

    def _set_overlap(self, overlap: int | None) -> None:
        self.overlap = None if overlap is None else int(overlap)
        if self.overlap is not None and self.overlap < 0:
            raise ValueError("tile overlap must be >= 0")

    def with_tiling(self, tile: int | str | None = None, overlap: int | None = None, scale: int | str | None = None) -> "Engine":
        """An engine sharing this one's network, compiled function and device (no reload,
        no copy of weights) with its own tiling and working scale; ``None`` keeps this
        engine's setting.

        Concurrent requests with different tile options each get one, so they cannot race
        on the shared engine's settings. A recorded CUDA graph is not shared: it belongs to
        one tile shape and its static buffers would be written by two callers at once.
        """
        if tile is None and overlap is None and scale is None:
            return self
        e = copy.copy(self)
        e._graph = None
        if scale is not None:
            e.scale = parse_scale(scale)
        if tile is not None:
            e._set_tiling(tile)
        if overlap is not None:
            e._set_overlap(overlap)
        return e

    def context(self, x: torch.Tensor) -> torch.Tensor | None:
        """The context input for the (3, H, W) photo ``x``: its thumbnail when the network
        reads one (descriptor ``context_size``), else None."""
        size = self.descriptor.context_size
        return None if size is None else nets.thumbnail(x, size)

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if not self.is_torch:
            return self.net(batch) if context is None else self.net(batch, context=context)
        x = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        kw = {} if context is None else {"context": context.to(self.device)}
        fn = self.net
        full = self.tile is not None and tuple(x.shape) == (self.tile_batch, x.shape[1], self.tile, self.tile)
        if full and self.cuda_graphs:
            return self._replay(x, kw.get("context"))
        if self._compiled is not None and full:
            fn = self._compiled
        with self._autocast():
            y = fn(x, **kw)
        return y.float().to("cpu").contiguous()

    def _replay(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Run a batch of full tiles through the recorded CUDA graph (recorded on first use:
        a few warm-up passes on a side stream, as CUDA graph capture requires)."""
        if self._graph is None or self._graph[1].shape != x.shape:
            # Recorded for one shape; a new full-tile shape (say after with_tiling) records anew.
            static_in = x.clone()
            # The context (same shape for every photo) is a static input too, copied per call.
            static_ctx = None if context is None else context.clone()
            kw = {} if static_ctx is None else {"context": static_ctx}
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side), self._autocast():
                for _ in range(3):
                    self.net(static_in, **kw)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), self._autocast():
                static_out = self.net(static_in, **kw)
            self._graph = (graph, static_in, static_ctx, static_out)
        graph, static_in, static_ctx, static_out = self._graph
        static_in.copy_(x)
        if static_ctx is not None and context is not None:
            static_ctx.copy_(context)
        graph.replay()
        # .to("cpu") copies, so the next replay cannot overwrite what is returned.
        return static_out.float().to("cpu").contiguous()

    def _tiles(self, x: torch.Tensor, plan: TilePlan) -> Iterator[tuple[list[tuple[int, int]], torch.Tensor]]:
        rows = reflect_indices(plan.padded_height, plan.height)
        cols = reflect_indices(plan.padded_width, plan.width)
        coords = [(y, xx) for y in plan.ys for xx in plan.xs]
        th, tw = plan.tile_h, plan.tile_w
        for i in range(0, len(coords), self.tile_batch):
            chunk = coords[i : i + self.tile_batch]
            # A tile inside the photo is a plain slice (a view; stack copies it once); only
            # tiles reaching into the padding need the reflect gather, which is ~10x slower.
            tiles = [
                x[:, y : y + th, xx : xx + tw]
                if y + th <= plan.height and xx + tw <= plan.width
                else x[:, rows[y : y + th]][:, :, cols[xx : xx + tw]]
                for y, xx in chunk
            ]
            yield chunk, torch.stack(tiles)

    def work_factor(self, height: int, width: int) -> int:
        """The working-resolution factor for a photo of this size (1: full resolution)."""
        return work_factor(self.scale, height, width)

    def __call__(self, x: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Restore a float32 (3, H, W) CPU tensor in [0, 1]; returns (3, H, W) on the CPU.

        ``progress(done, total)`` is called after each batch of tiles.
        """
        if x.dim() != 3:
            raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(x.shape)}")
        x = x.float().cpu()
        if self.prior is not None:
            x = self.prior.apply_photo(x.to(self.device)).cpu()
        return restore_at_scale(x, self._restore, self.scale, progress)

    def _restore(self, x: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Steps 1-4 of the module docstring on a float32 (3, H, W) CPU tensor."""
        c, h, w = x.shape
        plan = self.plan(h, w)
        ctx = self.context(x)
        if not plan.tiled:
            xp, _ = pad_to_multiple(x, self.multiple)
            out = self._forward(xp[None], ctx)[0, :, :h, :w].contiguous()
            if progress:
                progress(1, 1)
            return out
        acc = torch.zeros(c, plan.padded_height, plan.padded_width)
        wy = {y: blend_window(plan.tile_h, plan.overlap_h, y > 0, y + plan.tile_h < plan.padded_height) for y in plan.ys}
        wx = {xx: blend_window(plan.tile_w, plan.overlap_w, xx > 0, xx + plan.tile_w < plan.padded_width) for xx in plan.xs}
        # The 2-D weights are outer products on a grid, so their sum is the outer product of
        # the 1-D sums: no full-size weight map is needed.
        norm_y = torch.zeros(plan.padded_height)
        norm_x = torch.zeros(plan.padded_width)
        for y in plan.ys:
            norm_y[y : y + plan.tile_h] += wy[y]
        for xx in plan.xs:
            norm_x[xx : xx + plan.tile_w] += wx[xx]
        done = 0
        for chunk, batch in self._tiles(x, plan):
            out = self._forward(batch, ctx)
            for (y, xx), t in zip(chunk, out):
                acc[:, y : y + plan.tile_h, xx : xx + plan.tile_w].add_(t * (wy[y][:, None] * wx[xx][None, :]))
            done += len(chunk)
            if progress:
                progress(done, plan.n_tiles)
        acc = acc[:, :h, :w]
        acc.div_(norm_y[:h, None] * norm_x[None, :w])
        return acc.contiguous()
