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
    from uniremoval.image_io.encode import _png_chunk

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


# -- floating-point TIFF, EXIF notes, the folder scanner (issue 5/5 and 4/5) ---------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_float_tiff_rgb_is_read_not_called_corrupt(tmp_path: Path, dtype: type) -> None:
    px = _gradient()
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, px.astype(dtype), photometric="rgb")
    img = read_image(path)
    assert img.pixels.shape == px.shape and img.bit_depth == 16 and img.notes == []
    assert np.abs(img.pixels - px).max() <= (1e-3 if dtype == np.float16 else 1e-6)


def test_float_tiff_gray_alpha_and_planar(tmp_path: Path) -> None:
    px = _gradient()
    grey = tmp_path / "g.tif"
    tifffile.imwrite(grey, px[..., 0])  # Pillow reads this as mode F and scaled it by 1/255
    assert np.abs(read_image(grey).pixels[..., 0] - px[..., 0]).max() <= 1e-6
    rgba = np.concatenate([px, px[..., :1]], axis=2)
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, np.moveaxis(rgba, -1, 0), photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"])
    img = read_image(path)
    assert img.pixels.shape == px.shape and np.abs(img.pixels - px).max() <= 1e-6
    assert img.alpha is not None and img.alpha.dtype == np.uint16
    assert np.abs(img.alpha / 65535.0 - px[..., 0]).max() <= 1e-4
    out = tmp_path / "out.png"
    write_image(img, out)
    assert np.abs(read_image(out).pixels - px).max() <= 0.5 / 65535 + 1e-6  # 16-bit output


def test_float_tiff_other_ranges(tmp_path: Path) -> None:
    px = _gradient()
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, np.round(px * 255).astype(np.float32), photometric="rgb")
    img = read_image(whole)
    assert np.abs(img.pixels - np.round(px * 255) / 255).max() <= 1e-6
    assert "whole numbers" in img.notes[0]
    hdr = tmp_path / "hdr.tif"
    bright = px * 3 - 0.5
    bright[0, 0, 0] = np.nan
    tifffile.imwrite(hdr, bright.astype(np.float32), photometric="rgb")
    img = read_image(hdr)
    assert img.pixels.min() == 0.0 and img.pixels.max() == 1.0 and img.pixels[0, 0, 0] == 0.0
    assert any("NaN" in n for n in img.notes) and any("clipped to [0, 1]" in n for n in img.notes)


def test_float_tiff_unsupported_layout_says_what(tmp_path: Path) -> None:
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, np.zeros((4, 5, 5), np.float32), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageReadError, match="floating-point TIFF with 5 samples per pixel .* not supported"):
        read_image(path)


def test_16bit_tiff_without_exif_gives_no_exif_note(tmp_path: Path) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, (_gradient() * 65535).astype(np.uint16), photometric="rgb")
    img = read_image(src)
    assert img.exif is None  # the TIFF's own layout tags are not EXIF
    assert write_image(img, tmp_path / "out.tif") == []
    tagged = PILImage.Exif()
    tagged[0x010F] = "TestCam"
    with_exif = Image(img.pixels, bit_depth=16, exif=tagged.tobytes())
    assert write_image(with_exif, tmp_path / "out2.tif") == ["EXIF not written to 16-bit TIFF"]


def test_tiff_camera_exif_survives_to_jpeg(tmp_path: Path) -> None:
    im = PILImage.fromarray((_gradient() * 255).astype(np.uint8))
    exif = im.getexif()
    exif[0x010F] = "TestCam"
    src = tmp_path / "cam.tif"
    im.save(src, exif=exif)
    out = tmp_path / "cam.jpg"
    write_image(read_image(src), out)
    ex = PILImage.open(out).getexif()
    assert ex.get(0x010F) == "TestCam" and 256 not in ex and 273 not in ex  # no stale strip offsets


def test_scan_images_sorted_recursive_hidden_and_links(tmp_path: Path) -> None:
    from uniremoval.image_io import scan_images

    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in ("b.jpg", "a.PNG", "note.txt", ".secret.png", "sub/c.tif", "sub/deeper/d.ppm", ".hidden/e.png", "f.gif"):
        (root / rel).write_bytes(b"x")
    (root / "a.jpg").symlink_to("b.jpg")
    (root / "loop1.jpg").symlink_to("loop2.jpg")
    (root / "loop2.jpg").symlink_to("loop1.jpg")  # a -> b -> a: must not raise
    (root / "gone.png").symlink_to("nowhere.png")
    (root / "sub" / "up").symlink_to("..")  # a folder loop
    found, skipped = scan_images(root, recursive=False)
    assert [p.relative_to(root).as_posix() for p in found] == ["a.PNG", "a.jpg", "b.jpg", "f.gif"]
    assert [(p.name, r) for p, r in skipped] == [
        ("gone.png", "broken symbolic link"), ("loop1.jpg", "symbolic link loop"), ("loop2.jpg", "symbolic link loop")]
    found, skipped = scan_images(root, recursive=True)
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a.PNG", "a.jpg", "b.jpg", "f.gif", "sub/c.tif", "sub/deeper/d.ppm"]
    assert (root / "sub" / "up", "symbolic link to a folder already searched (loop or duplicate)") in skipped
    assert scan_images(root / "b.jpg", True) == ([], [(root / "b.jpg", "not a folder")])
    assert scan_images(root / "loop1.jpg", True) == ([], [(root / "loop1.jpg", "symbolic link loop")])
