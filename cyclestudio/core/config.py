"""The training configuration: small frozen dataclasses, saved as a versioned config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError
from cyclestudio.options import TRAIN, TRAIN_BY_NAME

CONFIG_VERSION = 1


def _default(name: str) -> Any:
    return TRAIN_BY_NAME[name].default


def _derive(name: str, values: dict[str, Any]) -> Any:
    rule = TRAIN_BY_NAME[name].derive
    assert rule is not None
    return rule(values)


@dataclass(frozen=True)
class ArchChoice:
    """A plugin architecture by name, with its resolved options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


# The defaults below come from cyclestudio/options.py (the paper's values); a field left
# None there is derived from the others when the config is made.
@dataclass(frozen=True)
class DataConfig:
    """Where the two domains' images are and how they are prepared."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    a_name: str = "A"
    b_name: str = "B"
    size: int = _default("size")
    load_size: int = None  # type: ignore[assignment]  # derived: size × 286/256
    preprocess: str = _default("preprocess")
    flip: bool = _default("flip")
    channels: int = _default("channels")
    workers: int = _default("workers")
    val_images: int = _default("val_images")
    val_a: str | None = None  # held-out folders; None: a slice of a and b
    val_b: str | None = None
    val_truth: str | None = None  # the true B of each val_a image, for PSNR/SSIM
    val_b_truth: str | None = None

    def __post_init__(self) -> None:
        if self.load_size is None:
            object.__setattr__(self, "load_size", _derive("load_size", {"size": self.size}))


@dataclass(frozen=True)
class OptimConfig:
    """The CycleGAN objective and optimiser, with the paper's defaults."""

    gan_loss: str = _default("gan_loss")
    lambda_cycle: float = _default("lambda_cycle")
    cycle_warmup: int = _default("cycle_warmup")
    lambda_identity: float = _default("lambda_identity")
    lambda_colour: float = _default("lambda_colour")
    gp_weight: float = _default("gp_weight")
    pool_size: int = _default("pool_size")
    ema: float = _default("ema")
    ema_ramp: int = _default("ema_ramp")
    colour_start: bool = _default("colour_start")
    sharpness_start: bool = _default("sharpness_start")
    lr_g: float = _default("lr_g")
    lr_d: float = None  # type: ignore[assignment]  # derived: the generator's rate
    beta1: float = _default("beta1")
    beta2: float = _default("beta2")
    lr_policy: str = _default("lr_policy")
    epochs: int = _default("epochs")
    decay_epochs: int = None  # type: ignore[assignment]  # derived: half the epochs
    step_epochs: int = _default("step_epochs")
    batch_size: int = _default("batch_size")

    def __post_init__(self) -> None:
        values = {"epochs": self.epochs, "lr_g": self.lr_g}
        for name in ("lr_d", "decay_epochs"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, _derive(name, values))


@dataclass(frozen=True)
class RunConfig:
    """How the run is carried out: device, seed, and how often it reports and saves."""

    seed: int = _default("seed")
    device: str = _default("device")
    precision: str = _default("precision")
    channels_last: str = _default("channels_last")
    fused_optimizer: str = _default("fused_optimizer")
    compile: str = _default("compile")
    checkpointing: str = _default("checkpointing")
    benchmark: str = _default("benchmark")
    log_every: int = _default("log_every")
    sample_every: int = _default("sample_every")
    checkpoint_every: int = _default("checkpoint_every")
    keep_every_epochs: int = _default("keep_every_epochs")
    samples: int = _default("samples")
    val_every: int = _default("val_every")
    iterations: int | None = None  # stop when the run has done this many in total
    # The recipe the values started from. The dataclasses' own defaults are the paper's
    # values; a run made by the command line or the app starts from options.DEFAULT_PRESET.
    preset: str = "paper"
    # Not a setting: the number of processes training the run now (docs/distributed.md).
    world_size: int = 1


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
            # Runs from before presets existed started from the paper's values.
            run=RunConfig(**{"preset": "paper", **data.get("run", {})}),
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
    """Check every value against its setting's range, then the rules that tie them together.

    Raises UserError naming the first bad flag.
    """
    sections = {"data": config.data, "optim": config.optim, "run": config.run}
    for setting in TRAIN:
        if setting.section in sections:
            setting.check(getattr(sections[setting.section], setting.name))
    d, o = config.data, config.optim

    def need(ok: bool, message: str, hint: str) -> None:
        if not ok:
            raise UserError(message, hint)

    need(d.load_size >= d.size or d.preprocess in ("none",),
         f"--load-size {d.load_size} is smaller than --size {d.size}",
         "the image is loaded at load size and cropped to size")
    need(o.decay_epochs <= o.epochs, f"--decay-epochs {o.decay_epochs} must be 0..--epochs "
         f"({o.epochs})", "leave it out to decay over the last half of the epochs")
