"""Versions as containers: one container per version, from its ``<model>-serving:<version>``.

The engine holds all the state: every container carries the labels ``io.paddle-canary.model``,
``.version``, ``.namespace`` (and ``.release-run`` when the runtime was given one), so a
restarted scheduler or CLI finds the running versions from the labels alone. A container is
named ``pc-<namespace>-<model>-<version>`` (one per version in a namespace), runs with
``init=True`` (``docker stop`` returns at once), and is ready only when ``/deep_health``
answers 200. ``device="gpu"`` asks the engine for one GPU (``DeviceRequest(count=1,
capabilities=[["gpu"]])``). Where callers reach it (``address``):

- ``published`` (default): a free port of ``127.0.0.1`` (docker-proxy); works with any engine
  on this machine, at ~0.66x the req/s of a local process here (bench/images.py);
- ``bridge``: its address on its network, ``http://<ip>:8080``, no proxy hop (~1.0x); needs the
  engine on this Linux machine (the host routes to its bridge networks);
- ``name``: ``http://<container name>:8080``, for callers on the same user network (the compose
  stack's nginx and Prometheus).

A shadow version (``deploy(..., shadow=V)``, paired analysis): ``serve --shadow V`` loads V
from the container's registry, so V's export is copied from the model registry into the
container (``/srv/model_registry/<model>/<V>/``, with ``put_archive`` before it starts; the
engine may be remote, nothing is mounted). A shadow version that the registry does not have is
refused before anything starts.

:meth:`DockerRuntime.validate` runs the image's own ``validate`` entrypoint in a container (what
the GPU pod runs on Kubernetes) and, given the stable version, compares with it there: stable's
export is copied in the same way and ``validate --baseline V`` scores stable's reference rows
with both versions (score PSI, decision agreement).

From the environment (:meth:`DockerRuntime.from_env`, what ``runtime=docker`` in a plan gets):
``DOCKER_HOST`` (the engine), ``PADDLE_CANARY_DOCKER_NAMESPACE`` (default ``default``),
``PADDLE_CANARY_DOCKER_NETWORK``, ``PADDLE_CANARY_DOCKER_ADDRESS`` (``published``),
``PADDLE_CANARY_DOCKER_DEVICE`` (``cpu``), ``PADDLE_CANARY_IMAGE_REGISTRY`` (pull from there;
inside Airflow the Connection ``docker_default`` comes first: its host and login).

Prometheus: with ``targets_dir`` the runtime writes the version's file_sd target on deploy and
removes it on remove (:func:`paddle_canary.runtime.scrape_targets.write_target`).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

from paddle_canary.images.build import CONTENT_HASH_LABEL, image_tag
from paddle_canary.images.engine import ImageError, docker_client
from paddle_canary.process import Timeout, wait_until
from paddle_canary.runtime.base import (FAILING, GONE, HEALTHY, DeployError, Endpoint, Runtime,
                                        VersionHealth)

LABEL = "io.paddle-canary"
ROLE_SERVING, ROLE_VALIDATE = "serving", "validate"
CONTAINER_PORT = 8080
IN_IMAGE_REGISTRY = "/srv/model_registry"
STOP_TIMEOUT_S = 10
DEEP_HEALTH_TIMEOUT_S = 15.0
VALIDATE_TIMEOUT_S = 600.0
DEVICES = ("cpu", "gpu")
ADDRESSES = ("published", "bridge", "name")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class ValidationFailed(DeployError):
    """``validate`` in the image said the version fails: the message lists its problems,
    :attr:`summary` is the JSON summary it printed (for the release journal)."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary or {}


def _deep_health(url: str, timeout: float = DEEP_HEALTH_TIMEOUT_S) -> tuple[int | None, str]:
    from paddle_canary.runtime.local import deep_health

    return deep_health(url, timeout)


