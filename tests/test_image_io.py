from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from uniremoval.image_io import Image, ImageReadError, ImageWriteError, decode_image, read_image, write_image


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / (w - 1), yy / (h - 1), (xx + yy) / (w + h - 2)], -1).astype(np.float32)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".webp", ".bmp"])
def test_roundtrip_each_format(tmp_path: Path, ext: str) -> None:
    img = Image(_gradient())
    path = tmp_path / f"x{ext}"
    write_image(img, path)
    back = read_image(path)
    assert back.pixels.shape == img.pixels.shape
    tol = 0.5 / 255 + 1e-6 if ext in (".png", ".tif", ".bmp") else 0.08
    assert np.abs(back.pixels - img.pixels).max() <= tol


def test_exif_orientation_is_applied_and_reset(tmp_path: Path) -> None:
    arr = (np.arange(6 * 10 * 3) % 256).astype(np.uint8).reshape(6, 10, 3)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    exif[0x010F] = "TestCam"
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    img = read_image(path)
    assert img.pixels.shape == (10, 6, 3)
    expected = np.asarray(im.transpose(PILImage.Transpose.ROTATE_270)).astype(np.float32) / 255
    assert np.array_equal(img.pixels, expected)
    out = tmp_path / "o2.jpg"
    write_image(img, out)
    ex = PILImage.open(out).getexif()
    assert ex.get(0x0112) == 1 and ex.get(0x010F) == "TestCam"


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    icc = _srgb_icc()
    src = tmp_path / "icc.jpg"
    PILImage.fromarray((_gradient() * 255).astype(np.uint8)).save(src, icc_profile=icc)
    img = read_image(src)
    assert img.icc == icc
    for ext in (".png", ".jpg", ".webp", ".tif"):
        out = tmp_path / f"out{ext}"
        write_image(img, out)
        assert PILImage.open(out).info.get("icc_profile") == icc, ext


def test_grayscale_stays_grayscale(tmp_path: Path) -> None:
    src = tmp_path / "g.png"
    PILImage.fromarray((np.random.default_rng(0).random((9, 7)) * 255).astype(np.uint8), "L").save(src)
    img = read_image(src)
    assert img.pixels.shape == (9, 7, 1)
    write_image(img, tmp_path / "g2.png")
    assert PILImage.open(tmp_path / "g2.png").mode == "L"


def test_alpha_is_carried_untouched(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = (rng.random((12, 10, 4)) * 255).astype(np.uint8)
    src = tmp_path / "a.png"
    PILImage.fromarray(rgba, "RGBA").save(src)
    img = read_image(src)
    assert np.array_equal(img.alpha, rgba[..., 3])
    write_image(img.with_pixels(np.clip(img.pixels * 0.5, 0, 1)), tmp_path / "a2.png")
    back = np.asarray(PILImage.open(tmp_path / "a2.png"))
    assert np.array_equal(back[..., 3], rgba[..., 3])
    la = tmp_path / "la.png"
    PILImage.fromarray(rgba[..., [0, 3]], "LA").save(la)
    img = read_image(la)
    assert img.pixels.shape[2] == 1 and np.array_equal(img.alpha, rgba[..., 3])


def test_16bit_png_keeps_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.random((8, 9, 3)) * 65535).astype(np.uint16)
    src = tmp_path / "16.png"
    with open(src, "wb") as fh:
        png.Writer(9, 8, greyscale=False, bitdepth=16).write(fh, arr.reshape(8, -1))
    img = read_image(src)
    assert img.bit_depth == 16
    assert np.allclose(img.pixels * 65535, arr, atol=1e-2)
    out = tmp_path / "16out.png"
    write_image(img, out)
    _, _, rows, info = png.Reader(filename=str(out)).asDirect()
    assert info["bitdepth"] == 16
    assert np.array_equal(np.vstack(list(rows)).reshape(8, 9, 3), arr)


