"""Isolation (issue 8): namespaces on one Redis never see each other, and a Redis ACL user
limited to one namespace's keys and channels is all kew needs."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from kew import (
    QueueConfig,
    QueuePriority,
    TaskNotFoundError,
    TaskQueueError,
    TaskQueueManager,
    TaskStatus,
)
from kew_testkit.redis_server import RedisServer

P = QueuePriority.MEDIUM


async def add(a: int, b: int) -> int:
    return a + b


async def test_two_namespaces_never_see_each_other(kew_redis_url: str) -> None:
    import uuid

    a_ns, b_ns = f"iso-a-{uuid.uuid4().hex[:6]}", f"iso-b-{uuid.uuid4().hex[:6]}"
    async with (
        TaskQueueManager(kew_redis_url, namespace=a_ns) as a,
        TaskQueueManager(kew_redis_url, namespace=b_ns) as b,
    ):
        for m in (a, b):
            await m.create_queue(QueueConfig("q", max_workers=1, max_circuit_breaker_failures=1))
        await a.submit_task("same-id", "q", "add", add, P, 1, 2)
        await b.submit_task("same-id", "q", "add", add, P, 10, 20)  # no clash across namespaces
        assert (await a.wait_for_task("same-id", timeout=10)).result == 3
        assert (await b.wait_for_task("same-id", timeout=10)).result == 30
        await a.queues["q"].circuit_breaker.record_failure()  # opens a's breaker only
        assert (await a.get_queue_status("q"))["circuit_breaker_status"] == "open"
        assert (await b.get_queue_status("q"))["circuit_breaker_status"] == "closed"
        await a.pause_queue("q")
        assert (await b.get_queue_status("q"))["paused"] is False
        # cleanup_on_start in one namespace leaves the other untouched
        async with TaskQueueManager(kew_redis_url, namespace=a_ns, cleanup_on_start=True) as c:
            with pytest.raises(TaskNotFoundError):
                await c.get_task_status("same-id")
        assert (await b.get_task_status("same-id")).status is TaskStatus.COMPLETED
        await b.cleanup()


@pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="needs a redis-server binary to start one with ACLs",
)
async def test_an_acl_user_limited_to_the_namespace_is_enough() -> None:
    acl = ("--user", "kew", "on", ">s3cret-pass", "~acl:*", "&acl:*", "+@all")
    with RedisServer(extra_args=acl) as server:
        url = f"redis://kew:s3cret-pass@127.0.0.1:{server.port}/0"
        async with TaskQueueManager(url, namespace="acl") as m:
            await m.create_queue(QueueConfig("q", max_workers=2))
            await m.submit_task("t", "q", "add", add, P, 1, 2)
            info = await m.wait_for_task("t", timeout=10)
            assert (info.status, info.result) == (TaskStatus.COMPLETED, 3)
            await m.cleanup()
        outside = TaskQueueManager(url, namespace="elsewhere")
        await outside.initialize()
        try:
            with pytest.raises(TaskQueueError, match=r"(?i)perm"):
                await outside.create_queue(QueueConfig("q", max_workers=1))
        finally:
            await outside.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_certs(d: Any) -> tuple[str, str, str]:
    import subprocess

    def run(*cmd: str) -> None:
        subprocess.run(cmd, cwd=d, check=True, capture_output=True)

    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=kew-test-ca",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    return str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key")


@pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("openssl") is None,
    reason="needs redis-server (built with TLS) and openssl to make a throwaway certificate",
)
async def test_rediss_tls_connections_work(tmp_path: Any) -> None:
    ca, cert, key = _make_certs(tmp_path)
    tls_port = _free_port()
    tls = (
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        ca,
        "--tls-auth-clients",
        "no",
    )
    with RedisServer(extra_args=tls):
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
        async with TaskQueueManager(url, namespace="tls") as m:
            await m.create_queue(QueueConfig("q", max_workers=1))
            await m.submit_task("t", "q", "add", add, P, 2, 2)
            assert (await m.wait_for_task("t", timeout=10)).result == 4
            await m.cleanup()


async def test_connection_refused_at_start_is_a_clear_error_with_the_password_masked() -> None:
    from kew import KewConnectionError

    port = _free_port()  # nothing listens there
    m = TaskQueueManager(f"redis://user:top-secret@127.0.0.1:{port}/0")
    with pytest.raises(KewConnectionError) as info:
        await m.initialize()
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "user:***@" in text
    assert "top-secret" not in text
    assert isinstance(info.value, ConnectionError)
