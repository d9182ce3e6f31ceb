"""Capture effects: what scanners, fax machines and phone cameras do to a slip.

Each effect takes an RGB (or grey) uint8 array and the text quads, and returns both changed; geometric effects
move the quads with the exact transform applied to the pixels. The order of `apply` follows the physical
chain: paper and light, then camera geometry, optics, sensor, resampling, and finally the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

EFFECTS = ("clean", "scan_noise", "blur", "jpeg", "rotation", "perspective", "low_contrast", "low_resolution",
           "shadow", "fax")
_ORDER = ("low_contrast", "shadow", "rotation", "perspective", "blur", "scan_noise", "low_resolution", "fax", "jpeg")

Quads = np.ndarray  # (n, 4, 2) float64


@dataclass(frozen=True)
class Captured:
    pixels: np.ndarray  # HxWx3 RGB, or HxW grey for scanner-grey and fax output
    quads: Quads
    encoding: str  # "png-rgb", "png-grey", "png-bilevel" or "jpeg"
    jpeg_quality: int | None


def _homography(pixels: np.ndarray, quads: Quads, matrix: np.ndarray, size: tuple[int, int],
                border: tuple[int, int, int]) -> tuple[np.ndarray, Quads]:
    fill = border[0] if pixels.ndim == 2 else border
    warped = cv2.warpPerspective(pixels, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=fill)
    moved = cv2.perspectiveTransform(quads.reshape(-1, 1, 2), matrix).reshape(quads.shape)
    return warped, moved


def _rotation(pixels: np.ndarray, quads: Quads, rng: np.random.Generator) -> tuple[np.ndarray, Quads]:
    """A slip put on the glass askew (up to about 12 degrees either way), not quite flat, and cropped to the slip.

    One matrix does it all: rotation, a slight keystone from the lid not pressing the slip flat, and a crop that
    trims the blank margin unevenly (never into text), so the quads move with exactly what moved the pixels.
    """
    h, w = pixels.shape[:2]
    angle = float(rng.uniform(7.0, 12.0)) * (1 if rng.random() < 0.5 else -1)
    scale = float(rng.uniform(0.75, 0.9))  # taken from further away, so coarser
    affine = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    cos, sin = abs(affine[0, 0]), abs(affine[0, 1])
    new_w, new_h = int(w * cos + h * sin + 0.5), int(h * cos + w * sin + 0.5)
    affine[0, 2] += (new_w - w) / 2
    affine[1, 2] += (new_h - h) / 2
    src = np.array([[0, 0], [new_w, 0], [new_w, new_h], [0, new_h]], dtype=np.float32)
    skew = rng.uniform(-1, 1, size=(4, 2)) * np.array([new_w, new_h]) * 0.02
    keystone = cv2.getPerspectiveTransform(src, np.float32(src + skew)).astype(np.float64)
    matrix = keystone @ np.vstack([affine, [0, 0, 1]])
    moved = cv2.perspectiveTransform(quads.reshape(-1, 1, 2), matrix).reshape(-1, 2)
    corners = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], dtype=np.float64)
    page = cv2.perspectiveTransform(corners, matrix).reshape(-1, 2)
    low, high = np.minimum(page.min(axis=0), moved.min(axis=0)), np.maximum(page.max(axis=0), moved.max(axis=0))
    text_low, text_high = moved.min(axis=0) - 12, moved.max(axis=0) + 12
    # Keep 0-70% of the blank band on each side (a phone or scan crop rarely leaves it all, never cuts text).
    left, top = low + (text_low - low).clip(0) * rng.uniform(0.3, 1.0, size=2)
    right, bottom = high - (high - text_high).clip(0) * rng.uniform(0.3, 1.0, size=2)
    shift = np.array([[1, 0, -np.floor(left)], [0, 1, -np.floor(top)], [0, 0, 1]], dtype=np.float64)
    size = (int(np.ceil(right) - np.floor(left)), int(np.ceil(bottom) - np.floor(top)))
    bed = int(rng.integers(200, 246))  # the scanner lid shows around a skewed slip
    return _homography(pixels, quads, shift @ matrix, size, (bed, bed, bed))


def _perspective(pixels: np.ndarray, quads: Quads, rng: np.random.Generator) -> tuple[np.ndarray, Quads]:
    h, w = pixels.shape[:2]
    margin_x, margin_y = int(w * rng.uniform(0.04, 0.09)), int(h * rng.uniform(0.05, 0.11))
    out_w, out_h = w + 2 * margin_x, h + 2 * margin_y
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = rng.uniform(-1, 1, size=(4, 2)) * np.array([margin_x, margin_y]) * 0.9
    # Phones are held tilted: one side of the slip nearer the lens, so that side grows.
    tilt = float(rng.uniform(0.02, 0.07)) * w
    top_narrow = np.array([[tilt, 0], [-tilt, 0], [0, 0], [0, 0]]) if rng.random() < 0.5 else \
        np.array([[0, 0], [0, 0], [-tilt, 0], [tilt, 0]])
    dst = np.float32(src + np.array([margin_x, margin_y]) + jitter + top_narrow)
    matrix = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    r, g, b = (int(v) for v in rng.choice(np.array([[120, 95, 70], [90, 90, 95], [40, 50, 70], [160, 150, 135]])))
    return _homography(pixels, quads, matrix, (out_w, out_h), (r, g, b))


def _low_contrast(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = float(rng.uniform(95, 135)), float(rng.uniform(190, 225))
    grey = pixels.astype(np.float32).mean(axis=2, keepdims=True)
    faded = 0.6 * pixels.astype(np.float32) + 0.4 * grey  # old thermal and carbon copies lose colour too
    out: np.ndarray = np.clip(low + faded * (high - low) / 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency random field in [0, 1], the same for a given seed on every machine."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    field: np.ndarray = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return field


def _shadow(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = float(rng.uniform(0, 2 * np.pi))
    ramp = (xx / w - 0.5) * np.cos(angle) + (yy / h - 0.5) * np.sin(angle)
    light = 1.0 - float(rng.uniform(0.3, 0.5)) * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    # A hard-edged shadow of the phone or a hand across one corner, softened by the distance to the paper.
    mask = np.zeros((h, w), np.float32)
    corner = int(rng.integers(4))
    cx, cy = (0 if corner in (0, 3) else w), (0 if corner in (0, 1) else h)
    rx, ry = float(rng.uniform(0.4, 0.7)) * w, float(rng.uniform(0.6, 1.0)) * h
    cv2.ellipse(mask, (cx, cy), (int(rx), int(ry)), float(rng.uniform(-20, 20)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(3.0, w * 0.015))
    light *= 1.0 - float(rng.uniform(0.55, 0.72)) * mask
    lit = pixels.astype(np.float32) * light[..., None]
    # Shade is lit by the blue sky or a cool ceiling, and the phone smooths its noise there, so it goes soft.
    soft = cv2.GaussianBlur(lit, (0, 0), sigmaX=float(rng.uniform(0.8, 1.2)))
    cast = np.array([0.9, 0.96, 1.06], dtype=np.float32) if pixels.ndim == 3 else np.float32(1.0)
    lit = lit + (soft * cast - lit) * mask[..., None]
    out: np.ndarray = np.clip(lit + 0.5, 0, 255).astype(np.uint8)
    return out


def _blur(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        blurred: np.ndarray = cv2.GaussianBlur(pixels, (0, 0), sigmaX=float(rng.uniform(1.5, 2.4)))
        return blurred
    # Camera shake: a line kernel at a random angle.
    length = int(rng.integers(7, 12))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    shaken: np.ndarray = cv2.filter2D(pixels, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)
    return shaken


def _to_grey(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return pixels
    grey: np.ndarray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return grey


def _scan_noise(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A worn office scanner set to grey: dull paper, soft optics, grain, streaks from dirty glass, dust, toner.

    Grain is spatially correlated, as real paper is; streaks run along the sensor's travel (down the page).
    """
    grey = _to_grey(pixels).astype(np.float32)
    h, w = grey.shape
    # Recycled paper and a tired lamp: the white is grey and the black is not quite black.
    paper, ink = float(rng.uniform(195, 220)), float(rng.uniform(20, 45))
    grey = ink + grey * (paper - ink) / 255.0
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=float(rng.uniform(0.6, 0.9)))  # the glass is not in focus
    grain = rng.normal(0, float(rng.uniform(5.0, 8.0)), size=(h // 3 + 1, w // 3 + 1)).astype(np.float32)
    grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)
    sensor = rng.normal(0, float(rng.uniform(2.0, 4.0)), size=(h, w)).astype(np.float32)
    tone = (_smooth_field((h, w), rng, 4) - 0.5) * 22
    noisy = grey + grain + sensor + tone
    for _ in range(int(rng.integers(3, 8))):  # streaks: a speck on the glass draws a line the length of the page
        x, width = int(rng.integers(w)), int(rng.integers(1, 4))
        noisy[:, x : x + width] += float(rng.uniform(-70, -30)) if rng.random() < 0.7 else float(rng.uniform(25, 45))
    for _ in range(int(rng.integers(120, 280))):  # dust and toner specks
        x, y = int(rng.integers(w)), int(rng.integers(h))
        r = int(rng.integers(1, 4))
        cv2.circle(noisy, (x, y), r, float(rng.uniform(10, 80)), -1)
    for _ in range(int(rng.integers(4, 12))):  # hairs and scratches
        x, y = int(rng.integers(w)), int(rng.integers(h))
        dx, dy = (int(v) for v in rng.integers(-40, 41, size=2))
        cv2.line(noisy, (x, y), (x + dx, y + dy), float(rng.uniform(20, 90)), 1)
    salt = rng.random((h, w))
    density = float(rng.uniform(0.0015, 0.004))
    noisy[salt < density / 2] = 0.0
    noisy[salt > 1 - density / 2] = 255.0
    out: np.ndarray = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return out


def _low_resolution(pixels: np.ndarray, quads: Quads, rng: np.random.Generator) -> tuple[np.ndarray, Quads]:
    h, w = pixels.shape[:2]
    target = int(rng.integers(760, 960))
    scale = target / max(h, w)
    if scale >= 1:
        return pixels, quads
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return small, quads * np.array([size[0] / w, size[1] / h])


def _fax(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bilevel at fax 'standard' resolution: half the vertical lines, thresholded, with line dropouts."""
    grey = _to_grey(pixels)
    h, w = grey.shape
    half = cv2.resize(grey, (w, max(8, h // 2)), interpolation=cv2.INTER_AREA)
    tall = cv2.resize(half, (w, h), interpolation=cv2.INTER_NEAREST)
    threshold = float(rng.uniform(135, 175))
    binary = np.where(tall < threshold, 0, 255).astype(np.uint8)
    flips = rng.random((h, w)) < float(rng.uniform(0.0005, 0.002))
    binary[flips] = 255 - binary[flips]
    for _ in range(int(rng.integers(1, 5))):  # a dropped scan line prints white across the page
        y = int(rng.integers(h))
        binary[y : y + 2, :] = 255
    return binary


def apply(pixels: np.ndarray, quads: Quads, effects: Sequence[str], rng: np.random.Generator) -> Captured:
    unknown = set(effects) - set(EFFECTS)
    if unknown:
        raise ValueError(f"unknown effects: {sorted(unknown)}")
    quality: int | None = None
    for name in _ORDER:
        if name not in effects:
            continue
        match name:
            case "low_contrast":
                pixels = _low_contrast(pixels, rng)
            case "shadow":
                pixels = _shadow(pixels, rng)
            case "rotation":
                # A skewed slip is a flatbed scan, and back-office scanners are set to grey.
                pixels, quads = _rotation(_to_grey(pixels), quads, rng)
            case "perspective":
                pixels, quads = _perspective(pixels, quads, rng)
            case "blur":
                pixels = _blur(pixels, rng)
            case "scan_noise":
                pixels = _scan_noise(pixels, rng)
            case "low_resolution":
                pixels, quads = _low_resolution(pixels, quads, rng)
            case "fax":
                pixels = _fax(pixels, rng)
            case "jpeg":
                quality = int(rng.integers(12, 36))
    if "fax" in effects:
        encoding = "png-bilevel"
    elif quality is not None:
        encoding = "jpeg"
    elif pixels.ndim == 2:
        encoding = "png-grey"
    else:
        encoding = "png-rgb"
    return Captured(pixels, quads, encoding, quality)
