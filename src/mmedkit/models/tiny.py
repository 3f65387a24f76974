"""Build tiny Llama-architecture models for tests and demos.

The model has random weights (seeded) and a byte-level BPE tokenizer trained on the given
text, so it follows exactly the code paths of a real Llama checkpoint while loading in a
fraction of a second. Its answers mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mmedkit.answer_format import ANSWER_PREFIX, ANSWER_SUFFIX
from mmedkit.assets import demo_root
from mmedkit.records import JSONL_SUFFIXES, read_records

TINY_NOTICE = "tiny random model built by `mmed model tiny`: its answers are not meaningful"

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def iter_texts(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Texts from ``.txt`` files, or from the string fields of JSONL records (folders: ``*.jsonl``, ``*.txt``)."""
    for p in paths:
        path = Path(p)
        files = sorted(path.rglob("*.jsonl")) + sorted(path.rglob("*.txt")) if path.is_dir() else [path]
        for f in files:
            if f.name.endswith(JSONL_SUFFIXES):
                for rec in read_records(f):
                    yield from _strings(rec.data)
            else:
                yield f.read_text(encoding="utf-8")


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 2048):  # -> PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer (BOS added like Llama's) and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    seed_text = [f"### Instruction:\n### Input:\n### Response:{ANSWER_PREFIX} A,C{ANSWER_SUFFIX}"]
    tok.train_from_iterator([*seed_text, *texts], trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        chat_template=CHAT_TEMPLATE, model_max_length=4096)


def save_random_model(out: str | os.PathLike[str], model_class: Any, config: Any, tokenizer: Any, *,
                      seed: int = 0) -> Any:
    """Build ``model_class(config)`` with seeded random weights; save it (safetensors) and ``tokenizer`` to ``out``.

    Every tiny model is written this way: the Llama models here and the BERT encoders of the tests.
    """
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    if model.can_generate():
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return model


def build_tiny_model(out: str | os.PathLike[str], *, text: Iterable[str | os.PathLike[str]] | None = None,
                     vocab_size: int = 2048, hidden_size: int = 64, layers: int = 2, heads: int = 4,
                     kv_heads: int = 2, intermediate_size: int = 172, max_positions: int = 4096,
                     seed: int = 0) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` (safetensors) and its tokenizer to ``out``.

    ``text`` lists files or folders to train the tokenizer on (default: the demo benchmark).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    sources = list(text) if text else [demo_root()]
    tokenizer = build_tokenizer(list(iter_texts(sources)), vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model = save_random_model(out, LlamaForCausalLM, config, tokenizer, seed=seed)
    out_dir = Path(out)
    (out_dir / "README.md").write_text(
        f"# Tiny test model\n\n{TINY_NOTICE}.\n\nLlama architecture, {model.num_parameters():,} parameters, "
        f"{config.num_hidden_layers} layers, hidden size {config.hidden_size}, vocabulary {config.vocab_size} "
        f"(byte-level BPE trained on {', '.join(str(s) for s in sources)}), seed {seed}.\n", encoding="utf-8")
    return out_dir
