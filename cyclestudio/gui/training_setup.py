"""The left side of the Training page: which run, which networks, which settings, where.

Everything here describes a run before it starts; the page turns it into a
`cyclestudio train` command line (``arguments``) and shows a run's own settings when
one is chosen (``show_config``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGroupBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from cyclestudio import options
from cyclestudio.gui.architecture_picker import ArchitecturePicker
from cyclestudio.gui.device_picker import DevicePicker
from cyclestudio.gui.estimate_line import EstimateLine
from cyclestudio.gui.run_status import Note
from cyclestudio.gui.training_form import HyperParameters

# On a CPU: the fast preset's networks at crops of at most 64 px learn in minutes
# (benchmarks/README.md, "Quality").
_FAST = options.PRESETS["fast"]
FAST_CPU: dict[str, Any] = {
    "generator": _FAST.settings.get("generator", options.DEFAULT_GENERATOR),
    "generator_options": dict(_FAST.generator_options),
    "discriminator": _FAST.settings.get("discriminator", options.DEFAULT_DISCRIMINATOR),
    "discriminator_options": dict(_FAST.discriminator_options),
    "size": 64,
}
CPU_NOTE = (
    "Training will run on the CPU. The paper's full-size networks take seconds per "
    "image here (ResNet-9 at 256 px: about 0.3 images/s on two cores); the fast recipe's "
    "small networks at 64 px crops run about 8 times faster per pixel and learn colour "
    "changes within minutes.")
FAST_CPU_TIP = ("The “fast” preset's networks (ResNet with 6 blocks at width 16 that starts "
                "as the identity, PatchGAN at width 32 without instance norm) and crops of "
                "at most 64 px")


class TrainingSetup(QScrollArea):
    """The run list, the CPU advice, both architectures, the settings form and the device."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._applying = False  # filling in a preset: not the user's edits
        self.runs = QComboBox()
        self.runs.setToolTip("A new run, or one of the project's runs to watch or resume")
        # The recipe: a preset fills in the networks and the settings; editing any of
        # them makes it "Custom", based on that preset.
        self.preset = QComboBox()
        for name, recipe in options.PRESETS.items():
            self.preset.addItem(recipe.title, name)
            self.preset.setItemData(self.preset.count() - 1, recipe.description,
                                    Qt.ItemDataRole.ToolTipRole)
        self.preset.addItem("Custom", None)
        self.preset.setCurrentIndex(self.preset.findData(options.DEFAULT_PRESET))
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.preset_note.setStyleSheet("color: gray")
        self.base_preset = options.DEFAULT_PRESET
        self.generator = ArchitecturePicker("generators", options.DEFAULT_GENERATOR)
        self.discriminator = ArchitecturePicker("discriminators", options.DEFAULT_DISCRIMINATOR)
        self.hyper = HyperParameters()
        self.device = DevicePicker()
        self.device.currentIndexChanged.connect(self._advise)
        self.generator.combo.currentIndexChanged.connect(self._advise)
        self.hyper.edited.connect(self._edited)
        for picker in (self.generator, self.discriminator):
            picker.edited.connect(self._edited)
        self.plugin_errors = QLabel()
        self.plugin_errors.setWordWrap(True)
        self.plugin_errors.setStyleSheet("color: #d33")
        self.plugin_errors.hide()
        # On a CPU the paper's networks crawl: say so where the user starts, and offer
        # the small configuration that still learns.
        self.estimate = EstimateLine()
        self.cpu_note = Note(CPU_NOTE, "Use the fast CPU settings", FAST_CPU_TIP)
        self.cpu_note.button.clicked.connect(self.use_fast_cpu_settings)

        self.panel = QWidget()
        layout = QVBoxLayout(self.panel)
        boxes = []
        recipe = QWidget()
        recipe_layout = QVBoxLayout(recipe)
        recipe_layout.setContentsMargins(0, 0, 0, 0)
        recipe_layout.addWidget(self.preset)
        recipe_layout.addWidget(self.preset_note)
        for title, widget in (("Run", self.runs), ("Recipe", recipe),
                              ("Generator", self.generator),
                              ("Discriminator", self.discriminator),
                              ("Settings (the recipe's values)", self.hyper),
                              ("Device", self.device)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(widget)
            boxes.append(box)
        device_box = boxes[-1]
        device_box.layout().addWidget(self.estimate)
        for w in (boxes[0], self.plugin_errors, self.cpu_note, *boxes[1:]):  # Run first
            layout.addWidget(w)
        layout.addStretch(1)
        self.setWidget(self.panel)
        self.setWidgetResizable(True)
        self.setMinimumWidth(330)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_plugins(self, generators: list[dict[str, Any]],
                    discriminators: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        """Offer the architectures `plugins list --json` reported, and its errors."""
        first = not self.generator.specs
        self.generator.set_specs(generators)
        self.discriminator.set_specs(discriminators)
        if first and self.preset.currentData() is not None:
            self.apply_preset(self.base_preset)
        self.plugin_errors.setVisible(bool(errors))
        self.plugin_errors.setText("\n".join(
            f"Plugin {e.get('source')}: {e.get('message')}" for e in errors))

    def set_devices(self, devices: list[dict[str, Any]], preferred: str) -> None:
        """Offer these devices (``preferred`` when nothing was chosen yet)."""
        self.device.set_devices(devices, preferred)
        self._advise()

    def ready(self) -> bool:
        """True once both architectures are known."""
        return bool(self.generator.name() and self.discriminator.name())

    def arguments(self) -> list[str]:
        """The `cyclestudio train` flags for the networks, settings and device chosen.

        Only what differs from the defaults: the job works out the rest.
        """
        args: list[str] = []
        if self.base_preset != options.DEFAULT_PRESET:
            args += ["--preset", self.base_preset]
        baseline = self.hyper.baseline
        for flag, name, key in (("--generator", self.generator.name(), "generator"),
                                ("--discriminator", self.discriminator.name(),
                                 "discriminator")):
            if name != baseline[key]:
                args += [flag, name]
        # Every option, stated: a preset's own options then do not matter.
        for flag, picker in (("--generator-option", self.generator),
                             ("--discriminator-option", self.discriminator)):
            for option in picker.form.all_options():
                args += [flag, option]
        args += self.hyper.arguments()
        if self.device.chosen() != options.default("device"):
            args += ["--device", self.device.chosen()]
        return args

    def show_config(self, config: dict[str, Any]) -> None:
        """Show a run's config.json: its recipe, networks and settings."""
        name = str(config.get("run", {}).get("preset", "paper"))
        if name in options.PRESETS:
            self.apply_preset(name)
        self.hyper.set_from_config(config)
        gen, dis = config.get("generator", {}), config.get("discriminator", {})
        self.generator.select(gen.get("name", ""), gen.get("options", {}))
        self.discriminator.select(dis.get("name", ""), dis.get("options", {}))
        self._edited()

    # -- presets -------------------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        """Fill in a preset's networks and settings."""
        recipe = options.preset(name)
        self.base_preset = recipe.name
        self._applying = True
        try:
            self.hyper.apply_baseline(recipe.name)
            baseline = self.hyper.baseline
            for picker, kind in ((self.generator, "generator"),
                                 (self.discriminator, "discriminator")):
                arch = str(baseline[kind])
                picker.select(arch, recipe.architecture_options(kind, arch), reset=True)
        finally:
            self._applying = False
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.findData(recipe.name))
        self.preset.blockSignals(False)
        self._describe()
        self._advise()

    def is_custom(self) -> bool:
        """True when the networks or settings differ from the preset's."""
        recipe = options.preset(self.base_preset)
        baseline = self.hyper.baseline
        for picker, kind in ((self.generator, "generator"), (self.discriminator, "discriminator")):
            if not picker.specs:
                continue
            if picker.name() != baseline[kind]:
                return True
            known = picker.form.defaults()
            expected = {**known, **{k: v for k, v in recipe.architecture_options(
                kind, picker.name()).items() if k in known}}
            if picker.form.values() != expected:
                return True
        return bool(self.hyper.changed())

    def _preset_chosen(self, _: int) -> None:
        name = self.preset.currentData()
        if name is not None:
            self.apply_preset(name)
        else:
            self._describe()

    def _edited(self) -> None:
        if self._applying:
            return
        custom = self.is_custom()
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.findData(None) if custom
                                    else self.preset.findData(self.base_preset))
        self.preset.blockSignals(False)
        self._describe()
        self._advise()

    def _describe(self) -> None:
        recipe = options.preset(self.base_preset)
        changes = recipe.changes()
        text = recipe.description
        if changes:
            text += " Changes from the paper: " + ", ".join(changes) + "."
        if self.preset.currentData() is None:
            text = f"Based on “{recipe.title}”, with your changes."
        self.preset_note.setText(text)

    def _ask_estimate(self) -> None:
        if self.ready():
            self.estimate.request(self.arguments())

    # -- the CPU advice ----------------------------------------------------------------
    def _advise(self, _: int = 0) -> None:
        self.cpu_note.setVisible(self.device.on_cpu() and not self.fast_settings_in_use())
        # Several GPUs: offer to train on some of them at once (auto picks them).
        gpus = sum(str(d.get("id", "")).startswith("cuda") for d in self.device.devices or [])
        self.hyper.offer("gpus", gpus > 1 and self.device.chosen() == "auto", maximum=gpus)
        self._ask_estimate()

    def fast_settings_in_use(self) -> bool:
        """True when the page already holds the fast CPU configuration (small crops too)."""
        gen = self.generator.form.values() if self.generator.specs else {}
        known = self.generator.form.defaults() if self.generator.specs else {}
        return (self.generator.name() == FAST_CPU["generator"]
                and all(gen.get(k) == v for k, v in FAST_CPU["generator_options"].items()
                        if k in known)
                and self.hyper.value("size") <= FAST_CPU["size"])

    def use_fast_cpu_settings(self) -> None:
        """The fast preset's networks and crops of at most 64 px: about 8× faster on a CPU."""
        self.generator.select(FAST_CPU["generator"], FAST_CPU["generator_options"])
        self.discriminator.select(FAST_CPU["discriminator"], FAST_CPU["discriminator_options"])
        side = min(FAST_CPU["size"], self.hyper.value("size"))
        self.hyper.set_value("size", side)
        self.hyper.set_value("load_size", None)  # follows the crop
        self._advise()
