"""Scanned pages made here from known text, to measure OCR: layouts, scan degradations and the error rate.

A page is drawn at 300 dpi with Debian fonts (DejaVu Sans; Noto Sans CJK SC/JP for zh/ja) in one of
four layouts (``plain``, ``two_columns``, ``table``, ``footnotes``); :func:`degrade` then makes it a
plausible scan: skew (rotation before sampling, as paper on the glass), sampling at a lower dpi, optical
blur, uneven lighting, paper grain and JPEG artifacts, all seeded. :func:`character_error_rate` compares
the OCR output with the reference text in reading order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MASTER_DPI = 300
LAYOUTS = ("plain", "two_columns", "table", "footnotes")
FONT_FILES = {"latin": ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", None),
              "zh": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
              "ja": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK JP")}
CJK_LANGUAGES = ("zh", "ja")


@dataclass(frozen=True)
class Degradation:
    """One scan condition: sampling ``dpi``, ``skew`` degrees, ``blur`` sigma (output pixels), ``grain`` noise
    sigma (gray levels), ``jpeg`` quality (0: none), ``lighting`` (darkening of the far corner, 0-1), ``layout``."""

    name: str
    dpi: int = MASTER_DPI
    skew: float = 0.0
    blur: float = 0.0
    grain: float = 0.0
    jpeg: int = 0
    lighting: float = 0.0
    layout: str = "plain"


DEGRADATIONS: tuple[Degradation, ...] = (
    Degradation("clean 300dpi"),
    Degradation("200dpi", dpi=200),
    Degradation("150dpi", dpi=150),
    Degradation("100dpi", dpi=100),
    Degradation("skew 3° 300dpi", skew=3.0),
    Degradation("150dpi skew 2°", dpi=150, skew=2.0),
    Degradation("blur 200dpi", dpi=200, blur=1.2),
    Degradation("grain 200dpi", dpi=200, grain=40),
    Degradation("jpeg q20 200dpi", dpi=200, jpeg=20),
    Degradation("uneven light", dpi=200, lighting=0.6),
    Degradation("scan 150dpi", dpi=150, skew=1.2, blur=0.7, grain=25),
    Degradation("scan 150dpi 2°", dpi=150, skew=-2.0, blur=0.7, grain=25, jpeg=50),
    Degradation("two columns", dpi=200, skew=0.8, grain=15, layout="two_columns"),
    Degradation("table", dpi=200, skew=0.8, grain=15, layout="table"),
    Degradation("footnotes", dpi=200, skew=0.8, grain=15, layout="footnotes"),
)


def load_font(language: str, size: int) -> Any:
    """The Debian font for ``language`` (DejaVu Sans; Noto Sans CJK SC/JP for zh/ja) at ``size`` pixels."""
    from PIL import ImageFont

    path, family = FONT_FILES.get(language, FONT_FILES["latin"])
    for index in range(10):
        font = ImageFont.truetype(path, size, index=index)
        if family is None or font.getname()[0] == family:
            return font
    raise OSError(f"{path} holds no face named {family!r}")


def wrap(text: str, font: Any, width: float, cjk: bool) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (by character for CJK, else by word)."""
    lines: list[str] = []
    current = ""
    for unit in list(text) if cjk else text.split():
        trial = current + unit if cjk or not current else f"{current} {unit}"
        if current and font.getlength(trial) > width:
            lines.append(current)
            current = unit
        else:
            current = trial
    return [*lines, current] if current else lines


def _cells(paragraph: str, cjk: bool, n: int) -> list[str]:
    """``n`` short table cells cut from ``paragraph`` (two words, or four CJK characters, each)."""
    if cjk:
        chars = [c for c in paragraph if not re.match(r"[\s，。、；：]", c)]
        return ["".join(chars[i:i + 4]) for i in range(0, 4 * n, 4)]
    words = [w.strip(".,;:") for w in paragraph.split()]
    return [" ".join(words[i:i + 2]) for i in range(0, 2 * n, 2)]


