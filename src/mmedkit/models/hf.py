"""transformers backend: any causal LM from a local path or the Hugging Face hub.

Log-likelihood scoring runs a batch of items in one forward pass: each item's context once,
its candidates as a prefix tree after it (:mod:`mmedkit.models.hf_scoring`), the instruction
preamble the contexts share taken from a KV-cache memo (:mod:`mmedkit.models.hf_cache`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mmedkit.alpaca import render_messages
from mmedkit.models.base import (
    BackendError,
    GenerationRequest,
    LanguageModel,
    LoglikelihoodRequest,
    ModelInfo,
    Progress,
    Prompt,
    stop_at,
)
from mmedkit.models.hf_cache import PrefixMemo, cache_kwarg
from mmedkit.models.hf_generate import GreedyJob, greedy_generate
from mmedkit.models.hf_scoring import score_items

_TAIL_TOKENS = 4
_GROUP_TOKENS = 48

_DTYPES = {"auto": "auto", "float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA, then Apple MPS, then CPU."""
    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """Resolve ``auto`` to bf16 on GPUs with native support, fp16 on other GPUs, fp32 on CPU."""
    if dtype not in _DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; expected one of {', '.join(_DTYPES)}")
    if dtype != "auto":
        return _DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if cuda_bf16() else torch.float16
    return torch.float32


def cuda_bf16() -> bool:
    """True on GPUs with native bf16 (compute capability 8.0+), not on those that only emulate it."""
    if not torch.cuda.is_available():
        return False
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 does not count emulation
        return torch.cuda.is_bf16_supported()


def load_model_and_tokenizer(model: str, *, dtype: str = "auto", device: str | None = None,
                             adapter: str | None = None, trust_remote_code: bool = False,
                             revision: str | None = None) -> tuple[Any, Any, torch.device, torch.dtype]:
    """Load a causal LM and its tokenizer (safetensors only), with an optional PEFT adapter."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    common = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        tok = AutoTokenizer.from_pretrained(model, **common)
        kwargs = {**common, "use_safetensors": True}
        try:
            lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kwargs)
        except TypeError:  # transformers < 4.56 names it torch_dtype
            lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch_dtype, **kwargs)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only local paths and cached hub models work)" if offline else ""
        raise BackendError(f"could not load model {model!r}{hint}: {exc}") from exc
    if adapter:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise BackendError("--adapter needs peft: pip install 'mmedkit[eval]'") from exc
        lm = PeftModel.from_pretrained(lm, adapter)
    if not any(p.is_meta for p in lm.parameters()):  # meta: FSDP RAM-efficient loading, filled by rank 0
        lm.to(dev)
    lm.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return lm, tok, dev, torch_dtype


def render_prompt(tokenizer: Any, name: str, prompt: Prompt, suffix: str = "") -> tuple[str, bool]:
    """Prompt as text, and whether tokenizer special tokens (BOS) should still be added: not for chat
    messages, whose rendered template already starts with them. Without a chat template, messages are
    rendered with the study's Alpaca prompt (:func:`mmedkit.alpaca.render_messages`)."""
    if isinstance(prompt, str):
        return prompt + suffix, True
    if not getattr(tokenizer, "chat_template", None):  # a base model: the study's Alpaca prompt
        return render_messages(prompt) + suffix, True
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True) + suffix, False


def encode(tokenizer: Any, text: str, special: bool) -> list[int]:
    """Token ids of ``text``, with the tokenizer's special tokens when ``special``."""
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def split_continuation(tokenizer: Any, context: str, continuation: str, special: bool) -> tuple[list[int], list[int]]:
    """Tokens of context and continuation, tokenized together so the split matches how the
    model reads ``context + continuation``."""
    ctx = encode(tokenizer, context, special)
    whole = encode(tokenizer, context + continuation, special)
    if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
        return ctx, whole[len(ctx):]
    return ctx, encode(tokenizer, continuation, False)


def generation_kwargs(tokenizer: Any, max_new_tokens: int, temperature: float,
                      stop: Sequence[str] = ()) -> dict[str, Any]:
    """``generate()`` settings: greedy at temperature 0 (sampling settings cleared), stop strings."""
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
                              "do_sample": temperature > 0}
    if temperature > 0:
        kwargs["temperature"] = temperature
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
    return kwargs


