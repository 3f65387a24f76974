"""The report section holding every published row: grouped by setting, sourced, with the inconsistencies, in
the bench report's and the experiment report's HTML and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from mmedkit import reference
from mmedkit.bench.published import PUBLISHED_HEADING, published_blocks
from mmedkit.bench.rationale import doc


def _section(md: str, heading: str) -> str:
    start = md.index(heading)
    end = md.find("\n### ", start + len(heading))
    return md[start:end if end > 0 else None]


def test_every_published_row_sits_under_its_setting_with_its_source() -> None:
    md = doc.to_markdown(published_blocks())
    html = doc.to_html(published_blocks(), title="t")
    for setting in reference.SETTINGS:
        section = _section(md, f"### MMedBench accuracy, {setting}")
        rows = [r for r in reference.MMEDBENCH_ROWS if r.setting == setting]
        lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Model")]
        assert len(lines) == len(rows), setting
        for r, line in zip(rows, lines, strict=True):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[0] == r.name and cells[7] == f"{r.values['avg']:.2f}" and cells[8] == "README", line
        if not rows:
            assert "Not transcribed" in section
    table3 = _section(md, "### English medical benchmarks (Table 3)")
    assert "| PMC-LLaMA (13B) | open-source | 56.4 | 56.0 | 77.9 | – |" in table3
    assert "| Mistral (7B) | open-source | 50.8 |" in table3
    for r in (*reference.RATIONALE_BLEU1, *reference.ABLATION, *reference.ENGLISH_ROWS):
        assert r.name in md and r.name.replace("&", "&amp;") in html
    for text in (*reference.NOT_TRANSCRIBED, *reference.discrepancies()):
        assert text in md
    assert "74.27 is not the mean of its per-language figures (75.31)" in html


def test_the_experiment_report_carries_the_published_tables(tmp_path: Path) -> None:
    from mmedkit.pipeline.report import write_report

    (tmp_path / "plan.json").write_text(json.dumps({"name": "x", "stages": []}), encoding="utf-8")
    write_report(tmp_path, reps=10)
    for name in ("report.md", "report.html"):
        text = (tmp_path / "report" / name).read_text(encoding="utf-8")
        assert PUBLISHED_HEADING in text and "MMedBench accuracy, full fine-tuning" in text
        assert "Inconsistencies in the published figures" in text and "MMed-Llama 3 (8B)" in text
