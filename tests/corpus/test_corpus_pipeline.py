"""The corpus pipeline: offline language ID, quality, dedup, tolerant readers, config, stats and CLI.

Runs on real multilingual text from ../shared/data/corpus_dev (skipped where that folder is absent)
with the local executor in-process (workers=1), so each test takes a few seconds.
"""

from __future__ import annotations

import gzip
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datatrove")

from datatrove.data import Document  # noqa: E402

from mmedkit.corpus.config import ConfigError, load_config, parse_config  # noqa: E402
from mmedkit.corpus.lid import LOW_SCORE, OTHER_LANGUAGE, OfflineLanguageFilter  # noqa: E402
from mmedkit.corpus.pipeline import build_stages, run_pipeline  # noqa: E402
from mmedkit.corpus.quality import QualityFilter, RepetitionProfile, units_of  # noqa: E402
from mmedkit.languages import CODES  # noqa: E402


def corpus_dev(shared: Path, code: str, label: str | None = None, limit: int | None = None) -> list[dict]:
    with (shared / "corpus_dev" / f"{code}.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows if label is None or r["label"] == label]
    return rows[:limit] if limit else rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_outputs(out: Path) -> dict[str, dict]:
    """Every document of a build's output, by id."""
    docs = {}
    for path in sorted(out.glob("*/*.jsonl.gz")):
        if path.parent.name in ("removed", "malformed", "report", "_work"):
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                assert row["id"] not in docs, f"duplicated document {row['id']}"
                docs[row["id"]] = row
    return docs


def count_lines(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            total += sum(1 for _ in fh)
    return total


def config(inputs: list, out: Path, steps: dict, **extra) -> object:
    data = {"name": "test", "inputs": inputs, "steps": steps,
            "output": {"path": str(out), "write_removed": True}, "executor": {"tasks": 2, "workers": 1}, **extra}
    return parse_config(data, source="test")


# --- language ID -------------------------------------------------------------------------------------


def test_language_id_labels_keeps_and_drops(shared_data: Path) -> None:
    step = OfflineLanguageFilter(languages=["en", "zh", "ja", "fr", "ru", "es"])
    for code in CODES:
        doc = Document(text=corpus_dev(shared_data, code, "medical", 1)[0]["text"], id=code)
        assert step.filter(doc) is True
        assert doc.metadata["language"] == code and doc.metadata["language_score"] >= 0.5
    german = Document(text="Die Patientin wurde mit akuter Bauchspeicheldrüsenentzündung ins Krankenhaus "
                           "eingeliefert und erhielt eine Schmerztherapie.", id="de")
    assert step.filter(german) == (False, OTHER_LANGUAGE) and german.metadata["language"] == "de"
    digits = Document(text="12345 678 90 -- 3.14 ### 2024/01/01", id="digits")
    assert step.filter(digits) == (False, OTHER_LANGUAGE) and digits.metadata["language"] == "und"
    # a floor above what a short Spanish phrase scores drops it with the other reason
    strict = OfflineLanguageFilter(languages=["es"], floors={"es": 0.999})
    phrase = Document(text="el paciente", id="es")
    assert strict.filter(phrase) == (False, LOW_SCORE) and phrase.metadata["language"] == "es"
    # the loaded model is not pickled with the step (workers load their own)
    assert step._predict is not None and pickle.loads(pickle.dumps(step))._predict is None


def test_language_id_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown language-ID backend"):
        OfflineLanguageFilter(backend="nope")
    with pytest.raises(ValueError, match=r"floors\['en'\]"):
        OfflineLanguageFilter(floors={"en": 2})
    with pytest.raises(KeyError, match="unknown language"):
        OfflineLanguageFilter(languages=["xx"])


# --- quality -----------------------------------------------------------------------------------------


def test_quality_counts_cjk_words_as_characters() -> None:
    zh = ("患者男性，六十五岁，因反复胸痛三天入院。心电图提示急性下壁心肌梗死，肌钙蛋白明显升高。"
          "入院后给予阿司匹林、氯吡格雷及他汀类药物治疗，并行冠状动脉造影及支架植入术，术后症状缓解。"
          "出院时一般情况良好，嘱其定期复查血脂及心功能。")
    units = units_of("zh")(zh)
    assert len(units) > 80 and zh.split() == [zh]  # whitespace splitting would see a single word
    quality = QualityFilter()
    assert quality.check(zh, "zh") is True
    assert quality.check(zh[:40], "zh") == (False, "too_few_words")
    # the same limit in English words drops a text of that many characters
    en = "The patient, a man of sixty-five, was admitted with chest pain for three days and treated."
    assert quality.check(en, "en") == (False, "too_few_words")


def test_quality_keeps_real_text_and_drops_repetition(shared_data: Path) -> None:
    quality = QualityFilter()
    for code in CODES:
        # Drug leaflets repeat the product's full name dozens of times: Gopher's 5-gram rule drops most of
        # them (a known cost of the default thresholds; relax steps.quality.thresholds.fr to keep them).
        docs = [d for d in corpus_dev(shared_data, code, "medical") if "leaflet" not in d["category"]][:40]
        kept = sum(quality.check(d["text"], code) is True for d in docs)
        assert kept >= 0.85 * len(docs), (code, kept)
        base = docs[0]["text"]
        spam = "\n\n".join([base[:400]] * 4)
        assert quality.check(spam, code) is not True, code
    # repeated sentences inside one paragraph are caught by the n-gram rules
    sentence = "Le patient a reçu un traitement antibiotique par amoxicilline pendant sept jours. "
    text = "Observation clinique. " + sentence * 12 + "Évolution favorable sous traitement."
    assert quality.check(text, "fr")[1].startswith(("duplicate_", "top_"))


RULE_CASES = [
    # (text, language, the rule's reason key); each text passes every earlier rule
    ("patient " * 20, "en", "too_few_words"),
    ("a " * 120, "en", "short_mean_word_length"),
    (" ".join(["the patient was treated #"] * 40), "en", "too_many_hash_symbols"),
    ("\n".join(f"• the patient received dose number {i} with water." for i in range(40)), "en",
     "too_many_bullet_lines"),
    ("\n".join(f"the patient was given dose number {i} with water" for i in range(40)), "en",
     "few_punctuated_lines"),
]


@pytest.mark.parametrize(("text", "code", "reason"), RULE_CASES, ids=[r for _, _, r in RULE_CASES])
def test_quality_rules_drop_with_snake_case_reasons(text: str, code: str, reason: str) -> None:
    quality = QualityFilter()
    assert quality.check(text, code) == (False, reason)
    doc = Document(text=text, id="x", metadata={"language": code})
    assert quality.filter(doc) == (False, reason) and quality.stats[f"{code}_dropped"].total == 1
    assert quality.filter(Document(text=text, id="y", metadata={"language": "de"})) == (False, "unsupported_language")


def test_every_quality_rule_is_a_method() -> None:
    quality = QualityFilter()
    assert all(callable(getattr(quality, name)) for name in quality.rules)
    assert len(set(quality.rules)) == len(quality.rules)


def test_repetition_measure_does_not_depend_on_string_hashes() -> None:
    code = ("from mmedkit.corpus.quality import RepetitionProfile;"
            "p = RepetitionProfile('aa bbbbbbbbbb aa bbbbbbbbbb cc dd ee'.split());"
            "print(p.top_ngram_frac(1), p.dup_ngram_frac(2))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3, 4)}
    assert len(outs) == 1
    profile = RepetitionProfile("aa bbbbbbbbbb aa bbbbbbbbbb cc dd ee".split())
    assert profile.top_ngram_frac(1) == pytest.approx(20 / 30)  # the longer of the two tied words
    assert profile.dup_ngram_frac(2) == pytest.approx(12 / 30)  # second "aa bbbbbbbbbb" only


def test_quality_thresholds_from_config_are_checked(tmp_path: Path) -> None:
    steps = {"language_id": {}, "quality": {"thresholds": {"zh": {"min_words": 300}}}}
    cfg = config([str(tmp_path / "in")], tmp_path / "out", steps)
    quality = dict(build_stages(cfg)[0].steps)["quality"]
    assert quality.thresholds["zh"].min_words == 300 and quality.thresholds["ja"].min_words == 80
    bad = {"language_id": {}, "quality": {"thresholds": {"zh": {"min_wordz": 1}}}}
    with pytest.raises(ConfigError, match="steps.quality.thresholds: quality.thresholds.zh.min_wordz: unknown"):
        config([str(tmp_path)], tmp_path / "o", bad)


# --- dedup -------------------------------------------------------------------------------------------


def _near_copy(text: str, code: str) -> str:
    """The same document with a few edits: words replaced (or characters for zh/ja) and a line added."""
    if code in ("zh", "ja"):
        chars = list(text)
        for i in (len(chars) // 4, len(chars) // 2, 3 * len(chars) // 4):
            chars[i] = "〇"
        return "".join(chars) + "\n转载请注明出处。" if code == "zh" else "".join(chars) + "\n無断転載禁止。"
    words = text.split(" ")
    for i in (len(words) // 3, 2 * len(words) // 3):
        words[i] = "XYZ"
    return " ".join(words) + "\nShare this article."


def test_dedup_removes_exact_and_near_duplicates_per_language(shared_data: Path, tmp_path: Path) -> None:
    rows, expect_exact, expect_near = [], set(), set()
    for code in ("en", "zh", "ja", "fr", "ru", "es"):
        docs = [d for d in corpus_dev(shared_data, code, "medical") if len(d["text"]) > 800][:4]
        for d in docs:
            rows.append({"id": d["id"], "text": d["text"], "lang": code})
        a, b = docs[0], docs[1]
        # exact copy modulo case and whitespace, and a near copy, of two documents
        rows.append({"id": f"{code}-exact", "text": "  " + a["text"].upper().replace(" ", "   ") + "\n", "lang": code})
        rows.append({"id": f"{code}-near", "text": _near_copy(b["text"], code), "lang": code})
        expect_exact.add(f"{code}-exact")
        expect_near.add(f"{code}-near")
    by_lang = {code: [r for r in rows if r["lang"] == code] for code in CODES}
    inputs = [{"path": str(write_jsonl(tmp_path / "in" / f"{code}.jsonl", by_lang[code])), "language": code,
               "source": f"dev-{code}"} for code in CODES]
    # the same English text filed as French is not a duplicate of the English one: dedup is per language
    en_doc = by_lang["en"][0]
    inputs.append({"path": str(write_jsonl(tmp_path / "in" / "fr_copy.jsonl",
                                           [{"id": "en-as-fr", "text": en_doc["text"]}])),
                   "language": "fr", "source": "copy"})
    out = tmp_path / "out"
    report = run_pipeline(config(inputs, out, {"exact_dedup": {}, "near_dedup": {}}))
    kept = read_outputs(out)
    assert expect_exact.isdisjoint(kept) and expect_near.isdisjoint(kept)
    assert "en-as-fr" in kept and kept["en-as-fr"]["metadata"]["language"] == "fr"
    assert len(kept) == len(rows) + 1 - len(expect_exact) - len(expect_near)
    steps = {r["step"]: r for r in report["steps"]}
    assert steps["exact dedup"]["dropped"] == 6 and steps["near dedup (MinHash)"]["dropped"] == 6
    assert count_lines(out / "removed" / "exact_dedup") == 6 and count_lines(out / "removed" / "near_dedup") == 6


# --- malformed input ---------------------------------------------------------------------------------


def test_malformed_records_are_set_aside_with_reasons(shared_data: Path, tmp_path: Path) -> None:
    good = corpus_dev(shared_data, "en", "medical", 3)
    lines = [json.dumps(good[0]).encode(),
             b'{"id": "broken", "text": "unterminated',
             b'{"id": "latin1", "text": "caf\xe9 au lait"}',
             json.dumps({"id": "no-text", "body": "x"}).encode(),
             json.dumps({"id": "null-text", "text": None}).encode(),
             json.dumps({"id": "empty", "text": "   "}).encode(),
             b'["a", "list"]',
             b"",
             json.dumps(good[1]).encode()]
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    more = corpus_dev(shared_data, "en", "medical", 40)[3:]
    whole = gzip.compress("".join(json.dumps(d) + "\n" for d in more).encode())
    (src / "b.jsonl.gz").write_bytes(whole[: len(whole) * 3 // 4])  # truncated mid-stream
    out = tmp_path / "out"
    report = run_pipeline(config([{"path": str(src), "source": "mixed"}], out, {"language_id": {}}))
    aside = {}
    for p in (out / "malformed" / "mixed").glob("*.jsonl.gz"):
        with gzip.open(p, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                aside.setdefault(row["metadata"]["malformed_reason"], []).append(row)
    assert {k: len(v) for k, v in aside.items()} == {
        "bad JSON": 1, "invalid UTF-8": 1, "missing text": 2, "empty text": 1, "not a JSON object": 1,
        "unreadable file": 1}
    assert aside["bad JSON"][0]["metadata"]["malformed_line"] == 2
    assert aside["invalid UTF-8"][0]["metadata"]["raw_base64"]  # the original bytes are kept
    assert aside["unreadable file"][0]["metadata"]["malformed_file"].endswith("b.jsonl.gz")
    read = report["steps"][0]
    assert read["reasons"] == {k: len(v) for k, v in aside.items()} and read["dropped"] == 7
    kept = read_outputs(out)
    assert {good[0]["id"], good[1]["id"]} <= set(kept)
    # the readable part of the truncated file was still read
    assert read["kept"] == len(kept) + report["steps"][1]["dropped"] and 2 + 10 < read["kept"] < 2 + len(more)


# --- whole pipeline: stats add up --------------------------------------------------------------------


def test_stats_add_up_across_steps(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    total = 0
    pairs = []
    for code in CODES:
        rows = corpus_dev(shared_data, code)[:60]
        originals = [r for r in rows if r["label"] == "medical"][:2]
        rows += [{**r, "id": r["id"] + "-copy"} for r in originals]  # exact duplicates
        pairs += [r["id"] for r in originals]
        total += len(rows)
        write_jsonl(src / f"{code}.jsonl", rows)
    (src / "x.jsonl").write_text('{"text": 1}\n{oops\n', encoding="utf-8")
    out = tmp_path / "out"
    steps = {"language_id": {}, "medical_keywords": {}, "quality": {}, "exact_dedup": {}, "near_dedup": {}}
    report = run_pipeline(config([{"path": str(src)}], out, steps))
    rows = report["steps"]
    assert [r["step"] for r in rows] == ["read in", "language ID", "medical keywords", "quality", "exact dedup",
                                         "near dedup (MinHash)"]
    assert rows[0]["in"] == total + 2 and rows[0]["dropped"] == 2
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["in"] == before["kept"], after["step"]
    for row in rows:
        assert row["in"] == row["kept"] + row["dropped"] and sum(row["reasons"].values()) == row["dropped"]
    for key, folder in (("language ID", "language_id"), ("medical keywords", "medical_keywords"),
                        ("quality", "quality"), ("exact dedup", "exact_dedup")):
        written = count_lines(out / "removed" / folder) if (out / "removed" / folder).exists() else 0
        assert written == next(r["dropped"] for r in rows if r["step"] == key), key
    kept = read_outputs(out)
    # a copy and its original pass the same filters, and exact dedup keeps exactly one of each pair
    surviving = [i for i in pairs if i in kept or i + "-copy" in kept]
    assert not [i for i in pairs if i in kept and i + "-copy" in kept]
    assert rows[4]["dropped"] == len(surviving) >= 6
    corpus = report["corpus"]
    assert sum(c["documents"] for c in corpus.values()) == len(kept) == rows[-1]["kept"]
    for code in CODES:
        mine = [d for d in kept.values() if d["metadata"]["language"] == code]
        assert corpus[code]["documents"] == len(mine) == report["funnel"]["output"][code]
        assert corpus[code]["characters"] == sum(len(d["text"]) for d in mine)
        assert corpus[code]["tokens"] == sum((len(d["text"].encode()) + 3) // 4 for d in mine)
        funnel = [report["funnel"][s][code] for s in report["funnel"]]
        assert funnel == sorted(funnel, reverse=True), code
    assert sum(s["documents"] for s in report["sources"]) == len(kept)
    assert abs(sum(c["share"] for c in corpus.values()) - 100) < 0.1
    md = (out / "report" / "corpus_report.md").read_text(encoding="utf-8")
    assert "| Chinese (zh) |" in md and "few medical keywords" in md
    assert (out / "report" / "corpus_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "report" / "corpus_report.json").read_text(encoding="utf-8"))["complete"] is True


# --- config ------------------------------------------------------------------------------------------


def test_shipped_recipes_build_their_stages() -> None:
    from mmedkit.corpus.keywords import STUDY_THRESHOLDS
    from mmedkit.corpus.pipeline import _executors

    study = load_config("mmedc")
    stages = build_stages(study)
    assert [s.name for s in stages] == ["filter", "exact_find", "exact_filter", "near_buckets", "near_cluster",
                                        "near_filter"]
    assert dict(stages[0].steps)["medical_keywords"].thresholds == STUDY_THRESHOLDS
    assert [i.path for i in study.inputs][0] == "hf://datasets/uonlp/CulturaX/en"
    slurm = _executors(study, stages)
    assert type(slurm[-1]).__name__ == "SlurmPipelineExecutor" and slurm[-1].depends is slurm[-2]
    demo = load_config("demo")
    assert demo.executor.type == "local" and "near_dedup" in demo.steps


def test_rerun_with_a_different_config_is_refused(shared_data: Path, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "en.jsonl", corpus_dev(shared_data, "en", "medical", 5))
    out = tmp_path / "out"
    run_pipeline(config([str(src)], out, {"language_id": {}}))
    first = read_outputs(out)
    assert run_pipeline(config([str(src)], out, {"language_id": {}}))["complete"]  # same config: resumes
    assert read_outputs(out) == first
    with pytest.raises(ConfigError, match=r"different configuration \(changed: steps\)"):
        run_pipeline(config([str(src)], out, {"language_id": {}, "quality": {}}))


# --- command line ------------------------------------------------------------------------------------


def test_cli_filter_stats_and_errors(shared_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmedkit.corpus.cli import app

    src = tmp_path / "in"
    for code in ("en", "ru"):
        write_jsonl(src / f"{code}.jsonl", corpus_dev(shared_data, code, limit=40))
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["filter", str(src), str(out), "--langs", "ru", "--no-quality"])
    assert result.exit_code == 0, result.output
    assert "| Russian (ru) |" in result.output and "other language: 40" in result.output
    kept = read_outputs(out)
    assert kept and all(d["metadata"]["language"] == "ru" for d in kept.values())
    assert all(d["metadata"]["medical_keywords_distinct"] >= 1 for d in kept.values())
    result = runner.invoke(app, ["stats", str(out)])
    assert result.exit_code == 0 and "## Steps" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [x]\noutput: {path: o, format: csv}\n", encoding="utf-8")
    result = runner.invoke(app, ["build", str(bad)])
    assert result.exit_code == 2 and "bad.yaml:2: output.format: expected jsonl or parquet" in result.output


def test_cli_calibrate_reports_precision_recall(shared_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmedkit.corpus.cli import app

    out = tmp_path / "cal.json"
    result = CliRunner().invoke(app, ["calibrate", str(shared_data / "corpus_dev" / "ru.jsonl"), "--langs", "ru",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| ru |" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    chosen = report["languages"]["ru"]["chosen"]
    assert 0 < chosen["precision"] <= 1 and 0 < chosen["recall"] <= 1


def test_parquet_on_an_fsspec_filesystem(shared_data: Path) -> None:
    """Parquet in and out on a non-local fsspec filesystem (``memory://`` here, ``s3://`` in production)."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = corpus_dev(shared_data, "ru", limit=30)
    fs = fsspec.filesystem("memory")
    root = "memory://corpus-test"
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"], "url": "https://example.org"} for r in rows]
                                 + [{"id": "null", "text": None, "url": ""}])
    with fs.open(f"{root}/in/a.parquet", "wb") as fh:
        pq.write_table(table, fh)
    with fs.open(f"{root}/in/b.parquet", "wb") as fh:
        fh.write(b"PAR1 not a parquet file")
    try:
        cfg = parse_config({"name": "m", "inputs": [{"path": f"{root}/in", "glob": "*.parquet"}],
                            "steps": {"language_id": {}, "exact_dedup": {}},
                            "output": {"path": f"{root}/out", "format": "parquet"}}, "test")
        report = run_pipeline(cfg)
        assert report["steps"][0]["reasons"] == {"missing text": 1, "unreadable file": 1}
        assert report["corpus"]["ru"]["documents"] == 30
        out = []
        for path in fs.glob(f"{root}/out/ru/*.parquet"):
            with fs.open(path, "rb") as fh:
                out += pq.read_table(fh).to_pylist()
        assert sorted(r["id"] for r in out) == sorted(r["id"] for r in rows)
        assert fs.exists(f"{root}/out/report/corpus_report.png")
    finally:
        fs.rm(root, recursive=True)


def test_keyword_step_without_its_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mmedkit.corpus.keywords", None)  # as if the module failed to import
    cfg = config([str(tmp_path)], tmp_path / "out", {"language_id": {}, "medical_keywords": {}})
    with pytest.raises(ConfigError, match="steps.medical_keywords needs mmedkit.corpus.keywords"):
        build_stages(cfg)
