"""Editing a model's model.yaml in a test's registry copy (the ``settings`` fixture's)."""

from __future__ import annotations

import yaml


def set_card(settings, model: str, **sections) -> None:
    """Set top-level sections of ``model``'s model.yaml in the test's registry copy."""
    path = settings.registry_root / model / "model.yaml"
    card = yaml.safe_load(path.read_text())
    card.update(sections)
    path.write_text(yaml.safe_dump(card))
