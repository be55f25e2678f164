"""Name rules for models and versions.

A model name ends up in paths, routes and other systems' configuration, so it must be safe in
all of them; it is checked before any path is built, and a registration with a name that any of
them would refuse (or silently misread) is refused with the rule it breaks:

- **DNS label** (paths, image names, Kubernetes): lower-case letters, digits and inner hyphens.
  This also keeps out every character that an nginx ``location`` or ``map`` key, a file name or
  a PromQL label value would need escaped (quotes, backslash, ``/``, ``;``, ``{}``, ``$``,
  spaces, upper case).
- **Starts with a letter**: the Kubernetes Service (and Istio host, DestinationRule,
  VirtualService, ``app`` label) is ``<model>-serving``, and Service names are RFC 1035 labels,
  which must start with a letter (``7x-serving`` is refused by the API server).
- **At most** :data:`MODEL_MAX_LEN` **(30) characters**: nginx keeps variable names and ``map``
  keys in hash tables whose default bucket (64 bytes on x86-64) holds one name of at most
  :data:`NGINX_HASH_KEY_MAX` (46) characters; a longer one stops nginx from loading the config
  ("could not build variables_hash"). A per-model variable is ``$<prefix>_<identifier>`` with a
  prefix of at most :data:`NGINX_PREFIX_MAX` characters (see :func:`nginx_variable`), so the
  identifier gets 46 - 15 - 1 = 30. This also keeps ``<model>-serving`` (38) within the
  63-character Kubernetes limit.
- **No** ``--``: ``<model>--<version>`` names a version's Prometheus scrape-target file; with
  ``--`` inside a model name, model ``a--b`` version ``c`` and model ``a`` version ``b--c``
  would write the same file and one would stop being scraped.

nginx variable names and Prometheus metric or rule names cannot carry ``-``: use
:func:`config_identifier` (``risk-score`` -> ``risk_score``; one-to-one, since ``_`` is never in
a model name).

Version names become directory names and image tags: letters, digits, ``.``, ``_``, ``-``,
starting with a letter or digit, at most 63 characters, never ``..``.
"""

from __future__ import annotations

import re

from paddle_canary.registry.errors import RegistryError

MODEL_RULE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
VERSION_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_MODEL_RE = re.compile(MODEL_RULE)
_VERSION_RE = re.compile(VERSION_RULE)

NGINX_HASH_KEY_MAX = 46   # longest variable name / map key nginx hashes with 64-byte buckets
NGINX_PREFIX_MAX = 15     # longest fixed part of a per-model nginx variable ("canary_upstream")
MODEL_MAX_LEN = NGINX_HASH_KEY_MAX - NGINX_PREFIX_MAX - 1  # 30
SERVING_SUFFIX = "-serving"  # traffic.istio_objects.serving_app: "<model>-serving"
KUBERNETES_NAME_MAX = 63
TARGET_SEPARATOR = "--"   # runtime.scrape_targets.target_path: "<model>--<version>.json"


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`RegistryError` naming
    the rule it breaks (see the module docstring for why each rule exists)."""
    if not isinstance(name, str) or not _MODEL_RE.fullmatch(name):
        raise RegistryError(
            f"invalid model name {name!r}: must match {MODEL_RULE} "
            "(lower-case letters, digits and inner hyphens, 1-63 characters)")
    if not name[0].isalpha():
        raise RegistryError(
            f"invalid model name {name!r}: must start with a letter (its Kubernetes Service "
            f"'{name}{SERVING_SUFFIX}' must be an RFC 1035 label)")
    if len(name) > MODEL_MAX_LEN:
        raise RegistryError(
            f"invalid model name {name!r}: at most {MODEL_MAX_LEN} characters, got {len(name)} "
            f"(nginx variables named after it, '$<prefix>_{name.replace('-', '_')}', must fit "
            f"nginx's default hash bucket: {NGINX_HASH_KEY_MAX} characters)")
    if TARGET_SEPARATOR in name:
        raise RegistryError(
            f"invalid model name {name!r}: must not contain '{TARGET_SEPARATOR}' (it separates "
            f"model and version in '<model>{TARGET_SEPARATOR}<version>' Prometheus target "
            "files)")
    return name


def check_version_name(name: object) -> str:
    """Return ``name`` if it is a valid version name, else raise :class:`RegistryError`."""
    if not isinstance(name, str) or not _VERSION_RE.fullmatch(name) or ".." in name:
        raise RegistryError(
            f"invalid version {name!r}: must match {VERSION_RULE} and not contain '..' "
            "(letters, digits, '.', '_', '-', starting with a letter or digit, 1-63 characters)")
    return name


def config_identifier(model: str) -> str:
    """The model name as an identifier for nginx variables and Prometheus metric or rule names
    (``[a-z0-9_]``): ``-`` becomes ``_``. Distinct models get distinct identifiers."""
    return check_model_name(model).replace("-", "_")


def nginx_variable(prefix: str, model: str) -> str:
    """``<prefix>_<identifier>``, a per-model nginx variable name (without the ``$``) that
    nginx can hash with its default settings; ``prefix`` is ``[a-z][a-z0-9_]*``, at most
    :data:`NGINX_PREFIX_MAX` characters (e.g. ``canary_split``)."""
    if not isinstance(prefix, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", prefix) \
            or len(prefix) > NGINX_PREFIX_MAX:
        raise ValueError(f"nginx variable prefix {prefix!r}: [a-z][a-z0-9_]*, at most "
                         f"{NGINX_PREFIX_MAX} characters")
    return f"{prefix}_{config_identifier(model)}"
