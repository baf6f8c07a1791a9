"""The checks an architecture must pass: `plugins check`, the training pre-flight, plugin tests.

For one spec and one set of options, a network is built as training builds it and
tried on random images: output shape at several input sizes, output range (a
generator bounded by tanh, a discriminator giving raw scores), a gradient reaching
every parameter and the input, parameter count, forward time, and the same output
twice in eval mode. Each option's extreme values (every choice, both ends of a
range) are also built and their output shape checked; a network too large to run
here (``width=1024``) is checked on PyTorch's "meta" device: shapes without memory
or compute.

A plugin's own tests call it the same way::

    from cyclestudio.plugins.checks import check_architecture

    def test_my_generator_passes_the_checks():
        reports = check_architecture("my_generator", plugin_files=["my_generator.py"])
        assert all(r.ok for r in reports), "\\n".join(r.text() for r in reports)
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cyclestudio.errors import UserError
from cyclestudio.plugins.discovery import Registry, load_registry
from cyclestudio.plugins.spec import ArchitectureSpec, GeneratorSpec

OK, WARN, FAIL = "ok", "warn", "FAIL"
CHECK_SIDE = 64  # the side checked when none is given: small enough to be quick on a CPU
REAL_LIMIT = 60_000_000  # parameters: larger networks are checked on the meta device


@dataclass
class Finding:
    """One thing a check found: ``ok``, ``warn`` (worth a look) or ``FAIL`` (must fix)."""

    level: str
    text: str


@dataclass
class Report:
    """The outcome of checking one spec with one set of options."""

    spec: ArchitectureSpec
    options: dict[str, Any]
    label: str = "defaults"
    findings: list[Finding] = field(default_factory=list)
    parameters: int | None = None
    forward_ms: float | None = None

    @property
    def ok(self) -> bool:
        """No failure (warnings allowed)."""
        return not any(f.level == FAIL for f in self.findings)

    def failures(self) -> list[str]:
        """The failures' texts."""
        return [f.text for f in self.findings if f.level == FAIL]

    def add(self, level: str, text: str) -> None:
        self.findings.append(Finding(level, text))

    def text(self) -> str:
        """The report as lines for a terminal."""
        head = f"{self.spec.kind} {self.spec.name} ({self.label})"
        if self.parameters is not None:
            head += f": {self.parameters:,} parameters"
        if self.forward_ms is not None:
            head += f", forward {self.forward_ms:.1f} ms"
        lines = [head] + [f"  {f.level:<4} {f.text}" for f in self.findings]
        return "\n".join(lines)


def _fits(spec: ArchitectureSpec, options: Mapping[str, Any], side: int) -> int:
    """The nearest side at or above ``side`` that the spec accepts with these options."""
    multiple = spec.multiple(options)
    side = max(side, spec.smallest(options))
    return math.ceil(side / multiple) * multiple


def check_sizes(spec: ArchitectureSpec, options: Mapping[str, Any], side: int = 0
                ) -> list[tuple[int, int]]:
    """Input sizes (H, W) to try: a square, a taller and a wider image, all valid."""
    base = _fits(spec, options, side or CHECK_SIDE)
    step = spec.multiple(options)
    if step == 1:  # any size: try odd ones as well
        return [(base, base), (base + 7, base + 3), (base, base * 2)]
    return [(base, base), (base + step, base), (base, base * 2)]


def _random_images(n: int, channels: int, h: int, w: int, device: torch.device) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(n, channels, h, w, generator=gen) * 2 - 1).to(device)


def _forward(net: nn.Module, x: Tensor) -> Tensor:
    out = net(x)
    if not isinstance(out, Tensor):
        raise TypeError(f"the network returned {type(out).__name__}; return one tensor")
    return out


def _bounded(net: nn.Module, x: Tensor, low: float, high: float) -> bool:
    """Whether the output stays in [low, high] even with every weight scaled up 100×.

    A final tanh (or sigmoid, or clamp) keeps it there; a network ending in a plain
    convolution does not, however small its initial weights happen to be.
    """
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        for p in scaled.parameters():
            p.mul_(100)
        out = scaled.eval()(x).float()
    return bool(out.min() >= low - 1e-4 and out.max() <= high + 1e-4)


