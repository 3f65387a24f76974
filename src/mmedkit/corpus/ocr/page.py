"""One scanned page to text: the image pipeline, the engine measured best for the language, retries, a verdict.

:func:`read_page` prepares the image (:mod:`.image`), reads it with the language's engine
(:data:`ENGINE_BY_LANGUAGE`), and when the text is empty or its confidence under ``min_confidence``
retries: upright by Tesseract's OSD, other page segmentation modes (6 one block, 4 one column, 11
sparse text), the other engine where it reads the language, the page without lighting/scale changes.
The best attempt (confidence, then amount of text) is kept, with a status: ``ok``, ``blank`` (no ink
on the page), ``not text`` (ink over a quarter of the page or paper noise over 35 gray levels: a photo
or noise, not OCR'd), ``low
confidence`` or ``empty`` (ink but no text); the reader reports the last three.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmedkit.corpus.ocr.engines import TESSERACT_LANGS, OcrError, OcrResult, osd_rotation, rapidocr, tesseract
from mmedkit.corpus.ocr.image import TARGET_HEIGHT, Prepared, prepare, to_gray

# Engine per language, chosen by character error rate on the bench pages (benchmarks/bench_ocr.py --mode after
# [--engine X]: 15 degradations a language, 100-300 dpi, skew to 3°, blur, grain, JPEG, lighting, two columns,
# table, footnotes; one page a cell), mean CER tesseract / rapidocr (PP-OCRv4 ch model: zh and en only):
#   zh (15 cells): 3.5% / 1.8%; rapidocr is slower (0.75 / about 0.3 pages/s on one core) but more exact.
#   en (150dpi, scan 150dpi 2°, two columns, table): 0.0% / 16.4% (PP-OCR merges English words, misorders cells).
#   ja (same 4 cells): 1.1% / 60.2% (the ch model lacks most kana). fr, es, ru: Tesseract only.
ENGINE_BY_LANGUAGE: dict[str, str] = {"en": "tesseract", "fr": "tesseract", "es": "tesseract", "ru": "tesseract",
                                      "zh": "rapidocr", "ja": "tesseract"}
ENGINES = ("tesseract", "rapidocr")
RAPIDOCR_LANGUAGES = ("zh", "en")
MIN_CONFIDENCE = 60.0  # mean word confidence (0-100) under which a page's text is not trusted
MIN_INK = 0.0005  # fraction of ink pixels under which a page is blank
MAX_INK = 0.25  # over which it is no text page (a photo, noise): printed text covers 2-15 % of a page
MAX_NOISE = 35.0  # paper noise (gray levels) over which it is no scan of print (bench grain 40: 17; noise: 51)
RETRY_PSMS = (6, 4, 11)


@dataclass
class PageReading:
    """What OCR made of one page: text, engine, confidence, status, and every attempt's settings."""

    text: str
    engine: str
    confidence: float
    status: str  # "ok", "blank", "not text", "low confidence", "empty"
    settings: dict[str, Any] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The per-page entry for document metadata (the same keys on every page, for columnar writers)."""
        return {"engine": self.engine, "confidence": round(self.confidence, 1), "status": self.status,
                "psm": self.settings.get("psm"), "skew": self.settings.get("skew", 0.0),
                "scale": self.settings.get("scale", 1.0), "rotated": self.settings.get("rotated", 0),
                "attempts": len(self.attempts)}


def _read(image: Any, language: str, engine: str, psm: int = 3) -> OcrResult:
    if engine == "rapidocr":
        return rapidocr(image, language)
    return tesseract(image, TESSERACT_LANGS.get(language, "eng"), psm=psm)


def _read_layout(prepared: Prepared, language: str, engine: str) -> OcrResult:
    """The first reading, with the segmentation mode chosen for the page's layout.

    Tesseract: each column of a multi-column page read on its own as one block (psm 6); a page whose table
    rules were removed read as one block (psm 6: rows in order, where psm 3 takes the cells for a picture or
    reads them column by column); otherwise psm 3 (automatic layout analysis). RapidOCR orders its lines itself.
    """
    if engine == "rapidocr":
        return _read(prepared.gray, language, engine)
    if len(prepared.columns) > 1:
        parts = [_read(prepared.gray[:, max(0, x0 - 8):x1 + 8], language, engine, psm=6) for x0, x1 in prepared.columns]
        chars = sum(p.chars for p in parts)
        conf = sum(p.confidence * p.chars for p in parts) / chars if chars else 0.0
        settings = {**parts[0].settings, "psm": 6, "columns": len(parts)}
        return OcrResult("\n\n".join(p.text for p in parts if p.text), conf, engine, settings)
    return _read(prepared.gray, language, engine, psm=6 if prepared.ruled else 3)


def _score(result: OcrResult) -> tuple[bool, float]:
    return result.chars > 0, result.confidence * min(1.0, result.chars / 20)


def read_page(image: Any, language: str, dpi: float | None = None, engine: str | None = None,
              min_confidence: float = MIN_CONFIDENCE) -> PageReading:
    """OCR one page image in ``language`` (a project code), retrying when the first reading is not trusted."""
    engine = engine or ENGINE_BY_LANGUAGE.get(language, "tesseract")
    target = 0 if engine == "rapidocr" else TARGET_HEIGHT  # PP-OCR scales the page itself
    prepared = prepare(image, dpi, target_height=target)
    settings = {"scale": round(prepared.scale, 2), "skew": prepared.skew}
    if prepared.ink < MIN_INK:
        return PageReading("", engine, 0.0, "blank", settings)
    if prepared.ink > MAX_INK or prepared.noise > MAX_NOISE:  # OCR would take minutes and read only noise
        return PageReading("", engine, 0.0, "not text",
                           {**settings, "ink": round(prepared.ink, 3), "noise": round(prepared.noise, 1)})
    results = [_read_layout(prepared, language, engine)]
    page = prepared.gray

    def good(result: OcrResult) -> bool:
        return result.chars > 0 and result.confidence >= min_confidence

    if not good(results[0]):
        rotation, osd_conf = osd_rotation(page)
        if rotation and osd_conf >= 2.0:  # Tesseract's own threshold for a reliable orientation
            page = np.rot90(page, k=rotation // 90).copy()  # OSD's clockwise angle; rot90 turns counter-clockwise
            settings["rotated"] = rotation
            results.append(_read(page, language, engine))
    retries: list[tuple[str, int, Any]] = [("tesseract", psm, page) for psm in RETRY_PSMS]
    other = "tesseract" if engine == "rapidocr" else "rapidocr"
    if language in RAPIDOCR_LANGUAGES:
        retries.append((other, 3, page))
    retries.append((engine, 3, to_gray(image)))  # the page as scanned, in case the pipeline hurt it
    for name, psm, img in retries:
        if good(max(results, key=_score)):
            break
        try:
            results.append(_read(img, language, name, psm))
        except (OcrError, subprocess.TimeoutExpired) as exc:  # a failed retry is recorded, the page goes on
            results.append(OcrResult("", 0.0, name, {"psm": psm, "error": f"{type(exc).__name__}: {exc}"}))
    best = max(results, key=_score)
    status = "ok" if good(best) else "empty" if best.chars == 0 else "low confidence"
    attempts = [{"engine": r.engine, "confidence": round(r.confidence, 1), "chars": r.chars, **r.settings}
                for r in results]
    return PageReading(best.text, best.engine, best.confidence, status, {**settings, **best.settings}, attempts)
