"""The corpus config: every bad input names file, line and key; recipes, ``extends:`` and ``--set`` overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmedkit.corpus.config import RECIPES, ConfigError, load_config, parse_config, recipe_path

OK = "inputs: [data]\noutput: out\n"

BAD_CONFIGS = [
    # (YAML text, the error it must raise)
    ("name: x\ninputs:\n  - path: data\n    globb: '*.jsonl'\noutput: out\n",
     r"c\.yaml:4: inputs\[0\]\.globb: unknown setting \(known in inputs\[0\]: format, glob, "),
    ("inputs: [{glob: '*.jsonl'}]\noutput: out\n", r"c\.yaml:1: inputs\[0\]\.path: required setting is missing"),
    ("inputs: [{path: data, format: csv}]\noutput: out\n",
     r"c\.yaml:1: inputs\[0\]\.format: expected one of jsonl, parquet, pdf, html, warc, text, got 'csv'"),
    ("inputs: [{path: data, language: xx}]\noutput: out\n",
     r"c\.yaml:1: inputs\[0\]\.language: .*unknown language 'xx'"),
    ("inputs: [{path: data, format: pdf, options: {dpii: 3}}]\noutput: out\n",
     r"c\.yaml:1: inputs\[0\]\.options: unknown option\(s\) \['dpii'\] for pdf input; known: dpi, "),
    ("inputs:\n  - a/data\n  - b/data\noutput: out\n",
     r"c\.yaml:1: inputs: two inputs share a source name \(\['data', 'data'\]\); set `source:` on each"),
    ("inputs: []\noutput: out\n", r"c\.yaml:1: inputs: required: a list of inputs"),
    ("output: out\n", r"c\.yaml: inputs: required setting is missing"),
    (OK + "languages: []\n", r"c\.yaml:3: languages: expected a non-empty list of language codes"),
    (OK + "languages: [en, xx]\n", r"c\.yaml:3: languages: .*unknown language 'xx'"),
    (OK + "steps: {qualityy: {}}\n", r"c\.yaml:3: steps\.qualityy: unknown setting \(known in steps: exact_dedup, "),
    (OK + "steps: {quality: {}}\n", r"c\.yaml:3: steps: language_id is required unless every input sets its"),
    (OK + "steps:\n  language_id: {backend: nope}\n",
     r"c\.yaml:4: steps\.language_id\.backend: unknown backend 'nope'; known: fasttext, "),
    (OK + "steps:\n  language_id: {floors: {en: 2}}\n",
     r"c\.yaml:4: steps\.language_id\.floors: floors\['en'\]: expected a number in \[0, 1\], got 2"),
    (OK + "steps:\n  language_id: {max_chars: -5}\n", r"c\.yaml:4: steps\.language_id\.max_chars: must be >= 0"),
    (OK + "steps:\n  medical_keywords: {thresholds: {en: [5]}}\n",
     r"c\.yaml:4: steps\.medical_keywords\.thresholds\.en: expected \[count, ratio\], got \[5\]"),
    (OK + "steps:\n  medical_keywords: {thresholds: often}\n",
     r"c\.yaml:4: steps\.medical_keywords\.thresholds: expected default, study or a mapping"),
    (OK + "steps:\n  language_id: {}\n  quality: {thresholds: {zh: {min_wordz: 1}}}\n",
     r"c\.yaml:5: steps\.quality\.thresholds: quality\.thresholds\.zh\.min_wordz: unknown quality threshold"),
    (OK + "steps:\n  language_id: {}\n  quality: {thresholds: {zh: {min_words: -1}}}\n",
     r"c\.yaml:5: steps\.quality\.thresholds: quality\.thresholds\.zh\.min_words: expected a number >= 0"),
    (OK + "steps:\n  near_dedup: {n_grams: 0}\n", r"c\.yaml:4: steps\.near_dedup\.n_grams: must be >= 1, got 0"),
    ("inputs: [data]\noutput: {path: o, format: csv}\n", r"c\.yaml:2: output\.format: expected jsonl or parquet"),
    ("inputs: [data]\noutput: {path: o, compression: bz2}\n",
     r"c\.yaml:2: output\.compression: expected gzip, zstd or none, got 'bz2'"),
    ("inputs: [data]\noutput: {format: jsonl}\n", r"c\.yaml:2: output\.path: required setting is missing"),
    ("inputs: [data]\noutput: {path: ''}\n", r"c\.yaml:2: output\.path: required: the output folder"),
    (OK + "stats: {tokenizer: 5}\n", r"c\.yaml:3: stats\.tokenizer: expected a string, got 5"),
    (OK + "executor:\n  type: local\n  tasks: many\n", r"c\.yaml:5: executor\.tasks: expected an integer, got 'many'"),
    (OK + "executor: {workers: 0}\n", r"c\.yaml:3: executor\.workers: must be >= 1, got 0"),
    (OK + "executor: {type: k8s}\n", r"c\.yaml:3: executor\.type: expected one of local, ray, slurm, got 'k8s'"),
    (OK + "executor: {type: slurm}\n", r"c\.yaml:3: executor\.partition: required for the slurm executor"),
    (OK + "bogus: 1\n", r"c\.yaml:3: bogus: unknown setting \(known in the top level: executor, inputs, "),
    ("", r"c\.yaml: empty configuration"),
    ("- a\n- b\n", r"c\.yaml:1: expected a mapping of settings at the top level, got list"),
    ("inputs: [data\n", r"c\.yaml:2: invalid YAML"),
    ("extends: nope\n" + OK, r"nope: no such file, and not a recipe \(recipes: demo, mmedc\)"),
]


@pytest.mark.parametrize(("text", "error"), BAD_CONFIGS, ids=[f"row{i}" for i in range(len(BAD_CONFIGS))])
def test_config_errors_name_file_line_and_key(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_config(path)


def test_parsed_data_errors_name_their_source() -> None:
    with pytest.raises(ConfigError, match=r"^mmed corpus filter: languages: .*unknown language 'xx'"):
        parse_config({"inputs": ["in"], "output": "out", "languages": "en,xx"}, source="mmed corpus filter")
    with pytest.raises(ConfigError, match=r"^c\.yaml:7: executor\.tasks: must be >= 1"):
        parse_config({"inputs": ["in"], "output": "out", "executor": {"tasks": 0}}, "c.yaml", {"executor.tasks": 7})


def test_shorthands_and_defaults() -> None:
    cfg = parse_config({"inputs": ["data/en.jsonl", {"path": "s3://b/books/", "glob": "*.pdf"}], "output": "out",
                        "languages": "en, English ,zh", "steps": {"language_id": True, "quality": None,
                                                                  "near_dedup": False}}, source="runs/x.yaml")
    assert cfg.name == "x" and cfg.source_file == "runs/x.yaml" and cfg.languages == ["en", "zh"]
    assert [(i.path, i.format, i.source) for i in cfg.inputs] == [("data/en.jsonl", "jsonl", "en.jsonl"),
                                                                  ("s3://b/books/", "pdf", "books")]
    assert list(cfg.steps) == ["language_id", "quality"] and cfg.steps["quality"].thresholds == {}
    assert cfg.output.path == "out" and cfg.work_dir == "out/_work" and cfg.tokenizer is None
    # a null setting takes its default; leaving `steps` out runs every step
    cfg = parse_config({"inputs": ["in"], "output": "out", "executor": None, "stats": {"tokenizer": None}}, "y")
    assert cfg.executor.tasks == 1 and list(cfg.steps) == ["language_id", "medical_keywords", "quality",
                                                             "exact_dedup", "near_dedup"]
    # the CLI's --executor/--tasks set values on the loaded config; unset settings stay as they were
    cfg.executor.type, cfg.executor.tasks = "ray", 4
    assert cfg.executor.ray_address is None and cfg.executor.partition is None and cfg.executor.tasks == 4


@pytest.mark.parametrize("name", RECIPES)
def test_shipped_recipes_load(name: str) -> None:
    cfg = load_config(name)
    assert cfg.name == name and cfg.source_file == str(recipe_path(name))
    assert cfg.fingerprint() == json.loads(json.dumps(cfg.fingerprint()))  # plain JSON, saved with every run
    assert "executor" not in cfg.fingerprint() and cfg.fingerprint()["tasks"] == cfg.executor.tasks


def test_extends_and_overrides(tmp_path: Path) -> None:
    child = tmp_path / "mine.yaml"
    child.write_text("extends: demo\nname: mine\nsteps:\n  near_dedup: false\nexecutor: {tasks: 3}\n",
                     encoding="utf-8")
    cfg = load_config(child, overrides=["output.path=/tmp/mine", "steps.quality.thresholds={zh: {min_words: 90}}"])
    assert cfg.name == "mine" and cfg.executor.tasks == 3 and cfg.executor.workers == 2  # workers from demo
    assert list(cfg.steps) == ["language_id", "medical_keywords", "quality", "exact_dedup"]
    assert cfg.output.path == "/tmp/mine" and cfg.steps["quality"].thresholds == {"zh": {"min_words": 90}}
    assert cfg.inputs[0].source == "corpus_dev"  # from the recipe
    with pytest.raises(ConfigError, match=r"^--set: executor\.tasks: expected an integer, got 'zero'"):
        load_config(child, overrides=["executor.tasks=zero"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config("demo", overrides=["executor.tasks"])
    child.write_text("extends: demo\nexecutor: {tasks: 0}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mine\.yaml:2: executor\.tasks: must be >= 1"):
        load_config(child)


def test_cli_build_takes_set_overrides() -> None:
    from typer.testing import CliRunner

    from mmedkit.corpus.cli import app

    result = CliRunner().invoke(app, ["build", "demo", "--set", "executor.tasks=zero"])
    assert result.exit_code == 2 and "--set: executor.tasks: expected an integer, got 'zero'" in result.output
