"""Rewrite istio-crds.json from Istio's own CRD bundle (test data, not product code).

    git -C ISTIO show 1.30.3:manifests/charts/base/files/crd-all.gen.yaml > crd-all.gen.yaml
    python tests/traffic/istio_fixtures/vendor_istio_crds.py crd-all.gen.yaml 1.30.3 <commit>

Keeps the ``openAPIV3Schema`` of the served storage version of VirtualService and
DestinationRule (``v1``) and EnvoyFilter (``v1alpha3``), unchanged except that ``description``
texts are dropped (size; they carry no validation).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

KINDS = {"VirtualService": "v1", "DestinationRule": "v1", "EnvoyFilter": "v1alpha3"}
OUT = Path(__file__).resolve().parent / "istio-crds.json"


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(bundle: str, istio_version: str, commit: str) -> None:
    schemas = {}
    for doc in yaml.safe_load_all(Path(bundle).read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind = doc["spec"]["names"]["kind"]
        if doc["spec"]["group"] != "networking.istio.io" or kind not in KINDS:
            continue
        (version,) = [v for v in doc["spec"]["versions"] if v["name"] == KINDS[kind]]
        schemas[kind] = {"apiVersion": f"networking.istio.io/{version['name']}",
                         "subresources": version.get("subresources", {}),
                         "openAPIV3Schema": _strip(version["schema"]["openAPIV3Schema"])}
    assert set(schemas) == set(KINDS), sorted(schemas)
    OUT.write_text(json.dumps({
        "source": "istio/istio manifests/charts/base/files/crd-all.gen.yaml",
        "istio_version": istio_version, "commit": commit,
        "note": "openAPIV3Schema per kind, descriptions removed; rewritten by vendor_istio_crds.py",
        "kinds": schemas}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
