"""Corpus statistics and the build report.

:class:`CorpusStats` is the pipeline's last counting step: documents, characters, UTF-8 bytes and
tokens per (language, source), one JSON file per task. :func:`write_report` merges those with
datatrove's per-task step stats into ``<output>/report/``: ``corpus_report.json``, a Markdown report
(``corpus_report.md``: the corpus table in the form of the study's, the table per source, and the
kept/dropped counts by reason at every step) and a chart (``corpus_report.png``).

Tokens are counted with a given tokenizer (a ``tokenizer.json`` file or a folder holding one, loaded
with the ``tokenizers`` library) or estimated as UTF-8 bytes / 4, and the report says which.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep

from mmedkit.languages import LANGUAGES

ESTIMATE = "estimated as UTF-8 bytes / 4"
REPORT_DIR = "report"
_SOURCE_ROWS = 25


def token_counter(tokenizer: str | None) -> tuple[Callable[[str, int], int], str]:
    """``(count(text, utf8_bytes), description)`` for ``tokenizer`` (a tokenizer.json or its folder) or the estimate."""
    if not tokenizer:
        return (lambda _text, n_bytes: (n_bytes + 3) // 4), ESTIMATE
    from tokenizers import Tokenizer

    path = Path(tokenizer)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"stats.tokenizer: {file} not found (expected a tokenizer.json or its folder)")
    tok = Tokenizer.from_file(str(file))
    return (lambda text, _n: len(tok.encode(text, add_special_tokens=False).ids)), f"counted with {file}"


class CorpusStats(PipelineStep):
    """Pass documents through, counting documents/characters/bytes/tokens per (language, source)."""

    type = "📊 - STATS"
    name = "📊 Corpus table"

    def __init__(self, output_folder: DataFolderLike, tokenizer: str | None = None, language_key: str = "language",
                 source_key: str = "source") -> None:
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.tokenizer = tokenizer
        self.language_key = language_key
        self.source_key = source_key

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        count, method = token_counter(self.tokenizer)
        rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for doc in data:
            with self.track_time():
                n_bytes = len(doc.text.encode("utf-8"))
                row = rows[(str(doc.metadata.get(self.language_key, "und")),
                            str(doc.metadata.get(self.source_key, "")))]
                row[0] += 1
                row[1] += len(doc.text)
                row[2] += n_bytes
                row[3] += count(doc.text, n_bytes)
            yield doc
        table = [{"language": lang, "source": src, "documents": r[0], "characters": r[1], "bytes": r[2],
                  "tokens": r[3]} for (lang, src), r in sorted(rows.items())]
        with self.output_folder.open(f"{rank:05d}.json", "wt") as fh:
            json.dump({"rank": rank, "tokens": method, "rows": table}, fh, ensure_ascii=False, indent=1)


class LanguageCounter(PipelineStep):
    """Pass documents through, counting them per language (``<code>_kept``) for the step report."""

    type = "📊 - STATS"
    name = "🔢 Count per language"

    def __init__(self, language_key: str = "language") -> None:
        super().__init__()
        self.language_key = language_key

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update(f"{doc.metadata.get(self.language_key)}_kept")
            yield doc


def _sub(folder: Any, name: str) -> Any:
    """The DataFolder ``name`` inside ``folder``, on the same filesystem."""
    return get_datafolder((f"{folder.path.rstrip('/')}/{name}", folder.fs))


def _total(value: Any) -> int:
    """A datatrove stat's total (plain counts are saved as numbers, others as dicts)."""
    if isinstance(value, dict):
        return int(value.get("total", 0))
    return int(value or 0)


def _merge_stage(folder: Any, n_steps: int) -> tuple[list[dict[str, int]], list[float], int]:
    """Sum each step's stats (and seconds) over the stage's per-task files; also return the number of tasks seen."""
    merged: list[dict[str, int]] = [defaultdict(int) for _ in range(n_steps)]
    seconds = [0.0] * n_steps
    files = folder.list_files("stats", glob_pattern="*.json") if folder.isdir("stats") else []
    for name in files:
        with folder.open(name, "rt") as fh:
            steps = json.load(fh)
        for i, step in enumerate(steps[:n_steps]):
            timing = step.get("time_stats")
            seconds[i] += float(timing.get("total", 0.0)) if isinstance(timing, dict) else 0.0
            for key, value in step.get("stats", {}).items():
                merged[i][key] += _total(value)
    return [dict(m) for m in merged], seconds, len(files)


