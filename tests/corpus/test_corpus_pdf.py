"""PDF reader and cleaning rules on text-layer PDFs generated here with reportlab."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pypdfium2")
reportlab = pytest.importorskip("reportlab")

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from mmedkit.corpus.pdf import PdfReader, usable_text_layer  # noqa: E402
from mmedkit.corpus.pdf_clean import clean_book, is_debris, is_matter_page, rebuild_paragraphs  # noqa: E402

HEADER = "Handbook of Internal Medicine"
CONTENTS = ["Contents", "1 Hypertension .......... 2", "2 Diabetes mellitus .......... 3",
            "3 Asthma .......... 4", "4 Pneumonia .......... 5", "Index .......... 6"]
BODY = {
    2: ["1 Hypertension",
        "Hypertension is a chronic condition in which the pressure in the arteries",
        "stays elevated. It is a major risk factor for stroke and heart failure, and",
        "its early detection relies on repeated measurements in the consulting",
        "room and at home.",
        "Treatment starts with lifestyle changes; drug therapy follows when the",
        "target pressure is not reached within three months of careful monitor-",
        "ing by the general practitioner."],
    3: ["2 Diabetes mellitus",
        "Diabetes mellitus is a group of metabolic disorders with chronically raised",
        "blood glucose. Typical symptoms are thirst, frequent urination and weight",
        "loss.",
        "Figure 2.1",
        "0 50 100 150 200",
        "Metformin remains the first choice in most adults with type 2 diabetes."],
    4: ["3 Asthma",
        "Asthma is a chronic inflammatory disease of the airways with episodes of",
        "wheezing, cough and breathlessness that vary over time and in intensity.",
        "Inhaled corticosteroids control the inflammation in most patients."],
    5: ["4 Pneumonia",
        "Pneumonia is an infection of the lung tissue, most often caused by bacteria",
        "or viruses. A chest radiograph confirms the diagnosis in most cases.",
        "Community-acquired pneumonia in healthy adults is treated with oral",
        "antibiotics."],
}
INDEX = ["Index", "asthma, 4", "diabetes, 3", "hypertension, 2", "metformin, 3", "pneumonia, 5"]


def write_book(path: Path) -> None:
    """Six pages: contents, four chapters with a running header and page numbers, an index."""
    c = canvas.Canvas(str(path), pagesize=A4)
    pages = [CONTENTS, *BODY.values(), INDEX]
    for number, lines in enumerate(pages, 1):
        c.setFont("Helvetica", 11)
        if 1 < number < len(pages):
            c.drawString(72, 800, HEADER)
            c.drawString(290, 40, str(number))
        y = 760
        for line in lines:
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()


@pytest.fixture()
def book_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    write_book(folder / "handbook.pdf")
    return folder


def _read(folder: Path, **kwargs: object) -> tuple[list, dict]:
    reader = PdfReader(str(folder), **kwargs)
    docs = list(reader.run())
    stats = {k: v.total for k, v in reader.stats.stats.items()}
    return docs, stats


def test_text_layer_book_is_cleaned(book_dir: Path) -> None:
    docs, stats = _read(book_dir, language="en")
    assert len(docs) == 1
    doc = docs[0]
    text = doc.text
    assert doc.metadata["text_source"] == "text-layer"
    assert doc.metadata["pages"] == "1-6" and doc.metadata["language"] == "en"
    assert stats["pages_text_layer"] == 6 and stats.get("pages_ocr", 0) == 0
    # contents and index pages dropped, the body kept
    assert "Contents" not in text and ".........." not in text and "metformin, 3" not in text
    assert stats["front_back_matter_pages"] == 2
    assert "Hypertension is a chronic condition" in text and "Inhaled corticosteroids control" in text
    # running header and page numbers removed
    assert HEADER not in text and stats["running_header_lines"] == 4
    assert stats["page_number_lines"] == 4
    assert not any(line.strip().isdigit() for line in text.splitlines())
    # figure debris removed, surrounding text kept
    assert "Figure 2.1" not in text and "0 50 100" not in text and stats["figure_table_lines"] == 2
    assert "Metformin remains the first choice" in text
    # hyphenated break joined (pdfium marks it with U+0002); a real hyphen ("Community-acquired") kept
    assert "careful monitoring by the general practitioner." in text and "\x02" not in text
    assert stats["hyphen_joins"] == 1
    assert "Community-acquired pneumonia" in text
    # paragraphs rebuilt: lines of a paragraph joined, paragraphs separated
    paragraphs = text.split("\n\n")
    assert ("Hypertension is a chronic condition in which the pressure in the arteries stays elevated. It is a "
            "major risk factor") in text
    assert any(p.startswith("Treatment starts with lifestyle changes") for p in paragraphs)
    assert paragraphs[0] == "1 Hypertension" and "3 Asthma" in paragraphs and "4 Pneumonia" in paragraphs  # headings
    assert paragraphs[-1] == ("Pneumonia is an infection of the lung tissue, most often caused by bacteria or viruses. "
                              "A chest radiograph confirms the diagnosis in most cases. Community-acquired pneumonia "
                              "in healthy adults is treated with oral antibiotics.")
    assert stats["paragraphs"] == len(paragraphs)


def test_hyphen_join_counts() -> None:
    counts: dict[str, int] = {}
    out = rebuild_paragraphs(["the patient needs long-term treat-", "ment with insulin."], counts)
    assert out == ["the patient needs long-term treatment with insulin."]
    assert counts["hyphen_joins"] == 1
    kept = rebuild_paragraphs(["blood pressure in COVID-", "19 patients"], {})
    assert kept == ["blood pressure in COVID- 19 patients"]  # not a word break: next line starts with a digit


def test_cjk_lines_join_without_spaces() -> None:
    counts: dict[str, int] = {}
    lines = ["高血压是一种常见的慢性疾病，指动脉", "血压持续升高。", "", "治疗首先包括改变生活方式。"]
    out = rebuild_paragraphs(lines, counts)
    assert out == ["高血压是一种常见的慢性疾病，指动脉血压持续升高。", "治疗首先包括改变生活方式。"]


def test_matter_and_debris_detection() -> None:
    assert is_matter_page(["Содержание", "Глава 1 ...... 5"])
    assert is_matter_page(["目录", "第一章 高血压 1"])
    assert is_matter_page([f"Chapter {i} Cardiology topic {i} ... {i * 10}" for i in range(1, 8)])
    assert not is_matter_page(BODY[2])
    assert is_debris("12.5 13.0 14.2") and is_debris("Fig. 3") and is_debris("表 2")
    assert not is_debris("Metformin remains the first choice.")


def test_page_range_cut_and_content_rule_off(book_dir: Path) -> None:
    docs, stats = _read(book_dir, language="en", matter=False, page_range=(2, 1))
    text = docs[0].text
    assert "Contents" not in text and "Hypertension is a chronic" not in text  # first two pages cut
    assert "Diabetes mellitus is a group" in text and "Index" not in text
    assert stats["front_back_matter_pages"] == 3
    docs, stats = _read(book_dir, language="en", matter=False)
    assert "Contents" in docs[0].text and "front_back_matter_pages" not in stats


def test_one_document_per_page_range(book_dir: Path) -> None:
    docs, _ = _read(book_dir, language="en", pages_per_document=2)
    assert [d.metadata["pages"] for d in docs] == ["1-2", "3-4", "5-6"]
    assert docs[0].id.endswith("handbook.pdf#pages=1-2")
    assert "Hypertension is a chronic" in docs[0].text and "Asthma is a chronic" in docs[1].text


def test_corrupt_and_encrypted_pdfs_are_skipped(book_dir: Path, tmp_path: Path) -> None:
    (book_dir / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a pdf")
    from reportlab.lib.pdfencrypt import StandardEncryption

    c = canvas.Canvas(str(book_dir / "locked.pdf"), encrypt=StandardEncryption("secret"))
    c.drawString(72, 760, "Confidential chapter on oncology that nobody may read without the password.")
    c.save()
    from datatrove.pipeline.writers import JsonlWriter

    aside = tmp_path / "malformed"
    reader = PdfReader(str(book_dir), language="en", malformed_writer=JsonlWriter(str(aside), compression=None))
    docs = list(reader.run())
    assert [Path(d.metadata["file"]).name for d in docs] == ["handbook.pdf"]
    assert reader.stats.stats["malformed_unreadable file"].total == 2
    written = "".join(p.read_text() for p in aside.glob("*.jsonl"))
    assert "broken.pdf" in written and "locked.pdf" in written and "PdfiumError" in written


def test_usable_text_layer() -> None:
    assert usable_text_layer("Hypertension is a chronic condition of the arteries.")
    assert not usable_text_layer("  12  ")
    assert not usable_text_layer("~~~~ //// ---- .... " * 5 + "ab")


def test_clean_book_counts_every_rule() -> None:
    counts: dict[str, int] = {}
    bodies = ["Anaemia lowers oxygen delivery.", "Iron deficiency is its commonest cause.",
              "Ferritin confirms low iron stores.", "Oral iron is the usual first treatment."]
    pages = ["Contents\nIntro .... 1", *[f"Running Title\n{body}\n{i}" for i, body in enumerate(bodies, 2)]]
    text = clean_book(pages, counts)
    assert "Running Title" not in text and "Ferritin confirms low iron stores." in text
    assert counts["front_back_matter_pages"] == 1 and counts["running_header_lines"] == 4
    assert counts["page_number_lines"] == 4


def test_corpus_build_on_pdf_folder_and_jsonl(book_dir: Path, tmp_path: Path) -> None:
    import gzip
    import json

    from mmedkit.corpus.config import ConfigError, parse_config
    from mmedkit.corpus.pipeline import run_pipeline

    (book_dir / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    rows = [{"id": f"web-{i}", "text": f"Patient {i} was admitted with chest pain radiating to the left arm; the "
             "electrocardiogram showed ST elevation and troponin was raised, so primary angioplasty was done."}
            for i in range(3)]
    (tmp_path / "web.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    data = {"name": "mixed", "languages": ["en"], "steps": {"language_id": {}},
            "inputs": [{"path": str(book_dir), "source": "textbooks", "format": "pdf",
                        "options": {"pages_per_document": 3}},
                       {"path": str(tmp_path / "web.jsonl"), "source": "web"}],
            "output": {"path": str(out)}, "executor": {"tasks": 1, "workers": 1}}
    cfg = parse_config(data, source="mixed")
    assert [i.format for i in cfg.inputs] == ["pdf", "jsonl"]
    report = run_pipeline(cfg)
    sources = {s["source"]: s["documents"] for s in report["sources"]}
    assert sources == {"textbooks": 2, "web": 3}
    malformed = "".join(gzip.open(p, "rt").read() for p in (out / "malformed" / "textbooks").glob("*.jsonl.gz"))
    assert "broken.pdf" in malformed
    with pytest.raises(ConfigError, match=r"inputs\[0\]\.options: unknown option\(s\) \['dpii'\]"):
        bad = [{"path": str(book_dir), "format": "pdf", "options": {"dpii": 3}}]
        parse_config({**data, "inputs": bad}, source="mixed")
