"""Print the Kubernetes/Istio objects for one model as multi-document YAML, for ``kubectl apply``.

    python -m paddle_canary.kube.render serving --model M --namespace NS --version V --image IMG
    python -m paddle_canary.kube.render istio --model M --namespace NS --stable V1 --candidate V2 \
        --weight W [--mirror M] [--header NAME=VALUE] [--weighted] [--gateway NS/NAME]
    python -m paddle_canary.kube.render envoyfilter [--namespace istio-system] [--context GATEWAY]
    python -m paddle_canary.kube.render examples     # rewrite images/k8s/*.example.yaml

Versions are deployed by ``paddle_canary.runtime.kubernetes.KubernetesRuntime`` and the canary is
moved by ``paddle_canary.traffic.istio.IstioRouter``; this output is for review or for a first
apply by hand. Rendering lives in ``paddle_canary.kube.workload`` and
``paddle_canary.traffic.istio_objects``; the example files are checked against it (and against
Kubernetes' and Istio's own schemas) by ``tests/traffic/test_istio_objects.py``.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from paddle_canary.errors import UserError
from paddle_canary.kube import workload
from paddle_canary.kube.config import ModelKube
from paddle_canary.traffic import istio_objects as objects
from paddle_canary.traffic.base import Backend, HeaderRoute, ModelRoute

from paddle_canary.settings import REPO  # noqa: E402

HERE = REPO / "images" / "k8s"

# The worked example the checked-in files show: model risk-score, v1 stable, v2 at 15 %.
EXAMPLE = {"model": "risk-score", "namespace": "ml", "stable": "v1", "candidate": "v2",
           "weight": 15, "mirror": 10, "header": ("x-canary", "always"),
           "image_prefix": "registry.example.com/"}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the Lua filter) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(docs: list[dict]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         width=100)


def serving_docs(model: str, namespace: str, versions: list[tuple[str, str]],
                 config: ModelKube | None = None) -> list[dict]:
    """The model's Service, then per version its Service and Deployment."""
    config = config or ModelKube()
    docs = [workload.model_service(model, namespace)]
    for version, image in versions:
        docs.append(workload.version_service(model, version, namespace))
        docs.append(workload.deployment(model, version, namespace, image,
                                        placement=config.serving, replicas=config.replicas))
    return docs


def istio_docs(model: str, namespace: str, stable: str, candidate: str, weight: int,
               sticky: bool = True, gateways: list[str] | None = None, mirror: int = 0,
               header: HeaderRoute | None = None) -> list[dict]:
    route = ModelRoute(model, Backend(stable), Backend(candidate), weight=weight, mirror=mirror,
                       header=header)
    return list(objects.render(route, namespace, sticky=sticky, gateways=gateways))


def example_files() -> dict[str, str]:
    """File name -> text of every checked-in example."""
    e = EXAMPLE
    header = ("# Rendered by python -m paddle_canary.kube.render examples; do not edit by hand.\n"
              f"# Example: model {e['model']}, namespace {e['namespace']}, stable {e['stable']}, "
              f"candidate {e['candidate']}.\n")
    serving = serving_docs(e["model"], e["namespace"], [
        (v, f"{e['image_prefix']}{e['model']}-serving:{v}") for v in (e["stable"], e["candidate"])])
    return {
        "serving.example.yaml": header + to_yaml(serving),
        "istio-canary.example.yaml": header + (
            f"# Sticky split at {e['weight']} %, {e['mirror']} % of stable's requests mirrored "
            f"to the candidate,\n# and requests with {e['header'][0]}: {e['header'][1]} sent to "
            "the candidate at any weight.\n") + to_yaml(
            istio_docs(e["model"], e["namespace"], e["stable"], e["candidate"], e["weight"],
                       mirror=e["mirror"], header=HeaderRoute(*e["header"]))),
        "envoyfilter-canary-bucket.yaml": (
            "# Rendered by python -m paddle_canary.kube.render examples; do not edit by hand.\n"
            "# Sets x-canary-bucket (0..99) from x-user-id on the ingress gateway, with nginx's\n"
            "# MurmurHash2, so a user has the same bucket on nginx and on Istio.\n"
            "# NOT run against a real Envoy here (no cluster); the Lua was run under LuaJIT.\n"
            + to_yaml([objects.envoy_filter()])),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("serving")
    s.add_argument("--model", required=True)
    s.add_argument("--namespace", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--image", required=True)
    i = sub.add_parser("istio")
    i.add_argument("--model", required=True)
    i.add_argument("--namespace", required=True)
    i.add_argument("--stable", required=True)
    i.add_argument("--candidate", required=True)
    i.add_argument("--weight", type=int, required=True)
    i.add_argument("--mirror", type=int, default=0, help="%% of stable's requests mirrored")
    i.add_argument("--header", metavar="NAME=VALUE", help="send requests with this header to "
                                                          "the candidate at any weight")
    i.add_argument("--weighted", action="store_true", help="per-request split, not sticky")
    i.add_argument("--gateway", action="append", help="namespace/name; repeatable")
    f = sub.add_parser("envoyfilter")
    f.add_argument("--namespace", default="istio-system")
    f.add_argument("--context", default="GATEWAY", choices=["GATEWAY", "SIDECAR_OUTBOUND"])
    f.add_argument("--selector", action="append", default=[], metavar="KEY=VALUE",
                   help="workload labels (default istio=ingressgateway)")
    sub.add_parser("examples")
    args = p.parse_args(argv)
    try:
        if args.what == "serving":
            out = to_yaml(serving_docs(args.model, args.namespace, [(args.version, args.image)]))
        elif args.what == "istio":
            header = HeaderRoute(*args.header.split("=", 1)) if args.header else None
            out = to_yaml(istio_docs(args.model, args.namespace, args.stable, args.candidate,
                                     args.weight, sticky=not args.weighted, gateways=args.gateway,
                                     mirror=args.mirror, header=header))
        elif args.what == "envoyfilter":
            labels = dict(kv.split("=", 1) for kv in args.selector) or None
            out = to_yaml([objects.envoy_filter(args.namespace, labels, args.context)])
        else:
            for name, text in example_files().items():
                (HERE / name).write_text(text)
                print(f"wrote {HERE / name}")
            return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
