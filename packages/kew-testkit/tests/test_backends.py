"""Settings resolution, backend discovery order, forced backends, and namespace deletion."""

from __future__ import annotations

import shutil
from typing import Any

import kew_testkit
import pytest
import redis
from kew.connection import create_client
from kew_testkit import (
    BackendUnavailableError,
    RedisServer,
    TestkitConfig,
    choose_backend,
    delete_namespace,
    describe_choice,
    mask_url,
    namespace_keys,
    redis_server,
    resolve_config,
    unique_namespace,
)
from kew_testkit import backends as backends_module

HAS_REDIS_SERVER = shutil.which("redis-server") is not None
needs_redis_server = pytest.mark.skipif(not HAS_REDIS_SERVER, reason="no redis-server on PATH")

# -- settings -----------------------------------------------------------------------------------


def test_defaults_without_any_source() -> None:
    config = resolve_config(env={})
    assert config == TestkitConfig()
    assert (config.backend, config.redis_url, config.redis_image) == ("auto", None, "redis:7")


def test_cli_beats_ini_beats_env() -> None:
    env = {"KEW_BACKEND": "docker", "KEW_REDIS_URL": "redis://env:1", "KEW_REDIS_IMAGE": "r:env"}
    ini = {"kew_backend": "memory", "kew_redis_url": "redis://ini:1"}
    cli = {"backend": "url", "redis_url": None}
    config = resolve_config(cli, ini, env)
    assert config.backend == "url"  # CLI
    assert config.redis_url == "redis://ini:1"  # ini (CLI empty)
    assert config.redis_image == "r:env"  # env (CLI and ini empty)
    assert resolve_config({}, {"kew_backend": ""}, env).backend == "docker"  # empty ini skipped


def test_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEW_BACKEND", "MEMORY")
    monkeypatch.setenv("KEW_STARTUP_TIMEOUT", "2.5")
    config = resolve_config()
    assert (config.backend, config.startup_timeout) == ("memory", 2.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEW_BACKEND": "cloud"}, "must be one of auto|redis|docker|memory|url"),
        ({"KEW_BACKEND": "url"}, "needs a Redis URL"),
        ({"KEW_STARTUP_TIMEOUT": "soon"}, "must be a number of seconds"),
        ({"KEW_STARTUP_TIMEOUT": "0"}, "must be > 0"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_config(env=env)


# -- discovery ----------------------------------------------------------------------------------


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_module, "docker_available", lambda: (False, "no daemon here"))


@pytest.fixture
def with_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_module, "docker_available", lambda: (True, ""))


MISSING = "no-such-redis-server"


def test_auto_prefers_an_explicit_url(no_docker: None) -> None:
    assert choose_backend(TestkitConfig(redis_url="redis://somewhere:6379/0")) == "url"


@needs_redis_server
def test_auto_then_prefers_redis_server_on_path(with_docker: None) -> None:
    assert choose_backend(TestkitConfig()) == "redis"


