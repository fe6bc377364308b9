"""The Lua script loader: includes, cycles, names, numkeys; and the scripts kew ships."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import pytest
from kew.scripts import Script, ScriptLoadError, load_script, load_scripts

FIXTURES = Path(__file__).parent / "fixtures" / "lua"


def read_fixture(path: str) -> str:
    return (FIXTURES / path).read_text(encoding="utf-8")


def _count(source: str, needle: str) -> int:
    return len(re.findall(re.escape(needle), source))


# -- includes -------------------------------------------------------------------------------------


def test_includes_are_inlined_once() -> None:
    script = load_script("good-2.lua", read_fixture)
    assert script.name == "good"
    assert script.numkeys == 2
    assert "--!include" not in script.source
    # included directly twice and once more through second.lua: inlined exactly once
    assert _count(script.source, "local function first()") == 1
    assert _count(script.source, "local function second()") == 1
    # a helper comes before its first user
    assert script.source.index("local function first()") < script.source.index(
        "local function second()"
    )
    assert script.source.index("local function second()") < script.source.index("return first()")


def test_include_replaces_the_include_line_in_place() -> None:
    script = load_script("nested_include-1.lua", read_fixture)
    assert script.source.splitlines() == [
        "local function leaf()",
        "  return 'leaf'",
        "end",
        "return leaf()",
    ]


def test_sha_is_the_sha1_of_the_resolved_source() -> None:
    script = load_script("good-2.lua", read_fixture)
    assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{40}", script.sha)


def test_loading_is_deterministic() -> None:
    assert load_script("good-2.lua", read_fixture) == load_script("good-2.lua", read_fixture)


def test_variadic_script_has_no_numkeys() -> None:
    script = load_script("variadic.lua", read_fixture)
    assert script.name == "variadic"
    assert script.numkeys is None
    assert _count(script.source, "local function first()") == 1


@pytest.mark.parametrize(
    ("filename", "name", "numkeys"),
    [
        ("claim-7.lua", "claim", 7),
        ("breaker_failure-1.lua", "breaker_failure", 1),
        ("submit.lua", "submit", None),
        ("x-0.lua", "x", 0),
        ("move_to_active-11.lua", "move_to_active", 11),
    ],
)
def test_name_and_numkeys_from_file_name(filename: str, name: str, numkeys: int | None) -> None:
    script = load_script(filename, lambda path: "return 1")
    assert (script.name, script.numkeys) == (name, numkeys)


# -- errors ---------------------------------------------------------------------------------------


def test_cycle_through_the_script_itself() -> None:
    with pytest.raises(ScriptLoadError, match="cycle"):
        load_script("self_cycle-1.lua", read_fixture)


def test_script_including_itself() -> None:
    with pytest.raises(ScriptLoadError, match="cycle"):
        load_script("self_include-1.lua", read_fixture)


def test_cycle_between_includes() -> None:
    # includes/loop_a.lua <-> includes/loop_b.lua; the module docstring: "cycles ... raise
    # ScriptLoadError"
    with pytest.raises(ScriptLoadError, match="cycle"):
        load_script("include_cycle-1.lua", read_fixture)


def test_missing_include() -> None:
    with pytest.raises(ScriptLoadError, match=r"does_not_exist\.lua"):
        load_script("missing_include-1.lua", read_fixture)


def test_missing_nested_include_names_the_includer() -> None:
    with pytest.raises(ScriptLoadError) as info:
        load_script("missing_nested-1.lua", read_fixture)
    assert "also_missing.lua" in str(info.value)
    assert "has_missing.lua" in str(info.value)


def test_missing_script_file() -> None:
    with pytest.raises(ScriptLoadError):
        load_script("nothing_here-1.lua", read_fixture)


@pytest.mark.parametrize(
    "filename",
    [
        "Claim-7.lua",
        "claim-x.lua",
        "claim-7-2.lua",
        "claim-.lua",
        "claim.txt",
        "claim-7.lua.bak",
        "includes/claim-7.lua",
        "claim 7.lua",
        "-7.lua",
        ".lua",
        "claim7.lua",
    ],
)
def test_bad_file_name(filename: str) -> None:
    def never(path: str) -> str:
        raise AssertionError("a bad name must be rejected before reading")

    with pytest.raises(ScriptLoadError):
        load_script(filename, never)


def test_script_load_error_is_an_exception() -> None:
    assert issubclass(ScriptLoadError, Exception)


# -- the shipped scripts --------------------------------------------------------------------------

EXPECTED_SCRIPTS = {
    "submit",
    "claim",
    "extend",
    "complete",
    "fail",
    "release",
    "breaker_failure",
    "breaker_reset",
}


def _shipped_files() -> dict[str, str]:
    root = resources.files("kew").joinpath("lua")
    return {
        e.name: e.read_text(encoding="utf-8") for e in root.iterdir() if e.name.endswith(".lua")
    }


def test_all_shipped_scripts_load() -> None:
    scripts = load_scripts()
    assert set(scripts) >= EXPECTED_SCRIPTS
    assert len(scripts) == len(_shipped_files())
    for name, script in scripts.items():
        assert isinstance(script, Script)
        assert script.name == name
        assert "--!include" not in script.source, name
        assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()


def test_load_scripts_is_cached() -> None:
    assert load_scripts() is load_scripts()


@pytest.mark.parametrize("filename", sorted(_shipped_files()))
def test_shipped_numkeys_match_keys_used(filename: str) -> None:
    text = _shipped_files()[filename]
    script = load_scripts()[filename.split("-")[0].removesuffix(".lua")]
    documented = sorted({int(i) for i in re.findall(r"^-- KEYS\[(\d+)\]", text, re.M)})
    code = "\n".join(
        line for line in script.source.splitlines() if not line.lstrip().startswith("--")
    )
    used = {int(i) for i in re.findall(r"KEYS\[(\d+)\]", code)}
    assert documented == list(range(1, len(documented) + 1)), "KEYS documented in order"
    assert used <= set(documented), "every KEYS[i] used is documented"
    if script.numkeys is not None:
        assert script.numkeys == len(documented)


@pytest.mark.parametrize("filename", sorted(_shipped_files()))
def test_shipped_helpers_defined_once(filename: str) -> None:
    script = load_scripts()[filename.split("-")[0].removesuffix(".lua")]
    names = re.findall(r"local function (\w+)", script.source)
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("filename", sorted(_shipped_files()))
def test_shipped_scripts_never_read_the_server_clock(filename: str) -> None:
    script = load_scripts()[filename.split("-")[0].removesuffix(".lua")]
    assert not re.search(r"""['"]TIME['"]""", script.source)


@pytest.mark.parametrize("filename", sorted(_shipped_files()))
def test_shipped_scripts_compile_as_lua_5_1(filename: str) -> None:
    """Redis runs Lua 5.1: every resolved script must at least compile there."""
    lua51 = pytest.importorskip("lupa.lua51")
    script = load_scripts()[filename.split("-")[0].removesuffix(".lua")]
    compile_error = lua51.LuaRuntime().eval(
        "function(src) local f, err = loadstring(src) return err end"
    )
    assert compile_error("return ((") is not None  # the check itself works
    assert compile_error(script.source) is None
