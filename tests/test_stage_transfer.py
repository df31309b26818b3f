"""Stage 1 (transfer): frozen teachers, gradients, kind routing, a tiny run that learns, the CLI."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_toydata import smooth_image  # noqa: E402

from uniremoval import nets  # noqa: E402
from uniremoval.modelfile import load_model, save_model  # noqa: E402
from uniremoval.stages.transfer import (  # noqa: E402
    FrozenTeacher,
    KindTuples,
    group_batch,
    load_transfer_config,
    parse_teachers,
    train_transfer,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny_transfer.yaml"

#: Two toy degradations (deterministic, learnable in a few steps by a tiny net).
TOY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "veil": lambda c: 0.6 * c + 0.35,
    "dark": lambda c: 0.55 * c,
}


class ToyTuples(Dataset):
    """One sample of every toy kind per item, (K, 3, S, S); torch's RNG is seeded per item."""

    def __init__(self, kinds: list[str], size: int = 32, length: int = 256) -> None:
        self.kinds, self.size, self.length = kinds, size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        clean = torch.stack([smooth_image(self.size) for _ in self.kinds])
        return {"input": torch.stack([TOY[k](c) for k, c in zip(self.kinds, clean)]), "target": clean}


def toy_val(kinds: list[str], count: int = 3, size: int = 32) -> dict[str, list[dict[str, Any]]]:
    g = torch.Generator().manual_seed(4242)
    out: dict[str, list[dict[str, Any]]] = {}
    for k in kinds:
        items = []
        for _ in range(count):
            c = smooth_image(size, g)
            items.append({"input": TOY[k](c), "target": c})
        out[k] = items
    return out


def cfg_for(tmp: Path, *overrides: str, teachers: dict[str, str] | None = None) -> Any:
    return load_transfer_config(TINY, teachers or {"veil": "-", "dark": "-"}, [f"run.out_dir={tmp}", "data.batch_size=4", *overrides])


def random_nafnet(seed: int, **args: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    return nets.build("nafnet", **args)


def test_group_batch_and_kind_tuples() -> None:
    t = torch.arange(2 * 3).view(2, 3)  # 2 tuples x 3 kinds
    assert group_batch(t).tolist() == [0, 3, 1, 4, 2, 5]  # kind 0's samples first, then kind 1's ...

    class Items(Dataset):
        kinds = ("a", "b", "c")

        def __len__(self) -> int:
            return 9

        def item_kinds(self) -> list[str]:
            return [self.kinds[i % 3] for i in range(9)]

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input": torch.full((1,), float(i)), "target": torch.zeros(1)}

    kt = KindTuples(Items(), ["a", "b", "c"])
    assert len(kt) == 3 and kt[1]["input"].flatten().tolist() == [3.0, 4.0, 5.0]
    assert parse_teachers("haze=a.json, rain=b.json") == {"haze": "a.json", "rain": "b.json"}


def test_teachers_frozen_gradients_reach_student_and_projectors(tmp_path: Path) -> None:
    kinds = ["veil", "dark"]
    # Teachers of different widths and depths: the projectors adapt channels and levels.
    teachers = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1), "dark": random_nafnet(2, width=12, enc_blocks=[1, 1, 1], middle_blocks=1)}
    before = {k: {n: p.clone() for n, p in t.state_dict().items()} for k, t in teachers.items()}
    cfg = cfg_for(tmp_path, "run.steps=3", "run.val_every=2", "run.ckpt_every=100")
    res = train_transfer(cfg, ToyTuples(kinds), toy_val(kinds, 1), teachers=teachers)
    assert res.step == 3
    for k, t in teachers.items():
        assert all(torch.equal(before[k][n], p) for n, p in t.state_dict().items()), f"teacher {k} changed"
        assert not t.training and not res.teachers[k].training
        assert all(p.grad is None and not p.requires_grad for p in t.parameters())
    model = res.model
    assert model is not None and model.transfer is not None
    grads = {n: p.grad for n, p in model.named_parameters()}
    student = [g for n, g in grads.items() if n.startswith("student.")]
    assert all(g is not None for g in student) and sum(float(g.abs().sum()) for g in student) > 0
    for part in ("transfer.student.proj", "transfer.teachers.veil.proj", "transfer.teachers.dark.proj", "transfer.teachers.dark.inv"):
        gs = [g for n, g in grads.items() if n.startswith(part) and g is not None]
        assert gs and sum(float(g.abs().sum()) for g in gs) > 0, part
    assert model.transfer.levels == {"veil": 3, "dark": 3}
    assert {"psnr_veil", "psnr_dark", "psnr"} <= set(res.metrics)