def test_auto_then_docker_then_memory(no_docker: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_backend(TestkitConfig(redis_server=MISSING)) == "memory"
    monkeypatch.setattr(backends_module, "docker_available", lambda: (True, ""))
    assert choose_backend(TestkitConfig(redis_server=MISSING)) == "docker"


def test_forced_redis_without_a_binary_fails_clearly(with_docker: None) -> None:
    with pytest.raises(BackendUnavailableError, match=f"no '{MISSING}' binary on PATH"):
        choose_backend(TestkitConfig(backend="redis", redis_server=MISSING))


def test_forced_docker_without_docker_fails_clearly(no_docker: None) -> None:
    with pytest.raises(BackendUnavailableError, match="--kew-backend=docker: no daemon here"):
        choose_backend(TestkitConfig(backend="docker"))


def test_docker_availability_names_the_missing_piece() -> None:
    ok, reason = kew_testkit.docker_available()
    if not ok:
        assert "kew-testkit[docker]" in reason or "Docker daemon" in reason


def test_forced_memory_and_url_never_look_further(no_docker: None) -> None:
    assert choose_backend(TestkitConfig(backend="memory", redis_url="redis://x:1")) == "memory"
    assert choose_backend(TestkitConfig(backend="url", redis_url="redis://x:1")) == "url"


def test_describe_choice_is_cheap_and_says_what_runs(no_docker: None) -> None:
    assert describe_choice(TestkitConfig(backend="memory")).startswith("backend=memory (embedded")
    url = "redis://user:secret@db:6379/0"
    assert (
        describe_choice(TestkitConfig(redis_url=url)) == "backend=url (redis://user:***@db:6379/0)"
    )
    if HAS_REDIS_SERVER:
        assert describe_choice(TestkitConfig()).startswith("backend=redis (redis-server 7")


def test_mask_url() -> None:
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"


# -- redis_server() without pytest machinery -----------------------------------------------------


@needs_redis_server
def test_redis_server_context_starts_and_stops_a_server(procs: Any) -> None:
    with redis_server(backend="redis") as backend:
        assert backend.name == "redis" and backend.owned
        assert backend.version is not None and backend.version.startswith("7")
        assert redis.Redis.from_url(backend.url).ping()
        port = int(backend.url.rsplit(":", 1)[1].split("/")[0])
        assert backend.describe() == f"redis-server {backend.version} at {backend.url}"
    assert procs.wait_gone(port)


@needs_redis_server
def test_url_backend_uses_the_server_as_is(private_redis: RedisServer) -> None:
    with redis_server(TestkitConfig(redis_url=private_redis.url)) as backend:
        assert (backend.name, backend.url, backend.owned) == ("url", private_redis.url, False)
        assert backend.version == private_redis.version
    assert private_redis.running  # not ours to stop


def test_unreachable_url_fails_clearly() -> None:
    port = kew_testkit.find_free_port()
    url = f"redis://:pw@127.0.0.1:{port}/0"
    with (
        pytest.raises(BackendUnavailableError, match=r"cannot reach Redis at redis://:\*\*\*@"),
        redis_server(TestkitConfig(backend="url", redis_url=url)),
    ):
        pass


def test_memory_backend() -> None:
    with redis_server(backend="memory") as backend:
        assert (backend.name, backend.url) == ("memory", "memory://")
        assert backend.describe().startswith("memory:// (embedded fakeredis")


# -- namespaces ---------------------------------------------------------------------------------


def test_unique_namespaces() -> None:
    names = {unique_namespace() for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith("kewtest-") for n in names)
    assert unique_namespace("app").startswith("app-")
    with pytest.raises(ValueError):
        unique_namespace("a:b")


@pytest.fixture(params=["redis", "memory"])
async def raw_client(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis":
        if not HAS_REDIS_SERVER:
            pytest.skip("no redis-server on PATH")
        url = request.getfixturevalue("private_redis").url
    else:
        url = f"memory://{unique_namespace()}"
    client = create_client(url)
    yield client
    await client.aclose()


async def test_delete_namespace_deletes_exactly_that_namespace(raw_client: Any) -> None:
    ns = unique_namespace()
    mine = [f"{ns}:{{orders}}:ready", f"{ns}:{{orders}}:task:1", f"{ns}:meta"]
    others = [f"{ns}0:x", f"x{ns}:y", ns, "unrelated"]  # look-alikes survive
    for key in mine + others:
        await raw_client.set(key, b"1")
    assert sorted(await namespace_keys(raw_client, ns)) == sorted(k.encode() for k in mine)
    assert await delete_namespace(raw_client, ns) == len(mine)
    assert await namespace_keys(raw_client, ns) == []
    for key in others:
        assert await raw_client.exists(key) == 1
        await raw_client.delete(key)


async def test_glob_characters_in_a_namespace_are_literal(raw_client: Any) -> None:
    await raw_client.set("a*:1", b"1")
    await raw_client.set("ab:1", b"1")
    assert await delete_namespace(raw_client, "a*") == 1
    assert await raw_client.exists("ab:1") == 1
    await raw_client.delete("ab:1")
    with pytest.raises(ValueError):
        await delete_namespace(raw_client, "")
