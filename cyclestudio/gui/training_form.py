"""The Training page's settings form, built from cyclestudio/options.py.

Every row is a setting of `cyclestudio train` with its label, range, default and help
taken from the one table the command line is built from, so the two cannot drift. The
form sends only the values that differ from the defaults; the job works out the rest
(a derived value such as the decay epochs follows the epochs the job is given).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QWidget

from cyclestudio import options
from cyclestudio.gui.option_form import make_widget, set_widget_value, widget_value

# The order and headings of the form; the device has its own box on the page.
SECTIONS = (options.DATA, options.OBJECTIVE, options.SCHEDULE, options.VALIDATION, options.SPEED,
            options.RUN)


def form_settings() -> list[options.Setting]:
    """The settings the form shows, in order."""
    return [s for group in SECTIONS for s in options.TRAIN if s.group == group and s.in_app]


class HyperParameters(QWidget):
    """The training settings, starting at a preset's values (``baseline``)."""

    edited = Signal()  # the user changed a value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = form_settings()
        self.baseline = options.baseline()
        self.widgets: dict[str, QWidget] = {}
        form = self._form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        # Until the user sets one, the crop size follows the images: cropping 256 px
        # out of 64 px images only upsamples them and makes every step 16 times slower.
        self.fitted_note = QLabel("")
        self.fitted_note.setWordWrap(True)
        self.fitted_note.setStyleSheet("color: gray")
        self._fitting = False
        self.user_sized = False
        self.smallest_side = 0  # the project's shortest image side, once known
        group = ""
        for setting in self.settings:
            if setting.group != group:
                group = setting.group
                heading = QLabel(f"<b>{group.capitalize()}</b>")
                form.addRow(heading)
            widget = make_widget(setting.to_json())
            widget.setObjectName(setting.name)
            label = QLabel(setting.title)
            label.setToolTip(f"{setting.option}: {widget.toolTip()}")
            widget.setToolTip(label.toolTip())
            form.addRow(label, widget)
            self.widgets[setting.name] = widget
            _on_change(widget, self._changed)
            if setting.name == "size":
                form.addRow("", self.fitted_note)
        form.setRowVisible(self.fitted_note, False)
        for setting in self.settings:  # the default preset's values, not only the defaults
            self.set_value(setting.name, self.baseline[setting.name])
        for name in ("size", "load_size"):
            self.field(name).valueChanged.connect(self._size_edited)  # type: ignore[attr-defined]

    # -- values ----------------------------------------------------------------------
    def field(self, name: str) -> Any:
        """The widget of setting ``name``."""
        return self.widgets[name]

    def value(self, name: str) -> Any:
        """A setting's value on the form (None: automatic)."""
        return widget_value(self.widgets[name])

    def set_value(self, name: str, value: Any) -> None:
        """Put a value in a setting's widget (None: automatic)."""
        set_widget_value(self.widgets[name], value)

    def offer(self, name: str, shown: bool, maximum: int | None = None) -> None:
        """Show or hide one setting's row; a hidden one goes back to its default."""
        widget = self.widgets[name]
        if maximum is not None:
            widget.setMaximum(max(maximum, widget.minimum()))  # type: ignore[attr-defined]
        if not shown:
            self.set_value(name, options.default(name))
        self._form.setRowVisible(widget, shown)

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the baseline (the preset's values)."""
        out = {}
        for s in self.settings:
            value = self.value(s.name)
            if value is not None and value != self.baseline[s.name]:
                out[s.name] = value
        return out

    def resolved(self) -> dict[str, Any]:
        """Every setting as the job will see it, derived ones worked out."""
        return options.resolve({**self.changed(), "preset": self.baseline["preset"]})

    def apply_baseline(self, preset_name: str) -> None:
        """Start again from a preset's values (the crop still fits the images)."""
        self.baseline = options.baseline(preset_name=preset_name)
        self._fitting = True
        try:
            for s in self.settings:
                self.set_value(s.name, self.baseline[s.name])
        finally:
            self._fitting = False
        self.refit()

    def _changed(self) -> None:
        if not self._fitting:
            self.edited.emit()

    def arguments(self) -> list[str]:
        """The `cyclestudio train` flags for the values the user changed."""
        by_name = options.TRAIN_BY_NAME
        args: list[str] = []
        for name, value in self.changed().items():
            setting = by_name[name]
            if setting.type is bool:
                args.append(setting.option if value else "--no-" + setting.option[2:])
            else:
                args += [setting.option, repr(value) if isinstance(value, float) else str(value)]
        return args

    def set_from_config(self, config: dict[str, Any]) -> None:
        """Show a run's config.json values."""
        self._fitting = True
        try:
            for s in self.settings:
                section = config.get(s.section, {})
                if isinstance(section, dict) and s.name in section:
                    self.set_value(s.name, section[s.name])
        finally:
            self._fitting = False
        self.user_sized = True  # a run's own sizes are kept
        self._note("")

    # -- fitting the crop size to the images ----------------------------------------------
    def _note(self, text: str) -> None:
        self.fitted_note.setText(text)
        self._form.setRowVisible(self.fitted_note, bool(text))

    def _size_edited(self) -> None:
        if not self._fitting:
            self.user_sized = True
            self._note("")

    def refit(self) -> None:
        """Fit the crop size to the images again, forgetting any run's or user's size."""
        self.user_sized = False
        self._fitting = True
        try:
            self.set_value("load_size", None)
        finally:
            self._fitting = False
        if self.smallest_side:
            self.fit_to_images(self.smallest_side)

    def fit_to_images(self, side: int) -> None:
        """Crop at most the shortest image side (a multiple of 4), unless the user chose."""
        self.smallest_side = side
        if self.user_sized or side < 16:
            return
        # Never above the preset's own crop (the paper's 256).
        size = max(16, min(int(self.baseline["size"]), side // 4 * 4))
        self._fitting = True
        try:
            self.set_value("size", size)
            self.set_value("load_size", None)  # follows the crop
        finally:
            self._fitting = False
        default = int(self.baseline["size"])
        self._note(
            f"Fitted to your images (shortest side {side} px); the recipe crops {default}."
            if size < default else "")


def _on_change(widget: QWidget, slot: Any) -> None:
    """Call ``slot`` whenever the widget's value changes."""
    if isinstance(widget, QComboBox):
        widget.currentIndexChanged.connect(lambda _: slot())
    elif isinstance(widget, QCheckBox):
        widget.toggled.connect(lambda _: slot())
    else:
        widget.valueChanged.connect(lambda _: slot())  # type: ignore[attr-defined]
