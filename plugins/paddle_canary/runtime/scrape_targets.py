"""Prometheus scrape targets as files (file-based service discovery), one per running version.

The runtime that starts a version registers it here (:func:`write_target`) and drops it when it
stops the version (:func:`remove_target`); Prometheus notices a file change by itself, no restart
or reload. Every file is written whole under a temporary name and renamed, so Prometheus never
reads half of one. Used by the local, Docker and compose runtimes; the local stack and compose
also register the gateway's status server (:func:`write_gateway_target`).
"""

from __future__ import annotations

import json
from pathlib import Path

from paddle_canary.errors import UserError
from paddle_canary.files import replace_file


def target_path(targets_dir: Path | str, model: str, version: str) -> Path:
    return Path(targets_dir) / f"{model}--{version}.json"


def write_target(targets_dir: Path | str, model: str, version: str,
                 addresses: list[str]) -> Path:
    """Scrape ``addresses`` (``host:port``) as ``model``/``version``; replaces its old file.

    Written to a temporary name and renamed, so Prometheus never reads half a file.
    """
    from paddle_canary.registry import check_model_name, check_version_name

    check_model_name(model)
    check_version_name(version)
    if not addresses or not all(isinstance(a, str) and ":" in a for a in addresses):
        raise UserError(f"targets must be host:port strings, got {addresses!r}")
    path = target_path(targets_dir, model, version)
    replace_file(path, json.dumps([{"targets": list(addresses),
                                     "labels": {"model": model, "version": version}}]))
    return path


def write_gateway_target(targets_dir: Path | str, address: str) -> Path:
    """Scrape the gateway's own series (``host:port`` of its status server); no model or
    version label, so ``up{model!="", version!=""}`` still counts serving targets only."""
    path = Path(targets_dir) / "gateway.json"
    replace_file(path, json.dumps([{"targets": [address], "labels": {"component": "gateway"}}]))
    return path


def remove_target(targets_dir: Path | str, model: str, version: str) -> bool:
    """Stop scraping ``model``/``version``; False if it was not a target."""
    try:
        target_path(targets_dir, model, version).unlink()
        return True
    except FileNotFoundError:
        return False
