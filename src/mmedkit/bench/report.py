"""Human-readable outputs of a run: a Markdown summary, a per-language chart, a console table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmedkit.languages import LANGUAGES
from mmedkit.reference import MMEDBENCH_ACCURACY, reference_notes
from mmedkit.utils import atomic_write_text


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated language, in registry order."""
    per = results["metrics"]["per_language"]
    return [{"code": c, "language": LANGUAGES[c].name, **per[c]} for c in LANGUAGES if c in per]


def protocol_of(results: dict[str, Any]) -> dict[str, Any]:
    """The run's protocol record (runs made before protocols were recorded used mmedkit's)."""
    mode = results["config"]["mode"]
    return results.get("protocol") or {"name": "mmedkit", "description": f"mmedkit's protocol, {mode} mode"}


SCORING_NAMES = {"metrics": "strict (study)", "metrics_lenient": "lenient (mmedkit cascade)",
                 "metrics_loglikelihood": "log-likelihood (argmax)"}


def scoring_lines(results: dict[str, Any]) -> list[str]:
    """A table of every scoring of a study-protocol run, side by side (none for other runs)."""
    if "metrics_lenient" not in results:
        return []
    keys = [k for k in SCORING_NAMES if k in results]
    head = "| Language | n | " + " | ".join(f"{SCORING_NAMES[k]} (%) | invalid (%)" for k in keys) + " |"
    lines = ["", "## Scorings of the same run", "", head, "|" + "---|" * (2 + 2 * len(keys))]
    for row in summary_rows(results):
        cells = [(results[k]["per_language"][row["code"]]) for k in keys]
        lines.append(f"| {row['language']} | {row['n']} | "
                     + " | ".join(f"{_fmt(c['accuracy'])} | {_fmt(c['invalid_rate'])}" for c in cells) + " |")
    overall = [results[k]["overall"] for k in keys]
    lines.append(f"| **Average (macro)** | {overall[0]['n']} | "
                 + " | ".join(f"{_fmt(o['macro_accuracy'])} | {_fmt(o['invalid_rate'])}" for o in overall) + " |")
    lines += ["", "The headline accuracy is the strict one; the other columns score the same items (lenient: the "
              "same generations; log-likelihood: the same prompt) and are never mixed into it."]
    return lines


def markdown_summary(results: dict[str, Any], chart: str | None) -> str:
    """The Markdown report: per-language table next to the study's published accuracies."""
    m, cfg, model = results["metrics"], results["config"], results["model"]
    protocol = protocol_of(results)
    refs = list(MMEDBENCH_ACCURACY)
    head = "| Language | n | Accuracy (%) | 95% CI | Invalid (%) | " + " | ".join(refs) + " |"
    sep = "|" + "---|" * (5 + len(refs))
    lines = [
        f"# MMedBench evaluation: `{model['model']}`",
        "",
        f"- backend `{model['backend']}`, mode `{cfg['mode']}`, prompt format `{cfg['format']}`"
        f"{', with rationale' if cfg['rationale'] and cfg['mode'] == 'generate' else ''}, "
        f"{cfg['fewshot']}-shot, data `{cfg['data']}` ({cfg['split']})",
        f"- protocol `{protocol['name']}`: {protocol['description']}",
        f"- mmedkit {results['mmedkit_version']}, commit {results.get('git_commit') or 'unknown'}",
        "",
        head,
        sep,
    ]
    for row in summary_rows(results):
        ref = " | ".join(_fmt(MMEDBENCH_ACCURACY[r].get(row["code"])) for r in refs)
        lines.append(f"| {row['language']} | {row['n']} | {_fmt(row['accuracy'])} | "
                     f"{_fmt(row['ci95'][0])}–{_fmt(row['ci95'][1])} | {_fmt(row['invalid_rate'])} | {ref} |")
    o = m["overall"]
    ref = " | ".join(_fmt(MMEDBENCH_ACCURACY[r].get("avg")) for r in refs)
    lines.append(f"| **Average (macro)** | {o['n']} | **{_fmt(o['macro_accuracy'])}** | "
                 f"{_fmt(o['macro_ci95'][0])}–{_fmt(o['macro_ci95'][1])} | {_fmt(o['invalid_rate'])} | {ref} |")
    lines += ["", f"Micro accuracy over all items: {_fmt(o['micro_accuracy'])}% "
              f"(95% CI {_fmt(o['micro_ci95'][0])}–{_fmt(o['micro_ci95'][1])}).", "",
              "Reference columns: accuracies published by Qiu et al., Nature Communications 2024 (full MMedBench "
              "test set, models fine-tuned on its train split; GPT-4 zero-shot). They are context, not a "
              "comparison, unless this run used the same data and setting. Every published row (each setting, "
              "its source): `mmed bench report RUN_DIR`."]
    lines += ["", *(f"- {note}" for note in reference_notes())]
    if chart:
        lines += ["", f"![accuracy per language]({chart})"]
    t = results["timing"]
    lines += ["", f"Timing: {t['items_this_run']} items evaluated in {t['eval_s']} s "
              f"({_fmt(t['items_per_s'])} items/s), {t['items_from_cache']} from the resume cache."]
    lines += scoring_lines(results)
    subj = m.get("per_subject") or {}
    if subj:
        lines += ["", "## Per subject", "", "| Language/subject | n | Accuracy (%) |", "|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {_fmt(v['accuracy'])} |" for k, v in subj.items()]
    return "\n".join(lines) + "\n"


