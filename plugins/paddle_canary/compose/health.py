"""``python -m paddle_canary.compose.health JOB_TYPE``: the healthcheck of the Airflow
containers that serve nothing over HTTP (dag-processor, triggerer).

Exit 0 when this container's job (``DagProcessorJob``, ``TriggererJob``) is ``running`` in the
metadata database with a heartbeat younger than ``--max-age`` seconds. What ``airflow jobs
check`` asks, without importing Airflow: that CLI took more than 45 s per probe on this loaded
2-core machine, this takes well under one. Only psycopg2, on
``$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

QUERY = ("SELECT count(*) FROM job WHERE job_type = %s AND hostname = %s AND state = 'running' "
         "AND latest_heartbeat > now() - make_interval(secs => %s)")


def dsn(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg2://...`` as libpq takes it."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError("the metadata database is not PostgreSQL")
    return f"postgresql://{rest}"


def job_alive(job_type: str, hostname: str, max_age_s: float, url: str) -> bool:
    import psycopg2

    with psycopg2.connect(dsn(url), connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(QUERY, (job_type, hostname, max_age_s))
        return cur.fetchone()[0] > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paddle_canary.compose.health")
    parser.add_argument("job_type", choices=("DagProcessorJob", "TriggererJob", "SchedulerJob"))
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    try:
        alive = job_alive(args.job_type, socket.getfqdn(), args.max_age,
                          os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    except Exception as exc:  # noqa: BLE001 - any failure is "not healthy", with the reason
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not alive:
        print(f"unhealthy: no running {args.job_type} on {socket.getfqdn()} with a heartbeat "
              f"in the last {args.max_age:.0f}s", file=sys.stderr)
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