def export_archive(export_dir: Path, dest: str) -> bytes:
    """A tar of the export's files under ``dest`` (for ``put_archive`` at ``/``), readable by
    the image's unprivileged user."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        parts = dest.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted(Path(export_dir).iterdir()):
            if path.is_file():
                info = tarfile.TarInfo(f"{dest.strip('/')}/{path.name}")
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return buf.getvalue()


class DockerRuntime(Runtime):
    kind = "docker"

    def __init__(self, *, registry_root: Path | str | None = None, docker_url: str | None = None,
                 client=None, namespace: str = "default", network: str | None = None,
                 address: str = "published", host: str = "127.0.0.1", device: str = "cpu",
                 threads: int = 1, release_run: str | None = None,
                 targets_dir: Path | str | None = None, start_timeout: float = 90.0,
                 probe_timeout: float = DEEP_HEALTH_TIMEOUT_S,
                 image_registry: str | None = None, registry_auth: dict | None = None):
        if device not in DEVICES:
            raise DeployError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if address not in ADDRESSES:
            raise DeployError(f"address must be one of {', '.join(ADDRESSES)}, got {address!r}")
        if address == "name" and not network:
            raise DeployError("containers reached by name must join a user network")
        self.registry_root = Path(registry_root) if registry_root else None
        self.docker_url = docker_url
        self._client = client
        self.namespace, self.network, self.address = namespace, network, address
        self.host, self.device, self.threads = host, device, threads
        self.release_run = release_run
        self.targets_dir = Path(targets_dir) if targets_dir else None
        self.start_timeout, self.probe_timeout = start_timeout, probe_timeout
        self.image_registry, self.registry_auth = image_registry, registry_auth

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kwargs) -> "DockerRuntime":
        """The runtime the environment describes (the module's docstring lists the variables);
        ``kwargs`` (registry_root, targets_dir, ...) are passed on."""
        import os

        from paddle_canary.images.build import image_registry_of

        env = os.environ if env is None else env
        image_registry, auth = image_registry_of(env=env)  # docker_default inside Airflow
        return cls(docker_url=env.get("DOCKER_HOST") or None,
                   namespace=env.get("PADDLE_CANARY_DOCKER_NAMESPACE") or "default",
                   network=env.get("PADDLE_CANARY_DOCKER_NETWORK") or None,
                   address=env.get("PADDLE_CANARY_DOCKER_ADDRESS") or "published",
                   device=env.get("PADDLE_CANARY_DOCKER_DEVICE") or "cpu",
                   image_registry=image_registry, registry_auth=auth, **kwargs)

    # --- engine ----------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            try:
                self._client = docker_client(self.docker_url)
            except ImageError as exc:
                raise DeployError(str(exc)) from None
        return self._client

    def image(self, model: str, version: str) -> str:
        tag = image_tag(model, version)
        return f"{self.image_registry.rstrip('/')}/{tag}" if self.image_registry else tag

    def container_name(self, model: str, version: str) -> str:
        return f"pc-{self.namespace}-{model}-{version}"

    def _labels(self, model: str, version: str, role: str) -> dict[str, str]:
        labels = {f"{LABEL}.role": role, f"{LABEL}.namespace": self.namespace,
                  f"{LABEL}.model": model, f"{LABEL}.version": version}
        if self.release_run:
            labels[f"{LABEL}.release-run"] = self.release_run
        return labels

    def _containers(self, model: str | None = None, version: str | None = None,
                    role: str = ROLE_SERVING, all: bool = False) -> list:
        filters = [f"{LABEL}.role={role}", f"{LABEL}.namespace={self.namespace}"]
        if model:
            filters.append(f"{LABEL}.model={model}")
        if version:
            filters.append(f"{LABEL}.version={version}")
        # ignore_removed: a container being created or removed meanwhile is not an error
        return self.client.containers.list(all=all, filters={"label": filters},
                                           ignore_removed=True)

    def _endpoint(self, container) -> Endpoint:
        labels = container.labels
        model, version = labels[f"{LABEL}.model"], labels[f"{LABEL}.version"]
        settings = container.attrs["NetworkSettings"]
        if self.address == "published":
            bindings = (settings["Ports"] or {}).get(f"{CONTAINER_PORT}/tcp") or []
            if not bindings:
                raise DeployError(f"{container.name} publishes no port")
            port = int(bindings[0]["HostPort"])
            url = f"http://{self.host}:{port}"
        elif self.address == "bridge":
            networks = settings.get("Networks") or {}
            found = networks.get(self.network) if self.network else next(
                iter(networks.values()), None)
            if not found or not found.get("IPAddress"):
                raise DeployError(f"{container.name} has no address on "
                                  f"{self.network or 'its network'}")
            port, url = CONTAINER_PORT, f"http://{found['IPAddress']}:{CONTAINER_PORT}"
        else:
            port = CONTAINER_PORT
            url = f"http://{self._dns_name(container, settings)}:{CONTAINER_PORT}"
        return Endpoint(model, version, url, port, None, instance=container.id)

    def _dns_name(self, container, settings: dict) -> str:
        """A name the network's DNS answers for ``container`` that is also a valid host name:
        its own name (``pc-<namespace>-<model>-<version>``), else one of its aliases on the
        network (docker-compose v1 names a service's container ``<project>_<service>_1``,
        whose underscores no URL host may hold, and gives it the alias ``<service>``), else
        its short id, which Docker's DNS answers on every user network."""
        if _HOSTNAME.match(container.name):
            return container.name
        networks = settings.get("Networks") or {}
        found = networks.get(self.network) if self.network else next(
            iter(networks.values()), None)
        short = container.id[:12]
        aliases = [a for a in (found or {}).get("Aliases") or [] if a != short]
        return next((a for a in aliases if _HOSTNAME.match(a)), short)

    def _address(self, endpoint: Endpoint) -> str:
        return endpoint.url.split("://", 1)[1]

    # --- Runtime -----------------------------------------------------------------------------
    def deploy(self, model: str, version: str, *, shadow: str | None = None) -> Endpoint:
        """Start ``version`` (or find it running, or being started by another caller) and wait
        until it answers /deep_health. A container of the version that exited is replaced; a
        live one is never stopped here (it may serve traffic): it is waited for, and a live one
        running with another shadow version is refused."""
        from docker.errors import APIError, DockerException

        card = self._card(model, version)
        shadow_card = self._card(model, shadow, "shadow version") if shadow else None
        live = self._live_container(model, version)
        if live is not None:
            return self._await(live, shadow)
        image = self._checked_image(model, version, card)
        command = ["serve", "--host", "0.0.0.0", "--port", str(CONTAINER_PORT),
                   "--device", self.device, "--threads", str(self.threads)]
        labels = self._labels(model, version, ROLE_SERVING)
        if shadow:
            command += ["--shadow", shadow]
            labels[f"{LABEL}.shadow"] = shadow
        try:
            container = self.client.containers.create(
                image, command=command, name=self.container_name(model, version),
                labels=labels, init=True, detach=True, **self._run_options())
        except APIError as exc:
            if exc.status_code == 409:  # another caller is creating it: wait for theirs
                return self._await(self._named(self.container_name(model, version)), shadow)
            raise DeployError(f"cannot create the container of {model} {version} from {image}: "
                              f"{_reason(exc)}") from None
        except DockerException as exc:
            raise DeployError(f"cannot create the container of {model} {version} from {image}: "
                              f"{_reason(exc)}") from None
        try:
            if shadow_card is not None:
                container.put_archive("/", export_archive(
                    shadow_card.path, f"{IN_IMAGE_REGISTRY}/{model}/{shadow}"))
            container.start()
            container.reload()
            endpoint = self._endpoint(container)
            self._wait_healthy(container, endpoint)
        except BaseException as exc:
            _force_remove(container)
            if isinstance(exc, DockerException):
                raise DeployError(f"{model} {version} did not start from {image}: "
                                  f"{_reason(exc)}") from None
            raise
        self._register(endpoint)
        return endpoint

    def _live_container(self, model: str, version: str):
        """The version's container that runs or is being started (exited ones are removed)."""
        live = None
        for container in self._containers(model, version, all=True):
            if container.status in ("exited", "dead"):
                _force_remove(container)
            else:
                live = container
        return live

    def _named(self, name: str):
        """The container called ``name`` once the engine shows it (a name is taken before the
        container it names can be listed or inspected)."""
        try:
            return wait_until(lambda: self.client.containers.get(name), self.start_timeout,
                              interval=0.1, what=f"container {name}")
        except Timeout as exc:
            raise DeployError(str(exc)) from None

    def _await(self, container, shadow: str | None) -> Endpoint:
        """Wait until a container another call started answers /deep_health; never stops it.
        One running with another shadow version than the one asked for is refused; asked for
        none (a stable version), one with a shadow is taken as it is: a promoted version keeps
        the shadow it scored with as a candidate (it serves users; it is not restarted)."""
        if shadow is not None and container.labels.get(f"{LABEL}.shadow") != shadow:
            raise DeployError(f"{container.labels.get(f'{LABEL}.model')} "
                              f"{container.labels.get(f'{LABEL}.version')} already runs "
                              f"({container.name}) with shadow "
                              f"{container.labels.get(f'{LABEL}.shadow') or 'none'}, not "
                              f"{shadow or 'none'}: remove it first")
        from docker.errors import NotFound

        def started() -> str | bool:
            try:
                container.reload()
            except NotFound:
                return "gone"
            return container.status != "created"

        try:
            if wait_until(started, self.start_timeout, interval=0.2,
                          what=f"start of {container.name}") == "gone":
                raise DeployError(f"{container.name} was removed while it started (the deploy "
                                  "that started it failed)")
        except Timeout as exc:
            raise DeployError(f"{exc}: remove {container.name} if its deploy was interrupted") \
                from None
        endpoint = self._endpoint(container)
        self._wait_healthy(container, endpoint)
        self._register(endpoint)
        return endpoint

    def _run_options(self) -> dict:
        """Ports, network and devices of a serving container (what ``docker run`` gets)."""
        from docker.types import DeviceRequest

        options: dict = {}
        if self.address == "published":
            options["ports"] = {f"{CONTAINER_PORT}/tcp": (self.host, None)}
        if self.network:
            options["network"] = self.network
        if self.device == "gpu":
            options["device_requests"] = [DeviceRequest(count=1, capabilities=[["gpu"]])]
        return options

    def _card(self, model: str, version: str, what: str = "version"):
        from paddle_canary.registry import Registry, RegistryError

        try:
            return Registry(self.registry_root).card(model, version)
        except RegistryError as exc:
            raise DeployError(f"{what} {version} of {model}: {exc}") from None

    def _checked_image(self, model: str, version: str, card) -> str:
        """The image's name, once the engine has it, built from this version's model files."""
        from docker.errors import DockerException, ImageNotFound

        image = self.image(model, version)
        try:
            found = self.client.images.get(image)
        except ImageNotFound:
            if not self.image_registry:
                raise DeployError(f"no image {image} in the Docker engine: build it first "
                                  f"(paddle-canary image build {model} {version})") from None
            try:  # pushed by the build, pulled by the engine that runs it
                found = self.client.images.pull(image, auth_config=self.registry_auth)
            except DockerException as exc:
                raise DeployError(f"cannot pull {image}: {_reason(exc)}") from None
        except DockerException as exc:
            raise DeployError(f"cannot inspect {image}: {_reason(exc)}") from None
        built_from = (found.labels or {}).get(CONTENT_HASH_LABEL)
        if built_from != card.content_hash:
            raise DeployError(f"{image} was built from model {built_from}, but {model} "
                              f"{version} in the registry is {card.content_hash}: rebuild it")
        return image

    def _wait_healthy(self, container, endpoint: Endpoint) -> None:
        last = ["starting"]

        from docker.errors import NotFound

        def ready():
            try:
                container.reload()
            except NotFound:
                return "gone"
            if container.status in ("exited", "dead"):
                return "exited"
            status, last[0] = _deep_health(endpoint.url, self.probe_timeout)
            if status == 503:  # loaded, and scores its reference rows badly: waiting won't help
                return "failing"
            return status == 200

        what = f"{endpoint.model} {endpoint.version} ({container.name})"
        try:
            result = wait_until(ready, self.start_timeout, interval=0.2,
                                what=f"/deep_health of {what}")
        except Timeout:
            raise DeployError(f"{what} did not pass /deep_health within "
                              f"{self.start_timeout:.0f}s (last: {last[0]}); its log:\n"
                              f"{_log_tail(container)}") from None
        if result == "failing":
            raise DeployError(f"{what} fails /deep_health: {last[0]}")
        if result == "gone":
            raise DeployError(f"{what} was removed before answering /deep_health")
        if result == "exited":
            code = container.attrs.get("State", {}).get("ExitCode")
            raise DeployError(f"{what} exited (status {code}) before answering /deep_health; "
                              f"its log:\n{_log_tail(container)}")

    def _register(self, endpoint: Endpoint) -> None:
        if self.targets_dir is not None:
            from paddle_canary.runtime.scrape_targets import write_target

            write_target(self.targets_dir, endpoint.model, endpoint.version,
                         [self._address(endpoint)])

    def _remove_containers(self, model: str, version: str, role: str = ROLE_SERVING) -> bool:
        found = self._containers(model, version, role=role, all=True)
        for container in found:
            try:
                container.stop(timeout=STOP_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - already stopped or gone; removed below either way
                pass
            _force_remove(container)
        return bool(found)

    def remove(self, model: str, version: str) -> None:
        self._remove_containers(model, version)
        if self.targets_dir is not None:
            from paddle_canary.runtime.scrape_targets import remove_target

            remove_target(self.targets_dir, model, version)

    def endpoints(self, model: str | None = None) -> list[Endpoint]:
        found = []
        for container in self._containers(model):
            try:
                found.append(self._endpoint(container))
            except (DeployError, KeyError):
                continue  # stopping meanwhile
        return sorted(found, key=lambda e: (e.model, e.version))

    def probe(self, model: str, version: str) -> VersionHealth:
        containers = self._containers(model, version, all=True)
        if not containers:
            return VersionHealth(GONE, f"no container of {model} {version}")
        container = containers[0]
        if container.status not in ("running", "paused", "restarting"):  # paused: not answering
            code = container.attrs.get("State", {}).get("ExitCode")
            return VersionHealth(GONE, f"{container.name} is {container.status} (exit {code})")
        try:
            endpoint = self._endpoint(container)
        except DeployError as exc:
            return VersionHealth(FAILING, str(exc), container.id)
        status, detail = _deep_health(endpoint.url, self.probe_timeout)
        if status == 200:
            return VersionHealth(HEALTHY, "ok", container.id)
        return VersionHealth(FAILING, detail, container.id)

    # --- validation in a container -----------------------------------------------------------
    def validate(self, model: str, version: str, baseline: str | None = None, *,
                 timeout: float = VALIDATE_TIMEOUT_S) -> dict:
        """Run ``validate`` (``--baseline <stable>`` when given) in the version's image; its
        JSON summary. A failed validation raises :class:`ValidationFailed` with the summary's
        problems; a container that does not finish or prints no summary, :class:`DeployError`.
        The container is removed in every case."""
        from docker.errors import DockerException

        card = self._card(model, version)
        baseline_card = self._card(model, baseline, "baseline version") if baseline else None
        image = self._checked_image(model, version, card)
        command = ["validate", "--device", self.device, "--threads", str(self.threads)]
        if baseline:
            command += ["--baseline", baseline]
        options = {k: v for k, v in self._run_options().items() if k == "device_requests"}
        self._remove_containers(model, version, role=ROLE_VALIDATE)
        try:
            container = self.client.containers.create(
                image, command=command, name=f"{self.container_name(model, version)}-validate",
                labels=self._labels(model, version, ROLE_VALIDATE), init=True,
                network_mode="none", detach=True, **options)
        except DockerException as exc:
            raise DeployError(f"cannot create the validation container of {model} {version}: "
                              f"{_reason(exc)}") from None
        try:
            if baseline_card is not None:
                container.put_archive("/", export_archive(
                    baseline_card.path, f"{IN_IMAGE_REGISTRY}/{model}/{baseline}"))
            container.start()
            try:
                code = container.wait(timeout=timeout)["StatusCode"]
            except Exception as exc:  # noqa: BLE001 - requests' read timeout and the like
                raise DeployError(f"validation of {model} {version} in {image} did not finish "
                                  f"within {timeout:.0f}s ({exc})") from None
            stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr_tail = _log_tail(container, stdout=False)
        except DockerException as exc:
            raise DeployError(f"validation of {model} {version} in {image} failed to run: "
                              f"{_reason(exc)}") from None
        finally:
            _force_remove(container)
        summary = _json_summary(stdout)
        if summary is None:
            raise DeployError(f"validate in {image} exited {code} without a JSON summary; "
                              f"its log:\n{stderr_tail}")
        summary["exit_code"] = code
        if code != 0 or not summary.get("passed"):
            problems = "; ".join(summary.get("problems") or []) or f"exit status {code}"
            raise ValidationFailed(f"{model} {version} failed validation in {image}: {problems}",
                                   summary)
        return summary


def _json_summary(stdout: str) -> dict | None:
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(stdout[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip().splitlines()
    return text[-1][:400] if text else type(exc).__name__


def _log_tail(container, lines: int = 15, stdout: bool = True) -> str:
    try:
        raw = container.logs(stdout=stdout, stderr=True, tail=lines)
    except Exception as exc:  # noqa: BLE001 - the log is a courtesy in an error message
        return f"(no log: {exc})"
    return raw.decode(errors="replace").rstrip() or "(empty log)"


def _force_remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception:  # noqa: BLE001 - already gone
        pass

