"""``<model>-serving:<version>``: the serving image of one registered version, built through the
docker SDK.

:func:`build_serving_image` checks the version in the registry it is registered in (any
registry: the repo's, the stack's working copy, a test's fixtures), assembles the build context
(the Dockerfile, the package, the wheelhouse, the version's export), and builds with
``APIClient.build(..., decode=True)``, sending every line of the build log to ``log`` as it
comes. The image carries the model's content hash and the OCI labels. When the engine already
has the tag built from the same model files and the same serving code on the same base, nothing
is built and :attr:`ImageRef.skipped` says why. With an image registry configured
(``$PADDLE_CANARY_IMAGE_REGISTRY``, e.g. ``127.0.0.1:5000``) the image is pushed as
``<registry>/<model>-serving:<version>``.

Every failure raises :class:`ImageError` naming the image and the cause: an unknown version or a
version without an export (from the registry, before the engine is asked anything), no engine,
a base image the engine neither has nor can pull, a failing build (with the last lines of its
log), a failing push.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from paddle_canary.images.engine import ImageError, docker_client
from paddle_canary.images.paths import DOCKERFILE, source_root

#: the GPU base (Paddle's image with paddlepaddle-gpu). It ships Python 3.10, so a build on it
#: stops at the Python 3.11 check: docs/containers.md "The GPU base and its Python" says what
#: replaces it.
GPU_BASE = "paddlepaddle/paddle:3.3.1-gpu-cuda12.6-cudnn9.5"
ENV_BASE = "PADDLE_CANARY_IMAGE_BASE"
ENV_REGISTRY = "PADDLE_CANARY_IMAGE_REGISTRY"
LABEL_PREFIX = "io.paddle-canary"
CONTENT_HASH_LABEL = f"{LABEL_PREFIX}.content-hash"
INPUTS_LABEL = f"{LABEL_PREFIX}.build-inputs"
BUILD_TIMEOUT_S = 3600
LOG_TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class ImageRef:
    """A built (or found) serving image."""

    tag: str                       # risk-score-serving:v2
    id: str                        # sha256:...
    model: str
    version: str
    content_hash: str              # the model's (program + parameters)
    base: str
    skipped: str | None = None     # why nothing was built, when nothing was
    pushed: str | None = None      # <registry>/<model>-serving:<version> when pushed
    digest: str | None = None      # the registry's manifest digest when pushed
    build_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def image_tag(model: str, version: str) -> str:
    return f"{model}-serving:{version}"


def default_base() -> str:
    return os.environ.get(ENV_BASE) or GPU_BASE


def serve_extra(base: str) -> str:
    """The package extra the image installs: ``image-nopaddle`` on Paddle's own images (they
    bring paddlepaddle-gpu), else ``image`` (with the CPU wheel). Both hold the server and the
    ``validate`` entrypoint's Great Expectations suite."""
    repo = base.split("@")[0].rsplit(":", 1)[0]
    return "image-nopaddle" if repo.endswith("paddlepaddle/paddle") else "image"


# --- the build context ----------------------------------------------------------------------

def _package_files(root: Path) -> list[tuple[str, Path]]:
    files = [("Dockerfile", root / DOCKERFILE)]
    files += [(name, root / name) for name in ("pyproject.toml", "constraints.txt", "README.md")]
    package = root / "plugins" / "paddle_canary"
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((str(path.relative_to(root)), path))
    return files


def _context_files(root: Path, export: Path) -> list[tuple[str, Path]]:
    files = [(name, path) for name, path in _package_files(root) if name != "Dockerfile"]
    files += [(f"model/{p.name}", p) for p in sorted(export.iterdir()) if p.is_file()]
    return files


def label_instruction(labels: dict[str, str]) -> str:
    """One ``LABEL`` instruction for all ``labels``. (The build API's ``labels`` parameter makes
    one build step per label on Docker 20.10, and each step copies the whole file system on the
    vfs storage driver.)"""
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
    return "LABEL " + " ".join(f"{quote(k)}={quote(v)}" for k, v in sorted(labels.items()))


def dockerfile_with_labels(root: Path, labels: dict[str, str]) -> bytes:
    text = (root / DOCKERFILE).read_text().rstrip("\n")
    return f"{text}\n{label_instruction(labels)}\n".encode()


def write_context(fileobj, files: Iterable[tuple[str, Path]], dockerfile: bytes) -> None:
    """A tar of the Dockerfile and ``files`` with fixed owners, modes and times: the same files
    give the same context, so the engine's layer cache hits."""
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode, info.mtime = len(dockerfile), 0o644, 0
        tar.addfile(info, io.BytesIO(dockerfile))
        for name, path in files:
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as fh:
                tar.addfile(info, fh)


def inputs_digest(root: Path, wheelhouse: Path, base_id: str) -> str:
    """A hash of everything but the model that goes into the image: the serving code, the
    Dockerfile, the wheels and the base image."""
    digest = hashlib.sha256(base_id.encode())
    for name, path in _package_files(root):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update((wheelhouse / "requirements.txt").read_bytes())
    return f"sha256:{digest.hexdigest()}"


# --- labels ---------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def image_labels(card, base: str, inputs: str, root: Path, extra: str) -> dict[str, str]:
    revision = _git(root, "rev-parse", "HEAD") or "unknown"
    if revision != "unknown" and _git(root, "status", "--porcelain", "--", "plugins", "images",
                                      "pyproject.toml", "constraints.txt"):
        revision += "-dirty"
    source = _git(root, "remote", "get-url", "origin") or "unknown"  # no remote in this checkout
    return {
        "org.opencontainers.image.title": f"{card.model}-serving",
        "org.opencontainers.image.version": card.version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created":
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.base.name": base,
        "org.opencontainers.image.description":
            f"paddle-canary serving image of {card.model} {card.version}",
        f"{LABEL_PREFIX}.model": card.model,
        f"{LABEL_PREFIX}.version": card.version,
        CONTENT_HASH_LABEL: card.content_hash,
        INPUTS_LABEL: inputs,
        f"{LABEL_PREFIX}.serve-extra": extra,
    }


# --- build ----------------------------------------------------------------------------------

def _ensure_base_present(client, base: str, log: Callable[[str], None]):
    """The base image, pulled when the engine does not have it; ImageError when neither."""
    from docker.errors import DockerException, ImageNotFound

    try:
        return client.images.get(base)
    except ImageNotFound:
        pass
    log(f"base image {base} is not in the engine; pulling it")
    try:
        return client.images.pull(base)
    except DockerException as exc:
        reason = str(exc).strip().splitlines()[-1][:300]
        raise ImageError(
            f"base image {base} is not in the Docker engine and cannot be pulled ({reason}); "
            "make the offline CPU base with `paddle-canary image base` and build with "
            "--base local/debian:bookworm") from None


def _run_build(client, context, tag: str, buildargs: dict, log: Callable[[str], None]) -> str:
    """Stream the build log to ``log``; the new image's id, or ImageError with the log tail."""
    from docker.errors import DockerException

    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    image_id = None
    error = None
    try:
        for chunk in client.api.build(
                fileobj=context, custom_context=True, tag=tag, buildargs=buildargs,
                rm=True, forcerm=True, pull=False, decode=True,
                network_mode="none", timeout=BUILD_TIMEOUT_S):
            for line in _ANSI.sub("", str(chunk.get("stream", ""))).splitlines():
                if line.strip():
                    tail.append(line)
                    log(line)
            if "error" in chunk:
                error = str(chunk.get("error")).strip()
                tail.append(error)
                log(error)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except DockerException as exc:
        error = f"the engine failed the build: {exc}"
    if error or not image_id:
        last = "\n".join(tail)
        raise ImageError(f"building {tag} failed: {error or 'no image id returned'}\n"
                         f"last lines of the build log:\n{last}")
    return image_id


def image_registry_of(explicit: str | None = None,
                      env: dict[str, str] | None = None) -> tuple[str | None, dict | None]:
    """``(image registry, auth_config)``: ``explicit`` (no credentials), else a registered
    settings source (inside Airflow: the Connection ``docker_default``, with its login), else
    ``$PADDLE_CANARY_IMAGE_REGISTRY`` of ``env`` (default: the environment; no credentials),
    else ``(None, None)``."""
    from paddle_canary import settings_sources
    if explicit:
        return explicit, None
    found = settings_sources.first("image_registry")
    if found is not None:
        return found
    return (os.environ if env is None else env).get(ENV_REGISTRY) or None, None


def push_image(client, image_id: str, remote_repo: str, tag: str,
               log: Callable[[str], None] = print, auth_config: dict | None = None) -> str | None:
    """Tag ``image_id`` as ``remote_repo:tag`` and push it (with ``auth_config``'s login when
    given); the manifest digest. Push errors come as ``{"error": ...}`` items of the stream,
    not as exceptions: both raise here."""
    from docker.errors import DockerException

    ref = f"{remote_repo}:{tag}"
    digest = None
    try:
        client.api.tag(image_id, remote_repo, tag)
        for item in client.api.push(remote_repo, tag, stream=True, decode=True,
                                    auth_config=auth_config):
            if "error" in item:
                raise ImageError(f"pushing {ref} failed: {str(item['error']).strip()}")
            aux = item.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
            status = item.get("status")
            if status and not item.get("progressDetail"):
                log(f"push {ref}: {item.get('id', '')} {status}".replace("  ", " "))
    except DockerException as exc:
        raise ImageError(f"pushing {ref} failed: {exc}") from None
    return digest


def build_serving_image(registry_root: Path | str | None, model: str, version: str, *,
                        base: str | None = None, push: bool | None = None,
                        image_registry: str | None = None,
                        log: Callable[[str], None] = print, client=None,
                        docker_url: str | None = None, cache_dir: Path | None = None,
                        extra: str | None = None) -> ImageRef:
    """Build ``<model>-serving:<version>`` from the version registered in ``registry_root``
    (``None``: the default registry) on ``base`` (default ``$PADDLE_CANARY_IMAGE_BASE``, else
    the GPU base), unless the engine already has it from the same model and code.

    ``push``: ``None`` pushes when an image registry is configured (``image_registry``, else
    the Connection ``docker_default`` inside Airflow, else ``$PADDLE_CANARY_IMAGE_REGISTRY``:
    :func:`image_registry_of`), ``True`` requires one, ``False`` never pushes.
    ``client``: a ``docker.DockerClient`` (default: one for ``docker_url`` / ``$DOCKER_HOST``).
    """
    from paddle_canary.images.wheelhouse import ensure_wheels_image, wheelhouse
    from paddle_canary.registry import Registry

    card = Registry(registry_root).card(model, version)  # RegistryError (a UserError) first
    tag = image_tag(model, version)
    image_registry, auth = image_registry_of(image_registry)
    if push and not image_registry:
        raise ImageError(f"cannot push {tag}: no image registry configured "
                         f"(set {ENV_REGISTRY}, e.g. 127.0.0.1:5000)")
    push = bool(image_registry) if push is None else push
    base = base or default_base()
    extra = extra or serve_extra(base)
    client = client or docker_client(docker_url)
    try:
        root = source_root()
    except ImageError as no_checkout:
        # an installed package (the compose stack's Airflow image): nothing to build from, but
        # an image of this very model, built where the checkout is, is as good
        found = _built_from_model(client, tag, card.content_hash)
        if found is None:
            raise ImageError(f"{no_checkout}, and the engine has no {tag} built from model "
                             f"{card.content_hash[:19]}: build it where the checkout is "
                             f"(paddle-canary image build {model} {version})") from None
        log(f"{tag}: {found[1]}")
        return _finish(client, found[0], tag, model, version, card.content_hash,
                       (found[2] or base), found[1], push, (image_registry, auth), log, 0.0)
    base_image = _ensure_base_present(client, base, log)
    wheels = wheelhouse(extra, cache_dir=cache_dir, root=root, log=log)
    inputs = inputs_digest(root, wheels, base_image.id)
    wheels_image = ensure_wheels_image(client, wheels, log)

    started = time.monotonic()
    skipped = _already_built(client, tag, card.content_hash, inputs)
    if skipped:
        image_id = skipped[0]
        log(f"{tag}: {skipped[1]}")
    else:
        labels = image_labels(card, base, inputs, root, extra)
        log(f"building {tag} from {card.path} on {base} ({extra})")
        with tempfile.TemporaryFile() as context:
            write_context(context, _context_files(root, card.path),
                          dockerfile_with_labels(root, labels))
            context.seek(0)
            image_id = _run_build(client, context, tag,
                                  {"BASE_IMAGE": base, "WHEELS_IMAGE": wheels_image,
                                   "MODEL": model, "VERSION": version}, log)
        log(f"built {tag} ({image_id[:19]}) in {time.monotonic() - started:.1f}s")
    return _finish(client, image_id, tag, model, version, card.content_hash, base,
                   skipped[1] if skipped else None, push, (image_registry, auth), log,
                   0.0 if skipped else round(time.monotonic() - started, 2))


def _finish(client, image_id: str, tag: str, model: str, version: str, content_hash: str,
            base: str, skipped: str | None, push: bool,
            image_registry: tuple[str | None, dict | None], log, build_s: float) -> ImageRef:
    """Push when asked (``image_registry``: the registry and its auth_config), and describe
    the image."""
    pushed = digest = None
    if push:
        remote = f"{image_registry[0].rstrip('/')}/{model}-serving"
        digest = push_image(client, image_id, remote, version, log, image_registry[1])
        pushed = f"{remote}:{version}"
        log(f"pushed {pushed} ({digest})")
    return ImageRef(tag=tag, id=image_id, model=model, version=version,
                    content_hash=content_hash, base=base, skipped=skipped, pushed=pushed,
                    digest=digest, build_s=build_s)


def _built_from_model(client, tag: str, content_hash: str) -> tuple[str, str, str] | None:
    """``(image id, why, base)`` when the engine has ``tag`` built from the model files with
    ``content_hash`` (whatever code and base it was built with), else None."""
    image = _image_of_model(client, tag, content_hash)
    if image is None:
        return None
    return image.id, (f"no source checkout here to build from; the engine's {tag} was built "
                      f"from the same model {content_hash[:19]} (image {image.id[:19]}), used "
                      "as it is"), image.labels.get("org.opencontainers.image.base.name", "")


def _already_built(client, tag: str, content_hash: str, inputs: str) -> tuple[str, str] | None:
    image = _image_of_model(client, tag, content_hash)
    if image is not None and image.labels.get(INPUTS_LABEL) == inputs:
        return image.id, (f"already built from model {content_hash[:19]} with the same serving "
                          f"code and base (image {image.id[:19]})")
    return None


def _image_of_model(client, tag: str, content_hash: str):
    """The engine's image ``tag`` when it was built from the model files with ``content_hash``
    (its labels), else None."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    return image if (image.labels or {}).get(CONTENT_HASH_LABEL) == content_hash else None


def describe(ref: ImageRef) -> str:
    return json.dumps(ref.to_dict(), indent=2)

