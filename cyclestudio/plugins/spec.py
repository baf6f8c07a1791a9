"""What a plugin returns: typed options and one spec type per kind of network.

A generator is described by a ``GeneratorSpec``, a discriminator by a
``DiscriminatorSpec``. Both are plain data around a ``build`` function: the app
renders the options as a form, the command line parses ``KEY=VALUE`` into them, and
checkpoints and model files record the resolved values. Nothing here imports torch.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from cyclestudio.errors import UserError

#: The Python types an option may have, and the name each has in JSON and the docs.
OPTION_TYPES: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

SizeRule = int | Callable[[Mapping[str, Any]], int]


@dataclass(frozen=True)
class Option:
    """One typed option of an architecture; the app renders it, the CLI parses it.

    ``type`` is ``int``, ``float``, ``bool`` or ``str``. ``min``/``max`` bound a
    number (inclusive), ``choices`` lists the allowed values (a combo box in the
    app). ``help`` is the tooltip in the app and the text in ``plugins list``. The
    option reaches ``build`` as a keyword argument of the same name.
    """

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
                f"{where} takes {OPTION_TYPES.get(self.type, self.type.__name__)}, not {value!r}",
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
        parts = [OPTION_TYPES.get(self.type, self.type.__name__)]
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else f"{self.min:g}"
            high = "" if self.max is None else f"{self.max:g}"
            parts.append(f"range {low}..{high}")
        parts.append(f"default {self.default!r}")
        return "; ".join(parts)

    def extremes(self) -> list[Any]:
        """The values worth trying besides the default: every choice, both ends of a range."""
        if self.choices is not None:
            values = list(self.choices)
        elif self.type is bool:
            values = [False, True]
        else:
            values = [self.type(v) for v in (self.min, self.max) if v is not None]
        return [v for v in values if v != self.default]

    def to_json(self) -> dict[str, Any]:
        """The option as plain data, for `plugins list --json` and the app's forms."""
        return {
            "name": self.name,
            "type": OPTION_TYPES.get(self.type, "str"),
            "default": self.default,
            "help": self.help,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices) if self.choices is not None else None,
        }


@dataclass(frozen=True)
class ArchitectureSpec:
    """What generator and discriminator specs share: a name, a title, options, a build.

    ``keeps_own_init``: cyclestudio initialises every Conv and Linear weight of a
    freshly built network as the paper does (normal, mean 0, std 0.02; biases 0)
    unless this is True, in which case the network keeps what ``build`` gave it.
    ``min_size``: the smallest image side the network accepts (an int, or a
    function of the resolved options returning one).
    """

    name: str
    title: str
    build: Callable[..., Any]
    options: Sequence[Option] = ()
    description: str = field(default="", kw_only=True)
    keeps_own_init: bool = field(default=False, kw_only=True)
    min_size: SizeRule = field(default=1, kw_only=True)
    source: str = field(default="", compare=False, kw_only=True)

    kind: ClassVar[str] = "architecture"
    #: The channel arguments ``build`` takes before the options.
    channel_args: ClassVar[tuple[str, ...]] = ()

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

    def smallest(self, options: Mapping[str, Any]) -> int:
        """The smallest image side these options accept."""
        value = self.min_size
        return max(1, int(value(options) if callable(value) else value))

    def multiple(self, options: Mapping[str, Any]) -> int:
        """What both image sides must be a multiple of (1: any size)."""
        return 1

    def validated(self, source: str = "") -> ArchitectureSpec:
        """This spec checked against the contract, with ``source`` recorded.

        Raises ``TypeError`` or ``ValueError`` naming what is wrong; discovery lists
        that as the plugin's error.
        """
        kind = self.kind
        if not NAME_PATTERN.match(str(self.name)):
            raise ValueError(
                f"{kind} name {self.name!r} must be lower-case letters, digits and underscores"
            )
        if not callable(self.build):
            raise TypeError(f"{kind} '{self.name}' has no callable build function")
        seen: set[str] = set()
        for opt in self.options:
            if not isinstance(opt, Option):
                raise TypeError(
                    f"{kind} '{self.name}' has an option that is not an Option: {opt!r}"
                )
            if opt.type not in OPTION_TYPES:
                supported = ", ".join(OPTION_TYPES.values())
                raise TypeError(
                    f"option '{opt.name}' of '{self.name}' has type {opt.type!r}; "
                    f"option types are {supported}"
                )
            if not NAME_PATTERN.match(opt.name):
                raise ValueError(
                    f"option {opt.name!r} of '{self.name}' must be lower-case letters, "
                    "digits and underscores (it becomes a keyword argument of build)"
                )
            if opt.name in seen:
                raise ValueError(f"{kind} '{self.name}' declares option '{opt.name}' twice")
            seen.add(opt.name)
            opt.parse(opt.default, self.name)  # the default itself must be valid
        self._check_signature()
        defaults = self.resolve_options()
        if self.multiple(defaults) < 1:
            raise ValueError(f"{kind} '{self.name}' has a size_multiple below 1")
        self.smallest(defaults)
        return replace(self, title=self.title or self.name, options=tuple(self.options),
                       source=source or self.source)

    def _check_signature(self) -> None:
        """Every option must be a keyword of ``build``; every required keyword an option."""
        try:
            signature = inspect.signature(self.build)
        except (TypeError, ValueError):  # a builtin or C function: nothing to read
            return
        params = list(signature.parameters.values())
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
        takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        call = f"build({', '.join(self.channel_args)}, **options)"
        if len(positional) < len(self.channel_args) and not takes_varargs:
            raise TypeError(
                f"{self.kind} '{self.name}': build takes {len(positional)} positional "
                f"argument(s); cyclestudio calls {call}"
            )
        rest = {p.name: p for p in params[len(self.channel_args):]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        names = {o.name for o in self.options}
        for opt in self.options:
            if opt.name not in rest and not takes_kwargs:
                raise TypeError(
                    f"{self.kind} '{self.name}': option '{opt.name}' is not a parameter of "
                    f"build{signature}; cyclestudio calls {call}, so rename the option or "
                    "add the parameter"
                )
        for name, p in rest.items():
            if p.default is p.empty and name not in names:
                raise TypeError(
                    f"{self.kind} '{self.name}': build requires '{name}', which is not one "
                    f"of its options; declare Option('{name}', ...) or give it a default"
                )

    def to_json(self) -> dict[str, Any]:
        """The spec as plain data (no build function)."""
        defaults = self.resolve_options()
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "keeps_own_init": self.keeps_own_init,
            "size_multiple": self.multiple(defaults),
            "min_size": self.smallest(defaults),
            "size_rules": self.size_rules(),
            "options": [o.to_json() for o in self.options],
        }

    def size_rules(self, limit: int = 256) -> dict[str, Any] | None:
        """How size_multiple and min_size change with the options, as a lookup table.

        None when neither depends on the options (or a size function fails for some
        value: training then reports it). Otherwise ``depends_on`` names the options
        that change them and ``table`` lists every combination of those options'
        values (when there are at most ``limit`` of them) with the result.
        """
        if not callable(getattr(self, "size_multiple", None)) and not callable(self.min_size):
            return None
        try:
            return self._size_table(limit)
        except Exception:  # noqa: BLE001 - a plugin's size function; listing must not fail
            return None

    def _size_table(self, limit: int) -> dict[str, Any] | None:
        defaults = self.resolve_options()

        def sizes(options: Mapping[str, Any]) -> tuple[int, int]:
            return self.multiple(options), self.smallest(options)

        base = sizes(defaults)
        domains: dict[str, list[Any]] = {}
        for opt in self.options:
            values = _all_values(opt)
            if values is None:
                continue
            if any(sizes({**defaults, opt.name: v}) != base for v in values):
                domains[opt.name] = values
        combos: list[dict[str, Any]] = [{}]
        for name, values in domains.items():
            combos = [{**c, name: v} for c in combos for v in values]
            if len(combos) > limit:
                return {"depends_on": list(domains), "table": None}
        table = []
        for combo in combos:
            multiple, smallest = sizes({**defaults, **combo})
            table.append({"options": combo, "size_multiple": multiple, "min_size": smallest})
        return {"depends_on": list(domains), "table": table}


