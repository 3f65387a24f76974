"""The stages of an experiment: what each one reads, what decides its output, and how it runs.

Every stage is built from the experiment with the stage's own config (corpus recipe, train recipe,
benchmark run settings) and the outputs of the stages it needs: the corpus shards are the pretraining
data, the pretrained model is the base of ``pretrain-sft-*``, the benchmark folder is the SFT data and
the evaluation set, and the trained models are the evaluated ones (LoRA through ``--adapter``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmedkit.errors import ConfigError, MmedError
from mmedkit.pipeline.experiment import EMBEDDED, Experiment, TrainStage, as_overrides, package_path, stage_error
from mmedkit.utils import atomic_write_text


@dataclass(frozen=True)
class Arm:
    """One column of the final table: the base model, optionally pretrained, optionally fine-tuned."""

    pretrain: bool
    method: str | None

    @property
    def id(self) -> str:
        """``base``, ``pretrain``, ``sft-lora``, ``pretrain-sft-full`` ... (also its stage and folder names)."""
        parts = ["pretrain"] if self.pretrain else []
        parts += [f"sft-{self.method}"] if self.method else []
        return "-".join(parts) or "base"


def arm_label(arm_id: str) -> str:
    """``pretrain-sft-lora`` -> ``+pretrain +SFT (LoRA)``: the arm's column title."""
    parts = ["+pretrain"] if arm_id.startswith("pretrain") else []
    if "sft-" in arm_id:
        parts.append(f"+SFT ({'LoRA' if arm_id.endswith('lora') else 'full'})")
    return " ".join(parts) or "base"


def expand_arms(exp: Experiment) -> list[Arm]:
    """The experiment's arms, one per fine-tuning method for the arms with SFT."""
    methods = exp.sft.methods if exp.sft else []
    out: list[Arm] = []
    for arm in exp.arms:
        pretrain = "pretrain" in arm
        out += [Arm(pretrain, m) for m in methods] if "sft" in arm else [Arm(pretrain, None)]
    return out


class Interrupted(MmedError):
    """A stage stopped before its end (Ctrl-C, SIGTERM); rerunning the experiment resumes it."""


class Submitted(MmedError):
    """A stage handed its work to a cluster scheduler; rerun the experiment when the jobs have finished."""


@dataclass
class Context:
    """What a running stage needs: the experiment, its output folder, where to print."""

    exp: Experiment
    root: Path
    console: Any = None
    progress: bool = True
    _model: str | None = None

    def base_model(self) -> str:
        """The base model (``embedded`` resolved to the shipped SmolLM2 checkpoint)."""
        if self._model is None:
            self._model = resolve_model(self.exp.model)
        return self._model

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def resolve_model(name: str) -> str:
    if name != EMBEDDED:
        return name
    from mmedkit.models.embedded import default_model_dir

    return str(default_model_dir())


@dataclass
class Stage:
    """One step of the plan. ``settings`` is what decides its output (hashed, with its inputs, into
    its fingerprint); ``run`` does the work in ``root/<name>/`` and returns a summary."""

    name: str
    kind: str
    needs: tuple[str, ...]
    settings: dict[str, Any]
    run: Callable[[Context], dict[str, Any]]
    command: str | None = None
    config: Any = None
    fingerprint: str = field(default="", compare=False)


def _portable(value: Any, root: Path) -> Any:
    """``value`` as plain JSON data with the output folder written as ``$DIR`` (so moving it changes nothing)."""
    text = json.dumps(value, sort_keys=True, default=str).replace(json.dumps(str(root))[1:-1], "$DIR")
    return json.loads(text)


# ---------------------------------------------------------------------------------------------- data
def benchmark_data(exp: Experiment, root: Path) -> str:
    """The MMedBench-layout data every SFT and evaluation stage reads (built, given, or the fallback)."""
    if isinstance(exp.data, str):
        return exp.data
    if not Path(exp.data.sources).exists() and exp.data.fallback:
        return exp.data.fallback
    return str(root / "benchmark")


def benchmark_stage(exp: Experiment, root: Path) -> Stage | None:
    """``mmed bench build SUITE --sources DIR``, when the experiment builds its benchmark folder."""
    spec = exp.data
    if isinstance(spec, str) or benchmark_data(exp, root) != str(root / "benchmark"):
        return None

    def run(ctx: Context) -> dict[str, Any]:
        from mmedkit.bench.suites import build_suite

        report = build_suite(spec.build, spec.sources, ctx.root / "benchmark", seed=spec.seed)
        return {"counts": report.counts, "differences": report.differences, "missing": report.missing}

    command = f"mmed bench build {spec.build} --sources {spec.sources} --out {root / 'benchmark'} --seed {spec.seed}"
    return Stage("benchmark", "benchmark", (), spec.model_dump(), run, command)


