"""Fine-tuning samples: the benchmark's own prompts, loss only on the response, padding and packing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmedkit.bench.engine import RunConfig
from mmedkit.bench.extract import extract_answer
from mmedkit.bench.items import DataError
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import build_prompt
from mmedkit.train.batches import collate, target_count
from mmedkit.train.config import SFTData
from mmedkit.train.sft_data import build_sft_set, pack_samples, row, sample_texts, tokenize_sample


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_samples_are_the_benchmark_prompts_with_the_prompt_masked_exactly(tok) -> None:
    items = load_benchmark("demo", split="train")
    n = 0
    for it in items:
        texts = sample_texts(it, ["rationale", "answer"])
        assert [v for v, _, _ in texts] == (["rationale", "answer"] if it.rationale else ["answer"])
        for variant, prompt, response in texts:
            # The prompt the engine sends in generate mode, for the same setting, in the study's training
            # wording (its rationale instruction has one space after "step-by-step.", inference two).
            engine = RunConfig(model="m", mode="generate", rationale=variant == "rationale").prompt
            assert prompt == build_prompt(it, engine, training=True)
            assert prompt.replace("step-by-step. ", "step-by-step.  ") == build_prompt(it, engine)
            assert extract_answer(response, it.options, it.language, it.multi_answer).letters == it.answer
            s = tokenize_sample(tok, it.id, variant, prompt, response)
            prompt_ids = tok(prompt)["input_ids"]
            assert s.n_prompt == len(prompt_ids) and s.input_ids[:s.n_prompt].tolist() == prompt_ids
            labels = s.labels
            assert (labels[:s.n_prompt] == -100).all()  # the whole prompt, BOS included ...
            assert (labels[s.n_prompt:] == s.input_ids[s.n_prompt:]).all() and (labels[s.n_prompt:] >= 0).all()
            assert tok.decode(s.input_ids[s.n_prompt:]) == response + tok.eos_token  # ... and nothing else
            n += 1
    assert n == 120


def test_padding_is_masked_and_only_response_tokens_count(tok) -> None:
    data = SFTData(path="demo", langs="fr,ja")
    sft = build_sft_set(data, tok, epochs=2, seed=0)
    rows = [sft.rows[i] for i in range(6)]
    batch = collate(rows, tok.pad_token_id)
    lengths = [len(r["input_ids"]) for r in rows]
    assert batch["input_ids"].shape == (6, max(lengths))
    for i, n in enumerate(lengths):
        assert batch["attention_mask"][i, :n].all() and not batch["attention_mask"][i, n:].any()
        assert (batch["labels"][i, n:] == -100).all()
        assert batch["labels"][i, :n].tolist() == rows[i]["labels"].tolist()
    assert target_count(batch) == sum(int((r["labels"] != -100).sum()) for r in rows)
    assert sft.stats["samples"] == 40 and sft.stats["per_variant"] == {"rationale": 20, "answer": 20}
    orders = [[id(sft.epoch(e)[i]) for i in range(len(sft.rows))] for e in (0, 1)]
    assert orders[0] != orders[1]  # reshuffled each epoch ...
    assert sorted(orders[1]) == sorted(id(r) for r in sft.rows)  # ... each row once


def test_packing_keeps_samples_whole_with_their_masks(tok) -> None:
    items = load_benchmark("demo", split="train", langs="en,zh,es")
    samples = [tokenize_sample(tok, it.id, v, p, r) for it in items for v, p, r in sample_texts(it, ["rationale",
                                                                                                    "answer"])]
    groups = pack_samples(samples, 1400)
    assert [s for g in groups for s in g] == samples
    assert all(sum(len(s.input_ids) for s in g) <= 1400 for g in groups) and len(groups) < len(samples)
    packed = [row(g) for g in groups]
    flat = np.concatenate([s.labels for s in samples])
    assert np.concatenate([r["labels"] for r in packed]).tolist() == flat.tolist()
    sft = build_sft_set(SFTData(path="demo", langs="en,zh,es", packing=True, max_len=1400), tok, epochs=1, seed=0)
    assert sft.stats["rows"] == len(groups)


def test_chat_format_uses_the_chat_template(tok) -> None:
    it = load_benchmark("demo", split="train", langs="ru")[0]
    (variant, prompt, response), = sample_texts(it, ["answer"], "chat")
    assert isinstance(prompt, list) and prompt[-1]["role"] == "user"
    s = tokenize_sample(tok, it.id, variant, prompt, response)
    rendered = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert s.input_ids[:s.n_prompt].tolist() == tok(rendered, add_special_tokens=False)["input_ids"]
    assert rendered.endswith("<|assistant|>\n")


def test_items_without_rationale_are_counted_and_reported(tok, tmp_path, caplog) -> None:
    from dataclasses import replace

    from mmedkit.bench.loader import write_benchmark

    items = load_benchmark("demo", split="train", langs="fr")
    write_benchmark([replace(it, rationale=None) if i < 3 else it for i, it in enumerate(items)], tmp_path)
    with caplog.at_level("WARNING", logger="mmedkit.train.sft_data"):
        sft = build_sft_set(SFTData(path=str(tmp_path), langs="fr"), tok, epochs=1, seed=0)
    assert sft.stats["no_rationale"] == 3 and sft.stats["per_variant"]["rationale"] == len(items) - 3
    assert f"3 of {len(items)} items have no rationale" in caplog.text


def test_too_long_samples_are_dropped_and_counted(tok) -> None:
    sft = build_sft_set(SFTData(path="demo", langs="fr", max_len=400), tok, epochs=1, seed=0)
    assert sft.stats["dropped_too_long"] > 0
    assert sft.stats["samples"] + sft.stats["dropped_too_long"] == 20
    assert all(len(r["input_ids"]) <= 400 for r in sft.rows)
    with pytest.raises(DataError, match="no training samples"):
        build_sft_set(SFTData(path="demo", langs="fr", max_len=10), tok, epochs=1, seed=0)
