"""The model registry on disk.

Layout under the root (``model_registry/`` by default)::

    <model>/model.yaml          model-level defaults (plan, gates)
    <model>/pointers.json       {"stable": ..., "candidate": ...}
    <model>/history.jsonl       append-only, one JSON event per line
    <model>/.lock               file lock serialising writers
    <model>/<version>/          model.json, model.pdiparams, card.yaml, reference.csv

Every write takes the model's file lock; pointer files are replaced atomically (temp file, fsync,
rename, fsync of the directory); versions are copied into a temp directory beside their final
place and renamed into it. Reads take no lock: they only ever see whole files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from filelock import Timeout as LockTimeout

from paddle_canary.registry.card import CARD_FILE, REQUIRED_FILES, ModelCard
from paddle_canary.registry.errors import RegistryError
from paddle_canary.registry.names import check_model_name, check_version_name

ENV_ROOT = "PADDLE_CANARY_REGISTRY"
MODEL_FILE = "model.yaml"
POINTERS_FILE = "pointers.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
LOCK_TIMEOUT_S = 30.0
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Events that set a version's status, latest wins (a stable pointer overrides them all).
STATUS_EVENTS = ("registered", "validated", "rejected", "promoted")


def default_root() -> Path:
    """``$PADDLE_CANARY_REGISTRY``, else ``<repo>/model_registry``, else ``./model_registry``."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent / "model_registry"
    return Path.cwd() / "model_registry"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Pointers:
    """Which version serves everyone (``stable``) and which one is being released."""

    stable: str | None = None
    candidate: str | None = None


