"""Stop and resume ends on the very weights of an uninterrupted run (bit for bit, not merely close): plain
checkpoints (safetensors model with tied embeddings, torch-saved optimizer with its Adam ``step`` tensors,
scheduler and RNG state) written every step, then read back by a fresh trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmedkit.train.config import TrainConfig, load_config
from mmedkit.train.loop import Trainer

STEPS = 6
SETS = ["logging.progress=false", "logging.tensorboard=false", f"train.max_steps={STEPS}", "train.save_every=1",
        "train.weight_decay=0.1", "train.warmup_steps=2", "train.global_batch_size=4", "train.micro_batch_size=2"]




def _cfg(stage: str, out: Path, model: Path, corpus: Path) -> TrainConfig:
    extra = ["data.langs=en"] if stage == "sft" else [
        f"data.sources=[{{path: '{corpus}'}}]", "data.seq_len=64", f"data.cache_dir='{out.parent / 'cache'}'"]
    cfg = load_config("tiny-cpu", stage, [*SETS, *extra])
    cfg.model, cfg.out = str(model), str(out)
    return cfg


def _train(cfg: TrainConfig, stop_after: int | None = None) -> dict[str, torch.Tensor]:
    trainer = Trainer(cfg)
    try:
        trainer.resume()
        summary = trainer.run(stop_after)
        assert summary.get("step", summary.get("steps")) == (stop_after or STEPS)
        weights = trainer.accelerator.unwrap_model(trainer.model).state_dict()
        return {k: v.detach().clone() for k, v in weights.items()}
    finally:
        trainer.close()


@pytest.mark.parametrize("stage", ["pretrain", "sft"])
def test_kill_and_resume_gives_the_uninterrupted_weights_bitwise(tmp_path: Path, tiny_model_dir: Path,
                                                                 corpus: Path, stage: str) -> None:
    straight = _train(_cfg(stage, tmp_path / "straight", tiny_model_dir, corpus))
    _train(_cfg(stage, tmp_path / "cut", tiny_model_dir, corpus), stop_after=STEPS // 2)
    resumed = _train(_cfg(stage, tmp_path / "cut", tiny_model_dir, corpus))
    assert straight.keys() == resumed.keys()
    differ = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not differ, f"{len(differ)} of {len(straight)} tensors differ after resume, e.g. {differ[:3]}: max abs " \
        f"diff {max(float((straight[k] - resumed[k]).abs().max()) for k in differ):.3g}"


def test_a_resume_at_another_cpu_thread_count_says_it_is_not_exact(tmp_path: Path, tiny_model_dir: Path,
                                                                   corpus: Path) -> None:
    """CPU sums over another number of threads round differently, so such a resume matches only to rounding:
    the trainer says so (the cause of a 1e-7 perplexity difference seen after a kill and resume)."""
    threads = torch.get_num_threads()
    _train(_cfg("sft", tmp_path / "cut", tiny_model_dir, corpus), stop_after=1)
    try:
        torch.set_num_threads(threads + 1)
        trainer = Trainer(_cfg("sft", tmp_path / "cut", tiny_model_dir, corpus))
        trainer.resume()
        trainer.close()
    finally:
        torch.set_num_threads(threads)
    assert any(f"with {threads + 1} CPU threads and the checkpoint was written with {threads}" in n
               for n in trainer.notes), trainer.notes
