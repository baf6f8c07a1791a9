"""Every user-facing choice of the jobs, said once: name, type, default, range, help.

The command line (argparse), the app's forms, config.json and the docs are all built
from these tables, so a default changes in one line and every layer follows. Neither
torch nor Qt is imported here: the window reads this module directly.

A ``Setting`` with ``default=None`` and a ``derive`` rule takes its value from other
settings (the load size follows the crop size); the rule lives here too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cyclestudio.errors import UserError

# -- choice lists that several layers show ------------------------------------------------
PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
GAN_LOSSES = ("lsgan", "vanilla", "hinge", "wgangp")
LR_POLICIES = ("linear", "cosine", "step")
TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SWITCH = ("auto", "on", "off")  # a speed measure: auto uses it where it was measured faster
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # translation and evaluation
DIRECTIONS = ("a2b", "b2a")
FORMATS = ("same", "png", "jpg", "webp", "tiff")
FORMAT_TITLES = {"same": "same as the input", "png": "PNG", "jpg": "JPEG", "webp": "WebP",
                 "tiff": "TIFF"}
COMPILE = ("auto", "on", "off")
# Where a translation runs: PyTorch, or ONNX Runtime (the optional extra cyclestudio[onnx]).
BACKENDS = ("auto", "torch", "onnxruntime")
# What `export` writes; exported files are described in cyclestudio/exports.py.
EXPORT_FORMATS = ("csmodel", "onnx", "torchscript")
EXPORT_FORMAT_TITLES = {"csmodel": "cyclestudio model (.csmodel)", "onnx": "ONNX (.onnx)",
                        "torchscript": "TorchScript (.torchscript)"}
EXPORT_DIRECTIONS = ("a2b", "b2a", "both")
DEFAULT_GENERATOR = "resnet_9blocks"
DEFAULT_DISCRIMINATOR = "patchgan"
DEFAULT_PRESET = "fast"  # see PRESETS below; chosen by benchmarks/quality.py

_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str"}
_METAVARS = {int: "N", float: "X", str: "TEXT"}


@dataclass(frozen=True)
class Setting:
    """One option of a job.

    ``section`` says where it lives in config.json (``data``, ``optim``, ``run``,
    ``arch``), ``launch`` for how the job's processes are started (not stored), or,
    for translation, ``translate``. ``group`` is the heading it is shown
    under. ``resumable`` settings may be given again with ``train --resume``.
    """

    name: str
    type: type
    default: Any
    help: str
    section: str
    group: str
    label: str = ""
    flag: str = ""
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    auto_text: str = ""  # how the form shows a derived value that was not set
    resumable: bool = False
    in_app: bool = True
    metavar: str | None = None

    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--load-size``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def title(self) -> str:
        """The label in the app's form."""
        return self.label or self.name.replace("_", " ")

    def check(self, value: Any) -> Any:
        """``value`` if it is allowed, else a UserError naming the flag and the range."""
        if value is None and self.default is None:
            return value  # left to its rule (derived) or meaning "none" (--iterations)
        allowed = self.describe()
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise UserError(f"{self.option} takes {_TYPE_NAMES[self.type]}, not {value!r}",
                            allowed)
        if self.choices is not None and value not in self.choices:
            raise UserError(f"{self.option} cannot be {value!r}", allowed)
        if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            raise UserError(f"{self.option} {value} is out of range", allowed)
        return value

    def describe(self) -> str:
        """Allowed values and default in words, for help texts and error hints."""
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else f"{self.min:g}"
            high = "" if self.max is None else f"{self.max:g}"
            parts.append(f"{low}..{high}")
        if self.default is None and self.auto_text:
            parts.append(f"default: {self.auto_text}")
        elif self.default is not None:
            shown = self.default if self.type is not bool else ("on" if self.default else "off")
            parts.append(f"default {shown}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The setting as a form spec (the app's OptionForm reads this shape)."""
        return {
            "name": self.name, "type": _TYPE_NAMES[self.type], "default": self.default,
            "help": self.help, "min": self.min, "max": self.max,
            "choices": list(self.choices) if self.choices is not None else None,
            "label": self.title, "auto": self.auto_text or None, "flag": self.option,
        }


def _half_epochs(v: Mapping[str, Any]) -> int:
    return int(v["epochs"]) // 2


def _load_for_size(v: Mapping[str, Any]) -> int:
    return (int(v["size"]) * 286 + 255) // 256  # the paper loads 286 for 256 crops


def _same_lr(v: Mapping[str, Any]) -> float:
    return float(v["lr_g"])


# -- training ----------------------------------------------------------------------------
DATA, ARCH, OBJECTIVE, SCHEDULE, VALIDATION, SPEED, RUN = (
    "data", "architecture", "objective", "schedule", "validation", "speed", "run")
TRAIN: tuple[Setting, ...] = (
    Setting("preset", str, DEFAULT_PRESET, "the recipe whose values replace the defaults below "
            "(flags given beside it win)", "run", ARCH, in_app=False, metavar="NAME"),
    Setting("generator", str, DEFAULT_GENERATOR, "generator plugin name (see `plugins list`)",
            "arch", ARCH, in_app=False, metavar="NAME"),
    Setting("discriminator", str, DEFAULT_DISCRIMINATOR, "discriminator plugin name",
            "arch", ARCH, in_app=False, metavar="NAME"),
    Setting("size", int, 256, "training crop size in pixels", "data", DATA,
            label="crop size", min=16, max=8192, metavar="PX"),
    Setting("load_size", int, None, "images are resized to this before cropping", "data",
            DATA, min=16, max=16384, derive=_load_for_size, auto_text="crop × 286/256",
            metavar="PX"),
    Setting("preprocess", str, "resize_and_crop", "how images are prepared", "data", DATA,
            choices=PREPROCESS),
    Setting("flip", bool, True, "random horizontal flips", "data", DATA,
            label="random flips"),
    Setting("channels", int, 3, "3 (RGB) or 1 (greyscale)", "data", DATA, choices=(1, 3)),
    Setting("workers", int, 2, "image-decoding processes (0: decode inline)", "data", DATA,
            label="loader workers", min=0, max=64, resumable=True),
    Setting("gan_loss", str, "lsgan", "the adversarial loss (the paper: lsgan)", "optim",
            OBJECTIVE, label="GAN loss", choices=GAN_LOSSES),
    Setting("lambda_cycle", float, 10.0, "weight of the cycle-consistency loss (the paper: 10); "
            "lower learns a colour change sooner but lets the generator paint blotches", "optim",
            OBJECTIVE, label="λ cycle", min=0, max=1000),
    Setting("cycle_warmup", int, 0, "iterations over which λ cycle grows from half its "
            "weight to all of it: a colour change is learnt sooner early on, and the whole "
            "weight later keeps the generator from painting (0: off, the paper)", "optim",
            OBJECTIVE, label="cycle warm-up", min=0, max=10_000_000),
    Setting("lambda_identity", float, 0.5, "identity loss weight, relative to λ cycle",
            "optim", OBJECTIVE, label="λ identity", min=0, max=100),
    Setting("lambda_colour", float, 0.0, "weight of the colour-distribution loss: the "
            "sliced Wasserstein distance between the translations' pixel colours and the "
            "target domain's, over recent images; it fades out once they are within sampling "
            "noise of each other (0: off, the paper; fast: 30)", "optim", OBJECTIVE,
            label="λ colour", min=0, max=1000),
    Setting("gp_weight", float, 10.0, "gradient-penalty weight (wgangp only)", "optim",
            OBJECTIVE, label="GP weight", min=0, max=1000),
    Setting("pool_size", int, 50, "past fakes the discriminators see (0: none)", "optim",
            OBJECTIVE, label="pool size", min=0, max=10000),
    Setting("ema", float, 0.0, "average of the generators' weights over recent steps, "
            "used for validation, samples, the best checkpoint and the exported model: "
            "steadier translations than the last step's weights (0: off; e.g. 0.999, "
            "shorter early in a run)", "optim", OBJECTIVE, label="weight average",
            min=0, max=0.9999),
    Setting("ema_ramp", int, 9, "how far the weight average lags while it builds up: its "
            "decay after n steps is (1 + n)/(1 + n + N) until it reaches the weight "
            "average's set decay, so it trails the generators by about n/(N + 1) steps; "
            "smaller: steadier and further behind (9: as it was before it could be set; "
            "fast: 3)",
            "optim", OBJECTIVE, label="weight-average ramp", min=1, max=1000),
    Setting("colour_start", bool, False, "start the generators at the colour change the "
            "domains show, read from their training images before the first step (the "
            "least-moving map between their colours, smoothed); only where their colours "
            "differ more than two halves of one domain do, and only for a generator with a "
            "colour branch (off: the paper; fast: on)", "optim", OBJECTIVE,
            label="colour start"),
    Setting("sharpness_start", bool, False, "start the generators at the blur or "
            "sharpening the domains show, read from their training images' detail at each "
            "scale (power spectra) before the first step; only where it differs more than "
            "between two halves of one domain, and only for a generator with a filter "
            "branch (off: the paper; fast: on)", "optim", OBJECTIVE,
            label="sharpness start"),
    Setting("lr_g", float, 2e-4, "generator learning rate", "optim", OBJECTIVE,
            label="learning rate G", flag="--lr", min=1e-6, max=1.0, resumable=True),
    Setting("lr_d", float, None, "discriminator learning rate", "optim", OBJECTIVE,
            label="learning rate D", min=1e-6, max=1.0, derive=_same_lr,
            auto_text="same as G", resumable=True),
    Setting("beta1", float, 0.5, "Adam β1", "optim", OBJECTIVE, label="β1", min=0,
            max=0.999),
    Setting("beta2", float, 0.999, "Adam β2", "optim", OBJECTIVE, label="β2", min=0,
            max=0.9999),
    Setting("batch_size", int, 1, "images per step (the paper: 1)", "optim", SCHEDULE,
            label="batch size", min=1, max=1024),
    Setting("epochs", int, 200, "length of the schedule in epochs", "optim", SCHEDULE,
            min=1, max=1_000_000),
    Setting("decay_epochs", int, None, "the learning rate decays linearly over the last N "
            "epochs", "optim", SCHEDULE, label="decay epochs", min=0, max=1_000_000,
            derive=_half_epochs, auto_text="half the epochs"),
    Setting("lr_policy", str, "linear", "how the learning rate decays", "optim", SCHEDULE,
            label="lr policy", choices=LR_POLICIES),
    Setting("step_epochs", int, 50, "step policy: ×0.1 every N epochs", "optim", SCHEDULE,
            label="step epochs", min=1, max=1_000_000),
    Setting("iterations", int, None, "stop when the run has done N iterations in total",
            "run", SCHEDULE, min=1, max=2**31 - 1, auto_text="all the epochs", resumable=True),
    Setting("val_every", int, 100, "iterations between validation passes on held-out "
            "images (0: none)", "run", VALIDATION, label="validate every", min=0, max=10**9,
            resumable=True),
    Setting("val_images", int, 8, "held-out images per domain in each validation pass "
            "(from --val-a/--val-b when given, else set aside from --a/--b)", "data",
            VALIDATION, label="held-out images", min=1, max=64),
    Setting("val_a", str, None, "a folder of held-out domain A images", "data", VALIDATION,
            in_app=False, metavar="DIR", auto_text="a slice of --a"),
    Setting("val_b", str, None, "a folder of held-out domain B images", "data", VALIDATION,
            in_app=False, metavar="DIR", auto_text="a slice of --b"),
    Setting("val_truth", str, None, "the true B of each --val-a image (same names): "
            "PSNR and SSIM while training", "data", VALIDATION, in_app=False, metavar="DIR"),
    Setting("val_b_truth", str, None, "the true A of each --val-b image (same names)",
            "data", VALIDATION, in_app=False, metavar="DIR"),
    Setting("seed", int, 0, "random seed", "run", RUN, min=0, max=2**31 - 1),
    Setting("device", str, "auto", "auto | cpu | cuda | cuda:N | mps", "run", RUN,
            resumable=True, in_app=False, metavar="DEVICE"),
    Setting("precision", str, "auto", "auto: bf16 mixed precision where the device runs it "
            "natively (CUDA cards with bf16, CPUs with AVX512-BF16 or AMX), else fp32; fp16 "
            "with loss scaling on CUDA", "run", SPEED, choices=TRAIN_PRECISIONS, resumable=True),
    Setting("channels_last", str, "auto", "NHWC memory layout for the networks (auto: on "
            "CUDA; measured slower on CPUs)", "run", SPEED, label="channels last",
            choices=SWITCH, resumable=True),
    Setting("fused_optimizer", str, "auto", "Adam's fused kernel (auto: on CUDA)", "run",
            SPEED, label="fused optimiser", choices=SWITCH, resumable=True),
    Setting("compile", str, "off", "torch.compile the four networks: faster steps after a "
            "first one that compiles (a minute or more); worth it for long runs on a GPU",
            "run", SPEED, choices=SWITCH, resumable=True),
    Setting("checkpointing", str, "off", "gradient checkpointing: the generators recompute "
            "their activations in the backward pass instead of keeping them, for crops or "
            "batches that would not fit otherwise (less memory, slower steps: "
            "benchmarks/README.md)", "run", SPEED, label="gradient checkpointing",
            choices=("on", "off"), resumable=True),
    Setting("benchmark", str, "auto", "cuDNN picks the fastest convolution for the crop size "
            "(auto: on CUDA when every crop has the same size)", "run", SPEED,
            label="cuDNN benchmark", choices=SWITCH, resumable=True),
    Setting("log_every", int, 10, "iterations between loss logs", "run", RUN,
            label="log every", min=1, max=10**9, resumable=True),
    Setting("sample_every", int, 500, "iterations between sample grids", "run", RUN,
            label="sample every", min=1, max=10**9, resumable=True),
    Setting("checkpoint_every", int, 1000, "iterations between checkpoints (also at each "
            "epoch's end)", "run", RUN, label="checkpoint every", min=1, max=10**9,
            resumable=True),
    Setting("keep_every_epochs", int, 5, "keep a checkpoint copy every N epochs (0: only "
            "the latest)", "run", RUN, label="keep every", min=0, max=10**6,
            resumable=True),
    Setting("samples", int, 3, "images per domain in each sample grid", "run", RUN,
            label="sample images", flag="--sample-images", min=1, max=16),
    Setting("gpus", int, 1, "train with N processes, one per GPU, as one run "
            "(DistributedDataParallel through torchrun; with --device cpu, N CPU processes); "
            "each takes --batch-size images per step", "launch", RUN, label="GPUs", min=1,
            max=1024, resumable=True, metavar="N"),
    Setting("rank_timeout", int, 300, "with several processes: seconds one may wait for "
            "another that has stopped making progress before the run ends, naming it",
            "launch", RUN, min=5, max=86400, resumable=True, in_app=False, metavar="S"),
)

# -- translation (translate and watch) ------------------------------------------------------
TRANSLATE: tuple[Setting, ...] = (
    Setting("direction", str, "a2b", "a2b uses the A→B generator, b2a the other one",
            "translate", "output", choices=DIRECTIONS),
    Setting("format", str, "same", "output format; same keeps the input's (PNG for GIF, "
            "PPM, TGA)", "translate", "output", choices=FORMATS),
    Setting("quality", int, 95, "JPEG/WebP quality (100 makes WebP lossless)", "translate",
            "output", min=1, max=100, metavar="1-100"),
    Setting("suffix", str, None, "added to each output name; '' for none", "translate",
            "output", auto_text="_<target domain>"),
    Setting("overwrite", bool, False, "replace outputs that exist", "translate", "output"),
    Setting("tile", str, "auto", "tile large images: auto (by image size and free memory), "
            "off, or a tile side in pixels", "translate", "speed", metavar="auto|off|PX"),
    Setting("device", str, "auto", "auto, cpu, cuda, cuda:N or mps", "translate", "speed",
            metavar="DEVICE"),
    Setting("precision", str, "auto", "auto: bf16 on CUDA cards and CPUs that run it "
            "natively, else fp32", "translate", "speed", choices=PRECISIONS),
    Setting("compile", str, "auto", "torch.compile the generator: faster per image, ~30 s to "
            "compile the first time; auto: on for CPU batches of 64 or more images of 256² "
            "or larger",
            "translate", "speed", choices=COMPILE),
    Setting("batch_size", int, None, "images of equal size translated together", "translate",
            "speed", min=1, max=1024, metavar="N",
            auto_text="on a CPU small images only (up to 256² pixels a batch: batching "
            "larger ones measured slower); 4 on a GPU"),
    Setting("backend", str, "auto", "what runs the generator: torch, or onnxruntime (needs "
            "the onnx extra); auto: onnxruntime for a .onnx model, else torch (as fast on "
            "a CPU within what benchmarks/README.md could tell, and it runs on every device)",
            "translate", "speed", choices=BACKENDS),
)

# -- export --------------------------------------------------------------------------------
EXPORT: tuple[Setting, ...] = (
    Setting("format", str, "csmodel", "csmodel: cyclestudio's own file (both directions); "
            "onnx or torchscript: a standard graph per direction, checked against PyTorch",
            "export", "export", choices=EXPORT_FORMATS),
    Setting("direction", str, "both", "which generator to export; both writes one onnx or "
            "torchscript file per direction (a .csmodel always holds both)", "export",
            "export", choices=EXPORT_DIRECTIONS),
)


# -- watching a folder (watch only) ---------------------------------------------------------
WATCH: tuple[Setting, ...] = (
    Setting("settle", float, None, "seconds a file must stay unchanged before it is read "
            "where no close-after-write notification says it is complete (polling, network "
            "folders, files there at the start); a writer's longer pauses stretch it",
            "watch", "watching", min=0.1, max=3600, metavar="S",
            auto_text="2 s; 5 s on a network folder"),
)


# -- presets: named recipes ------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A named recipe: values that replace the settings' defaults (and, for the preset's
    own generator and discriminator, their options). A flag given on the command line
    wins over the preset."""

    name: str
    title: str
    description: str
    settings: Mapping[str, Any]
    generator_options: Mapping[str, Any] = field(default_factory=dict)
    discriminator_options: Mapping[str, Any] = field(default_factory=dict)

    def architecture_options(self, kind: str, name: str) -> dict[str, Any]:
        """The preset's options for the chosen ``kind`` architecture, if it is the preset's."""
        if kind == "generator":
            mine, given = self.settings.get("generator", DEFAULT_GENERATOR), self.generator_options
        else:
            mine = self.settings.get("discriminator", DEFAULT_DISCRIMINATOR)
            given = self.discriminator_options
        return dict(given) if name == mine else {}

    def changes(self) -> list[str]:
        """What this preset changes from the settings' defaults, in words."""
        def shown(value: Any) -> str:  # 15, not 15.0; booleans as the command line has them
            if isinstance(value, bool):
                return str(value).lower()
            return f"{value:g}" if isinstance(value, float) else str(value)

        def said(value: Any) -> str:  # a setting's boolean as its checkbox: on or off
            return ("on" if value else "off") if isinstance(value, bool) else shown(value)

        out = [f"{TRAIN_BY_NAME[k].title} {said(v)}" for k, v in self.settings.items()]
        out += [f"generator {k}={shown(v)}" for k, v in self.generator_options.items()]
        out += [f"discriminator {k}={shown(v)}"
                for k, v in self.discriminator_options.items()]
        return out


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        "fast", "Fast (learns on a laptop)",
        "Small networks that start at the colour change and the blur or sharpening the two "
        "domains' images show (or as the identity where they match) and learn only the "
        "change: a narrow ResNet-6 generator with a global skip, a per-pixel colour branch "
        "and a 7×7 filter of its input, a PatchGAN "
        "without instance norm (so it sees colour), no identity loss, a colour-distribution "
        "loss that stops once the colours match, a cycle weight that starts at half and grows "
        "to the paper's over the first 2,000 iterations, and the generators' "
        "weight average as the result (one that trails them by a quarter of the run while "
        "it builds up, so it rides out their swings). At equal CPU time it keeps images "
        "intact and learns colour mappings and blurs in minutes where the paper's recipe "
        "still smears them (benchmarks/README.md, quality); it is slow to take up changes "
        "of shape.",
        {"generator": "resnet_6blocks", "lambda_identity": 0.0, "ema": 0.999,
         "lambda_colour": 30.0, "cycle_warmup": 2000, "ema_ramp": 3, "colour_start": True,
         "sharpness_start": True},
        generator_options={"width": 16, "upsample": "resize", "residual": True,
                           "pixel_branch": 32, "filter_branch": 7},
        discriminator_options={"width": 32, "norm": "none"}),
    "paper": Preset(
        "paper", "The paper",
        "The official CycleGAN recipe exactly: ResNet-9 generators, 70×70 PatchGAN with "
        "instance norm, LSGAN, λ cycle 10, identity 0.5, Adam 2e-4, 256 px crops.",
        {}),
}


