"""Hybrid: high frequencies of the full-resolution change + low frequencies of the 1/d change."""
import sys, numpy as np, torch, torch.nn.functional as F
ROOT = __import__('pathlib').Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'benchmarks'))
from pathlib import Path
from scale_eval import make_pairs
from uniremoval.degrade import Registry
from uniremoval.restorer import Restorer
from uniremoval.workscale import downscale, carry_up
torch.set_num_threads(2)
spec = sys.argv[1]; count = int(sys.argv[2]); d = int(sys.argv[3])
sets = make_pairs(ROOT.parent / 'shared/data/clean/val', count, 256, 2024, Registry.preset('r6'), ('haze','rain','blur'))
R = Restorer.from_pretrained(spec, device='cpu', precision='fp32', tile='auto')
def gblur(t, s):
    r = int(3*s); k = torch.exp(-torch.arange(-r, r+1).float()**2/(2*s*s)); k = k/k.sum()
    t = F.pad(t[None], (r, r, r, r), mode='reflect')
    t = F.conv2d(t, k.view(1,1,1,-1).expand(3,1,1,-1), groups=3)
    return F.conv2d(t, k.view(1,1,-1,1).expand(3,1,-1,1), groups=3)[0]
def psnr(a, b): return float(10*torch.log10(1/((a-b)**2).mean()))
def q8(t): return torch.round(t.clamp(0,1)*255)/255
res = {}
for k, pairs in sets.items():
    rows = {}
    for p in pairs:
        x = torch.from_numpy(p['input']).permute(2,0,1).float(); y = torch.from_numpy(p['target']).permute(2,0,1).float()
        x, y = q8(x), q8(y)
        o1 = R.engine(x)
        lo = downscale(x, d); o2 = carry_up(x, lo, R.engine(lo), d)
        rows.setdefault('d1', []).append(psnr(q8(o1), y)); rows.setdefault(f'd{d}', []).append(psnr(q8(o2), y))
        for s in (2, 4, 8):
            oh = x + (o1 - x) - gblur(o1 - x, s) + gblur(o2 - x, s)
            rows.setdefault(f'hyb{s}', []).append(psnr(q8(oh), y))
    res[k] = {m: np.array(v) for m, v in rows.items()}
    print(k, '  '.join(f'{m} {v.mean():.2f}' for m, v in res[k].items()), flush=True)
