"""Experiment: restore at a working resolution (area-downscaled by d), carry the change up
with the fast guided filter, vs full resolution, on the scale-eval pairs.
Usage: python workres.py KINDS LABEL=MODEL,... RADIUS EPS [MAX_D_OVER_F]"""
import sys, time, numpy as np, torch, torch.nn.functional as F
ROOT = __import__('pathlib').Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'benchmarks'))
from scale_eval import make_pairs, upsample
from uniremoval.degrade import Registry
from uniremoval.restorer import Restorer
from uniremoval.nets.globalctx import guided_upsample
torch.set_num_threads(2)
kinds = tuple(sys.argv[1].split(','))
models = dict(m.split('=', 1) for m in sys.argv[2].split(','))
radius, eps = int(sys.argv[3]), float(sys.argv[4])
sets = make_pairs(ROOT.parent / 'shared/data/clean/val', 8, 256, 2024, Registry.preset('r6'), kinds)
def psnr(a, b): return 10*np.log10(1/np.mean((a-b)**2))
def q8(a): return np.round(np.clip(a,0,1)*255)/255
for name, spec in models.items():
    R = Restorer.from_pretrained(spec, device='cpu', precision='fp32', tile='auto')
    for k in kinds:
        row = {}
        for f in (1, 2, 4):
            for d in (1, 2, 4):
                if d > f * int(sys.argv[5] if len(sys.argv) > 5 else 1): continue
                ps = []
                for p in sets[k]:
                    x, y = q8(upsample(p['input'], f, 'lanczos')), q8(upsample(p['target'], f, 'lanczos'))
                    if d == 1:
                        o = R.restore_pixels(x.astype(np.float32))
                    else:
                        xt = torch.from_numpy(x.astype(np.float32)).permute(2,0,1)[None]
                        lo = F.avg_pool2d(xt, d)
                        olo = torch.from_numpy(R.restore_pixels(lo[0].permute(1,2,0).numpy().copy())).permute(2,0,1)[None]
                        o = (xt + guided_upsample(olo - lo, lo, xt, d, radius, eps))[0].permute(1,2,0).clamp(0,1).numpy()
                    ps.append(psnr(q8(o), y))
                row[f'x{f}/d{d}'] = np.mean(ps)
        print(name, k, '  '.join(f'{kk} {v:.2f}' for kk, v in row.items()), flush=True)
