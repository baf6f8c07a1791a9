"""Where cyclestudio keeps its files: the appdirs folders, each asked for in one place.

The app (settings, demo project, caches) and the plugin discovery (the user plugin
folder, the list of disabled plugins) read these functions, so they always agree.
``CYCLESTUDIO_CONFIG_DIR``, ``CYCLESTUDIO_DATA_DIR`` and ``CYCLESTUDIO_CACHE_DIR``
override the appdirs folders (the tests and the screenshot script use them).

No Qt and no torch here: the window, the jobs and the plugin registry all import it.
"""

from __future__ import annotations

import os
from pathlib import Path

import appdirs

APP = "cyclestudio"
# appauthor=False: on Windows the folder is %LOCALAPPDATA%\cyclestudio rather than
# appdirs' default %LOCALAPPDATA%\cyclestudio\cyclestudio (author, then app).
_AUTHOR = False


def config_dir() -> Path:
    """Where settings.json lives."""
    return Path(os.environ.get("CYCLESTUDIO_CONFIG_DIR")
                or appdirs.user_config_dir(APP, appauthor=_AUTHOR))


def data_dir() -> Path:
    """The user data dir: the demo project and the user plugin folder live here."""
    return Path(os.environ.get("CYCLESTUDIO_DATA_DIR")
                or appdirs.user_data_dir(APP, appauthor=_AUTHOR))


def cache_dir() -> Path:
    """Thumbnails and the plugin list are cached here."""
    return Path(os.environ.get("CYCLESTUDIO_CACHE_DIR")
                or appdirs.user_cache_dir(APP, appauthor=_AUTHOR))


def user_plugin_dir() -> Path:
    """The user plugin folder: ``plugins/`` in the user data dir."""
    return data_dir() / "plugins"


def disabled_plugins_file() -> Path:
    """The JSON list of plugins the user turned off (the app and every job read it)."""
    return data_dir() / "disabled-plugins.json"
