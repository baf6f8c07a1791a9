"""Architecture plugins: the spec types, the hooks, discovery and the registry.

A plugin is a module with functions marked ``@hookimpl`` that return architecture
specs. The built-in architectures in ``plugins/`` are written exactly this way and
are found the same way an installed third-party package is (the ``cyclestudio``
entry-point group). Loose ``.py`` files are also picked up from the user plugin
folder and from folders named in ``CYCLESTUDIO_PLUGIN_PATH``.

A minimal plugin::

    from cyclestudio.plugins import Architecture, Option, hookimpl

    @hookimpl
    def generators():
        return [Architecture(
            name="tiny", title="Tiny generator", build=build_tiny,
            options=[Option("width", int, 16, "Channels in the first layer", min=1, max=512)],
            size_multiple=4,
        )]

    def build_tiny(in_channels, out_channels, width):
        ...  # return a torch.nn.Module mapping (N, in, H, W) to (N, out, H, W) in [-1, 1]

Nothing here imports torch: the registry is data, and a build function is only
called by the worker that trains or translates.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from cyclestudio.errors import UserError

PROJECT = "cyclestudio"
ENTRY_POINT_GROUP = "cyclestudio"
PLUGIN_PATH_ENV = "CYCLESTUDIO_PLUGIN_PATH"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

_TYPES: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Option:
    """One typed option of an architecture; the app renders it, the CLI parses it."""

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None

    def parse(self, value: Any, owner: str = "") -> Any:
        """Convert ``value`` (text from a command line or JSON) and check it."""
        where = f"option '{self.name}'" + (f" of {owner}" if owner else "")
        try:
            if self.type is bool and isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                parsed: Any = lowered in ("1", "true", "yes", "on")
            elif self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            elif self.type is int and isinstance(value, bool):
                raise ValueError(value)
            else:
                parsed = self.type(value)
        except (TypeError, ValueError):
            raise UserError(
                f"{where} takes {_TYPES.get(self.type, self.type.__name__)}, not {value!r}",
                self.describe(),
            ) from None
        if self.choices is not None and parsed not in self.choices:
            raise UserError(f"{where} cannot be {parsed!r}", self.describe())
        if (self.min is not None and parsed < self.min) or (
            self.max is not None and parsed > self.max
        ):
            raise UserError(f"{where} is out of range: {parsed!r}", self.describe())
        return parsed

    def describe(self) -> str:
        """A one-line summary: type, allowed values and default."""
        parts = [_TYPES.get(self.type, self.type.__name__)]
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else f"{self.min:g}"
            high = "" if self.max is None else f"{self.max:g}"
            parts.append(f"range {low}..{high}")
        parts.append(f"default {self.default!r}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The option as plain data, for `plugins list --json` and the app's forms."""
        return {
            "name": self.name,
            "type": _TYPES.get(self.type, "str"),
            "default": self.default,
            "help": self.help,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices) if self.choices is not None else None,
        }


