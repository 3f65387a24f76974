"""What the multi-process paths need and one process never shows: the process group formed on CPUs (gloo) as on
GPUs (nccl) or a clear error, a timeout that outlasts the tokenisation, FSDP detection before the accelerator
exists, the rank layout, and RoPE frequencies kept in fp32."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch

from mmedkit.errors import MmedError

# Ranks wait at a barrier while the main process tokenises the corpus (the first run of a large corpus
# takes longer than torch's default 10 minutes).
PROCESS_GROUP_TIMEOUT = timedelta(hours=4)
_DYNAMIC_ROPE = ("dynamic", "longrope")  # these update inv_freq themselves, in fp32


def process_group_kwargs() -> dict[str, Any]:
    """``init_process_group`` settings (the explicit timeout), for the first ``PartialState``."""
    from accelerate.utils import InitProcessGroupKwargs

    return InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT).to_kwargs()


def launched_world_size() -> int:
    """The number of processes the launcher (torchrun, accelerate launch, mpirun) started; 1 when none did."""
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                raise MmedError(f"environment variable {name}={value!r} is not a number of processes") from None
    return 1


def use_cpu(world: int) -> bool:
    """Run on CPU processes: asked for (``accelerate launch --cpu``), or several processes and no GPU to give them.

    accelerate forms a gloo process group for CPU processes only when told they are CPU processes; without
    this, each process of ``torchrun --nproc_per_node 2`` on a machine without GPUs trains alone.
    """
    asked = os.environ.get("ACCELERATE_USE_CPU", "false").strip().lower() in ("1", "true", "yes")
    return asked or (world > 1 and not torch.cuda.is_available())


def init_processes() -> tuple[Any, bool]:
    """The process group (``PartialState``) and whether it is one of CPU processes.

    Raises :class:`MmedError` when the launcher started several processes and they do not form one group
    (each would otherwise train alone and write the same output folder).
    """
    from accelerate import PartialState

    world = launched_world_size()
    cpu = use_cpu(world)
    launched_one = "ACCELERATE_USE_CPU" in os.environ and not os.environ.get("LOCAL_RANK")
    if world == 1 and launched_one and os.environ.get("MASTER_ADDR"):
        # accelerate launch's one-process launcher, given --num_processes N>1, sets the rendezvous address only.
        raise MmedError("accelerate launch asked for several processes and started one: on CPUs it starts several "
                        "only through mpirun (--mpirun_hostfile), on GPUs only with a GPU per process; launch CPU "
                        "processes with torchrun --nproc_per_node N -m mmedkit.train.cli ... (see "
                        "docs/distributed.md)")
    if world > 1 and not cpu:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise MmedError(f"{world} processes were launched but this node has {torch.cuda.device_count()} GPU(s) "
                            f"for local rank {local}: launch at most one process per GPU (--nproc_per_node)")
    try:
        state = PartialState(cpu=cpu, **process_group_kwargs())
    except (RuntimeError, ValueError) as exc:
        raise MmedError(f"WORLD_SIZE={world} but the process group could not form ({exc}); check MASTER_ADDR, "
                        f"MASTER_PORT and that every rank was started") from exc
    if world > 1 and state.num_processes != world:
        raise MmedError(f"the launcher started {world} processes but they formed a group of {state.num_processes} "
                        f"({state.distributed_type}); each would train alone and write the same output folder")
    return state, cpu


def rank_layout(world: int, backend: str | None, devices: list[str]) -> str:
    """One line: world size, backend and each rank's device (``devices`` gathered from every rank, in rank order)."""
    if world == 1:
        return f"1 process on {devices[0]}"
    return f"{world} processes (backend {backend}): " + ", ".join(f"rank {r} {d}" for r, d in enumerate(devices))


def fsdp_requested() -> bool:
    """True when ``accelerate launch`` was given an FSDP config."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").strip().lower() in ("1", "true", "yes")


def check_sharding(distributed_type: Any) -> None:
    """Fail when the launch config asks for FSDP or DeepSpeed and accelerate formed a group without it.

    accelerate (1.x) turns FSDP and DeepSpeed on only in process groups of GPUs (or other accelerators); in a
    CPU (gloo) group it would silently train every process on the whole model instead.
    """
    asked = ("FSDP" if fsdp_requested() else
             "DEEPSPEED" if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").strip().lower() in ("1", "true")
             else None)
    have = str(distributed_type).split(".")[-1]
    if asked and have != asked:
        raise MmedError(f"the accelerate config asks for {asked} but the processes formed a {have} group: accelerate "
                        f"shards with FSDP or DeepSpeed on GPUs only, so on CPUs launch with the ddp config (or "
                        f"torchrun); see docs/distributed.md")


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
