"""What the multi-GPU paths need and one CPU never shows: a process-group timeout that outlasts the
tokenisation, FSDP detection before the accelerator exists, and RoPE frequencies kept in fp32."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch

# Ranks wait at a barrier while the main process tokenises the corpus (the first run of a large corpus
# takes longer than torch's default 10 minutes).
PROCESS_GROUP_TIMEOUT = timedelta(hours=4)
_DYNAMIC_ROPE = ("dynamic", "longrope")  # these update inv_freq themselves, in fp32


def process_group_kwargs() -> dict[str, Any]:
    """``init_process_group`` settings (the explicit timeout), for the first ``PartialState``."""
    from accelerate.utils import InitProcessGroupKwargs

    return InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT).to_kwargs()


def fsdp_requested() -> bool:
    """True when ``accelerate launch`` was given an FSDP config."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").strip().lower() in ("1", "true", "yes")


def _rope_fp32(module: Any) -> torch.Tensor | None:
    """A rotary embedding's inverse frequencies recomputed in fp32 from its config (None: not one)."""
    rope_type = getattr(module, "rope_type", "default")
    if rope_type in _DYNAMIC_ROPE or getattr(module, "config", None) is None:
        return None
    if rope_type == "default":
        init = getattr(module, "compute_default_rope_parameters", None)
    else:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

        init = ROPE_INIT_FUNCTIONS.get(rope_type)
    try:
        inv_freq = init(module.config)[0] if init is not None else None
    except (TypeError, KeyError, AttributeError):
        return None
    return inv_freq.float() if isinstance(inv_freq, torch.Tensor) else None


def keep_rope_fp32(model: torch.nn.Module) -> int:
    """Keep every rotary embedding's ``inv_freq`` in fp32, whatever casts the model later gets.

    ``model.to(bf16)``, FSDP buffer casting and DeepSpeed all turn the buffer into bf16 (a position
    error of about 1 radian at 2,048 tokens); FSDP RAM-efficient loading leaves zeros on ranks > 0.
    A forward pre-hook puts the fp32 values (computed from the config) back. Returns the modules hooked.
    """
    hooked = 0
    for module in model.modules():
        if not isinstance(getattr(module, "inv_freq", None), torch.Tensor):
            continue
        exact = _rope_fp32(module)
        if exact is None or exact.shape != module.inv_freq.shape:
            continue
        module.register_forward_pre_hook(_restore(exact))
        module.inv_freq = exact.to(module.inv_freq.device) if not module.inv_freq.is_meta else module.inv_freq
        hooked += 1
    return hooked


def _restore(exact: torch.Tensor) -> Any:
    """Forward pre-hook setting ``inv_freq`` to ``exact`` (one copy per device)."""
    copies: dict[torch.device, torch.Tensor] = {}

    def hook(module: Any, args: Any) -> None:
        device = module.inv_freq.device
        if device not in copies:
            copies[device] = exact.to(device)
        module.inv_freq = copies[device]

    return hook