@dataclass(frozen=True)
class Architecture:
    """A generator or discriminator a plugin offers.

    ``build`` is called as ``build(in_channels, out_channels, **options)`` for a
    generator and ``build(in_channels, **options)`` for a discriminator, and returns
    a ``torch.nn.Module``. ``size_multiple`` is the number both image sides must be
    a multiple of (an int, or a function of the resolved options returning one).
    """

    name: str
    title: str
    build: Callable[..., Any]
    options: Sequence[Option] = ()
    size_multiple: int | Callable[[Mapping[str, Any]], int] = 1
    description: str = ""
    source: str = field(default="", compare=False)

    def option(self, name: str) -> Option | None:
        """The option called ``name``, or None."""
        return next((o for o in self.options if o.name == name), None)

    def resolve_options(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults filled in, every given value parsed and checked."""
        given = dict(given or {})
        unknown = sorted(set(given) - {o.name for o in self.options})
        if unknown:
            known = ", ".join(o.name for o in self.options) or "none"
            raise UserError(
                f"{self.name} has no option '{unknown[0]}'",
                f"its options are: {known}",
            )
        return {
            o.name: o.parse(given[o.name], self.name) if o.name in given else o.default
            for o in self.options
        }

    def multiple(self, options: Mapping[str, Any]) -> int:
        """What both image sides must be a multiple of, for these options."""
        value = self.size_multiple
        return int(value(options) if callable(value) else value)

    def to_json(self) -> dict[str, Any]:
        """The spec as plain data (no build function)."""
        defaults = self.resolve_options()
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "size_multiple": self.multiple(defaults),
            "options": [o.to_json() for o in self.options],
        }


class _Specs:
    """The hooks a plugin may implement. These docstrings are the plugin author's manual."""

    @hookspec
    def generators(self) -> list[Architecture]:  # type: ignore[empty-body]
        """Return the generators this plugin offers, as a list of ``Architecture``.

        A generator maps an image batch ``(N, in_channels, H, W)`` scaled to
        [-1, 1] to ``(N, out_channels, H, W)`` in [-1, 1] (end with ``tanh``).
        It must accept any H and W that are multiples of ``size_multiple``.
        cyclestudio builds two of them (A to B and B to A) and initialises their
        weights (normal, std 0.02) unless the module sets ``keeps_own_init = True``.
        """

    @hookspec
    def discriminators(self) -> list[Architecture]:  # type: ignore[empty-body]
        """Return the discriminators this plugin offers, as a list of ``Architecture``.

        A discriminator maps ``(N, in_channels, H, W)`` in [-1, 1] to a map (or a
        vector) of raw scores, one per patch: no sigmoid at the end, the loss
        chosen in the training options applies its own.
        """


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be loaded or returned a bad spec, and why."""

    source: str
    message: str
    details: str = ""

    def to_json(self) -> dict[str, str]:
        """The error as plain data."""
        return {"source": self.source, "message": self.message, "details": self.details}


@dataclass
class Registry:
    """Every architecture that loaded, and every plugin that did not."""

    generators: dict[str, Architecture] = field(default_factory=dict)
    discriminators: dict[str, Architecture] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)

    def generator(self, name: str) -> Architecture:
        """The generator called ``name``, or a UserError listing what exists."""
        return self._find(self.generators, name, "generator")

    def discriminator(self, name: str) -> Architecture:
        """The discriminator called ``name``, or a UserError listing what exists."""
        return self._find(self.discriminators, name, "discriminator")

    def _find(self, table: dict[str, Architecture], name: str, kind: str) -> Architecture:
        if name in table:
            return table[name]
        broken = [e for e in self.errors if name in e.source or name in e.message]
        hint = f"installed {kind}s: {', '.join(sorted(table)) or 'none'}"
        if broken:
            hint = f"a plugin that may provide it failed to load: {broken[0].message}; " + hint
        raise UserError(
            f"no {kind} plugin named '{name}' is installed",
            hint + " (see `cyclestudio plugins list`)",
        )

    def to_json(self) -> dict[str, Any]:
        """The registry as plain data, for `cyclestudio plugins list --json`."""
        return {
            "generators": [a.to_json() for a in self.generators.values()],
            "discriminators": [a.to_json() for a in self.discriminators.values()],
            "errors": [e.to_json() for e in self.errors],
        }


def user_plugin_dir() -> Path:
    """The user's plugin folder: ``plugins/`` in the appdirs user data dir.

    ``CYCLESTUDIO_DATA_DIR`` moves the data dir (the app and the tests use it too).
    """
    import appdirs

    data = os.environ.get("CYCLESTUDIO_DATA_DIR") or appdirs.user_data_dir(PROJECT, appauthor=False)
    return Path(data) / "plugins"


def plugin_dirs() -> list[Path]:
    """Folders whose ``.py`` files are loaded as plugins, in order."""
    dirs = [user_plugin_dir()]
    extra = os.environ.get(PLUGIN_PATH_ENV, "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return dirs


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _load_file(path: Path) -> Any:
    module_name = "cyclestudio_user_plugin_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _candidates(
    extra_files: Iterable[Path], entry_points: bool
) -> Iterable[tuple[str, Callable[[], Any]]]:
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            yield f"{ep.name} ({ep.value})", ep.load
    files: list[Path] = []
    for folder in plugin_dirs():
        if folder.is_dir():
            files += sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    files += [Path(p) for p in extra_files]
    seen: set[Path] = set()
    for path in (p.resolve() for p in files):
        if path not in seen:  # a file named explicitly may also sit in a plugin folder
            seen.add(path)
            yield str(path), (lambda p=path: _load_file(p))


def _check(spec: Any, kind: str, source: str) -> Architecture:
    if not isinstance(spec, Architecture):
        raise TypeError(f"{kind} hook returned {type(spec).__name__}, not an Architecture")
    if not _NAME.match(spec.name):
        raise ValueError(
            f"{kind} name {spec.name!r} must be lower-case letters, digits and underscores"
        )
    if not callable(spec.build):
        raise TypeError(f"{kind} '{spec.name}' has no callable build function")
    seen: set[str] = set()
    for opt in spec.options:
        if not isinstance(opt, Option):
            raise TypeError(f"{kind} '{spec.name}' has an option that is not an Option: {opt!r}")
        if opt.type not in _TYPES:
            raise TypeError(f"option '{opt.name}' of '{spec.name}' has unsupported type {opt.type}")
        if opt.name in seen:
            raise ValueError(f"{kind} '{spec.name}' declares option '{opt.name}' twice")
        seen.add(opt.name)
        opt.parse(opt.default, spec.name)  # the default itself must be valid
    if spec.multiple(spec.resolve_options()) < 1:
        raise ValueError(f"{kind} '{spec.name}' has a size_multiple below 1")
    return Architecture(
        name=spec.name,
        title=spec.title or spec.name,
        build=spec.build,
        options=tuple(spec.options),
        size_multiple=spec.size_multiple,
        description=spec.description,
        source=source,
    )


def load_registry(
    extra_files: Iterable[str | Path] = (), *, entry_points: bool = True
) -> Registry:
    """Discover every plugin; a broken one is recorded in ``errors`` and skipped."""
    registry = Registry()
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(_Specs)
    for source, load in _candidates([Path(p) for p in extra_files], entry_points):
        try:
            module = load()
            manager.register(module, name=source)
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code is listed
            registry.errors.append(
                PluginError(source, _short_error(exc), traceback.format_exc(limit=8))
            )
            continue
        for kind, table in (
            ("generator", registry.generators),
            ("discriminator", registry.discriminators),
        ):
            hook = getattr(manager.hook, kind + "s")
            # Call each implementation alone: pluggy would abandon the whole hook
            # call on the first plugin that raises.
            for impl in hook.get_hookimpls():
                if impl.plugin_name != source:
                    continue
                try:
                    specs = impl.function()
                    if not isinstance(specs, list | tuple):
                        raise TypeError(f"{kind}s() must return a list, not {type(specs).__name__}")
                    for spec in specs:
                        arch = _check(spec, kind, source)
                        if arch.name in table:
                            raise ValueError(
                                f"{kind} '{arch.name}' is already provided by "
                                f"{table[arch.name].source}"
                            )
                        table[arch.name] = arch
                except Exception as exc:  # noqa: BLE001
                    registry.errors.append(
                        PluginError(source, _short_error(exc), traceback.format_exc(limit=8))
                    )
    return registry


_cached: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, discovered on first use."""
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached
