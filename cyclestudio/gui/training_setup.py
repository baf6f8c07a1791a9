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
from cyclestudio.gui.run_status import Note
from cyclestudio.gui.training_form import HyperParameters

# The configuration `cyclestudio demo` prints: learns in minutes on a laptop CPU.
FAST_CPU: dict[str, Any] = {
    "generator": "resnet_6blocks",
    "generator_options": {"width": 16, "upsample": "resize"},
    "discriminator": "patchgan",
    "discriminator_options": {"width": 32},
    "size": 64,
}
CPU_NOTE = (
    "Training will run on the CPU. The paper's full-size networks take seconds per "
    "image here (ResNet-9 at 256 px: about 0.3 images/s on two cores); the fast "
    "settings run about 8 times faster.")
FAST_CPU_TIP = ("ResNet with 6 blocks at width 16 and resize upsampling, PatchGAN at "
                "width 32, crops of at most 64 px")


class TrainingSetup(QScrollArea):
    """The run list, the CPU advice, both architectures, the settings form and the device."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = QComboBox()
        self.runs.setToolTip("A new run, or one of the project's runs to watch or resume")
        self.generator = ArchitecturePicker("generators", options.DEFAULT_GENERATOR)
        self.discriminator = ArchitecturePicker("discriminators", options.DEFAULT_DISCRIMINATOR)
        self.hyper = HyperParameters()
        self.device = DevicePicker()
        self.device.currentIndexChanged.connect(self._advise)
        self.generator.combo.currentIndexChanged.connect(self._advise)
        self.plugin_errors = QLabel()
        self.plugin_errors.setWordWrap(True)
        self.plugin_errors.setStyleSheet("color: #d33")
        self.plugin_errors.hide()
        # On a CPU the paper's networks crawl: say so where the user starts, and offer
        # the small configuration that still learns.
        self.cpu_note = Note(CPU_NOTE, "Use the fast CPU settings", FAST_CPU_TIP)
        self.cpu_note.button.clicked.connect(self.use_fast_cpu_settings)

        self.panel = QWidget()
        layout = QVBoxLayout(self.panel)
        boxes = []
        for title, widget in (("Run", self.runs), ("Generator", self.generator),
                              ("Discriminator", self.discriminator),
                              ("Settings (the paper's defaults)", self.hyper),
                              ("Device", self.device)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(widget)
            boxes.append(box)
        for w in (boxes[0], self.plugin_errors, self.cpu_note, *boxes[1:]):
            layout.addWidget(w)
        layout.addStretch(1)
        self.setWidget(self.panel)
        self.setWidgetResizable(True)
        self.setMinimumWidth(330)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_plugins(self, generators: list[dict[str, Any]],
                    discriminators: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        """Offer the architectures `plugins list --json` reported, and its errors."""
        self.generator.set_specs(generators)
        self.discriminator.set_specs(discriminators)
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
        for flag, name, default in (
                ("--generator", self.generator.name(), options.DEFAULT_GENERATOR),
                ("--discriminator", self.discriminator.name(), options.DEFAULT_DISCRIMINATOR)):
            if name != default:
                args += [flag, name]
        for option in self.generator.form.changed_options():
            args += ["--generator-option", option]
        for option in self.discriminator.form.changed_options():
            args += ["--discriminator-option", option]
        args += self.hyper.arguments()
        if self.device.chosen() != options.default("device"):
            args += ["--device", self.device.chosen()]
        return args

    def show_config(self, config: dict[str, Any]) -> None:
        """Show a run's config.json: its networks and settings."""
        self.hyper.set_from_config(config)
        gen, dis = config.get("generator", {}), config.get("discriminator", {})
        self.generator.select(gen.get("name", ""), gen.get("options", {}))
        self.discriminator.select(dis.get("name", ""), dis.get("options", {}))

    # -- the CPU advice ----------------------------------------------------------------
    def _advise(self, _: int = 0) -> None:
        self.cpu_note.setVisible(self.device.on_cpu() and not self.fast_settings_in_use())

    def fast_settings_in_use(self) -> bool:
        """True when the page already holds the fast CPU configuration."""
        gen = self.generator.form.values() if self.generator.specs else {}
        return (self.generator.name() == FAST_CPU["generator"]
                and all(gen.get(k) == v for k, v in FAST_CPU["generator_options"].items()))

    def use_fast_cpu_settings(self) -> None:
        """The small configuration `cyclestudio demo` suggests: about 8× faster on a CPU."""
        self.generator.select(FAST_CPU["generator"], FAST_CPU["generator_options"])
        self.discriminator.select(FAST_CPU["discriminator"], FAST_CPU["discriminator_options"])
        side = min(FAST_CPU["size"], self.hyper.value("size"))
        self.hyper.set_value("size", side)
        self.hyper.set_value("load_size", None)  # follows the crop
        self._advise()
