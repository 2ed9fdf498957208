"""The key locator: exact lines on known shapes, and invariants over generated TOML."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.lab import Locator
from simulator.lab.locate import KeyPath

SAMPLE = """\
name = "x"                      # 1
[edge]                          # 2
domains = [                     # 3
  "a.lab",                      # 4
  "b.lab",                      # 5
]                               # 6
users = { bob = 486, "x.y" = 1 }
[[edge.allowed]]                # 8
domain = "steven.lab"           # 9
[dns]                           # 10
records = '''
_sip._tcp IN SRV 0 0 5061 x.    # 12 (not a key: inside a string)
fake = "not a key"
'''
[certs."vcse.steven.lab"]       # 15
issuer = 'root'                 # 16
[[calls]]                       # 17
expect = { status = 504 }       # 18
[[calls]]                       # 19
expect.status = 200             # 20
[calls.more]                    # 21
'quoted key' = 1                # 22
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("name",), 1),
        (("edge",), 2),
        (("edge", "domains"), 3),
        (("edge", "domains", 1), 5),
        (("edge", "users", "x.y"), 7),
        (("edge", "allowed", 0), 8),
        (("edge", "allowed", 0, "domain"), 9),
        (("dns", "records"), 11),
        (("certs", "vcse.steven.lab"), 15),
        (("certs", "vcse.steven.lab", "issuer"), 16),
        (("calls", 0, "expect", "status"), 18),
        (("calls", 1), 19),
        (("calls", 1, "expect", "status"), 20),
        (("calls", 1, "more", "quoted key"), 22),
        # Unknown paths fall back to the nearest ancestor, then to line 1.
        (("edge", "allowed", 0, "proxy_fqdn"), 8),
        (("calls", 1, "via"), 19),
        (("nowhere",), 1),
    ],
)
def test_locator_finds_the_line(path: KeyPath, line: int) -> None:
    tomllib.loads(SAMPLE)  # the sample is valid TOML
    assert Locator(SAMPLE).line(path) == line


def test_keys_inside_multiline_strings_are_not_keys() -> None:
    locator = Locator(SAMPLE)
    assert ("dns", "fake") not in locator.lines
    assert ("fake",) not in locator.lines
    assert locator.value_line(("dns", "records")) == 12


@given(st.text(max_size=400))
def test_locator_never_crashes_on_any_text(text: str) -> None:
    locator = Locator(text)
    assert all(1 <= line <= locator.line_count for line in locator.lines.values())
    assert all(1 <= line <= locator.line_count for line in locator.value_lines.values())


@given(
    st.lists(
        st.sampled_from(
            [
                "[",
                "]",
                "[[",
                '"',
                "'",
                '"""',
                "'''",
                "{",
                "}",
                "=",
                ".",
                ",",
                "\n",
                "#",
                "a",
                "b.c",
                " ",
                "\\",
                "1",
            ]
        ),
        max_size=200,
    )
)
def test_locator_never_crashes_on_toml_like_fragments(parts: list[str]) -> None:
    text = "".join(parts)
    locator = Locator(text)
    assert all(1 <= line <= locator.line_count for line in locator.lines.values())


# -- generated TOML documents ------------------------------------------------------

BARE = re.compile(r"[A-Za-z0-9_-]+")

keys = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_-]{0,6}", fullmatch=True),
    st.text(alphabet='ab .-é"\\#=[]', min_size=1, max_size=5),
)
scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.text(alphabet="ab #=[]{}\"'\\\n.,é", max_size=8),
)


def _key(key: str) -> str:
    return key if BARE.fullmatch(key) else json.dumps(key)


def _scalar(value: object, data: st.DataObject) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str)
    if "'" not in value and "\n" not in value and data.draw(st.booleans()):
        return f"'{value}'"
    if '"' not in value and "\\" not in value and data.draw(st.booleans()):
        return f'"""\n{value}"""'
    return json.dumps(value)


def _inline(value: object, data: st.DataObject) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_inline(v, data)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        sep = ",\n  " if data.draw(st.booleans()) else ", "
        return "[" + sep.join(_inline(v, data) for v in value) + "]"
    return _scalar(value, data)


def _is_aot(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _render(table: dict[str, Any], prefix: list[str], out: list[str], data: st.DataObject) -> None:
    """Render a table: plain keys first, then [sub] and [[aot]] headers (TOML requires it)."""
    later: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict) or _is_aot(value):
            style = data.draw(st.sampled_from(["header", "inline", "dotted"]))
            if style == "inline":
                out.append(f"{_key(key)} = {_inline(value, data)}")
            elif (
                style == "dotted"
                and isinstance(value, dict)
                and value
                and all(not isinstance(v, dict | list) for v in value.values())
            ):
                out.extend(f"{_key(key)}.{_key(k)} = {_scalar(v, data)}" for k, v in value.items())
            else:
                later.append((key, value))
        else:
            out.append(f"{_key(key)} = {_inline(value, data)}")
    for key, value in later:
        name = ".".join(_key(k) for k in [*prefix, key])
        if isinstance(value, dict):
            out.append(f"[{name}]")
            _render(value, [*prefix, key], out, data)
        else:
            for item in value:
                out.append(f"[[{name}]]")
                _render(item, [*prefix, key], out, data)


documents = st.recursive(
    st.dictionaries(keys, scalars | st.lists(scalars, max_size=3), max_size=4),
    lambda children: st.dictionaries(
        keys, children | st.lists(children, min_size=1, max_size=3), max_size=4
    ),
    max_leaves=20,
)


def _paths(value: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    found: list[KeyPath] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.append((*prefix, k))
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.append((*prefix, i))
            found.extend(_paths(v, (*prefix, i)))
    return found


@settings(max_examples=300)
@given(documents, st.data())
def test_locator_places_every_key_of_a_valid_document(
    document: dict[str, Any], data: st.DataObject
) -> None:
    out: list[str] = []
    _render(document, [], out, data)
    text = "\n".join(out) + "\n"
    parsed = tomllib.loads(text)
    locator = Locator(text)
    lines = text.split("\n")
    for path in _paths(parsed):
        line = locator.line(path)
        assert 1 <= line <= locator.line_count
        assert path in locator.lines, (path, text)
        last = path[-1]
        if isinstance(last, str) and BARE.fullmatch(last):
            # Keys may sit on their own line or on the line of their table's header.
            assert last in lines[line - 1], (path, line, text)
