"""The libraries the benchmark runs, and the environment each one runs in.

kew runs in the workspace environment (the interpreter running ``python -m bench``). Every peer
runs in its own virtual environment made by :mod:`bench.envs` from the pinned requirements
below, because their redis-py pins conflict (arq 0.28 pins redis-py < 6, taskiq-redis and
BullMQ take redis-py 8). None of them is a dependency of kew. Pins are reviewed like code: bump
them here on purpose.

Optional ``kew-redis5``: kew from this checkout (editable) on the newest redis-py 5.x, because
redis-py 8 pipelines measured about 2x slower than 5.x on this kind of machine.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIBRARIES", "Library", "by_name", "requirements"]


@dataclass(frozen=True)
class Library:
    """One library (or one configuration of a library) in the benchmark.

    Attributes:
        name: label in tables, JSON, gates.toml and ``--libs``.
        module: the driver module (``python -m <module>``).
        requirements: pip requirement strings of its environment; empty for the workspace env.
        variant: passed to the driver (``--variant``).
        worker_only: only run the scenarios that need a worker (a polling setting changes
            nothing for enqueue).
        editable: paths (relative to the repository root) installed editable into the env.
        default: part of the default set (``--libs`` picks others).
        note: one line for the report.
    """

    name: str
    module: str
    requirements: tuple[str, ...] = ()
    variant: str = ""
    worker_only: bool = False
    editable: tuple[str, ...] = ()
    default: bool = True
    note: str = ""

    @property
    def is_kew(self) -> bool:
        """True for kew itself and its variants (they are never a "peer" in ratios)."""
        return self.module == "bench.drivers.kew"


_UVLOOP = "uvloop>=0.21"

LIBRARIES: tuple[Library, ...] = (
    Library("kew", "bench.drivers.kew", note="workspace environment"),
    Library(
        "arq",
        "bench.drivers.arq",
        ("arq==0.28.0",),
        note="defaults (poll_delay 0.5 s)",
    ),
    Library(
        "arq-fast",
        "bench.drivers.arq",
        ("arq==0.28.0",),
        variant="fast",
        worker_only=True,
        note="poll_delay 0.01 s",
    ),
    Library(
        "saq",
        "bench.drivers.saq",
        # saq 0.26.4 imports typing_extensions without declaring it
        ("saq[redis,hiredis]==0.26.4", "typing_extensions"),
    ),
    Library("streaq", "bench.drivers.streaq", ("streaq==7.2.0",), note="coredis client"),
    Library(
        "taskiq",
        "bench.drivers.taskiq",
        ("taskiq==0.13.0", "taskiq-redis==1.2.4", "hiredis"),
        note="RedisStreamBroker + RedisAsyncResultBackend",
    ),
    Library("bullmq", "bench.drivers.bullmq", ("bullmq==3.4.4", "hiredis")),
    Library(
        "kew-redis5",
        "bench.drivers.kew",
        ("redis[hiredis]>=5.2,<6", "cloudpickle>=3.0"),
        editable=("packages/kew",),
        note="this checkout on redis-py 5.x",
    ),
)


def by_name(name: str) -> Library:
    """The library called ``name``; KeyError naming the choices otherwise."""
    for lib in LIBRARIES:
        if lib.name == name:
            return lib
    raise KeyError(f"unknown library {name!r}; choose from {[x.name for x in LIBRARIES]}")


def requirements(lib: Library, uvloop: bool) -> tuple[str, ...]:
    """The requirements of ``lib``'s environment (plus uvloop when the run uses it)."""
    return lib.requirements + ((_UVLOOP,) if uvloop else ())
