"""The body of ``paddle-canary validate`` (the serving image's validation entrypoint), so that
the same validation runs in a process, a container and the GPU validation pod.

It prints the summary as JSON, and for the validation pod also writes it where Airflow's
KubernetesPodOperator collects XCom (``--xcom /airflow/xcom/return.json``) and, when the
version fails, writes the reason where Kubernetes takes a container's termination message
(``--termination-log /dev/termination-log``), which the operator puts in the task's failure.
Exit status: 0 passed, 1 failed (the summary says why), 2 the request itself is wrong.

Wire it into ``serving/commands.py`` with :func:`add_arguments` on the ``validate`` parser and
``set_defaults(func=run)``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TERMINATION_MESSAGE_LIMIT = 4096  # bytes Kubernetes keeps of a termination message


def add_arguments(p) -> None:
    """The options ``validate`` takes besides --model/--version/--registry/--device/--threads."""
    p.add_argument("--baseline", default=None,
                   help="stable version to compare with (KL divergence, decision agreement)")
    p.add_argument("--baseline-registry", default=None,
                   help="registry root holding the baseline (default: --registry)")
    p.add_argument("--xcom", default=None, metavar="PATH",
                   help="also write the summary here (KubernetesPodOperator: "
                        "/airflow/xcom/return.json)")
    p.add_argument("--termination-log", default=None, metavar="PATH",
                   help="on failure write the reason here (Kubernetes: /dev/termination-log)")


def run(args) -> int:
    return validate_command(args.registry, args.model, args.version,
                            baseline=getattr(args, "baseline", None),
                            baseline_registry=getattr(args, "baseline_registry", None),
                            device=args.device, threads=args.threads,
                            xcom_path=getattr(args, "xcom", None),
                            termination_log=getattr(args, "termination_log", None))


def validate_command(registry_root, model: str, version: str, *, baseline: str | None = None,
                     baseline_registry=None, device: str = "auto", threads: int = 1,
                     xcom_path=None, termination_log=None, out=None) -> int:
    from paddle_canary.errors import UserError
    from paddle_canary.registry import Registry
    from paddle_canary.validation.offline import validate_version

    out = out or sys.stdout
    code = 1
    try:
        candidate = Registry(registry_root).card(model, version)
        base = (Registry(baseline_registry or registry_root).card(model, baseline)
                if baseline else None)
    except UserError as exc:
        summary = {"model": model, "version": version, "baseline": baseline, "passed": False,
                   "problems": [f"cannot read the versions to validate: {exc}"]}
        code = 2
    else:
        summary = validate_version(candidate, base, device=device, threads=threads)
    json.dump(summary, out, indent=2)
    out.write("\n")
    if xcom_path:
        _write_atomically(Path(xcom_path), json.dumps(summary))
    if summary["passed"]:
        return 0
    if termination_log:
        reason = "offline validation failed: " + "; ".join(summary["problems"])
        data = reason.encode()[:TERMINATION_MESSAGE_LIMIT].decode("utf-8", "ignore")
        Path(termination_log).write_text(data)
    return code


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
