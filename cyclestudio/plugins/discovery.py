"""Finding plugins and loading them into a Registry; a broken plugin is listed, never fatal.

Plugins come from three places, in this order: the built-ins and installed packages
through the ``cyclestudio`` entry-point group, then the ``.py`` files in the user
plugin folder and in the folders named in ``CYCLESTUDIO_PLUGIN_PATH``. A plugin the
user disabled (``plugins disable``, or the app's Plugins page) is listed but not
imported. Nothing here imports torch: the registry is data, and a build function is
only called by the process that trains, translates or checks.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from cyclestudio import __version__
from cyclestudio.errors import UserError
from cyclestudio.paths import disabled_plugins_file, user_plugin_dir
from cyclestudio.plugins import hookspecs
from cyclestudio.plugins.spec import (
    Architecture,
    ArchitectureSpec,
    DiscriminatorSpec,
    GeneratorSpec,
)

ENTRY_POINT_GROUP = "cyclestudio"
PLUGIN_PATH_ENV = "CYCLESTUDIO_PLUGIN_PATH"
HOOKS = {"generators": GeneratorSpec, "discriminators": DiscriminatorSpec}
#: Where a plugin came from: shipped with cyclestudio, an installed package, a loose file.
ORIGINS = ("built-in", "package", "file")

__all__ = [
    "ENTRY_POINT_GROUP", "PLUGIN_PATH_ENV", "PluginError", "PluginInfo", "Registry",
    "disabled_plugins", "find_plugins", "load_registry", "plugin_dirs", "registry",
    "set_plugin_enabled", "user_plugin_dir",
]


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be loaded or returned a bad spec, and why."""

    source: str
    message: str
    details: str = ""
    plugin: str = ""

    def to_json(self) -> dict[str, str]:
        """The error as plain data."""
        return {"source": self.source, "message": self.message, "details": self.details,
                "plugin": self.plugin}


