"""Self-describing model files (``.csmodel``): both generators' weights plus what rebuilds them.

A model file is a safetensors container. Its tensors are ``G_A.<param>`` (A→B) and
``G_B.<param>`` (B→A); its header metadata holds one key, ``cyclestudio``, whose value
is a JSON object: format name and version, generator plugin name and options, the
training size, the domain names, the channels, the iteration and the cyclestudio
version. Reading it never unpickles anything: safetensors holds raw tensors only.

Anywhere a model is taken, a run folder (its latest checkpoint) or a checkpoint file
works too; :func:`load_model` hides the difference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cyclestudio import __version__
from cyclestudio.errors import UserError

FORMAT = "cyclestudio.model"
FORMAT_VERSION = 1
EXTENSION = ".csmodel"
DEFAULT_NAME = "model" + EXTENSION
METADATA_KEY = "cyclestudio"
NETS = ("G_A", "G_B")


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself."""

    generator: str
    options: dict[str, Any] = field(default_factory=dict)
    size: int = 256
    a_name: str = "A"
    b_name: str = "B"
    channels: int = 3
    iteration: int = 0
    cyclestudio_version: str = __version__

    def to_json(self) -> dict[str, Any]:
        """Plain data for the file header (and for the app)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, source: Path) -> ModelInfo:
        """Read the header object, refusing foreign, newer or malformed ones."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{source} is not a cyclestudio model file (its header is not one)",
                            "give a .csmodel file, a run folder or a checkpoint")
        version = data.get("format_version", 0)
        if not _is_int(version):
            raise UserError(f"{source} has a damaged header (format_version {version!r})",
                            "export the model again from its run")
        if version > FORMAT_VERSION:
            raise UserError(
                f"{source} was written by a newer cyclestudio "
                f"({data.get('cyclestudio_version', '?')})",
                "update cyclestudio to use this model",
            )
        return cls._checked(data, source)

    @classmethod
    def _checked(cls, data: dict[str, Any], source: Path) -> ModelInfo:
        """The fields of a header or config, each of the type and range it must have."""
        problem = None
        generator, options = data.get("generator"), data.get("options", {})
        size, channels = data.get("size", 256), data.get("channels", 3)
        iteration = data.get("iteration", 0)
        names = data.get("a_name", "A"), data.get("b_name", "B")
        if not isinstance(generator, str) or not generator:
            problem = f"generator {generator!r}"
        elif not isinstance(options, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float | str | bool)
                for k, v in options.items()):
            problem = f"generator options {options!r}"[:200]
        elif not _is_int(size) or not 1 <= size <= 1 << 16:
            problem = f"size {size!r}"
        elif channels not in (1, 3) or not _is_int(channels):
            problem = f"channels {channels!r}"
        elif not _is_int(iteration) or iteration < 0:
            problem = f"iteration {iteration!r}"
        elif not all(isinstance(n, str) for n in names):
            problem = f"domain names {names!r}"
        if problem is not None:
            raise UserError(f"{source} has a damaged header ({problem})",
                            "export the model again from its run")
        return cls(generator=generator, options=dict(options), size=size, a_name=names[0],
                   b_name=names[1], channels=channels, iteration=iteration,
                   cyclestudio_version=str(data.get("cyclestudio_version", "?")))

    @classmethod
    def from_config(cls, config: dict[str, Any], iteration: int, version: str,
                    source: Path | None = None) -> ModelInfo:
        """The info a checkpoint's config.json implies."""
        data = config.get("data", {})
        gen = config.get("generator", {})
        if not isinstance(data, dict) or not isinstance(gen, dict):
            raise UserError(f"{source or 'the checkpoint'} has a damaged configuration",
                            "use an earlier checkpoint")
        return cls._checked({
            "generator": gen.get("name", ""), "options": gen.get("options") or {},
            "size": data.get("size", 256), "a_name": data.get("a_name", "A"),
            "b_name": data.get("b_name", "B"), "channels": data.get("channels", 3),
            "iteration": iteration, "cyclestudio_version": version,
        }, source or Path("checkpoint"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Model:
    """Both generators, built and loaded, with their description."""

    info: ModelInfo
    G_A: nn.Module  # A→B
    G_B: nn.Module  # B→A
    multiple: int = 1

    def generator(self, direction: str) -> nn.Module:
        """G_A for ``a2b``, G_B for ``b2a``."""
        if direction == "a2b":
            return self.G_A
        if direction == "b2a":
            return self.G_B
        raise UserError(f"unknown direction {direction!r}", "use a2b or b2a")

    def domain_names(self, direction: str) -> tuple[str, str]:
        """(source domain, target domain) names for a direction."""
        a, b = self.info.a_name, self.info.b_name
        return (a, b) if direction == "a2b" else (b, a)


def _checkpoint_state(path: Path) -> dict[str, Any]:
    from cyclestudio.core.checkpoint import latest_checkpoint, load_checkpoint

    return load_checkpoint(latest_checkpoint(path) if path.is_dir() else path)


def _info_from_checkpoint(state: dict[str, Any], source: Path) -> ModelInfo:
    config = state.get("config")
    if not isinstance(config, dict) or "generator" not in config:
        raise UserError(f"{source} has no configuration in its checkpoint",
                        "the checkpoint is damaged; use an earlier one")
    iteration = state.get("iteration", 0)
    return ModelInfo.from_config(config, iteration if _is_int(iteration) else -1,
                                 str(state.get("cyclestudio_version", __version__)), source)


def _generator_weights(state: dict[str, Any], source: Path) -> dict[str, dict[str, torch.Tensor]]:
    # A run that averages its generators' weights exports the average (core/cyclegan.py).
    nets = state.get("ema") or state.get("nets") or {}
    if not isinstance(nets, dict):
        raise UserError(f"{source} holds no generator weights", "the checkpoint is damaged")
    missing = [n for n in NETS if n not in nets]
    if missing:
        raise UserError(f"{source} holds no {missing[0]} weights", "the checkpoint is damaged")
    return {n: nets[n] for n in NETS}


def export_model(run_dir: Path, out: Path | None = None) -> Path:
    """Write the run's latest generators as one self-describing model file; return its path.

    ``run_dir`` may also be a checkpoint file. The default ``out`` is
    ``run_dir/model.csmodel``. The file is written to a temp file and renamed.
    """
    from safetensors.torch import save

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"{run_dir} does not exist", "give a run folder")
    state = _checkpoint_state(run_dir)
    info = _info_from_checkpoint(state, run_dir)
    tensors: dict[str, torch.Tensor] = {}
    for net, weights in _generator_weights(state, run_dir).items():
        for key, value in weights.items():
            # safetensors refuses shared or strided storage: give it plain copies.
            tensors[f"{net}.{key}"] = value.detach().to("cpu").contiguous().clone()
    if out is None:
        out = (run_dir if run_dir.is_dir() else run_dir.parent.parent) / DEFAULT_NAME
    out = Path(out)
    if out.is_dir():
        out = out / DEFAULT_NAME
    if not out.suffix:
        out = out.with_suffix(EXTENSION)
    payload = save(tensors, metadata={METADATA_KEY: json.dumps(info.to_json())})
    write_bytes_atomic(out, payload)
    return out


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temp file beside ``path``, fsync, then rename over it."""
    from cyclestudio.atomic import atomic_write

    with atomic_write(path) as f:
        f.write(data)


def read_info(path: Path) -> ModelInfo:
    """The description of a model file, run folder or checkpoint, without building anything."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".pt":
        return _info_from_checkpoint(_checkpoint_state(path), path)
    info, _ = _read_model_file(path, load_tensors=False)
    return info


def _read_model_file(
    path: Path, load_tensors: bool = True
) -> tuple[ModelInfo, dict[str, dict[str, torch.Tensor]]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise UserError(f"{path} does not exist", "give a .csmodel file or a run folder")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = (f.metadata() or {}).get(METADATA_KEY)
            if header is None:
                raise UserError(f"{path} is not a cyclestudio model file",
                                "it has no cyclestudio description in its header")
            try:
                data = json.loads(header)
            except ValueError:
                raise UserError(f"{path} has a damaged header (not JSON)",
                                "export the model again from its run") from None
            info = ModelInfo.from_json(data, path)
            weights: dict[str, dict[str, torch.Tensor]] = {n: {} for n in NETS}
            if load_tensors:
                for key in f.keys():
                    net, _, param = key.partition(".")
                    if net in weights:
                        weights[net][param] = f.get_tensor(key)
    except UserError:
        raise
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable model file ({type(exc).__name__}: {exc})",
            "the file is damaged or is not a .csmodel; export it again",
        ) from None
    return info, weights


def load_model(path: Path, device: torch.device | str = "cpu") -> Model:
    """Rebuild both generators from a model file, a run folder or a checkpoint."""
    from cyclestudio.core.model_checks import check_weights
    from cyclestudio.core.networks import build_generator
    from cyclestudio.plugins.discovery import registry

    path = Path(path)
    if path.is_dir() or path.suffix == ".pt":
        state = _checkpoint_state(path)
        info = _info_from_checkpoint(state, path)
        weights = _generator_weights(state, path)
    else:
        info, weights = _read_model_file(path)
    reg = registry()
    if info.generator not in reg.generators:
        try:
            reg.generator(info.generator)
        except UserError as missing:  # its hint names plugins that failed to load or are off
            raise UserError(
                f"{path.name} needs the generator plugin '{info.generator}', which is not "
                "installed",
                f"install the plugin that provides '{info.generator}' ({missing.hint})",
            ) from None
    arch = reg.generator(info.generator)
    options = arch.resolve_options(info.options)
    # Before building anything: the header's network must be exactly the file's tensors.
    check_weights(path, info.generator, options, info.channels, weights, reg)
    nets: dict[str, nn.Module] = {}
    for name in NETS:
        net = build_generator(info.generator, options, info.channels, info.channels, reg)
        try:
            net.load_state_dict(weights[name], strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(
                f"the {name} weights in {path.name} do not fit the '{info.generator}' "
                f"generator as installed now ({first})",
                "the plugin changed since the model was trained; use the plugin version "
                "it was trained with",
            ) from None
        nets[name] = net.to(device).eval().requires_grad_(False)
    return Model(info, nets["G_A"], nets["G_B"], arch.multiple(options))


def load_translator(model_or_run: Path, device: torch.device | str = "cpu",
                    backend: str = "auto", **kwargs: Any) -> Any:
    """A ready :class:`~cyclestudio.core.translate.Translator` for translate, eval and the app.

    ``backend`` (auto, torch, onnxruntime) picks what runs the generator; an exported
    .onnx file runs in ONNX Runtime (core/onnx_backend.py).
    """
    from cyclestudio.core.devices import pick_device
    from cyclestudio.core.onnx_backend import choose_backend, load_onnx_translator
    from cyclestudio.core.translate import Translator

    if choose_backend(Path(model_or_run), backend) == "onnxruntime":
        return load_onnx_translator(Path(model_or_run), str(device), **kwargs)
    if isinstance(device, str):
        device = pick_device(device)
    return Translator(load_model(Path(model_or_run), device), device, **kwargs)
