"""Our own Docker engine: a ``dockerd`` with its own data root, socket and pidfile.

For the tests, the benchmarks and the one-machine stack on a machine where no Docker engine runs
(CI). It never touches the host's engine or its ``/var/lib/docker``:

- ``--storage-driver=overlay2`` where an overlay mount works in the data root's file system,
  else ``vfs`` (works anywhere, but copies the whole file system for every build step and
  container: a serving image's metadata step takes ~40 s there instead of ~1 s),
- ``--data-root <home>/data``, ``--exec-root`` a short directory under ``/tmp`` (containerd's
  unix sockets must fit in 108 bytes), ``-H unix://<home>/docker.sock``, ``--pidfile``,
- ``--bridge=none --iptables=false --ip-masq=false``: no ``docker0`` and no host firewall rules,
  so several engines (a test session, the local stack, another person's) run side by side.
  Containers join a user-defined bridge network (:attr:`Dockerd.network`, created on start;
  each gets its own ``br-<id>`` interface and a subnet no other route uses); ports are published
  by docker-proxy. Containers reach nothing outside: builds are offline (wheelhouse).
- its own containerd namespaces, so it never shares one with another engine.

Started with :meth:`Dockerd.start` (idempotent), stopped by PID with :meth:`Dockerd.stop`, which
also removes the network's bridge interface. ``Dockerd(home).running`` tells another process
whether it is up. Needs root (``dockerd`` does) and Debian's ``docker.io``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from paddle_canary.errors import UserError
from paddle_canary.localstack.private import private_dir
from paddle_canary.process import Timeout, pid_alive, read_pidfile, spawn, stop_pid, wait_until

NETWORK = "paddle-canary"
START_TIMEOUT_S = 60.0
# dockerd stops its containers on SIGTERM (10 s each at most, in parallel) and then containerd.
STOP_TIMEOUT_S = 40.0
SOCKET_MAX = 100  # sun_path is 108 bytes


class DockerdError(UserError):
    """Our dockerd did not start (the message says why, with its log's last lines)."""


def overlay_works(directory: Path) -> bool:
    """True when an overlay file system mounts with its layers under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = Path(tempfile.mkdtemp(prefix=".overlay-probe-", dir=directory))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options,
                                  str(probe / "merged")], capture_output=True, timeout=10)
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", str(probe / "merged")], capture_output=True, timeout=10)
        return True
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class Dockerd:
    def __init__(self, home: Path | str, network: str = NETWORK, storage_driver: str = "auto"):
        self.home = Path(home).resolve()
        self.network = network
        self._storage_driver = storage_driver
        key = hashlib.sha256(str(self.home).encode()).hexdigest()[:10]
        self.data_root = self.home / "data"
        self.exec_root = Path(tempfile.gettempdir()) / f"pc-dockerd-{key}"
        self.pidfile = self.home / "dockerd.pid"
        self.log_path = self.home / "dockerd.log"
        sock = self.home / "docker.sock"
        self.socket = sock if len(str(sock)) <= SOCKET_MAX else self.exec_root / "docker.sock"
        self.namespace = f"pc-{key}"

    @property
    def url(self) -> str:
        """What ``DOCKER_HOST`` (or ``docker.DockerClient(base_url=...)``) takes."""
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return read_pidfile(self.pidfile)

    @property
    def running(self) -> bool:
        """The pidfile's process is alive and is our dockerd (its command line names our
        data root: PIDs are reused)."""
        pid = self.pid
        if not pid or not pid_alive(pid):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"--data-root" in argv and str(self.data_root).encode() in argv

    @property
    def storage_driver(self) -> str:
        if self._storage_driver == "auto":
            self._storage_driver = "overlay2" if overlay_works(self.home) else "vfs"
        return self._storage_driver

    def argv(self) -> list[str]:
        return ["dockerd", f"--storage-driver={self.storage_driver}",
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "-H", self.url, "--pidfile", str(self.pidfile),
                "--bridge=none", "--iptables=false", "--ip-masq=false",
                "--containerd-namespace", self.namespace,
                "--containerd-plugins-namespace", f"{self.namespace}-plugins"]

    def client(self, timeout: float = 60.0):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=timeout)

    def start(self, timeout: float = START_TIMEOUT_S) -> "Dockerd":
        """Start dockerd (unless it already runs), wait until it answers, create the network."""
        if not self.running:
            if shutil.which("dockerd") is None:
                raise DockerdError("dockerd not found: install Debian's docker.io "
                                   "(apt-get install docker.io; `make os-deps` does)")
            private_dir(self.home)   # its log and data root are this user's alone
            self.exec_root.mkdir(parents=True, exist_ok=True)
            self.pidfile.unlink(missing_ok=True)
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            proc = spawn(self.argv(), self.log_path)

            def up() -> bool:
                if proc.poll() is not None:
                    raise DockerdError(f"dockerd exited with {proc.returncode}: "
                                       f"{self._log_tail(offset)}")
                self.client(timeout=2).ping()
                return True
            try:
                wait_until(up, timeout, interval=0.2, what=f"dockerd on {self.socket}")
            except DockerdError:
                raise
            except Timeout as exc:
                stop_pid(proc.pid, signal.SIGTERM, STOP_TIMEOUT_S)
                raise DockerdError(f"{exc}; {self._log_tail(offset)}") from None
        self._ensure_network()
        self._private_state()
        return self

    def _private_state(self) -> None:
        """The engine's metadata databases and its log 0600: dockerd makes some of them 0644
        (containerd's ``meta.db``, buildkit's ``containerdmeta.db``, the network store), some
        only at the first build, so this runs at start and at stop."""
        # where its databases are; not the layer stores, which hold whole file systems
        dbs = [db for sub in ("buildkit", "containerd", "network", "volumes")
               for db in (self.data_root / sub).rglob("*.db")]
        for path in [self.log_path, *dbs]:
            try:
                path.chmod(0o600)
            except OSError:   # removed meanwhile
                continue

    def _ensure_network(self) -> None:
        client = self.client()
        try:
            if not client.networks.list(names=[self.network]):
                client.networks.create(self.network, driver="bridge",
                                       labels={"io.paddle-canary.dockerd": str(self.home)})
        finally:
            client.close()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop dockerd by PID (its containers and containerd go with it), delete the bridge
        interfaces of its networks and the exec root; the data root (images) stays for the next
        start. Does nothing when it is not running."""
        if not self.running:
            return
        bridges: list[str] = []
        try:
            client = self.client(timeout=10)
            try:
                bridges = [f"br-{n.id[:12]}" for n in client.networks.list()
                           if n.attrs.get("Driver") == "bridge"]
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - an engine that does not answer is stopped all the same
            pass
        stop_pid(self.pid, signal.SIGTERM, timeout)
        for pid in self._leftover_pids():  # containerd and shims, had dockerd been killed
            stop_pid(pid, signal.SIGTERM, 10)
        for name in bridges:
            if Path(f"/sys/class/net/{name}").exists():
                subprocess.run(["ip", "link", "delete", name], check=False,
                               capture_output=True, timeout=10)
        shutil.rmtree(self.exec_root, ignore_errors=True)  # runtime state only
        self._private_state()

    def _leftover_pids(self) -> list[int]:
        """Processes whose command line names our exec root or containerd namespace."""
        marks = (str(self.exec_root).encode(), self.namespace.encode())
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if any(mark in cmdline for mark in marks):
                pids.append(int(entry.name))
        return pids

    def wipe(self) -> None:
        """Stop it, then delete its data root (images, containers) and exec root."""
        self.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def _log_tail(self, offset: int = 0, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            return f"no log at {self.log_path}"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"log {self.log_path}:\n{tail}"

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
