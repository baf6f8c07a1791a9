"""Several processes training one run: PyTorch's DistributedDataParallel, set up our way.

torchrun (or `cyclestudio train --gpus N`, which runs it) starts one process per GPU
with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in
its environment. Each process builds the same CycleGAN; the four networks are wrapped
in DistributedDataParallel so every optimiser step uses the gradients averaged over
all processes (NCCL between GPUs, gloo between CPU processes). Batch norm becomes
synchronised batch norm on GPUs; instance norm, the paper's, needs nothing.

An iteration is one step of the *global* batch: ``world_size × --batch-size`` images,
each process taking its own slice of domain A and its own draws of domain B (see
:class:`cyclestudio.core.data.EpochBatches`). Each process keeps its own pool of past
fakes. Process 0 writes everything; the others only compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from cyclestudio.errors import UserError

# The environment torchrun gives each process it starts.
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """Which process this is among those training one run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True for the process that writes the run folder and reports (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains the run."""
        return self.world_size > 1


def from_env(env: dict[str, str] | None = None) -> Ranks:
    """This process's place, as torchrun's environment says (one process when unset)."""
    env = dict(os.environ if env is None else env)
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be numbers",
                        "start several processes with torchrun or `cyclestudio train --gpus N`"
                        ) from None
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"RANK {rank} does not fit WORLD_SIZE {world}",
                        "start several processes with torchrun or `cyclestudio train --gpus N`")
    return Ranks(rank, world, local)


def launched_by_torchrun() -> bool:
    """True when this process is one of several that torchrun started."""
    return from_env().distributed


def rank_device(choice: str, local_rank: int) -> torch.device:
    """The device one process trains on: its own GPU (cuda:LOCAL_RANK), or the CPU."""
    choice = (choice or "auto").strip().lower()
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "mps":
        raise UserError("several processes cannot share Apple MPS",
                        "train with one process, or use --device cpu")
    if choice.startswith("cuda:"):
        raise UserError(
            f"--device {choice} names one GPU, but each of several processes takes its own "
            "(cuda:LOCAL_RANK)", "use --device cuda (or auto); pick the GPUs with "
            "CUDA_VISIBLE_DEVICES")
    if choice not in ("auto", "cuda"):
        raise UserError(f"--device {choice} is not a device", "use auto, cpu or cuda")
    if not torch.cuda.is_available():
        if choice == "cuda":
            raise UserError("--device cuda: no CUDA GPU is available",
                            "use --device cpu to train with several CPU processes")
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise UserError(
            f"process {local_rank} on this machine has no GPU of its own: there are {count}",
            f"start at most {count} processes per machine (--gpus / --nproc-per-node)")
    return torch.device("cuda", local_rank)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_process_group(device: torch.device, timeout_s: float) -> None:
    """Join the other processes (each collective then fails after ``timeout_s``)."""
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=timedelta(seconds=timeout_s))


def shutdown() -> None:
    """Leave the process group (after the last collective)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def wrap(model: Any, ranks: Ranks) -> list[str]:
    """Make ``model`` (a CycleGAN) train with DDP; return warnings for the user.

    The networks themselves stay where they are (checkpoints, samples and the model
    file use them); ``model.step_nets`` holds their DDP wrappers for the training step.
    Each process keeps its own pool of fakes and its own random streams.
    """
    from torch.nn.parallel import DistributedDataParallel

    warnings: list[str] = []
    device = model.device
    names = ("G_A", "G_B", "D_A", "D_B")
    if any(_has_batch_norm(getattr(model, n)) for n in names):
        if device.type == "cuda":
            for n in names:
                # The new SyncBatchNorm layers share the old ones' parameters, so the
                # optimisers built before this keep working.
                setattr(model, n, nn.SyncBatchNorm.convert_sync_batchnorm(getattr(model, n)))
        else:
            warnings.append(
                "batch norm stays per process on CPUs (synchronised batch norm needs GPUs): "
                "each process normalises over its own slice of the batch")
    ids = [device.index] if device.type == "cuda" else None
    model.step_nets = {n: DistributedDataParallel(getattr(model, n), device_ids=ids)
                       for n in names}
    seed_rank_streams(model, ranks)
    return warnings


def seed_rank_streams(model: Any, ranks: Ranks) -> None:
    """Give every process but the first its own pool, colour-loss and dropout random streams.

    Rank 0 keeps the streams a single process has, so one process is not a special case.
    """
    if ranks.rank == 0:
        return
    seed = model.config.run.seed
    model.pool_rng.manual_seed(seed + 7 + 1_000_003 * ranks.rank)
    model.colour_rng.manual_seed(seed + 11 + 1_000_003 * ranks.rank)
    torch.manual_seed(seed + 1_000_003 * ranks.rank)


# -- what each process keeps to itself, in checkpoints ---------------------------------
def rank_state(model: Any) -> dict[str, Any]:
    """This process's own pools and random states (the networks are the same everywhere)."""
    full = model.state_dict()
    return {"pools": full["pools"], "rng": full["rng"], "colour": full["colour"]}


def gather_rank_states(model: Any, ranks: Ranks) -> list[dict[str, Any]] | None:
    """Every process's own state, on rank 0 (None elsewhere). A collective: all must call."""
    import torch.distributed as dist

    if not ranks.distributed:
        return None
    mine = rank_state(model) if not ranks.is_main else None  # rank 0's are the checkpoint's
    gathered: list[Any] | None = [None] * ranks.world_size if ranks.is_main else None
    dist.gather_object(mine, gathered, dst=0)
    return gathered


def restore_rank_state(model: Any, state: dict[str, Any], ranks: Ranks) -> None:
    """Give this process its own pools and random states back from a checkpoint.

    A checkpoint of N processes holds each one's; a process with no entry (the run
    now has more processes than it had) starts with an empty pool and fresh streams.
    """
    if ranks.rank == 0:
        return  # CycleGAN.load_state_dict restored rank 0's
    saved = state.get("rank_states") or []
    mine = saved[ranks.rank] if ranks.rank < len(saved) else None
    if mine is None:
        model.pool_A.load([], model.device)
        model.pool_B.load([], model.device)
        for match in model.colour.values():
            match.load({}, model.device)
        seed_rank_streams(model, ranks)
        return
    model.pool_A.load(mine["pools"]["A"], model.device)
    model.pool_B.load(mine["pools"]["B"], model.device)
    torch.set_rng_state(mine["rng"]["torch"])
    model.pool_rng.set_state(mine["rng"]["pool"])
    if "colour" in mine["rng"]:
        model.colour_rng.set_state(mine["rng"]["colour"])
    for key, match in model.colour.items():
        match.load(mine.get("colour", {}).get(key, {}), model.device)
    if "cuda" in mine["rng"] and model.device.type == "cuda":
        torch.cuda.set_rng_state(mine["rng"]["cuda"], model.device)


# -- agreeing across processes ----------------------------------------------------------
def mean_losses(sums: dict[str, float], ranks: Ranks) -> dict[str, float]:
    """Each loss summed over this process's steps, averaged over the processes."""
    import torch.distributed as dist

    if not ranks.distributed or not sums:
        return sums
    names = list(sums)  # the same order in every process: the step returns them so
    t = torch.tensor([sums[k] for k in names], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return {k: float(v) / ranks.world_size for k, v in zip(names, t.tolist(), strict=True)}


def any_flags(flags: list[bool], ranks: Ranks) -> list[bool]:
    """Element-wise OR of ``flags`` over every process (a collective: all must call)."""
    import torch.distributed as dist

    if not ranks.distributed:
        return flags
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def gather_errors(error: tuple[str, str] | None, ranks: Ranks) -> list[tuple[str, str] | None]:
    """Every process's set-up error (message, hint) or None, on every process."""
    import torch.distributed as dist

    if not ranks.distributed:
        return [error]
    everyone: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(everyone, error)
    return [tuple(e) if e else None for e in everyone]


def _comm_device() -> torch.device:
    """Where small tensors for collectives live: NCCL needs them on this process's GPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def schedule_world_size(state: dict[str, Any] | None, world_size: int) -> int:
    """The number of processes the run's schedule counts its iterations for.

    A run keeps the iterations of its schedule when it is resumed with another number
    of processes (see docs/distributed.md), so this is the world size it started with,
    carried from checkpoint to checkpoint.
    """
    if state is None:
        return world_size
    return int(state.get("schedule_world_size") or state.get("world_size") or 1)
