"""The release steps that can run here, so that a broken package fails now, not on release day.

Both packages are built (sdist + wheel, ``uv build --package ...``), checked with ``twine check
--strict``, and each wheel is installed into a clean venv made with ``uv venv`` (its dependencies
come from the index): ``kew`` alone must import with the right ``__version__`` and its Lua
scripts; ``kew-testkit`` next to it must load as a pytest plugin and pass a one-test session on
the embedded backend, from a temporary project outside this repository.

With ``KEW_DIST_DIR`` set (release.yml does), the checks run on the files found there, the very
files that get published, instead of building new ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Sequence
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"kew": ROOT / "packages" / "kew", "kew-testkit": ROOT / "packages" / "kew-testkit"}
UV = shutil.which("uv") or "uv"

pytestmark = pytest.mark.skipif(
    shutil.which("uv") is None,
    reason="uv is not on PATH: it builds the packages and makes the clean venvs",
)


def project(name: str) -> dict[str, Any]:
    """The ``[project]`` table of a package's pyproject.toml."""
    data = tomllib.loads((PACKAGES[name] / "pyproject.toml").read_text())
    table: dict[str, Any] = data["project"]
    return table


def version(name: str) -> str:
    return str(project(name)["version"])


def clean_env() -> dict[str, str]:
    """This process's environment without what would leak the workspace into a clean venv."""
    dropped = ("KEW_", "PYTEST_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "UV_PROJECT")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def run(cmd: Sequence[str | Path], cwd: Path, timeout: float = 180) -> str:
    """Run ``cmd``; fail the test with its output when it exits non-zero. Returns stdout+stderr."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{out[-4000:]}")
    return out


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv(where: Path, *wheels: Path) -> Path:
    """A fresh venv (no workspace, no project) with ``wheels`` installed; returns its python."""
    venv = where / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], cwd=where)
    python = venv_python(venv)
    run([UV, "pip", "install", "--quiet", "--python", python, *wheels], cwd=where)
    return python


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode())


# -- building ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding both packages' sdists and wheels (built now, or KEW_DIST_DIR)."""
    given = os.environ.get("KEW_DIST_DIR")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("dist")
    for name in PACKAGES:
        run([UV, "build", "--quiet", "--package", name, "--out-dir", out], cwd=ROOT)
    return out


def dist(dist_dir: Path, name: str, kind: str) -> Path:
    """The one sdist (``kind="tar.gz"``) or wheel (``"whl"``) of ``name`` at its version."""
    stem = f"{name.replace('-', '_')}-{version(name)}"
    pattern = f"{stem}.tar.gz" if kind == "tar.gz" else f"{stem}-*.whl"
    found = sorted(dist_dir.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist_dir}, found {found}"
    return found[0]


def test_both_packages_build_an_sdist_and_a_wheel(dist_dir: Path) -> None:
    for name in PACKAGES:
        assert dist(dist_dir, name, "tar.gz").stat().st_size > 0
        assert dist(dist_dir, name, "whl").stat().st_size > 0


def test_twine_check_passes(dist_dir: Path) -> None:
    pytest.importorskip("twine", reason="twine (the dev group) is not installed")
    files = [dist(dist_dir, name, kind) for name in PACKAGES for kind in ("tar.gz", "whl")]
    out = run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=ROOT)
    assert out.count("PASSED") == len(files), out


# -- versions and metadata --------------------------------------------------------------------


def test_versions_come_from_one_place_and_the_testkit_pins_kew() -> None:
    for name in PACKAGES:
        assert "version" not in project(name).get("dynamic", []), name
    assert version("kew-testkit") == version("kew"), "both packages are released together"
    pins = [Requirement(r) for r in project("kew-testkit")["dependencies"]]
    (kew,) = [r for r in pins if r.name == "kew"]
    assert str(kew.specifier) == f"=={version('kew')}", kew
    assert "memory" in kew.extras
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(version('kew'))}\]", changelog, re.M), (
        "CHANGELOG.md has no section for the current version"
    )


