"""The camera stage after haze and rain (r7): noise at the hazy level, 8-bit files, one camera
per compound photo. Tiny images only; no data outside the test."""
from __future__ import annotations

import json

import numpy as np
import pytest

from uniremoval.degrade import CameraParams, HazeParams, RainParams, Registry, add_haze, add_rain
from uniremoval.degrade.camera import camera_finish
from uniremoval.degrade.presets import r7_haze, r7_rain


def _dense_haze(camera: CameraParams | None) -> HazeParams:
    return HazeParams(**{**r7_haze().__dict__, "depth_sources": {"gradient": 1.0}, "near_depth": (0.0, 0.0),
                         "p_nonhomogeneous": 0.0, "camera": camera})


def test_noise_comes_after_the_haze_so_far_regions_are_as_noisy_as_near_ones() -> None:
    flat = np.full((96, 64, 3), 0.3, np.float32)
    cam = CameraParams(p_noise=1.0, p_jpeg=0.0)
    # The camera draws after all of the haze's draws: the same seed gives the same haze.
    noisy, rec = add_haze(flat, np.random.default_rng(4), _dense_haze(cam), strength=1.0)
    clean, rec0 = add_haze(flat, np.random.default_rng(4), _dense_haze(None), strength=1.0)
    assert "noise" in rec["camera"] and "camera" not in rec0
    assert rec0["transmission_min"] < 0.1  # the top rows are nearly all airlight
    diff = noisy - clean
    far, near = diff[:12].std(), diff[-12:].std()
    # Noise added before the haze would be attenuated by t (20x at the top): here it is not.
    assert far > 0.3 * near and far > 2e-3
    assert np.allclose(noisy * 255.0, np.round(noisy * 255.0), atol=1e-3)  # an 8-bit file
    assert not np.allclose(clean * 255.0, np.round(clean * 255.0), atol=1e-3)


def test_camera_finish_without_noise_or_jpeg_only_rounds_to_8_bits() -> None:
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    out, rec = camera_finish(img, np.random.default_rng(0), CameraParams(p_noise=0.0, p_jpeg=0.0))
    assert set(rec) == {"linear"} and np.abs(out - img).max() <= 0.5 / 255 + 1e-5
    _, rec = camera_finish(img, np.random.default_rng(0), CameraParams(p_noise=0.0, p_jpeg=1.0))
    assert "jpeg" in rec


def test_rain_records_one_camera_stage_after_the_heavy_haze() -> None:
    img = np.random.default_rng(1).random((40, 40, 3)).astype(np.float32)
    p = RainParams(**{**r7_rain().__dict__, "p_heavy": 1.0})
    _, rec = add_rain(img, np.random.default_rng(2), p)
    assert "camera" in rec and "camera" not in rec["heavy_haze"]


def _camera_parts(record: dict) -> list[str]:
    return [part["kind"] for part in record["params"]["parts"] if "camera" in part["params"]]


@pytest.mark.parametrize("kind, expected", [("rain+blur", ["blur"]), ("haze+rain", ["rain"]), ("rain+haze", ["haze"])])
def test_a_compound_photo_is_recorded_by_one_camera_its_last(kind: str, expected: list[str]) -> None:
    img = np.random.default_rng(1).random((48, 48, 3)).astype(np.float32)
    _, rec = Registry.preset("r7").synthesize(img, kind, seed=0)
    assert _camera_parts(rec) == expected
    assert json.dumps(rec).count('"linear"') == 1


def test_camera_null_in_a_config_restores_the_noise_free_r7_haze_and_rain() -> None:
    img = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    reg = Registry.from_config({"kinds": {"haze": {"camera": None}, "rain": {"camera": None}}})
    for kind in ("haze", "rain"):
        assert Registry.preset("r7").get(kind).params.camera is not None
        assert reg.get(kind).params.camera is None
        _, rec = reg.synthesize(img, kind, seed=0)
        assert "camera" not in rec["params"]
    assert Registry.preset("r6").get("haze").params.camera is None  # r6 is unchanged
