"""URL handling in kew.connection: which client each scheme gives, and bad URLs refused at once.

No server is contacted: redis-py clients connect lazily.
"""

from __future__ import annotations

from typing import Any

import pytest
from kew.cluster import ClusterClient
from kew.connection import create_client, is_cluster_url, mask_url
from kew.exceptions import InvalidArgumentError
from redis.asyncio import Redis


def _startup(client: Any) -> list[tuple[str, int]]:
    return sorted(client._startup)


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://127.0.0.1:7000", [("127.0.0.1", 7000)]),
        ("redis+cluster://a:7000,b:7001/", [("a", 7000), ("b", 7001)]),
        ("redis+cluster://u:p%40ss@a:7000,b:7001/0", [("a", 7000), ("b", 7001)]),
        ("redis+cluster://a", [("a", 6379)]),
    ],
)
def test_a_cluster_url_gives_a_cluster_client_started_from_every_listed_node(
    url: str, nodes: list[tuple[str, int]]
) -> None:
    client = create_client(url)
    assert isinstance(client, ClusterClient)
    assert _startup(client) == nodes
    assert is_cluster_url(url)


def test_cluster_credentials_are_passed_decoded() -> None:
    client = create_client("redis+cluster://user:p%40ss@a:7000")
    assert client.options["username"] == "user"
    assert client.options["password"] == "p@ss"
    assert client.options["decode_responses"] is False


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://a:notaport",
        "redis+cluster://a:0",
        "redis+cluster://a:7000,,b:7001",
        "redis+cluster://a:7000/3",
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:26379/",
        "redis+sentinel://s1:26379/svc/x",
        "redis+sentinel://s1:26379/svc/0/extra",
        "rediss+clusterx://a:1",
    ],
)
def test_a_malformed_cluster_or_sentinel_url_is_refused_at_once(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        create_client(url)


def test_a_sentinel_url_gives_a_client_that_follows_the_named_primary() -> None:
    client = create_client("redis+sentinel://u:secret@s1:26379,s2:26380/kewprimary/2")
    assert isinstance(client, Redis)
    pool: Any = client.connection_pool
    assert pool.service_name == "kewprimary"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "secret"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]


def test_a_sentinel_password_goes_to_the_sentinels_only() -> None:
    client = create_client("redis+sentinel://s1:26379/svc?sentinel_password=sp")
    pool: Any = client.connection_pool
    assert pool.connection_kwargs.get("password") is None
    sentinel = pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["password"] == "sp"


def test_cluster_and_sentinel_passwords_are_masked_in_messages() -> None:
    assert mask_url("redis+cluster://u:pw@a:1,b:2") == "redis+cluster://u:***@a:1,b:2"
    with pytest.raises(InvalidArgumentError) as info:
        create_client("redis+sentinel://u:topsecret@s1:26379")
    assert "topsecret" not in str(info.value)


def test_a_plain_url_is_not_a_cluster_url() -> None:
    assert not is_cluster_url("redis://a:1")
    assert not is_cluster_url("memory://")


def test_a_sentinel_password_in_the_query_is_masked() -> None:
    masked = mask_url("redis+sentinel://s1:26379/svc?sentinel_password=topsecret")
    assert "topsecret" not in masked
    assert masked.endswith("sentinel_password=***")
