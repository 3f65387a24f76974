"""OCR quality: known text in six languages rendered into image-only PDF pages, read back, CER checked.

Needs ``tesseract`` with the eng, chi_sim, jpn, fra, rus and spa packs and the Debian fonts DejaVu Sans
and Noto Sans CJK (``tests/ocr_setup.sh`` installs them); skipped with the reason when they are absent.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("pypdfium2")

from mmedkit.corpus.pdf import FONT_FILES, TESSERACT_LANGS, PdfReader, tesseract_langs  # noqa: E402

_missing_packs = set(TESSERACT_LANGS.values()) - tesseract_langs()
_missing_fonts = [path for path, _ in FONT_FILES.values() if not Path(path).exists()]
pytestmark = [
    pytest.mark.skipif(bool(_missing_packs), reason=f"tesseract or its language packs missing: {sorted(_missing_packs)}"
                       " (run tests/ocr_setup.sh)"),
    pytest.mark.skipif(bool(_missing_fonts), reason=f"fonts missing: {_missing_fonts} (run tests/ocr_setup.sh)"),
]

_spec = importlib.util.spec_from_file_location("bench_ocr", Path(__file__).parents[2] / "benchmarks" / "bench_ocr.py")
bench_ocr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ocr)

GOAL = {"en": 0.03, "fr": 0.03, "es": 0.03, "ru": 0.03, "zh": 0.08, "ja": 0.08}


@pytest.mark.parametrize("language", list(GOAL))
def test_ocr_cer_per_language(language: str, tmp_path: Path) -> None:
    row = bench_ocr.measure(language, tmp_path, dpi=300)
    assert row["text_source"] == "ocr"  # the page really had no text layer
    assert row["cer"] <= GOAL[language], f"{language}: CER {row['cer']:.2%} above {GOAL[language]:.0%}"


def test_language_detected_by_first_ocr_pass(tmp_path: Path) -> None:
    row = bench_ocr.measure("ru", tmp_path, dpi=300, detect=True)
    assert row["detected"] == "ru" and row["cer"] <= GOAL["ru"]


def test_mixed_book_ocrs_only_image_pages(tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    from reportlab.pdfgen import canvas

    text_pdf, image_pdf = tmp_path / "t.pdf", tmp_path / "i.pdf"
    c = canvas.Canvas(str(text_pdf))
    c.drawString(72, 760, "Sepsis is a life-threatening organ dysfunction caused by a dysregulated host response.")
    c.save()
    from mmedkit.corpus.pdf import write_image_pdf

    write_image_pdf(str(image_pdf), bench_ocr.SAMPLES["en"][:1], "en")
    merged = pdfium.PdfDocument.new()
    for part in (text_pdf, image_pdf):
        src = pdfium.PdfDocument(str(part))
        merged.import_pages(src)
    (tmp_path / "books").mkdir()
    merged.save(str(tmp_path / "books" / "mixed.pdf"))
    reader = PdfReader(str(tmp_path / "books"), language="en", matter=False)
    docs = list(reader.run())
    assert docs[0].metadata["text_source"] == "mixed" and docs[0].metadata["ocr_pages"] == 1
    assert reader.stats.stats["pages_ocr"].total == 1 and reader.stats.stats["pages_text_layer"].total == 1
    assert "dysregulated host response" in docs[0].text and "Hypertension is a common chronic" in docs[0].text
