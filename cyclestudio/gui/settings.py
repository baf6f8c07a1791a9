"""App settings: a JSON file in the config dir (the folders themselves: cyclestudio.paths)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cyclestudio.paths import cache_dir, config_dir, data_dir
from cyclestudio.project import write_json_atomic

# The folders are re-exported: the pages ask this module for them.
__all__ = ["MAX_RECENT", "THEMES", "Settings", "cache_dir", "config_dir", "data_dir"]

THEMES = ("system", "light", "dark")
MAX_RECENT = 8


@dataclass
class Settings:
    """What the app remembers between sessions."""

    last_project: str = ""
    recent_projects: list[str] = field(default_factory=list)
    default_device: str = "auto"
    output_folder: str = ""  # empty: runs go into the project's runs/ folder
    convert_folder: str = ""  # empty: the Convert page writes into the project's translated/
    theme: str = "system"
    demo_offered: bool = False
    # Before Start, run a few training steps to show memory and time per iteration.
    estimate: bool = True
    # The folder the Convert page was watching when the app closed (model, folder, out,
    # direction, format, quality, overwrite): offered again at the next start.
    watch: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def file(cls) -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        """The saved settings; defaults for anything missing or unreadable."""
        try:
            data = json.loads(cls.file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        settings = cls(**values)
        if settings.theme not in THEMES:
            settings.theme = "system"
        settings.recent_projects = [str(p) for p in settings.recent_projects][:MAX_RECENT]
        if not isinstance(settings.watch, dict):
            settings.watch = {}
        return settings

    def save(self) -> None:
        """Write settings.json atomically."""
        write_json_atomic(self.file(), {"settings_version": 1, **asdict(self)})

    def remember_project(self, folder: Path) -> None:
        """Make ``folder`` the last project and put it first in the recent list."""
        path = str(Path(folder).absolute())
        self.last_project = path
        self.recent_projects = [path] + [p for p in self.recent_projects if p != path]
        del self.recent_projects[MAX_RECENT:]
