"""The training loop: exact resume, token-weighted accumulation, fine-tuned models in the benchmark engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmedkit.train.batches import collate, token_nll
from mmedkit.train.config import ConfigError, TrainConfig, load_config
from mmedkit.train.loop import train

QUIET = ["logging.progress=false", "logging.tensorboard=false"]




def _cfg(stage: str, model: Path, out: Path, *sets: str, corpus: Path | None = None,
         cache: Path | None = None) -> TrainConfig:
    extra = [f"data.sources=[{{path: '{corpus}'}}]", "data.seq_len=64", f"data.cache_dir='{cache}'"] if corpus else []
    cfg = load_config("tiny-cpu", stage, [*QUIET, *extra, *sets])
    cfg.model, cfg.out = str(model), str(out)
    return cfg


def _weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / name))


@pytest.mark.parametrize("stage,method", [("pretrain", "full"), ("sft", "lora")])
def test_stopped_and_resumed_run_reaches_the_same_weights(tmp_path: Path, tiny_model_dir: Path, corpus: Path,
                                                          stage: str, method: str) -> None:
    sets = ["train.max_steps=6", "train.global_batch_size=4", "train.micro_batch_size=2", "train.save_every=100",
            f"method={method}", "lora.dropout=0.2", "data.max_len=512" if stage == "sft" else "data.eval_fraction=0.1"]
    kw = {"corpus": corpus, "cache": tmp_path / "cache"} if stage == "pretrain" else {}
    whole = train(_cfg(stage, tiny_model_dir, tmp_path / "whole", *sets, **kw))
    first = train(_cfg(stage, tiny_model_dir, tmp_path / "cut", *sets, **kw), stop_after=3)
    assert first == {"step": 3, "total_steps": 6, "finished": False, "out": str(tmp_path / "cut")}
    ckpt = tmp_path / "cut" / "checkpoints" / "step-00000003"
    assert (ckpt / "trainer_state.json").is_file() and not (tmp_path / "cut" / "train_summary.json").exists()
    resumed = train(_cfg(stage, tiny_model_dir, tmp_path / "cut", *sets, **kw))
    assert resumed["steps_this_session"] == 3
    name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    a, b = _weights(tmp_path / "whole", name), _weights(tmp_path / "cut", name)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-6, atol=1e-7), k
    at3, at6 = _weights(ckpt, "model.safetensors"), _weights(ckpt.with_name("step-00000006"), "model.safetensors")
    assert any(not torch.equal(at3[k], at6[k]) for k in at3)  # steps 4-6 did change the weights
    assert whole["last_logged_loss"] == pytest.approx(resumed["last_logged_loss"], rel=1e-6)
    if stage == "pretrain":
        assert whole["held_out_after"] == resumed["held_out_after"]
    log = [json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in log if r["kind"] == "train"]
    assert train_steps == sorted(set(train_steps))  # no duplicated steps after the resume


def test_accumulation_weighs_every_token_alike(tmp_path: Path, tiny_model_dir: Path) -> None:
    """8 rows of different lengths in one pass, or in 4 accumulated passes of 2: the same update.

    A large Adam epsilon makes the update proportional to the gradient (Adam's first step is otherwise
    sign(gradient) x lr, which float noise on near-zero gradients flips), so weights compare closely.
    """
    sets = ["train.max_steps=2", "train.global_batch_size=8", "train.save_every=100", "data.langs=fr,ja",
            "train.warmup_ratio=0", "train.adam_eps=1.0", "train.lr=1.0"]
    train(_cfg("sft", tiny_model_dir, tmp_path / "one", *sets, "train.micro_batch_size=8"))
    train(_cfg("sft", tiny_model_dir, tmp_path / "four", *sets, "train.micro_batch_size=2"))
    a, b = _weights(tmp_path / "one", "model.safetensors"), _weights(tmp_path / "four", "model.safetensors")
    base = _weights(tiny_model_dir, "model.safetensors")
    moved = max((a[k] - base[k]).abs().max().item() for k in a)
    differ = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved > 1e-3 and differ < 1e-4 * moved, (moved, differ)


def test_resume_refuses_a_changed_configuration(tmp_path: Path, tiny_model_dir: Path) -> None:
    sets = ["train.max_steps=2", "train.save_every=1", "data.langs=en"]
    train(_cfg("sft", tiny_model_dir, tmp_path / "run", *sets), stop_after=1)
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.002 -> 0\.001"):
        train(_cfg("sft", tiny_model_dir, tmp_path / "run", *sets, "train.lr=1e-3"))
    done = train(_cfg("sft", tiny_model_dir, tmp_path / "run", *sets, "train.log_every=1"))  # logging may change
    assert done["finished"] and done["steps_this_session"] == 1


def _train_loss(model_dir: Path, rows: list, adapter: Path | None = None) -> float:
    from mmedkit.models.hf import load_model_and_tokenizer

    model, tok, _, _ = load_model_and_tokenizer(str(model_dir), dtype="float32", device="cpu",
                                                adapter=str(adapter) if adapter else None)
    nll, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), 8):
            b = collate(rows[i:i + 8], tok.pad_token_id)
            nll += token_nll(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
                             b["labels"]).item()
            n += int((b["labels"][:, 1:] != -100).sum())
    return nll / n


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora"])
def test_fine_tuning_lowers_training_loss_and_the_model_runs_in_the_benchmark(
        tmp_path: Path, tiny_model_dir: Path, method: str) -> None:
    from transformers import AutoTokenizer

    from mmedkit.bench.engine import RunConfig, run_benchmark
    from mmedkit.train.sft_data import build_sft_set

    cfg = _cfg("sft", tiny_model_dir, tmp_path / "out", "data.langs=en,es", "train.epochs=4", f"method={method}")
    summary = train(cfg)
    rows = build_sft_set(cfg.data, AutoTokenizer.from_pretrained(tiny_model_dir), epochs=1, seed=0).rows
    out = tmp_path / "out"
    adapter = out if method == "lora" else None
    before = _train_loss(tiny_model_dir, rows)
    after = _train_loss(tiny_model_dir if adapter else out, rows, adapter)
    assert after < before - 0.3, (before, after)  # nats per response token
    assert summary["last_logged_loss"] < summary["first_step_loss"]
    assert (out / ("adapter_model.safetensors" if adapter else "model.safetensors")).is_file()
    run = RunConfig(model=str(tiny_model_dir if adapter else out), data="demo", langs="en,es", limit=4,
                    model_options={"adapter": str(adapter) if adapter else None, "dtype": "float32"})
    results = run_benchmark(run, tmp_path / "bench", show_progress=False)
    assert results["metrics"]["overall"]["n"] == 8
    assert (tmp_path / "bench" / "samples.jsonl").is_file()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_gives_the_same_update(tmp_path: Path, tiny_model_dir: Path, method: str) -> None:
    sets = ["train.max_steps=2", "train.save_every=100", "data.langs=ru", f"method={method}", "lora.dropout=0"]
    train(_cfg("sft", tiny_model_dir, tmp_path / "plain", *sets))
    train(_cfg("sft", tiny_model_dir, tmp_path / "gc", *sets, "train.gradient_checkpointing=true"))
    name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    a, b = _weights(tmp_path / "plain", name), _weights(tmp_path / "gc", name)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