def test_teacher_without_features_falls_back_to_output_only(tmp_path: Path) -> None:
    kinds = ["veil", "dark"]
    teachers = {"veil": nets.build("plain", width=4, depth=2), "dark": random_nafnet(3, width=8, enc_blocks=[1, 1], middle_blocks=1)}
    cfg = cfg_for(tmp_path, "run.steps=2", "data.val_count=0")
    res = train_transfer(cfg, ToyTuples(kinds), {}, teachers=teachers)
    assert res.step == 2 and res.model is not None and set(res.model.transfer.teachers) == {"dark"}
    assert isinstance(res.teachers["veil"], FrozenTeacher) and not res.teachers["veil"].has_features


def test_config_errors() -> None:
    from uniremoval.train.config import ConfigError

    with pytest.raises(ConfigError, match="multiple"):
        train_transfer(load_transfer_config(TINY, {"a": "x", "b": "y"}, ["data.batch_size=5"]))
    with pytest.raises(ConfigError, match="vgg_path"):
        load_transfer_config(TINY, None, ["loss.img_phi=vgg"])


class SwappedDark(ToyTuples):
    """ToyTuples whose "dark" inputs are a different degradation (same clean images)."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        d = self.kinds.index("dark")
        item["input"][d] = 1.0 - item["target"][d] * 0.3
        return item


def test_kind_weights_zero_removes_a_kinds_gradient(tmp_path: Path) -> None:
    """With dark weighted 0 (and the batch-wide terms off) the student learns nothing from
    the dark samples: changing them leaves the trained student bit-for-bit the same."""
    kinds = ["veil", "dark"]

    def student_after(ds: Dataset, *extra: str) -> dict[str, torch.Tensor]:
        teachers = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1), "dark": random_nafnet(2, width=8, enc_blocks=[1, 1], middle_blocks=1)}
        torch.manual_seed(0)
        sub = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        cfg = cfg_for(sub, "run.steps=2", "data.val_count=0", "loss.fcl_weight=0", "loss.img_weight=0", "optim.lr=1e-2", *extra)
        res = train_transfer(cfg, ds, {}, teachers=teachers)
        return {n: p.detach().clone() for n, p in res.model.student.state_dict().items()}

    w0 = "loss.kind_weights={dark: 0.0}"
    a, b = student_after(ToyTuples(kinds), w0), student_after(SwappedDark(kinds), w0)
    assert all(torch.equal(a[n], b[n]) for n in a)
    # Control: unweighted, the dark samples do move the student.
    c, d = student_after(ToyTuples(kinds)), student_after(SwappedDark(kinds))
    assert any(not torch.allclose(c[n], d[n]) for n in c)


def test_kind_weights_errors(tmp_path: Path) -> None:
    from uniremoval.train.config import ConfigError

    with pytest.raises(ConfigError, match="kind_weights.veil"):
        cfg_for(tmp_path, "loss.kind_weights={veil: -1}")
    cfg = cfg_for(tmp_path, "loss.kind_weights={haze: 2}")
    with pytest.raises(ConfigError, match="not trained"):
        train_transfer(cfg, ToyTuples(["veil", "dark"]), {}, teachers={})


class SwappedVeil(ToyTuples):
    """ToyTuples whose veil inputs (every veil slot) are replaced by something else."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        for s, k in enumerate(self.kinds):
            if k == "veil":
                item["input"][s] = 1.0 - item["target"][s] * 0.3
        return item


def test_kind_tuples_counts_take_distinct_samples_of_a_kind() -> None:
    class Items(Dataset):
        def __len__(self) -> int:
            return 12

        def item_kinds(self) -> list[str]:
            return [["a", "b", "c"][i % 3] for i in range(12)]

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input": torch.full((1,), float(i)), "target": torch.zeros(1)}

    kt = KindTuples(Items(), ["a", "b", "c"], counts={"a": 2})
    # a's pool is 0, 3, 6, 9: tuple 1 takes a's items 2 and 3 (6, 9), then b's and c's item 1.
    assert len(kt) == 2 and kt[1]["input"].flatten().tolist() == [6.0, 9.0, 4.0, 5.0]


