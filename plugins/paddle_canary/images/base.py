"""The offline CPU base image ``local/debian:bookworm``: debootstrap + ``docker import``.

Nothing can be pulled from an image registry on machines like CI's, so the base is made from
Debian packages: ``debootstrap --variant=minbase bookworm`` from the apt mirror the host uses,
with what the serving image needs (Python 3.11 with venv, and libgomp1, which Paddle's CPU wheel
loads), apt's caches removed. The root file system is kept as a tarball in the cache directory
(``var/cache/images/base/``), so another engine (a new test session's, the compose stack's)
imports it in seconds; the import is labelled with the tarball's key and skipped when the
engine already has it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paddle_canary.images.engine import ImageError
from paddle_canary.images.paths import cache_dir as default_cache_dir

BASE_TAG = "local/debian:bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "libgomp1")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEY_LABEL = "io.paddle-canary.base-key"
DEBOOTSTRAP_TIMEOUT_S = 1200


@dataclass(frozen=True)
class BaseRef:
    tag: str
    id: str
    key: str
    skipped: str | None = None  # why nothing was imported, when nothing was


def base_key(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES,
             prune: tuple[str, ...] = ()) -> str:
    arch = platform.machine()
    text = f"{suite} minbase {arch} {' '.join(sorted(packages))}"
    if prune:
        text += f" prune {' '.join(sorted(prune))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def host_mirror(apt_dir: Path = Path("/etc/apt"), suite: str = SUITE) -> str:
    """The Debian mirror the host's apt uses for ``suite`` (deb822 ``*.sources`` or
    ``sources.list``), else deb.debian.org."""
    candidates: list[Path] = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"(?m)^([A-Za-z-]+):\s*(.*)$", stanza))
            if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "deb"):
                uris = fields.get("URIs", "").split()
                if uris:
                    return uris[0]
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == suite:
                return m.group(1)
    return DEFAULT_MIRROR


def rootfs_tarball(cache_dir: Path | None = None, *, mirror: str | None = None,
                   log: Callable[[str], None] = print,
                   packages: tuple[str, ...] = PACKAGES, prune: tuple[str, ...] = ()) -> Path:
    """The base's root file system (minbase plus ``packages``, less the paths matching the
    ``prune`` globs) as a tarball, made with debootstrap unless cached."""
    cache = Path(cache_dir or default_cache_dir()) / "base"
    key = base_key(packages=packages, prune=prune)
    tarball = cache / f"debian-{SUITE}-{key}.tar"
    if tarball.is_file():
        return tarball
    if os.geteuid() != 0:
        raise ImageError("making the base image runs debootstrap, which needs root")
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap not found: apt-get install debootstrap "
                         "(`make os-deps` does)")
    mirror = mirror or host_mirror()
    cache.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".debootstrap-", dir=cache))
    rootfs = workdir / "rootfs"
    debootstrap_log = cache / "debootstrap.log"
    log(f"debootstrap {SUITE} (minbase, {', '.join(packages)}) from {mirror} ...")
    try:
        with open(debootstrap_log, "wb") as out:
            proc = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                 SUITE, str(rootfs), mirror],
                stdout=out, stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT_S)
        if proc.returncode != 0:
            tail = "\n".join(debootstrap_log.read_text(errors="replace").splitlines()[-12:])
            raise ImageError(f"debootstrap of {SUITE} from {mirror} failed "
                             f"(exit {proc.returncode}); {debootstrap_log}:\n{tail}")
        for pattern in ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                        "var/lib/apt/lists/*"):
            for path in rootfs.glob(pattern):
                if path.is_file():
                    path.unlink()
        for pattern in prune:
            for path in rootfs.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        tmp = workdir / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tmp), "."],
                       check=True, capture_output=True, timeout=600)
        os.replace(tmp, tarball)
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"making the base timed out after {exc.timeout:.0f}s "
                         f"({debootstrap_log})") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"base root file system: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    return tarball


def ensure_base(client, cache_dir: Path | None = None, *, tag: str = BASE_TAG,
                mirror: str | None = None, log: Callable[[str], None] = print,
                packages: tuple[str, ...] = PACKAGES, prune: tuple[str, ...] = ()) -> BaseRef:
    """``tag`` in the engine of ``client``: imported from the cached tarball (made first when
    missing); nothing is done when the engine already has this tarball's import. ``packages``:
    what debootstrap installs beyond minbase (the compose stack's services base has more);
    ``prune``: globs of paths removed from the root file system before it is packed."""
    from docker.errors import DockerException, ImageNotFound

    key = base_key(packages=packages, prune=prune)
    try:
        image = client.images.get(tag)
        if (image.labels or {}).get(KEY_LABEL) == key:
            return BaseRef(tag, image.id, key,
                           skipped=f"{tag} is already imported from base {key}")
    except ImageNotFound:
        pass
    tarball = rootfs_tarball(cache_dir, mirror=mirror, log=log, packages=packages, prune=prune)
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    log(f"docker import {tarball.name} as {tag}")
    try:
        client.api.import_image_from_file(
            str(tarball), repository=repository, tag=version,
            changes=[f"LABEL {KEY_LABEL}={key}", "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
        image = client.images.get(tag)
    except DockerException as exc:
        raise ImageError(f"importing {tarball} as {tag} failed: {exc}") from None
    return BaseRef(tag, image.id, key)
