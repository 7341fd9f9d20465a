"""Fixtures for the runtime's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connector.manifest import data_root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of the bundled data files to break."""
    root = tmp_path / "component"
    root.mkdir()
    shutil.copy(data_root() / "manifest.yaml", root)
    for folder in ("actions", "triggers", "automations", "connections", "schemas"):
        if (data_root() / folder).is_dir():
            shutil.copytree(data_root() / folder, root / folder)
    return root
