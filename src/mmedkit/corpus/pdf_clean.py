"""Heuristic cleaning of a book's page texts: each rule is a small function and every removal is counted.

``clean_book(pages, language, counts)`` takes one string per page (lines separated by newlines, as a
PDF text layer or Tesseract gives them) and returns the body text. Rules, in order, with the counter
each one increments:

- ``front_back_matter_pages``: contents, index and bibliography pages, found by their heading or, for a
  contents page, by most lines ending in a page number; only in the first/last ``matter_fraction`` of
  the book. ``page_range`` (the study's cut: drop the first and last N pages) is an option.
- ``running_header_lines``: a line among the first/last two of a page that recurs, digits ignored, on
  at least ``header_min_share`` of the pages.
- ``page_number_lines``: a first/last line that is only a page number (``12``, ``- 12 -``, ``xii``,
  ``Page 12``, ``第12页``).
- ``figure_table_lines``: short lines with few letters (axis ticks, table cells of numbers) and short
  figure/table captions such as ``Figure 3.2``.
- ``hyphen_joins``: ``treat-`` / ``ment`` becomes ``treatment``; pdfium already joins such lines in its
  text layer and marks the break with U+0002, which is removed and counted the same way.
- ``paragraphs``: lines joined into paragraphs (without spaces between CJK characters); a paragraph
  ends at a blank line or a short line ending a sentence; a short line without closing punctuation
  followed by a capitalised line is a heading and stands alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import MutableMapping

from mmedkit.text import CJK, FULLWIDTH, script_re

MATTER_HEADINGS = re.compile(
    r"^\s*(table of contents|contents|index|bibliography|references|further reading|"
    r"目\s*录|目\s*次|参考文献|索\s*引|"
    r"sommaire|table des mati[èe]res|index alphab[ée]tique|bibliographie|"
    r"содержание|оглавление|литература|предметный указатель|библиография|список литературы|"
    r"[íi]ndice|[íi]ndice alfab[ée]tico|bibliograf[íi]a|referencias)\s*$",
    re.IGNORECASE,
)
_ENDS_WITH_PAGE = re.compile(r"(\.{2,}|…|\s)\s*\d{1,4}\s*$")
_PAGE_NUMBER = re.compile(
    r"^\s*(?:[-–—]\s*)?(?:page\s+|p\.\s*|стр\.\s*|第\s*)?(\d{1,4}|[ivxlcdm]{1,7})(?:\s*页)?(?:\s*[-–—])?\s*$",
    re.IGNORECASE,
)
_CAPTION = re.compile(r"^\s*(fig(?:ure)?\.?|table|tableau|tabla|figura|рис(?:унок)?\.?|таблица|图|表|図)\s*[\dIVX]",
                      re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_CJK = script_re(CJK, FULLWIDTH)
_SENTENCE_END = re.compile(r"[.!?:;。！？；」』)\"»]\s*$")
_DIGITS = re.compile(r"\d+")
_PDFIUM_HYPHEN = "\x02"  # pdfium's mark where it joined a word hyphenated across lines


def _bump(counts: MutableMapping[str, int], key: str, n: int = 1) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


def _lines(page: str, counts: MutableMapping[str, int]) -> list[str]:
    _bump(counts, "hyphen_joins", page.count(_PDFIUM_HYPHEN))
    page = page.replace(_PDFIUM_HYPHEN, "")
    return [line.strip() for line in page.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def is_matter_page(lines: list[str]) -> bool:
    """A contents, index or bibliography page: its heading says so, or most lines end with a page number."""
    content = [line for line in lines if line]
    if not content:
        return False
    if any(MATTER_HEADINGS.match(line) for line in content[:3]):
        return True
    numbered = sum(bool(_ENDS_WITH_PAGE.search(line)) and bool(_LETTER.search(line)) for line in content)
    return len(content) >= 5 and numbered / len(content) >= 0.6


def drop_matter(pages: list[list[str]], counts: MutableMapping[str, int], fraction: float = 0.2,
                page_range: tuple[int, int] | None = None) -> list[list[str]]:
    """Drop front/back matter pages: content-based within the first/last ``fraction``, plus an optional cut."""
    n = len(pages)
    keep = list(range(n))
    if page_range is not None:
        first, last = page_range
        keep = [i for i in keep if first <= i < n - last]
    edge = max(1, round(n * fraction)) if fraction > 0 else 0
    kept = [i for i in keep if not ((i < edge or i >= n - edge) and is_matter_page(pages[i]))]
    _bump(counts, "front_back_matter_pages", n - len(kept))
    return [pages[i] for i in kept]


def _edge_indices(lines: list[str], depth: int = 2) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line]
    return sorted(set(filled[:depth] + filled[-depth:]))


def _signature(line: str) -> str:
    return _DIGITS.sub("#", line.lower()).strip()


def drop_running_lines(pages: list[list[str]], counts: MutableMapping[str, int],
                       min_share: float = 0.5) -> list[list[str]]:
    """Remove running headers/footers: edge lines recurring (digits ignored) on ``min_share`` of pages."""
    if len(pages) < 3:
        return pages
    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({_signature(lines[i]) for i in _edge_indices(lines)})
    limit = max(2, min_share * len(pages))
    running = {sig for sig, c in seen.items() if c >= limit and sig and not _PAGE_NUMBER.match(sig.replace("#", "1"))}
    out = []
    for lines in pages:
        drop = {i for i in _edge_indices(lines) if _signature(lines[i]) in running}
        _bump(counts, "running_header_lines", len(drop))
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def drop_page_numbers(pages: list[list[str]], counts: MutableMapping[str, int]) -> list[list[str]]:
    """Remove a first or last line that is only a page number."""
    out = []
    for lines in pages:
        drop = {i for i in _edge_indices(lines, 1) if _PAGE_NUMBER.match(lines[i])}
        _bump(counts, "page_number_lines", len(drop))
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def is_debris(line: str) -> bool:
    """Figure/table debris: a short line mostly without letters, or a short caption label."""
    if not line:
        return False
    letters = len(_LETTER.findall(line))
    if len(line) <= 40 and letters / len(line) < 0.4:
        return True
    return len(line) <= 60 and bool(_CAPTION.match(line)) and not _SENTENCE_END.search(line)


def drop_debris(pages: list[list[str]], counts: MutableMapping[str, int]) -> list[list[str]]:
    out = []
    for lines in pages:
        kept = [line for line in lines if not is_debris(line)]
        _bump(counts, "figure_table_lines", sum(1 for line in lines if line) - sum(1 for line in kept if line))
        out.append(kept)
    return out


def _join(left: str, right: str, counts: MutableMapping[str, int]) -> str:
    if not left:
        return right
    if len(left) > 1 and left.endswith("-") and _LETTER.match(left[-2]) and right[:1].islower():
        _bump(counts, "hyphen_joins")
        return left[:-1] + right
    if _CJK.match(left[-1]) or _CJK.match(right[0]):
        return left + right
    return f"{left} {right}"


def rebuild_paragraphs(lines: list[str], counts: MutableMapping[str, int]) -> list[str]:
    """Join lines into paragraphs: a break at blank lines and at short lines that end a sentence."""
    lengths = sorted(len(line) for line in lines if line)
    typical = lengths[int(len(lengths) * 0.8)] if lengths else 0
    paragraphs: list[str] = []
    current = ""
    for k, line in enumerate(lines):
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        after = next((nxt for nxt in lines[k + 1:k + 2] if nxt), "")
        if (len(line) < 0.6 * typical and not _SENTENCE_END.search(line) and not line.endswith((",", "-"))
                and after[:1] and not after[0].islower()):  # a heading
            if current:
                paragraphs.append(current)
            paragraphs.append(line)
            current = ""
            continue
        current = _join(current, line, counts)
        if _SENTENCE_END.search(line) and len(line) < 0.8 * typical:
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    _bump(counts, "paragraphs", len(paragraphs))
    return paragraphs


def clean_book(pages: list[str], counts: MutableMapping[str, int], *, matter: bool = True,
               matter_fraction: float = 0.2, page_range: tuple[int, int] | None = None,
               header_min_share: float = 0.5) -> str:
    """Apply every rule to a book's (or a page range's) pages and return the body as paragraphs."""
    split = [_lines(page, counts) for page in pages]
    if matter or page_range:
        split = drop_matter(split, counts, matter_fraction if matter else 0.0, page_range)
    split = drop_running_lines(split, counts, header_min_share)
    split = drop_page_numbers(split, counts)
    split = drop_debris(split, counts)
    # Pages flow into each other: a paragraph (or a hyphenated word) may continue on the next page.
    flow = [line for lines in split for line in lines]
    return "\n\n".join(rebuild_paragraphs(flow, counts))
