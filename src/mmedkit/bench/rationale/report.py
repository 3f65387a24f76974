"""One HTML page (and the same in Markdown) comparing several runs.

Sections: the runs; accuracy per language with 95% confidence intervals next to the study's published
accuracies; rationale metrics (average and per language); judge rankings (Bradley–Terry with
intervals, win rates, swap consistency); accuracy per medical field (subject). Charts are written
as PNG (linked from the Markdown) and SVG (shown in the HTML).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmedkit.bench.published import PUBLISHED_HEADING, published_blocks
from mmedkit.bench.rationale import doc
from mmedkit.bench.rationale.judge import JUDGE_JSON, judge_blocks
from mmedkit.bench.rationale.runs import Run, load_run, run_labels
from mmedkit.bench.rationale.scoring import LABELS, RATIONALE_JSON
from mmedkit.bench.report import _fmt, summary_rows
from mmedkit.languages import LANGUAGES
from mmedkit.reference import MMEDBENCH_ACCURACY, reference_notes
from mmedkit.utils import atomic_write_text

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
_PALETTE = ["#b2182b", "#2166ac", "#1b7837", "#762a83", "#e08214", "#35978f", "#8c510a", "#de77ae"]


def _rationale(run: Run) -> dict[str, Any] | None:
    path = run.path / RATIONALE_JSON
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return run.results.get("rationale")


def _ci(block: dict[str, Any]) -> str:
    lo, hi = block.get("ci95") or block.get("macro_ci95") or (None, None)
    return f"{_fmt(lo)}–{_fmt(hi)}"


def _accuracy_section(runs: list[Run], names: list[str], charts: dict[str, str]) -> list[doc.Block]:
    refs = list(MMEDBENCH_ACCURACY)
    header = ["Language", *(h for n in names for h in (f"{n} (%)", "95% CI", "n")), *(f"{r}, published" for r in refs)]
    rows = []
    for code, lang in LANGUAGES.items():
        per = [r.results["metrics"]["per_language"].get(code) for r in runs]
        if not any(per):
            continue
        cells = [lang.name]
        for b in per:
            cells += [_fmt(b["accuracy"]), _ci(b), str(b["n"])] if b else ["–", "–", "0"]
        rows.append(cells + [_fmt(MMEDBENCH_ACCURACY[r].get(code)) for r in refs])
    avg = ["Average (macro)"]
    for r in runs:
        o = r.results["metrics"]["overall"]
        avg += [_fmt(o["macro_accuracy"]), _ci(o), str(o["n"])]
    rows.append(avg + [_fmt(MMEDBENCH_ACCURACY[r].get("avg")) for r in refs])
    blocks: list[doc.Block] = [
        doc.Heading("Accuracy per language"),
        doc.Table(header, rows, frozenset({len(rows) - 1})),
        doc.Para("Published columns: accuracies reported by Qiu et al., Nature Communications 2024 (full MMedBench "
                 "test set; fine-tuned models, GPT-4 zero-shot). They are context, not a like-for-like comparison, "
                 f"unless a run used the same data and setting. Intervals: 95% bootstrap. Every published row: "
                 f"'{PUBLISHED_HEADING}'."),
        doc.Bullets(reference_notes()),
    ]
    if "accuracy" in charts:
        blocks.append(doc.Image(charts["accuracy"] + ".svg", charts["accuracy"] + ".png", "accuracy per language"))
    return blocks


def _rationale_section(runs: list[Run], names: list[str], charts: dict[str, str]) -> list[doc.Block]:
    found = [(n, s) for n, r in zip(names, runs, strict=True) if (s := _rationale(r))]
    if not found:
        return [doc.Heading("Rationale metrics"),
                doc.Para("No run has rationale metrics (run `mmed bench rationale RUN_DIR` on generate runs).")]
    keys = list(dict.fromkeys(k for _, s in found for k in s["average"] if k in LABELS))
    avg_rows = [[n, str(s["average"]["n"]), *(_fmt(s["average"].get(k)) for k in keys)] for n, s in found]
    per_rows = [[f"{LANGUAGES[code].name} / {n}", str(row["n"]), *(_fmt(row.get(k)) for k in keys)]
                for code in LANGUAGES for n, s in found if (row := s["per_language"].get(code))]
    segs = {c: v for _, s in found for c, v in s.get("segmenters", {}).items()}
    blocks: list[doc.Block] = [
        doc.Heading("Rationale metrics"),
        doc.Para("Mean over items with a reference rationale (%); the run average is the mean over languages. "
                 "Tokens: " + ", ".join(f"{c} = {v}" for c, v in segs.items()) + ". The study's columns are "
                 "what its paper printed as BLEU-1 / ROUGE-1 (in fact BLEU-4 and ROUGE-L)."),
        doc.Table(["Run", "items", *(LABELS[k] for k in keys)], avg_rows),
    ]
    if "rationale" in charts:
        blocks.append(doc.Image(charts["rationale"] + ".svg", charts["rationale"] + ".png", "rationale metrics"))
    blocks += [doc.Heading("Per language", 3), doc.Table(["Language / run", "items", *(LABELS[k] for k in keys)],
                                                       per_rows)]
    return blocks


def _field_section(runs: list[Run], names: list[str]) -> list[doc.Block]:
    fields = sorted({k for r in runs for k in (r.results["metrics"].get("per_subject") or {})})
    if not fields:
        return []
    rows = []
    for f in fields:
        code, _, subject = f.partition("/")
        cells = [f"{LANGUAGES[code].name if code in LANGUAGES else code} / {subject}"]
        for r in runs:
            b = (r.results["metrics"].get("per_subject") or {}).get(f)
            cells.append(f"{_fmt(b['accuracy'])} (n={b['n']})" if b else "–")
        rows.append(cells)
    return [doc.Heading("Accuracy per medical field"), doc.Table(["Language / field", *names], rows)]


def _charts(runs: list[Run], names: list[str], judges: list[dict[str, Any]], out: Path) -> dict[str, str]:
    try:
        import matplotlib
    except ImportError:
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, str] = {}

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(out / f"{name}.{ext}")
        plt.close(fig)
        made[name] = name

    rows = [summary_rows(r.results) for r in runs]
    codes = [c for c in LANGUAGES if any(c == x["code"] for rr in rows for x in rr)]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * (len(codes) + 1)), 4.4), dpi=110)
    width = 0.8 / len(runs)
    for k, (n, r) in enumerate(zip(names, runs, strict=True)):
        per, o = r.results["metrics"]["per_language"], r.results["metrics"]["overall"]
        vals = [(per[c]["accuracy"], per[c]["ci95"]) if c in per else (None, [None, None]) for c in codes]
        vals.append((o["macro_accuracy"], o["macro_ci95"]))
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(vals))]
        ys = [v if v is not None else 0.0 for v, _ in vals]
        err = [[max(y - (ci[0] if ci[0] is not None else y), 0) for y, (_, ci) in zip(ys, vals, strict=True)],
               [max((ci[1] if ci[1] is not None else y) - y, 0) for y, (_, ci) in zip(ys, vals, strict=True)]]
        ax.bar(xs, ys, width, label=n, color=_PALETTE[k % len(_PALETTE)])
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    for m, (ref_name, ref) in zip("x+*", MMEDBENCH_ACCURACY.items(), strict=False):
        ys = [ref.get(c) for c in [*codes, "avg"]]
        ax.scatter([i for i, y in enumerate(ys) if y is not None], [y for y in ys if y is not None], marker=m,
                   color="black", zorder=3, label=f"{ref_name}, published")
    ax.set_xticks(range(len(codes) + 1), [LANGUAGES[c].name for c in codes] + ["Average"])
    ax.set_ylabel("Accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("MMedBench accuracy per language (error bars: 95% bootstrap CI)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    save(fig, "accuracy")

    found = [(n, s) for n, r in zip(names, runs, strict=True) if (s := _rationale(r))]
    if found:
        keys = [k for k in LABELS if any(s["average"].get(k) is not None for _, s in found)]
        fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(keys)), 4.2), dpi=110)
        width = 0.8 / len(found)
        for k, (n, s) in enumerate(found):
            xs = [i + (k - (len(found) - 1) / 2) * width for i in range(len(keys))]
            ax.bar(xs, [s["average"].get(key) or 0.0 for key in keys], width, label=n, color=_PALETTE[k % 8])
        ax.set_xticks(range(len(keys)), [LABELS[k] for k in keys], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("Score (%)")
        ax.set_title("Rationale metrics (mean over languages)")
        ax.legend(fontsize=7)
        save(fig, "rationale")

    for idx, j in enumerate(judges):
        ranked = j["ranking"][::-1]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 0.5 * len(ranked) + 2.5), dpi=110)
        ys = range(len(ranked))
        a1.errorbar([r["score"] for r in ranked], ys, xerr=[[r["score"] - r["ci95"][0] for r in ranked],
                                                           [r["ci95"][1] - r["score"] for r in ranked]],
                    fmt="o", color=_PALETTE[1], capsize=3)
        a1.set_yticks(list(ys), [r["model"] for r in ranked])
        a1.axvline(0, color="grey", linewidth=0.8)
        a1.set_xlabel("Bradley–Terry log-strength (95% CI)")
        a1.set_title(f"Judge: {j['judge']['model']}", fontsize=9)
        m = [[x if x is not None else float("nan") for x in row] for row in j["win_rate"]]
        im = a2.imshow(m, vmin=0, vmax=1, cmap="RdBu")
        a2.set_xticks(range(len(j["models"])), j["models"], rotation=30, ha="right", fontsize=8)
        a2.set_yticks(range(len(j["models"])), j["models"], fontsize=8)
        a2.set_title("Win rate (row vs column)", fontsize=9)
        fig.colorbar(im, ax=a2, fraction=0.046)
        save(fig, f"judge_{idx + 1}")
    return made


def _run_row(name: str, run: Run) -> list[str]:
    model, cfg = run.results.get("model") or {}, run.config
    prompt = f"{cfg.get('format')}" + (" + rationale" if cfg.get("rationale") else "")
    return [name, str(model.get("model")), str(model.get("backend")), str(cfg.get("mode")), prompt,
            str(cfg.get("fewshot")), f"{cfg.get('data')} ({cfg.get('split')})",
            str(run.results["metrics"]["overall"]["n"])]


def build_report(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 judge_dirs: Sequence[str | os.PathLike[str]] = (), title: str = "MMedBench comparison") -> Path:
    """Write report.html, report.md and the charts to ``out_dir``; return the HTML path."""
    if not run_dirs:
        raise ValueError("a report needs at least one run folder")
    runs = [load_run(d) for d in run_dirs]
    names = run_labels(runs)
    judges = []
    for d in judge_dirs:
        path = Path(d) / JUDGE_JSON if Path(d).is_dir() else Path(d)
        if not path.is_file():
            raise ValueError(f"no {JUDGE_JSON} in {d} (make one with `mmed bench judge ... --out {d}`)")
        judges.append(json.loads(path.read_text(encoding="utf-8")))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = _charts(runs, names, judges, out)
    blocks: list[doc.Block] = [
        doc.Heading(title, 1),
        doc.Table(["Run", "Model", "Backend", "Mode", "Prompt", "Few-shot", "Data (split)", "Items"],
                  [_run_row(n, r) for n, r in zip(names, runs, strict=True)]),
        *_accuracy_section(runs, names, charts),
        *_rationale_section(runs, names, charts),
    ]
    for idx, j in enumerate(judges):
        blocks += judge_blocks(j, level=2)
        name = f"judge_{idx + 1}"
        if name in charts:
            blocks.append(doc.Image(name + ".svg", name + ".png", "judge ranking and win rates"))
    blocks += _field_section(runs, names)
    blocks += published_blocks()
    atomic_write_text(out / REPORT_MD, doc.to_markdown(blocks))
    atomic_write_text(out / REPORT_HTML, doc.to_html(blocks, title=title))
    return out / REPORT_HTML
