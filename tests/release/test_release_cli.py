"""``paddle-canary release ... --check``: the request the CLI would trigger, checked here."""

from __future__ import annotations

import json

import pytest

from paddle_canary.cli import main


@pytest.fixture(autouse=True)
def registry(monkeypatch, registry_root, tmp_path):
    monkeypatch.setenv("PADDLE_CANARY_REGISTRY", str(registry_root))
    monkeypatch.setenv("PADDLE_CANARY_HOME", str(tmp_path))


def test_header_route_goes_into_the_request(capsys):
    assert main(["release", "digit-seven", "v2", "--header-route", "X-Canary=testers",
                 "--check"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["header_route"] == {"name": "X-Canary", "value": "testers"}


@pytest.mark.parametrize("text", ["X-Canary", "=testers", "X-Canary=", "X Canary=testers"])
def test_a_bad_header_route_is_refused(text, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(["release", "risk-score", "v2", "--header-route", text, "--check"])
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "header" in capsys.readouterr().err.lower()
