"""What the GPU paths depend on, shown on CPU: RoPE kept fp32, native-bf16 detection, FSDP settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch

from mmedkit.models.hf import pick_dtype
from mmedkit.train.config import load_config
from mmedkit.train.gpu import fsdp_requested, keep_rope_fp32, process_group_kwargs
from mmedkit.train.loop import Trainer, resolve_mixed_precision

QUIET = ["logging.progress=false", "logging.tensorboard=false"]


def _rotary(model: torch.nn.Module) -> list[Any]:
    return [m for m in model.modules() if isinstance(getattr(m, "inv_freq", None), torch.Tensor)]


def test_rope_frequencies_stay_fp32_after_a_bf16_cast(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    (rotary,) = _rotary(model)
    exact = rotary.inv_freq.clone()
    assert exact.dtype == torch.float32
    assert keep_rope_fp32(model) == 1
    model.to(torch.bfloat16)
    assert rotary.inv_freq.dtype == torch.bfloat16  # what FSDP / DeepSpeed casts do to the buffer
    rotary.original_inv_freq.zero_()  # and RAM-efficient loading leaves zeros on ranks > 0
    model(input_ids=torch.tensor([[1, 5, 9]]))
    assert rotary.inv_freq.dtype == torch.float32 and torch.equal(rotary.inv_freq, exact)


def test_trainer_keeps_rope_fp32_with_bf16_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = load_config("tiny-cpu", "sft", [*QUIET, "train.model_dtype=bfloat16", "data.langs=en", "train.max_steps=1"])
    cfg.model, cfg.out = str(tiny_model_dir), str(tmp_path / "run")
    trainer = Trainer(cfg)
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    trainer.model(input_ids=torch.tensor([[1, 5, 9]]))
    assert all(m.inv_freq.dtype == torch.float32 for m in _rotary(trainer.model))
    assert not trainer.accelerator.gradient_state.plugin_kwargs.get("sync_each_batch")  # not FSDP


def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_mixed_precision("auto") == "no"  # a V100/T4 emulates bf16: fp32 with no mixed precision
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_mixed_precision("auto") == "bf16" and pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_mixed_precision("fp16") == "fp16"


def test_fsdp_detection_and_process_group_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert not fsdp_requested()
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert fsdp_requested()
    assert process_group_kwargs()["timeout"] >= timedelta(hours=1)  # torch's default is 10 minutes
