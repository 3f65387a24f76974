"""The plan of an experiment: its stages in order, each with a fingerprint of its settings and inputs.

A stage's fingerprint hashes what decides its output (its resolved settings, with the output folder
written as ``$DIR``) and the fingerprints of the stages it reads. Change one setting and exactly that
stage and the stages downstream of it get a new fingerprint; everything else keeps its own and is
skipped when it has finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mmedkit.errors import ConfigError
from mmedkit.pipeline import stages as st
from mmedkit.pipeline.experiment import Experiment

KINDS = ("benchmark", "corpus", "pretrain", "perplexity", "sft", "eval", "report")


def build_plan(exp: Experiment, raw: Any, root: Path) -> list[st.Stage]:
    """Every stage the experiment's arms need, in the order they run, with fingerprints."""
    root = root.resolve()
    arms = st.expand_arms(exp)
    data = st.benchmark_data(exp, root)
    plan: list[st.Stage] = []
    if bench := st.benchmark_stage(exp, root):
        plan.append(bench)
    if exp.uses_pretraining:
        pretrain = st.pretrain_stage(exp, raw, root)
        plan += [st.corpus_stage(exp, raw, root), pretrain, st.perplexity_stage(exp, raw, root, pretrain)]
    plan += [st.sft_stage(exp, raw, root, arm, data) for arm in arms if arm.method]
    plan += [st.eval_stage(exp, root, arm, data) for arm in arms]
    plan.append(report_stage(exp, arms, [s.name for s in plan if s.kind in ("eval", "perplexity", "corpus")]))
    by_name: dict[str, st.Stage] = {}
    for stage in plan:
        stage.fingerprint = fingerprint(stage, [by_name[n].fingerprint for n in stage.needs])
        by_name[stage.name] = stage
    return plan


def fingerprint(stage: st.Stage, inputs: list[str]) -> str:
    """Hash of the stage's kind, settings and the fingerprints of the stages it reads."""
    payload = json.dumps([stage.kind, stage.settings, inputs], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def report_stage(exp: Experiment, arms: list[st.Arm], needs: list[str]) -> st.Stage:
    def run(ctx: st.Context) -> dict[str, Any]:
        from mmedkit.pipeline.report import write_report

        paths = write_report(ctx.root, reps=exp.report.bootstrap, seed=exp.report.seed)
        return {"files": [str(p) for p in paths]}

    settings = {"report": exp.report.model_dump(), "arms": [a.id for a in arms], "name": exp.name}
    return st.Stage("report", "report", tuple(needs), settings, run)


def select(plan: list[st.Stage], start: str | None = None, only: str | None = None) -> set[str]:
    """Names of the stages ``--from``/``--only`` force to run again.

    ``key`` is a stage name or a kind (``sft``: every fine-tuning stage); ``--from`` adds every stage
    downstream of those.
    """
    if start and only:
        raise ConfigError("--from and --only: give one of them")
    key = start or only
    if not key:
        return set()
    names = [s.name for s in plan if s.name == key] or [s.name for s in plan if s.kind == key]
    if not names:
        known = ", ".join([s.name for s in plan] + sorted({s.kind for s in plan} - {s.name for s in plan}))
        raise ConfigError(f"{'--from' if start else '--only'} {key}: no such stage in this plan (stages: {known})")
    if only:
        return set(names)
    chosen = set(names)
    for stage in plan:
        if chosen.intersection(stage.needs):
            chosen.add(stage.name)
    return chosen
