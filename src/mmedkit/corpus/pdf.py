"""A datatrove reader for folders of PDF books: text layer first, OCR for pages without one.

Each PDF is opened with pypdfium2 (Apache-2.0/BSD). A page's text layer is *usable* when it has at
least ``min_chars`` letters/digits making up at least half of its non-space characters. Every other
page is OCR'd (:mod:`mmedkit.corpus.ocr`): a scanned page's embedded image at its native resolution
(the page rendered at ``dpi`` when it is not one image), the image pipeline, the engine measured best
for the book's language, retries when the reading is empty or of low confidence. That language comes
from the input's ``language``, else from the project's language ID (``corpus/lid.py``) on the text
layer, else from a first Tesseract pass over one page with all six languages' models. Pages are then
cleaned by ``pdf_clean.clean_book`` and yielded as one document per book, or per ``pages_per_document``.

Nothing is dropped silently: each OCR'd page's engine, confidence and settings go into the document's
``ocr_pages`` metadata; a page still empty or under ``min_confidence`` after the retries is left out of
the text, counted (``ocr_pages_unreadable``) and written to the malformed writer with its reason, page
and confidence (the corpus report lists them); a book with more than ``flag_fraction`` of its OCR'd
pages unreadable is flagged (``ocr_books_flagged``, metadata ``ocr_flag``). Blank pages are counted.

A PDF that pdfium cannot open (corrupt, truncated, encrypted) is counted as ``malformed_unreadable
file`` and written aside by the malformed writer with the error; the run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.corpus.ocr.engines import TESSERACT_LANGS, OcrError, tesseract_langs, tesseract_text
from mmedkit.corpus.ocr.image import prepare
from mmedkit.corpus.ocr.page import ENGINES, MIN_CONFIDENCE, read_page
from mmedkit.corpus.pdf_clean import clean_book
from mmedkit.corpus.readers import UNREADABLE, _TolerantMixin
from mmedkit.errors import ConfigError

__all__ = ["OcrError", "PdfReader", "TESSERACT_LANGS", "page_image", "tesseract_langs", "usable_text_layer"]
UNREADABLE_PAGE = "unreadable page"
_ALNUM = re.compile(r"[^\W_]")
_NON_SPACE = re.compile(r"\S")


def usable_text_layer(text: str, min_chars: int = 40) -> bool:
    """True when ``text`` has ``min_chars`` letters/digits making up at least half its non-space characters."""
    alnum = len(_ALNUM.findall(text))
    return alnum >= min_chars and alnum >= 0.5 * len(_NON_SPACE.findall(text))


def page_image(pdf: Any, index: int, dpi: int = 300) -> tuple[Any, float, str]:
    """Page ``index`` as a PIL image, its resolution and where it came from.

    A scanned page (one image covering at least 80% of the page) gives that image's own pixels
    (``"embedded"``: no resampling of the grain, the resolution is the image's); any other page is
    rendered at ``dpi`` (``"rendered"``).
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    images = list(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))
    if len(images) == 1:
        left, bottom, right, top = images[0].get_bounds()
        width, height = page.get_size()
        if (right - left) * (top - bottom) >= 0.8 * width * height:
            try:
                image = images[0].get_bitmap(render=False).to_pil()
            except (pdfium.PdfiumError, ValueError, OSError):
                image = None  # a format pdfium cannot hand out raw: render it below
            if image is not None and image.width > 1:
                rotation = page.get_rotation()
                if rotation:
                    image = image.rotate(-rotation, expand=True)
                return image, image.width / max((right - left) / 72, 1e-6), "embedded"
    return page.render(scale=dpi / 72).to_pil(), float(dpi), "rendered"


