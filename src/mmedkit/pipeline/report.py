"""The experiment's report (``DIR/report/report.{md,html}`` + PNG charts), from what the stages wrote.

Sections: accuracy per language and arm with 95% CIs next to the published rows; each arm's
difference against the base model with a paired bootstrap CI on the same items; invalid answers;
held-out medical perplexity per language before and after continued pretraining; rationale metrics;
the corpus (documents and tokens per language and source, documents dropped at each step); training
curves; wall time and tokens per stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmedkit.bench.metrics import paired_diff_ci
from mmedkit.bench.published import PUBLISHED_HEADING, published_blocks
from mmedkit.bench.rationale import doc
from mmedkit.bench.report import _fmt
from mmedkit.languages import LANGUAGES
from mmedkit.pipeline.stages import arm_label
from mmedkit.records import read_records
from mmedkit.reference import CITATION, MMEDBENCH_ACCURACY
from mmedkit.utils import atomic_write_json, atomic_write_text

REPORT_DIR = "report"
_PALETTE = ["#4d4d4d", "#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214"]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------------------------- numbers
def load_arms(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Samples of every finished evaluation, by arm (plan order)."""
    plan = _read_json(root / "plan.json") or {"stages": []}
    arms: dict[str, list[dict[str, Any]]] = {}
    for stage in plan["stages"]:
        path = root / stage["name"] / "samples.jsonl"
        if stage["kind"] == "eval" and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            arms[stage["name"].removeprefix("eval-")] = [json.loads(x) for x in lines if x.strip()]
    return arms


