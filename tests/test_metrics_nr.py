"""No-reference metrics (NIQE, BRISQUE, PIQE): package data, invariances, constructed cases,
and ranking a clean photo above degraded copies. Images come from scikit-image's bundled
samples, so no data set is needed. Agreement with independent implementations on real photos
is measured by benchmarks/validate_nr_metrics.py (see docs/evaluation.md)."""
from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
import torch

from uniremoval.metrics import brisque, niqe, piqe
from uniremoval.metrics.brisque import ALLRANGE, brisque_features, live_model, read_libsvm_model
from uniremoval.metrics.niqe import niqe_features, pristine_model
from uniremoval.metrics.nss import aggd_fit, ggd_fit, imresize_half, to_gray255
from uniremoval.metrics.piqe import piqe_details

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A natural RGB photo, float32 in [0, 1] (scikit-image's astronaut, 512x512)."""
    return (skdata.astronaut().astype(np.float32) / 255.0)[:384, :448]


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    r = int(3 * sigma)
    k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    k /= k.sum()
    p = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect")
    p = sum(k[i] * p[i : i + x.shape[0]] for i in range(2 * r + 1))
    return sum(k[i] * p[:, i : i + x.shape[1]] for i in range(2 * r + 1)).astype(np.float32)


def _noisy(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(x + np.random.default_rng(0).normal(0, sigma, x.shape), 0, 1).astype(np.float32)


def _sha(name: str) -> str:
    return hashlib.sha256((resources.files("uniremoval") / "metrics" / "data" / name).read_bytes()).hexdigest()


def test_package_data_is_the_published_parameters() -> None:
    assert _sha("niqe_pris_params.npz") == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
    assert _sha("brisque_allmodel_libsvm.txt") == "7c8e239223d4ff930cbfad4bfbceb685dbf0977804794979d2a9ed54f5d8bf1f"
    mu, cov, win = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36) and win.shape == (7, 7)
    assert np.allclose(cov, cov.T)
    m = live_model()
    assert m.sv.shape == (774, 36) and m.gamma == 0.05 and m.rho == pytest.approx(-153.591)
    assert ALLRANGE.shape == (36, 2) and np.all(ALLRANGE[:, 1] > ALLRANGE[:, 0])


def test_libsvm_parser_sparse_and_errors() -> None:
    text = "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho 1\nSV\n2 1:1 3:2\n-1 2:1\n"
    m = read_libsvm_model(text, n_features=3)
    assert m.sv.tolist() == [[1, 0, 2], [0, 1, 0]]
    x = np.array([1.0, 0.0, 2.0])
    assert m.predict(x) == pytest.approx(2 * 1 - 1 * np.exp(-0.5 * 6) - 1)
    with pytest.raises(ValueError, match="RBF epsilon-SVR"):
        read_libsvm_model(text.replace("rbf", "linear"), 3)


def test_estimators_recover_known_shapes() -> None:
    rng = np.random.default_rng(1)
    g = rng.normal(0, 2.0, 200_000)
    alpha, sigma = ggd_fit(g)
    assert alpha == pytest.approx(2.0, abs=0.05) and sigma == pytest.approx(2.0, rel=0.01)
    lap = rng.laplace(0, 1.0, 200_000)
    assert ggd_fit(lap)[0] == pytest.approx(1.0, abs=0.05)
    # asymmetric Gaussian (AGGD, alpha 2): left std 1, right std 3; each side's mass is
    # proportional to its scale
    a = np.concatenate([-np.abs(rng.normal(0, 1, 50_000)), np.abs(rng.normal(0, 3, 150_000))])
    f = aggd_fit(a[None, :])
    assert f["alpha"][0] == pytest.approx(2.0, abs=0.1)
    assert f["left_std"][0] == pytest.approx(1.0, rel=0.02) and f["right_std"][0] == pytest.approx(3.0, rel=0.02)


def test_imresize_half_matches_matlab_properties() -> None:
    const = np.full((21, 30), 77.0)
    out = imresize_half(const)
    assert out.shape == (11, 15)  # MATLAB: ceil(n * 0.5)
    assert np.allclose(out, 77.0)
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    # a linear ramp stays linear away from the (mirrored) borders: output pixel j sits at 2j + 0.5
    mid = imresize_half(ramp)[:, 3:-3]
    assert np.allclose(mid, 2 * np.arange(3, 17) + 0.5)


def test_input_forms_agree(photo: np.ndarray) -> None:
    u8 = np.round(photo * 255).astype(np.uint8)
    chw = torch.from_numpy(photo).permute(2, 0, 1)
    for fn in (niqe, brisque, piqe):
        ref = fn(photo)
        assert fn(u8) == pytest.approx(ref, abs=1e-9)
        assert fn(chw) == pytest.approx(ref, abs=1e-9)
    gray = to_gray255(photo) / 255.0
    assert niqe(gray) == pytest.approx(niqe(np.repeat(gray[..., None], 3, axis=2)), abs=1e-9)


def test_regression_values(photo: np.ndarray) -> None:
    """Pinned values (computed once with this code, which matches MATLAB's NIQE on Set14
    baboon to 1e-6 and the independent implementations in docs/evaluation.md): any change to
    the algorithms shows up here."""
    assert niqe(photo) == pytest.approx(PINNED["niqe"], abs=1e-6)
    assert niqe(photo, convert="y") == pytest.approx(PINNED["niqe_y"], abs=1e-6)
    assert brisque(photo) == pytest.approx(PINNED["brisque"], abs=1e-6)
    assert piqe(photo) == pytest.approx(PINNED["piqe"], abs=1e-6)


PINNED = {"niqe": 3.089701739292298, "niqe_y": 3.1016415489033187, "brisque": 0.05909989304529972, "piqe": 33.290681653270035}


@pytest.mark.parametrize("degrade", ["blur", "noise"])
def test_clean_photo_ranks_above_heavily_degraded_copy(photo: np.ndarray, degrade: str) -> None:
    bad = _blur(photo, 4.0) if degrade == "blur" else _noisy(photo, 0.15)
    for fn in (niqe, brisque, piqe):
        assert fn(photo) < fn(bad), f"{fn.__name__} does not prefer the clean photo to its {degrade} copy"


def test_scores_grow_with_noise_level(photo: np.ndarray) -> None:
    scores = [brisque(_noisy(photo, s)) for s in (0.0, 0.05, 0.1, 0.2)]
    assert scores == sorted(scores)
    scores = [niqe(_noisy(photo, s)) for s in (0.0, 0.05, 0.1, 0.2)]
    assert scores == sorted(scores)


def test_degenerate_images() -> None:
    flat = np.full((200, 200, 3), 0.4, np.float32)
    assert piqe(flat) == 100.0  # MATLAB's documented value for uniform images
    assert np.isnan(brisque(flat))
    with pytest.raises(ValueError, match="textured"):
        niqe(flat)
    with pytest.raises(ValueError, match="96x96"):
        niqe(np.random.default_rng(0).random((80, 300)))
    with pytest.raises(ValueError, match="shape"):
        niqe(np.zeros((4, 4, 2)))


def test_flat_regions_do_not_depend_on_rounding(photo: np.ndarray) -> None:
    """A photo in a flat frame: the frame's MSCN is exactly 0 (not +-1e-14 rounding noise), so
    flat blocks are excluded as NaN features rather than fitted to noise, and the scores are
    unchanged when the frame is brightened (rounding noise would scale with it)."""
    framed = np.full((480, 544, 3), 0.5, np.float32)
    framed[48:48 + 384, 48:48 + 448] = photo
    f = niqe_features(framed)
    assert np.isfinite(f).all(axis=1).sum() >= 2
    assert np.isfinite(brisque_features(framed)).all()
    bright = framed.copy()
    bright[:48] = bright[-48:] = 0.9
    bright[:, :48] = bright[:, -48:] = 0.9
    from uniremoval.metrics.nss import mscn

    for img in (framed, bright):
        m, _ = mscn(to_gray255(img), "replicate")
        assert np.all(m[:40, :40] == 0.0)


def test_piqe_masks(photo: np.ndarray) -> None:
    half = photo.copy()
    half[:, 224:] = _noisy(photo[:, 224:], 0.2)
    r = piqe_details(half)
    assert r.activity_mask.shape == photo.shape[:2]
    assert r.noise_mask[:, 240:].mean() > 3 * r.noise_mask[:, :208].mean()


def test_speed_481x321(photo: np.ndarray) -> None:
    import time

    img = photo[:321, :481] if photo.shape[1] >= 481 else np.pad(photo, ((0, 0), (0, 481 - photo.shape[1]), (0, 0)), mode="reflect")[:321]
    niqe(img), brisque(img)  # warm the cached grids and model
    t = time.perf_counter()
    niqe(img), brisque(img), piqe(img)
    assert time.perf_counter() - t < 2.0  # ~0.15 s on one core; generous for shared CI
