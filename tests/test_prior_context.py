"""A photo prior reads the whole photo in training as at inference: each crop carries the crop
of the prior's output on its whole degraded photo (``stages.common.PriorContext``, an
``aligned`` context the data layer cuts with the crop), and ``haze-prior`` then runs its body
on that instead of the prior's estimate from the crop alone."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hazeprior import BODY  # noqa: E402
from test_hazeprior import _random_prior_net as _hazy_net  # noqa: E402
from test_stage_transfer import cfg_for  # noqa: E402

from uniremoval import nets  # noqa: E402
from uniremoval.data import RealPhotos, SyntheticPairs  # noqa: E402
from uniremoval.stages.common import PriorContext, StageDataConfig, ThumbnailContext, restore, training_prior  # noqa: E402
from uniremoval.stages.transfer import build_transfer_datasets, train_transfer  # noqa: E402
from uniremoval.train.config import ConfigError  # noqa: E402

class Affine:
    """An aligned context: a map of the photo that is not the photo (0.5 p + 0.25)."""

    aligned = True

    def __init__(self) -> None:
        self.photos: list[torch.Tensor] = []

    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        self.photos.append(photo.clone())
        return photo * 0.5 + 0.25


def _smooth_photos(tmp: Path, sizes: list[tuple[int, int]]) -> Path:
    """Smooth photos in [0.2, 0.8], so resizing never overshoots [0, 1] (nothing is clipped)."""
    d = tmp / "clean"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        img = np.stack([0.5 + 0.3 * np.sin(6 * xx + c + rng.random() * 3) * np.cos(4 * yy + c) for c in range(3)], -1)
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(d / f"p{i}.png")
    return d


def test_an_aligned_context_is_cut_and_resized_with_the_crop(tmp_path: Path) -> None:
    d = _smooth_photos(tmp_path, [(60, 90)])
    ctx = Affine()
    for scales, tol in ((None, 1e-6), ((1.5, 3.0), 2e-3)):
        ds = SyntheticPairs(d, kinds=("clean", "haze"), crop=24, seed=3, length=6, context=ctx, scales=scales)
        for i in range(6):
            it = ds[i]
            assert ctx.photos[-1].shape[-2:] == tuple(it["params"]["synth_size"])  # it read the whole photo
            assert it["context"].shape == it["input"].shape
            torch.testing.assert_close(it["context"], it["input"] * 0.5 + 0.25, rtol=0, atol=tol)
    # With bits, the context reads the photo as the file a network would get: quantised.
    SyntheticPairs(d, kinds=("haze",), crop=24, seed=1, length=1, context=ctx, bits=8)[0]
    q = ctx.photos[-1] * 255
    assert torch.allclose(q, q.round(), atol=1e-4)


def test_real_photos_cut_pad_and_flip_an_aligned_context_with_the_crop(tmp_path: Path) -> None:
    d = _smooth_photos(tmp_path, [(40, 50), (12, 30)])  # the second is smaller than the crop
    ds = RealPhotos(d, crop=16, seed=0, hflip=True, context=Affine())
    flips = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            it = ds[i]
            flips.add(bool(it["params"].get("hflip")))
            torch.testing.assert_close(it["context"], it["input"] * 0.5 + 0.25, rtol=0, atol=1e-6)
    assert flips == {True, False}
    whole = RealPhotos(d, context=Affine())[0]  # no crop: the whole photo's map
    torch.testing.assert_close(whole["context"], whole["input"] * 0.5 + 0.25, rtol=0, atol=1e-6)


def test_prior_context_is_the_engines_prior_output_on_a_frozen_copy() -> None:
    net = _hazy_net()
    pc = PriorContext(net.prior)
    photo = torch.rand(3, 50, 70)
    out = pc(photo)
    assert torch.equal(out, net.prior.apply_photo(photo)) and not torch.equal(out, photo)
    assert pc.prior is not net.prior and not any(p.requires_grad for p in pc.prior.parameters())


def test_which_networks_get_their_priors_output_in_training() -> None:
    net = _hazy_net()
    assert training_prior(net) is net.prior
    assert training_prior(nets.build("haze-prior", **BODY, train_prior=True)) is None  # it changes under the data
    assert training_prior(nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)) is None
    on = StageDataConfig(whole_photo=True).synthesis(None, net.prior)
    assert on["whole"] and isinstance(on["context"], PriorContext)
    assert StageDataConfig(whole_photo=True, prior_reads="crop").synthesis(None, net.prior)["context"] is None
    # Crops degraded alone: the crop is the whole photo, so the prior reads it in the forward.
    assert StageDataConfig().synthesis(None, net.prior) == {"whole": False, "context": None, "bits": None}
    assert isinstance(StageDataConfig().synthesis(16, net.prior)["context"], ThumbnailContext)
    with pytest.raises(ConfigError, match="prior_reads"):
        StageDataConfig(prior_reads="tile").check("data", "crop")


def test_the_body_runs_on_the_given_prior_output() -> None:
    net = _hazy_net()
    x, c = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x, context=c), net.body(c))
        assert torch.equal(net(x), net.body(net.prior.dehaze(x)))
        odd, codd = torch.rand(1, 3, 30, 27), torch.rand(1, 3, 30, 27)  # restore pads both alike
        assert torch.equal(restore(net, odd, context=codd), restore(net.body, codd))
    with pytest.raises(ValueError, match="must match"):
        net(x, context=c[:, :, :16])


def test_transfer_trains_the_body_on_the_crops_of_the_whole_photos_prior_output(tmp_path: Path) -> None:
    d = _smooth_photos(tmp_path, [(48, 64), (64, 40)])
    net = _hazy_net()
    args = "{body: nafnet, body_args: {width: 8, enc_blocks: [1, 1], middle_blocks: 1}, prior_width: 8}"
    cfg = cfg_for(tmp_path / "run", "run.steps=2", "run.val_every=100", "model.arch=haze-prior", f"model.args={args}",
                  "loss.img_weight=0", "loss.fcl_weight=0", f"data.clean_dir={d}", "data.whole_photo=true", "data.crop=16",
                  "data.workers=0", "data.val_count=0", "kinds=[haze, clean]", "untaught=[haze, clean]", "data.images_per_step=4")
    cfg.teachers = {}
    train, _, desc = build_transfer_datasets(cfg, None, training_prior(net))
    assert desc["prior_reads"] == "photo"
    item = train[0]
    assert item["context"].shape == item["input"].shape
    assert not torch.allclose(item["context"][0], item["input"][0])  # the haze crop was dehazed
    seen: list[tuple[torch.Tensor, Any]] = []
    net.body.register_forward_pre_hook(lambda m, a: seen.append((a[0].detach().clone(), None)) if m.training else None)
    cfg.model.build = lambda: net  # type: ignore[method-assign]
    res = train_transfer(cfg, train)
    assert res.step == 2 and seen
    firsts = [train[i]["context"] for i in range(len(train))]
    # the body's first batch is made of the items' contexts (the prior's output), not their inputs
    got = seen[0][0]
    assert any(torch.allclose(got[0], f[k]) for f in firsts for k in range(f.shape[0]))


def test_whole_photo_eval_scores_the_body_behind_the_whole_photos_prior(tmp_path: Path) -> None:
    import json
    import subprocess

    from uniremoval.modelfile import save_model

    d = _smooth_photos(tmp_path, [(64, 80), (72, 56)])
    net = _hazy_net()
    model = save_model(net, tmp_path / "m" / "hp.json", "haze-prior", BODY)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "whole_photo_eval.py"
    cmd = [sys.executable, str(script), "--val-dir", str(d), "--model", f"hp={model}", "--model", f"body={model}",
           "--kinds", "haze,clean", "--count", "3", "--crop", "32", "--scales", "1", "2", "--out", str(tmp_path / "out"), "--tag", "t"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "out" / "whole_photo_t.json").read_text())["rows"]
    hp = rows["haze"]["hp"]
    # The prior acts on this hazy estimate, and where it reads (photo or crop) changes the result.
    assert hp["prior"] != hp["input"] and hp["photo"] != hp["crop"]
    assert rows["haze"]["body"]["diff"] == 0.0  # the same model file as the baseline
