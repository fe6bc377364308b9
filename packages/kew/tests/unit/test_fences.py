"""Fence tokens (store.FENCES): never handed out twice, in one process or across a fork."""

from __future__ import annotations

import os
import sys

import pytest
from kew.store import FENCES


def test_each_claim_gets_a_token_never_seen_before() -> None:
    tokens = [FENCES.next() for _ in range(10_000)]
    assert len(set(tokens)) == len(tokens)


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")
def test_a_forked_child_draws_its_own_tokens() -> None:
    """A worker process forked after kew was imported (gunicorn, multiprocessing) must not
    repeat its parent's tokens: both would claim under the same fences."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next token and leave at once
        os.write(write, FENCES.next().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = FENCES.next()
    assert child.split(".")[0] != parent.split(".")[0]
