"""A datatrove reader for folders of PDF books: text layer first, Tesseract OCR for pages without one.

Each PDF is opened with pypdfium2 (Apache-2.0/BSD). A page's text layer is *usable* when it has at
least ``min_chars`` letters/digits making up at least half of its non-space characters; every other
page is rendered at ``dpi`` and read by Tesseract 5 (the ``tesseract`` program, Debian package
``tesseract-ocr`` plus ``tesseract-ocr-<lang>``) in the book's language. That language comes from the
input's ``language``, else from the project's language ID (``corpus/lid.py``) on the text layer, else
from a first OCR pass over one page with all six languages' models. Pages are then cleaned by
``pdf_clean.clean_book`` and yielded as one document per book, or per ``pages_per_document`` pages.

A PDF that pdfium cannot open (corrupt, truncated, encrypted) is counted as ``malformed_unreadable
file`` and written aside by the malformed writer with the error; the run goes on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.corpus.pdf_clean import clean_book
from mmedkit.corpus.readers import UNREADABLE, _TolerantMixin
from mmedkit.text import CJK, FULLWIDTH

TESSERACT_LANGS = {"en": "eng", "zh": "chi_sim", "ja": "jpn", "fr": "fra", "ru": "rus", "es": "spa"}
_ALNUM = re.compile(r"[^\W_]")
_NON_SPACE = re.compile(r"\S")
_CJK_SPACE = re.compile(f"(?<=[{CJK}{FULLWIDTH}]) (?=[{CJK}{FULLWIDTH}])")


class OcrError(RuntimeError):
    """Tesseract is missing, lacks a language pack, or failed on a page."""


def usable_text_layer(text: str, min_chars: int = 40) -> bool:
    """True when ``text`` has ``min_chars`` letters/digits making up at least half its non-space characters."""
    alnum = len(_ALNUM.findall(text))
    return alnum >= min_chars and alnum >= 0.5 * len(_NON_SPACE.findall(text))


def tesseract_langs() -> set[str]:
    """The language packs the installed ``tesseract`` knows (empty when it is not installed)."""
    exe = shutil.which("tesseract")
    if exe is None:
        return set()
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, check=False).stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def ocr_image(image: Any, languages: str, psm: int = 3, timeout: float = 300) -> str:
    """OCR a PIL image with Tesseract (``languages`` like ``"eng"`` or ``"chi_sim+jpn"``); lines kept."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise OcrError("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-<lang>)")
    buf = BytesIO()
    image.save(buf, format="PNG")
    proc = subprocess.run([exe, "stdin", "stdout", "-l", languages, "--psm", str(psm)], input=buf.getvalue(),
                          capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise OcrError(f"tesseract -l {languages} failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    text = proc.stdout.decode("utf-8", "replace")
    if "chi_sim" in languages or "jpn" in languages:
        text = _CJK_SPACE.sub("", text)  # Tesseract separates CJK characters with spaces
    return text


class PdfReader(_TolerantMixin, BaseDiskReader):
    """Read PDFs (``*.pdf`` in a folder or fsspec path) into cleaned documents; OCR where no text layer.

    Options: ``language`` (a project code; None: detect), ``lid_backend`` for the detection, ``dpi`` for
    rendering, ``min_chars`` for the text-layer check, ``pages_per_document`` (0: one per book),
    ``matter`` (content-based front/back matter removal), ``page_range`` (drop the first/last N pages),
    ``ocr`` (False: never OCR, image pages are then empty).
    """

    name = "📕 PDF (text layer + OCR)"

    def __init__(self, data_folder: Any, malformed_writer: DiskWriter | None = None, *, language: str | None = None,
                 lid_backend: str = "fasttext", dpi: int = 300, min_chars: int = 40, pages_per_document: int = 0,
                 matter: bool = True, page_range: tuple[int, int] | None = None, ocr: bool = True,
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

    def _detect(self, texts: list[str], pdf: Any, image_pages: list[int]) -> str | None:
        from mmedkit.corpus.lid import load_backend

        sample = "\n".join(texts)[:2000]
        if len(_ALNUM.findall(sample)) < self.min_chars and self.ocr and image_pages:
            installed = tesseract_langs()
            packs = "+".join(t for t in TESSERACT_LANGS.values() if t in installed) or "eng"
            sample = ocr_image(self._render(pdf, image_pages[0]), packs)[:2000]
            self.stat_update("ocr_language_probe_pages")
        if not sample.strip():
            return None
        code, _ = load_backend(self.lid_backend)(sample.replace("\n", " "))
        return code if code in TESSERACT_LANGS else None

    def _render(self, pdf: Any, index: int) -> Any:
        return pdf[index].render(scale=self.dpi / 72).to_pil()

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
            if self.ocr and image_pages:
                lang = TESSERACT_LANGS.get(language or "en", "eng")
                for i in image_pages:
                    texts[i] = ocr_image(self._render(pdf, i), lang)
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
            doc_id = filepath if step == len(texts) else f"{filepath}#pages={start + 1}-{start + len(chunk)}"
            yield self.get_document_from_dict({"text": text, "id": doc_id, "metadata": meta}, filepath, start)


# --- OCR quality measurement (used by tests/corpus/test_corpus_pdf_ocr.py and benchmarks/bench_ocr.py) -----

FONT_FILES = {"latin": ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", None),
              "zh": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
              "ja": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK JP")}


def load_font(language: str, size: int) -> Any:
    """The Debian font for ``language`` (DejaVu Sans; Noto Sans CJK SC/JP for zh/ja) at ``size`` pixels."""
    from PIL import ImageFont

    path, family = FONT_FILES.get(language, FONT_FILES["latin"])
    for index in range(10):
        font = ImageFont.truetype(path, size, index=index)
        if family is None or font.getname()[0] == family:
            return font
    raise OSError(f"{path} holds no face named {family!r}")


def write_image_pdf(path: str, paragraphs: list[str], language: str, dpi: int = 300, font_pt: float = 12) -> int:
    """Render ``paragraphs`` onto A4 images at ``dpi`` and save them as an image-only PDF; return the page count."""
    from PIL import Image, ImageDraw

    width, height, margin = int(8.27 * dpi), int(11.69 * dpi), dpi
    font = load_font(language, round(font_pt * dpi / 72))
    line_h = round(font_pt * dpi / 72 * 1.5)
    cjk = language in ("zh", "ja")
    lines: list[str] = []
    for para in paragraphs:
        units = list(para) if cjk else para.split()
        current = ""
        for unit in units:
            trial = current + unit if cjk or not current else f"{current} {unit}"
            if current and font.getlength(trial) > width - 2 * margin:
                lines.append(current)
                current = unit
            else:
                current = trial
        lines += [current, ""]
    per_page = (height - 2 * margin) // line_h
    images = []
    for start in range(0, len(lines), per_page):
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for k, line in enumerate(lines[start:start + per_page]):
            draw.text((margin, margin + k * line_h), line, font=font, fill=0)
        images.append(image)
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return len(images)


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
