"""The hooks an architecture plugin implements. These docstrings are the author's manual.

A plugin is a Python module (a ``.py`` file in the user plugin folder, or a module
an installed package names in the ``cyclestudio`` entry-point group) with one or
both of the functions below, each marked ``@hookimpl``::

    from cyclestudio.plugins import GeneratorSpec, Option, hookimpl

    @hookimpl
    def generators():
        return [GeneratorSpec("tiny", "Tiny generator", build_tiny,
                              [Option("width", int, 16, "channels", min=1, max=512)],
                              size_multiple=2)]

The rules every network follows (``cyclestudio plugins check`` verifies them):

- **Options arrive as keyword arguments** named like the options, after the
  channel counts: ``build(in_channels, out_channels, width=16)`` for a generator,
  ``build(in_channels, width=16)`` for a discriminator. Every option must be a
  parameter of ``build`` (or ``build`` takes ``**options``), and every parameter
  without a default must be an option; this is checked when the plugin loads.
- **Weights are initialised for you**: after ``build``, every Conv and Linear
  weight is drawn from N(0, 0.02) and its bias set to 0, as in the paper, unless
  the spec says ``keeps_own_init=True``.
- **Images are in [-1, 1]**, channels first. ``in_channels`` and
  ``out_channels`` are 3 for colour data and 1 for greyscale.
- The module may import torch at the top; it is imported only by the processes
  that train, translate or check (the app learns the specs from a worker).

A plugin that fails to import, returns a bad spec, registers no hook or
implements a hook not listed here is shown with its error by
``cyclestudio plugins list`` and on the app's Plugins page, and skipped.
"""

from __future__ import annotations

import pluggy

from cyclestudio.plugins.spec import DiscriminatorSpec, GeneratorSpec

PROJECT = "cyclestudio"

#: Marks the functions of a plugin module that implement the hooks below.
hookimpl = pluggy.HookimplMarker(PROJECT)
#: Marks the hook specifications (cyclestudio's own use).
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def generators() -> list[GeneratorSpec]:  # type: ignore[empty-body]
    """Return the generators this plugin offers, as a list of ``GeneratorSpec``.

    A generator maps an image batch ``(N, in_channels, H, W)`` in [-1, 1] to
    ``(N, out_channels, H, W)`` in [-1, 1]: the same height and width, values
    bounded by a final ``tanh``. It must accept any H and W that are multiples of
    the spec's ``size_multiple`` (and at least ``min_size``); translation pads
    images up to such a size and crops the result back. cyclestudio builds two
    (A to B and B to A) and records the spec's name and the resolved options in
    checkpoints and model files, so a model file needs the plugin installed to load.
    In eval mode the output must be deterministic (translation is repeatable).
    """


@hookspec
def discriminators() -> list[DiscriminatorSpec]:  # type: ignore[empty-body]
    """Return the discriminators this plugin offers, as a list of ``DiscriminatorSpec``.

    A discriminator maps ``(N, in_channels, H, W)`` in [-1, 1] to one tensor of raw
    scores with the batch first: a map of one score per patch, or a vector. No
    sigmoid at the end: the GAN loss chosen in the training options (lsgan,
    vanilla, hinge, wgangp) applies its own. Every score counts equally in the loss
    (its mean is taken), and WGAN-GP differentiates the scores' sum with respect to
    the input, so avoid layers that mix samples of a batch (batch norm) with wgangp.
    """
