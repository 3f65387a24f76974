"""The training loop: one readable loop on accelerate for both stages, on one CPU or many GPUs.

One optimizer step consumes ``global_batch_size`` sequences: ``micro_batch_size`` per forward pass
on each of the processes, accumulated over ``global_batch_size / (micro_batch_size x processes)``
passes. The loss of a step is the mean over every target token of the step (all micro-batches and
processes together), so padding, prompt masking and uneven sequence lengths never change the weight a
token gets. The data of step ``s`` is a pure function of ``s`` (and the seed), which is what makes
checkpoints resume exactly: the trainer state stores the step, and the sequences, the learning rate
and the random generators continue from there.

Launch on several GPUs or nodes with ``accelerate launch --config_file <recipes/accelerate/...>`` (FSDP
or DeepSpeed ZeRO) or ``torchrun``, and on several CPU processes the same way (gloo); the code is the same.
Only the main process writes the output folder, and it holds a lock on it while the run lasts, so a second
run on the same folder (or processes that failed to form one group) stops with an error instead of writing
over it. See docs/distributed.md.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmedkit.errors import MmedError
from mmedkit.train.batches import Collate, Rows, StepPlan, step_batches, target_count, token_nll
from mmedkit.train.checkpoint import checkpoints, gather_from_ranks, load_checkpoint, save_checkpoint
from mmedkit.train.config import ConfigError, PretrainData, TrainConfig, TrainSettings, require
from mmedkit.train.gpu import check_sharding, fsdp_requested, init_processes, keep_rope_fp32, rank_layout
from mmedkit.utils import atomic_write_json, atomic_write_text

SUMMARY_FILE = "train_summary.json"
LOCK_FILE = ".mmed-train.lock"
# Settings a resumed run may change without changing what it computes.
RESUMABLE_CHANGES = {"train.save_every", "train.keep_checkpoints", "train.eval_every", "train.log_every",
                     "train.num_workers", "data.cache_dir", "data.num_proc", "data.chunk_docs", "out"}


# ----------------------------------------------------------------------------------------- set-up


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` -> bf16 on GPUs with native bf16, else no (fp32)."""
    from mmedkit.models.hf import cuda_bf16

    if setting != "auto":
        return setting
    return "bf16" if cuda_bf16() else "no"


def build_data(cfg: TrainConfig, tokenizer: Any, log: Any, rank: int = 0, world: int = 1) -> Any:
    """The stage's data set (pretraining corpus or fine-tuning samples); ``rank`` of ``world`` processes
    tokenises its share of the corpus shards first (the others wait for theirs, one writer per cache entry)."""
    if isinstance(cfg.data, PretrainData):
        from mmedkit.models.embedded import cache_root
        from mmedkit.train.data import build_pretrain_set

        cache = cfg.data.cache_dir or str(cache_root() / "tokens")
        return build_pretrain_set(cfg.data, tokenizer, epochs=cfg.train.epochs, seed=cfg.train.seed,
                                  cache_dir=cache, log=log, rank=rank, world=world)
    from mmedkit.train.sft_data import build_sft_set

    return build_sft_set(cfg.data, tokenizer, epochs=cfg.train.epochs, seed=cfg.train.seed)


