"""The compose stack's images, built locally through the docker SDK (nothing is pulled).

- ``local/debian:bookworm``: the serving images' offline base (:mod:`paddle_canary.images.base`);
  the Airflow image is built on it too.
- ``local/debian-services:bookworm``: the same debootstrap with Debian's ``postgresql-15``,
  ``nginx`` and ``prometheus``, pruned of what the stack never loads (Prometheus' JavaScript
  libraries for its web UI: 220 MB; LLVM for PostgreSQL's JIT; the package's default cluster).
  The PostgreSQL, nginx and Prometheus images are one small step on it each.
- ``paddle-canary-airflow:local``: ``images/airflow/Dockerfile`` with the ``compose`` wheelhouse.
- ``paddle-canary-postgres:local``, ``paddle-canary-nginx:local``,
  ``paddle-canary-prometheus:local``: ``images/<name>/Dockerfile``.
- ``<model>-serving:<version>``: the stable version (:func:`build_serving_image`).

Each image is labelled with a hash of its inputs (Dockerfile, context files, build args, the
base's content key) and is not rebuilt while they are unchanged, so a second ``make compose-up``
on the same engine builds nothing. A built image is also saved (``docker save``) to
``<cache>/compose/`` under that hash, and loaded from there into another engine (a new test
session's) instead of being built again: ~1 min instead of ~7 for the Airflow image here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paddle_canary.images.base import ensure_base
from paddle_canary.images.build import _run_build, write_context
from paddle_canary.images.engine import ImageError
from paddle_canary.images.paths import cache_dir as default_cache_dir
from paddle_canary.images.paths import source_root

SERVICES_BASE_TAG = "local/debian-services:bookworm"
SERVICES_PACKAGES = ("postgresql-15", "nginx", "prometheus")
SERVICES_PRUNE = (
    "usr/share/javascript",              # Prometheus' web UI libraries (the API is what we use)
    "usr/lib/*/libLLVM-*.so*",           # PostgreSQL's JIT (jit=off)
    "usr/lib/*/libz3.so*",
    "usr/lib/postgresql/*/lib/llvmjit*",
    "usr/lib/postgresql/*/lib/bitcode",
    "var/lib/postgresql/*",              # the package's default cluster; ours is initdb'd
    "usr/bin/promtool",
    "usr/share/doc/*", "usr/share/man/*", "usr/share/locale/*",
)
TAG = "local"
INPUTS_LABEL = "io.paddle-canary.compose-inputs"
WHEELS_EXTRA = "compose"
SERVICE_IMAGES = ("postgres", "nginx", "prometheus")
SAVE_AFTER_S = 30.0  # builds that took longer are saved for other engines


def image_name(service: str, tag: str = TAG) -> str:
    return f"paddle-canary-{service}:{tag}"


@dataclass(frozen=True)
class Built:
    tag: str
    id: str
    build_s: float
    skipped: bool


def _airflow_files(root: Path) -> list[tuple[str, Path]]:
    files = [(name, root / name) for name in ("pyproject.toml", "constraints.txt", "README.md")]
    for top in ("plugins/paddle_canary", "dags"):
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((str(path.relative_to(root)), path))
    return files


def _dir_files(directory: Path) -> list[tuple[str, Path]]:
    return [(p.name, p) for p in sorted(directory.iterdir())
            if p.is_file() and p.name != "Dockerfile"]


def _digest(dockerfile: bytes, files: list[tuple[str, Path]], buildargs: dict) -> str:
    digest = hashlib.sha256(dockerfile)
    for key in sorted(buildargs):
        digest.update(f"{key}={buildargs[key]}\0".encode())
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"


def _saved(cache: Path, tag: str, inputs: str) -> Path:
    return cache / "compose" / f"{tag.replace('/', '_').replace(':', '_')}-{inputs[7:23]}.tar"


def _current(client, tag: str, inputs: str):
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    return image if (image.labels or {}).get(INPUTS_LABEL) == inputs else None


def build_image(client, tag: str, dockerfile: Path, files: list[tuple[str, Path]],
                buildargs: dict, base_key: str, log: Callable[[str], None] = print,
                cache_dir: Path | None = None) -> Built:
    """``tag`` built from ``dockerfile`` and ``files``, unless the engine has it from the same
    inputs (the base's content key ``base_key`` among them, so a new base rebuilds) or the
    cache has it saved."""
    text = dockerfile.read_bytes().rstrip(b"\n")
    inputs = _digest(text, files, {**buildargs, "base_key": base_key})
    image = _current(client, tag, inputs)
    if image is not None:
        return Built(tag, image.id, 0.0, True)
    started = time.monotonic()
    saved = _saved(Path(cache_dir or default_cache_dir()), tag, inputs)
    if saved.is_file():
        log(f"loading {tag} from {saved}")
        with open(saved, "rb") as fh:
            client.images.load(fh)
        image = _current(client, tag, inputs)
        if image is not None:
            return Built(tag, image.id, round(time.monotonic() - started, 1), True)
        log(f"{saved} did not hold {tag} from these inputs; building it")
    log(f"building {tag} from {dockerfile}")
    with tempfile.TemporaryFile() as context:
        write_context(context, files, text + f'\nLABEL "{INPUTS_LABEL}"="{inputs}"\n'.encode())
        context.seek(0)
        image_id = _run_build(client, context, tag, buildargs, log)
    built = Built(tag, image_id, round(time.monotonic() - started, 1), False)
    log(f"built {tag} in {built.build_s:.0f}s")
    if built.build_s >= SAVE_AFTER_S:  # the service images build in ~1 s from their base
        _save(client, tag, saved, log)
    return built


def _save(client, tag: str, path: Path, log: Callable[[str], None]) -> None:
    """``docker save`` of ``tag`` to ``path`` (temp name, then renamed: never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.tar"):
        old.unlink(missing_ok=True)  # an older build of the same tag
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        for chunk in client.images.get(tag).save(named=True):
            fh.write(chunk)
    os.replace(tmp, path)
    log(f"saved {tag} to {path} ({path.stat().st_size / 1e6:.0f} MB)")


def ensure_services_base(client, log: Callable[[str], None] = print):
    return ensure_base(client, tag=SERVICES_BASE_TAG, packages=SERVICES_PACKAGES,
                       prune=SERVICES_PRUNE, log=log)


def ensure_images(client, *, stable: tuple[str, str] | None = ("risk-score", "v1"),
                  registry_root: Path | None = None, root: Path | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Built]:
    """Every image of the stack in the engine of ``client``; ``{service: Built}``."""
    from paddle_canary.images.build import build_serving_image
    from paddle_canary.images.wheelhouse import ensure_wheels_image, wheelhouse

    root = Path(root or source_root())
    out: dict[str, Built] = {}
    base = ensure_base(client, log=log)
    services = ensure_services_base(client, log=log)
    wheels = ensure_wheels_image(client, wheelhouse(WHEELS_EXTRA, root=root, log=log), log)
    out["airflow"] = build_image(
        client, image_name("airflow"), root / "images" / "airflow" / "Dockerfile",
        _airflow_files(root), {"BASE_IMAGE": base.tag, "WHEELS_IMAGE": wheels}, base.key, log)
    for name in SERVICE_IMAGES:
        directory = root / "images" / name
        out[name] = build_image(client, image_name(name), directory / "Dockerfile",
                                _dir_files(directory),
                                {"BASE_IMAGE": services.tag}, services.key, log)
    if stable:
        model, version = stable
        started = time.monotonic()
        ref = build_serving_image(registry_root, model, version, base=base.tag, client=client,
                                  push=False, log=log)
        out["stable"] = Built(ref.tag, ref.id, round(time.monotonic() - started, 1),
                              bool(ref.skipped))
    for name, built in out.items():
        if not built.id:
            raise ImageError(f"no image for {name}")
    return out
