"""vLLM offline-engine backend for GPU users (``pip install 'mmedkit[vllm]'``).

vLLM is imported only when this backend is created. Prompts go to the engine as token ids built
here exactly as the hf backend builds them (a rendered chat template already starts with the BOS, so
no second one is added). Log-likelihoods come from ``prompt_logprobs``, without detokenising.
vLLM V1 does not read the prefix cache for requests that ask for prompt log-probabilities, so each
candidate recomputes its context: prefer the hf backend for large multiple-choice runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from mmedkit.models.hf import encode, render_prompt, split_continuation

_LORA_RANKS = (16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted max_lora_rank values (default 16)


def prompt_token_ids(tokenizer: Any, name: str, prompt: Prompt) -> list[int]:
    """Token ids of a generation prompt: one BOS, whether the prompt is text or chat messages."""
    text, special = render_prompt(tokenizer, name, prompt)
    return encode(tokenizer, text, special)


def scoring_token_ids(tokenizer: Any, name: str,
                      requests: Sequence[LoglikelihoodRequest]) -> list[tuple[list[int], int]]:
    """Per candidate of every request, in order: (context + continuation token ids, context length)."""
    out = []
    for req in requests:
        context, special = render_prompt(tokenizer, name, req.context, req.continuation_prefix)
        for cont in req.continuations:
            ctx, cont_ids = split_continuation(tokenizer, context, cont, special)
            out.append((ctx + cont_ids, len(ctx)))
    return out


def lora_rank(adapter: str) -> int:
    """The ``max_lora_rank`` vLLM needs for ``adapter`` (its rank rounded up to an accepted value)."""
    try:
        rank = int(json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8")).get("r", 16))
    except (OSError, ValueError, TypeError):
        return 64
    return next((r for r in _LORA_RANKS if r >= rank), rank)


class VLLMModel(LanguageModel):
    """A model served by vLLM's in-process engine."""

    backend_name = "vllm"

    def __init__(self, model: str, *, dtype: str = "auto", adapter: str | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 trust_remote_code: bool = False, max_model_len: int | None = None) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendError("the vllm backend needs vLLM and a GPU: pip install 'mmedkit[vllm]'") from exc
        self.name, self.adapter = model, adapter
        self._lora = None
        kwargs: dict[str, Any] = {"model": model, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
                                  "gpu_memory_utilization": gpu_memory_utilization,
                                  "trust_remote_code": trust_remote_code, "enable_prefix_caching": True}
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if adapter:
            from vllm.lora.request import LoRARequest

            kwargs.update(enable_lora=True, max_lora_rank=lora_rank(adapter))
            self._lora = LoRARequest("adapter", 1, adapter)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        """Greedy generation for all requests in one engine call."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=prompt_token_ids(self.tokenizer, self.name, r.prompt))
                   for r in requests]
        params = [SamplingParams(temperature=r.temperature, max_tokens=r.max_new_tokens,
                                 stop=list(r.stop) or None) for r in requests]
        outs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        if progress:
            progress(len(requests))
        return [stop_at(o.outputs[0].text, r.stop) for o, r in zip(outs, requests, strict=True)]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      progress: Progress = None) -> list[list[float]]:
        """Sum of prompt log-probabilities over each continuation's tokens."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        spans = scoring_token_ids(self.tokenizer, self.name, requests)
        prompts = [TokensPrompt(prompt_token_ids=ids) for ids, _ in spans]
        # prompt_logprobs=1 (not 0: early V1 releases fail on 0) still includes each actual token.
        params = SamplingParams(max_tokens=1, prompt_logprobs=1, temperature=0.0, detokenize=False)
        outs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        flat = []
        for out, (ids, n) in zip(outs, spans, strict=True):
            lps = out.prompt_logprobs
            flat.append(sum(lps[i][ids[i]].logprob for i in range(n, len(ids))))
        if progress:
            progress(len(requests))
        results, k = [], 0
        for req in requests:
            results.append(flat[k:k + len(req.continuations)])
            k += len(req.continuations)
        return results

    def info(self) -> ModelInfo:
        """Model name and adapter."""
        return ModelInfo(self.backend_name, self.name, {"adapter": self.adapter})
