"""The Settings page: default device, output folders, theme (saved at once)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cyclestudio.gui.registry import Registry
from cyclestudio.gui.settings import THEMES, Settings, config_dir


class SettingsPage(QWidget):
    """Edit the settings; every change is saved to settings.json straight away."""

    theme_changed = Signal(str)
    estimate_changed = Signal(bool)

    def __init__(self, settings: Settings, registry: Registry, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings, self.registry = settings, registry
        self.device = QComboBox()
        self.device.setToolTip("The device new runs use unless you pick another")
        self.device.currentIndexChanged.connect(self._device_chosen)
        self.output = QLineEdit(settings.output_folder)
        self.output.setPlaceholderText("inside the project (runs/)")
        self.output.setToolTip("Where new runs are written; empty: the project's runs/ folder")
        self.output.editingFinished.connect(self._output_edited)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(browse)
        self.convert_output = QLineEdit(settings.convert_folder)
        self.convert_output.setPlaceholderText("inside the project (translated/)")
        self.convert_output.setToolTip("Where the Convert page writes translated images; "
                                       "empty: the project's translated/ folder")
        self.convert_output.editingFinished.connect(self._convert_output_edited)
        browse_convert = QPushButton("Choose…")
        browse_convert.clicked.connect(self._browse_convert)
        convert_row = QHBoxLayout()
        convert_row.addWidget(self.convert_output, 1)
        convert_row.addWidget(browse_convert)
        self.theme = QComboBox()
        for value, text in zip(THEMES, ("Follow the system", "Light", "Dark"), strict=True):
            self.theme.addItem(text, value)
        self.theme.setCurrentIndex(max(self.theme.findData(settings.theme), 0))
        self.theme.currentIndexChanged.connect(self._theme_chosen)

        self.estimate = QCheckBox("Estimate memory and time before a run")
        self.estimate.setToolTip("The Training page runs a few training steps of its settings "
                                 "in the background to show memory and time per iteration")
        self.estimate.setChecked(settings.estimate)
        self.estimate.toggled.connect(self._estimate_toggled)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.output.setMinimumWidth(420)
        self.convert_output.setMinimumWidth(420)
        form.addRow("Default device", self.device)
        form.addRow("Output folder for runs", output_row)
        form.addRow("Translated images", convert_row)
        form.addRow("Theme", self.theme)
        form.addRow("", self.estimate)
        where = QLabel(f"Settings are stored in {config_dir() / 'settings.json'}")
        where.setStyleSheet("color: gray")
        where.setWordWrap(True)
        layout = QVBoxLayout(self)
        title = QLabel("<h2>Settings</h2>")
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(where)
        layout.addStretch(1)
        registry.devices_changed.connect(self._devices_changed)
        self._devices_changed()

    def _devices_changed(self) -> None:
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItem("auto (best available)", "auto")
        for d in (self.registry.devices or {}).get("devices", []):
            self.device.addItem(f"{d['id']} — {d.get('name', '')}", d["id"])
        i = self.device.findData(self.settings.default_device)
        if i < 0:  # remembered device not present now (a GPU unplugged): keep it listed
            self.device.addItem(f"{self.settings.default_device} (not found)",
                                self.settings.default_device)
            i = self.device.count() - 1
        self.device.setCurrentIndex(i)
        self.device.blockSignals(False)

    def _device_chosen(self, _: int) -> None:
        self.settings.default_device = str(self.device.currentData() or "auto")
        self.settings.save()

    def _output_edited(self) -> None:
        self.settings.output_folder = self.output.text().strip()
        self.settings.save()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for runs")
        if folder:
            self.output.setText(folder)
            self._output_edited()

    def _convert_output_edited(self) -> None:
        self.settings.convert_folder = self.convert_output.text().strip()
        self.settings.save()

    def _browse_convert(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for translated images")
        if folder:
            self.convert_output.setText(folder)
            self._convert_output_edited()

    def _estimate_toggled(self, on: bool) -> None:
        self.settings.estimate = on
        self.settings.save()
        self.estimate_changed.emit(on)

    def _theme_chosen(self, _: int) -> None:
        self.settings.theme = str(self.theme.currentData())
        self.settings.save()
        self.theme_changed.emit(self.settings.theme)