def compare(arms: dict[str, list[dict[str, Any]]], *, reps: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy per language and arm (from each run's metrics) and each arm minus base, paired on item ids."""
    from mmedkit.bench.metrics import Scored, summarize

    metrics = {arm: summarize([Scored(s["language"], s["correct"], s["invalid"]) for s in samples], seed=seed)
               for arm, samples in arms.items()}
    diffs: dict[str, Any] = {}
    base = {s["id"]: s for s in arms.get("base", [])}
    for arm, samples in arms.items():
        if arm == "base" or not base:
            continue
        pairs: dict[str, tuple[list[bool], list[bool]]] = {}
        for s in samples:
            if s["id"] in base:
                a, b = pairs.setdefault(s["language"], ([], []))
                a.append(s["correct"])
                b.append(base[s["id"]]["correct"])
        per = {lang: {"n": len(a), "diff": round(100 * (sum(a) - sum(b)) / len(a), 2),
                      "ci95": list(paired_diff_ci({lang: (a, b)}, reps=reps, seed=seed))}
               for lang, (a, b) in pairs.items()}
        macro = sum(p["diff"] for p in per.values()) / len(per) if per else None
        diffs[arm] = {"per_language": per, "macro": {"diff": None if macro is None else round(macro, 2),
                                                     "ci95": list(paired_diff_ci(pairs, reps=reps, seed=seed))}}
    return {"metrics": metrics, "diff_vs_base": diffs}


def _languages(metrics: dict[str, Any]) -> list[str]:
    return [c for c in LANGUAGES if any(c in m["per_language"] for m in metrics.values())]


# ---------------------------------------------------------------------------------------------- sections
def _cell(acc: float | None, ci: Any, short: bool) -> str:
    if acc is None:
        return "–"
    return f"{acc:.1f} [{ci[0]:.0f}–{ci[1]:.0f}]" if short else f"{_fmt(acc)} [{_fmt(ci[0])}–{_fmt(ci[1])}]"


def _diff_cell(cell: dict[str, Any] | None, short: bool) -> str:
    if not cell or cell["diff"] is None:
        return "–"
    lo, hi = cell["ci95"]
    return f"{cell['diff']:+.1f} [{lo:+.0f}, {hi:+.0f}]" if short else f"{cell['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def accuracy_blocks(comparison: dict[str, Any], *, short: bool = False) -> list[doc.Block]:
    """Accuracy per language and arm (with the published rows unless ``short``), differences against base and
    invalid answers; ``short``: rounded for the terminal."""
    metrics, diffs = comparison["metrics"], comparison["diff_vs_base"]
    codes = _languages(metrics)
    refs = [] if short else list(MMEDBENCH_ACCURACY)
    header = ["Language", "n", *(arm_label(a) for a in metrics), *(f"{r}, published" for r in refs)]
    rows = []
    for code in [*codes, "avg"]:
        blocks = [m["per_language"].get(code) if code != "avg" else m["overall"] for m in metrics.values()]
        cells = [LANGUAGES[code].name if code != "avg" else "Average (macro)",
                 str(next((b["n"] for b in blocks if b), "–"))]
        for b in blocks:
            if code == "avg":
                cells.append(_cell(b["macro_accuracy"], b["macro_ci95"], short))
            else:
                cells.append(_cell(b["accuracy"], b["ci95"], short) if b else "–")
        rows.append(cells + [_fmt(MMEDBENCH_ACCURACY[r].get(code)) for r in refs])
    out: list[doc.Block] = [doc.Heading("Accuracy per language (%, 95% bootstrap CI)"),
                            doc.Table(header, rows, frozenset({len(rows) - 1}))]
    if refs:
        out.append(doc.Para(f"Published columns: {CITATION} (full MMedBench test set, 8B models fine-tuned on its "
                            "train split; GPT-4 zero-shot). They are context, not a comparison, unless this "
                            f"experiment used the same data and models. Every published row: '{PUBLISHED_HEADING}'."))
    if diffs:
        rows = [[LANGUAGES[code].name if code != "avg" else "Average (macro)",
                 *(_diff_cell(d["per_language"].get(code) if code != "avg" else d["macro"], short)
                   for d in diffs.values())] for code in [*codes, "avg"]]
        out += [doc.Heading("Difference against base (points, paired bootstrap 95% CI on the same items)"),
                doc.Table(["Language", *(f"{arm_label(a)} − base" for a in diffs)], rows,
                          frozenset({len(rows) - 1}))]
    invalid = {a: m["overall"]["invalid_rate"] for a, m in metrics.items()}
    if any(invalid.values()):
        rows = [[LANGUAGES[c].name, *(_fmt((m["per_language"].get(c) or {}).get("invalid_rate"))
                                      for m in metrics.values())] for c in codes]
        rows.append(["All items", *(_fmt(v) for v in invalid.values())])
        out += [doc.Heading("Invalid answers (%, no answer could be extracted; counted as wrong)"),
                doc.Table(["Language", *(arm_label(a) for a in metrics)], rows, frozenset({len(rows) - 1}))]
    return out


def perplexity_blocks(per_language: dict[str, Any]) -> list[doc.Block]:
    rows = []
    for code, r in sorted(per_language.items(), key=lambda kv: list(LANGUAGES).index(kv[0]) if kv[0] in LANGUAGES
                          else len(LANGUAGES)):
        b, a = r["before"]["perplexity"], r["after"]["perplexity"]
        rows.append([LANGUAGES[code].name if code in LANGUAGES else code, str(r["documents"]),
                     f"{r['tokens']:,}", f"{b:.2f}", f"{a:.2f}", f"{100 * (a - b) / b:+.1f}%"])
    return [doc.Heading("Held-out medical perplexity per language"),
            doc.Table(["Language", "Documents", "Tokens", "Base", "After pretraining", "Change"], rows),
            doc.Para("Held-out documents of the corpus (never trained on), the same for both models.")]


def rationale_blocks(root: Path, arms: list[str]) -> list[doc.Block]:
    found = {a: s for a in arms if (s := _read_json(root / f"eval-{a}" / "rationale.json"))}
    if not found:
        return []
    first = next(iter(found.values()))
    keys = [k for k in first["metrics"] if not k.startswith("study")]
    rows = [[arm_label(a), str(s["counts"]["scored"]), *(_fmt(s["average"].get(k)) for k in keys)]
            for a, s in found.items()]
    return [doc.Heading("Rationale metrics (mean over languages)"),
            doc.Table(["Arm", "Scored", *(first["labels"].get(k, k) for k in keys)], rows)]


def corpus_blocks(report: dict[str, Any]) -> list[doc.Block]:
    rows = [[LANGUAGES[c].name if c in LANGUAGES else c, f"{v['documents']:,}", f"{v['tokens']:,}",
             f"{v['share']:.1f}%"] for c, v in report["corpus"].items()]
    by_origin: dict[tuple[str, str], list[int]] = {}
    for s in report["sources"]:  # "owner/repo@commit:path" sources are grouped by repository
        cell = by_origin.setdefault((s["source"].split("@")[0], s["language"]), [0, 0])
        cell[0] += s["documents"]
        cell[1] += s["tokens"]
    sources = [[src, lang, f"{d:,}", f"{t:,}"] for (src, lang), (d, t) in sorted(by_origin.items(),
                                                                                key=lambda kv: -kv[1][1])]
    steps = [[s["step"], f"{s['in']:,}", f"{s['kept']:,}", f"{s['dropped']:,}",
              ", ".join(f"{k}: {v:,}" for k, v in sorted(s["reasons"].items(), key=lambda kv: -kv[1])) or "–"]
             for s in report["steps"]]
    return [doc.Heading("Corpus"), doc.Para(f"Tokens {report['tokens']}."),
            doc.Table(["Language", "Documents", "Tokens", "Share"], rows),
            doc.Table(["Source", "Language", "Documents", "Tokens"], sources),
            doc.Table(["Step", "In", "Kept", "Dropped", "Reasons"], steps)]


def stage_blocks(root: Path) -> list[doc.Block]:
    plan = _read_json(root / "plan.json") or {"stages": []}
    rows = []
    for stage in (s for s in plan["stages"] if s["kind"] != "report"):
        state = _read_json(root / stage["name"] / "stage.json") or {}
        summary = state.get("summary") or {}
        tokens = summary.get("useful_tokens") or summary.get("tokens")
        work = f"{tokens:,} tokens" if tokens else (f"{summary['items']:,} items" if summary.get("items") else "")
        rows.append([stage["name"], state.get("status", "pending"), _fmt(state.get("wall_s")), work,
                     str(state.get("sessions", ""))])
    return [doc.Heading("Stages"), doc.Table(["Stage", "Status", "Wall time (s)", "Work", "Sessions"], rows)]


# ---------------------------------------------------------------------------------------------- charts
def _charts(root: Path, out: Path, comparison: dict[str, Any], ppl: dict[str, Any] | None) -> list[doc.Image]:
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images: list[doc.Image] = []

    def save(fig: Any, name: str, alt: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        images.append(doc.Image(f"{name}.png", f"{name}.png", alt))

    metrics = comparison["metrics"]
    if metrics:
        codes, arms = _languages(metrics), list(metrics)
        fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * (len(codes) + 1)), 4.2))
        width = 0.8 / len(arms)
        for k, arm in enumerate(arms):
            m = metrics[arm]
            per, overall = m["per_language"], m["overall"]
            vals = [(per[c]["accuracy"], per[c]["ci95"]) if c in per else (0.0, [0.0, 0.0]) for c in codes]
            vals.append((overall["macro_accuracy"], overall["macro_ci95"]))
            xs = [i + (k - (len(arms) - 1) / 2) * width for i in range(len(vals))]
            ys = [v or 0.0 for v, _ in vals]
            err = [[max(y - ci[0], 0) for y, (_, ci) in zip(ys, vals, strict=True)],
                   [max(ci[1] - y, 0) for y, (_, ci) in zip(ys, vals, strict=True)]]
            ax.bar(xs, ys, width, label=arm_label(arm), color=_PALETTE[k % len(_PALETTE)])
            ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        ax.set_xticks(range(len(codes) + 1), [LANGUAGES[c].name for c in codes] + ["Average"])
        ax.set_ylim(0, 100)
        ax.set_ylabel("Accuracy (%)")
        ax.set_title("Accuracy per language and arm (error bars: 95% bootstrap CI)")
        ax.legend(fontsize=8, ncol=min(len(arms), 4), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
        save(fig, "accuracy", "accuracy per language and arm")
    if ppl:
        codes = list(ppl)
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(codes)), 3.8))
        xs = range(len(codes))
        ax.bar([x - 0.2 for x in xs], [ppl[c]["before"]["perplexity"] for c in codes], 0.4, label="base",
               color=_PALETTE[0])
        ax.bar([x + 0.2 for x in xs], [ppl[c]["after"]["perplexity"] for c in codes], 0.4,
               label="after continued pretraining", color=_PALETTE[1])
        ax.set_xticks(list(xs), codes)
        ax.set_yscale("log")
        ax.set_ylabel("Perplexity (log scale)")
        ax.set_title("Held-out medical perplexity per language")
        ax.legend(fontsize=8)
        save(fig, "perplexity", "held-out perplexity before and after pretraining")
    curves = {s: log for s in _training_stages(root) if (log := _train_log(root / s / "train_log.jsonl"))}
    if curves:
        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        for k, (stage, log) in enumerate(curves.items()):
            train = [r for r in log if r.get("kind") == "train" and r.get("loss") is not None]
            ax.plot([r["step"] for r in train], [r["loss"] for r in train], label=stage,
                    color=_PALETTE[(k + 1) % len(_PALETTE)])
            evals = [r for r in log if r.get("kind") == "eval" and r.get("loss") is not None]
            if evals:
                ax.plot([r["step"] for r in evals], [r["loss"] for r in evals], "o--", markersize=3,
                        label=f"{stage} (held out)", color=_PALETTE[(k + 1) % len(_PALETTE)], alpha=0.6)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.set_title("Training curves")
        ax.legend(fontsize=7)
        save(fig, "training", "training curves")
    return images


