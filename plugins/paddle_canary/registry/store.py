"""The model registry on disk.

Layout under the root (``model_registry/`` by default)::

    <model>/model.yaml          model-level defaults (plan, gates)
    <model>/pointers.json       {"stable": ..., "candidate": ..., "set_by": <history event>}
    <model>/history.jsonl       append-only, one JSON event per line
    <model>/.lock               file lock serialising writers
    <model>/<version>/          model.json, model.pdiparams, card.yaml, reference.csv

Every write takes the model's file lock; pointer files are replaced atomically (temp file, fsync,
rename, fsync of the directory); versions are copied into a temp directory beside their final
place and renamed into it. Reads take no lock: they only ever see whole files.

A pointer move and its history line must agree after a crash at any moment. The rename of
``pointers.json`` is the commit: the file carries the event that set it (``set_by``), which is
then appended to the history. A writer killed between the two leaves a history without that
line: readers add it to what they return, and the next writer (any write, under the lock)
appends it, after removing what a killed writer left (temp files, a torn last history line).
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
POINTERS_TMP_GLOB = f".{POINTERS_FILE}.*.tmp"
REGISTER_TMP_GLOB = ".register-*"
DROPPED_MAX_CHARS = 1000


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


def _os_error(exc: OSError) -> str:
    """An OSError as a person reads it: ``Not a directory (/path/to/it)``."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _refuse_existing(target: Path, model: str, version: str) -> None:
    """Refuse a version name that is taken, by a version or by anything else in its place (a
    file, a symlink even one that points nowhere)."""
    if target.is_symlink():
        raise RegistryError(f"{target} already exists (a symlink to {os.readlink(target)}); "
                            f"versions are immutable: remove it or register another version "
                            f"name than '{version}'")
    if target.exists():
        raise RegistryError(f"version '{version}' of model '{model}' already exists; "
                            "versions are immutable, register a new version name")


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
        raw = self._pointer_file(self._model_dir(model))
        return Pointers(stable=raw.get("stable"), candidate=raw.get("candidate"))

    @staticmethod
    def _pointer_file(model_dir: Path) -> dict:
        path = model_dir / POINTERS_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path}: not valid JSON ({exc})") from None
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read it ({exc.strerror})") from None
        if not isinstance(raw, dict):
            raise RegistryError(f"{path}: must be a JSON object")
        return raw

    def history(self, model: str) -> list[dict]:
        """All events of ``model``, oldest first (with the event that set the pointers even if
        a crash kept it from the file: the next write appends it)."""
        model_dir = self._model_dir(model)
        events = self._history_file(model_dir)
        pending = self._pointer_file(model_dir).get("set_by")
        if pending is not None and pending not in events:
            events.append(pending)
        return events

    @staticmethod
    def _history_file(model_dir: Path) -> list[dict]:
        path = model_dir / HISTORY_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path}: cannot read it ({exc})") from None
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
        """Hold the model's lock; first undo or finish what a writer killed before left."""
        model_dir = self._model_dir(model)
        lock = FileLock(str(model_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S, poll_interval=0.005)
        except LockTimeout:
            raise RegistryError(f"{model_dir / LOCK_FILE}: another writer held the lock for "
                                f"{LOCK_TIMEOUT_S:.0f} s; try again") from None
        except OSError as exc:
            raise RegistryError(f"{model_dir / LOCK_FILE}: cannot take the lock "
                                f"({exc.strerror or exc})") from None
        try:
            self._repair(model_dir)
            yield model_dir
        finally:
            lock.release()

    def _repair(self, model_dir: Path) -> None:
        """Under the lock, so nothing found here is another writer's work in progress: remove
        temp files and directories, cut or fence a torn last history line, and append the
        event that set the pointers when a crash kept it from the history."""
        for leftover in model_dir.glob(POINTERS_TMP_GLOB):
            leftover.unlink(missing_ok=True)
        for leftover in model_dir.glob(REGISTER_TMP_GLOB):
            shutil.rmtree(leftover, ignore_errors=True)
        self._mend_tail(model_dir)
        pending = self._pointer_file(model_dir).get("set_by")
        if pending is not None and pending not in self._history_file(model_dir):
            self._append_line(model_dir, pending)

    def _mend_tail(self, model_dir: Path) -> None:
        """A last line without its newline was cut short by a crash: if it still parses as an
        event it gets its newline, else it is cut off and the cut is recorded (what was
        dropped, so nothing vanishes silently)."""
        path = model_dir / HISTORY_FILE
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        tail = data[start:]
        try:
            whole = isinstance(json.loads(tail), dict)
        except (json.JSONDecodeError, UnicodeDecodeError):
            whole = False
        if whole:
            with open(path, "ab") as fh:
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            return
        with open(path, "r+b") as fh:
            os.ftruncate(fh.fileno(), start)
            os.fsync(fh.fileno())
        text = tail.decode("utf-8", errors="replace")
        self._append_line(model_dir, self._event(model_dir, "history_repaired", None, {
            "dropped": text[:DROPPED_MAX_CHARS], "dropped_bytes": len(tail),
            "why": "a last line cut short by a crash"}))

    @staticmethod
    def _event(model_dir: Path, event: str, version: str | None, details: dict) -> dict:
        line = {"ts": _now(), "event": event, "model": model_dir.name, "version": version}
        line.update(details)
        return line

    @staticmethod
    def _append_line(model_dir: Path, line: dict) -> None:
        data = json.dumps(line, sort_keys=False, separators=(",", ":")) + "\n"
        with open(model_dir / HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def _append(self, model_dir: Path, event: str, version: str | None, details: dict) -> dict:
        line = self._event(model_dir, event, version, details)
        self._append_line(model_dir, line)
        return line

    def _move(self, model_dir: Path, pointers: Pointers, event: str, version: str | None,
              details: dict) -> dict:
        """Move the pointers and record why: ``pointers.json`` (carrying the event) is renamed
        into place first, which commits the move; then the event is appended."""
        line = self._event(model_dir, event, version, details)
        _atomic_write(model_dir / POINTERS_FILE,
                      json.dumps({**asdict(pointers), "set_by": line}, indent=2) + "\n")
        self._append_line(model_dir, line)
        return line

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
        _refuse_existing(model_dir / version, model, version)
        source = Path(source_dir)
        try:
            card = ModelCard.from_dir(source, model, version)
            check = check_export(card)
        except OSError as exc:
            raise RegistryError(f"cannot read the export in {source}: {_os_error(exc)}") from None
        with self._locked(model):
            target = model_dir / version
            _refuse_existing(target, model, version)
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".register-{version}.", dir=model_dir))
            except OSError as exc:
                raise RegistryError(f"cannot register {model} {version} in {model_dir}: "
                                    f"{_os_error(exc)}") from None
            try:
                for name in REQUIRED_FILES:
                    shutil.copyfile(source / name, tmp / name)
                    with open(tmp / name, "rb") as fh:
                        os.fsync(fh.fileno())
                os.chmod(tmp, 0o755)
                _fsync_dir(tmp)
                os.rename(tmp, target)
            except BaseException as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise RegistryError(f"cannot register {model} {version} as {target}: "
                                        f"{_os_error(exc)}; nothing was registered") from None
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
            self._move(model_dir, new, "candidate_set", version, {})
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
            self._move(model_dir, new, "candidate_cleared", current.candidate, {})
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
            self._move(model_dir, new, "promoted", version,
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
                return self._move(model_dir, Pointers(stable=current.stable, candidate=None),
                                  "rejected", version, {"reason": reason})
            return self._append(model_dir, "rejected", version, {"reason": reason})

    @staticmethod
    def _refuse_rejection(model: str, version: str, current: Pointers) -> None:
        if current.stable == version:
            raise RegistryError(f"'{version}' is the stable version of '{model}'; promote "
                                "another version before rejecting it")
