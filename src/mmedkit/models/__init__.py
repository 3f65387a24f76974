"""Loading and talking to language models: one interface, several backends."""

from __future__ import annotations

from typing import Any

from mmedkit.models.base import (
    BackendError,
    GenerationRequest,
    LanguageModel,
    LoglikelihoodRequest,
    ModelInfo,
)

BACKENDS = ("hf", "openai", "vllm")

__all__ = ["BACKENDS", "BackendError", "GenerationRequest", "LanguageModel", "LoglikelihoodRequest",
           "ModelInfo", "load_model"]


def load_model(backend: str, model: str, **options: Any) -> LanguageModel:
    """Create a model backend by name; options not used by the backend are ignored if None.

    ``hf``: dtype, device, adapter, batch_size, trust_remote_code, revision.
    ``openai``: base_url, api_key_env, concurrency, timeout, max_retries, tokenizer, item_timeout, run_timeout,
    probe, probe_timeout.
    ``vllm``: dtype, adapter, tensor_parallel_size, gpu_memory_utilization, trust_remote_code.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    if backend == "hf":
        from mmedkit.models.hf import HFModel

        return HFModel(model, **_only(opts, "dtype", "device", "adapter", "batch_size", "trust_remote_code",
                                      "revision", "max_candidate_rows"))
    if backend == "openai":
        from mmedkit.models.openai_backend import OpenAIModel

        return OpenAIModel(model, **_only(opts, "base_url", "api_key_env", "concurrency", "timeout",
                                          "max_retries", "tokenizer", "item_timeout", "run_timeout", "probe",
                                          "probe_timeout"))
    if backend == "vllm":
        from mmedkit.models.vllm_backend import VLLMModel

        return VLLMModel(model, **_only(opts, "dtype", "adapter", "tensor_parallel_size",
                                        "gpu_memory_utilization", "trust_remote_code", "max_model_len"))
    raise BackendError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def _only(opts: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: opts[k] for k in names if k in opts}