def _all_values(opt: Option, limit: int = 64) -> list[Any] | None:
    """Every value an option can take, if there are few enough to list."""
    if opt.choices is not None:
        return list(opt.choices)
    if opt.type is bool:
        return [False, True]
    if opt.type is int and opt.min is not None and opt.max is not None:
        if opt.max - opt.min < limit:
            return list(range(int(opt.min), int(opt.max) + 1))
    return None


@dataclass(frozen=True)
class GeneratorSpec(ArchitectureSpec):
    """A generator: ``build(in_channels, out_channels, **options) -> torch.nn.Module``.

    The network maps ``(N, in_channels, H, W)`` in [-1, 1] to ``(N, out_channels,
    H, W)`` in [-1, 1] (end with ``tanh``), for any H and W that are multiples of
    ``size_multiple`` (an int, or a function of the resolved options returning one)
    and at least ``min_size``.
    """

    size_multiple: SizeRule = 1

    kind: ClassVar[str] = "generator"
    channel_args: ClassVar[tuple[str, ...]] = ("in_channels", "out_channels")

    def multiple(self, options: Mapping[str, Any]) -> int:
        """What both image sides must be a multiple of, for these options."""
        value = self.size_multiple
        return int(value(options) if callable(value) else value)

    def smallest(self, options: Mapping[str, Any]) -> int:
        """The smallest image side: at least one ``size_multiple``."""
        return max(super().smallest(options), self.multiple(options))


@dataclass(frozen=True)
class DiscriminatorSpec(ArchitectureSpec):
    """A discriminator: ``build(in_channels, **options) -> torch.nn.Module``.

    The network maps ``(N, in_channels, H, W)`` in [-1, 1] to raw scores: one
    tensor, a map of one score per patch (or a vector). No sigmoid at the end: the
    GAN loss chosen for training applies its own.
    """

    kind: ClassVar[str] = "discriminator"
    channel_args: ClassVar[tuple[str, ...]] = ("in_channels",)


@dataclass(frozen=True, init=False)
class Architecture(GeneratorSpec):
    """Deprecated: return a ``GeneratorSpec`` or a ``DiscriminatorSpec`` instead.

    Kept, with its 0.1 arguments (``description`` and ``source`` positional too), so
    that plugins written for cyclestudio 0.1 still load; discovery turns it into the
    spec type of the hook that returned it.
    """

    def __init__(self, name: str, title: str, build: Callable[..., Any],
                 options: Sequence[Option] = (), size_multiple: SizeRule = 1,
                 description: str = "", source: str = "", **more: Any) -> None:
        warnings.warn(
            "cyclestudio.plugins.Architecture is deprecated: use GeneratorSpec or "
            "DiscriminatorSpec", DeprecationWarning, stacklevel=2,
        )
        super().__init__(name, title, build, options, size_multiple, description=description,
                         source=source, **more)

    def as_kind(self, kind: str) -> ArchitectureSpec:
        """The same spec as a GeneratorSpec or a DiscriminatorSpec."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if kind == "discriminator":
            values.pop("size_multiple")
            return DiscriminatorSpec(**values)
        return GeneratorSpec(**values)
