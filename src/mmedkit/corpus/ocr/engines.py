"""OCR engines: Tesseract 5 (the ``tesseract`` program) and PP-OCR through rapidocr-onnxruntime.

Both return an :class:`OcrResult`: the text (lines kept, paragraphs separated by a blank line) and a
mean word confidence in 0-100 weighted by characters. Tesseract runs with a page segmentation mode
(``--psm``: 3 automatic layout with column analysis, 4 one column, 6 one block, 11 sparse text) and
gives its TSV word boxes; RapidOCR (PP-OCRv4 detection and Chinese/English recognition models shipped
inside its wheel, run offline by onnxruntime) gives text lines with scores, ordered here into reading
order (columns found from the gaps between line boxes).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from mmedkit.text import CJK, FULLWIDTH

TESSERACT_LANGS = {"en": "eng", "zh": "chi_sim", "ja": "jpn", "fr": "fra", "ru": "rus", "es": "spa"}
_CJK_SPACE = re.compile(f"(?<=[{CJK}{FULLWIDTH}]) (?=[{CJK}{FULLWIDTH}])")


class OcrError(RuntimeError):
    """An OCR engine is missing, lacks a language pack, or failed on a page."""


@dataclass
class OcrResult:
    """One engine's reading of one page image."""

    text: str
    confidence: float  # 0-100, character-weighted mean over words (0 when nothing was read)
    engine: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return len(re.sub(r"\s", "", self.text))


def _encode_png(image: Any) -> bytes:
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buf = BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _tesseract() -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise OcrError("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-<lang>; "
                       "tests/ocr_setup.sh)")
    return exe


def tesseract_langs() -> set[str]:
    """The language packs the installed ``tesseract`` knows (empty when it is not installed)."""
    exe = shutil.which("tesseract")
    if exe is None:
        return set()
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, check=False).stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def _run(args: list[str], png: bytes, timeout: float) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    proc = subprocess.run(args, input=png, capture_output=True, timeout=timeout, check=False, env=env)
    if proc.returncode != 0:
        raise OcrError(f"{' '.join(args[:1] + args[3:])} failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8", "replace")


def tesseract_text(image: Any, languages: str, psm: int = 3, timeout: float = 300) -> str:
    """Plain Tesseract text of a page image (``languages`` like ``"eng"`` or ``"chi_sim+jpn"``)."""
    text = _run([_tesseract(), "stdin", "stdout", "-l", languages, "--psm", str(psm)], _encode_png(image), timeout)
    return _CJK_SPACE.sub("", text) if "chi_sim" in languages or "jpn" in languages else text


def tesseract(image: Any, languages: str, psm: int = 3, timeout: float = 300) -> OcrResult:
    """Tesseract's reading of a page image, with its character-weighted mean word confidence."""
    tsv = _run([_tesseract(), "stdin", "stdout", "-l", languages, "--psm", str(psm), "tsv"], _encode_png(image),
               timeout)
    paragraphs: list[list[str]] = []
    line_words: list[str] = []
    last_par = last_line = None
    weighted = total = 0.0
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        word, conf = cols[11].strip(), float(cols[10])
        if not word:
            continue
        par, line = tuple(cols[2:4]), tuple(cols[2:5])
        if line != last_line and line_words:
            paragraphs[-1].append(" ".join(line_words))
            line_words = []
        if par != last_par:
            paragraphs.append([])
        last_par, last_line = par, line
        line_words.append(word)
        weighted += max(conf, 0) * len(word)
        total += len(word)
    if line_words:
        paragraphs[-1].append(" ".join(line_words))
    text = "\n\n".join("\n".join(lines) for lines in paragraphs)
    if "chi_sim" in languages or "jpn" in languages:
        text = _CJK_SPACE.sub("", text)
    return OcrResult(text, weighted / total if total else 0.0, "tesseract", {"psm": psm, "languages": languages})


def osd_rotation(image: Any, timeout: float = 120) -> tuple[int, float]:
    """Tesseract OSD: the clockwise rotation (0/90/180/270) that makes the page upright, and its confidence."""
    try:
        out = _run([_tesseract(), "stdin", "stdout", "--psm", "0", "-l", "osd"], _encode_png(image), timeout)
    except OcrError:  # too little text for OSD
        return 0, 0.0
    rotate = re.search(r"Rotate: (\d+)", out)
    conf = re.search(r"Orientation confidence: ([\d.]+)", out)
    return (int(rotate.group(1)) if rotate else 0), (float(conf.group(1)) if conf else 0.0)


@functools.lru_cache(maxsize=1)
def _rapidocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise OcrError(f"rapidocr-onnxruntime is not installed (pip install 'mmedkit[corpus]'): {exc}") from exc
    threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def _reading_order(lines: list[tuple[float, float, float, float, str, float]]) -> list[list[tuple]]:
    """Line boxes (x0, y0, x1, y1, text, score) grouped into columns left to right, each read top to bottom."""
    if not lines:
        return []
    width = max(b[2] for b in lines) - min(b[0] for b in lines)
    columns: list[list[tuple]] = []
    for box in sorted(lines, key=lambda b: b[0]):
        for col in columns:
            cx0, cx1 = min(b[0] for b in col), max(b[2] for b in col)
            overlap = min(cx1, box[2]) - max(cx0, box[0])
            if overlap > 0.3 * min(cx1 - cx0, box[2] - box[0]) or box[2] - box[0] > 0.6 * width:
                col.append(box)
                break
        else:
            columns.append([box])
    return [sorted(col, key=lambda b: (b[1] + b[3]) / 2) for col in sorted(columns, key=lambda c: min(b[0] for b in c))]


def rapidocr(image: Any, languages: str = "zh") -> OcrResult:
    """PP-OCRv4 (Chinese and English recognition) on a page image, lines in reading order."""
    import numpy as np

    engine = _rapidocr()
    array = np.asarray(image if isinstance(image, np.ndarray) else image.convert("RGB"))
    found, _ = engine(array)
    lines = []
    for box, text, score in found or []:
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        lines.append((min(xs), min(ys), max(xs), max(ys), text, float(score)))
    blocks = []
    for col in _reading_order(lines):
        paragraph: list[str] = []
        previous = None
        for x0, y0, x1, y1, text, _ in col:
            if previous is not None and y0 - previous[3] > 0.8 * (y1 - y0):  # a gap: new paragraph
                blocks.append("\n".join(paragraph))
                paragraph = []
            paragraph.append(text)
            previous = (x0, y0, x1, y1)
        blocks.append("\n".join(paragraph))
    chars = sum(len(b[4]) for b in lines)
    conf = 100 * sum(b[5] * len(b[4]) for b in lines) / chars if chars else 0.0
    text = "\n\n".join(b for b in blocks if b)
    if languages in ("zh", "ja"):
        text = _CJK_SPACE.sub("", text)
    return OcrResult(text, conf, "rapidocr", {"model": "PP-OCRv4 ch"})
