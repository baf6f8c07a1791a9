"""Where a run trains: auto, each CUDA GPU with its memory, Apple MPS, or the CPU.

The list comes from `cyclestudio devices --json` (a worker: the window never imports
torch); "auto" says what it will pick on this machine.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QWidget

ACCELERATORS = ("cuda", "mps")


class DevicePicker(QComboBox):
    """A combo box of devices; ``auto`` first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("Where training runs; auto picks a GPU when there is one")
        self.addItem("auto", "auto")
        self.devices: list[dict[str, Any]] | None = None  # None until the query answers

    def set_devices(self, devices: list[dict[str, Any]], preferred: str = "auto") -> None:
        """Offer these devices, keeping the current choice (else ``preferred``)."""
        current = self.currentData() if self.devices is not None else preferred
        self.devices = list(devices)
        self.blockSignals(True)
        self.clear()
        accelerated = any(str(d.get("id", "")).startswith(ACCELERATORS) for d in devices)
        self.addItem("auto (best available)" if accelerated else "auto (the CPU here)", "auto")
        for d in devices:
            memory = d.get("memory_bytes")
            text = f"{d['id']} — {d.get('name', '')}"
            if memory:
                text += f" ({memory / 2**30:.0f} GiB)"
            self.addItem(text, d["id"])
        self.setCurrentIndex(max(self.findData(current or preferred), 0))
        self.blockSignals(False)
        self.currentIndexChanged.emit(self.currentIndex())

    def chosen(self) -> str:
        """The device id to pass to a job (``auto`` included)."""
        return str(self.currentData() or "auto")

    def on_cpu(self) -> bool:
        """True when the choice is (or auto will pick) the CPU; False while unknown."""
        chosen = self.chosen()
        if chosen != "auto":
            return chosen == "cpu"
        if self.devices is None:
            return False
        return not any(str(d.get("id", "")).startswith(ACCELERATORS) for d in self.devices)
