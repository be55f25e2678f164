"""Model and version names: only safe ones reach the file system, and only model names that every
route and config derived from them can carry are registered."""

import re
import shutil
import subprocess

import pytest
from registry_helpers import MODEL, export_copy, snapshot

from paddle_canary.registry import RegistryError, check_model_name, check_version_name
from paddle_canary.registry.names import (MODEL_MAX_LEN, NGINX_HASH_KEY_MAX, NGINX_PREFIX_MAX,
                                          config_identifier, nginx_variable)

LONGEST = "m" + "-x" * 14 + "y"  # 30 characters, the longest a model name may have
GOOD_MODELS = ["risk-score", "digit-seven", "a", "m1", "a-0", "a" * 30, LONGEST]
BAD_MODELS = ["", "Risk", "-a", "a-", "a_b", "a.b", "../x", "a/b", "a b", "a" * 64, None, 3,
              'a"b', "a\\b", "a;b", "a{b}", "a$b", "a\nb", "a:b", "a=b", "a~b", "é"]
GOOD_VERSIONS = ["v1", "v2", "1.0.3", "2024-01-01_rc1", "V", "a" * 63, "bad-slow"]
BAD_VERSIONS = ["", ".", "..", "../x", "v1/..", "v1/x", ".hidden", "-v", "_v", "v 1", "v1..2",
                "v1\n", "a" * 64, "v1\\x", "é", None, 1]


