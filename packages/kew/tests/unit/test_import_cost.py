"""``import kew`` loads only what every process needs (the RSS bar of bench/gates.toml).

cloudpickle (a function stored by value), decimal (a Decimal in by-reference mode) and
importlib.metadata (``kew.__version__``) are imported on first use; each check runs in a fresh
interpreter, where nothing else has imported them.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


def fresh(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


def test_import_kew_leaves_the_lazy_modules_unloaded() -> None:
    loaded = fresh(
        "import sys, kew\n"
        "print(sorted(m for m in ('cloudpickle', 'decimal', 'importlib.metadata', 'email.parser')"
        " if m in sys.modules))"
    )
    # redis-py 8 imports importlib.metadata itself; kew must not add the rest
    assert loaded in ("[]", "['importlib.metadata']")


def test_version_is_read_on_first_use() -> None:
    assert fresh("import kew; print(kew.__version__)") == version("kew")
    import kew

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kew.nope  # noqa: B018


def test_a_decimal_and_a_lambda_still_round_trip_in_a_fresh_process() -> None:
    got = fresh(
        "import sys\n"
        "from kew.codec import Codec\n"
        "from kew.serialization import decode_function, encode_function\n"
        "strict = Codec(allow_pickle=False)\n"
        "import decimal\n"
        "blob = strict.encode_result(decimal.Decimal('1.10'), 't')\n"
        "del sys.modules['decimal']\n"  # a reader that never imported decimal itself
        "value = strict.decode_result(blob, 't')\n"
        "fn = decode_function(encode_function(lambda x: x * 2))\n"
        "print(repr(value), fn(21), 'cloudpickle' in sys.modules)"
    )
    assert got == "Decimal('1.10') 42 True"
