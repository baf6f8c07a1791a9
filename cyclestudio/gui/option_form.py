"""Form widgets built from a plugin's option specs (as `plugins list --json` gives them)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e12


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class DecimalSpinBox(QDoubleSpinBox):
    """A float field that shows what was typed, not padding: 1, 0.5, 0.0002 (six places
    are kept for learning rates, but "1.000000" is not shown)."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(6)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        text = self.locale().toString(float(value), "f", self.decimals())
        if not self.isGroupSeparatorShown():
            text = text.replace(self.locale().groupSeparator(), "")
        point = self.locale().decimalPoint()
        if point in text:
            text = text.rstrip("0").rstrip(point)
        return text


def _automatic(spec: dict[str, Any]) -> bool:
    """A number whose default is worked out from other values ("auto")."""
    return spec.get("default") is None and bool(spec.get("auto")) and spec.get("type") in (
        "int", "float")


def make_widget(spec: dict[str, Any]) -> QWidget:
    """One widget for one option: choices → combo box, int/float → spin box (range
    enforced), bool → check box, str → line edit; the option's help is the tooltip.

    A number with no default but an ``auto`` text (worked out from other values, such
    as the load size) gets a spin box whose lowest step reads "auto (…)" and means None.
    """
    kind, default = spec.get("type"), spec.get("default")
    choices = spec.get("choices")
    low, high = spec.get("min"), spec.get("max")
    widget: QWidget
    if _automatic(spec):
        auto = f"auto ({spec['auto']})"
        if kind == "int":
            spin = QSpinBox()
            floor = int(low) if low is not None else 0
            spin.setRange(floor - 1, int(high) if high is not None else INT_LIMIT)
        else:
            spin = DecimalSpinBox()
            floor = float(low) if low is not None else 0.0
            spin.setRange(0.0 if floor > 0 else floor - 1, float(high) if high is not None
                          else FLOAT_LIMIT)
            spin.setSingleStep(max(floor, 1e-6) * 10 if floor > 0 else 0.1)
        spin.setSpecialValueText(auto)
        spin.setValue(spin.minimum())
        widget = spin
    elif choices:
        combo = QComboBox()
        for choice in choices:
            combo.addItem(_text(choice), choice)
        if default in choices:
            combo.setCurrentIndex(list(choices).index(default))
        widget = combo
    elif kind == "bool":
        box = QCheckBox()
        box.setChecked(bool(default))
        widget = box
    elif kind == "int":
        spin = QSpinBox()
        spin.setRange(int(low) if low is not None else -INT_LIMIT,
                      int(high) if high is not None else INT_LIMIT)
        spin.setValue(int(default or 0))
        widget = spin
    elif kind == "float":
        dspin = DecimalSpinBox()
        dspin.setRange(float(low) if low is not None else -FLOAT_LIMIT,
                       float(high) if high is not None else FLOAT_LIMIT)
        dspin.setSingleStep(0.1 if abs(float(default or 0)) >= 0.1 or not default else
                            float(default) / 10)
        dspin.setValue(float(default or 0))
        widget = dspin
    else:
        edit = QLineEdit(_text(default) if default is not None else "")
        widget = edit
    tip = spec.get("help") or ""
    parts = [tip] if tip else []
    if low is not None or high is not None:
        parts.append(f"range {'' if low is None else low}…{'' if high is None else high}")
    parts.append(f"default: {spec['auto']}" if _automatic(spec) else f"default {_text(default)}")
    widget.setToolTip("\n".join(parts))
    return widget


def widget_value(widget: QWidget) -> Any:
    """The value a widget from ``make_widget`` holds."""
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        if widget.specialValueText() and widget.value() == widget.minimum():
            return None  # "auto"
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text()
    raise TypeError(widget)


def set_widget_value(widget: QWidget, value: Any) -> None:
    """Put ``value`` in a widget from ``make_widget`` (values out of range are clamped
    by the spin box; an unknown choice is ignored)."""
    if isinstance(widget, QComboBox):
        i = widget.findData(value)
        if i >= 0:
            widget.setCurrentIndex(i)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QSpinBox):
        widget.setValue(widget.minimum() if value is None else int(value))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(widget.minimum() if value is None else float(value))
    elif isinstance(widget, QLineEdit):
        widget.setText(_text(value))


class OptionForm(QWidget):
    """The options of one architecture as a form; ``changed_options`` gives KEY=VALUE args."""

    edited = Signal()  # a value changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.specs: list[dict[str, Any]] = []
        self.widgets: dict[str, QWidget] = {}

    def set_options(self, specs: list[dict[str, Any]]) -> None:
        """Rebuild the form for a new architecture's option specs."""
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.specs = list(specs)
        self.widgets = {}
        for spec in self.specs:
            widget = make_widget(spec)
            label = QLabel(spec.get("label") or spec["name"].replace("_", " "))
            label.setToolTip(widget.toolTip())
            self.layout_.addRow(label, widget)
            self.widgets[spec["name"]] = widget
            _notify(widget, self.edited.emit)
        if not self.specs:
            self.layout_.addRow(QLabel("<i>no options</i>"))

    def values(self) -> dict[str, Any]:
        """Every option's current value."""
        return {name: widget_value(w) for name, w in self.widgets.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill in known options (unknown names are ignored)."""
        for name, value in values.items():
            if name in self.widgets:
                set_widget_value(self.widgets[name], value)

    def defaults(self) -> dict[str, Any]:
        """Every option's default."""
        return {spec["name"]: spec.get("default") for spec in self.specs}

    def all_options(self) -> list[str]:
        """``KEY=VALUE`` for every option."""
        return [f"{name}={_text(value)}" for name, value in self.values().items()]

    def changed_options(self) -> list[str]:
        """``KEY=VALUE`` for each option that differs from its default."""
        out = []
        for spec in self.specs:
            value = widget_value(self.widgets[spec["name"]])
            if value != spec.get("default"):
                out.append(f"{spec['name']}={_text(value)}")
        return out


def _notify(widget: QWidget, slot: Any) -> None:
    """Call ``slot`` whenever a widget from ``make_widget`` changes its value."""
    if isinstance(widget, QComboBox):
        widget.currentIndexChanged.connect(lambda _: slot())
    elif isinstance(widget, QCheckBox):
        widget.toggled.connect(lambda _: slot())
    elif isinstance(widget, QLineEdit):
        widget.textChanged.connect(lambda _: slot())
    else:
        widget.valueChanged.connect(lambda _: slot())  # type: ignore[attr-defined]