# ---------------------------------------------------------------------------------------------- corpus
CORPUS_CONFIG = "corpus_config.yaml"
"""The corpus stage's resolved config, written next to its output (``mmed corpus build`` runs it as is)."""


def corpus_config(exp: Experiment, raw: Any, root: Path) -> Any:
    """The corpus config of the experiment: its recipe, the experiment's inputs and languages, output in
    ``root/corpus``, token counts with the base model's tokenizer when it is local."""
    from mmedkit.corpus.config import load_config

    section = exp.corpus
    assert section is not None
    wiring = {"languages": exp.languages, "output.path": str(root / "corpus")}
    if section.inputs is not None:
        kept = [i.spec() for i in section.inputs if not i.missing]
        if not kept:
            raise raw.error("corpus.inputs", "no input exists (every one is optional and missing)")
        wiring["inputs"] = kept
    if exp.model == EMBEDDED or Path(exp.model).is_dir():
        wiring["stats.tokenizer"] = exp.model
    sets = section.overrides() + as_overrides(wiring)
    try:
        return load_config(_recipe(section.recipe, raw), sets)
    except ConfigError as exc:
        raise stage_error(raw, "corpus", exc) from None


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send standard error, of this process and of the worker processes it starts, to ``path`` for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("a", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(sink):
                yield
        finally:
            sink.flush()
            os.dup2(saved, 2)
            os.close(saved)


def corpus_stage(exp: Experiment, raw: Any, root: Path) -> Stage:
    cfg = corpus_config(exp, raw, root)

    def run(ctx: Context) -> dict[str, Any]:
        from mmedkit.corpus.pipeline import run_stages
        from mmedkit.corpus.stats import write_report

        if cfg.stats.tokenizer == EMBEDDED:
            cfg.stats.tokenizer = ctx.base_model()
        atomic_write_text(Path(cfg.output.path) / CORPUS_CONFIG, yaml.safe_dump(
            cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
        # datatrove logs every task and its stats to stderr: keep them in a file beside the shards instead of
        # burying the experiment's own progress display (the corpus report holds the same counts).
        with _stderr_to(Path(cfg.output.path) / "datatrove.log"):
            submitted = not run_stages(cfg)
        report = write_report(cfg.output.path, cfg.work_dir)
        if submitted and not report["complete"]:
            raise Submitted(f"corpus: submitted to {cfg.executor.type}; rerun the same command when the jobs "
                            f"have finished ({'; '.join(report['incomplete'])})")
        tokens = sum(c["tokens"] for c in report["corpus"].values())
        docs = sum(c["documents"] for c in report["corpus"].values())
        return {"documents": docs, "tokens": tokens, "languages": [c for c, v in report["corpus"].items()
                                                                  if v["documents"]]}

    command = (f"mmed corpus build {root / 'corpus' / CORPUS_CONFIG}  # written by the pipeline (recipe "
               f"{exp.corpus.recipe} + the experiment's settings); {cfg.executor.type} executor")
    return Stage("corpus", "corpus", (), _portable(cfg.fingerprint(), root), run, command)


def corpus_shards(root: Path, languages: list[str]) -> list[dict[str, str]]:
    """The corpus stage's output as pretraining sources: one folder per language (its shards)."""
    return [{"path": str(root / "corpus" / code), "lang": code} for code in languages]


# ---------------------------------------------------------------------------------------------- training
def _recipe(name: str, raw: Any) -> str:
    """A recipe name, or a YAML path (relative to the working directory, else to the experiment file)."""
    if name.endswith((".yaml", ".yml")) and not Path(name).is_file():
        beside = Path(raw.source).parent / name
        if beside.is_file():
            return str(beside)
    return name


def train_config(section: TrainStage, stage: str, key: str, raw: Any, wiring: dict[str, Any]) -> Any:
    """The train config of a stage: the recipe, the experiment's overrides, then the wiring between stages."""
    from mmedkit.train.config import load_config

    sets = section.overrides() + as_overrides(wiring)
    try:
        return load_config(_recipe(section.recipe, raw), stage, sets)
    except ConfigError as exc:
        raise stage_error(raw, key, exc) from None


def train_settings(cfg: Any, root: Path) -> dict[str, Any]:
    """What decides a training run's result: its config without paths and scheduling details."""
    from mmedkit.train.loop import RESUMABLE_CHANGES
    from mmedkit.train.tracking import flatten

    flat = flatten(cfg.to_dict())
    return _portable({k: v for k, v in flat.items() if k not in RESUMABLE_CHANGES and not k.startswith("logging.")},
                     root)


def train_command(section: TrainStage, stage: str, sets: list[str]) -> str:
    """The command of a training stage: ``<launch> -m mmedkit.train.cli ...`` (cluster) or ``mmed train ...``."""
    from mmedkit.train.config import recipes_root

    prefix = "mmed train"
    if section.launch:
        prefix = section.launch
        for path in (recipes_root() / "accelerate").glob("*.yaml"):
            prefix = prefix.replace(f"{{accelerate:{path.stem}}}", str(path))
        prefix += " -m mmedkit.train.cli"
    args = [stage, section.recipe, *(a for s in sets for a in ("--set", s)), "--no-progress"]
    return f"{prefix} " + " ".join(shlex.quote(a) for a in args)


def _train_run(section: TrainStage, stage: str, cfg: Any, sets: list[str],
               late: Callable[[Context], dict[str, Any]] | None = None) -> Callable[[Context], dict[str, Any]]:
    """Train in this process, or through ``section.launch`` (e.g. accelerate on every GPU of the node).

    ``late`` gives settings known only when the stage runs (nested like the YAML), besides the base model.
    """
    def run(ctx: Context) -> dict[str, Any]:
        from mmedkit.train.loop import SUMMARY_FILE, train

        model = ctx.base_model() if cfg.model == ctx.exp.model else cfg.model
        changes = {"model": model, **(late(ctx) if late else {})}
        if section.launch:
            command = train_command(section, stage, [*sets, *as_overrides(changes)])
            ctx.say(f"$ {command}")
            if subprocess.run(shlex.split(command), check=False).returncode != 0:
                raise RuntimeError(f"{stage} command failed: {command}")
            path = Path(cfg.out) / SUMMARY_FILE
            summary = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"finished": False}
        else:
            progress = {"logging": {"progress": cfg.logging.progress and ctx.progress}}
            summary = train(cfg.updated({**changes, **progress}), console=ctx.console)
        if not summary.get("finished"):
            raise Interrupted(f"{cfg.out}: training stopped before its end; rerun the experiment to resume")
        return {key: summary.get(key) for key in ("steps", "useful_tokens", "train_seconds", "held_out_before",
                                                  "held_out_after", "first_step_loss", "last_logged_loss", "data")}
    return run


def pretrain_stage(exp: Experiment, raw: Any, root: Path) -> Stage:
    assert exp.pretrain is not None
    out = root / "pretrain"
    wiring = {"model": exp.model, "out": str(out), "data.sources": corpus_shards(root, exp.languages),
              "data.cache_dir": str(root / ".cache" / "tokens"), "trust_remote_code": exp.trust_remote_code}
    cfg = train_config(exp.pretrain, "pretrain", "pretrain", raw, wiring)
    sets = exp.pretrain.overrides() + as_overrides(wiring)
    return Stage("pretrain", "pretrain", ("corpus",), train_settings(cfg, root),
                 _train_run(exp.pretrain, "pretrain", cfg, sets), train_command(exp.pretrain, "pretrain", sets),
                 config=cfg)


def perplexity_stage(exp: Experiment, raw: Any, root: Path, pretrain: Stage) -> Stage:
    """Held-out perplexity per language of the base and the pretrained model (the same documents)."""
    cfg = pretrain.config
    if exp.perplexity.documents is None and not cfg.data.eval_fraction:
        raise raw.error("perplexity", "no held-out documents: set perplexity.documents, or hold documents out of "
                                      "the corpus with pretrain.set.data.eval_fraction (e.g. 0.02)")
    settings = exp.perplexity.model_dump(exclude={"device", "batch_size"})

    def run(ctx: Context) -> dict[str, Any]:
        from mmedkit.train.heldout import held_out_by_language

        p = exp.perplexity
        kw = {"documents": package_path(p.documents) if p.documents else None, "max_tokens": p.max_tokens,
              "batch_size": p.batch_size, "device": p.device}
        before = held_out_by_language(cfg, ctx.base_model(), **kw)
        after = held_out_by_language(cfg, str(root / "pretrain"), **kw)
        rows = {lang: {"documents": b["documents"], "tokens": b["tokens"], "before": b, "after": after[lang]}
                for lang, b in before.items()}
        tokens = 2 * sum(r["tokens"] for r in rows.values())
        return {"per_language": rows, "tokens": tokens}

    return Stage("perplexity", "perplexity", ("pretrain",), settings, run)


def sft_stage(exp: Experiment, raw: Any, root: Path, arm: Arm, data: str) -> Stage:
    """Fine-tuning of the base or the pretrained model with one method, on the benchmark's train split."""
    assert exp.sft is not None and arm.method is not None
    name = arm.id
    base = str(root / "pretrain") if arm.pretrain else exp.model
    wiring = {"model": base, "out": str(root / name), "method": arm.method, "data.path": exp.sft.data or data,
              "data.langs": ",".join(exp.languages), "data.format": exp.format,
              "trust_remote_code": exp.trust_remote_code}
    section = exp.sft
    if arm.method == "lora" and section.lora_recipe:
        section = section.model_copy(update={"recipe": section.lora_recipe})
    cfg = train_config(section, "sft", "sft", raw, wiring)
    sets = section.overrides() + as_overrides(wiring)
    needs = (("pretrain",) if arm.pretrain else ()) + (("benchmark",) if data == str(root / "benchmark") else ())

    def languages(ctx: Context) -> dict[str, Any]:
        """The experiment's languages that have a train split (MMedBench-open has no English or Chinese one)."""
        return {"data": {"langs": ",".join(train_languages(cfg.data.path, exp.languages))}}

    return Stage(name, "sft", needs, train_settings(cfg, root), _train_run(section, "sft", cfg, sets, languages),
                 train_command(section, "sft", sets))


def train_languages(data: str, languages: list[str]) -> list[str]:
    """``languages`` with a train split in the MMedBench-layout folder ``data`` (all of them for other data)."""
    from mmedkit.assets import demo_root
    from mmedkit.languages import LANGUAGES

    root = demo_root() if data == "demo" else Path(data)
    if not root.is_dir():
        return languages
    found = [code for code in languages if (root / "Train" / f"{LANGUAGES[code].name}.jsonl").is_file()]
    if not found:
        raise MmedError(f"{root}: no train split for any of {', '.join(languages)} (expected Train/<Language>.jsonl)")
    return found


# ---------------------------------------------------------------------------------------------- evaluation
def arm_model(exp: Experiment, root: Path, arm: Arm) -> tuple[str, str | None]:
    """(model, adapter) an arm is evaluated with."""
    base = str(root / "pretrain") if arm.pretrain else exp.model
    if arm.method == "lora":
        return base, str(root / arm.id)
    return (str(root / arm.id), None) if arm.method else (base, None)


def eval_stage(exp: Experiment, root: Path, arm: Arm, data: str) -> Stage:
    """``mmed bench run`` of one arm; the run folder is ``root/eval-<arm>``."""
    from mmedkit.bench.engine import RunConfig

    e = exp.evaluate
    model, adapter = arm_model(exp, root, arm)
    options = {"adapter": adapter, "dtype": e.dtype, "device": e.device, "batch_size": e.batch_size,
               "trust_remote_code": exp.trust_remote_code or None}
    cfg = RunConfig(model=model, data=e.data or data, mode=e.mode, format=exp.format, rationale=e.rationale,
                    fewshot=e.fewshot, seed=e.seed, langs=",".join(exp.languages), split=e.split, limit=e.limit,
                    max_new_tokens=e.max_new_tokens, model_options=options)
    settings = {k: v for k, v in vars(cfg).items() if k not in ("chunk_size", "model_options")}
    settings["model_options"] = {"adapter": adapter, "dtype": e.dtype}
    needs = tuple(n for n in (("pretrain" if arm.pretrain and not arm.method else None),
                              (arm.id if arm.method else None),
                              ("benchmark" if cfg.data == str(root / "benchmark") else None)) if n)

    def run(ctx: Context) -> dict[str, Any]:
        from mmedkit.bench.engine import run_benchmark

        run_cfg = cfg
        if cfg.model == exp.model:
            run_cfg = RunConfig(**{**vars(cfg), "model": ctx.base_model()})
        results = run_benchmark(run_cfg, ctx.root / f"eval-{arm.id}", console=ctx.console,
                                show_progress=ctx.progress)
        o = results["metrics"]["overall"]
        return {"items": o["n"], "macro_accuracy": o["macro_accuracy"], "invalid_rate": o["invalid_rate"],
                "items_per_s": results["timing"]["items_per_s"]}

    command = (f"mmed bench run --model {model}" + (f" --adapter {adapter}" if adapter else "")
               + f" --data {cfg.data} --langs {cfg.langs} --mode {cfg.mode} --format {cfg.format}"
               + (f" --limit {cfg.limit}" if cfg.limit else "") + (" --rationale" if cfg.rationale else "")
               + f" --out {root / f'eval-{arm.id}'}")
    return Stage(f"eval-{arm.id}", "eval", needs, _portable(settings, root), run, command)
