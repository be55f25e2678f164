"""Airflow tests run against a throwaway AIRFLOW_HOME (SQLite) inside the test's tmp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    os.environ.update(env)
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    return home


@pytest.fixture
def settings(tmp_path, registry_root, monkeypatch, airflow_home):
    """A copy of the registry and a state home of this test's own, in the environment (the
    operators and the controller read Settings from it); Prometheus where nothing answers."""
    import shutil

    from paddle_canary.settings import Settings
    root = tmp_path / "registry"
    shutil.copytree(registry_root, root, ignore=shutil.ignore_patterns("release.lock", ".lock"))
    s = Settings(home=tmp_path / "home", registry_root=root, prometheus_url="http://127.0.0.1:9")
    for key, value in s.to_env().items():
        monkeypatch.setenv(key, value)
    return s

