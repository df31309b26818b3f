from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from uniremoval import load_model, nets, save_model
from uniremoval.modelfile import ModelError, read_config, resolve_model_path


def test_roundtrip_restores_identical_weights(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    path = save_model(net, tmp_path / "m.json", "nafnet", {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}, ["haze"], {"by": "test"})
    loaded = load_model(path)
    assert loaded.config.kinds == ["haze"] and loaded.config.provenance == {"by": "test"}
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.net.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert not loaded.net.training
    # Any of: the json, the safetensors, or the folder.
    assert load_model(path.with_suffix(".safetensors")).path == path
    assert load_model(tmp_path).path == path


def test_half_weights_load_as_float32(tmp_path: Path) -> None:
    net = nets.build("plain", width=4, depth=2)
    path = save_model(net, tmp_path / "h.json", "plain", {"width": 4, "depth": 2}, half=True)
    loaded = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.net.parameters())
    assert path.with_suffix(".safetensors").stat().st_size < 4 * sum(p.numel() for p in net.parameters())


def test_checksum_mismatch_is_refused(identity_model: Path, tmp_path: Path) -> None:
    for f in identity_model.parent.glob("identity.*"):
        shutil.copy(f, tmp_path / f.name)
    w = tmp_path / "identity.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path / "identity.json")


def test_pickle_disguised_as_safetensors_is_not_unpickled(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # pragma: no cover - must never run
            return (exec, ("raise SystemExit('unpickled!')",))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"x": Boom()}))
    cfg = {"format": "uniremoval-model/1", "arch": "plain", "arch_args": {}, "kinds": [], "provenance": {},
           "weights": bad.name, "sha256": __import__("hashlib").sha256(bad.read_bytes()).hexdigest()}
    (tmp_path / "evil.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="safetensors"):
        load_model(tmp_path / "evil.json")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c: c.update(format="other/9"), "not a uniremoval model"),
        (lambda c: c.update(arch="no-such-net"), "cannot build"),
        (lambda c: c.update(arch_args={"width": 5}), "do not fit"),
        (lambda c: c.update(extra=1), "unknown keys"),
        (lambda c: c.update(weights="missing.safetensors"), "not found"),
        (lambda c: c.update(kinds="haze"), "must be a list"),
    ],
)
def test_bad_configs_give_clear_errors(identity_model: Path, tmp_path: Path, mutate, match: str) -> None:
    for f in identity_model.parent.glob("identity.*"):
        shutil.copy(f, tmp_path / f.name)
    j = tmp_path / "identity.json"
    cfg = json.loads(j.read_text())
    mutate(cfg)
    j.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=match):
        load_model(j)


def test_the_bundled_default_model_loads_verified_and_small() -> None:
    from uniremoval.modelfile import bundled_dir

    m = load_model("default")  # sha256 checked on load
    assert set(m.config.kinds) == {"haze", "rain", "blur"}
    size = sum(f.stat().st_size for f in bundled_dir().glob("default.*"))
    assert size < 20 * 2**20
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        y = m.net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_no_bundled_default_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uniremoval.modelfile as mf

    monkeypatch.setattr(mf, "bundled_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="no trained model is bundled"):
        resolve_model_path("default")
    with pytest.raises(ModelError, match="no such model"):
        read_config("does-not-exist")


def test_nafnet_features_and_multiple() -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1, 1], middle_blocks=1)
    assert nets.size_multiple(net) == 8
    out, feats = net(torch.rand(2, 3, 32, 40), return_features=True)
    assert out.shape == (2, 3, 32, 40)
    assert [f.shape[1] for f in feats] == net.feature_channels == [8, 16, 32, 64]
    assert feats[-1].shape[-2:] == (4, 5)
