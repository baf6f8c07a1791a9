"""The training configuration: small frozen dataclasses, saved as a versioned config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError

CONFIG_VERSION = 1

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
GAN_LOSSES = ("lsgan", "vanilla", "hinge", "wgangp")
LR_POLICIES = ("linear", "cosine", "step")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class ArchChoice:
    """A plugin architecture by name, with its resolved options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where the two domains' images are and how they are prepared."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    a_name: str = "A"
    b_name: str = "B"
    size: int = 256
    load_size: int = 286
    preprocess: str = "resize_and_crop"
    flip: bool = True
    channels: int = 3
    workers: int = 2


@dataclass(frozen=True)
class OptimConfig:
    """The CycleGAN objective and optimiser, with the paper's defaults."""

    gan_loss: str = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    gp_weight: float = 10.0
    pool_size: int = 50
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: str = "linear"
    epochs: int = 200
    decay_epochs: int = 100
    step_epochs: int = 50
    batch_size: int = 1


@dataclass(frozen=True)
class RunConfig:
    """How the run is carried out: device, seed, and how often it reports and saves."""

    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_every_epochs: int = 5
    samples: int = 3
    iterations: int | None = None  # stop when the run has done this many in total


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs, and everything config.json records."""

    data: DataConfig
    generator: ArchChoice = ArchChoice("resnet_9blocks")
    discriminator: ArchChoice = ArchChoice("patchgan")
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()

    def with_run(self, **changes: Any) -> TrainConfig:
        """A copy with some RunConfig fields changed."""
        return replace(self, run=replace(self.run, **changes))

    def to_json(self) -> dict[str, Any]:
        """Plain data for config.json, with its version."""
        data = asdict(self)
        data["data"]["a"] = list(self.data.a)
        data["data"]["b"] = list(self.data.b)
        return {"config_version": CONFIG_VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from config.json, migrating older versions."""
        version = data.get("config_version", 0)
        if version > CONFIG_VERSION:
            raise UserError(
                f"this run was made by a newer cyclestudio (config version {version})",
                "update cyclestudio to open it",
            )
        d = dict(data["data"])
        d["a"], d["b"] = tuple(d["a"]), tuple(d["b"])
        return cls(
            data=DataConfig(**d),
            generator=ArchChoice(**data["generator"]),
            discriminator=ArchChoice(**data["discriminator"]),
            optim=OptimConfig(**data.get("optim", {})),
            run=RunConfig(**data.get("run", {})),
        )

    def save(self, path: Path) -> None:
        """Write config.json atomically."""
        from cyclestudio.project import write_json_atomic

        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read config.json."""
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path} is damaged: {exc}", "it is not a cyclestudio config") from None


def validate(config: TrainConfig) -> None:
    """Check the values a user chose; raise UserError naming the first bad one."""
    d, o, r = config.data, config.optim, config.run

    def need(ok: bool, message: str, hint: str) -> None:
        if not ok:
            raise UserError(message, hint)

    need(d.size >= 16, f"--size {d.size} is too small", "use at least 16 pixels")
    need(d.load_size >= d.size or d.preprocess in ("none",),
         f"--load-size {d.load_size} is smaller than --size {d.size}",
         "the image is loaded at load size and cropped to size")
    need(d.preprocess in PREPROCESS, f"unknown --preprocess {d.preprocess}",
         "use one of " + ", ".join(PREPROCESS))
    need(d.channels in (1, 3), f"--channels {d.channels} is not supported", "use 1 or 3")
    need(d.workers >= 0, "--workers cannot be negative", "use 0 to load in the main process")
    need(o.gan_loss in GAN_LOSSES, f"unknown --gan-loss {o.gan_loss}",
         "use one of " + ", ".join(GAN_LOSSES))
    need(o.lr_policy in LR_POLICIES, f"unknown --lr-policy {o.lr_policy}",
         "use one of " + ", ".join(LR_POLICIES))
    need(o.lambda_cycle >= 0, "--lambda-cycle cannot be negative", "the paper uses 10")
    need(o.lambda_identity >= 0, "--lambda-identity cannot be negative", "the paper uses 0.5")
    need(o.pool_size >= 0, "--pool-size cannot be negative", "the paper uses 50; 0 turns it off")
    need(o.lr_g > 0 and o.lr_d > 0, "learning rates must be positive", "the paper uses 0.0002")
    need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, "Adam betas must be in [0, 1)",
         "the paper uses 0.5 and 0.999")
    need(o.epochs >= 1, f"--epochs {o.epochs} must be at least 1", "the paper trains 200")
    need(0 <= o.decay_epochs <= o.epochs, f"--decay-epochs {o.decay_epochs} must be 0..--epochs",
         "the paper decays over the last 100 of 200 epochs")
    need(o.batch_size >= 1, f"--batch-size {o.batch_size} must be at least 1", "the paper uses 1")
    need(r.precision in PRECISIONS, f"unknown --precision {r.precision}",
         "use one of " + ", ".join(PRECISIONS))
    for name in ("log_every", "sample_every", "checkpoint_every"):
        value = getattr(r, name)
        need(value >= 1, f"--{name.replace('_', '-')} {value} must be at least 1", "")
    need(r.iterations is None or r.iterations >= 1, "--iterations must be at least 1", "")
