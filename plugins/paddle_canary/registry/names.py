"""Name rules for models and versions.

Model names end up in image names and Kubernetes object names, so they follow the DNS label rule
(lower case letters, digits, inner hyphens, at most 63 characters). Version names become
directory names and image tags: letters, digits, ``.``, ``_``, ``-``, starting with a letter or
digit, at most 63 characters, never ``..``. Anything else is refused before a path is built.
"""

from __future__ import annotations

import re

from paddle_canary.registry.errors import RegistryError

MODEL_RULE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
VERSION_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_MODEL_RE = re.compile(MODEL_RULE)
_VERSION_RE = re.compile(VERSION_RULE)


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`RegistryError`."""
    if not isinstance(name, str) or not _MODEL_RE.fullmatch(name):
        raise RegistryError(
            f"invalid model name {name!r}: must match {MODEL_RULE} "
            "(lower-case letters, digits and inner hyphens, 1-63 characters)")
    return name


def check_version_name(name: object) -> str:
    """Return ``name`` if it is a valid version name, else raise :class:`RegistryError`."""
    if not isinstance(name, str) or not _VERSION_RE.fullmatch(name) or ".." in name:
        raise RegistryError(
            f"invalid version {name!r}: must match {VERSION_RULE} and not contain '..' "
            "(letters, digits, '.', '_', '-', starting with a letter or digit, 1-63 characters)")
    return name