def check_network(
    spec: ArchitectureSpec,
    options: Mapping[str, Any] | None = None,
    *,
    channels: int = 3,
    sizes: Sequence[tuple[int, int]] | None = None,
    device: str | torch.device = "cpu",
    timing: bool = True,
    label: str = "defaults",
) -> Report:
    """Build one network for real and run every check on it (see the module docstring)."""
    from cyclestudio.core.networks import build_network, count_parameters

    opts = spec.resolve_options(options)
    report = Report(spec, opts, label)
    device = torch.device(device)
    is_gen = isinstance(spec, GeneratorSpec)
    try:
        net = build_network(spec, opts, channels).to(device)
    except UserError as error:
        report.add(FAIL, error.message)
        return report
    report.parameters = count_parameters(net)
    sizes = list(sizes or check_sizes(spec, opts))

    # Output shape at several sizes (eval mode, no gradients).
    net.eval()
    try:
        with torch.no_grad():
            for h, w in sizes:
                out = _forward(net, _random_images(1, channels, h, w, device))
                shape = tuple(out.shape)
                if is_gen and shape != (1, channels, h, w):
                    report.add(FAIL, f"output shape {shape} for input {(1, channels, h, w)}: a "
                               "generator must keep the image size and channel count")
                elif not is_gen and (out.dim() < 2 or shape[0] != 1 or out.numel() == 0):
                    report.add(FAIL, f"output shape {shape} for input {(1, channels, h, w)}: "
                               "scores must have the batch first and at least one per image")
                else:
                    report.add(OK, f"{h}×{w} → {tuple(shape[1:])}")
    except Exception as exc:  # noqa: BLE001 - reporting the plugin's failure is the point
        report.add(FAIL, f"forward at {h}×{w} failed: {type(exc).__name__}: {exc}")
        return report
    if not report.ok:
        return report

    h, w = sizes[0]
    x = _random_images(2, channels, h, w, device)
    try:
        _check_range(report, net, x, is_gen)
        _check_gradients(report, net, x)
        _check_determinism(report, net, x, is_gen)
        if timing:
            report.forward_ms = _forward_ms(net, x[:1])
    except Exception as exc:  # noqa: BLE001
        report.add(FAIL, f"{type(exc).__name__}: {exc}")
    return report


def _check_range(report: Report, net: nn.Module, x: Tensor, is_gen: bool) -> None:
    with torch.no_grad():
        out = _forward(net.eval(), x).float()
    low, high = float(out.min()), float(out.max())
    if not math.isfinite(low) or not math.isfinite(high):
        report.add(FAIL, "the output holds NaN or infinity on random input")
        return
    if is_gen:
        if low < -1.0001 or high > 1.0001 or not _bounded(net, x, -1, 1):
            report.add(FAIL, f"output range [{low:.3g}, {high:.3g}] is not bounded to [-1, 1]: "
                       "end the generator with tanh")
        else:
            report.add(OK, f"output range [{low:.3g}, {high:.3g}], bounded to [-1, 1]")
    elif low >= 0 and high <= 1 and _bounded(net, x, 0, 1):
        report.add(WARN, f"scores all lie in [0, 1] ({low:.3g}..{high:.3g}): a sigmoid at the "
                   "end? Return raw scores; the GAN loss applies its own")
    else:
        report.add(OK, f"raw scores, range [{low:.3g}, {high:.3g}]")


def _check_gradients(report: Report, net: nn.Module, x: Tensor) -> None:
    net.train()
    net.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = _forward(net, x)
    # A random projection, not the mean: after a norm layer the mean carries no gradient.
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    (out * weights).sum().backward()
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    missing = [n for n, p in named if p.grad is None]
    zero = [n for n, p in named if p.grad is not None and not bool(p.grad.any())]
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        report.add(FAIL, f"{len(missing)} of {len(named)} parameters get no gradient: "
                   f"{', '.join(missing[:4])}{more} (unused in forward, or detached)")
    else:
        report.add(OK, f"a gradient reaches all {len(named)} parameter tensors")
    if zero:
        report.add(OK, f"{len(zero)} start with an exactly zero gradient (e.g. a gate "
                   f"initialised to 0): {', '.join(zero[:3])}")
    if x.grad is None or not bool(x.grad.any()):
        report.add(FAIL, "no gradient reaches the input: the output does not depend on the "
                   "image differentiably (training needs it to)")
    net.zero_grad(set_to_none=True)