class HFModel(LanguageModel):
    """A transformers causal LM, batched, with shared-prefix log-likelihood scoring."""

    backend_name = "hf"

    def __init__(self, model: str, *, dtype: str = "auto", device: str | None = None,
                 adapter: str | None = None, batch_size: int = 8, max_candidate_rows: int = 256,
                 trust_remote_code: bool = False, revision: str | None = None,
                 max_length: int | None = None, min_shared_prefix: int = 16) -> None:
        self.name = model
        self.adapter = adapter
        self.model, self.tokenizer, self.device, self.dtype = load_model_and_tokenizer(
            model, dtype=dtype, device=device, adapter=adapter, trust_remote_code=trust_remote_code,
            revision=revision)
        self.batch_size = max(1, batch_size)
        self.max_candidate_rows = max(1, max_candidate_rows)
        self.max_length = max_length or getattr(self.model.config, "max_position_embeddings", None)
        self._cache_kw = cache_kwarg(self.model)
        self.min_shared_prefix = min_shared_prefix
        self._prefixes = PrefixMemo(self.model, self.device, min_len=min_shared_prefix)
        self.tokens_computed = 0
        """Tokens fed to the model by scoring and generation so far (padding excluded)."""
        self._tail_memo: dict[tuple[str, str], tuple[list[int], list[int] | None]] = {}

    # ------------------------------------------------------------------ text
    def render(self, prompt: Prompt, suffix: str = "") -> tuple[str, bool]:
        """Prompt as text, and whether tokenizer special tokens should still be added."""
        return render_prompt(self.tokenizer, self.name, prompt, suffix)

    def encode(self, text: str, special: bool) -> list[int]:
        """Token ids of ``text``."""
        return encode(self.tokenizer, text, special)

    def split_continuation(self, context: str, continuation: str, special: bool) -> tuple[list[int], list[int]]:
        """Tokens of context and continuation (see :func:`split_continuation`)."""
        return split_continuation(self.tokenizer, context, continuation, special)

    def encode_request(self, context: str, continuations: Sequence[str],
                       special: bool) -> tuple[list[int], list[list[int]]]:
        """Context tokens once, and each continuation's tokens as :meth:`split_continuation` gives them.

        Re-tokenizing the whole context for every candidate is the slow part of scoring on a
        small model, so each continuation is tokenized after only the last few context tokens
        (memoized: every MMedBench prompt ends in the same ``###Answer: OPTION``). That shortcut
        is taken only when the tail tokenizes in isolation exactly as inside the context;
        otherwise the full context is re-tokenized.
        """
        if not getattr(self.tokenizer, "is_fast", False):
            return self.encode(context, special), [self.split_continuation(context, c, special)[1]
                                                   for c in continuations]
        enc = self.tokenizer(context, add_special_tokens=special, return_offsets_mapping=True)
        ctx, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        out = []
        for cont in continuations:
            ids = self._tail_continuation(context, ctx, offsets, cont)
            out.append(ids if ids is not None else self.split_continuation(context, cont, special)[1])
        return ctx, out

    def _tail_continuation(self, context: str, ctx: list[int], offsets: Sequence[tuple[int, int]],
                           cont: str) -> list[int] | None:
        if len(ctx) <= _TAIL_TOKENS + 1:
            return None
        start, end = offsets[-_TAIL_TOKENS]
        if end <= start or offsets[-1][1] != len(context):
            return None
        key = (context[start:], cont)
        hit = self._tail_memo.get(key)
        if hit is None:
            tail_ids = self.encode(key[0], False)
            whole = self.encode(key[0] + cont, False)
            ok = whole[: len(tail_ids)] == tail_ids and len(whole) > len(tail_ids)
            hit = (tail_ids, whole[len(tail_ids):] if ok else None)
            if len(self._tail_memo) < 100_000:
                self._tail_memo[key] = hit
        tail_ids, cont_ids = hit
        return cont_ids if cont_ids is not None and tail_ids == ctx[-_TAIL_TOKENS:] else None

    # ------------------------------------------------------------ scoring
    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      progress: Progress = None) -> list[list[float]]:
        """Summed log-probability of each continuation, one context pass per item."""
        encoded: list[tuple[list[int], list[list[int]]]] = []
        for req in requests:
            ctx_text, special = self.render(req.context, req.continuation_prefix)
            ctx_ids, conts = self.encode_request(ctx_text, req.continuations, special)
            if not conts or any(not c for c in conts):
                raise BackendError("every log-likelihood request needs non-empty continuations")
            encoded.append((ctx_ids, conts))
        # Contexts sharing their opening tokens go together (so their common part is computed once),
        # longest first within such a group (little padding).
        order = sorted(range(len(encoded)), key=lambda i: (encoded[i][0][:_GROUP_TOKENS], -len(encoded[i][0])))
        results: list[list[float]] = [[] for _ in encoded]
        batch: list[int] = []
        rows = 0
        for idx in order:
            n = len(encoded[idx][1])
            if batch and (len(batch) >= self.batch_size or rows + n > self.max_candidate_rows):
                self._score_batch([encoded[i] for i in batch], batch, results)
                if progress:
                    progress(len(batch))
                batch, rows = [], 0
            batch.append(idx)
            rows += n
        if batch:
            self._score_batch([encoded[i] for i in batch], batch, results)
            if progress:
                progress(len(batch))
        return results

    def _score_batch(self, enc: list[tuple[list[int], list[list[int]]]], ids: list[int],
                     results: list[list[float]]) -> None:
        scores, fed = score_items(self.model, self._cache_kw, self._prefixes, [c for c, _ in enc],
                                  [conts for _, conts in enc], self.tokenizer.pad_token_id, self.dtype, self.device)
        self.tokens_computed += fed
        for i, s in zip(ids, scores, strict=True):
            results[i] = s

    @torch.inference_mode()
    def loglikelihood_naive(self, context: str, continuation: str, special: bool = True) -> float:
        """Reference scorer: one full forward pass over ``context + continuation`` (log-softmax in float64:
        in float32 its rounding over a large vocabulary reaches 1e-4 on a 9-token continuation)."""
        ctx, cont = self.split_continuation(context, continuation, special)
        ids = torch.tensor([ctx + cont], device=self.device)
        logits = self.model(input_ids=ids).logits[0].double()
        lp = F.log_softmax(logits[len(ctx) - 1:-1], dim=-1)
        return lp.gather(1, torch.tensor(cont, device=self.device)[:, None]).sum().item()

    @torch.inference_mode()
    def prompt_logprobs(self, text: str, special: bool = True) -> list[tuple[str, int, float | None]]:
        """Per token of ``text``: (token text, character offset, log-probability given the tokens
        before it; None for the first). Serves OpenAI ``echo`` + ``logprobs`` requests."""
        enc = self.tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        keep = [i for i, (a, b) in enumerate(offsets) if b > a or i == 0]
        logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        lp = F.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:], device=self.device)[:, None])
        out: list[tuple[str, int, float | None]] = []
        for i in keep:
            a, b = offsets[i]
            if b <= a:  # special token such as BOS: no text, conditions what follows
                continue
            out.append((text[a:b], a, None if i == 0 else lp[i - 1, 0].item()))
        return out

    # ---------------------------------------------------------- generation
    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        """Greedy generation (:mod:`mmedkit.models.hf_generate`), or sampled for requests with a
        temperature; batched, longest prompts first."""
        rendered = [self.render(r.prompt) for r in requests]
        prompts = [self.encode(text, special) for text, special in rendered]
        outs: list[str] = [""] * len(requests)
        greedy = sorted((i for i, r in enumerate(requests) if r.temperature <= 0), key=lambda i: -len(prompts[i]))
        for s in range(0, len(greedy), 8 * self.batch_size):  # progress reported every 8 batches' worth
            idx = greedy[s:s + 8 * self.batch_size]
            jobs = [GreedyJob(prompts[i], requests[i].max_new_tokens, requests[i].stop) for i in idx]
            texts, fed = greedy_generate(self.model, self.tokenizer, self._cache_kw, self._prefixes, jobs,
                                         self.device, self.batch_size)
            self.tokens_computed += fed
            for i, text in zip(idx, texts, strict=True):
                outs[i] = text
            if progress:
                progress(len(idx))
        sampled = sorted((i for i, r in enumerate(requests) if r.temperature > 0), key=lambda i: -len(prompts[i]))
        for s in range(0, len(sampled), self.batch_size):
            idx = sampled[s:s + self.batch_size]
            for special in (True, False):
                group = [i for i in idx if rendered[i][1] == special]
                if group:
                    for i, text in zip(group, self._generate_group(group, rendered, requests, special), strict=True):
                        outs[i] = text
            if progress:
                progress(len(idx))
        return outs

    def _generate_group(self, group: list[int], rendered: list[tuple[str, bool]],
                        requests: Sequence[GenerationRequest], special: bool) -> list[str]:
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok([rendered[i][0] for i in group], return_tensors="pt", padding=True,
                      add_special_tokens=special).to(self.device)
        finally:
            tok.padding_side = side
        max_new = max(requests[i].max_new_tokens for i in group)
        temperature = max(requests[i].temperature for i in group)
        stops = sorted({s for i in group for s in requests[i].stop if s})
        out = self.model.generate(**enc, **generation_kwargs(tok, max_new, temperature, stops))
        new = out[:, enc["input_ids"].shape[1]:]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        return [stop_at(t, requests[i].stop) for i, t in zip(group, texts, strict=True)]

    def info(self) -> ModelInfo:
        """Model name, adapter, dtype and device."""
        return ModelInfo(self.backend_name, self.name, {
            "adapter": self.adapter, "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device), "batch_size": self.batch_size,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        })
