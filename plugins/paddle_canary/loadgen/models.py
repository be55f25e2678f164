"""Synthetic users of several models at once, through one gateway.

Each model gets its own route (``<gateway>/models/<model>/predict``), its own feature rows (its
stable version's reference rows) and its own request rate; the same user IDs are used for every
model (the gateway salts each user's bucket with the model name, so they land in different
canaries). One :func:`run_load` per model runs in its own thread; they share the stop event.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from paddle_canary.errors import UserError
from paddle_canary.loadgen.runner import LoadSummary, run_load


@dataclasses.dataclass(frozen=True)
class ModelLoad:
    """One model's share of the load: where it goes, what rows it sends, how fast."""

    model: str
    url: str
    reference: np.ndarray = dataclasses.field(repr=False, compare=False)
    rate: float | None = None


def parse_model_rate(text: str) -> tuple[str, float | None]:
    """``risk-score`` -> (risk-score, None); ``digit-seven:20`` -> (digit-seven, 20.0)."""
    name, sep, rate = text.partition(":")
    if not name:
        raise UserError(f"expected MODEL or MODEL:RATE, got {text!r}")
    if not sep:
        return name, None
    try:
        value = float(rate)
    except ValueError:
        raise UserError(f"rate of {name} must be a number of requests/s, got {rate!r}") from None
    if not value > 0:
        raise UserError(f"rate of {name} must be > 0 requests/s, got {rate!r}")
    return name, value


def model_loads(gateway_url: str, models: list[tuple[str, float | None]] | None = None,
                rate: float | None = None, registry_root=None) -> list[ModelLoad]:
    """The loads for ``models`` ((name, rate or None for ``rate``) pairs; default: every
    registered model with a stable version), reference rows from each one's stable card."""
    from paddle_canary.registry import Registry

    reg = Registry(registry_root)
    if not models:
        models = [(m, None) for m in reg.models() if reg.pointers(m).stable]
        if not models:
            raise UserError(f"no model in {reg.root} has a stable version to send traffic to")
    names = [m for m, _ in models]
    if len(set(names)) != len(names):
        raise UserError(f"a model is named twice: {names}")
    base = gateway_url.rstrip("/")
    loads = []
    for model, own_rate in models:
        stable = reg.pointers(model).stable  # raises for an unknown model
        if stable is None:
            raise UserError(f"model {model} has no stable version: nothing to send its users to")
        loads.append(ModelLoad(model, f"{base}/models/{model}/predict",
                               reg.card(model, stable).reference_inputs(),
                               own_rate if own_rate is not None else rate))
    return loads


def run_models(loads: list[ModelLoad], *, stop: threading.Event | None = None,
               **kwargs) -> dict[str, LoadSummary]:
    """:func:`run_load` for every model at once (``kwargs`` as run_load's, except ``url``,
    ``reference`` and ``rate``, which come from each load). Summaries by model; the first
    error of any model's run is raised after all have ended."""
    if not loads:
        raise UserError("no models to send traffic to")
    stop = stop or threading.Event()
    results: dict[str, LoadSummary] = {}
    errors: list[BaseException] = []

    def one(load: ModelLoad) -> None:
        try:
            results[load.model] = run_load(load.url, reference=load.reference, rate=load.rate,
                                           stop=stop, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=one, args=(load,), daemon=True,
                                name=f"loadgen-{load.model}") for load in loads]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # short joins keep the main thread responsive to signals
    if errors:
        raise errors[0]
    return {load.model: results[load.model] for load in loads}
