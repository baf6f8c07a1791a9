"""Checks on a model from an untrusted file, made before anything big is allocated.

A model file's header names a generator and its options; its tensors are the weights.
A header can ask for a network of any size (each option within its range, yet
together hundreds of gigabytes), so the network is first built on PyTorch's ``meta``
device (shapes only, no memory) and every tensor the file holds is compared with it.
Only a file that holds exactly that network is built for real, which then costs what
the file itself weighs. Weights that are NaN or infinite are refused: they would
write garbage and call it translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from cyclestudio.errors import UserError


def expected_shapes(name: str, options: Mapping[str, Any], channels: int,
                    reg: Any) -> dict[str, tuple[int, ...]] | None:
    """Every state-dict entry's shape of generator ``name``, built on the meta device.

    None when the plugin cannot build on the meta device (then nothing can be known
    before building it for real).
    """
    from cyclestudio.core.networks import build_generator

    try:
        with torch.device("meta"), _NoInitOnMeta():
            net = build_generator(name, options, channels, channels, reg)
    except Exception:  # noqa: BLE001 - a plugin that needs real memory to build
        return None
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


class _NoInitOnMeta(TorchFunctionMode):
    """In-place ops on meta tensors (``normal_``, ``zero_``: weight initialisation) do nothing.

    Shapes are all a meta build is for, and torch runs a meta ``normal_`` through its
    Python reference, whose first use imports torch's compiler: 2.5 s and ~100 MiB more
    for every command that loads a model file.
    """

    _SHAPE_CHANGING = frozenset({"resize_", "resize_as_", "set_", "as_strided_", "squeeze_",
                                 "unsqueeze_", "transpose_", "t_", "swapdims_", "swapaxes_"})

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.startswith("_") and name not in self._SHAPE_CHANGING
                and args and isinstance(args[0], torch.Tensor) and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


def check_weights(
    source: Path, generator: str, options: Mapping[str, Any], channels: int,
    weights: Mapping[str, Any], reg: Any,
) -> None:
    """UserError unless ``weights`` (net name → state dict) is exactly the described network.

    Shapes are compared against a meta-device build, so a header asking for a giant
    network costs nothing; then every floating-point tensor must be finite.
    """
    expected = expected_shapes(generator, options, channels, reg)
    for net, state in weights.items():
        if not isinstance(state, Mapping) or not all(
                isinstance(t, torch.Tensor) for t in state.values()):
            raise UserError(f"{source.name} holds damaged {net} weights",
                            "export the model again from its run")
        if expected is not None:
            _compare(source, net, generator, options, expected, state)
        for key, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise UserError(
                    f"{source.name} cannot be used: {net}.{key} holds NaN or infinite values",
                    "the training diverged before this was saved; use an earlier checkpoint "
                    "or train again with a lower learning rate")


def _compare(source: Path, net: str, generator: str, options: Mapping[str, Any],
             expected: Mapping[str, tuple[int, ...]], state: Mapping[str, torch.Tensor]) -> None:
    described = f"'{generator}' with {dict(options)}"
    problem = None
    for key, shape in expected.items():
        if key not in state:
            problem = f"{net}.{key} {shape} is missing"
            break
        found = tuple(state[key].shape)
        if found != shape:
            problem = f"{net}.{key} is {found} in the file but {shape} in that network"
            break
    if problem is None:
        extra = sorted(set(state) - set(expected))
        if extra:
            problem = f"{net}.{extra[0]} is not part of that network"
    if problem is not None:
        raise UserError(
            f"{source.name} does not hold the network its header describes "
            f"({described}): {problem}",
            "the file is damaged or was altered; export the model again from its run")
