"""The hf backend: PEFT adapters, dtype/device resolution, generation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, build_prompt, loglikelihood_request
from mmedkit.models.base import BackendError, GenerationRequest
from mmedkit.models.hf import HFModel, pick_dtype


def test_lora_adapter_is_applied(tmp_path: Path, tiny_model_dir: Path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                     task_type="CAUSAL_LM"))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained adapter has non-zero B
    lora.save_pretrained(tmp_path / "adapter")
    merged = lora.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    AutoTokenizer = pytest.importorskip("transformers").AutoTokenizer
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "merged")

    reqs = [loglikelihood_request(it, PromptConfig())[0] for it in load_benchmark("demo", langs="en", limit=3)]
    plain = HFModel(str(tiny_model_dir)).loglikelihood(reqs)
    adapted_model = HFModel(str(tiny_model_dir), adapter=str(tmp_path / "adapter"))
    adapted = adapted_model.loglikelihood(reqs)
    reference = HFModel(str(tmp_path / "merged")).loglikelihood(reqs)
    assert adapted_model.info().details["adapter"] == str(tmp_path / "adapter")
    assert any(abs(a - b) > 1e-3 for ra, rb in zip(adapted, plain, strict=True) for a, b in zip(ra, rb, strict=True))
    for ra, rr in zip(adapted, reference, strict=True):
        assert ra == pytest.approx(rr, abs=1e-4)


def test_dtype_resolution_and_errors() -> None:
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(BackendError, match="unknown dtype 'float8'"):
        pick_dtype("float8", torch.device("cpu"))
    with pytest.raises(BackendError, match="could not load model"):
        HFModel("/nonexistent/model/path")


def test_batched_generation_equals_one_by_one(tiny_model_dir: Path) -> None:
    items = load_benchmark("demo", langs="en,zh,ru", limit=2)
    reqs = [GenerationRequest(build_prompt(it, PromptConfig()), max_new_tokens=10) for it in items]
    reqs.append(GenerationRequest(build_prompt(items[0], PromptConfig(format="chat")), max_new_tokens=10))
    batched = HFModel(str(tiny_model_dir), batch_size=8).generate(reqs)
    single = HFModel(str(tiny_model_dir), batch_size=1).generate(reqs)
    assert batched == single and all(isinstance(t, str) for t in batched)
