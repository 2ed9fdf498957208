"""One run of the whole catalogue through ``fedsim run``, shared by the page and shard tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simulator.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class CatalogueRun:
    """The outputs of ``fedsim run scenarios --json --junit-xml --html``."""

    status: int
    json: Path
    junit: Path
    html: Path


@pytest.fixture(scope="session")
def catalogue_run(tmp_path_factory: pytest.TempPathFactory) -> CatalogueRun:
    out = tmp_path_factory.mktemp("catalogue")
    paths = {"json": out / "all.json", "junit": out / "all.xml", "html": out / "all.html"}
    status = main(
        [
            "run",
            str(SCENARIOS),
            "--exclude",  # as make scenarios: the exercises are broken on purpose
            "exercises/[0-9]*",
            "--json",
            str(paths["json"]),
            "--junit-xml",
            str(paths["junit"]),
            "--html",
            str(paths["html"]),
        ]
    )
    return CatalogueRun(status=status, **paths)


# --- a small DOM over html.parser (stdlib), for tests that read the page -------------

#: Elements without an end tag (HTML5 void elements).
VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass
class Node:
    """An element: tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None, **attrs: str) -> Iterator[Node]:
        """This element and every element under it with ``tag`` and ``attrs``."""
        if (tag is None or self.tag == tag) and all(
            self.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()
        ):
            yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter(tag, **attrs)

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = list(self.iter(tag, **attrs))
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> elements, expected one"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert any(n.tag == tag for n in self.stack), f"</{tag}> closes nothing"
        while self.stack[-1].tag != tag:
            self.stack.pop()
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    """The document tree of ``text``; every element must be closed (the page is well formed)."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    assert builder.stack == [builder.root], f"unclosed: {[n.tag for n in builder.stack[1:]]}"
    return builder.root


@pytest.fixture(scope="session")
def html_tree() -> Callable[[str], Node]:
    """:func:`parse_html`, for test modules (they cannot import each other)."""
    return parse_html
