"""The whole conformance suite on Redis Cluster (issue 9), as part of the default test run.

The suite's backend is chosen once per pytest session, so it runs here in a pytest of its own:
``pytest conformance --kew-backend=cluster``, with the 3-master cluster started by kew-testkit
from the ``redis-server`` and ``redis-cli`` on PATH. Run it directly with that command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kew_testkit import find_redis_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    shutil.which("redis-server") is None or find_redis_cli() is None,
    reason="needs redis-server and redis-cli on PATH to start a local Redis Cluster",
)
def test_the_conformance_suite_passes_whole_on_a_three_master_cluster() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEW_BACKEND", "PYTEST_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            "--kew-backend=cluster",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    out = proc.stdout + proc.stderr
    tail = "\n".join(out.splitlines()[-60:])
    assert proc.returncode == 0, tail
    assert "Redis Cluster" in out, tail  # it ran on the cluster, not on a fallback
    summary = re.search(r"(\d+) passed", out)
    assert summary is not None and int(summary.group(1)) >= 300, tail
    assert not re.search(r"\d+ (failed|error)", out), tail
    print(tail)
