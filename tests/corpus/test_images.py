"""read_image: normalisation of every pixel format a corpus may hold, and one clear error per bad file."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.corpus.loader import read_image
from harness.util.errors import ImageError


def _save(img: Image.Image, path: Path, fmt: str = "PNG", **kw: object) -> Path:
    img.save(path, fmt, **kw)
    return path


def test_rgb_png_becomes_bgr(tmp_path: Path) -> None:
    arr = np.zeros((10, 12, 3), np.uint8)
    arr[..., 0] = 200  # red in RGB
    out = read_image(_save(Image.fromarray(arr), tmp_path / "a.png"))
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert tuple(out[0, 0]) == (0, 0, 200)


def test_grayscale_and_bilevel(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((9, 9), 77, np.uint8), "L")
    out = read_image(_save(grey, tmp_path / "g.png"))
    assert out.shape == (9, 9, 3) and (out == 77).all()
    bilevel = Image.fromarray(np.full((9, 9), 255, np.uint8)).convert("1")
    assert (read_image(_save(bilevel, tmp_path / "b.png")) == 255).all()


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[:4, :, 3] = 255  # top half opaque black, bottom half fully transparent
    arr[4:, :, :3] = 0
    out = read_image(_save(Image.fromarray(arr, "RGBA"), tmp_path / "t.png"))
    assert (out[:4] == 0).all() and (out[4:] == 255).all()


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    img.info["transparency"] = 0
    out = read_image(_save(img, tmp_path / "p.png", transparency=0))
    assert (out == 255).all()


def test_16bit_grey_png_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.array([[0, 257 * 100, 65535, 65535, 0, 0, 0, 0]] * 8, np.uint16)
    path = tmp_path / "w.png"
    assert cv2.imwrite(str(path), arr)
    out = read_image(path)
    assert list(out[0, :3, 0]) == [0, 100, 255]


def test_16bit_rgb_png(tmp_path: Path) -> None:
    arr = np.zeros((8, 8, 3), np.uint16)
    arr[..., 2] = 65535  # red channel in cv2's BGR order
    path = tmp_path / "w3.png"
    assert cv2.imwrite(str(path), arr)
    assert tuple(read_image(path)[0, 0]) == (0, 0, 255)


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    arr = np.full((20, 40, 3), 255, np.uint8)
    arr[:, :20] = 0  # left half black in the stored pixels
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = read_image(_save(img, tmp_path / "r.jpg", "JPEG", exif=exif, quality=95))
    assert out.shape == (40, 20, 3)  # displayed upright: portrait
    assert out[:15].mean() < 30 and out[25:].mean() > 225  # the black half is now on top


def test_cmyk_jpeg(tmp_path: Path) -> None:
    img = Image.new("CMYK", (10, 10), (0, 0, 0, 0))
    assert (read_image(_save(img, tmp_path / "c.jpg", "JPEG")) > 240).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "missing file"),
        (lambda p: p.write_bytes(b""), "zero-byte file"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
)
def test_bad_files(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(str(path) + ": ")


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_truncated_png_and_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = _png_bytes(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        read_image(tmp_path / "t.png")
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[:-400])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        read_image(tmp_path / "t.jpg")


def test_corrupt_png_crc(tmp_path: Path) -> None:
    data = bytearray(_png_bytes(np.full((32, 32, 3), 9, np.uint8)))
    data[-20] ^= 0xFF  # inside IDAT / its CRC
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt"):
        read_image(tmp_path / "c.png")


def test_sha256_mismatch_shows_both_prefixes(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (10, 10)), tmp_path / "s.png")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    read_image(path, expected_sha256=actual)
    with pytest.raises(ImageError, match=f"expected {'0' * 12}.*got {actual[:12]}"):
        read_image(path, expected_sha256="0" * 64)


def test_absurd_dimensions(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="absurd dimensions 5x100"):
        read_image(_save(Image.new("L", (5, 100)), tmp_path / "thin.png"))
    with pytest.raises(ImageError, match="over max_pixels 1000"):
        read_image(_save(Image.new("L", (100, 100)), tmp_path / "big.png"), max_pixels=1000)


def test_unsupported_mode(tmp_path: Path) -> None:
    path = _save(Image.fromarray(np.zeros((10, 10), np.float32), "F"), tmp_path / "f.tiff", "TIFF")
    with pytest.raises(ImageError, match="unsupported mode F"):
        read_image(path)
