"""Build the corpus pipeline from a :class:`~mmedkit.corpus.config.CorpusConfig` and run it on datatrove.

Stages (each a datatrove executor with its own completion markers under ``<work>/logs/<stage>``):

1. ``filter`` (``tasks`` tasks): read -> language ID -> medical keywords -> quality -> write the
   survivors to ``<work>/filtered/<rank>.jsonl`` -> exact-dedup signatures (or MinHash signatures);
2. ``exact_find`` (``finder_tasks``): datatrove's global duplicate finder;
3. ``exact_filter`` (``tasks``): read each rank's file back -> drop exact duplicates;
4. ``near_buckets`` (``num_buckets``), ``near_cluster`` (1), ``near_filter`` (``tasks``): datatrove's
   MinHash stages on the exact-deduplicated files.

The last stage counts the corpus table (:class:`~mmedkit.corpus.stats.CorpusStats`) and writes
``<output>/<language>/<rank>.jsonl.gz``. Steps left out of the config are left out of the stages.
Interrupted runs resume: completed tasks are skipped, an interrupted task is redone from scratch and
overwrites its own files (every file a task writes is named after its rank), so nothing is duplicated
or lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
)
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.corpus.config import CorpusConfig, InputSpec
from mmedkit.errors import ConfigError

PLAN_FILE = "plan.json"
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".gz", ".zst", ".bz2", ".xz", ".pdf", ".warc", ".html", ".htm",
                  ".txt")
CONFIG_FILE = "config.json"


@dataclass
class Stage:
    """One datatrove job: its steps (keyed for the report) and its number of tasks."""

    name: str
    tasks: int
    steps: list[tuple[str, PipelineStep]]

    @property
    def pipeline(self) -> list[PipelineStep]:
        return [step for _, step in self.steps]


def _jsonl(folder: str, filename: str, compression: str | None = "gzip") -> JsonlWriter:
    suffix = {"gzip": ".gz", "zstd": ".zst"}.get(compression or "", "")
    return JsonlWriter(folder, output_filename=filename + suffix, compression=compression)


def _reader(spec: InputSpec, malformed: DiskWriter) -> PipelineStep:
    from mmedkit.corpus.readers import TextFileReader, TolerantJsonlReader, TolerantParquetReader

    folder, glob = spec.path, spec.glob
    if spec.path.lower().endswith(_FILE_SUFFIXES):  # a single file: read it from its folder
        folder, _, glob = spec.path.rpartition("/")
        folder = folder or "."
    meta = {"source": spec.source}
    if spec.language:
        meta["language"] = spec.language
    if spec.format in ("pdf", "html", "warc"):  # document readers: text from PDFs or web pages
        if spec.format == "pdf":
            from mmedkit.corpus.pdf import PdfReader as cls
            extra: dict = {"language": spec.language}
        else:
            from mmedkit.corpus.web import HtmlFolderReader, WarcReader

            cls, extra = (HtmlFolderReader if spec.format == "html" else WarcReader), {}
        if glob:
            extra["glob_pattern"] = glob
        return cls(folder, malformed_writer=malformed, default_metadata=meta, **extra, **spec.options)
    if spec.format == "text":
        extra = {"glob_pattern": glob} if glob else {}
        return TextFileReader(folder, malformed_writer=malformed, default_metadata=meta, **extra)
    cls = TolerantParquetReader if spec.format == "parquet" else TolerantJsonlReader
    return cls(folder, malformed_writer=malformed, glob_pattern=glob, text_key=spec.text_key, id_key=spec.id_key,
               default_metadata=meta)


def _keyword_filter(cfg: CorpusConfig, spec: Any, removed: Callable[[str], DiskWriter | None]) -> PipelineStep:
    try:
        from mmedkit.corpus.keywords import STUDY_THRESHOLDS, MedicalKeywordFilter
    except ImportError as exc:
        raise ConfigError(f"{cfg.source_file}: steps.medical_keywords needs mmedkit.corpus.keywords, which "
                          f"cannot be imported ({exc}); remove the step or install the corpus extra") from exc
    thresholds = (STUDY_THRESHOLDS if spec.thresholds == "study" else None if spec.thresholds == "default"
                  else dict(spec.thresholds))
    return MedicalKeywordFilter(thresholds=thresholds, languages=cfg.languages,
                                exclusion_writer=removed("medical_keywords"))


def build_stages(cfg: CorpusConfig) -> list[Stage]:
    """The datatrove stages that ``cfg`` describes, in order."""
    from mmedkit.corpus.dedup import LanguageMinhashSignature, exact_config
    from mmedkit.corpus.lid import OfflineLanguageFilter
    from mmedkit.corpus.quality import QualityFilter, thresholds_for
    from mmedkit.corpus.readers import RankFileReader
    from mmedkit.corpus.stats import CorpusStats, LanguageCounter

    out, work, tasks, steps = cfg.output.path.rstrip("/"), cfg.work_dir, cfg.executor.tasks, cfg.steps

    def removed(step: str) -> DiskWriter | None:
        return _jsonl(f"{out}/removed/{step}", "${rank}.jsonl") if cfg.output.write_removed else None

    compression = None if cfg.output.compression == "none" else cfg.output.compression
    final_writer: DiskWriter = (
        ParquetWriter(out, output_filename="${language}/${rank}.parquet") if cfg.output.format == "parquet"
        else _jsonl(out, "${language}/${rank}.jsonl", compression))
    final = [("corpus_stats", CorpusStats(f"{work}/corpus_stats", tokenizer=cfg.tokenizer)),
             ("write:output", final_writer)]

    first: list[tuple[str, PipelineStep]] = [
        (f"read:{spec.source}", _reader(spec, _jsonl(f"{out}/malformed/{spec.source}", "${rank}.jsonl")))
        for spec in cfg.inputs]
    if "language_id" in steps:
        lid = steps["language_id"]
        first.append(("language_id", OfflineLanguageFilter(
            languages=cfg.languages, floors=lid.floors, backend=lid.backend, max_chars=lid.max_chars,
            exclusion_writer=removed("language_id"))))
    if "medical_keywords" in steps:
        first.append(("medical_keywords", _keyword_filter(cfg, steps["medical_keywords"], removed)))
    if "quality" in steps:
        first.append(("quality", QualityFilter(thresholds_for(steps["quality"].thresholds),
                                               exclusion_writer=removed("quality"))))

    exact, near = steps.get("exact_dedup"), steps.get("near_dedup")
    if not exact and not near:
        return [Stage("filter", tasks, first + final)]
    first.append(("write:filtered", _jsonl(f"{work}/filtered", "${rank}.jsonl", None)))
    stages: list[Stage] = []
    near_steps: list[tuple[str, PipelineStep]] = []
    if near:
        mh = MinhashConfig(n_grams=near.n_grams, num_buckets=near.num_buckets,
                           hashes_per_bucket=near.hashes_per_bucket, seed=near.seed)
        near_steps = [("near_signature", LanguageMinhashSignature(f"{work}/minhash/sigs", mh,
                                                                  cjk_n_grams=near.cjk_n_grams))]
    near_input = f"{work}/filtered"
    if exact:
        xc = exact_config()
        first.append(("exact_signature", ExactDedupSignature(f"{work}/exact/sigs", xc,
                                                             finder_workers=exact.finder_tasks)))
        stages.append(Stage("filter", tasks, first))
        stages.append(Stage("exact_find", exact.finder_tasks, [
            ("exact_find", ExactFindDedups(f"{work}/exact/sigs", f"{work}/exact/dups", xc))]))
        third: list[tuple[str, PipelineStep]] = [
            ("reread:filtered", RankFileReader(f"{work}/filtered")),
            ("exact_dedup", ExactDedupFilter(f"{work}/exact/dups", xc, exclusion_writer=removed("exact_dedup"))),
            ("count:exact_dedup", LanguageCounter())]
        if not near:
            stages.append(Stage("exact_filter", tasks, third + final))
            return stages
        stages.append(Stage("exact_filter", tasks, third + [
            ("write:exact_deduped", _jsonl(f"{work}/exact_deduped", "${rank}.jsonl", None))] + near_steps))
        near_input = f"{work}/exact_deduped"
    else:
        stages.append(Stage("filter", tasks, first + near_steps))
    stages += [
        Stage("near_buckets", near.num_buckets, [
            ("near_buckets", MinhashDedupBuckets(f"{work}/minhash/sigs", f"{work}/minhash/buckets", config=mh))]),
        Stage("near_cluster", 1, [
            ("near_cluster", MinhashDedupCluster(f"{work}/minhash/buckets", f"{work}/minhash/remove", config=mh))]),
        Stage("near_filter", tasks, [
            ("reread:deduped", RankFileReader(near_input)),
            ("near_dedup", MinhashDedupFilter(f"{work}/minhash/remove", exclusion_writer=removed("near_dedup"))),
            ("count:near_dedup", LanguageCounter())] + final)]
    return stages


def _executors(cfg: CorpusConfig, stages: list[Stage]) -> list[PipelineExecutor]:
    ex = cfg.executor
    executors: list[PipelineExecutor] = []
    for stage in stages:
        logging_dir = f"{cfg.work_dir}/logs/{stage.name}"
        workers = min(ex.workers, stage.tasks)
        if ex.type == "local":
            from datatrove.executor import LocalPipelineExecutor

            executors.append(LocalPipelineExecutor(stage.pipeline, tasks=stage.tasks, workers=workers,
                                                   logging_dir=logging_dir))
        elif ex.type == "ray":
            from datatrove.executor.ray import RayPipelineExecutor

            executors.append(RayPipelineExecutor(stage.pipeline, tasks=stage.tasks, workers=workers,
                                                 logging_dir=logging_dir, cpus_per_task=ex.cpus_per_task,
                                                 mem_per_cpu_gb=ex.mem_per_cpu_gb))
        else:
            from datatrove.executor.slurm import SlurmPipelineExecutor

            executors.append(SlurmPipelineExecutor(
                stage.pipeline, tasks=stage.tasks, time=ex.time, partition=ex.partition or "",
                cpus_per_task=ex.cpus_per_task, mem_per_cpu_gb=int(ex.mem_per_cpu_gb), workers=ex.workers,
                job_name=f"{cfg.name}-{stage.name}", qos=ex.qos, venv_path=ex.venv_path,
                sbatch_args=ex.sbatch_args or None, depends=executors[-1] if executors else None,
                logging_dir=logging_dir))
    return executors


def _check_fingerprint(cfg: CorpusConfig, stages: list[Stage]) -> None:
    """Refuse to resume a work folder that a different configuration started."""
    work = get_datafolder(cfg.work_dir)
    fingerprint = cfg.fingerprint()
    if work.isfile(CONFIG_FILE):
        with work.open(CONFIG_FILE, "rt") as fh:
            previous = json.load(fh)
        if previous != fingerprint:
            changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
            raise ConfigError(f"{cfg.source_file}: {cfg.work_dir} holds a run of a different configuration "
                              f"(changed: {', '.join(changed)}); choose a new output folder or delete it")
    else:
        with work.open(CONFIG_FILE, "wt") as fh:
            json.dump(fingerprint, fh, indent=2, sort_keys=True)
    plan = {"name": cfg.name, "languages": cfg.languages, "tokenizer": cfg.tokenizer,
            "stages": [{"name": s.name, "tasks": s.tasks, "steps": [key for key, _ in s.steps]} for s in stages]}
    with work.open(PLAN_FILE, "wt") as fh:
        json.dump(plan, fh, indent=2)


def run_pipeline(cfg: CorpusConfig) -> dict[str, Any] | None:
    """Run (or resume) every stage, then write the report; returns it (None when submitted to Slurm)."""
    from mmedkit.corpus.stats import write_report

    if not run_stages(cfg):
        return None
    return write_report(cfg.output.path, cfg.work_dir)


def run_stages(cfg: CorpusConfig) -> bool:
    """Run (or resume) every stage; False when the stages were submitted to Slurm instead."""
    stages = build_stages(cfg)
    _check_fingerprint(cfg, stages)
    executors = _executors(cfg, stages)
    if cfg.executor.type == "slurm":
        executors[-1].run()  # submits the whole chain through `depends`
        return False
    started_ray = False
    if cfg.executor.type == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=cfg.executor.ray_address, include_dashboard=False)
            started_ray = True
    try:
        for stage, executor in zip(stages, executors, strict=True):
            executor.run()
            if missing := executor.get_incomplete_ranks():
                raise RuntimeError(f"stage {stage.name!r}: {len(missing)} of {stage.tasks} tasks did not complete "
                                   f"(ranks {missing[:10]}); see {cfg.work_dir}/logs/{stage.name}/logs, then run "
                                   f"the same command again to resume")
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return True
