"""Tone heads for the experiment of README.md: a small conv net (ToneHead) or an MLP on hand-made
statistics (ToneStats) reads area thumbnails of the degraded photo and of release 6's output and
predicts a per-photo 3x4 colour transform (+ a coarse grid), applied to the output."""
import torch, torch.nn.functional as F
from torch import nn
S = 96
class ToneHead(nn.Module):
    """Reads area thumbnails (SxS) of the degraded photo and the network's output; returns a
    per-photo 3x4 colour transform plus a coarse GxG grid of 3x4 transforms (bilinear), applied
    to the output: out = o + M o + c. Zero-initialised: a fresh head is the identity."""
    def __init__(self, width=32, grid=4, use_grid=True):
        super().__init__()
        c = width
        self.body = nn.Sequential(
            nn.Conv2d(9, c, 3, 2, 1), nn.SiLU(), nn.Conv2d(c, 2 * c, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, 2, 1), nn.SiLU(), nn.Conv2d(2 * c, 4 * c, 3, 2, 1), nn.SiLU())
        self.grid, self.use_grid = grid, use_grid
        self.glob = nn.Sequential(nn.Linear(8 * c + 18, 128), nn.SiLU(), nn.Linear(128, 12))
        self.cell = nn.Conv2d(4 * c, 12, 1)
        for m in (self.glob[-1], self.cell):
            nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)
    def coefficients(self, x, o):
        inp = torch.cat([x, o, o - x], 1)
        f = self.body(inp)
        st = lambda z: torch.cat([z.mean((2, 3)), z.std((2, 3))], 1)
        g = self.glob(torch.cat([st(f), st(inp)], 1))[:, :, None, None]
        if self.use_grid:
            g = g + self.cell(F.adaptive_avg_pool2d(f, self.grid))
        return g  # (N, 12, G, G) or (N, 12, 1, 1)
    @staticmethod
    def apply(coef, o):
        h, w = o.shape[-2:]
        if coef.shape[-1] > 1:
            coef = F.interpolate(coef, (h, w), mode="bilinear", align_corners=False)
        M = coef[:, :9].reshape(coef.shape[0], 3, 3, *coef.shape[-2:])
        return o + torch.einsum("nijhw,njhw->nihw", M, o) + coef[:, 9:12]
def thumb(a):
    return F.adaptive_avg_pool2d(a, (S, S))

def _feats(x, o):
    """Hand-made per-photo statistics of the thumbnails of the input and the output."""
    out = []
    for z in (x, o, o - x):
        f = z.flatten(2)
        q = torch.quantile(f, torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99]), dim=2).permute(1, 2, 0).flatten(1)
        out += [f.mean(2), f.std(2), q]
    for z in (x, o):
        dark = -F.max_pool2d(-z.amin(1, keepdim=True), 7, 1, 3).flatten(1)
        out.append(torch.quantile(dark, torch.tensor([0.1, 0.5, 0.9, 0.99]), dim=1).T)
        mx, mn = z.amax(1), z.amin(1)
        out.append(((mx - mn) / (mx + 1e-3)).flatten(1).mean(1, keepdim=True))
    cells = torch.cat([F.adaptive_avg_pool2d(x, 4), F.adaptive_avg_pool2d(o, 4)], 1).flatten(1)
    return torch.cat(out + [cells], 1)

class ToneStats(nn.Module):
    """Per-photo 3x4 colour transform (+ optional 4x4 grid of gain/offset) from statistics."""
    def __init__(self, hidden=64, use_grid=False):
        super().__init__()
        n_in = 3 * (3 + 3 + 15) + 2 * 5 + 96
        self.use_grid = use_grid
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.glob = nn.Linear(hidden, 12)
        self.cell = nn.Linear(hidden, 16 * 6) if use_grid else None
        for m in (self.glob, self.cell):
            if m is not None: nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)
    def coefficients(self, x, o):
        return self.from_feats((_feats(x, o) - self.norm[0]) / self.norm[1])
    def from_feats(self, f):
        h = self.mlp(f)
        g = self.glob(h)[:, :, None, None]
        if self.cell is not None:
            c = self.cell(h).view(-1, 6, 4, 4)  # per-cell per-channel gain and offset
            z = torch.zeros(c.shape[0], 12, 4, 4)
            z[:, 0], z[:, 4], z[:, 8] = c[:, 0], c[:, 1], c[:, 2]
            z[:, 9:12] = c[:, 3:6]
            g = g + z
        return g
