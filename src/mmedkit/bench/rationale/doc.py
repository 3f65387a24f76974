"""A tiny document model rendered to both Markdown and HTML, so reports say the same thing in both.

Every piece of text (model names, run folders, ...) is escaped for the target format: HTML with
``html.escape``, Markdown table cells with ``|`` escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    """A section title (level 1-3)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bulleted list."""

    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """A table; ``bold_rows`` are indices of rows to emphasise (averages)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    bold_rows: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Image:
    """A chart: ``src`` for HTML (SVG) and ``md_src`` for Markdown (PNG)."""

    src: str
    md_src: str
    alt: str


Block = Heading | Para | Bullets | Table | Image


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {x}" for x in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |", "|" + "---|" * len(b.header)]
            for i, row in enumerate(b.rows):
                cells = [_md_cell(c) for c in row]
                if i in b.bold_rows:
                    cells = [f"**{c}**" if c else c for c in cells]
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
        else:
            out.append(f"![{_md_cell(b.alt)}]({b.md_src})")
    return "\n\n".join(out) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th:first-child,td:first-child{text-align:left}tr.avg{font-weight:bold;background:#f4f4f4}"
        "img{max-width:100%;height:auto}")


def to_html(blocks: Sequence[Block], *, title: str) -> str:
    """Render blocks as a self-contained HTML page (charts referenced as files next to it)."""
    e = html.escape
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(str(h))}</th>" for h in b.header)
            rows = "".join(("<tr class=\"avg\">" if i in b.bold_rows else "<tr>")
                           + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for i, row in enumerate(b.rows))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            body.append(f'<figure><img src="{e(b.src, quote=True)}" alt="{e(b.alt, quote=True)}"></figure>')
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