def table(settings: Iterable[Setting]) -> dict[str, Setting]:
    """Settings by name."""
    return {s.name: s for s in settings}


TRAIN_BY_NAME = table(TRAIN)
TRANSLATE_BY_NAME = table(TRANSLATE)
WATCH_BY_NAME = table(WATCH)
EXPORT_BY_NAME = table(EXPORT)


def default(name: str, settings: Mapping[str, Setting] = TRAIN_BY_NAME) -> Any:
    """The default of one setting (None for a derived one)."""
    return settings[name].default


def section_defaults(section: str) -> dict[str, Any]:
    """Defaults of the training settings stored in one config.json section."""
    return {s.name: s.default for s in TRAIN if s.section == section}


def preset(name: str | None) -> Preset:
    """The preset called ``name`` (the default one for None), or a UserError listing them."""
    name = name or DEFAULT_PRESET
    if name not in PRESETS:
        raise UserError(f"--preset {name} does not exist",
                        "use one of " + ", ".join(PRESETS))
    return PRESETS[name]


def baseline(settings: Sequence[Setting] = TRAIN, preset_name: str | None = None,
             ) -> dict[str, Any]:
    """Every setting's value before any flag: the defaults, with a preset's values on top."""
    values = {s.name: s.default for s in settings}
    if settings is TRAIN:
        chosen = preset(preset_name)
        values.update(chosen.settings)
        values["preset"] = chosen.name
    return values


