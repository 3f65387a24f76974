"""Test fixture: small random BERT encoders with a WordPiece vocabulary, for tests and timing.

The encoder has the architecture of bert-base-multilingual-cased (WordPiece, cased, CJK characters
split, accents kept) at any size, so BERTScore runs the code path of the real model offline. Its
weights are random: its scores mean nothing, its speed is that of a model of its size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mmedkit.assets import demo_root
from mmedkit.models.tiny import iter_texts, save_random_model


def build_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = 4000):  # -> BertTokenizerFast
    """Train a cased WordPiece tokenizer on ``texts`` and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                             show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=False, model_max_length=512)


def build_tiny_bert(out: str | os.PathLike[str], *, text: Iterable[str | os.PathLike[str]] | None = None,
                    vocab_size: int = 4000, hidden_size: int = 32, layers: int = 2, heads: int = 2,
                    intermediate_size: int = 64, embedding_rows: int | None = None, seed: int = 0) -> Path:
    """Write a random ``BertModel`` (safetensors) and its WordPiece tokenizer to ``out``.

    ``text`` lists files or folders to train the vocabulary on (default: the demo benchmark).
    ``hidden_size=768, layers=12, heads=12, intermediate_size=3072`` and ``embedding_rows=119547`` give an
    encoder of bert-base-multilingual-cased's size (rows past the trained vocabulary are never used).
    """
    from transformers import BertConfig, BertModel

    sources = list(text) if text else [demo_root()]
    tokenizer = build_wordpiece_tokenizer(list(iter_texts(sources)), vocab_size=vocab_size)
    config = BertConfig(vocab_size=max(len(tokenizer), embedding_rows or 0), hidden_size=hidden_size,
                        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate_size,
                        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    save_random_model(out, BertModel, config, tokenizer, seed=seed)
    return Path(out)