_LABELS = {"language_id": "language ID", "medical_keywords": "medical keywords", "quality": "quality",
           "exact_dedup": "exact dedup", "near_dedup": "near dedup (MinHash)"}


def _step_rows(plan: dict[str, Any], work: Any, languages: list[str]) -> tuple[list[dict], dict[str, dict]]:
    """Kept/dropped counts by reason for every step that keeps or drops documents, and the per-language funnel."""
    rows: list[dict[str, Any]] = []
    funnel: dict[str, dict[str, int]] = {}
    for stage in plan["stages"]:
        keys = stage["steps"]
        merged, seconds, seen = _merge_stage(_sub(work, f"logs/{stage['name']}"), len(keys))
        for key, stats, secs in zip(keys, merged, seconds, strict=True):
            kind, _, arg = key.partition(":")
            per_lang = {code: stats.get(f"{code}_kept", 0) for code in languages}
            if kind == "read":
                malformed = {k.removeprefix("malformed_"): v for k, v in stats.items() if k.startswith("malformed_")}
                docs = stats.get("documents", 0)
                ocr = {k: v for k, v in stats.items() if k in _OCR_KEYS}
                rows.append({"step": f"read {arg}", "in": docs + sum(malformed.values()), "kept": docs,
                             "dropped": sum(malformed.values()), "reasons": malformed, "seconds": round(secs, 2),
                             "tasks_reported": seen, "tasks": stage["tasks"], **({"ocr": ocr} if ocr else {})})
            elif key in _LABELS:
                if key in ("exact_dedup", "near_dedup"):
                    reasons = {"exact duplicate" if key == "exact_dedup" else "near duplicate": stats.get("dropped", 0)}
                    kept = stats.get("forwarded", stats.get("total", 0) - stats.get("dropped", 0))
                else:
                    reasons = {k.removeprefix("dropped_"): v for k, v in stats.items()
                               if k.startswith("dropped_") and v}
                    kept = stats.get("forwarded", 0)
                    funnel[key] = per_lang
                rows.append({"step": _LABELS[key], "key": key, "in": stats.get("total", 0), "kept": kept,
                             "dropped": stats.get("dropped", 0), "reasons": {k: v for k, v in reasons.items() if v},
                             "seconds": round(secs, 2), "tasks_reported": seen, "tasks": stage["tasks"]})
            elif kind == "count":
                funnel[arg] = per_lang
    return rows, funnel


_OCR_KEYS = ("pages_ocr", "ocr_pages_retried", "ocr_pages_blank", "ocr_pages_unreadable", "ocr_books_flagged")
_OCR_ROWS = 50


def _ocr_section(output: str, steps: list[dict]) -> dict[str, Any]:
    """OCR counts over the read steps, and every unreadable page the PDF reader set aside (book, page, reason)."""
    from mmedkit.corpus.pdf import UNREADABLE_PAGE

    counts = {k: sum(r.get("ocr", {}).get(k, 0) for r in steps) for k in _OCR_KEYS}
    folder = get_datafolder(f"{output.rstrip('/')}/malformed")
    pages: list[dict[str, Any]] = []
    for name in folder.list_files(glob_pattern="**/*.jsonl*") if folder.exists("") else []:
        with folder.open(name, "rt", compression="infer") as fh:
            for line in fh:
                meta = json.loads(line).get("metadata", {}) if line.strip() else {}
                if meta.get("malformed_reason") == UNREADABLE_PAGE:
                    pages.append({k: meta.get(k) for k in ("malformed_file", "page", "confidence", "engine", "reason",
                                                           "book_ocr_pages", "book_flag")})
    pages.sort(key=lambda p: (str(p["malformed_file"]), p["page"] or 0))
    flagged = sorted({(p["malformed_file"], p["book_flag"]) for p in pages if p["book_flag"]})
    return {**counts, "unreadable": pages, "flagged_books": [{"book": b, "flag": f} for b, f in flagged]}