@dataclass
class PluginInfo:
    """One plugin module: where it came from, whether it loaded, and what it offers."""

    id: str  # the entry-point name, or the file's path; what `plugins disable` takes
    name: str
    origin: str  # one of ORIGINS
    source: str
    version: str | None = None
    distribution: str | None = None
    status: str = "ok"  # ok | error | disabled
    errors: list[PluginError] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)
    discriminators: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The plugin as plain data, for `plugins list --json` and the Plugins page."""
        first = self.errors[0] if self.errors else None
        return {
            "id": self.id, "name": self.name, "origin": self.origin, "source": self.source,
            "version": self.version, "distribution": self.distribution,
            "status": self.status,
            "kinds": [k for k in ("generator", "discriminator")
                      if getattr(self, k + "s")],
            "generators": list(self.generators), "discriminators": list(self.discriminators),
            "error": first.message if first else "",
            "traceback": first.details if first else "",
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass
class Registry:
    """Every architecture that loaded, every plugin found, and every error."""

    generators: dict[str, ArchitectureSpec] = field(default_factory=dict)
    discriminators: dict[str, ArchitectureSpec] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    plugins: list[PluginInfo] = field(default_factory=list)

    def generator(self, name: str) -> GeneratorSpec:
        """The generator called ``name``, or a UserError listing what exists."""
        return self._find(self.generators, name, "generator")  # type: ignore[return-value]

    def discriminator(self, name: str) -> DiscriminatorSpec:
        """The discriminator called ``name``, or a UserError listing what exists."""
        return self._find(self.discriminators, name, "discriminator")  # type: ignore[return-value]

    def plugin(self, plugin_id: str) -> PluginInfo | None:
        """The plugin with this id (entry-point name or file path), or None."""
        return next((p for p in self.plugins if p.id == plugin_id), None)

    def owner(self, spec: ArchitectureSpec) -> PluginInfo | None:
        """The plugin a spec came from."""
        return next((p for p in self.plugins if spec.name in getattr(p, spec.kind + "s")
                     and p.source == spec.source), None)

    def _find(self, table: dict[str, ArchitectureSpec], name: str, kind: str) -> Any:
        if name in table:
            return table[name]
        hints = [f"installed {kind}s: {', '.join(sorted(table)) or 'none'}"]
        broken = [p for p in self.plugins if p.status == "error"]
        if broken:
            # Name the one that most likely meant to provide it first.
            broken.sort(key=lambda p: (name not in p.source and name not in p.name, p.name))
            hints.insert(0, "plugins that failed to load: " + "; ".join(
                f"{p.name} ({p.errors[0].message})" for p in broken[:3])
                + ("; …" if len(broken) > 3 else ""))
        disabled = [p.name for p in self.plugins if p.status == "disabled"]
        if disabled:
            hints.append(f"disabled plugins: {', '.join(disabled)} "
                         "(`cyclestudio plugins enable NAME`)")
        raise UserError(
            f"no {kind} plugin named '{name}' is installed",
            "; ".join(hints) + " (see `cyclestudio plugins list`)",
        )

    def to_json(self) -> dict[str, Any]:
        """The registry as plain data, for `cyclestudio plugins list --json` and the app."""

        def spec_json(spec: ArchitectureSpec) -> dict[str, Any]:
            owner = self.owner(spec)
            return {**spec.to_json(), "plugin": owner.id if owner else ""}

        return {
            "generators": [spec_json(a) for a in self.generators.values()],
            "discriminators": [spec_json(a) for a in self.discriminators.values()],
            "errors": [e.to_json() for e in self.errors],
            "plugins": [p.to_json() for p in self.plugins],
            "user_plugin_folder": str(user_plugin_dir()),
            "plugin_folders": [str(d) for d in plugin_dirs()],
            "disabled_file": str(disabled_plugins_file()),
        }


def plugin_dirs() -> list[Path]:
    """Folders whose ``.py`` files are loaded as plugins, in order."""
    dirs = [user_plugin_dir()]
    extra = os.environ.get(PLUGIN_PATH_ENV, "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return dirs


def disabled_plugins() -> list[str]:
    """The ids of the plugins the user turned off (an unreadable list counts as empty)."""
    try:
        data = json.loads(disabled_plugins_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ids = data.get("disabled") if isinstance(data, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def set_plugin_enabled(plugin_id: str, enabled: bool) -> list[str]:
    """Turn a plugin on or off for the app and every job; returns the disabled list."""
    from cyclestudio.project import write_json_atomic

    ids = sorted({i for i in disabled_plugins() if i != plugin_id}
                 | (set() if enabled else {plugin_id}))
    path = disabled_plugins_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"disabled": ids})
    return ids


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _plugin_traceback(exc: BaseException) -> str:
    """The traceback from the plugin's own code on: our loader's and importlib's frames go."""
    tb = exc.__traceback__
    ours = (os.path.dirname(__file__) + os.sep, "<frozen importlib", f"{os.sep}importlib{os.sep}",
            f"{os.sep}pluggy{os.sep}")
    while tb is not None and any(part in tb.tb_frame.f_code.co_filename for part in ours):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


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
) -> Iterable[tuple[PluginInfo, Callable[[], Any]]]:
    if entry_points:
        seen: dict[str, str | None] = {}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            plugin_id = ep.name
            if ep.name in seen:
                if seen[ep.name] == dist_name:  # one distribution found twice on sys.path
                    continue
                plugin_id = f"{dist_name}:{ep.name}"  # two packages chose the same name
            seen.setdefault(ep.name, dist_name)
            builtin = dist_name == "cyclestudio" or ep.value.startswith("cyclestudio_plugins.")
            info = PluginInfo(
                id=plugin_id, name=plugin_id, origin="built-in" if builtin else "package",
                source=f"{ep.name} ({ep.value})",
                version=__version__ if builtin else (dist.version if dist else None),
                distribution=dist_name,
            )
            yield info, ep.load
    files: list[Path] = []
    for folder in plugin_dirs():
        if folder.is_dir():
            files += sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    files += [Path(p) for p in extra_files]
    seen: set[Path] = set()
    for path in (p.resolve() for p in files):
        if path not in seen:  # a file named explicitly may also sit in a plugin folder
            seen.add(path)
            info = PluginInfo(id=str(path), name=path.stem, origin="file", source=str(path))
            yield info, (lambda p=path: _load_file(p))


