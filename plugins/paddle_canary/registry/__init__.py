"""The model registry: versions, model cards, stable/candidate pointers and history.

Reading it never imports Paddle; :meth:`Registry.register` does (to check an export loads).
"""

from paddle_canary.registry.card import ModelCard, export_as, score_histogram
from paddle_canary.registry.errors import RegistryError
from paddle_canary.registry.names import check_model_name, check_version_name
from paddle_canary.registry.store import Pointers, Registry, default_root

__all__ = [
    "ModelCard", "Pointers", "export_as", "Registry", "RegistryError", "check_model_name",
    "check_version_name", "default_root", "score_histogram",
]
