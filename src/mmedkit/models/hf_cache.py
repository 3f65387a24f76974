"""KV-cache helpers for the transformers backend: cache objects across transformers versions, and
the memo of shared prompt prefixes (the instruction preamble every MMedBench prompt of a language
opens with), computed once and reused by scoring and generation."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Number of leading tokens all sequences share."""
    first, n = seqs[0], min(len(s) for s in seqs)
    for i in range(n):
        tok = first[i]
        if any(s[i] != tok for s in seqs):
            return i
    return n


def cache_kwarg(model: Any) -> str:
    """``cache`` (transformers >= 5.20) or ``past_key_values``, as the underlying model names it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out: Any) -> Any:
    """The KV cache a forward pass returned."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def layer_kv(cache: Any) -> KV:
    """Per-layer (keys, values) of a cache object."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache, strict=True))
    return [(k, v) for k, v in cache]


def make_cache(kv: KV, config: Any) -> Any:
    """A ``DynamicCache`` holding ``kv`` (per layer keys and values)."""
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=config)
    except TypeError:
        cache = DynamicCache()
    for i, (k, v) in enumerate(kv):
        cache.update(k, v, i)
    return cache


class PrefixMemo:
    """KV caches of shared prompt prefixes (batch of one), the most recent ``size`` kept."""

    def __init__(self, model: Any, device: torch.device, *, min_len: int = 16, size: int = 8) -> None:
        self.model, self.device, self.min_len, self.size = model, device, min_len, size
        self._memo: dict[tuple[int, ...], KV] = {}

    def shared_len(self, prompts: Sequence[Sequence[int]]) -> int:
        """How many leading tokens of ``prompts`` to take from the memo: their common prefix (for a
        lone prompt, the longest memoized prefix it starts with), leaving at least one token of each
        prompt to run; 0 when shorter than ``min_len``."""
        if len(prompts) > 1:
            shared = common_prefix_len(prompts)
        else:
            shared = max((len(p) for p in self._memo if tuple(prompts[0][:len(p)]) == p), default=0)
        shared = min(shared, min(len(p) for p in prompts) - 1)
        return shared if shared >= self.min_len else 0

    def get(self, prefix: tuple[int, ...]) -> KV:
        """KV cache of ``prefix``, computed on first use."""
        hit = self._memo.get(prefix)
        if hit is None:
            out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1)
            hit = [(k.clone(), v.clone()) for k, v in layer_kv(output_cache(out))]
            if len(self._memo) >= self.size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[prefix] = hit
        return hit

    def cache_for(self, prefix: tuple[int, ...], rows: int) -> Any:
        """A cache object holding ``prefix`` for ``rows`` sequences (expanded views of one copy)."""
        kv = self.get(prefix)
        return make_cache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv],
                          self.model.config)


def preallocate(cache: Any, extra: int) -> Any:
    """Give every layer of ``cache`` room for ``extra`` more positions, written in place: a decoding
    step then appends its keys and values without copying the whole cache (``DynamicCache`` grows by
    concatenation, which copies it every step). Caches of another structure are returned unchanged."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(type(layer).__name__ == "DynamicLayer" and layer.is_initialized for layer in layers):
        return cache
    for i, layer in enumerate(layers):
        layers[i] = _RoomyLayer(layer, extra)
    return cache


def _roomy_base() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


class _RoomyLayer(_roomy_base()):  # type: ignore[misc]
    """A ``DynamicLayer`` whose keys and values are views into buffers with spare positions."""

    def __init__(self, layer: Any, extra: int) -> None:
        super().__init__()
        b, h, n, d = layer.keys.shape
        self.device, self.is_initialized = layer.keys.device, True
        self._k = layer.keys.new_empty((b, h, n + extra, d))
        self._v = layer.values.new_empty((b, h, n + extra, layer.values.shape[-1]))
        self._k[:, :, :n] = layer.keys
        self._v[:, :, :n] = layer.values
        self._n = n
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions into the buffers (growing them only when full)."""
        q = key_states.shape[-2]
        if self._n + q > self._k.shape[-2]:
            grow = max(q, self._k.shape[-2])
            self._k = torch.cat([self._k, self._k.new_empty((*self._k.shape[:2], grow, self._k.shape[-1]))], dim=-2)
            self._v = torch.cat([self._v, self._v.new_empty((*self._v.shape[:2], grow, self._v.shape[-1]))], dim=-2)
        self._k[:, :, self._n:self._n + q] = key_states
        self._v[:, :, self._n:self._n + q] = value_states
        self._n += q
        self.keys, self.values = self._k[:, :, :self._n], self._v[:, :, :self._n]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the sequences at ``indices``."""
        self._k, self._v = self._k[indices], self._v[indices]
        self.keys, self.values = self._k[:, :, :self._n], self._v[:, :, :self._n]

    def add_rows(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> int:
        """Append sequences whose cache is ``keys``/``values``, aligned to the right (left-padded); when
        they are longer than the cache, the cache is left-padded first. Returns the left padding added
        to the existing rows."""
        n_new = keys.shape[-2]
        shift = max(0, n_new - self._n)
        length = self._n + shift
        cap = max(self._k.shape[-2] + shift, length + room)
        old_k, old_v = self._k, self._v
        b_old, b_new = old_k.shape[0], keys.shape[0]
        self._k = old_k.new_zeros((b_old + b_new, old_k.shape[1], cap, old_k.shape[-1]))
        self._v = old_v.new_zeros((b_old + b_new, old_v.shape[1], cap, old_v.shape[-1]))
        self._k[:b_old, :, shift:length] = old_k[:, :, :self._n]
        self._v[:b_old, :, shift:length] = old_v[:, :, :self._n]
        self._k[b_old:, :, length - n_new:length] = keys
        self._v[b_old:, :, length - n_new:length] = values
        self._n = length
        self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]
        return shift


def can_join(cache: Any) -> bool:
    """Whether :func:`join_rows` can add sequences to ``cache`` (a :func:`preallocate`-d one)."""
    return all(isinstance(layer, _RoomyLayer) for layer in getattr(cache, "layers", [None]))


def join_rows(cache: Any, kv: KV, mask: torch.Tensor, new_mask: torch.Tensor, room: int) -> torch.Tensor:
    """Add the sequences of ``kv`` (a prefilled batch with 2-D mask ``new_mask``) to ``cache``, a
    :func:`preallocate`-d cache with 2-D mask ``mask``; returns the joint mask."""
    shift = 0
    for layer, (k, v) in zip(cache.layers, kv, strict=True):
        shift = layer.add_rows(k, v, room)
    length = mask.shape[1] + shift
    joint = mask.new_zeros((mask.shape[0] + new_mask.shape[0], length))
    joint[:mask.shape[0], shift:] = mask
    joint[mask.shape[0]:, length - new_mask.shape[1]:] = new_mask
    return joint
