"""``python -m paddle_canary.compose up|down|env|images|init``.

- ``up``: the engine (``$DOCKER_HOST``, else the host's socket, else our own dockerd started with
  ``paddle-canary dockerd start``), ``.env``, the images, ``docker-compose up -d`` and a wait
  until every service is healthy (``make compose-up``);
- ``down``: the release's containers, then ``docker-compose down -v`` (``make compose-down``);

- ``env [--file .env]``: write the stack's ``.env`` (secrets made once, mode 0600) for the
  engine at ``$DOCKER_HOST``;
- ``images [--stable MODEL:VERSION]``: build every image of the stack that is missing or stale
  in that engine; prints a JSON summary (tag, id, build seconds, skipped);
- ``init``: what the compose init service runs after ``airflow db migrate``: the admin's password
  file, the gateway's first config (stable only) and stable's Prometheus target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from paddle_canary.errors import UserError


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def engine_url(start: bool) -> str | None:
    """``$DOCKER_HOST``, else the host's engine, else our own dockerd (started when ``start``;
    ``None`` when it is not running and ``start`` is false)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if Path("/var/run/docker.sock").is_socket():
        return "unix:///var/run/docker.sock"
    from paddle_canary.images.commands import dockerd_home
    from paddle_canary.localstack.dockerd import Dockerd

    engine = Dockerd(dockerd_home())
    if not engine.running:
        if not start:
            return None
        _log(f"starting our own dockerd in {engine.home}")
        engine.start()
    return engine.url


def _stack(args, url: str):
    from paddle_canary.compose.stack import ComposeStack

    return ComposeStack(project=args.project, env_file=args.env_file.resolve(), docker_url=url)


def cmd_up(args) -> int:
    from paddle_canary.compose.env import write_env

    url = engine_url(start=True)
    os.environ["DOCKER_HOST"] = url
    values = write_env(args.env_file, url)
    cmd_images(args)
    stack = _stack(args, url)
    ready = stack.up(log=_log)
    _log(f"up in {max(ready.values()):.0f}s (DOCKER_HOST={url})")
    print(f"Airflow  http://127.0.0.1:{values.get('AIRFLOW_PORT', 8080)}  "
          f"(admin; password: AIRFLOW_ADMIN_PASSWORD in {args.env_file})")
    print(f"gateway  http://127.0.0.1:{values.get('GATEWAY_PORT', 8000)}/predict")
    print(f"Prometheus http://127.0.0.1:{values.get('PROMETHEUS_PORT', 9090)}")
    return 0


def cmd_down(args) -> int:
    url = engine_url(start=False)
    if url is None:
        _log("no engine running: nothing to take down")
        return 0
    _stack(args, url).down()
    return 0


def cmd_env(args) -> int:
    from paddle_canary.compose.env import write_env

    values = write_env(args.file, engine_url(start=False))
    _log(f"{args.file}: {', '.join(sorted(values))}")
    return 0


def cmd_images(args) -> int:
    from paddle_canary.compose.images import ensure_images
    from paddle_canary.images.engine import docker_client

    model, _, version = args.stable.partition(":")
    built = ensure_images(docker_client(timeout=3600), stable=(model, version), log=_log)
    summary = {name: {"tag": b.tag, "id": b.id[:19], "build_s": b.build_s, "skipped": b.skipped}
               for name, b in built.items()}
    print(json.dumps(summary, indent=2))
    return 0


def cmd_init(args) -> int:
    from paddle_canary.runtime.scrape_targets import write_target
    from paddle_canary.compose.gateway import init_gateway
    from paddle_canary.settings import Settings

    paths = Settings.from_env()
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if not password:
        raise UserError("AIRFLOW_ADMIN_PASSWORD is not set (the stack's .env sets it)")
    passwords = Path(os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
                     or paths.home / "airflow" / "passwords.json")
    passwords.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(passwords.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({args.admin: password}, fh)
    os.replace(passwords.with_suffix(".tmp"), passwords)
    state = init_gateway(paths.gateway_dir, args.model, args.version,
                         f"http://{args.stable_host}:8080")
    write_target(paths.targets_dir, args.model, args.version, [f"{args.stable_host}:8080"])
    route = state.route(args.model)
    _log(f"init: admin password file {passwords}; gateway {args.model}: stable "
         f"{route.stable.url if route else '?'} (weight {route.weight if route else 0}); "
         f"target {args.model}/{args.version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paddle_canary.compose")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("up", cmd_up), ("down", cmd_down)):
        c = sub.add_parser(name, help=f"the stack {name} (make compose-{name})")
        c.add_argument("--project", default="paddle-canary")
        c.add_argument("--env-file", type=Path, default=Path(".env"))
        c.add_argument("--stable", default="risk-score:v1", help="MODEL:VERSION")
        c.set_defaults(func=func)
    e = sub.add_parser("env", help="write the stack's .env (secrets made once, 0600)")
    e.add_argument("--file", type=Path, default=Path(".env"))
    e.set_defaults(func=cmd_env)
    i = sub.add_parser("images", help="build the stack's images that are missing or stale")
    i.add_argument("--stable", default="risk-score:v1", help="MODEL:VERSION (default risk-score:v1)")
    i.set_defaults(func=cmd_images)
    n = sub.add_parser("init", help="in the init container: password file, gateway, target")
    n.add_argument("--admin", default="admin")
    n.add_argument("--model", default=os.environ.get("STABLE_MODEL", "risk-score"))
    n.add_argument("--version", default=os.environ.get("STABLE_VERSION", "v1"))
    n.add_argument("--stable-host", default="stable")
    n.set_defaults(func=cmd_init)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        _log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