def _training_stages(root: Path) -> list[str]:
    plan = _read_json(root / "plan.json") or {"stages": []}
    return [s["name"] for s in plan["stages"] if s["kind"] in ("pretrain", "sft")]


def _train_log(path: Path) -> list[dict[str, Any]]:
    """The records of a training log; a torn line (a run killed mid-write) is skipped."""
    if not path.is_file():
        return []
    return [rec.data for rec in read_records(path, skip_invalid=True)]


# ---------------------------------------------------------------------------------------------- writing
def write_report(root: str | Path, *, reps: int = 1000, seed: int = 0) -> list[Path]:
    """Write ``root/report/report.{md,html}``, ``comparison.json`` and the charts; return the paths."""
    root = Path(root)
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    arms = load_arms(root)
    comparison = compare(arms, reps=reps, seed=seed)
    ppl_state = _read_json(root / "perplexity" / "stage.json") or {}
    ppl = (ppl_state.get("summary") or {}).get("per_language")
    corpus = _read_json(root / "corpus" / "report" / "corpus_report.json")
    plan = _read_json(root / "plan.json") or {}
    blocks: list[doc.Block] = [doc.Heading(f"Experiment {plan.get('name', root.name)}", 1),
                               doc.Para(f"Output folder: {root}. Arms: {', '.join(arm_label(a) for a in arms)}.")]
    blocks += accuracy_blocks(comparison) if arms else [doc.Para("No evaluation has finished yet.")]
    if ppl:
        blocks += perplexity_blocks(ppl)
    blocks += rationale_blocks(root, list(arms))
    if corpus:
        blocks += corpus_blocks(corpus)
    images = _charts(root, out, comparison, ppl)
    if images:
        blocks += [doc.Heading("Charts"), *images]
    blocks += stage_blocks(root)
    blocks += published_blocks()
    title = f"mmedkit experiment {plan.get('name', root.name)}"
    atomic_write_json(out / "comparison.json", comparison)
    atomic_write_text(out / "report.md", doc.to_markdown(blocks))
    atomic_write_text(out / "report.html", doc.to_html(blocks, title=title))
    return [out / "report.md", out / "report.html", out / "comparison.json", *(out / i.md_src for i in images)]


