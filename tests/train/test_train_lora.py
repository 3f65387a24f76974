"""LoRA: target modules from the architecture, merged adapters equal to base + adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmedkit.train.config import LoraSettings
from mmedkit.train.lora import LoRAError, adapter_base, apply_lora, find_target_modules, merge_lora


def _base(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def test_target_modules_found_from_the_architecture(tiny_model_dir: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    llama = _base(tiny_model_dir)
    assert find_target_modules(llama) == ["q_proj", "v_proj"]
    assert find_target_modules(llama, ["q_proj", "k_proj", "o_proj"]) == ["q_proj", "k_proj", "o_proj"]
    assert find_target_modules(llama, "all-linear") == "all-linear"
    with pytest.raises(LoRAError, match=r"no linear layer named qkv.*down_proj"):
        find_target_modules(llama, ["qkv"])
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32))
    assert find_target_modules(gpt2) == ["c_attn"]  # fused query-key-value projection


def test_merged_lora_gives_the_same_logits_as_base_plus_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoTokenizer

    model = apply_lora(_base(tiny_model_dir), LoraSettings(r=8, alpha=16, dropout=0.1))
    assert model.peft_config["default"].target_modules == {"q_proj", "v_proj"}
    # peft starts B at zero (adapter = identity); make it a non-trivial adapter so the test can fail.
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    model.save_pretrained(tmp_path / "adapter")
    assert adapter_base(tmp_path / "adapter") == str(tiny_model_dir)
    merged = merge_lora(tmp_path / "adapter", tmp_path / "merged")
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok(["A 58-year-old man has crushing substernal chest pain; the ECG shows ST elevation in II, III, aVF."],
              return_tensors="pt")["input_ids"]
    with torch.no_grad():
        with_adapter = PeftModel.from_pretrained(_base(tiny_model_dir), tmp_path / "adapter").eval()(ids).logits
        merged_logits = _base(merged)(ids).logits
        base_logits = _base(tiny_model_dir)(ids).logits
    assert torch.allclose(with_adapter, merged_logits, atol=1e-5, rtol=1e-5)
    assert (with_adapter - base_logits).abs().max() > 1e-2
    with pytest.raises(LoRAError, match="not empty"):
        merge_lora(tmp_path / "adapter", tmp_path / "merged")
    with pytest.raises(LoRAError, match="no adapter_config.json"):
        merge_lora(tmp_path / "merged", tmp_path / "again")
