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


@pytest.mark.parametrize("name", ["default", "release6"])
def test_the_bundled_models_load_verified_and_small(name: str) -> None:
    from uniremoval.modelfile import bundled_dir, bundled_models

    assert name in bundled_models()
    m = load_model(name)  # sha256 checked on load
    assert {"haze", "rain", "blur"} <= set(m.config.kinds)
    size = sum(f.stat().st_size for f in bundled_dir().glob(f"{name}.*"))
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


_SAVE_SCRIPT = """
import sys, time, torch
from uniremoval import nets, save_model
torch.manual_seed(3)
net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
args = {"middle_blocks": 1, "enc_blocks": [1, 1], "width": 8} if sys.argv[2] == "a" else {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}
save_model(net, sys.argv[1], "nafnet", args, ["haze", "rain"], {"date": time.time(), "run_dir": sys.argv[1], "by": sys.argv[2]})
"""


def _identity_part(json_path: Path) -> str:
    data = json.loads(json_path.read_text())
    data.pop("provenance")
    data.pop("weights")  # the file's own name
    return json.dumps(data, sort_keys=True)


def test_identical_weights_give_identical_bytes_across_processes(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from uniremoval.modelfile import model_digest, sha256_file

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / "a" / "m.json", tmp_path / "b" / "other.json"]
    procs = [subprocess.Popen([sys.executable, "-c", _SAVE_SCRIPT, str(p), tag], env=env) for p, tag in zip(outs, "ab")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    a, b = (read_config(p)[0] for p in outs)
    assert a.provenance != b.provenance  # different times and paths...
    assert sha256_file(outs[0].with_suffix(".safetensors")) == sha256_file(outs[1].with_suffix(".safetensors"))
    assert a.sha256 == b.sha256 and model_digest(a) == model_digest(b)  # ...same model
    assert _identity_part(outs[0]) == _identity_part(outs[1])
    # The JSON text is canonical (sorted keys however the caller ordered its dicts), so the
    # two files differ only in provenance and the weights' file name.
    for p in outs:
        text = p.read_text()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_safetensors_metadata_is_written_in_sorted_order(tmp_path: Path) -> None:
    # The safetensors library writes metadata in hash-map order, which changes from one map to
    # the next even within a process: several saves would differ without the sorted header.
    net = nets.build("plain", width=4, depth=2)
    blobs = set()
    for i in range(6):
        p = save_model(net, tmp_path / f"m{i}.json", "plain", {"width": 4, "depth": 2})
        raw = p.with_suffix(".safetensors").read_bytes()
        blobs.add(raw)
        assert b'"__metadata__":{"arch":"plain","format":"uniremoval-model/1"}' in raw[:200]
        assert load_model(p).config.arch == "plain"
    assert len(blobs) == 1


def test_model_digest_covers_the_model_not_its_provenance(tmp_path: Path) -> None:
    from uniremoval.modelfile import model_digest

    net = nets.build("plain", width=4, depth=2)
    a = read_config(save_model(net, tmp_path / "a.json", "plain", {"width": 4, "depth": 2}, provenance={"date": "x"}))[0]
    b = read_config(save_model(net, tmp_path / "b.json", "plain", {"depth": 2, "width": 4}, provenance={"date": "y"}))[0]
    assert model_digest(a) == model_digest(b)
    c = read_config(save_model(net, tmp_path / "c.json", "plain", {"width": 4, "depth": 2}, ["haze"]))[0]
    assert model_digest(c) != model_digest(a)
