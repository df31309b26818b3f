from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from uniremoval import Restorer


@pytest.fixture(scope="module")
def identity(identity_model: Path) -> Restorer:
    return Restorer.from_pretrained(identity_model, device="cpu")


@pytest.fixture(scope="module")
def changer(random_model: Path) -> Restorer:
    return Restorer.from_pretrained(random_model, device="cpu", tile=32, overlap=8)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 2), (20, 30, 3), (20, 30, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_numpy_same_type_shape_and_alpha(identity: Restorer, changer: Restorer, shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    a = (rng.random(shape) * top).astype(dtype)
    out = identity(a)
    assert out.shape == a.shape and out.dtype == a.dtype
    assert np.allclose(out.astype(np.float64), a.astype(np.float64), atol=top * 1e-5 + (1 if top > 1 else 0))
    out2 = changer(a)
    assert out2.shape == a.shape and out2.dtype == a.dtype
    if len(shape) == 3 and shape[2] in (2, 4):
        assert np.array_equal(out2[..., -1], a[..., -1])  # alpha untouched
        assert not np.array_equal(out2[..., :-1], a[..., :-1])


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "I;16", "P", "CMYK"])
def test_pil_returns_pil(changer: Restorer, mode: str) -> None:
    im = PILImage.fromarray((np.random.default_rng(0).random((16, 24, 3)) * 255).astype(np.uint8)).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        im = PILImage.fromarray(np.asarray(im).astype(np.uint16) * 257)
    out = changer(im)
    assert isinstance(out, PILImage.Image) and out.size == im.size
    assert out.mode == (mode if mode in ("RGB", "RGBA", "L", "LA", "I;16") else "RGB")


def test_torch_3d_4d_keep_dtype_and_alpha(changer: Restorer) -> None:
    t = torch.rand(4, 18, 22, dtype=torch.float64)
    out = changer(t)
    assert out.shape == t.shape and out.dtype == torch.float64 and torch.equal(out[3], t[3])
    b = torch.rand(2, 3, 18, 22)
    ob = changer(b)
    assert ob.shape == b.shape and torch.allclose(ob[1], changer(b[1]))
    g = torch.rand(1, 9, 9)
    assert changer(g).shape == g.shape


def test_rejects_wrong_inputs(identity: Restorer) -> None:
    with pytest.raises(TypeError):
        identity("photo.jpg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        identity(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError):
        identity(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(TypeError):
        identity(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_grayscale_in_grayscale_out_is_neutral(changer: Restorer) -> None:
    g = np.random.default_rng(1).random((16, 16)).astype(np.float32)
    out = changer(g)
    assert out.shape == (16, 16)
    rgb = changer(np.repeat(g[..., None], 3, axis=2))
    assert np.allclose(out, rgb.mean(axis=2), atol=1e-6)
