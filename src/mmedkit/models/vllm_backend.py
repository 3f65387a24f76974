"""vLLM offline-engine backend for GPU users (``pip install 'mmedkit[vllm]'``).

vLLM is imported only when this backend is created. Log-likelihoods come from
``prompt_logprobs`` with automatic prefix caching on, so the shared context of an item's
candidates is computed once by the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
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

            kwargs["enable_lora"] = True
            self._lora = LoRARequest("adapter", 1, adapter)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def _render(self, prompt: Prompt, suffix: str = "") -> str:
        if isinstance(prompt, str):
            return prompt + suffix
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"model {self.name!r} has no chat template; use --format study")
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True) + suffix

    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        """Greedy generation for all requests in one engine call."""
        from vllm import SamplingParams

        prompts = [self._render(r.prompt) for r in requests]
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

        prompts, spans = [], []
        for req in requests:
            ctx = self._render(req.context, req.continuation_prefix)
            ctx_ids = self.tokenizer(ctx)["input_ids"]
            for cont in req.continuations:
                whole = self.tokenizer(ctx + cont)["input_ids"]
                n = len(ctx_ids) if whole[: len(ctx_ids)] == ctx_ids else len(whole) - len(
                    self.tokenizer(cont, add_special_tokens=False)["input_ids"])
                prompts.append(TokensPrompt(prompt_token_ids=whole))
                spans.append((n, whole))
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        flat = []
        for out, (n, whole) in zip(outs, spans, strict=True):
            lps = out.prompt_logprobs
            flat.append(sum(lps[i][whole[i]].logprob for i in range(n, len(whole))))
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
