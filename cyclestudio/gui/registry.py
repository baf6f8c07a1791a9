"""What the app can offer without importing torch: plugins and devices, asked of workers.

The plugin list is cached on disk, keyed by the cyclestudio version, so the Training
page fills at once; a fresh query runs in the background and replaces it when done.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, Signal

from cyclestudio import __version__
from cyclestudio.gui.jobs import Query
from cyclestudio.gui.settings import cache_dir
from cyclestudio.project import write_json_atomic

CPU_ONLY = {"devices": [{"id": "cpu", "name": "CPU", "memory_bytes": None}], "default": "cpu"}


def _cache_file(name: str):
    return cache_dir() / f"{name}-{__version__}.json"


def _read_cache(name: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_cache_file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Registry(QObject):
    """The plugin registry and the device list, as the workers report them.

    ``plugins_changed`` and ``devices_changed`` fire when new data arrives;
    ``failed`` carries a message when a query fails (the cached data stays).
    """

    plugins_changed = Signal()
    plugins_requested = Signal()  # a plugin query started (reload, enable, disable)
    devices_changed = Signal()
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.plugins: dict[str, Any] | None = _read_cache("plugins")
        self.devices: dict[str, Any] | None = _read_cache("devices")
        self._queries: list[Query] = []

    def refresh(self) -> None:
        """Ask the workers again (in the background)."""
        self.reload_plugins()
        self._ask(["devices", "--json"], self._got_devices)

    def reload_plugins(self) -> None:
        """Discover the plugins again (a new or edited plugin file shows up)."""
        self.plugins_requested.emit()
        self._ask(["plugins", "list", "--json"], self._got_plugins)

    def set_plugin_enabled(self, plugin_id: str, enabled: bool) -> None:
        """Turn a plugin on or off (remembered for the app and every job), then reload."""
        self.plugins_requested.emit()
        action = "enable" if enabled else "disable"
        self._ask(["plugins", action, plugin_id, "--json"], self._got_plugins)

    def _ask(self, args: list[str], slot) -> None:
        query = Query(args, self)
        query.done.connect(slot)
        query.done.connect(lambda *_: self._queries.remove(query))
        self._queries.append(query)
        query.start()

    def stop(self) -> None:
        """End queries still running (the window is closing)."""
        for query in list(self._queries):
            query.process.kill()
            query.process.waitForFinished(2000)

    def _got_plugins(self, result: object, error: str) -> None:
        if not isinstance(result, dict) or "generators" not in result:
            self.failed.emit(error or "the plugin list was not understood")
            return
        self.plugins = result
        write_json_atomic(_cache_file("plugins"), result)
        self.plugins_changed.emit()

    def _got_devices(self, result: object, error: str) -> None:
        if not isinstance(result, dict) or "devices" not in result:
            self.failed.emit(error or "the device list was not understood")
            if self.devices is None:
                self.devices = CPU_ONLY
                self.devices_changed.emit()
            return
        self.devices = result
        write_json_atomic(_cache_file("devices"), result)
        self.devices_changed.emit()

    def architectures(self, kind: str) -> list[dict[str, Any]]:
        """The generator or discriminator specs (kind: "generators"/"discriminators")."""
        return list((self.plugins or {}).get(kind, []))

    def errors(self) -> list[dict[str, Any]]:
        """Plugins that failed to load, with their error."""
        return list((self.plugins or {}).get("errors", []))

    def plugin_list(self) -> list[dict[str, Any]]:
        """Every plugin found: id, name, origin, version, status, error, traceback…"""
        return list((self.plugins or {}).get("plugins", []))