class Registry:
    """Versions, cards, pointers and history of the models under ``root``."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # ---- reads -------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Model names: directories with a valid name holding ``model.yaml`` or a version."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if not entry.is_dir():
                continue
            try:
                check_model_name(entry.name)
            except RegistryError:
                continue
            if (entry / MODEL_FILE).is_file() or any(
                    (sub / CARD_FILE).is_file() for sub in entry.iterdir() if sub.is_dir()):
                found.append(entry.name)
        return sorted(found)

    def _model_dir(self, model: str) -> Path:
        check_model_name(model)
        known = self.models()
        if model not in known:
            raise RegistryError(f"unknown model '{model}'; known: {', '.join(known) or 'none'} "
                                f"(registry {self.root})")
        return self.root / model

    def versions(self, model: str) -> list[str]:
        """Version names of ``model`` (directories with a card), in natural order."""
        model_dir = self._model_dir(model)
        found = []
        for entry in model_dir.iterdir():
            if entry.is_dir() and (entry / CARD_FILE).is_file():
                try:
                    found.append(check_version_name(entry.name))
                except RegistryError:
                    continue  # temp directories start with "." and are never versions
        return sorted(found, key=_natural_key)

    def _version_dir(self, model: str, version: str) -> Path:
        check_version_name(version)
        known = self.versions(model)
        if version not in known:
            raise RegistryError(f"unknown version '{version}' of model '{model}'; known: "
                                f"{', '.join(known) or 'none'}")
        return self.root / model / version

    def card(self, model: str, version: str) -> ModelCard:
        """The checked card of ``model``/``version``."""
        return ModelCard.from_dir(self._version_dir(model, version), model, version)

    def model_defaults(self, model: str) -> dict:
        """The model-level card ``<model>/model.yaml``: ``plan`` and ``gates`` defaults."""
        path = self._model_dir(model) / MODEL_FILE
        if not path.is_file():
            raise RegistryError(f"{path}: missing (model-level defaults: plan and gates)")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RegistryError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise RegistryError(f"{path}: must be a mapping")
        for key in ("plan", "gates"):
            if not isinstance(raw.get(key), dict):
                raise RegistryError(f"{path}: '{key}' must be a mapping")
        if raw.get("model", model) != model:
            raise RegistryError(f"{path}: names model {raw.get('model')!r}, not '{model}'")
        return raw

    def pointers(self, model: str) -> Pointers:
        """The current stable and candidate versions (``None`` when unset)."""
        path = self._model_dir(model) / POINTERS_FILE
        if not path.is_file():
            return Pointers()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path}: not valid JSON ({exc})") from None
        return Pointers(stable=raw.get("stable"), candidate=raw.get("candidate"))

    def history(self, model: str) -> list[dict]:
        """All events of ``model``, oldest first."""
        path = self._model_dir(model) / HISTORY_FILE
        if not path.is_file():
            return []
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        events = []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if lineno == len(lines):  # a last line without newline: a write cut short
                    break
                raise RegistryError(f"{path}:{lineno}: not valid JSON ({exc})") from None
        return events

    def status(self, model: str, version: str) -> str:
        """``stable`` if the stable pointer names it, else the latest of registered / validated
        / rejected / promoted in its history (``registered`` when it has none)."""
        self._version_dir(model, version)
        if self.pointers(model).stable == version:
            return "stable"
        status = "registered"
        for event in self.history(model):
            if event.get("version") == version and event.get("event") in STATUS_EVENTS:
                status = event["event"]
        return status

    # ---- writes ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, model: str) -> Iterator[Path]:
        model_dir = self._model_dir(model)
        lock = FileLock(str(model_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S, poll_interval=0.005)
        except LockTimeout:
            raise RegistryError(f"{model_dir / LOCK_FILE}: another writer held the lock for "
                                f"{LOCK_TIMEOUT_S:.0f} s; try again") from None
        try:
            yield model_dir
        finally:
            lock.release()

    def _append(self, model_dir: Path, event: str, version: str | None, details: dict) -> dict:
        line = {"ts": _now(), "event": event, "model": model_dir.name, "version": version}
        line.update(details)
        data = json.dumps(line, sort_keys=False, separators=(",", ":")) + "\n"
        with open(model_dir / HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return line

    def _write_pointers(self, model_dir: Path, pointers: Pointers) -> None:
        _atomic_write(model_dir / POINTERS_FILE,
                      json.dumps(asdict(pointers), indent=2, sort_keys=True) + "\n")

    def record(self, model: str, event: str, version: str | None, **details: Any) -> dict:
        """Append one event (``event`` = lower_snake_case) to the history; returns it."""
        if not isinstance(event, str) or not _EVENT_RE.fullmatch(event):
            raise RegistryError(f"invalid event name {event!r}: must match {_EVENT_RE.pattern}")
        if version is not None:
            self._version_dir(model, version)
        try:
            json.dumps(details)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"event details must be JSON-serialisable: {exc}") from None
        with self._locked(model) as model_dir:
            return self._append(model_dir, event, version, details)

    def register(self, model: str, version: str, source_dir: Path | str) -> ModelCard:
        """Check the export in ``source_dir`` and copy it in as ``model``/``version``.

        Checks: the four files are present, the card is well formed and names this model and
        version, the program loads with Paddle Inference, its one input is [None, n_features]
        and it scores the card's reference rows with one output per row. Non-finite scores are
        recorded, not refused (offline validation judges them). Refuses an existing version.
        Nothing is written unless every check passes.
        """
        from paddle_canary.registry.export_check import check_export

        check_model_name(model)
        check_version_name(version)
        model_dir = self._model_dir(model)
        if (model_dir / version).exists():
            raise RegistryError(f"version '{version}' of model '{model}' already exists; "
                                "versions are immutable, register a new version name")
        source = Path(source_dir)
        card = ModelCard.from_dir(source, model, version)
        check = check_export(card)
        with self._locked(model):
            target = model_dir / version
            if target.exists():
                raise RegistryError(f"version '{version}' of model '{model}' already exists")
            tmp = Path(tempfile.mkdtemp(prefix=f".register-{version}.", dir=model_dir))
            try:
                for name in REQUIRED_FILES:
                    shutil.copyfile(source / name, tmp / name)
                    with open(tmp / name, "rb") as fh:
                        os.fsync(fh.fileno())
                os.chmod(tmp, 0o755)
                _fsync_dir(tmp)
                os.rename(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _fsync_dir(model_dir)
            registered = ModelCard.from_dir(target, model, version)
            self._append(model_dir, "registered", version,
                         {"content_hash": registered.content_hash, "source": str(source),
                          "check": check})
        return registered

    def set_candidate(self, model: str, version: str) -> Pointers:
        """Make ``version`` the candidate. Refused when it is stable or another candidate is
        set (a release in progress); setting the same candidate again changes nothing."""
        self._version_dir(model, version)
        self._refuse_candidate(model, version, self.pointers(model))  # before taking the lock
        with self._locked(model) as model_dir:
            current = self.pointers(model)
            if current.candidate == version:
                return current
            self._refuse_candidate(model, version, current)
            new = Pointers(stable=current.stable, candidate=version)
            self._write_pointers(model_dir, new)
            self._append(model_dir, "candidate_set", version, {})
            return new

    @staticmethod
    def _refuse_candidate(model: str, version: str, current: Pointers) -> None:
        if current.candidate == version:
            return
        if current.stable == version:
            raise RegistryError(f"'{version}' is already the stable version of '{model}'")
        if current.candidate is not None:
            raise RegistryError(f"model '{model}' already has candidate "
                                f"'{current.candidate}' (a release in progress?); "
                                "clear or reject it first")

    def clear_candidate(self, model: str) -> Pointers:
        """Unset the candidate (no event when none was set)."""
        with self._locked(model) as model_dir:
            current = self.pointers(model)
            if current.candidate is None:
                return current
            new = Pointers(stable=current.stable, candidate=None)
            self._write_pointers(model_dir, new)
            self._append(model_dir, "candidate_cleared", current.candidate, {})
            return new

    def promote(self, model: str, version: str, reason: str = "") -> Pointers:
        """Make ``version`` stable and clear the candidate; records ``promoted`` with the
        previous stable version. Promoting the current stable version changes nothing."""
        self._version_dir(model, version)
        with self._locked(model) as model_dir:
            current = self.pointers(model)
            if current.stable == version and current.candidate is None:
                return current
            new = Pointers(stable=version, candidate=None)
            self._write_pointers(model_dir, new)
            self._append(model_dir, "promoted", version,
                         {"previous": current.stable, "reason": reason})
            return new

    def mark_validated(self, model: str, version: str, details: dict) -> dict:
        """Record that offline validation passed, with its figures."""
        return self.record(model, "validated", version, details=dict(details))

    def mark_rejected(self, model: str, version: str, reason: str) -> dict:
        """Record a rejection with its reason; clears the candidate if it was ``version``."""
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("a rejection needs a reason")
        self._version_dir(model, version)
        self._refuse_rejection(model, version, self.pointers(model))  # before taking the lock
        with self._locked(model) as model_dir:
            current = self.pointers(model)
            self._refuse_rejection(model, version, current)
            if current.candidate == version:
                self._write_pointers(model_dir, Pointers(stable=current.stable, candidate=None))
            return self._append(model_dir, "rejected", version, {"reason": reason})

    @staticmethod
    def _refuse_rejection(model: str, version: str, current: Pointers) -> None:
        if current.stable == version:
            raise RegistryError(f"'{version}' is the stable version of '{model}'; promote "
                                "another version before rejecting it")