def console_tables(root: str | Path, *, reps: int = 1000, seed: int = 0) -> list[Any]:
    """Rich tables for the terminal: accuracy per arm, each arm minus base with its paired CI, invalid answers
    and the held-out perplexity."""
    from rich.table import Table

    root = Path(root)
    blocks = accuracy_blocks(compare(load_arms(root), reps=reps, seed=seed), short=True)
    ppl = ((_read_json(root / "perplexity" / "stage.json") or {}).get("summary") or {}).get("per_language")
    blocks += perplexity_blocks(ppl) if ppl else []
    tables, title = [], ""
    for block in blocks:
        if isinstance(block, doc.Heading):
            title = block.text
        elif isinstance(block, doc.Table):
            table = Table(title=title, title_justify="left")
            for col in block.header:
                table.add_column(col, justify="left" if col == "Language" else "right")
            for i, row in enumerate(block.rows):
                table.add_row(*row, style="bold" if i in block.bold_rows else None)
            tables.append(table)
    return tables


def serve_command(root: str | Path) -> str | None:
    """``mmed serve ...`` for the most trained finished model (pretrained + fine-tuned first), or None."""
    import yaml

    root = Path(root)
    plan = _read_json(root / "plan.json") or {"stages": []}
    done = [s["name"] for s in plan["stages"] if s["kind"] == "sft"
            and (_read_json(root / s["name"] / "stage.json") or {}).get("status") == "done"]
    if not done:
        return None
    arm = max(done, key=lambda name: (name.startswith("pretrain"), name.endswith("full")))
    if not arm.endswith("lora"):
        return f"mmed serve --model {root / arm}"
    if arm.startswith("pretrain"):
        base: str | None = str(root / "pretrain")
    else:
        exp = yaml.safe_load((root / "experiment.yaml").read_text(encoding="utf-8")) or {}
        base = None if exp.get("model", "embedded") == "embedded" else exp["model"]
    return "mmed serve" + (f" --model {base}" if base else "") + f" --adapter {root / arm}"
