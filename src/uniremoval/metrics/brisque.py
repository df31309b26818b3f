"""BRISQUE: Blind/Referenceless Image Spatial Quality Evaluator (Mittal, Moorthy, Bovik,
IEEE TIP 2012).

36 natural-scene-statistics features mapped to a quality score by the epsilon-SVR (RBF
kernel) that the authors trained on the LIVE IQA database; higher = worse, roughly 0-100
(a DMOS scale; values slightly outside are possible). The SVR is the authors' libsvm model
file ``allmodel`` (``data/brisque_allmodel_libsvm.txt``, unchanged); the feature scaling
ranges are those of the release's ``allrange`` file (``ALLRANGE`` below).

Algorithm, as ``brisquescore.m`` / ``brisque_feature.m`` of the release:
1. 8-bit luminance (``rgb2gray`` of the uint8 image).
2. Per scale (2 scales): MSCN with a 7x7 Gaussian (sigma 7/6) and ``filter2(..., 'same')``
   (zero borders); GGD fit of the MSCN values (alpha, sigma^2); for the products with the
   neighbours at circular shifts (0,1), (1,0), (1,1), (-1,1): AGGD (alpha, mean,
   left_std^2, right_std^2). Scale 2 = ``imresize(I, 0.5)`` (bicubic, antialiased).
3. Features written as text with ``%f`` (6 decimals), scaled to [-1, 1] by ``svm-scale -r
   allrange`` (which prints ``%g``, 6 significant digits), and ``svm-predict``:
   ``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho``. The two text round trips are reproduced
   because they are part of the reference pipeline (they move scores by ~1e-4).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .nss import aggd_fit, ggd_fit, imresize_half, mscn, to_gray255

_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))  # circshift offsets of brisque_feature.m

#: Feature ranges (min, max) of the BRISQUE release's ``allrange`` file, scaled to [-1, 1].
ALLRANGE = np.array([
    [0.338, 10], [0.017204, 0.806612], [0.236, 1.642], [-0.123884, 0.20293],
    [0.000155, 0.712298], [0.001122, 0.470257], [0.244, 1.641], [-0.123586, 0.179083],
    [0.000152, 0.710456], [0.000975, 0.470984], [0.249, 1.555], [-0.135687, 0.100858],
    [0.000174, 0.684173], [0.000913, 0.534174], [0.258, 1.561], [-0.143408, 0.100486],
    [0.000179, 0.685696], [0.000888, 0.536508], [0.471, 3.264], [0.012809, 0.703171],
    [0.218, 1.046], [-0.094876, 0.187459], [1.5e-005, 0.442057], [0.001272, 0.40803],
    [0.222, 1.042], [-0.115772, 0.162604], [1.6e-005, 0.444362], [0.001374, 0.40243],
    [0.227, 0.996], [-0.117188, 0.098323], [3e-005, 0.531903], [0.001122, 0.369589],
    [0.228, 0.99], [-0.12243, 0.098658], [2.8e-005, 0.530092], [0.001118, 0.370399],
], dtype=np.float64)


@dataclass(frozen=True)
class SVRModel:
    """An RBF epsilon-SVR read from a libsvm model file."""

    gamma: float
    rho: float
    coef: np.ndarray  # (n_sv,)
    sv: np.ndarray  # (n_sv, n_features)

    def predict(self, x: np.ndarray) -> float:
        """libsvm's ``svm_predict`` for one feature vector."""
        d = self.sv - x[None, :]
        k = np.exp(-self.gamma * np.einsum("ij,ij->i", d, d))
        return float(self.coef @ k - self.rho)


def read_libsvm_model(text: str, n_features: int = 36) -> SVRModel:
    """Parse a libsvm text model (``svm_type epsilon_svr``, ``kernel_type rbf``)."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, val = lines[i].strip().partition(" ")
        header[key] = val
        i += 1
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"not an RBF epsilon-SVR libsvm model (svm_type={header.get('svm_type')}, kernel_type={header.get('kernel_type')})")
    rows = [ln.split() for ln in lines[i + 1 :] if ln.strip()]
    coef = np.array([float(r[0]) for r in rows])
    sv = np.zeros((len(rows), n_features))
    for j, r in enumerate(rows):
        for item in r[1:]:  # sparse "index:value", 1-based; absent = 0
            k, _, v = item.partition(":")
            sv[j, int(k) - 1] = float(v)
    if len(rows) != int(header.get("total_sv", len(rows))):
        raise ValueError(f"model says {header.get('total_sv')} support vectors, file has {len(rows)}")
    return SVRModel(gamma=float(header["gamma"]), rho=float(header["rho"]), coef=coef, sv=sv)


@lru_cache(maxsize=1)
def live_model() -> SVRModel:
    """The LIVE BRISQUE SVR shipped as package data."""
    ref = resources.files("uniremoval") / "metrics" / "data" / "brisque_allmodel_libsvm.txt"
    return read_libsvm_model(ref.read_text(encoding="ascii"))


def _scale_features(img: np.ndarray) -> list[float]:
    structdis, _ = mscn(img, "zero")
    alpha, sigma = ggd_fit(structdis)
    feat = [alpha, sigma * sigma]
    flat = structdis.ravel()
    for sh in _SHIFTS:
        pair = flat * np.roll(structdis, sh, axis=(0, 1)).ravel()
        f = aggd_fit(pair[None, :])
        a, left, right = float(f["alpha"][0]), float(f["left_std"][0]), float(f["right_std"][0])
        # meanparam = (rightstd - leftstd) * G(2/a)/G(1/a) * sqrt(G(1/a)) / sqrt(G(3/a))
        mean = (right - left) * float(f["eta_ratio"][0]) * float(f["scale"][0])
        feat += [a, mean, left * left, right * right]
    return feat


def brisque_features(image: Any) -> np.ndarray:
    """The 36 unscaled BRISQUE features (18 per scale)."""
    img = to_gray255(image, "gray")
    if min(img.shape) < 14:
        raise ValueError(f"BRISQUE needs at least 14x14 pixels, got {img.shape[0]}x{img.shape[1]}")
    feat = _scale_features(img) + _scale_features(imresize_half(img))
    return np.array(feat, dtype=np.float64)


def scale_features(feat: np.ndarray, text_roundtrip: bool = True) -> np.ndarray:
    """``svm-scale -l -1 -u 1 -r allrange`` of 36 features (with the reference's text rounding)."""
    if text_roundtrip:
        feat = np.array([float(f"{v:f}") for v in feat])
    lo, hi = ALLRANGE[:, 0], ALLRANGE[:, 1]
    scaled = -1.0 + 2.0 * (feat - lo) / (hi - lo)
    if text_roundtrip:
        scaled = np.array([float(f"{v:g}") for v in scaled])
    return scaled


def brisque(image: Any, text_roundtrip: bool = True) -> float:
    """BRISQUE score of an image (lower is better; ~0-100).

    ``image``: HxW / HxWx3 array (float in [0, 1] or uint8) or CHW tensor, judged as its
    8-bit file would be. Constant images have undefined features and give NaN.
    """
    feat = brisque_features(image)
    if not np.all(np.isfinite(feat)):
        return float("nan")
    return live_model().predict(scale_features(feat, text_roundtrip))