def _render_ocr(ocr: dict[str, Any]) -> list[str]:
    """The Markdown lines for the OCR section (none when no page was OCR'd)."""
    if not ocr.get("pages_ocr") and not ocr.get("unreadable"):
        return []
    out = ["", "## OCR", "", f"{_fmt(ocr['pages_ocr'])} pages OCR'd; {_fmt(ocr['ocr_pages_retried'])} retried with "
           f"other settings; {_fmt(ocr['ocr_pages_blank'])} blank; {_fmt(ocr['ocr_pages_unreadable'])} unreadable "
           f"(left out of the text, set aside under malformed/); {_fmt(ocr['ocr_books_flagged'])} books flagged."]
    if ocr["flagged_books"]:
        out += ["", "Books with many unreadable pages:", ""]
        out += [f"- {b['book']}: {b['flag']}" for b in ocr["flagged_books"]]
    if ocr["unreadable"]:
        out += ["", "| Book | Page | Confidence | Engine | Reason |", "|---|---:|---:|---|---|"]
        for p in ocr["unreadable"][:_OCR_ROWS]:
            out.append(f"| {p['malformed_file']} | {p['page']} | {p['confidence']} | {p['engine']} | {p['reason']} |")
        if len(ocr["unreadable"]) > _OCR_ROWS:
            out.append(f"| … {len(ocr['unreadable']) - _OCR_ROWS} more pages (see corpus_report.json) | | | | |")
    return out


def _corpus_tables(work: Any, languages: list[str]) -> tuple[dict[str, dict], list[dict], str]:
    """Per-language and per-(source, language) totals from the CorpusStats files."""
    by_lang: dict[str, dict[str, int]] = {}
    by_source: dict[tuple[str, str], dict[str, int]] = {}
    method = ESTIMATE
    folder = _sub(work, "corpus_stats")
    for name in folder.list_files(glob_pattern="*.json") if work.isdir("corpus_stats") else []:
        with folder.open(name, "rt") as fh:
            data = json.load(fh)
        method = data.get("tokens", method)
        for row in data["rows"]:
            for table, key in ((by_lang, row["language"]), (by_source, (row["source"], row["language"]))):
                cell = table.setdefault(key, {"documents": 0, "characters": 0, "bytes": 0, "tokens": 0})
                for field in cell:
                    cell[field] += row[field]
    total_tokens = sum(c["tokens"] for c in by_lang.values()) or 1
    corpus = {}
    for code in [*languages, *sorted(set(by_lang) - set(languages))]:
        cell = by_lang.get(code, {"documents": 0, "characters": 0, "bytes": 0, "tokens": 0})
        corpus[code] = {**cell, "share": round(100 * cell["tokens"] / total_tokens, 2)}
    sources = [{"source": src, "language": lang, **cell} for (src, lang), cell in
               sorted(by_source.items(), key=lambda kv: (-kv[1]["tokens"], kv[0]))]
    return corpus, sources, method


