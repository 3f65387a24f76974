"""LoRA through peft: target modules found from the architecture, adapters merged into full models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from mmedkit.models.base import BackendError

# Query/value projections by the names architectures give them, most common first: q/v of Llama-like
# models (Llama, Mistral, Qwen, Gemma, InternLM 2.5+ in transformers), BERT-style, Meta's original code.
QV_NAMES = (("q_proj", "v_proj"), ("query", "value"), ("wq", "wv"))
# Fused query-key-value projections (InternLM 2 remote code, GPT-NeoX/Falcon, Phi-3, MPT, GPT-2).
FUSED_QKV = ("wqkv", "query_key_value", "qkv_proj", "Wqkv", "c_attn")


class LoRAError(BackendError):
    """LoRA set-up failed in a way the user can fix (usually by setting lora.target_modules)."""


def linear_names(model: Any) -> list[str]:
    """Leaf names of the linear layers of ``model`` (what peft's ``target_modules`` match)."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds = (*kinds, Conv1D)
    except ImportError:  # pragma: no cover - depends on the transformers version
        pass
    head = {"lm_head", "embed_out", "output"}
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, kinds)} - head)


def find_target_modules(model: Any, spec: str | list[str] = "auto") -> str | list[str]:
    """Resolve ``lora.target_modules``: ``auto`` finds the attention query/value projections."""
    names = linear_names(model)
    if spec == "all-linear":
        return spec
    if isinstance(spec, list):
        missing = [s for s in spec if s not in names]
        if missing:
            raise LoRAError(f"lora.target_modules: no linear layer named {', '.join(missing)} in this model "
                            f"(its linear layers: {', '.join(names)})")
        return list(spec)
    if spec != "auto":
        raise LoRAError(f"lora.target_modules: expected auto, all-linear or a list of names, got {spec!r}")
    for pair in QV_NAMES:
        if all(p in names for p in pair):
            return list(pair)
    for fused in FUSED_QKV:
        if fused in names:
            return [fused]
    raise LoRAError("lora.target_modules: could not find the attention query/value projections of "
                    f"{type(model).__name__}; set them explicitly (its linear layers: {', '.join(names)})")


def apply_lora(model: Any, settings: Any) -> Any:
    """Wrap ``model`` in a peft LoRA model from :class:`~mmedkit.train.config.LoraSettings`."""
    from peft import LoraConfig, get_peft_model

    targets = find_target_modules(model, settings.target_modules)
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets, bias=settings.bias, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def adapter_base(adapter: str | os.PathLike[str]) -> str:
    """The base model an adapter was trained on (from its ``adapter_config.json``)."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise LoRAError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    base = json.loads(path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise LoRAError(f"{path}: base_model_name_or_path is empty; pass --base")
    return str(base)


def merge_lora(adapter: str | os.PathLike[str], out: str | os.PathLike[str], *, base: str | None = None,
               dtype: str = "float32", trust_remote_code: bool = False, overwrite: bool = False) -> Path:
    """Write base + adapter as one full model (safetensors + tokenizer) to ``out``, atomically."""
    from transformers import AutoTokenizer

    from mmedkit.models.hf import load_model_and_tokenizer

    dest = Path(out)
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise LoRAError(f"{dest} exists and is not empty; choose another --out or pass --overwrite")
    base = base or adapter_base(adapter)
    model, tokenizer, _, _ = load_model_and_tokenizer(base, dtype=dtype, device="cpu", adapter=str(adapter),
                                                      trust_remote_code=trust_remote_code)
    merged = model.merge_and_unload()
    if (Path(adapter) / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(adapter)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest
