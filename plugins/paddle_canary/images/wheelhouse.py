"""The wheelhouse: every wheel the serving image installs, downloaded on the host.

``pip download`` runs here (where the package index, its proxy and CA certificates are already
set up) for the image's platform (CPython 3.11, manylinux 2.28, this machine's architecture),
with ``constraints.txt``; the build then installs with ``--no-index`` from the copy in its
context, so it needs no network and no certificates, and two builds install the same files.

A wheelhouse is a directory ``<cache>/wheelhouse/<extra>-<key>/`` holding the wheels and
``requirements.txt`` (every wheel pinned ``name==version``); the key hashes the requirements,
the constraints and the platform, so a change to any of them makes a new one and an unchanged
one is reused by every build, test session and benchmark on the machine.

In an engine the wheelhouse is an image, ``paddle-canary-wheels:<extra>-<key>`` (``FROM
scratch``, the files under ``/wheelhouse``), made once per engine: serving builds copy from it
(``COPY --from``), so their context is the code and the model (~1 MB) instead of 230 MB of
wheels sent and checksummed on every build.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from paddle_canary.images.engine import ImageError
from paddle_canary.images.paths import cache_dir as default_cache_dir
from paddle_canary.images.paths import source_root

PYTHON_VERSION = "3.11"
MANYLINUX = "manylinux_2_28"   # Debian 12 has glibc 2.36, Ubuntu 22.04 2.35: both run 2.28 wheels
DOWNLOAD_TIMEOUT_S = 900
REQUIREMENTS = "requirements.txt"
_WHEEL_RE = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requirements(extra: str, root: Path | None = None) -> list[str]:
    """The requirements of the package with ``extra`` (its own extras expanded)."""
    project = tomllib.loads((Path(root or source_root()) / "pyproject.toml").read_text())
    meta = project["project"]
    extras = meta.get("optional-dependencies", {})
    if extra not in extras:
        raise ImageError(f"pyproject.toml has no extra {extra!r} (has: {', '.join(extras)})")
    own = _name(meta["name"])
    found: list[str] = list(meta.get("dependencies", []))
    todo, seen = [extra], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in extras[name]:
            m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\[([^\]]+)\]\s*", req)
            if m and _name(m.group(1)) == own:
                todo += [e.strip() for e in m.group(2).split(",")]
            else:
                found.append(req)
    return sorted(set(found))


def build_requirements(root: Path | None = None) -> list[str]:
    """What building the package needs (``[build-system] requires``: setuptools)."""
    project = tomllib.loads((Path(root or source_root()) / "pyproject.toml").read_text())
    return list(project["build-system"]["requires"])


def platform_tag() -> str:
    return f"{MANYLINUX}_{platform.machine()}"


def platform_tags() -> list[str]:
    """The target and every older manylinux tag it runs (pip does not expand them itself)."""
    arch = platform.machine()
    newest = int(MANYLINUX.rsplit("_", 1)[1])
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(newest, 4, -1)]
    return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def wheelhouse_key(extra: str, root: Path | None = None) -> str:
    root = Path(root or source_root())
    text = json.dumps({"extra": extra, "requires": requirements(extra, root),
                       "build": build_requirements(root),
                       "constraints": (root / "constraints.txt").read_text(),
                       "python": PYTHON_VERSION, "platform": platform_tag()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def wheelhouse(extra: str = "image", *, cache_dir: Path | None = None, root: Path | None = None,
               log: Callable[[str], None] = print) -> Path:
    """The wheelhouse directory for ``extra``, downloaded unless it is cached."""
    root = Path(root or source_root())
    base = Path(cache_dir or default_cache_dir()) / "wheelhouse"
    dest = base / f"{extra}-{wheelhouse_key(extra, root)}"
    if (dest / REQUIREMENTS).is_file():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{extra}-", dir=base))
    reqs = requirements(extra, root) + build_requirements(root)
    log(f"pip download ({extra}: {len(reqs)} requirements, {platform_tag()}, "
        f"CPython {PYTHON_VERSION}) into {dest}")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(tmp),
            "--only-binary=:all:", *(f"--platform={tag}" for tag in platform_tags()),
            "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "-c", str(root / "constraints.txt"), *reqs]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
            raise ImageError(f"pip download of the {extra!r} wheels failed "
                             f"(exit {proc.returncode}):\n{tail}")
        pins = []
        for wheel in sorted(tmp.glob("*.whl")):
            m = _WHEEL_RE.match(wheel.name)
            if not m:
                raise ImageError(f"unexpected file in the wheelhouse: {wheel.name}")
            pins.append(f"{_name(m.group('name'))}=={m.group('version')}")
        (tmp / REQUIREMENTS).write_text("\n".join(pins) + "\n")
        if dest.exists():  # made meanwhile by another process
            return dest
        os.replace(tmp, dest)
    except subprocess.TimeoutExpired:
        raise ImageError(f"pip download timed out after {DOWNLOAD_TIMEOUT_S}s") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in dest.iterdir())
    log(f"wheelhouse {dest.name}: {len(pins)} wheels, {size / 1e6:.0f} MB")
    return dest


WHEELS_REPOSITORY = "paddle-canary-wheels"


def ensure_wheels_image(client, directory: Path, log: Callable[[str], None] = print) -> str:
    """``paddle-canary-wheels:<extra>-<key>`` in the engine of ``client``, built from the
    wheelhouse ``directory`` unless the engine has it; its tag."""
    from docker.errors import DockerException, ImageNotFound

    directory = Path(directory)
    tag = f"{WHEELS_REPOSITORY}:{directory.name}"
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    log(f"wheelhouse image {tag}")
    dockerfile = b"FROM scratch\nCOPY wheelhouse/ /wheelhouse/\n"
    with tempfile.TemporaryFile() as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size, info.mode = len(dockerfile), 0o644
            tar.addfile(info, io.BytesIO(dockerfile))
            for path in sorted(directory.iterdir()):
                info = tarfile.TarInfo(f"wheelhouse/{path.name}")
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        context.seek(0)
        error = None
        try:
            for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                                          forcerm=True, decode=True, network_mode="none"):
                if "error" in chunk:
                    error = str(chunk["error"]).strip()
        except DockerException as exc:
            error = str(exc)
    if error:
        raise ImageError(f"building the wheelhouse image {tag} failed: {error}")
    return tag
