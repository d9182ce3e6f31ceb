"""Reading one corpus image into the engine's input: BGR uint8, HxWx3, whatever the file held.

Pillow rather than cv2.imread: imread returns None instead of saying what is wrong, drops alpha onto black,
and its EXIF handling depends on flags. Every normalisation here is explicit so a corpus image means the same
pixels on every machine.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harness.util.errors import ImageError

MIN_SIDE = 8
DEFAULT_MAX_PIXELS = 40_000_000
# A file is read whole before decoding: without a bound, one bad manifest entry (a 2 GB file renamed .png)
# costs its size in memory. 256 MiB holds any sane scan, even a 40-megapixel uncompressed 16-bit TIFF.
DEFAULT_MAX_BYTES = 256 * 2**20
_WHITE = (255, 255, 255)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Transparent areas become white paper, not black: a scanned slip has no holes."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img)
    if mode in ("1", "L", "P", "CMYK", "YCbCr"):
        return img.convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (and 32-bit int that holds it): scale 0..65535 to 0..255 instead of clipping at 255.
        wide = np.asarray(img, dtype=np.float64)
        if wide.size and (wide.min() < 0 or wide.max() > 65535):
            raise ImageError(f"{name}: unsupported mode {mode} (values outside 0..65535)")
        grey = np.floor(wide / 257.0 + 0.5).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    raise ImageError(f"{name}: unsupported mode {mode}")


def read_bounded(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, or ImageError("<file>: <problem>") when it is missing, not a file, empty or over
    `max_bytes`. Reads at most max_bytes + 1 bytes, so a file that grows after the size check costs no more."""
    name = str(path)
    if not path.exists():
        raise ImageError(f"{name}: missing file")
    if not path.is_file():
        raise ImageError(f"{name}: not a regular file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"{name}: {size} bytes, over max_image_bytes {max_bytes}")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise ImageError(f"{name}: cannot read ({e.strerror})") from None
    if len(data) > max_bytes:
        raise ImageError(f"{name}: over max_image_bytes {max_bytes} bytes")
    if not data:
        raise ImageError(f"{name}: zero-byte file")
    return data


def read_image(path: Path, *, expected_sha256: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """BGR uint8 HxWx3, or ImageError("<file>: <problem>")."""
    name = str(path)
    data = read_bounded(path, max_bytes)
    if expected_sha256 is not None:
        actual = sha256_bytes(data)
        if actual != expected_sha256.lower():
            raise ImageError(f"{name}: sha256 mismatch: expected {expected_sha256[:12]}..., got {actual[:12]}...")
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns or raises depending on size; our max_pixels check below decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image (unrecognised format)") from None
        except Image.DecompressionBombError as e:
            raise ImageError(f"{name}: absurd dimensions ({e})") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise ImageError(f"{name}: corrupt image header ({e})") from None
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(f"{name}: absurd dimensions {width}x{height} (over max_pixels {max_pixels})")
        if min(width, height) < MIN_SIDE:
            raise ImageError(f"{name}: absurd dimensions {width}x{height} (a side under {MIN_SIDE} px)")
        try:
            img.load()
        except Image.DecompressionBombError as e:
            raise ImageError(f"{name}: absurd dimensions ({e})") from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise ImageError(f"{name}: corrupt or truncated image ({e})") from None
    try:
        upright: Image.Image = ImageOps.exif_transpose(img) or img
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{name}: corrupt EXIF orientation ({e})") from None
    rgb = _to_rgb(upright, name)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
