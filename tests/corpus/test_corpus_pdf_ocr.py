"""PdfReader's OCR end to end: known text in six languages on image-only PDF pages, read back, CER checked;
scanned pages (150 dpi, skew, blur, grain) read from their embedded image; unreadable pages reported, not dropped.

Needs ``tesseract`` with the eng, chi_sim, jpn, fra, rus and spa packs and the Debian fonts DejaVu Sans
and Noto Sans CJK (``tests/ocr_setup.sh`` installs them), OpenCV and rapidocr-onnxruntime (corpus extra);
skipped with the reason when they are absent.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("pypdfium2")
pytest.importorskip("cv2", reason="opencv-python-headless (corpus extra) missing")

from mmedkit.corpus.ocr.engines import TESSERACT_LANGS, tesseract_langs  # noqa: E402
from mmedkit.corpus.ocr.synth import FONT_FILES, Degradation, degrade, render_page, write_scan_pdf  # noqa: E402
from mmedkit.corpus.pdf import PdfReader  # noqa: E402

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

GOAL = bench_ocr.GOALS
SCAN = Degradation("scan", dpi=150, skew=1.2, blur=0.7, grain=25)  # the page: legible, but a scan


@pytest.mark.slow
@pytest.mark.parametrize("language", list(GOAL))
def test_ocr_cer_per_language(language: str, tmp_path: Path) -> None:
    row = bench_ocr.measure(language, tmp_path, dpi=300)
    assert row["text_source"] == "ocr"  # the page really had no text layer
    assert row["cer"] <= GOAL[language], f"{language}: CER {row['cer']:.2%} above {GOAL[language]:.0%}"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_degraded_scan_reads_under_goal(language: str, tmp_path: Path) -> None:
    """150 dpi, 1.2° skew, blur and grain: the embedded image is read at its own resolution, under the CER goal."""
    row = bench_ocr.measure_cell(language, SCAN, tmp_path, mode="after", seed=3)
    assert row["status"] == "ok" and row["confidence"] >= 60
    assert row["cer"] <= GOAL[language], f"{language}: CER {row['cer']:.2%} above {GOAL[language]:.0%}"


@pytest.mark.slow
@pytest.mark.parametrize("language", ["zh", "ja"])
def test_degraded_scan_reads_under_goal_cjk(language: str, tmp_path: Path) -> None:
    row = bench_ocr.measure_cell(language, SCAN, tmp_path, mode="after", seed=3)
    assert row["cer"] <= GOAL[language], f"{language}: CER {row['cer']:.2%} above {GOAL[language]:.0%}"


def test_scan_metadata_records_engine_and_confidence(tmp_path: Path) -> None:
    page, _ = render_page(bench_ocr.SAMPLES["fr"], "fr", "two_columns")
    (tmp_path / "books").mkdir()
    write_scan_pdf(str(tmp_path / "books" / "scan.pdf"), [degrade(page, SCAN, seed=1)], SCAN.dpi)
    docs = list(PdfReader(str(tmp_path / "books"), language="fr", matter=False).run())
    detail = docs[0].metadata["ocr_pages_detail"]
    assert len(detail) == 1 and detail[0]["page"] == 1
    assert detail[0]["image"] == "embedded" and detail[0]["dpi"] == 150  # the scan's own pixels, not a re-render
    assert detail[0]["engine"] == "tesseract" and detail[0]["confidence"] >= 60 and detail[0]["status"] == "ok"
    assert abs(detail[0]["skew"] + 1.2) < 0.2  # deskewed by the measured angle
    assert "diabète de type 2" in docs[0].text and "metformine" in docs[0].text


def test_unreadable_page_is_reported_not_dropped(tmp_path: Path) -> None:
    """A page of noise in a book: the book keeps its readable page, the noise page is counted and set aside."""
    import numpy as np
    from datatrove.pipeline.writers import JsonlWriter
    from PIL import Image

    good, _ = render_page(bench_ocr.SAMPLES["en"], "en")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1754, 1240), dtype=np.uint8), "L")
    (tmp_path / "books").mkdir()
    write_scan_pdf(str(tmp_path / "books" / "book.pdf"), [degrade(good, SCAN, seed=2), noise], 150)
    writer = JsonlWriter(str(tmp_path / "malformed"), output_filename="${rank}.jsonl", compression=None)
    reader = PdfReader(str(tmp_path / "books"), writer, language="en", matter=False)
    docs = list(reader.run())
    assert len(docs) == 1 and "Hypertension is a common chronic" in docs[0].text
    pages = {d["page"]: d for d in docs[0].metadata["ocr_pages_detail"]}
    assert pages[1]["status"] == "ok" and pages[2]["status"] == "not text"
    assert reader.stats.stats["ocr_pages_unreadable"].total == 1
    assert reader.stats.stats["ocr_books_flagged"].total == 1  # one of two pages: more than 10 %
    assert "1 of 2 OCR pages unreadable" == docs[0].metadata["ocr_flag"]
    records = [json.loads(line) for line in (tmp_path / "malformed" / "00000.jsonl").read_text().splitlines()]
    assert len(records) == 1
    meta = records[0]["metadata"]
    assert meta["malformed_reason"] == "unreadable page" and meta["page"] == 2
    assert meta["malformed_file"].endswith("book.pdf") and meta["reason"].startswith("no text-like content")
    # the corpus report lists it (book, page, confidence, reason) and flags the book
    from mmedkit.corpus.stats import _ocr_section, _render_ocr

    read_stats = {k: v.total for k, v in reader.stats.stats.items() if k.startswith(("ocr_", "pages_ocr"))}
    section = _ocr_section(str(tmp_path), [{"step": "read books", "ocr": read_stats}])
    assert section["pages_ocr"] == 2 and section["ocr_pages_unreadable"] == 1 and section["ocr_books_flagged"] == 1
    assert [(p["page"], p["reason"]) for p in section["unreadable"]] == [(2, meta["reason"])]
    markdown = "\n".join(_render_ocr(section))
    assert "book.pdf: 1 of 2 OCR pages unreadable" in markdown and f"| 2 | {meta['confidence']} |" in markdown


@pytest.mark.slow
def test_language_detected_by_first_ocr_pass(tmp_path: Path) -> None:
    row = bench_ocr.measure("ru", tmp_path, dpi=300, detect=True)
    assert row["detected"] == "ru" and row["cer"] <= GOAL["ru"]


def test_mixed_book_ocrs_only_image_pages(tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    from reportlab.pdfgen import canvas

    from mmedkit.corpus.ocr.synth import write_image_pdf

    text_pdf, image_pdf = tmp_path / "t.pdf", tmp_path / "i.pdf"
    c = canvas.Canvas(str(text_pdf))
    c.drawString(72, 760, "Sepsis is a life-threatening organ dysfunction caused by a dysregulated host response.")
    c.save()
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


def test_unknown_engine_is_a_config_error(tmp_path: Path) -> None:
    from mmedkit.errors import ConfigError

    with pytest.raises(ConfigError, match="engine: 'paddle' is not one of"):
        PdfReader(str(tmp_path), engine="paddle")
