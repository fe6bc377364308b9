"""bench/envs.py: every measured environment runs from compiled bytecode, as ``pip install``
leaves it (issue 5: without it, a process that compiles redis-py at import carries the
compiler's memory in its peak RSS)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_compile_writes_bytecode_for_site_packages_and_bench(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    module = site / "somelib" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text("VALUE = 1\n")
    broken = site / "somelib" / "newer_syntax.py"  # like coredis' 3.12-only module
    broken.write_text("type Alias = int\n" if sys.version_info < (3, 12) else "def (:\n")

    subprocess.run(  # as the harness calls it, from the repository root
        [
            sys.executable,
            "-c",
            "import sys; from bench.envs import _compile; _compile(sys.argv[1])",
            str(python),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )

    assert Path(importlib.util.cache_from_source(str(module))).exists()
    assert not Path(importlib.util.cache_from_source(str(broken))).exists()
    driver = ROOT / "bench" / "drivers" / "base.py"
    assert Path(importlib.util.cache_from_source(str(driver))).exists()
