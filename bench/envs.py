"""One virtual environment per peer, made with uv and kept between runs.

An environment lives in ``$KEW_BENCH_ENVS`` (default ``~/.cache/kew-bench/envs``) under a name
derived from its requirements and the Python version, so a changed pin makes a new one. It is
built once (``uv venv`` + ``uv pip install``) and then every measurement starts a fresh process
with its interpreter, which costs a Python start-up instead of a ``uv run`` resolution.

Every environment is measured with its modules compiled to bytecode, as ``pip install`` leaves
them: uv does not compile by default, and where ``PYTHONDONTWRITEBYTECODE`` is set each process
would compile redis-py from source at import; that costs start-up time and raises the peak RSS
by the compiler's memory (about 17 MiB for redis-py 8.1, most of it ``commands/core.py``),
which is not what a user's process carries. ``_compile`` runs once per environment and run
(``compileall`` skips what is up to date).

kew itself runs on the interpreter running the harness: the workspace environment of
``uv run python -m bench``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .peers import Library, requirements

__all__ = ["Env", "EnvError", "env_for"]

ROOT = Path(__file__).resolve().parent.parent  # the repository root


class EnvError(RuntimeError):
    """An environment could not be made (the message says why, for the report)."""


@dataclass(frozen=True)
class Env:
    """Where a library's driver runs.

    Attributes:
        python: the interpreter to start.
        versions: ``{distribution: version}`` of the packages that matter in the report.
    """

    python: str
    versions: dict[str, str]


def _base_dir() -> Path:
    default = Path.home() / ".cache" / "kew-bench" / "envs"
    return Path(os.environ.get("KEW_BENCH_ENVS", default))


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise EnvError("uv is not on PATH (it makes the peers' environments)")
    return uv


def _run(cmd: list[str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise EnvError(f"timed out after {timeout:.0f} s: {' '.join(cmd[:4])} ...") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise EnvError(" / ".join(tail) or f"exit code {proc.returncode}")


def _versions(python: str, names: list[str]) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise EnvError(f"cannot read versions: {proc.stderr.strip()[-300:]}")
    import json

    return dict(json.loads(proc.stdout))


_REPORTED = [
    "kew", "arq", "saq", "streaq", "taskiq", "taskiq-redis", "bullmq", "redis", "hiredis",
    "coredis", "uvloop",
]  # fmt: skip


def _compile(python: str) -> None:
    """Compile every module ``python`` imports from outside its standard library to bytecode.

    Covers the environment's site-packages, editable sources (this checkout's packages) and
    ``bench/`` itself (its drivers run in every measured process). A file that does not compile
    on this Python (coredis ships a 3.12-only module) is left as it is: it is never imported.

    Raises:
        EnvError: the interpreter failed or timed out.
    """
    code = (
        "import compileall, os, sys\n"
        "dirs = [p for p in sys.path if os.path.isdir(p) and not p.startswith(sys.base_prefix)]\n"
        f"dirs.append({str(ROOT / 'bench')!r})\n"
        "for d in dirs: compileall.compile_dir(d, quiet=2, workers=0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        proc = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
        )
    except subprocess.TimeoutExpired:
        raise EnvError(f"compiling {python}'s modules timed out") from None
    if proc.returncode != 0:
        raise EnvError(f"cannot compile {python}'s modules: {proc.stderr.strip()[-300:]}")


def env_for(lib: Library, uvloop: bool, rebuild: bool = False) -> Env:
    """Return ``lib``'s environment, building it first when needed.

    Raises:
        EnvError: the packages cannot be installed here (the reason is in the message).
    """
    if not lib.requirements:
        _compile(sys.executable)
        return Env(sys.executable, _versions(sys.executable, _REPORTED))
    reqs = sorted(requirements(lib, uvloop))
    # absolute paths: an editable install points at one checkout, and a run from another
    # clone must not measure that one's code (the cache is shared by every clone)
    editable = sorted(str((ROOT / e).resolve()) for e in lib.editable)
    tag = "\n".join([*reqs, *(f"-e {e}" for e in editable), sys.version])
    digest = hashlib.sha256(tag.encode()).hexdigest()[:12]
    path = _base_dir() / f"{lib.name}-{digest}"
    python = path / "bin" / "python"
    marker = path / ".kew-bench-ready"
    if rebuild and path.exists():
        shutil.rmtree(path)
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        uv = _uv()
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(path)], 120)
        cmd = [uv, "pip", "install", "--quiet", "--python", str(python), *reqs]
        for e in editable:
            cmd += ["-e", e]
        _run(cmd, 600)
        marker.write_text(tag)
    _compile(str(python))
    return Env(str(python), _versions(str(python), _REPORTED))
