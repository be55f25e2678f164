"""``paddle-canary registry ...``: list, show, register, promote, reject, candidate pointers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paddle_canary.registry.store import Registry


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser("registry", help="model versions, cards, pointers, history",
                                   description="Model versions, cards, pointers and history.")
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", type=Path, default=None, metavar="DIR",
                        help="registry root (default: $PADDLE_CANARY_REGISTRY or "
                             "<repo>/model_registry)")

    p = sub.add_parser("list", parents=[common], help="models and versions with their status")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common],
                       help="a version's card, or a model's pointers and history")
    p.add_argument("model")
    p.add_argument("version", nargs="?")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("register", parents=[common],
                       help="check an export and add it as a new version")
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("path", type=Path, help="directory with model.json, model.pdiparams, "
                                           "card.yaml, reference.csv")
    p.add_argument("--release", action="store_true",
                   help="then start its canary release: emits the Airflow asset event that "
                        "schedules model_release (Airflow REST; see 'paddle-canary release')")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("promote", parents=[common],
                       help="make a version stable (clears the candidate)")
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("--reason", default="manual promotion")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("reject", parents=[common], help="mark a version rejected, with a reason")
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("set-candidate", parents=[common], help="point the candidate at a version")
    p.add_argument("model")
    p.add_argument("version")
    p.set_defaults(func=cmd_set_candidate)

    p = sub.add_parser("clear-candidate", parents=[common], help="unset the candidate")
    p.add_argument("model")
    p.set_defaults(func=cmd_clear_candidate)


def cmd_list(args) -> int:
    registry = Registry(args.registry)
    models = registry.models()
    if not models:
        print(f"no models in {registry.root}")
        return 0
    print(f"{'MODEL':<24} {'VERSION':<16} {'POINTER':<10} {'STATUS':<11} AUC")
    for model in models:
        pointers = registry.pointers(model)
        for version in registry.versions(model):
            mark = ("stable" if version == pointers.stable
                    else "candidate" if version == pointers.candidate else "")
            auc = registry.card(model, version).metrics.get("auc")
            print(f"{model:<24} {version:<16} {mark:<10} "
                  f"{registry.status(model, version):<11} {'' if auc is None else auc}")
    return 0


def cmd_show(args) -> int:
    registry = Registry(args.registry)
    if args.version is None:
        pointers = registry.pointers(args.model)
        print(f"model:     {args.model}  ({registry.root / args.model})")
        print(f"stable:    {pointers.stable or '-'}")
        print(f"candidate: {pointers.candidate or '-'}")
        print(f"versions:  {', '.join(registry.versions(args.model)) or '-'}")
        print("history:")
        for event in registry.history(args.model):
            extra = {k: v for k, v in event.items()
                     if k not in ("ts", "event", "model", "version", "check")}
            detail = f"  {json.dumps(extra, separators=(',', ':'))}" if extra else ""
            print(f"  {event.get('ts', '?')}  {event.get('event', '?'):<18} "
                  f"{event.get('version') or '-'}{detail}")
        return 0
    card = registry.card(args.model, args.version)
    hist = card.reference_histogram
    print(f"model:        {card.model}")
    print(f"version:      {card.version}  (status: {registry.status(card.model, card.version)})")
    print(f"path:         {card.path}")
    print(f"description:  {card.description}")
    print(f"content hash: {card.content_hash}")
    print(f"input:        {card.input_name} {card.input_dtype} [None, {card.n_features}]")
    print(f"features:     {', '.join(card.feature_names)}")
    print(f"threshold:    score >= {card.decision_threshold} -> reject")
    print(f"training:     {json.dumps(card.training, separators=(', ', ': '))}")
    print(f"metrics:      {json.dumps(card.metrics, separators=(', ', ': '))}")
    print(f"reference:    {card.reference_rows} rows; histogram counts {hist['counts']}"
          + (f", {hist['non_finite']} non-finite" if hist.get("non_finite") else ""))
    return 0


def cmd_register(args) -> int:
    registry = Registry(args.registry)
    card = registry.register(args.model, args.version, args.path)
    print(f"registered {card.model} {card.version} ({card.content_hash}) at {card.path}")
    if args.release:
        from paddle_canary.airflow_rest import REGISTERED_VERSIONS_URI, AirflowClient
        client = AirflowClient.from_env()
        client.unpause()
        event = client.emit_asset_event(REGISTERED_VERSIONS_URI,
                                        {"model": card.model, "version": card.version})
        print(f"asset event {event.get('id')}: model_release scheduled for {card.model} "
              f"{card.version}")
    return 0


def cmd_promote(args) -> int:
    pointers = Registry(args.registry).promote(args.model, args.version, reason=args.reason)
    print(f"{args.model}: stable = {pointers.stable}, candidate = {pointers.candidate or '-'}")
    return 0


def cmd_reject(args) -> int:
    Registry(args.registry).mark_rejected(args.model, args.version, args.reason)
    print(f"{args.model} {args.version}: rejected ({args.reason})")
    return 0


def cmd_set_candidate(args) -> int:
    pointers = Registry(args.registry).set_candidate(args.model, args.version)
    print(f"{args.model}: stable = {pointers.stable or '-'}, candidate = {pointers.candidate}")
    return 0


def cmd_clear_candidate(args) -> int:
    pointers = Registry(args.registry).clear_candidate(args.model)
    print(f"{args.model}: stable = {pointers.stable or '-'}, candidate = -")
    return 0