def test_kind_mix_groups_each_kinds_samples(tmp_path: Path) -> None:
    """With data.kind_mix={veil: 2} a tuple holds two veil samples and one dark sample; with
    veil weighted 0 both veil slots (and only they) are left out of the loss."""
    from uniremoval.train.config import ConfigError

    slots = ["veil", "veil", "dark"]

    def student_after(ds: Dataset, *extra: str) -> dict[str, torch.Tensor]:
        teachers = {k: random_nafnet(i, width=8, enc_blocks=[1, 1], middle_blocks=1) for i, k in enumerate(["veil", "dark"])}
        torch.manual_seed(0)
        sub = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        cfg = cfg_for(sub, "run.steps=2", "data.val_count=0", "data.batch_size=6", "data.kind_mix={veil: 2}", "loss.fcl_weight=0", "loss.img_weight=0", "optim.lr=1e-2", *extra)
        res = train_transfer(cfg, ds, {}, teachers=teachers)
        return {n: p.detach().clone() for n, p in res.model.student.state_dict().items()}

    w0 = "loss.kind_weights={veil: 0.0}"
    a, b = student_after(ToyTuples(slots), w0), student_after(SwappedVeil(slots), w0)
    assert all(torch.equal(a[n], b[n]) for n in a)
    c, d = student_after(ToyTuples(slots), w0), student_after(SwappedDark(slots), w0)
    assert any(not torch.allclose(c[n], d[n]) for n in c)
    with pytest.raises(ConfigError, match="multiple of the tuple size 3"):
        student_after(ToyTuples(slots), "data.batch_size=4")
    with pytest.raises(ConfigError, match="tuples hold 2 images"):
        student_after(ToyTuples(["veil", "dark"]))
    with pytest.raises(ConfigError, match="kind_mix.veil"):
        cfg_for(tmp_path, "data.kind_mix={veil: 0}")


def _train_toy_teacher(kind: str, tmp: Path) -> torch.nn.Module:
    """A tiny teacher that removes one toy degradation (plain supervised steps)."""
    torch.manual_seed(0)
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(7)
    for _ in range(120):
        c = torch.stack([smooth_image(32, g) for _ in range(4)])
        loss = (net(TOY[kind](c)) - c).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_tiny_run_improves_on_its_input(tmp_path: Path) -> None:
    kinds = ["veil", "dark"]
    teachers = {k: _train_toy_teacher(k, tmp_path) for k in kinds}
    cfg = cfg_for(tmp_path, "run.steps=80", "run.val_every=80", "run.ckpt_every=80", "optim.lr=3e-3")
    res = train_transfer(cfg, ToyTuples(kinds), toy_val(kinds, 4), teachers=teachers)
    assert res.export is not None
    for k in kinds:
        assert res.metrics[f"psnr_{k}"] > res.metrics[f"input_psnr_{k}"] + 3, res.metrics
    # the exported file is the student alone, with its kinds
    m = load_model(res.export)
    assert m.config.kinds == kinds and m.config.arch == "nafnet" and m.config.provenance["stage"] == "transfer"
    # the config names placeholder teacher files (the networks came in memory): recorded as errors
    assert sorted(m.config.provenance["inputs"]) == ["teachers.dark", "teachers.veil"]
    assert all("error" in v for v in m.config.provenance["inputs"].values())
    assert all(not k.startswith(("transfer.", "student.")) for k in m.net.state_dict())


def _clean_folder(path: Path, n: int, seed: int) -> Path:
    path.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        img = smooth_image(72, g).permute(1, 2, 0).numpy()
        Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(path / f"img{i}.png")
    return path