def render_page(paragraphs: list[str], language: str, layout: str = "plain", font_pt: float = 11) -> tuple[Any, str]:
    """An A4 page at 300 dpi (grayscale PIL image) of ``paragraphs`` in ``layout``, and its text in reading order."""
    from PIL import Image, ImageDraw

    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    dpi, cjk = MASTER_DPI, language in CJK_LANGUAGES
    width, height, margin = int(8.27 * dpi), int(11.69 * dpi), int(0.8 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = load_font(language, round(font_pt * dpi / 72))
    line_h = round(font_pt * dpi / 72 * 1.45)
    text_w = width - 2 * margin
    reference: list[str] = []

    def block(paras: list[str], x: int, y: int, w: int, fnt: Any, lh: int) -> int:
        for para in paras:
            for line in wrap(para, fnt, w, cjk):
                draw.text((x, y), line, font=fnt, fill=0)
                y += lh
            y += lh // 2
            reference.append(para)
        return y

    if layout == "plain":
        block(paragraphs, margin, margin, text_w, font, line_h)
    elif layout == "two_columns":
        gutter = int(0.3 * dpi)
        col_w = (text_w - gutter) // 2
        half = (len(paragraphs) + 1) // 2
        block(paragraphs[:half], margin, margin, col_w, font, line_h)
        block(paragraphs[half:], margin + col_w + gutter, margin, col_w, font, line_h)
    elif layout == "table":
        y = block(paragraphs[:1], margin, margin, text_w, font, line_h) + line_h
        cols, rows = 3, 5
        cells = _cells(" ".join(paragraphs), cjk, cols * rows)
        col_w, row_h = text_w // cols, int(line_h * 1.6)
        for r in range(rows + 1):
            draw.line((margin, y + r * row_h, margin + text_w, y + r * row_h), fill=0, width=3)
        for c in range(cols + 1):
            draw.line((margin + c * col_w, y, margin + c * col_w, y + rows * row_h), fill=0, width=3)
        for r in range(rows):
            row = cells[r * cols:(r + 1) * cols]
            for c, cell in enumerate(row):
                draw.text((margin + c * col_w + line_h // 3, y + r * row_h + (row_h - line_h) // 2 + 4), cell,
                          font=font, fill=0)
            reference.append(" ".join(row))
    else:  # footnotes: body text, a short rule, then a smaller numbered note at the foot of the page
        block(paragraphs[:-1], margin, margin, text_w, font, line_h)
        small = load_font(language, round(8 * dpi / 72))
        small_h = round(8 * dpi / 72 * 1.4)
        note = f"1 {paragraphs[-1]}"
        lines = wrap(note, small, text_w, cjk)
        y = height - margin - len(lines) * small_h
        draw.line((margin, y - small_h // 2, margin + text_w // 3, y - small_h // 2), fill=0, width=2)
        block([note], margin, y, text_w, small, small_h)
    return image, "\n".join(reference)


def degrade(image: Any, degradation: Degradation, seed: int = 0) -> Any:
    """``image`` (a 300-dpi page) as a scan under ``degradation``: a grayscale PIL image at ``degradation.dpi``."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    page = image.convert("L")
    if degradation.skew:
        page = page.rotate(degradation.skew, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    if degradation.dpi != MASTER_DPI:
        scale = degradation.dpi / MASTER_DPI
        page = page.resize((round(page.width * scale), round(page.height * scale)), Image.Resampling.BOX)
    if degradation.blur:
        page = page.filter(ImageFilter.GaussianBlur(degradation.blur))
    pixels = np.asarray(page, dtype=np.float32)
    if degradation.lighting:
        h, w = pixels.shape
        yy, xx = np.mgrid[0:h, 0:w]
        shade = 1 - degradation.lighting * ((xx / w + yy / h) / 2) ** 1.5
        pixels = pixels * shade
    if degradation.grain:
        pixels = pixels + rng.normal(0, degradation.grain, pixels.shape)
    page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    if degradation.jpeg:
        from io import BytesIO

        buf = BytesIO()
        page.save(buf, "JPEG", quality=degradation.jpeg)
        page = Image.open(BytesIO(buf.getvalue())).convert("L")
    return page


def write_scan_pdf(path: str, images: list[Any], dpi: int) -> int:
    """Save ``images`` as an image-only PDF whose pages are ``dpi`` (each image embedded at its own size)."""
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return len(images)


def write_image_pdf(path: str, paragraphs: list[str], language: str, dpi: int = 300, font_pt: float = 12) -> int:
    """Render ``paragraphs`` onto clean A4 images at ``dpi``, saved as an image-only PDF; return the page count."""
    from PIL import Image, ImageDraw

    width, height, margin = int(8.27 * dpi), int(11.69 * dpi), dpi
    font = load_font(language, round(font_pt * dpi / 72))
    line_h = round(font_pt * dpi / 72 * 1.5)
    lines: list[str] = []
    for para in paragraphs:
        lines += [*wrap(para, font, width - 2 * margin, language in CJK_LANGUAGES), ""]
    per_page = (height - 2 * margin) // line_h
    images = []
    for start in range(0, len(lines), per_page):
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for k, line in enumerate(lines[start:start + per_page]):
            draw.text((margin, margin + k * line_h), line, font=font, fill=0)
        images.append(image)
    return write_scan_pdf(path, images, dpi)


def character_error_rate(reference: str, hypothesis: str, cjk: bool = False) -> float:
    """Levenshtein distance / reference length, after collapsing whitespace (removing it for CJK)."""
    def norm(s: str) -> str:
        return re.sub(r"\s+", "" if cjk else " ", s).strip()

    ref, hyp = norm(reference), norm(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))