def plot_chart(results: dict[str, Any], path: Path) -> Path:
    """Grouped bar chart: this model vs the published reference models, per language and average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = summary_rows(results)
    codes = [r["code"] for r in rows] + ["avg"]
    labels = [r["language"] for r in rows] + ["Average"]
    ours = [r["accuracy"] or 0.0 for r in rows] + [results["metrics"]["overall"]["macro_accuracy"] or 0.0]
    series = [(results["model"]["model"].rstrip("/").split("/")[-1] + " (this run)", ours)]
    for name, ref in MMEDBENCH_ACCURACY.items():
        series.append((f"{name}, published", [ref.get(c) if ref.get(c) is not None else np.nan for c in codes]))
    x = np.arange(len(codes))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(codes)), 4.2), dpi=120)
    palette = ["#b2182b", "#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3"]
    for i, (name, vals) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name,
               color=palette[i % len(palette)], alpha=1.0 if i == 0 else 0.6)
    lo = [r["ci95"][0] for r in rows] + [results["metrics"]["overall"]["macro_ci95"][0]]
    hi = [r["ci95"][1] for r in rows] + [results["metrics"]["overall"]["macro_ci95"][1]]
    xs = x - (len(series) - 1) / 2 * width
    ax.errorbar(xs, ours, yerr=[np.subtract(ours, lo), np.subtract(hi, ours)], fmt="none", ecolor="black",
                capsize=3, linewidth=1)
    ax.set_xticks(x, labels)
    ax.set_ylabel("Accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("MMedBench accuracy per language (error bars: 95% bootstrap CI)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(results: dict[str, Any], out: Path) -> None:
    """Write ``accuracy.png`` and ``summary.md`` next to results.json."""
    chart = None
    try:
        plot_chart(results, out / "accuracy.png")
        chart = "accuracy.png"
    except ImportError:  # matplotlib is optional for headless minimal installs
        pass
    atomic_write_text(out / "summary.md", markdown_summary(results, chart))


def console_table(results: dict[str, Any]) -> Any:
    """A rich table of per-language accuracy for the terminal."""
    from rich.table import Table

    ref = MMEDBENCH_ACCURACY["MMed-Llama 3 (8B)"]
    table = Table(title=f"MMedBench — {results['model']['model']} ({results['config']['mode']}, protocol "
                        f"{protocol_of(results)['name']})")
    for col in ("Language", "n", "Accuracy %", "95% CI", "Invalid %", "MMed-Llama 3 (paper)"):
        table.add_column(col, justify="left" if col == "Language" else "right")
    for row in summary_rows(results):
        table.add_row(row["language"], str(row["n"]), _fmt(row["accuracy"]),
                      f"{_fmt(row['ci95'][0])}–{_fmt(row['ci95'][1])}", _fmt(row["invalid_rate"]),
                      _fmt(ref.get(row["code"])))
    o = results["metrics"]["overall"]
    table.add_row("Average (macro)", str(o["n"]), _fmt(o["macro_accuracy"]),
                  f"{_fmt(o['macro_ci95'][0])}–{_fmt(o['macro_ci95'][1])}", _fmt(o["invalid_rate"]),
                  _fmt(ref.get("avg")), style="bold")
    return table
