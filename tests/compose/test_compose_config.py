"""docker-compose.yaml as written: valid for Debian's docker-compose 1.29, nothing secret in it,
the .env it reads, and the gateway config the nginx container runs. No engine needed."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from paddle_canary.compose.env import SECRETS, read_env, write_env
from paddle_canary.compose.gateway import COMPOSE_TEMPLATE, PORT, STATUS_PORT, init_gateway
from paddle_canary.traffic.base import Backend
from paddle_canary.compose.stack import SERVICES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"


@pytest.fixture
def socket_path(tmp_path) -> Path:
    import socket

    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    yield path
    sock.close()


@pytest.fixture
def env_file(tmp_path, socket_path) -> Path:
    path = tmp_path / ".env"
    write_env(path, f"unix://{socket_path}")
    return path


def compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (make os-deps)")
    return subprocess.run(["docker-compose", "--env-file", str(env_file), "-p", "pctest",
                           "-f", str(COMPOSE_FILE), *args, "config"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_env_file_is_private_random_and_kept(tmp_path, socket_path):
    path = tmp_path / ".env"
    first = write_env(path, f"unix://{socket_path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({first[k] for k in SECRETS}) == len(SECRETS)
    assert all(len(first[k]) >= 32 for k in SECRETS)
    assert first["DOCKER_SOCKET"] == str(socket_path)
    # The database volume keeps the password it was made with: a second call keeps them.
    second = write_env(path, f"unix://{socket_path}")
    assert {k: second[k] for k in SECRETS} == {k: first[k] for k in SECRETS}
    assert read_env(path) == second
    other = write_env(tmp_path / "other.env", f"unix://{socket_path}")
    assert all(other[k] != first[k] for k in SECRETS)


def test_env_file_is_git_ignored():
    out = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", ".env"], timeout=10)
    assert out.returncode == 0, ".env must be git-ignored"


def test_config_is_valid_for_docker_compose_v1(env_file):
    out = compose_config(env_file)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert set(config["services"]) == set(SERVICES) | {"loadgen"}
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())
    env = read_env(env_file)
    services = config["services"]
    airflow = services["airflow-scheduler"]["environment"]
    assert airflow["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://airflow:{env['POSTGRES_PASSWORD']}@postgres:5432/airflow")
    # Only the API server is published, on 127.0.0.1, with the gateway and Prometheus.
    def host_ip(port) -> str:  # v1 prints "127.0.0.1:8080:8080/tcp", v2 a mapping
        return port.get("host_ip") if isinstance(port, dict) else port.rsplit(":", 2)[0]

    published = {name: [host_ip(p) for p in s.get("ports", [])]
                 for name, s in services.items() if s.get("ports")}
    assert published == {"airflow-apiserver": ["127.0.0.1"], "gateway": ["127.0.0.1"],
                         "prometheus": ["127.0.0.1"]}
    # The services that start versions get the engine's socket, nothing else does.
    with_socket = {name for name, s in services.items()
                   if any(":/var/run/docker.sock" in str(v) or
                          (isinstance(v, dict) and v.get("target") == "/var/run/docker.sock")
                          for v in s.get("volumes", []))}
    assert with_socket == {"airflow-scheduler", "airflow-triggerer"}
    # Start order: everything Airflow waits for the init service, which waits for a healthy db.
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer", "gateway", "prometheus"):
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"}
    assert services["gateway"]["depends_on"]["stable"] == {"condition": "service_healthy"}
    for name in set(SERVICES) - {"airflow-init", "stable"}:
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_loadgen_is_an_optional_profile(env_file):
    out = compose_config(env_file, "--profile", "loadgen")
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    assert services["loadgen"]["profiles"] == ["loadgen"]
    assert "http://gateway:8000/predict" in services["loadgen"]["command"]
    assert [name for name, s in services.items() if s.get("profiles")] == ["loadgen"]


def test_nothing_secret_in_the_yaml(env_file):
    text = COMPOSE_FILE.read_text()
    for key in SECRETS:
        # every use is a required interpolation from .env, never a default value
        uses = text.count("${" + key)
        assert uses >= 1
        assert text.count("${" + key + ":?") == uses, f"{key} used other than as ${{{key}:?...}}"
    for value in (v for k, v in read_env(env_file).items() if k in SECRETS):
        assert value not in text


def test_config_without_env_names_what_is_missing(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = compose_config(empty)
    assert out.returncode != 0
    assert "make compose-up" in out.stderr


def test_gateway_config_listens_on_the_network_and_passes_nginx_t(tmp_path):
    workdir = tmp_path / "gateway"
    state = init_gateway(workdir, "risk-score", "v1", "http://stable:8080")
    conf = (workdir / "nginx.conf").read_text()
    assert f"listen {PORT};" in conf and f"listen {STATUS_PORT};" in conf
    assert "127.0.0.1" not in conf.split("upstream")[0] or "listen 127.0.0.1" not in conf
    assert "server stable:8080;" in conf
    assert state.route("risk-score").weight == 0
    assert json.loads((workdir / "state.json").read_text())["routes"][0]["model"] == "risk-score"
    assert "@{" not in COMPOSE_TEMPLATE.replace("@{", "", COMPOSE_TEMPLATE.count("@{"))
    # nginx -t needs the backend's name to resolve: check a copy pointing at 127.0.0.1.
    check = tmp_path / "check"
    init_gateway(check, "risk-score", "v1", "http://127.0.0.1:9")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    out = subprocess.run([nginx, "-t", "-q", "-p", str(check), "-c", str(check / "nginx.conf"),
                          "-e", str(check / "logs" / "error.log")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # A restarted stack keeps the gateway a release left (weight and backends).
    moved = state.with_route(state.route("risk-score").replace(
        candidate=Backend("v2", "http://cand:8080"), weight=30))
    (workdir / "state.json").write_text(moved.to_json())
    again = init_gateway(workdir, "risk-score", "v1", "http://stable:8080")
    assert again.route("risk-score").weight == 30


def test_valid_against_the_compose_specification_schema():
    """The Compose Specification's JSON schema (compose-spec/compose-spec,
    schema/compose-spec.json) is not vendored here: point PADDLE_CANARY_COMPOSE_SCHEMA at it."""
    import os

    import jsonschema

    schema_path = os.environ.get("PADDLE_CANARY_COMPOSE_SCHEMA")
    if not schema_path:
        pytest.skip("PADDLE_CANARY_COMPOSE_SCHEMA is not set (path to compose-spec.json)")
    schema = json.loads(Path(schema_path).read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(
        yaml.safe_load(COMPOSE_FILE.read_text())))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_job_healthcheck_reads_the_postgres_url_and_refuses_others():
    from paddle_canary.compose.health import dsn, main

    assert dsn("postgresql+psycopg2://airflow:pw@postgres:5432/airflow") == (
        "postgresql://airflow:pw@postgres:5432/airflow")
    with pytest.raises(ValueError):
        dsn("sqlite:////tmp/airflow.db")
    with pytest.raises(SystemExit):  # only Airflow's job types
        main(["NotAJob"])


def test_services_base_key_changes_with_what_is_pruned():
    from paddle_canary.compose.images import SERVICES_PACKAGES, SERVICES_PRUNE
    from paddle_canary.images.base import PACKAGES, base_key

    assert base_key() == base_key(packages=PACKAGES, prune=())  # the serving base is unchanged
    assert base_key(packages=SERVICES_PACKAGES) != base_key(packages=SERVICES_PACKAGES,
                                                            prune=SERVICES_PRUNE)
