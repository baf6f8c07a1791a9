"""Choosing a generator or discriminator: a combo box of the plugins and the chosen one's form.

The specs come from `cyclestudio plugins list --json` (the app never imports a plugin);
the form is built from each architecture's typed options.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from cyclestudio.gui.option_form import OptionForm


class ArchitecturePicker(QWidget):
    """A combo box of a plugin kind's architectures and the chosen one's option form."""

    edited = Signal()  # the user chose another architecture or changed an option

    def __init__(self, kind: str, default: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind, self.default = kind, default
        self.specs: list[dict[str, Any]] = []
        self.combo = QComboBox()
        self.combo.currentIndexChanged.connect(self._chosen)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: gray")
        self.form = OptionForm()
        self.form.edited.connect(self.edited.emit)
        self.combo.activated.connect(lambda _: self.edited.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.description)
        layout.addWidget(self.form)
        self.combo.addItem("loading plugins…")
        self.combo.setEnabled(False)

    def set_specs(self, specs: list[dict[str, Any]]) -> None:
        """Offer these architectures (keeping the current choice and options if possible)."""
        keep_name = self.name() if self.specs else self.default
        keep_values = self.form.values() if self.specs else {}
        self.specs = list(specs)
        self.combo.blockSignals(True)
        self.combo.clear()
        for spec in self.specs:
            self.combo.addItem(spec.get("title") or spec["name"], spec["name"])
            self.combo.setItemData(self.combo.count() - 1, spec.get("description", ""),
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.setEnabled(bool(self.specs))
        i = self.combo.findData(keep_name)
        self.combo.setCurrentIndex(max(i, 0))
        self.combo.blockSignals(False)
        self._chosen(self.combo.currentIndex())
        if keep_values and self.name() == keep_name:
            self.form.set_values(keep_values)

    def select(self, name: str, options: dict[str, Any], reset: bool = False) -> None:
        """Choose an architecture by name and fill in its options (``reset``: the others
        go back to their defaults)."""
        i = self.combo.findData(name)
        if i >= 0:
            self.combo.setCurrentIndex(i)
            self.form.set_values({**(self.form.defaults() if reset else {}), **options})

    def name(self) -> str:
        """The chosen architecture's name."""
        return str(self.combo.currentData() or "")

    def _chosen(self, i: int) -> None:
        spec = self.specs[i] if 0 <= i < len(self.specs) else {}
        self.description.setText(spec.get("description", ""))
        multiple = spec.get("size_multiple")
        if isinstance(multiple, int) and multiple > 1:
            self.description.setText(
                f"{spec.get('description', '')} Image sides: multiples of {multiple}.")
        self.form.set_options(spec.get("options", []))