def _hook_problems(manager: pluggy.PluginManager, module: Any) -> list[str]:
    """Why a registered module offers nothing: unknown hook names, or no hooks at all."""
    problems = []
    callers = manager.get_hookcallers(module) or []
    for caller in callers:
        if caller.spec is None:
            near = difflib.get_close_matches(caller.name, list(HOOKS), n=1)
            problems.append(
                f"'{caller.name}' is not a cyclestudio hook"
                + (f" (did you mean '{near[0]}'?)" if near else "")
                + f"; the hooks are {', '.join(HOOKS)}"
            )
    if not callers:
        unmarked = [h for h in HOOKS if callable(getattr(module, h, None))]
        if unmarked:
            problems.append(
                f"{unmarked[0]}() is not marked @hookimpl; add `from cyclestudio.plugins "
                f"import hookimpl` and put @hookimpl above it"
            )
        else:
            problems.append(
                "it registers no hooks: define generators() or discriminators() and mark "
                "it @hookimpl (from cyclestudio.plugins)"
            )
    return problems


def _specs_of(impl: Any, hook: str) -> list[ArchitectureSpec]:
    """Call one hook implementation and check what it returns."""
    kind = hook[:-1]
    specs = impl.function()
    if not isinstance(specs, list | tuple):
        raise TypeError(f"{hook}() must return a list, not {type(specs).__name__}")
    wanted = HOOKS[hook]
    checked = []
    for spec in specs:
        if isinstance(spec, Architecture):
            spec = spec.as_kind(kind)
        if not isinstance(spec, wanted):
            other = next((h for h, t in HOOKS.items() if isinstance(spec, t)), None)
            raise TypeError(
                f"{hook}() returned {type(spec).__name__}, not a {wanted.__name__}"
                + (f"; return it from {other}()" if other else "")
            )
        checked.append(spec)
    return checked


def find_plugins() -> list[PluginInfo]:
    """Every plugin there is, without importing any (disabled ones marked so)."""
    disabled = set(disabled_plugins())
    found = [info for info, _ in _candidates((), True)]
    for info in found:
        if info.id in disabled:
            info.status = "disabled"
    return found


def load_registry(
    extra_files: Iterable[str | Path] = (),
    *,
    entry_points: bool = True,
    honour_disabled: bool = True,
) -> Registry:
    """Discover every plugin; a broken one is recorded in ``errors`` and skipped.

    ``extra_files`` are loaded even when disabled (``plugins check FILE``).
    """
    reg = Registry()
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    extra = [Path(p).resolve() for p in extra_files]
    disabled = set(disabled_plugins()) if honour_disabled else set()

    def fail(info: PluginInfo, exc: BaseException | str, details: str = "") -> None:
        message = exc if isinstance(exc, str) else _short_error(exc)
        error = PluginError(info.source, message, details, info.id)
        info.errors.append(error)
        info.status = "error"
        reg.errors.append(error)

    for info, load in _candidates(extra, entry_points):
        reg.plugins.append(info)
        if info.id in disabled and Path(info.id) not in extra:
            info.status = "disabled"
            continue
        try:
            module = load()
            manager.register(module, name=info.id)
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code is listed
            fail(info, exc, _plugin_traceback(exc))
            continue
        if info.origin == "file" and isinstance(getattr(module, "__version__", None), str):
            info.version = module.__version__
        problems = _hook_problems(manager, module)
        if problems:
            for problem in problems:
                fail(info, problem)
            manager.unregister(module)
            continue
        for hook, table in (("generators", reg.generators),
                            ("discriminators", reg.discriminators)):
            # Call each implementation alone: pluggy would abandon the whole hook
            # call on the first plugin that raises.
            for impl in getattr(manager.hook, hook).get_hookimpls():
                if impl.plugin_name != info.id:
                    continue
                try:
                    for spec in _specs_of(impl, hook):
                        arch = spec.validated(info.source)
                        if arch.name in table:
                            raise ValueError(
                                f"{arch.kind} '{arch.name}' is already provided by "
                                f"{table[arch.name].source}"
                            )
                        table[arch.name] = arch
                        getattr(info, hook).append(arch.name)
                except Exception as exc:  # noqa: BLE001
                    fail(info, exc, _plugin_traceback(exc))
    return reg


_cached: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, discovered on first use."""
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached
