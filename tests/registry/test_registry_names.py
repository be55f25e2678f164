"""Model and version names: only safe ones reach the file system."""

import pytest

from paddle_canary.registry import RegistryError, check_model_name, check_version_name

GOOD_MODELS = ["risk-score", "a", "m1", "a" * 63, "0-x"]
BAD_MODELS = ["", "Risk", "-a", "a-", "a_b", "a.b", "../x", "a/b", "a b", "a" * 64, None, 3]
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