def _check_determinism(report: Report, net: nn.Module, x: Tensor, is_gen: bool) -> None:
    net.eval()
    with torch.no_grad():
        first, second = _forward(net, x), _forward(net, x)
    if torch.equal(first, second):
        report.add(OK, "eval mode is deterministic")
    elif is_gen:
        report.add(FAIL, "eval mode gives a different output for the same input (noise or "
                   "dropout that ignores eval()): translation would not be repeatable")
    else:
        report.add(WARN, "eval mode gives different scores for the same input")


def _forward_ms(net: nn.Module, x: Tensor, runs: int = 3) -> float:
    net.eval()
    times = []
    with torch.no_grad():
        _forward(net, x)  # warm-up
        for _ in range(runs):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            _forward(net, x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def check_shape_only(
    spec: ArchitectureSpec, options: Mapping[str, Any], size: tuple[int, int], *,
    channels: int = 3, label: str = "", device: str | torch.device = "cpu",
) -> Report:
    """Build and check the output shape at ``size``: for real when the network is small,
    on PyTorch's meta device (shapes only, no memory or compute) when it is large."""
    from cyclestudio.core.networks import build_network

    opts = spec.resolve_options(options)
    report = Report(spec, opts, label or _label(spec, opts))
    is_gen = isinstance(spec, GeneratorSpec)
    h, w = size
    try:
        with torch.device("meta"):
            net = spec.build(*([channels] * len(spec.channel_args)), **opts)
        if not isinstance(net, nn.Module):
            report.add(FAIL, f"build returned {type(net).__name__}, not a torch.nn.Module")
            return report
        report.parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
        if report.parameters <= REAL_LIMIT:
            net = build_network(spec, opts, channels).to(device).eval()
            with torch.no_grad():
                out = _forward(net, _random_images(1, channels, h, w, torch.device(device)))
        else:
            out = _forward(net.eval(), torch.empty(1, channels, h, w, device="meta"))
    except UserError as error:
        report.add(FAIL, error.message)
        return report
    except Exception as exc:  # noqa: BLE001 - reporting the plugin's failure is the point
        if "meta" in str(exc).lower() or isinstance(exc, NotImplementedError):
            report.add(WARN, f"too large to run here ({report.parameters:,} parameters) and "
                       "its layers have no meta-device version: shape not checked")
        else:
            report.add(FAIL, f"at {h}×{w}: {type(exc).__name__}: {exc}")
        return report
    shape = tuple(out.shape)
    if is_gen and shape != (1, channels, h, w):
        report.add(FAIL, f"output shape {shape} for input {(1, channels, h, w)}: a generator "
                   "must keep the image size and channel count")
    elif not is_gen and (len(shape) < 2 or shape[0] != 1 or math.prod(shape) == 0):
        report.add(FAIL, f"output shape {shape} for input {(1, channels, h, w)}: scores must "
                   "have the batch first and at least one per image")
    else:
        report.add(OK, f"{h}×{w} → {shape[1:]}")
    return report


def _label(spec: ArchitectureSpec, options: Mapping[str, Any]) -> str:
    defaults = spec.resolve_options()
    changed = [f"{k}={v}" for k, v in options.items() if defaults.get(k) != v]
    return ", ".join(changed) or "defaults"


def check_spec(
    spec: ArchitectureSpec, *, options: Mapping[str, Any] | None = None, side: int = 0,
    channels: int = 3, device: str | torch.device = "cpu", extremes: bool = True,
    timing: bool = True,
) -> list[Report]:
    """Every check at the defaults (or ``options``), and a shape check at each option's
    extreme values (the other options as given)."""
    defaults = spec.resolve_options(options)
    reports = [check_network(spec, defaults, channels=channels,
                             sizes=check_sizes(spec, defaults, side), device=device,
                             timing=timing, label=_label(spec, defaults))]
    if not extremes:
        return reports
    for opt in spec.options:
        for value in opt.extremes():
            options = {**defaults, opt.name: value}
            try:
                side_here = _fits(spec, options, side or CHECK_SIDE)
            except Exception as exc:  # noqa: BLE001 - a size rule that fails for this value
                report = Report(spec, options, _label(spec, options))
                report.add(FAIL, f"size_multiple/min_size failed: {type(exc).__name__}: {exc}")
                reports.append(report)
                continue
            reports.append(check_shape_only(spec, options, (side_here, side_here),
                                            channels=channels, device=device))
    return reports


def resolve_target(target: str, reg: Registry | None = None
                   ) -> tuple[Registry, list[ArchitectureSpec], list[Any]]:
    """What ``plugins check TARGET`` means: a file, an architecture or a plugin name.

    Returns the registry, the specs to check and the load errors that belong to the
    target. Raises UserError when the target is none of these.
    """
    path = Path(target)
    is_file = path.suffix == ".py" or path.exists()
    if is_file:
        if not path.is_file():
            raise UserError(f"{path} does not exist",
                            "give a plugin .py file, an architecture name or a plugin name")
        reg = load_registry([path])
        resolved = str(path.resolve())
        specs = [s for s in (*reg.generators.values(), *reg.discriminators.values())
                 if s.source == resolved]
        return reg, specs, [e for e in reg.errors if e.source == resolved]
    reg = reg or load_registry()
    specs = [t[target] for t in (reg.generators, reg.discriminators) if target in t]
    if specs:
        return reg, specs, []
    plugin = reg.plugin(target) or next((p for p in reg.plugins if p.name == target), None)
    if plugin is not None:
        if plugin.status == "disabled":
            raise UserError(f"plugin {plugin.name} is disabled",
                            f"enable it with `cyclestudio plugins enable {plugin.id}`")
        specs = [reg.generators[n] for n in plugin.generators] + [
            reg.discriminators[n] for n in plugin.discriminators]
        return reg, specs, list(plugin.errors)
    names = sorted({*reg.generators, *reg.discriminators, *(p.name for p in reg.plugins)})
    raise UserError(f"no plugin file, architecture or plugin named '{target}'",
                    f"known names: {', '.join(names)}")


def check_architecture(
    target: str, *, options: Mapping[str, Any] | None = None,
    plugin_files: Iterable[str | Path] = (), side: int = 0, channels: int = 3,
    extremes: bool = True, timing: bool = False,
) -> list[Report]:
    """Check an architecture by name (loading ``plugin_files`` too), for a plugin's tests.

    ``options`` replace the defaults (small widths keep a test fast); each option's
    extremes are tried with the others as given. Raises UserError naming the load
    error if the plugin failed to load.
    """
    reg = load_registry(plugin_files)
    table = {**reg.discriminators, **reg.generators}
    if target not in table:
        _, specs, errors = resolve_target(target, reg)
        if errors:
            raise UserError(f"{target} failed to load: {errors[0].message}", errors[0].details)
    else:
        specs = [table[target]]
    reports: list[Report] = []
    for spec in specs:
        reports += check_spec(spec, options=options if spec.name == target else None,
                              side=side, channels=channels, extremes=extremes, timing=timing)
    return reports


_PASSED: set[tuple[Any, ...]] = set()  # checks passed in this process, not repeated


def preflight(
    generator: GeneratorSpec, g_options: Mapping[str, Any],
    discriminator: ArchitectureSpec, d_options: Mapping[str, Any],
    *, channels: int, size: int, device: str = "cpu",
) -> None:
    """Before a run starts: both networks pass the checks at the chosen options and size.

    Runs on the training device (``auto`` as training picks it). Raises UserError
    naming the plugin and the first thing wrong; nothing is written.
    """
    from cyclestudio.core.devices import pick_device

    dev = pick_device(device)
    for spec, options, flag in ((generator, g_options, "--generator"),
                                (discriminator, d_options, "--discriminator")):
        key = (spec.kind, spec.name, spec.source, tuple(sorted(options.items())), channels,
               size, str(dev))
        if key in _PASSED:
            continue
        smallest = spec.smallest(options)
        if size < smallest:
            raise UserError(
                f"{spec.kind} {spec.name} needs images of at least {smallest}×{smallest} "
                f"with these options; --size {size} is smaller",
                f"use --size {_fits(spec, options, smallest)} or more, smaller options "
                f"(see `cyclestudio plugins list`), or another {flag}",
            )
        # Every check on a small image, then the shape at the training size (rounded up
        # to the multiple the data loader pads to, for the modes that keep image shapes).
        small, full = _fits(spec, options, min(size, 32)), _fits(spec, options, size)
        report = check_network(spec, options, channels=channels, sizes=[(small, small)],
                               device=dev, timing=False)
        if report.ok and small != full:
            report = check_shape_only(spec, options, (full, full), channels=channels,
                                      device=dev)
        if not report.ok:
            raise UserError(
                f"{spec.kind} plugin '{spec.name}' ({spec.source}) fails the pre-flight "
                f"check: {report.failures()[0]}",
                f"fix the plugin, or choose another {flag}; "
                f"`cyclestudio plugins check {spec.name}` shows the full report",
            )
        _PASSED.add(key)