def make_optimizer(model: torch.nn.Module, settings: TrainSettings, lr: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and normalisation weights (1-D parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr,
                             betas=(settings.adam_beta1, settings.adam_beta2), eps=settings.adam_eps)


def identity(cfg: TrainConfig, data_fingerprint: str) -> dict[str, Any]:
    """The settings a checkpoint must share with the run that resumes it."""
    from mmedkit.train.tracking import flatten

    flat = flatten(cfg.to_dict())
    keep = {k: v for k, v in flat.items() if k not in RESUMABLE_CHANGES and not k.startswith("logging.")}
    return {**keep, "data.fingerprint": data_fingerprint}


def _check_resume(ckpt: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        shown = "; ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:5])
        raise ConfigError(f"{ckpt} was written by a different run ({shown}); use another out folder, "
                          f"or --no-resume to start over")


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to save a checkpoint after the current step and stop (twice: stop now)."""

    def __init__(self) -> None:
        self.set = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# ------------------------------------------------------------------------------------------- loop


@torch.no_grad()
def evaluate(model: Any, dataset: Any, accelerator: Any, micro_batch: int, collate_fn: Any) -> dict[str, float]:
    """Token-weighted held-out loss and perplexity over ``dataset`` (shared out among processes)."""
    model.eval()
    rank, world = accelerator.process_index, accelerator.num_processes
    my_rows = list(range(rank, len(dataset), world))
    n_batches = math.ceil(math.ceil(len(dataset) / world) / micro_batch)  # the same on every process
    nll_and_targets = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for i in range(n_batches):
        rows = my_rows[i * micro_batch:(i + 1) * micro_batch] or [None]  # None: a filler pass
        batch = {k: v.to(accelerator.device) for k, v in collate_fn([Rows(dataset)[r] for r in rows]).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        nll_and_targets[0] += token_nll(logits, batch["labels"]).double()
        nll_and_targets[1] += target_count(batch)
    nll, targets = accelerator.reduce(nll_and_targets, "sum").tolist()
    model.train()
    loss = nll / max(targets, 1)
    return {"loss": round(loss, 5), "perplexity": round(math.exp(min(loss, 50)), 4), "tokens": int(targets)}


def _save_final(accelerator: Any, model: Any, tokenizer: Any, out: Path, save_dtype: torch.dtype | None) -> None:
    """Model (safetensors; adapter only for LoRA) and tokenizer into ``out``, ready for ``mmed bench run``."""
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        if save_dtype is not None:
            state = {k: v.to(save_dtype) if v.is_floating_point() else v for k, v in state.items()}
        base = unwrapped.get_base_model() if hasattr(unwrapped, "get_base_model") else unwrapped
        base.config.use_cache = True
        tmp = out / ".final.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
        tmp.rmdir()
    accelerator.wait_for_everyone()


def _saved_dtype(model_name: str, trust_remote_code: bool) -> torch.dtype | None:
    """The dtype the base checkpoint was stored in (the trained model is saved in it too)."""
    from transformers import AutoConfig

    try:
        conf = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    except OSError:
        return None
    dt = getattr(conf, "dtype", None) or getattr(conf, "torch_dtype", None)
    if isinstance(dt, str):
        dt = getattr(torch, dt, None)
    return dt if isinstance(dt, torch.dtype) else None


@dataclass
class _Counters:
    """Run totals a checkpoint carries across sessions, and this session's own."""

    step: int = 0
    useful_before: int = 0
    seconds_before: float = 0.0
    useful: int = 0
    mine: int = 0
    """This process's own non-padding tokens this session (the rest: all processes)."""
    positions: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    initial_eval: dict[str, Any] | None = None


class Trainer:
    """One training run: set-up, resume, optimizer steps, checkpoints, the final model."""

    def __init__(self, cfg: TrainConfig, console: Any = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import GradientAccumulationPlugin, set_seed

        from mmedkit.models.hf import load_model_and_tokenizer

        require(cfg, "model", "pass --model (a local folder or a hub id)")
        require(cfg, "out", "pass --out DIR")
        self.cfg, self.settings, self.out, self.console = cfg, cfg.train, Path(str(cfg.out)), console
        settings = self.settings

        # Batch geometry: global batch = micro-batch x processes x accumulation steps.
        state, cpu = init_processes()
        self.world = state.num_processes
        per_pass = settings.micro_batch_size * self.world
        if settings.global_batch_size % per_pass:
            raise ConfigError(f"{cfg.source}: train.global_batch_size ({settings.global_batch_size}) must be a "
                              f"multiple of micro_batch_size x processes ({settings.micro_batch_size} x {self.world})")
        self.accumulation_steps = settings.global_batch_size // per_pass
        # Under FSDP, gradients are reduce-scattered after every micro-batch: an unsharded gradient
        # accumulated over the micro-batches would cost the memory of a full model copy per GPU.
        accumulation = GradientAccumulationPlugin(num_steps=self.accumulation_steps, sync_each_batch=fsdp_requested())
        self.accelerator = Accelerator(gradient_accumulation_plugin=accumulation, cpu=cpu,
                                       mixed_precision=resolve_mixed_precision(settings.mixed_precision))
        check_sharding(self.accelerator.distributed_type)
        self.lock = self._lock_output()
        self.layout = rank_layout(self.world, state.backend, gather_from_ranks(self.accelerator, _where(state.device)))

        # Model, tokenizer and data (the ranks share the corpus shards out to tokenise, one writer per entry).
        set_seed(settings.seed)
        model, self.tokenizer, _, _ = load_model_and_tokenizer(cfg.model, dtype=settings.model_dtype, device="cpu",
                                                               trust_remote_code=cfg.trust_remote_code)
        self.save_dtype = _saved_dtype(str(cfg.model), cfg.trust_remote_code)
        self.notes: list[str] = []
        self.data = build_data(cfg, self.tokenizer, self.notes.append, self.accelerator.process_index, self.world)
        self.eval_data = self.data.eval_set()
        self.plan = StepPlan([len(self.data.epoch(e)) for e in range(settings.epochs)], settings.global_batch_size,
                             settings.micro_batch_size, self.world, settings.max_steps)
        if self.plan.total_steps == 0:
            raise ConfigError(f"{cfg.source}: no training sequences")

        # Optimizer, schedule, batches; what a checkpoint must match to be resumed.
        self.model, self.optimizer, self.scheduler = self._prepare(model)
        self.collate = Collate(self.tokenizer.pad_token_id, self.data.pad_to, settings.pad_to_multiple_of)
        self.identity = identity(cfg, self.data.fingerprint)
        self.counters = _Counters()

    def _lock_output(self) -> Any:
        """The main process creates the output folder and locks it for the run; every rank fails if it cannot."""
        from filelock import FileLock, Timeout

        lock = None
        if self.accelerator.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.out / LOCK_FILE)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                lock = None
        held = torch.tensor([float(lock is not None or not self.accelerator.is_main_process)],
                            device=self.accelerator.device)
        if self.accelerator.reduce(held, "sum").item() < self.world:
            raise MmedError(f"{self.out} is in use by another training run (lock {self.out / LOCK_FILE}); wait for "
                            f"it to finish or use another --out")
        return lock

    def close(self) -> None:
        """Release the output folder."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _prepare(self, model: Any) -> tuple[Any, Any, Any]:
        from transformers import get_cosine_with_min_lr_schedule_with_warmup

        cfg, settings = self.cfg, self.settings
        model.config.use_cache = False
        keep_rope_fp32(model)
        fsdp = getattr(self.accelerator.state, "fsdp_plugin", None)
        if settings.gradient_checkpointing and fsdp is not None:
            fsdp.activation_checkpointing = True  # FSDP's own, wrapping the decoder layers it shards
        elif settings.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if cfg.method == "lora":
                model.enable_input_require_grads()
        if cfg.method == "lora":
            from mmedkit.train.lora import apply_lora

            model = apply_lora(model, cfg.lora)
        model.train()
        total = self.plan.total_steps
        warmup = settings.warmup_steps
        if warmup is None:
            warmup = math.ceil(settings.warmup_ratio * total)
        optimizer = make_optimizer(model, settings, cfg.lr)
        # Stepped once per optimizer step by this loop (not handed to accelerate, which steps it per process).
        scheduler = get_cosine_with_min_lr_schedule_with_warmup(optimizer, warmup, total,
                                                                min_lr_rate=settings.min_lr_ratio)
        deepspeed = self.accelerator.state.deepspeed_plugin
        if deepspeed is not None:  # no prepared dataloader tells DeepSpeed the batch size
            deepspeed.deepspeed_config.update(
                train_micro_batch_size_per_gpu=settings.micro_batch_size,
                gradient_accumulation_steps=self.accumulation_steps, train_batch_size=settings.global_batch_size,
                gradient_clipping=settings.max_grad_norm)
        model, optimizer = self.accelerator.prepare(model, optimizer)
        return model, optimizer, scheduler

    def resume(self) -> None:
        """Continue from the newest checkpoint of the output folder, if there is one."""
        found = checkpoints(self.out)
        if not found:
            return
        saved = load_checkpoint(self.accelerator, found[-1], self.optimizer, self.model)
        _check_resume(found[-1], saved["identity"], self.identity)
        self.scheduler.load_state_dict(saved["scheduler"])
        self.counters = _Counters(step=saved["step"], useful_before=saved["useful_tokens"],
                                  seconds_before=saved["train_seconds"], first_loss=saved.get("first_loss"),
                                  initial_eval=saved.get("initial_eval"))
        moved = f", written by {saved['world_size']} process(es)" if saved["world_size"] != self.world else ""
        self.notes.append(f"resumed from {found[-1]} (step {saved['step']} of {self.plan.total_steps}{moved})")
        threads = saved.get("cpu_threads")
        if self.accelerator.device.type == "cpu" and threads not in (None, torch.get_num_threads()):
            # CPU sums split over another number of threads round differently (~1e-6 relative after a few steps).
            self.notes.append(f"this session computes with {torch.get_num_threads()} CPU threads and the checkpoint "
                              f"was written with {threads}: the weights will match an uninterrupted run to rounding "
                              f"(~1e-6 relative), not bit for bit; set OMP_NUM_THREADS={threads} for an exact resume")

    def state(self) -> dict[str, Any]:
        """What ``trainer_state.json`` records."""
        counters = self.counters
        return {"step": counters.step, "total_steps": self.plan.total_steps,
                "useful_tokens": counters.useful_before + counters.useful, "world_size": self.world,
                "cpu_threads": torch.get_num_threads(),
                "train_seconds": counters.seconds_before + counters.seconds,
                "scheduler": self.scheduler.state_dict(), "identity": self.identity,
                "initial_eval": counters.initial_eval, "first_loss": counters.first_loss, "stage": self.cfg.stage,
                "method": self.cfg.method}

    def optimizer_step(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """Forward/backward over this process's micro-batches, then one clipped optimizer step.

        Each micro-batch's summed NLL is scaled by ``processes x accumulation / targets of the whole step``:
        accelerate divides by the accumulation steps and data parallelism averages over processes, so the
        gradient is that of the mean over every target token of the step.
        """
        accelerator, device = self.accelerator, self.accelerator.device
        local_targets = torch.tensor([sum(target_count(b) for b in batches)], dtype=torch.float64, device=device)
        targets = float(accelerator.reduce(local_targets, "sum").item())
        scale = self.world * self.accumulation_steps / max(targets, 1.0)
        nll, tokens, positions = 0.0, 0, 0
        accelerator.step = 0  # the accumulation counter: sync gradients on this step's last micro-batch
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            with accelerator.accumulate(self.model):
                logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                batch_nll = token_nll(logits, batch["labels"])
                accelerator.backward(batch_nll * scale)
            nll += batch_nll.item()
            tokens += int(batch["attention_mask"].sum())
            positions += batch["input_ids"].numel()
        grad_norm = accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        mine = tokens
        totals = torch.tensor([nll, tokens, positions], dtype=torch.float64, device=device)
        nll, tokens, positions = accelerator.reduce(totals, "sum").tolist()
        norm = None if grad_norm is None else round(float(grad_norm), 5)  # None: DeepSpeed clips by itself
        return {"nll": nll, "targets": targets, "tokens": tokens, "positions": positions, "lr": lr,
                "grad_norm": norm, "mine": mine}

    def evaluate(self) -> dict[str, float]:
        """Held-out loss and perplexity."""
        return evaluate(self.model, self.eval_data, self.accelerator, self.settings.micro_batch_size, self.collate)

    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to the end (or to ``stop_after``), saving checkpoints; return the summary."""
        from mmedkit.train.tracking import Tracker

        cfg, settings, counters = self.cfg, self.settings, self.counters
        total = self.plan.total_steps

        # The record of the run: its config, the metric log and trackers, what is about to happen.
        if self.accelerator.is_main_process:
            import yaml

            atomic_write_text(self.out / "train_config.yaml",
                              yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
        tracker = Tracker(self.out, cfg.logging, self.accelerator, config=cfg.to_dict(),
                          run_id=self.data.fingerprint + ident_hash(self.identity), total_steps=total,
                          start_step=counters.step, console=self.console)
        for line in [*self.notes, *tracker.notes]:
            tracker.print(line)
        tracker.print(f"{cfg.stage} ({cfg.method}) of {cfg.model}: {total} steps of {settings.global_batch_size} "
                      f"sequences ({self.world} process(es) x {settings.micro_batch_size} x "
                      f"{self.accumulation_steps} accumulation), {len(self.data.epoch(0))} sequences in epoch 1, "
                      f"mixed precision {self.accelerator.mixed_precision}")
        tracker.print(self.layout)

        # Held-out loss before training (once per run: a resumed run keeps the first measurement).
        if self.eval_data is not None and counters.initial_eval is None:
            counters.initial_eval = self.evaluate()
            tracker.log(counters.step, counters.initial_eval, "eval")
            tracker.print(f"held-out loss {counters.initial_eval['loss']:.4f} (perplexity "
                          f"{counters.initial_eval['perplexity']:.2f}) at step {counters.step}")

        first_step, since_log, last_loss, speed = counters.step, _LogWindow(), None, 0.0
        with _StopFlag() as stop:
            for step, batches in step_batches(self.data, self.plan, counters.step, self.accelerator.process_index,
                                              self.collate, settings.num_workers):
                # Forward, backward and update.
                started = time.perf_counter()
                result = self.optimizer_step(batches)
                seconds = time.perf_counter() - started

                # Count tokens and time.
                counters.step = step + 1
                counters.useful += int(result["tokens"])
                counters.mine += result["mine"]
                counters.positions += int(result["positions"])
                counters.seconds += seconds
                if counters.first_loss is None:
                    counters.first_loss = result["nll"] / max(result["targets"], 1)
                since_log.add(result, seconds)
                eta = counters.seconds / (counters.step - first_step) * (total - counters.step)

                # Log the loss, learning rate and speed since the last log line.
                if counters.step % settings.log_every == 0 or counters.step == total:
                    last_loss, speed = since_log.loss, since_log.tokens_per_s
                    tracker.log(counters.step, {"loss": round(last_loss, 5), "lr": result["lr"],
                                                "grad_norm": result["grad_norm"], "tokens_per_s": round(speed, 1),
                                                "eta_s": round(eta, 1), "epoch": self.plan.locate(step)[0] + 1})
                    since_log = _LogWindow()
                tracker.advance(counters.step, f"loss {last_loss or float('nan'):.4f} lr {result['lr']:.2e} "
                                               f"{speed:,.0f} tok/s", eta)

                # Held-out loss every eval_every steps.
                if (self.eval_data is not None and settings.eval_every and counters.step % settings.eval_every == 0
                        and counters.step < total):
                    tracker.log(counters.step, self.evaluate(), "eval")

                # Checkpoint every save_every steps, at the end, and before stopping early.
                halt = self._agree(stop.set) or (stop_after is not None and stop_after <= counters.step < total)
                if counters.step % settings.save_every == 0 or halt or counters.step == total:
                    save_checkpoint(self.accelerator, self.out, counters.step, self.state(), settings.keep_checkpoints,
                                    self.optimizer, self.model)
                if halt:
                    tracker.print(f"stopped after step {counters.step} of {total}; checkpoint saved: rerun the "
                                  "same command to resume")
                    tracker.close()
                    return {"step": counters.step, "total_steps": total, "finished": False, "out": str(self.out)}

        # Held-out loss after training, the final model, the summary.
        final_eval = self.evaluate() if self.eval_data is not None else None
        if final_eval is not None:
            tracker.log(counters.step, final_eval, "eval")
        per_rank = self._per_rank_speed()
        if self.world > 1:
            tracker.print("tokens/s per rank: " + ", ".join(f"rank {r} {v:,.0f}" for r, v in enumerate(per_rank)))
        tracker.close()
        _save_final(self.accelerator, self.model, self.tokenizer, self.out, self.save_dtype)
        return self._summary(first_step, last_loss, final_eval, per_rank)

    def _per_rank_speed(self) -> list[float]:
        """Each rank's own non-padding tokens per second of its optimizer steps this session."""
        mine = self.counters.mine / max(self.counters.seconds, 1e-9)
        return [round(float(v), 1) for v in gather_from_ranks(self.accelerator, mine)]

    def _agree(self, flag: bool) -> bool:
        """True on every process when a stop signal reached any of them."""
        votes = self.accelerator.reduce(torch.tensor([float(flag)], device=self.accelerator.device), "sum")
        return bool(votes.item() > 0)

    def _summary(self, first_step: int, last_loss: float | None, final_eval: dict[str, Any] | None,
                 per_rank: list[float]) -> dict[str, Any]:
        counters, settings = self.counters, self.settings
        summary = {
            "stage": self.cfg.stage, "method": self.cfg.method, "model": self.cfg.model, "out": str(self.out),
            "finished": True, "steps": self.plan.total_steps, "steps_this_session": counters.step - first_step,
            "epochs": settings.epochs, "processes": self.world, "rank_layout": self.layout,
            "tokens_per_s_per_rank_this_session": per_rank, "global_batch_size": settings.global_batch_size,
            "mixed_precision": self.accelerator.mixed_precision, "data": self.data.describe(),
            "first_step_loss": counters.first_loss, "last_logged_loss": last_loss,
            "held_out_before": counters.initial_eval, "held_out_after": final_eval,
            "useful_tokens": counters.useful_before + counters.useful,
            "train_seconds": round(counters.seconds_before + counters.seconds, 2),
            "useful_tokens_per_s_this_session": (round(counters.useful / counters.seconds, 1) if counters.seconds
                                                 else None),
            "positions_this_session": counters.positions,
            "padding_fraction_this_session": (round(1 - counters.useful / counters.positions, 4)
                                              if counters.positions else None),
        }
        if self.accelerator.is_main_process:
            atomic_write_json(self.out / SUMMARY_FILE, summary)
        return summary


@dataclass
class _LogWindow:
    """Loss and speed since the last log line."""

    nll: float = 0.0
    targets: float = 0.0
    tokens: float = 0.0
    seconds: float = 0.0

    def add(self, result: dict[str, Any], seconds: float) -> None:
        """Count one optimizer step's ``result`` that took ``seconds``."""
        self.nll += result["nll"]
        self.targets += result["targets"]
        self.tokens += result["tokens"]
        self.seconds += seconds

    @property
    def loss(self) -> float:
        """Mean NLL per target token."""
        return self.nll / max(self.targets, 1.0)

    @property
    def tokens_per_s(self) -> float:
        """Non-padding tokens per second (all processes)."""
        return self.tokens / max(self.seconds, 1e-9)


def train(cfg: TrainConfig, *, stop_after: int | None = None, resume: bool = True,
          console: Any = None) -> dict[str, Any]:
    """Run (or resume) the training ``cfg`` describes; return the summary written to ``train_summary.json``.

    ``stop_after``: save a checkpoint and return after this global step (the schedule still spans the
    whole run), for jobs cut into time slots. SIGTERM/SIGINT do the same after the current step.
    """
    trainer = Trainer(cfg, console)
    try:
        if resume:
            trainer.resume()
        return trainer.run(stop_after)
    finally:
        trainer.close()


def _where(device: Any) -> str:
    """``host/device`` of this process (for the rank layout)."""
    import socket

    return f"{socket.gethostname()}/{device}"


def ident_hash(ident: dict[str, Any]) -> str:
    """Short stable hash of a run identity (the W&B run id, so a resumed run logs to the same run)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:8]


__all__ = ["Trainer", "evaluate", "train"]