def test_16bit_tiff_rgb_and_gray_keep_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for shape in [(6, 5, 3), (6, 5)]:
        arr = (rng.random(shape) * 65535).astype(np.uint16)
        src = tmp_path / f"t{len(shape)}.tif"
        tifffile.imwrite(src, arr)
        img = read_image(src)
        assert img.bit_depth == 16
        out = tmp_path / f"t{len(shape)}_out.tif"
        write_image(img, out)
        back = tifffile.imread(out)
        assert back.dtype == np.uint16 and np.array_equal(back, arr)


def test_16bit_to_8bit_format_is_noted(tmp_path: Path) -> None:
    img = Image(_gradient(), bit_depth=16)
    notes = write_image(img, tmp_path / "x.jpg")
    assert any("8-bit" in n for n in notes)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    src = tmp_path / "cmyk.jpg"
    PILImage.fromarray((_gradient() * 255).astype(np.uint8)).convert("CMYK").save(src)
    img = read_image(src)
    assert img.pixels.shape == (24, 32, 3) and any("CMYK" in n for n in img.notes)


def test_palette_png_and_animated_gif(tmp_path: Path) -> None:
    pal = tmp_path / "p.png"
    PILImage.fromarray((_gradient() * 255).astype(np.uint8)).convert("P").save(pal)
    assert read_image(pal).pixels.shape == (24, 32, 3)
    frames = [PILImage.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    img = read_image(gif)
    assert img.pixels.shape == (6, 8, 3)
    assert img.pixels[0, 0, 0] > 0.9 and img.pixels[0, 0, 1] < 0.1  # first frame is red
    assert any("first frame" in n for n in img.notes)


def test_tiny_images(tmp_path: Path) -> None:
    for h, w in [(1, 1), (2, 3)]:
        p = tmp_path / f"{h}x{w}.png"
        PILImage.new("RGB", (w, h), (10, 20, 30)).save(p)
        assert read_image(p).pixels.shape == (h, w, 3)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty file"),
        (b"this is text, not a JPEG\n", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not an image|cannot decode"),
    ],
)
def test_bad_bytes_give_one_line_reasons(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as e:
        read_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    PILImage.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    p = tmp_path / "trunc.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="trunc.png: cannot decode"):
        read_image(p)


def test_decompression_bomb_names_limit_and_flag(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    PILImage.new("L", (400, 300)).save(p)
    with pytest.raises(ImageReadError, match=r"exceeds the 0 MP limit.*--max-pixels"):
        read_image(p, max_pixels=100_000)
    assert read_image(p, max_pixels=120_000).pixels.shape == (300, 400, 1)


def test_unknown_output_extension(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="unknown output extension"):
        write_image(Image(_gradient()), tmp_path / "x.xyz")


def test_write_is_atomic_no_temp_left(tmp_path: Path) -> None:
    write_image(Image(_gradient()), tmp_path / "ok.png")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.png"]


def test_decode_from_memory() -> None:
    buf = io.BytesIO()
    PILImage.new("RGB", (5, 4), (255, 0, 0)).save(buf, "BMP")
    assert decode_image(buf.getvalue()).pixels[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_16bit_png_orientation(tmp_path: Path) -> None:
    from uniremoval.image_io import _png_chunk

    arr = (np.arange(4 * 6 * 3) * 100).astype(np.uint16).reshape(4, 6, 3)
    buf = io.BytesIO()
    png.Writer(6, 4, greyscale=False, bitdepth=16).write(buf, arr.reshape(4, -1))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes()
    data = buf.getvalue()
    p = tmp_path / "o16.png"
    p.write_bytes(data[:33] + _png_chunk(b"eXIf", raw[6:] if raw.startswith(b"Exif") else raw) + data[33:])
    img = read_image(p)
    assert img.bit_depth == 16
    assert np.array_equal(np.round(img.pixels * 65535).astype(np.uint16), np.rot90(arr, -1))