def resolve(given: Mapping[str, Any], settings: Sequence[Setting] = TRAIN) -> dict[str, Any]:
    """Every setting's value: what was given (checked), else the preset's or default value,
    else derived from the others."""
    unknown = sorted(set(given) - {s.name for s in settings})
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r}", "see --help for the settings")
    base = baseline(settings, given.get("preset") if settings is TRAIN else None)
    values: dict[str, Any] = {}
    for s in settings:
        value = given.get(s.name)
        values[s.name] = s.check(value) if value is not None else base[s.name]
    for s in settings:  # derived ones once every plain value is known
        if values[s.name] is None and s.derive is not None:
            values[s.name] = s.derive(values)
    return values


def add_arguments(
    parser: argparse.ArgumentParser | Any, settings: Iterable[Setting],
    skip: Iterable[str] = (), groups: dict[str, Any] | None = None,
) -> None:
    """One flag per setting, each defaulting to None so a job can tell what was given.

    The help shows the real default (or how a derived one is found).
    """
    skipped = set(skip)
    groups = {} if groups is None else groups
    for s in settings:
        if s.name in skipped:
            continue
        target = groups.setdefault(s.group, parser.add_argument_group(s.group)) if hasattr(
            parser, "add_argument_group") else parser
        # argparse lists the choices itself; the help adds the range and the default.
        described = s.describe() if s.choices is None else s.describe().split("; ", 1)[-1]
        text = f"{s.help} ({described})" if described else s.help
        if s.type is bool:
            target.add_argument(s.option, dest=s.name, default=None,
                                action=argparse.BooleanOptionalAction, help=text)
        else:
            metavar = s.metavar or (None if s.choices else _METAVARS[s.type])
            target.add_argument(s.option, dest=s.name, default=None, type=s.type,
                                choices=s.choices, metavar=metavar, help=text)


def given(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """The settings a command line set explicitly (flags left out are None)."""
    return {s.name: getattr(args, s.name) for s in settings
            if getattr(args, s.name, None) is not None}


def fill_defaults(args: argparse.Namespace, settings: Iterable[Setting]) -> argparse.Namespace:
    """Put each setting's resolved value on ``args`` where the command line left it out."""
    present = [s for s in settings if hasattr(args, s.name)]
    for name, value in resolve(given(args, present), present).items():
        setattr(args, name, value)
    return args
