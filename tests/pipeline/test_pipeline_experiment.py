"""The experiment file and its plan: errors with file:line: key, shipped recipes, fingerprints, selection."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mmedkit.errors import ConfigError
from mmedkit.pipeline.cli import app
from mmedkit.pipeline.experiment import RECIPES, load_experiment
from mmedkit.pipeline.plan import build_plan, select

BASE = """\
name: bad
model: some/model
languages: [en, fr]
corpus: {recipe: demo, inputs: [{path: docs.jsonl, language: en}]}
pretrain: {recipe: tiny-cpu}
sft: {recipe: tiny-cpu, methods: [lora]}
evaluate: {limit: 3}
"""

BAD = [
    # (replace this line of BASE, with this text) -> the error
    ("model: some/model", "modle: some/model", "bad.yaml:2: modle: unknown setting (known in the top level: arms, "
     "corpus, data, evaluate, format, languages, model, name, perplexity, pretrain, report, sft, trust_remote_code)"),
    ("languages: [en, fr]", "languages: [en, xx]", "bad.yaml:3: languages: "),
    ("evaluate: {limit: 3}", "evaluate: {limit: 0}", "bad.yaml:7: evaluate.limit: must be >= 1, got 0"),
    ("evaluate: {limit: 3}", "evaluate: {rationale: true}", "bad.yaml:7: evaluate.rationale: rationale metrics score "
     "generated explanations: set mode: generate"),
    ("evaluate: {limit: 3}", "evaluate: {limit: 3}\narms: [base, sft2]",
     "bad.yaml:8: arms[1]: expected one of base, sft, pretrain, pretrain+sft, got 'sft2'"),
    ("pretrain: {recipe: tiny-cpu}", "", "bad.yaml: arms[2]: arm 'pretrain' needs a `pretrain:` section; add it, "
     "or list the arms to compare (arms: [base, sft, pretrain, pretrain+sft])"),
    ("evaluate: {limit: 3}", "evaluate: {limit: 3}\narms: [base, sft, pretrain+sft]\ncorpus: null",
     "bad.yaml:8: arms[2]: arm 'pretrain+sft' needs a `corpus:` section"),
    ("sft: {recipe: tiny-cpu, methods: [lora]}", "sft: {recipe: tiny-cpu, methods: [qlora]}",
     "bad.yaml:6: sft.methods[0]: expected one of 'full' or 'lora', got 'qlora'"),
    ("pretrain: {recipe: tiny-cpu}", "pretrain: {recipe: nope}",
     "bad.yaml:5: pretrain: nope: no such file, and not a pretrain recipe (recipes: "),
    ("pretrain: {recipe: tiny-cpu}", "pretrain: {recipe: tiny-cpu, set: {train.lr: -1}}",
     "bad.yaml:5: pretrain: --set: train.lr: must be > 0"),
    ("sft: {recipe: tiny-cpu, methods: [lora]}", "sft: {recipe: tiny-cpu, set: {train: {epoch: 2}}}",
     "bad.yaml:6: sft: --set: train.epoch: unknown setting (known in train: "),
    ("corpus: {recipe: demo, inputs: [{path: docs.jsonl, language: en}]}",
     "corpus: {recipe: demo, inputs: [{path: docs.jsonl, language: en}], set: {executor.tasks: 0}}",
     "bad.yaml:4: corpus: --set: executor.tasks: must be >= 1, got 0"),
    ("pretrain: {recipe: tiny-cpu}", "pretrain: {recipe: tiny-cpu, set: {data.eval_fraction: 0}}",
     "bad.yaml: perplexity: no held-out documents: set perplexity.documents, or hold documents out of the corpus"),
    ("name: bad", "name: bad\nextends: missing-recipe",
     "missing-recipe: no such file, and not a experiment recipe (experiment recipes: "),
]


@pytest.mark.parametrize("old,new,message", BAD, ids=[row[2].split(": ")[1] for row in BAD])
def test_bad_experiment_names_file_line_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        exp, raw = load_experiment(path)
        build_plan(exp, raw, tmp_path / "out")
    assert message.replace("bad.yaml", str(path), 1) in str(err.value)


@pytest.mark.parametrize("name", RECIPES.names())
def test_every_shipped_recipe_plans(tmp_path: Path, name: str) -> None:
    exp, raw = load_experiment(name)
    plan = build_plan(exp, raw, tmp_path / "out")
    names = [s.name for s in plan]
    assert names[-1] == "report" and "eval-base" in names
    assert all(s.fingerprint and len(s.fingerprint) == 16 for s in plan)
    assert len({s.name for s in plan}) == len(plan)


def test_llama3_plan_under_dry_run_prints_the_cluster_commands(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "mmed-llama3-8b", "--out", str(tmp_path / "run"), "--dry-run"],
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    out = result.output
    stages = ["corpus", "pretrain", "perplexity", "sft-full", "sft-lora", "pretrain-sft-full", "pretrain-sft-lora",
              "eval-base", "eval-sft-full", "eval-sft-lora", "eval-pretrain", "eval-pretrain-sft-full",
              "eval-pretrain-sft-lora", "report"]
    for stage in stages:
        assert f"\n{stage}: " in out or f"│ {stage} " in out, stage
    assert "slurm executor" in out and "recipe mmedc" in out
    fsdp = "accelerate launch --config_file "
    assert f"pretrain: {fsdp}" in out and "fsdp.yaml -m mmedkit.train.cli pretrain llama3-8b" in out
    assert "-m mmedkit.train.cli sft llama3-8b-full" in out and "-m mmedkit.train.cli sft llama3-8b-lora" in out
    assert "meta-llama/Meta-Llama-3-8B" in out and "Henrychur/MMedBench" in out
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def _plan(tmp_path: Path, write_experiment, **changes: object) -> dict[str, str]:
    exp, raw = load_experiment(write_experiment(**changes))
    return {s.name: s.fingerprint for s in build_plan(exp, raw, tmp_path / "out")}


def _section(write_experiment, key: str) -> dict:
    return yaml.safe_load(write_experiment("probe.yaml").read_text(encoding="utf-8"))[key]


DOWNSTREAM = {
    "corpus": {"corpus", "pretrain", "perplexity", "pretrain-sft-lora", "eval-pretrain", "eval-pretrain-sft-lora",
               "report"},
    "pretrain": {"pretrain", "perplexity", "pretrain-sft-lora", "eval-pretrain", "eval-pretrain-sft-lora", "report"},
    "sft": {"sft-lora", "pretrain-sft-lora", "eval-sft-lora", "eval-pretrain-sft-lora", "report"},
    "evaluate": {"eval-base", "eval-sft-lora", "eval-pretrain", "eval-pretrain-sft-lora", "report"},
    "perplexity": {"perplexity", "report"},
}


@pytest.mark.parametrize("section,key,value", [
    ("corpus", "set", {"steps": {"language_id": False, "medical_keywords": False, "quality": False,
                                 "near_dedup": False, "exact_dedup": False}}),
    ("pretrain", "set", {"train": {"max_steps": 5}}),
    ("sft", "set", {"train.lr": 1.0e-3}),
    ("evaluate", "limit", 2),
    ("perplexity", "max_tokens", 100),
])
def test_one_change_changes_exactly_the_downstream_fingerprints(tmp_path: Path, write_experiment, section: str,
                                                                key: str, value: object) -> None:
    before = _plan(tmp_path, write_experiment)
    changed = _section(write_experiment, section)
    changed[key] = {**changed[key], **value} if isinstance(value, dict) and key == "set" else value
    after = _plan(tmp_path, write_experiment, **{section: changed})
    assert before.keys() == after.keys()
    assert {n for n in before if before[n] != after[n]} == DOWNSTREAM[section]


def test_fingerprints_do_not_depend_on_the_output_folder(tmp_path: Path, write_experiment) -> None:
    exp, raw = load_experiment(write_experiment())
    a = {s.name: s.fingerprint for s in build_plan(exp, raw, tmp_path / "one")}
    b = {s.name: s.fingerprint for s in build_plan(exp, raw, tmp_path / "two")}
    assert a == b


def test_from_and_only_select_stages(tmp_path: Path, write_experiment) -> None:
    exp, raw = load_experiment(write_experiment())
    plan = build_plan(exp, raw, tmp_path / "out")
    assert select(plan, only="sft") == {"sft-lora", "pretrain-sft-lora"}
    assert select(plan, start="sft-lora") == {"sft-lora", "eval-sft-lora", "report"}
    assert select(plan, start="pretrain") == DOWNSTREAM["pretrain"]
    with pytest.raises(ConfigError, match="--only nope: no such stage in this plan"):
        select(plan, only="nope")
