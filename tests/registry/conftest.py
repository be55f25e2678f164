"""Registry test fixtures: a private, writable copy of the committed registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from registry_helpers import REAL_ROOT


@pytest.fixture
def root(tmp_path) -> Path:
    """A writable copy of model_registry/ (v1 stable, v2 registered)."""
    dest = tmp_path / "registry"
    shutil.copytree(REAL_ROOT, dest, ignore=shutil.ignore_patterns(".lock", ".register-*"))
    return dest


@pytest.fixture
def registry(root):
    from paddle_canary.registry import Registry

    return Registry(root)