def build_report(output: str, work_dir: str | None = None) -> dict[str, Any]:
    """Merge the stats of a finished (or partly finished) build into one report dictionary."""
    work = get_datafolder(work_dir or f"{output.rstrip('/')}/_work")
    if not work.isfile("plan.json"):
        raise FileNotFoundError(f"{work.path}/plan.json not found: is {output} the output of `mmed corpus build`?")
    with work.open("plan.json", "rt") as fh:
        plan = json.load(fh)
    languages = plan["languages"]
    steps, funnel = _step_rows(plan, work, languages)
    corpus, sources, method = _corpus_tables(work, languages)
    funnel["output"] = {code: corpus.get(code, {}).get("documents", 0) for code in languages}
    incomplete = [f"{r['step']}: {r['tasks_reported']}/{r['tasks']} tasks" for r in steps
                  if r["tasks_reported"] < r["tasks"]]
    return {"name": plan["name"], "output": output, "languages": languages, "tokens": method,
            "complete": not incomplete, "incomplete": incomplete, "corpus": corpus, "sources": sources,
            "steps": steps, "funnel": funnel, "ocr": _ocr_section(output, steps)}


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: corpus table (like the study's), sources, steps and the per-language funnel."""
    out = [f"# Corpus report: {report['name']}", ""]
    if not report["complete"]:
        out += [f"**Incomplete build** ({'; '.join(report['incomplete'])}): figures cover finished tasks only.", ""]
    out += [f"Tokens {report['tokens']}.", "", "## Corpus", "",
            "| Language | Documents | Characters | Tokens | Share of tokens |", "|---|---:|---:|---:|---:|"]
    corpus = report["corpus"]
    for code, cell in corpus.items():
        name = LANGUAGES[code].name if code in LANGUAGES else code
        out.append(f"| {name} ({code}) | {_fmt(cell['documents'])} | {_fmt(cell['characters'])} | "
                   f"{_fmt(cell['tokens'])} | {cell['share']:.1f}% |")
    totals = {k: sum(c[k] for c in corpus.values()) for k in ("documents", "characters", "tokens")}
    out += [f"| **Total** | {_fmt(totals['documents'])} | {_fmt(totals['characters'])} | {_fmt(totals['tokens'])} "
            "| 100% |", "", "## By source", "", "| Source | Language | Documents | Characters | Tokens |",
            "|---|---|---:|---:|---:|"]
    for row in report["sources"][:_SOURCE_ROWS]:
        out.append(f"| {row['source']} | {row['language']} | {_fmt(row['documents'])} | "
                   f"{_fmt(row['characters'])} | {_fmt(row['tokens'])} |")
    if len(report["sources"]) > _SOURCE_ROWS:
        rest = report["sources"][_SOURCE_ROWS:]
        sums = {k: _fmt(sum(r[k] for r in rest)) for k in ("documents", "characters", "tokens")}
        out.append(f"| … {len(rest)} more sources (see corpus_report.json) | | {sums['documents']} | "
                   f"{sums['characters']} | {sums['tokens']} |")
    out += ["", "## Steps", "", "| Step | In | Kept | Dropped | Reasons | Seconds (all tasks) |",
            "|---|---:|---:|---:|---|---:|"]
    for row in report["steps"]:
        reasons = ", ".join(f"{k.replace('_', ' ')}: {_fmt(v)}"  # reason keys as words
                            for k, v in sorted(row["reasons"].items(), key=lambda kv: -kv[1]))
        out.append(f"| {row['step']} | {_fmt(row['in'])} | {_fmt(row['kept'])} | {_fmt(row['dropped'])} | "
                   f"{reasons or '–'} | {row['seconds']:.1f} |")
    stages = list(report["funnel"])
    out += ["", "## Documents kept per language after each step", "",
            "| Language | " + " | ".join(_LABELS.get(s, s) for s in stages) + " |",
            "|---|" + "---:|" * len(stages)]
    for code in report["languages"]:
        out.append(f"| {code} | " + " | ".join(_fmt(report["funnel"][s].get(code, 0)) for s in stages) + " |")
    out += _render_ocr(report.get("ocr", {}))
    return "\n".join(out) + "\n"


def render_chart(report: dict[str, Any]) -> bytes:
    """A PNG: tokens per language (with shares) and documents kept after each step."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpus = report["corpus"]
    codes = [c for c in report["languages"] if c in corpus]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    tokens = [corpus[c]["tokens"] for c in codes]
    bars = ax1.bar(codes, tokens, color="#4C72B0")
    for bar, code in zip(bars, codes, strict=True):
        ax1.annotate(f"{corpus[code]['share']:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     ha="center", va="bottom", fontsize=8)
    ax1.set_title(f"Tokens per language ({report['tokens']})", fontsize=9)
    ax1.set_ylabel("tokens")
    stages = list(report["funnel"])
    for code in codes:
        ax2.plot([_LABELS.get(s, s) for s in stages], [report["funnel"][s].get(code, 0) for s in stages],
                 marker="o", label=code)
    ax2.set_title("Documents kept after each step", fontsize=9)
    ax2.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(f"Corpus {report['name']}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_report(output: str, work_dir: str | None = None) -> dict[str, Any]:
    """Build the report and write ``<output>/report/corpus_report.{json,md,png}``; returns the report."""
    from mmedkit.utils import atomic_write_json, atomic_write_text

    report = build_report(output, work_dir)
    folder = get_datafolder(f"{output.rstrip('/')}/{REPORT_DIR}")
    markdown, chart = render_markdown(report), render_chart(report)
    if folder.is_local():
        root = Path(folder.path)
        atomic_write_json(root / "corpus_report.json", report)
        atomic_write_text(root / "corpus_report.md", markdown)
        tmp = root / ".corpus_report.png.tmp"
        tmp.write_bytes(chart)
        tmp.replace(root / "corpus_report.png")
    else:
        with folder.open("corpus_report.json", "wt") as fh:
            json.dump(report, fh, ensure_ascii=False, indent=2)
        with folder.open("corpus_report.md", "wt") as fh:
            fh.write(markdown)
        with folder.open("corpus_report.png", "wb") as fh:
            fh.write(chart)
    return report