@pytest.mark.parametrize("name", GOOD_MODELS)
def test_good_model_names_pass(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", BAD_MODELS)
def test_bad_model_names_are_refused_with_the_rule(name):
    with pytest.raises(RegistryError, match=r"invalid model name .*must match"):
        check_model_name(name)


@pytest.mark.parametrize("name", GOOD_VERSIONS)
def test_good_versions_pass(name):
    assert check_version_name(name) == name


@pytest.mark.parametrize("name", BAD_VERSIONS)
def test_bad_versions_are_refused_with_the_rule(name):
    with pytest.raises(RegistryError, match=r"invalid version .*must match .*'\.\.'"):
        check_version_name(name)


# ---- valid DNS labels that a route or a config derived from them cannot carry -------------------

@pytest.mark.parametrize("name, rule", [
    ("7-eleven", r"must start with a letter .*'7-eleven-serving' must be an RFC 1035 label"),
    ("0", r"must start with a letter"),
    ("a" * 31, r"at most 30 characters, got 31 .*nginx's default hash bucket: 46"),
    ("a" * 63, r"at most 30 characters, got 63"),
    ("risk--score", r"must not contain '--' .*'<model>--<version>' Prometheus target files"),
])
def test_names_that_would_break_a_route_or_config_are_refused_naming_the_rule(name, rule):
    with pytest.raises(RegistryError, match=rf"invalid model name '{re.escape(name)}': {rule}"):
        check_model_name(name)


def test_register_refuses_such_a_name_and_writes_nothing(root, tmp_path):
    """Refused at registration: the model directory exists (model.yaml), yet nothing is
    registered under a name the gateway or Kubernetes could not use."""
    from paddle_canary.registry import Registry

    name = "a" * 31
    (root / name).mkdir()
    shutil.copyfile(root / MODEL / "model.yaml", root / name / "model.yaml")
    export = export_copy(root / MODEL / "v2", tmp_path / "export", "v1", model=MODEL)
    before = snapshot(root)
    with pytest.raises(RegistryError, match=r"invalid model name 'a{31}': at most 30"):
        Registry(root).register(name, "v1", export)
    assert snapshot(root) == before


def test_limits_follow_from_nginx_and_kubernetes():
    assert MODEL_MAX_LEN == NGINX_HASH_KEY_MAX - NGINX_PREFIX_MAX - 1 == 30
    assert len(LONGEST) == MODEL_MAX_LEN
    assert len(f"{LONGEST}-serving") <= 63
    assert len(nginx_variable("canary_upstream", LONGEST)) == NGINX_HASH_KEY_MAX


def test_every_name_derived_from_the_longest_model_is_accepted_by_kubernetes_rules():
    """The Istio and Kubernetes objects of the longest allowed model render (their own checks
    pass) and every object name is an RFC 1035 label (what a Service name must be)."""
    from paddle_canary.kube import names, workload
    from paddle_canary.kube.config import Placement
    from paddle_canary.traffic import istio_objects as objects
    from paddle_canary.traffic.base import Backend, ModelRoute

    rfc1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    host = names.model_host(LONGEST, "ml")
    route = ModelRoute(LONGEST, stable=Backend("v1"), candidate=Backend("v2"), weight=5)
    rendered = [workload.model_service(LONGEST, "ml"),
                workload.version_service(LONGEST, "v2", "ml"),
                *objects.render(route, "ml", host)]
    for obj in rendered:
        assert rfc1035.fullmatch(obj["metadata"]["name"]), obj["metadata"]["name"]
    deployment = workload.deployment(LONGEST, "v2", "ml", "img:v2", placement=Placement())
    assert len(deployment["metadata"]["name"]) <= 253  # a DNS subdomain


def test_what_the_rules_keep_out_is_refused_by_kubernetes_rules_too():
    """Each refused class of name really breaks a derived Kubernetes name (not a made-up rule):
    a leading digit and 56+ characters make '<model>-serving' an invalid Service name."""
    rfc1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    assert not rfc1035.fullmatch("7-eleven-serving")
    assert not rfc1035.fullmatch("a" * 56 + "-serving")


def test_model_and_version_read_back_from_a_target_file_name():
    """With no '--' in model names, '<model>--<version>' splits back into the pair it came
    from, whatever '--' the version holds (model 'a--b' version 'c' would collide with model
    'a' version 'b--c')."""
    pairs = [("a", "b--c"), ("a-b", "c"), ("a", "b-c"), ("risk-score", "v1--rc1"),
             ("risk-score", "v1")]
    stems = set()
    for model, version in pairs:
        stem = f"{check_model_name(model)}--{check_version_name(version)}"
        assert stem.split("--", 1) == [model, version]
        stems.add(stem)
    assert len(stems) == len(pairs)


def test_config_identifier_is_one_to_one_and_nginx_safe():
    assert config_identifier("risk-score") == "risk_score"
    assert config_identifier("digit-seven") == "digit_seven"
    names = ["a-b-c", "a-bc", "ab-c", "abc", "a-b", "ab"]
    assert len({config_identifier(n) for n in names}) == len(names)
    for name in names:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", config_identifier(name))
    with pytest.raises(RegistryError, match="invalid model name"):
        config_identifier("Risk")


@pytest.mark.parametrize("prefix", ["", "Canary", "canary-split", "1x", "c" * 16])
def test_nginx_variable_refuses_a_prefix_that_would_not_fit(prefix):
    with pytest.raises(ValueError, match="nginx variable prefix"):
        nginx_variable(prefix, "risk-score")


def _nginx_test(tmp_path, variable: str, key: str) -> subprocess.CompletedProcess:
    from paddle_canary.traffic.nginx_process import nginx_binary

    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log;
events {{}}
http {{
    access_log off;
    map $http_x_model ${variable} {{
        {key} up_{config_identifier("risk-score")};
        default none;
    }}
    server {{
        listen 127.0.0.1:1;
        location /models/{key}/predict {{ return 200 ${variable}; }}
    }}
}}
""")
    return subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


def test_real_nginx_loads_the_longest_model_and_refuses_one_character_more(tmp_path):
    """The 30-character limit is nginx's (default variables/map hash buckets), measured: the
    longest model name as a map key, its longest variable and its route load; one more
    character in the variable name, or a map key of 47 characters, does not."""
    ok = _nginx_test(tmp_path, nginx_variable("canary_upstream", LONGEST), LONGEST)
    assert ok.returncode == 0, ok.stderr
    too_long_var = _nginx_test(tmp_path, nginx_variable("canary_upstream", LONGEST) + "z",
                               LONGEST)
    assert too_long_var.returncode != 0
    assert "could not build variables_hash" in too_long_var.stderr
    too_long_key = _nginx_test(tmp_path, "canary_x", "k" * (NGINX_HASH_KEY_MAX + 1))
    assert too_long_key.returncode != 0
    assert "could not build map_hash" in too_long_key.stderr


def test_a_hyphen_is_not_part_of_an_nginx_variable_name(tmp_path):
    """Why config_identifier exists: nginx reads '$canary_risk-score' as '$canary_risk'
    followed by '-score', an unknown variable."""
    bad = _nginx_test(tmp_path, "canary_risk-score", "risk-score")
    assert bad.returncode != 0