def test_cli_transfer_on_synthetic_pairs_of_every_kind(tmp_path: Path) -> None:
    from uniremoval.cli import app

    train = _clean_folder(tmp_path / "clean" / "train", 3, 0)
    val = _clean_folder(tmp_path / "clean" / "val", 2, 1)
    args = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}
    paths = []
    for i, k in enumerate(("haze", "rain", "blur")):
        paths.append(f"{k}={save_model(random_nafnet(i, **args), tmp_path / 't' / f'{k}.json', 'nafnet', args, [k])}")
    cmd = ["train", "transfer", "--teachers", ",".join(paths), "--config", str(TINY), "--steps", "4",
           "--set", f"data.clean_dir={train}", "--set", f"data.val_dir={val}", "--set", f"run.out_dir={tmp_path / 'runs'}",
           "--set", "data.epoch_size=12", "--set", "run.val_every=4", "--set", "loss.img_negatives=hard"]
    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 0, r.output
    exported = tmp_path / "runs" / "tiny-transfer" / "export" / "tiny-transfer.json"
    assert load_model(exported).config.kinds == ["haze", "rain", "blur"]
    # `train export` of the run's last checkpoint (step 4, EMA) is the student it exported.
    again = tmp_path / "again.json"
    r = CliRunner().invoke(app, ["train", "export", str(tmp_path / "runs" / "tiny-transfer"), "-o", str(again)])
    assert r.exit_code == 0, r.output
    a, b = load_model(exported), load_model(again)
    assert b.config.kinds == a.config.kinds and b.config.arch == a.config.arch
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    r = CliRunner().invoke(app, ["train", "transfer", "--teachers", "haze", "--config", str(TINY)])
    assert r.exit_code == 2 and "kind=PATH" in r.output


def test_vgg_phi_and_target_positives_soft_negatives(tmp_path: Path) -> None:
    from uniremoval.nets.vgg import VGG19Features

    torch.manual_seed(0)
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in VGG19Features().features.state_dict().items()}, path)
    kinds = ["veil", "dark"]
    teachers = {k: random_nafnet(i, width=8, enc_blocks=[1, 1], middle_blocks=1) for i, k in enumerate(kinds)}
    cfg = cfg_for(tmp_path, "run.steps=2", "data.val_count=0", "loss.img_phi=vgg", f"loss.vgg_path={path}",
                  "loss.img_positive=both", "loss.img_negatives=soft", "loss.fcl_other_teachers=true")
    res = train_transfer(cfg, ToyTuples(kinds), {}, teachers=teachers)
    assert res.step == 2


def test_untaught_kind_trains_on_ground_truth_alone(tmp_path: Path) -> None:
    """A kind in ``untaught`` (e.g. clean photos) has no teacher: only the ground-truth term sees
    its samples. With that term off, changing them leaves the student bit-for-bit the same."""
    from uniremoval.train.config import ConfigError

    kinds = ["veil", "dark"]

    def student_after(ds: Dataset, *extra: str) -> Any:
        teachers = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1)}
        torch.manual_seed(0)
        sub = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        cfg = cfg_for(sub, "run.steps=2", "data.val_count=0", "untaught=[dark]", "optim.lr=1e-2", *extra, teachers={"veil": "-"})
        assert cfg.all_kinds() == kinds
        return train_transfer(cfg, ds, {}, teachers=teachers)

    res = student_after(ToyTuples(kinds))  # every term on: out, feat, img and fcl for veil only
    assert res.step == 2 and set(res.teachers) == {"veil"} and set(res.model.transfer.teachers) == {"veil"}
    weights = ("loss.gt_weight=0", "loss.img_weight=0")  # img's hard negatives are batch-wide
    a, b = (student_after(ds, *weights).model.student.state_dict() for ds in (ToyTuples(kinds), SwappedDark(kinds)))
    assert all(torch.equal(a[n], b[n]) for n in a)
    c, d = (student_after(ds).model.student.state_dict() for ds in (ToyTuples(kinds), SwappedDark(kinds)))
    assert any(not torch.allclose(c[n], d[n]) for n in c)  # control: the gt term does see them

    net = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1)}
    with pytest.raises(ConfigError, match=r"no teacher for kind\(s\) \['dark'\].*untaught=\[dark\]"):
        train_transfer(cfg_for(tmp_path / "e1", "kinds=[veil, dark]", teachers={"veil": "-"}), ToyTuples(kinds), {}, teachers=net)
    with pytest.raises(ConfigError, match="also have a teacher"):
        train_transfer(cfg_for(tmp_path / "e2", "untaught=[veil]", "kinds=[veil, dark]", teachers={"veil": "-"}), ToyTuples(kinds), {}, teachers={**net, "dark": net["veil"]})
    with pytest.raises(ConfigError, match="not among the kinds"):
        train_transfer(cfg_for(tmp_path / "e3", "untaught=[fog]", "kinds=[veil, dark]", teachers={"veil": "-"}), ToyTuples(kinds), {}, teachers=net)