def test_wheel_metadata_is_complete(dist_dir: Path) -> None:
    py_versions = {"3.11", "3.12", "3.13", "3.14"}
    for name in PACKAGES:
        meta = wheel_metadata(dist(dist_dir, name, "whl"))
        assert meta["Name"] == name
        assert meta["Version"] == version(name)
        assert meta["Requires-Python"] == ">=3.11"
        assert meta["License-Expression"] == "MIT"
        assert meta["Description-Content-Type"] == "text/markdown"
        assert str(meta.get_payload()).strip(), f"{name}: empty long description"
        urls = {u.split(",")[0] for u in meta.get_all("Project-URL", [])}
        assert {"Homepage", "Source", "Issues", "Changelog"} <= urls, urls
        classifiers = set(meta.get_all("Classifier", []))
        for v in py_versions:
            assert f"Programming Language :: Python :: {v}" in classifiers, (name, v)
        assert "Typing :: Typed" in classifiers

    kew = wheel_metadata(dist(dist_dir, "kew", "whl"))
    assert {"memory", "cli"} <= set(kew.get_all("Provides-Extra", []))
    requires = [Requirement(r) for r in kew.get_all("Requires-Dist", [])]
    base = {r.name for r in requires if r.marker is None}
    assert base == {"redis", "cloudpickle"}, "kew's own dependencies (bench peers live elsewhere)"

    testkit = wheel_metadata(dist(dist_dir, "kew-testkit", "whl"))
    pins = [Requirement(r) for r in testkit.get_all("Requires-Dist", [])]
    assert any(r.name == "kew" and str(r.specifier) == f"=={version('kew')}" for r in pins)
    assert "docker" in set(testkit.get_all("Provides-Extra", []))
    with zipfile.ZipFile(dist(dist_dir, "kew-testkit", "whl")) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "[pytest11]\nkew = kew_testkit.plugin" in zf.read(entry_points).decode()


# -- clean venvs ------------------------------------------------------------------------------

KEW_PROBE = """
import importlib.resources, json, sys
import kew
from kew import (QueueConfig, QueueNotFoundError, QueuePriority, QueueProcessorError,
                 RedisCircuitBreaker, TaskAlreadyExistsError, TaskInfo, TaskNotFoundError,
                 TaskQueueError, TaskQueueManager, TaskStatus)
lua = importlib.resources.files("kew") / "lua"
print(json.dumps({
    "version": kew.__version__,
    "file": kew.__file__,
    "prefix": sys.prefix,
    "lua": sorted(p.name for p in lua.iterdir() if p.name.endswith(".lua")),
    "typed": (importlib.resources.files("kew") / "py.typed").is_file(),
}))
"""


def test_kew_wheel_alone_installs_and_imports(dist_dir: Path, tmp_path: Path) -> None:
    python = make_venv(tmp_path, dist(dist_dir, "kew", "whl"))
    probe = json.loads(run([python, "-c", KEW_PROBE], cwd=tmp_path).strip().splitlines()[-1])
    assert probe["version"] == version("kew")
    assert Path(probe["file"]).is_relative_to(probe["prefix"]), "kew imported from outside the venv"
    assert "submit.lua" in probe["lua"] and len(probe["lua"]) >= 5, probe["lua"]
    assert probe["typed"]
    cli = python.parent / ("kew.exe" if os.name == "nt" else "kew")
    assert run([cli, "--version"], cwd=tmp_path).strip() == f"kew {version('kew')}"


SAMPLE_PYPROJECT = """
[project]
name = "shop"
version = "0"

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

SAMPLE_TEST = """
import sys
from pathlib import Path

import kew
import kew_testkit
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import wait_for_status


async def double(x: int) -> int:
    return 2 * x


async def test_a_task_runs_on_the_testkit_manager(kew_manager):
    for module in (kew, kew_testkit):
        assert Path(module.__file__).is_relative_to(sys.prefix), module.__file__
    await kew_manager.create_queue(QueueConfig("numbers", max_workers=2))
    await kew_manager.submit_task("t1", "numbers", "double", double, QueuePriority.HIGH, 21)
    info = await wait_for_status(kew_manager, "t1", TaskStatus.COMPLETED, timeout=10)
    assert info.result == 42
"""


def test_testkit_wheel_loads_its_plugin_in_a_pytest_session(dist_dir: Path, tmp_path: Path) -> None:
    python = make_venv(tmp_path, dist(dist_dir, "kew", "whl"), dist(dist_dir, "kew-testkit", "whl"))
    sample = tmp_path / "shop"
    sample.mkdir()
    (sample / "pyproject.toml").write_text(textwrap.dedent(SAMPLE_PYPROJECT))
    (sample / "test_shop.py").write_text(textwrap.dedent(SAMPLE_TEST))
    out = run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", "--kew-backend=memory", "-v"],
        cwd=sample,
        timeout=120,
    )
    assert re.search(r"^kew-testkit: backend=memory", out, re.M), out  # the plugin's header
    assert f"kew-testkit-{version('kew-testkit')}" in out, out  # loaded through its entry point
    assert re.search(r"^=+ 1 passed", out, re.M), out
