"""A paper-sized drawing surface that records the ground truth of every text line it prints.

Truth boxes are the text's bounding box grown by a small margin, the way annotators draw them; geometric
capture effects later move them with the same transform as the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harness.corpus.fonts import FontSet

RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class DrawnLine:
    text: str
    quad: tuple[tuple[float, float], ...]  # 4 corners, clockwise from top-left, in canvas pixels


class Canvas:
    def __init__(self, width: int, height: int, paper: RGB, fonts: FontSet) -> None:
        self.width, self.height = width, height
        self.image = Image.new("RGB", (width, height), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.fonts = fonts
        self.lines: list[DrawnLine] = []
        self._cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def font(self, role: str, size: int) -> ImageFont.FreeTypeFont:
        key = (role, size)
        if key not in self._cache:
            self._cache[key] = getattr(self.fonts, role).at(size)
        return self._cache[key]

    def measure(self, text: str, role: str, size: int) -> float:
        return float(self.font(role, size).getlength(text))

    def fit(self, text: str, role: str, size: int, max_width: float, min_ratio: float = 0.6) -> int:
        """The largest size <= `size` at which the text fits, but never below min_ratio of it."""
        floor = max(8, int(size * min_ratio))
        while size > floor and self.measure(text, role, size) > max_width:
            size -= 1
        return size

    def text(self, x: float, y: float, text: str, *, role: str = "sans", size: int, fill: RGB = (20, 20, 20),
             anchor: str = "lm", truth: bool = True) -> Box:
        """Draws one line; (x, y) is the anchor point as Pillow defines it ("lm": left, vertical middle)."""
        font = self.font(role, size)
        self.draw.text((x, y), text, font=font, fill=fill, anchor=anchor)
        x0, y0, x1, y1 = self.draw.textbbox((x, y), text, font=font, anchor=anchor)
        pad_x, pad_y = 2 + 0.06 * size, 2 + 0.08 * size
        box = (x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y)
        if truth and text.strip():
            bx0, by0, bx1, by1 = box
            self.lines.append(DrawnLine(text, ((bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1))))
        return box

    def text_in(self, box: Box, text: str, *, role: str = "sans", size: int, fill: RGB = (20, 20, 20),
                align: str = "left", pad: float = 10, dx: float = 0, dy: float = 0) -> None:
        """One line inside a cell, shrunk to fit; dx/dy shift it as a misaligned printer would."""
        x0, y0, x1, y1 = box
        size = self.fit(text, role, size, x1 - x0 - 2 * pad)
        cy = (y0 + y1) / 2 + dy
        if align == "center":
            self.text((x0 + x1) / 2 + dx, cy, text, role=role, size=size, fill=fill, anchor="mm")
        elif align == "right":
            self.text(x1 - pad + dx, cy, text, role=role, size=size, fill=fill, anchor="rm")
        else:
            self.text(x0 + pad + dx, cy, text, role=role, size=size, fill=fill, anchor="lm")

    def rect(self, box: Box, *, outline: RGB, width: int = 2, fill: RGB | None = None) -> None:
        self.draw.rectangle([round(v) for v in box], outline=outline, width=width, fill=fill)

    def hline(self, x0: float, x1: float, y: float, *, fill: RGB, width: int = 2) -> None:
        self.draw.line([(round(x0), round(y)), (round(x1), round(y))], fill=fill, width=width)

    def vline(self, x: float, y0: float, y1: float, *, fill: RGB, width: int = 2) -> None:
        self.draw.line([(round(x), round(y0)), (round(x), round(y1))], fill=fill, width=width)

    def checkbox(self, x: float, y: float, side: float, *, ticked: bool, fill: RGB) -> None:
        self.rect((x, y - side / 2, x + side, y + side / 2), outline=fill, width=2)
        if ticked:
            w = max(2, round(side / 8))
            tick = [(x + side * 0.18, y), (x + side * 0.42, y + side * 0.3), (x + side * 0.85, y - side * 0.35)]
            self.draw.line(tick, fill=(30, 30, 30), width=w)

    def logo(self, x: float, y: float, diameter: float, colour: RGB) -> None:
        """A made-up emblem: a ring with a square hole, like many Chinese bank marks, but no real one."""
        r = diameter / 2
        cx, cy = x + r, y + r
        self.draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        self.draw.ellipse([cx - r * 0.72, cy - r * 0.72, cx + r * 0.72, cy + r * 0.72], fill=self.paper_at(x, y))
        self.draw.rectangle([cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3], fill=colour)
        self.draw.rectangle([cx - r * 0.12, cy - r * 0.12, cx + r * 0.12, cy + r * 0.12], fill=self.paper_at(x, y))

    def crop_height(self, height: int) -> None:
        self.image = self.image.crop((0, 0, self.width, height))
        self.draw = ImageDraw.Draw(self.image)
        self.height = height

    def paper_at(self, x: float, y: float) -> RGB:
        where = (max(0, min(self.width - 1, int(x) - 2)), max(0, min(self.height - 1, int(y) - 2)))
        r, g, b = np.asarray(self.image)[where[1], where[0]]
        return (int(r), int(g), int(b))

    def seal(self, cx: float, cy: float, radius: float, ring_text: str, centre_text: str,
             rng: np.random.Generator) -> None:
        """A red round stamp, composited by darkening (ink over print) so the text under it stays visible.

        Its words are not ground truth: they run along an arc, and real annotations leave stamps out.
        """
        size = int(radius * 2 + 8)
        stamp = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(stamp)
        c = size / 2
        ring = max(3, int(radius * 0.06))
        draw.ellipse([c - radius, c - radius, c + radius, c + radius], outline=255, width=ring)
        _star(draw, c, c, radius * 0.22)
        font_size = max(10, int(radius * 0.24))
        font = self.fonts.sans.at(font_size)
        n = max(1, len(ring_text))
        span = math.radians(min(260.0, max(140.0, n * 30.0)))
        for i, char in enumerate(ring_text):
            angle = -math.pi / 2 - span / 2 + span * (i + 0.5) / n
            glyph = Image.new("L", (font_size * 2, font_size * 2), 0)
            ImageDraw.Draw(glyph).text((font_size, font_size), char, font=font, fill=255, anchor="mm")
            glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
            gx = c + math.cos(angle) * radius * 0.74 - font_size
            gy = c + math.sin(angle) * radius * 0.74 - font_size
            stamp.paste(255, (int(gx), int(gy)), glyph)
        small = font.font_variant(size=max(10, int(radius * 0.2)))
        draw.text((c, c + radius * 0.5), centre_text, font=small, fill=255, anchor="mm")
        stamp = stamp.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BICUBIC)
        # Uneven inking: stamps never print solid.
        mottle = rng.uniform(0.55, 1.0, size=(size // 8 + 1, size // 8 + 1)).astype(np.float32)
        mottle_img = Image.fromarray((mottle * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
        alpha = (np.asarray(stamp, dtype=np.float32) / 255.0) * (np.asarray(mottle_img, dtype=np.float32) / 255.0)
        alpha *= float(rng.uniform(0.7, 0.9))
        x0, y0 = int(cx - size / 2), int(cy - size / 2)
        region = (max(0, x0), max(0, y0), min(self.width, x0 + size), min(self.height, y0 + size))
        crop = np.asarray(self.image.crop(region), dtype=np.float32)
        a = alpha[region[1] - y0 : region[3] - y0, region[0] - x0 : region[2] - x0, None]
        ink = np.array([205, 25, 35], dtype=np.float32)
        # Multiply blend: red ink over black print stays black, over paper turns red.
        blended = crop * (1 - a) + (crop * ink / 255.0) * a
        self.image.paste(Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8)), region[:2])


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.4
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((cx + math.cos(angle) * radius, cy + math.sin(angle) * radius))
    draw.polygon(points, fill=255)
