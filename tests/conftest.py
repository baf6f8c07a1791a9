"""Test setup shared by every test: no display needed, no real user folders touched."""

from __future__ import annotations

import os

import pytest

# Qt tests run without a display; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# As the CLI does: OpenMP threads that spin while waiting starve the worker processes
# the tests start on a 2-core machine. Set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory, monkeypatch):
    """Settings, caches and the user data dir live in a fresh temporary folder per test."""
    root = tmp_path_factory.mktemp("user")
    for name in ("CONFIG", "DATA", "CACHE"):
        monkeypatch.setenv(f"CYCLESTUDIO_{name}_DIR", str(root / name.lower()))
    # As a user who turned the Training page's estimate off: it runs training steps in
    # a worker, which would load the 2-core test machine. test_estimate.py turns it on.
    (root / "config").mkdir()
    (root / "config" / "settings.json").write_text('{"estimate": false}')