class PdfReader(_TolerantMixin, BaseDiskReader):
    """Read PDFs (``*.pdf`` in a folder or fsspec path) into cleaned documents; OCR where no text layer.

    Options: ``language`` (a project code; None: detect), ``lid_backend`` for the detection, ``dpi`` for
    rendering, ``min_chars`` for the text-layer check, ``pages_per_document`` (0: one per book),
    ``matter`` (content-based front/back matter removal), ``page_range`` (drop the first/last N pages),
    ``ocr`` (False: never OCR, image pages are then empty), ``engine`` (None: the measured best per language),
    ``min_confidence`` (0-100) and ``flag_fraction`` for unreadable pages.
    """

    name = "📕 PDF (text layer + OCR)"

    def __init__(self, data_folder: Any, malformed_writer: DiskWriter | None = None, *, language: str | None = None,
                 lid_backend: str = "fasttext", dpi: int = 300, min_chars: int = 40, pages_per_document: int = 0,
                 matter: bool = True, page_range: tuple[int, int] | None = None, ocr: bool = True,
                 engine: str | None = None, min_confidence: float = MIN_CONFIDENCE, flag_fraction: float = 0.1,
                 glob_pattern: str | None = "*.pdf", **kwargs: Any) -> None:
        super().__init__(data_folder, malformed_writer=malformed_writer, glob_pattern=glob_pattern, **kwargs)
        self.language = language
        self.lid_backend = lid_backend
        self.dpi = dpi
        self.min_chars = min_chars
        self.pages_per_document = pages_per_document
        self.matter = matter
        self.page_range = tuple(page_range) if page_range else None
        self.ocr = ocr
        if engine not in (None, *ENGINES):
            raise ConfigError(f"pdf reader option engine: {engine!r} is not one of {list(ENGINES)} (or null: the "
                              "measured best per language)")
        self.engine = engine
        self.min_confidence = min_confidence
        self.flag_fraction = flag_fraction

    def _detect(self, texts: list[str], pdf: Any, image_pages: list[int]) -> str | None:
        from mmedkit.corpus.lid import load_backend

        sample = "\n".join(texts)[:2000]
        if len(_ALNUM.findall(sample)) < self.min_chars and self.ocr and image_pages:
            installed = tesseract_langs()
            packs = "+".join(t for t in TESSERACT_LANGS.values() if t in installed) or "eng"
            image, dpi, _ = page_image(pdf, image_pages[0], self.dpi)
            sample = tesseract_text(prepare(image, dpi).gray, packs)[:2000]
            self.stat_update("ocr_language_probe_pages")
        if not sample.strip():
            return None
        code, _ = load_backend(self.lid_backend)(sample.replace("\n", " "))
        return code if code in TESSERACT_LANGS else None

    def _ocr_pages(self, pdf: Any, filepath: str, pages: list[int], language: str | None,
                   texts: list[str]) -> tuple[dict[int, dict], str | None]:
        """OCR ``pages`` into ``texts``; return each page's record and the book's flag (None when not flagged)."""
        records: dict[int, dict] = {}
        unreadable = []
        for i in pages:
            image, dpi, origin = page_image(pdf, i, self.dpi)
            reading = read_page(image, language or "en", dpi, self.engine, self.min_confidence)
            records[i] = {"page": i + 1, "image": origin, "dpi": round(dpi), **reading.record()}
            self.stat_update(f"ocr_engine_{reading.engine}")
            if len(reading.attempts) > 1:
                self.stat_update("ocr_pages_retried")
            if reading.status == "blank":
                self.stat_update("ocr_pages_blank")
            if reading.status in ("ok", "blank"):
                texts[i] = reading.text
                continue
            texts[i] = ""
            unreadable.append((i, reading))
        self.stat_update("ocr_pages_unreadable", value=len(unreadable))
        flag = None
        if unreadable and len(unreadable) > self.flag_fraction * len(pages):
            flag = f"{len(unreadable)} of {len(pages)} OCR pages unreadable"
            self.stat_update("ocr_books_flagged")
        for i, reading in unreadable:
            self._write_unreadable(filepath, i, reading, len(pages), flag)
        return records, flag

    def _write_unreadable(self, filepath: str, index: int, reading: Any, ocr_pages: int, flag: str | None) -> None:
        """Hand a page whose OCR is not trusted to the malformed writer, with its reason and what was read."""
        if self.malformed_writer is None:
            return
        reason = {"empty": "no text recognised",
                  "not text": f"no text-like content (ink on {reading.settings.get('ink', 0):.0%} of the page, "
                              f"noise {reading.settings.get('noise', 0):.0f} gray levels)"}.get(
            reading.status, f"confidence {reading.confidence:.0f} under {self.min_confidence:.0f}")
        meta = {"malformed_reason": UNREADABLE_PAGE, "malformed_file": self.data_folder.resolve_paths(filepath),
                "malformed_line": index + 1, "page": index + 1, "ocr_status": reading.status, "reason": reason,
                "confidence": round(reading.confidence, 1), "engine": reading.engine, "attempts": reading.attempts,
                "book_ocr_pages": ocr_pages, "book_flag": flag}
        self.malformed_writer.write(Document(text=reading.text, id=f"{filepath}#page={index + 1}", metadata=meta),
                                    rank=self._rank)

    def read_file(self, filepath: str) -> Iterator[Document]:
        import pypdfium2 as pdfium

        try:
            with self.data_folder.open(filepath, "rb") as fh:
                data = fh.read()
            pdf = pdfium.PdfDocument(data)
        except (OSError, pdfium.PdfiumError) as exc:
            self._set_aside("", filepath, None, UNREADABLE, error=f"{type(exc).__name__}: {exc}")
            return
        try:
            yield from self._read_pdf(pdf, filepath)
        finally:
            pdf.close()

    def _read_pdf(self, pdf: Any, filepath: str) -> Iterator[Document]:
        with self.track_time():
            texts = []
            for i in range(len(pdf)):
                page = pdf[i]
                texts.append(page.get_textpage().get_text_bounded())
            image_pages = [i for i, t in enumerate(texts) if not usable_text_layer(t, self.min_chars)]
            language = self.language or self._detect([t for i, t in enumerate(texts) if i not in image_pages], pdf,
                                                     image_pages)
            records: dict[int, dict] = {}
            flag = None
            if self.ocr and image_pages:
                records, flag = self._ocr_pages(pdf, filepath, image_pages, language, texts)
            self.stat_update("pages_text_layer", value=len(texts) - len(image_pages))
            self.stat_update("pages_ocr" if self.ocr else "pages_without_text", value=len(image_pages))
        step = self.pages_per_document or len(texts) or 1
        for start in range(0, len(texts), step):
            counts: dict[str, int] = {}
            chunk = texts[start:start + step]
            text = clean_book(chunk, counts, matter=self.matter, page_range=self.page_range if step == len(texts)
                              else None)
            for key, value in counts.items():
                self.stat_update(key, value=value)
            if not text.strip():
                self.stat_update("empty_documents")
                continue
            ocr_here = [i for i in image_pages if start <= i < start + step]
            source = "ocr" if len(ocr_here) == len(chunk) else "text-layer" if not ocr_here else "mixed"
            meta = {"file": self.data_folder.resolve_paths(filepath), "pages": f"{start + 1}-{start + len(chunk)}",
                    "page_count": len(chunk), "text_source": source, "ocr_pages": len(ocr_here)}
            if language:
                meta["language"] = language
            if ocr_here and self.ocr:
                meta["ocr_pages_detail"] = [records[i] for i in ocr_here]
                meta["ocr_engine"] = ",".join(sorted({records[i]["engine"] for i in ocr_here}))
            if flag:
                meta["ocr_flag"] = flag
            doc_id = filepath if step == len(texts) else f"{filepath}#pages={start + 1}-{start + len(chunk)}"
            yield self.get_document_from_dict({"text": text, "id": doc_id, "metadata": meta}, filepath, start)
