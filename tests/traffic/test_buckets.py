"""The bucket function alone: range, stickiness, fractions, refusals (no nginx needed)."""

import pytest

from paddle_canary.traffic.base import InvalidWeight
from paddle_canary.traffic.buckets import PART_SPAN, bucket, murmur_hash2, routes_to_candidate

USERS = [f"user-{i:06d}" for i in range(1, 10_001)]


def test_murmur_hash2_known_values():
    # Pinned so a refactor cannot drift; test_nginx_routing checks the same function against
    # the live nginx for 10,000 IDs and every tail length.
    assert murmur_hash2(b"") == 0
    assert [murmur_hash2(s) for s in (b"a", b"ab", b"abc", b"abcd", b"abcde")] == \
        [2456313694, 446775395, 324500635, 646393889, 1594468574]
    assert murmur_hash2(b"user-000001") == 1038494089
    assert PART_SPAN == 42_949_672
    assert bucket("user-000001") == 1038494089 // PART_SPAN == 24


def test_buckets_cover_0_to_99():
    buckets = {bucket(u) for u in USERS}
    assert buckets == set(range(100))


def test_canary_users_stay_in_the_canary_as_the_weight_grows():
    previous: set[str] = set()
    for weight in (0, 1, 5, 15, 25, 35, 45, 50, 55, 65, 75, 85, 95, 99, 100):
        canary = {u for u in USERS if routes_to_candidate(u, weight)}
        assert previous <= canary, f"users left the canary at weight {weight}"
        previous = canary
    assert previous == set(USERS)


@pytest.mark.parametrize("weight", [5, 15, 50])
def test_fraction_of_10000_users_is_within_one_point(weight):
    share = 100 * sum(routes_to_candidate(u, weight) for u in USERS) / len(USERS)
    assert abs(share - weight) <= 1.0


def test_no_user_id_goes_to_stable():
    assert not routes_to_candidate("", 100)
    assert not routes_to_candidate(b"", 50)


@pytest.mark.parametrize("bad", [-1, 101, 5.5, "5", True, None])
def test_bad_weights_are_refused(bad):
    with pytest.raises(InvalidWeight):
        routes_to_candidate("user-000001", bad)
