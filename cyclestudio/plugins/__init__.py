"""The architecture plugin API: what a plugin imports to offer generators and discriminators.

    from cyclestudio.plugins import DiscriminatorSpec, GeneratorSpec, Option, hookimpl

The contract is in three places, each with its manual in the docstrings:
``cyclestudio.plugins.hookspecs`` (the hooks and the rules a network follows),
``cyclestudio.plugins.spec`` (``GeneratorSpec``, ``DiscriminatorSpec``, ``Option``)
and ``cyclestudio.plugins.layers`` (norm, padding, up- and down-sampling and other
building blocks, in torch). ``cyclestudio.plugins.checks`` runs the checks of
``cyclestudio plugins check`` from a plugin's own tests. docs/writing-plugins.md
walks through writing, testing and shipping one.

Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from cyclestudio.plugins.hookspecs import PROJECT, hookimpl, hookspec
from cyclestudio.plugins.spec import (
    OPTION_TYPES,
    Architecture,
    ArchitectureSpec,
    DiscriminatorSpec,
    GeneratorSpec,
    Option,
)

__all__ = [
    "OPTION_TYPES", "PROJECT", "Architecture", "ArchitectureSpec", "DiscriminatorSpec",
    "GeneratorSpec", "Option", "hookimpl", "hookspec",
]

# Discovery and the registry live in cyclestudio.plugins.discovery; these names
# were importable from here before the split and still are, without loading it eagerly.
_MOVED = {"registry", "load_registry", "Registry", "PluginError", "user_plugin_dir",
          "plugin_dirs", "PLUGIN_PATH_ENV", "ENTRY_POINT_GROUP"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from cyclestudio.plugins import discovery

        return getattr(discovery, name)
    raise AttributeError(f"module 'cyclestudio.plugins' has no attribute {name!r}")
