"""Finding a CJK font for the generator at run time. Only the generator needs one: reading a corpus never does.

Search order: the file named by $OCR_HARNESS_CJK_FONT (used for every role), then the directories in
$OCR_HARNESS_FONT_DIRS (os.pathsep-separated), then the usual system font directories below. Debian/Ubuntu:
`apt-get install fonts-noto-cjk` gives the Noto CJK faces the committed corpus was made with;
`fonts-wqy-microhei` is accepted as a fallback (another font means other pixels, so not the committed bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from harness.util.errors import UserError

SYSTEM_FONT_DIRS = (
    "/usr/share/fonts/opentype/noto",  # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/noto-cjk",  # Arch: noto-fonts-cjk
    "/usr/share/fonts/google-noto-cjk",  # Fedora: google-noto-sans-cjk-fonts
    "/usr/share/fonts/opentype/noto-cjk",
    "/usr/share/fonts/truetype/wqy",  # Debian, Ubuntu: fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
)

# role -> (file name, family name wanted inside a collection); first hit per role wins.
_CANDIDATES: dict[str, tuple[tuple[str, str], ...]] = {
    "sans": (("NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"), ("NotoSansCJKsc-Regular.otf", "Noto Sans CJK SC"),
             ("wqy-microhei.ttc", "WenQuanYi Micro Hei")),
    "bold": (("NotoSansCJK-Bold.ttc", "Noto Sans CJK SC"), ("NotoSansCJKsc-Bold.otf", "Noto Sans CJK SC"),
             ("wqy-microhei.ttc", "WenQuanYi Micro Hei")),
    "serif": (("NotoSerifCJK-Regular.ttc", "Noto Serif CJK SC"), ("NotoSerifCJKsc-Regular.otf", "Noto Serif CJK SC"),
              ("NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"), ("wqy-microhei.ttc", "WenQuanYi Micro Hei")),
    "mono": (("NotoSansCJK-Regular.ttc", "Noto Sans Mono CJK SC"), ("wqy-microhei.ttc", "WenQuanYi Micro Hei Mono")),
}


@dataclass(frozen=True)
class FontFace:
    path: Path
    index: int
    family: str

    def at(self, size: int) -> ImageFont.FreeTypeFont:
        # BASIC layout: raqm (when present) may shape differently between machines; CJK needs no shaping.
        return ImageFont.truetype(str(self.path), size, index=self.index, layout_engine=ImageFont.Layout.BASIC)

    def describe(self) -> str:
        """File name and family only: the directory is this machine's business, not the corpus's."""
        return f"{self.path.name}#{self.index} ({self.family})"


@dataclass(frozen=True)
class FontSet:
    sans: FontFace
    bold: FontFace
    serif: FontFace
    mono: FontFace


def _face_in(path: Path, family: str) -> FontFace | None:
    for index in range(32):
        try:
            font = ImageFont.truetype(str(path), 12, index=index, layout_engine=ImageFont.Layout.BASIC)
        except OSError:
            return None
        name = font.getname()[0] or ""
        if name == family:
            return FontFace(path, index, name)
    return None


def _search_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("OCR_HARNESS_FONT_DIRS", "").split(os.pathsep) if d]
    return [Path(d).expanduser() for d in (*extra, *SYSTEM_FONT_DIRS)]


def find_fonts() -> FontSet:
    """The generator's faces, or a UserError that says how to install one."""
    override = os.environ.get("OCR_HARNESS_CJK_FONT")
    if override:
        path = Path(override).expanduser()
        try:
            family = ImageFont.truetype(str(path), 12).getname()[0] or path.stem
        except OSError as e:
            raise UserError(f"OCR_HARNESS_CJK_FONT={override}: not a usable font file ({e})") from e
        face = FontFace(path, 0, family)
        return FontSet(face, face, face, face)
    found: dict[str, FontFace] = {}
    dirs = _search_dirs()
    for role, candidates in _CANDIDATES.items():
        for file_name, family in candidates:
            hit = next((f for d in dirs if (d / file_name).is_file() and (f := _face_in(d / file_name, family))), None)
            if hit is not None:
                found[role] = hit
                break
    if "sans" not in found:
        raise UserError(
            "no CJK font found for the slip generator: install one (Debian/Ubuntu: apt-get install fonts-noto-cjk) "
            "or set OCR_HARNESS_CJK_FONT to a .ttf/.otf/.ttc file; searched OCR_HARNESS_FONT_DIRS and "
            + ", ".join(SYSTEM_FONT_DIRS)
        )
    sans = found["sans"]
    return FontSet(sans, found.get("bold", sans), found.get("serif", sans), found.get("mono", sans))
