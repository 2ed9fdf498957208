"""Find the line of a key in TOML source text, since ``tomllib`` reports none.

The loader validates the dict that ``tomllib`` returns and needs a line for every
error (``lab.toml:14: [edge] key 'listn': ...``). :class:`Locator` scans the same
source once and records, for every key path, the line where it is written:

- ``[edge]`` / ``[certs."vcse.steven.lab"]`` headers: the table's path;
- ``[[calls]]`` headers: ``("calls", n)`` for the n-th (0-based) entry, so
  ``("calls", 2, "via")`` is the ``via`` key of the third call;
- ``key = value``, dotted keys (``expect.status = 504``) and inline tables
  (``expect = { status = 504 }``), keys inside them included;
- array elements: ``("edge", "domains", 1)``, ``("edge", "allowed", 0, "domain")``.

The scanner is meant for text that ``tomllib`` accepted, but it never raises on
any input: on text it does not understand it skips ahead, and :meth:`Locator.line`
falls back to the nearest enclosing key it did find, then to line 1.
"""

from __future__ import annotations

import bisect
import contextlib

#: A key path as the loader walks the parsed document: table keys and array indices.
KeyPath = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SIMPLE_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    '"': '"',
    "\\": "\\",
}
#: Deeper nesting than this is not a real lab file; stop recursing (garbage input).
_MAX_DEPTH = 64


class Locator:
    """Line numbers of the keys of one TOML document.

    Attributes:
        lines: key path -> 1-based line where the key (or header) is written.
        value_lines: key path -> line where a string value's text starts (for a
            multi-line string opened with a newline, the line after the opener).
        line_count: number of lines of the source (at least 1).
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.value_lines: dict[KeyPath, int] = {}
        self.line_count = text.count("\n") + 1
        _Scanner(text, self).run()

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, else of its nearest recorded ancestor, else 1."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return 1

    def value_line(self, path: KeyPath) -> int:
        """Line where the string value at ``path`` starts (falls back to :meth:`line`)."""
        return self.value_lines.get(path) or self.line(path)


class _Scanner:
    """A forgiving single pass over TOML: keys, headers and value extents only."""

    def __init__(self, text: str, out: Locator) -> None:
        self.text = text
        self.n = len(text)
        self.out = out
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        # Resolved array-of-tables path -> index of its latest [[...]] entry.
        self.aot: dict[KeyPath, int] = {}

    def line_of(self, i: int) -> int:
        return bisect.bisect_left(self.newlines, i) + 1

    def record(self, path: KeyPath, i: int) -> None:
        line = self.line_of(i)
        for end in range(1, len(path) + 1):
            self.out.lines.setdefault(path[:end], line)

    # -- top level ---------------------------------------------------------------

    def run(self) -> None:
        table: KeyPath = ()
        i = 0
        while i < self.n:
            i = self.skip_blank(i, newlines=True)
            if i >= self.n:
                break
            start = i
            if self.text[i] == "[":
                is_aot = self.text.startswith("[[", i)
                keys, i = self.parse_key(i + (2 if is_aot else 1))
                if keys:
                    if is_aot:
                        base = (*self.resolve(keys[:-1]), keys[-1])
                        index = self.aot.get(base, -1) + 1
                        self.aot[base] = index
                        table = (*base, index)
                    else:
                        table = self.resolve(keys)
                    self.record(table, start)
                i = self.skip_line(i)
                continue
            keys, i = self.parse_key(i)
            i = self.skip_blank(i)
            if not keys or i >= self.n or self.text[i] != "=":
                i = self.skip_line(max(i, start + 1))
                continue
            path = table + tuple(keys)
            self.record(path, start)
            i = self.parse_value(i + 1, path, 0)
            i = self.skip_line(i)

    def resolve(self, keys: list[str]) -> KeyPath:
        """Insert the current index after every prefix that is an array of tables."""
        out: KeyPath = ()
        for key in keys:
            out = (*out, key)
            if out in self.aot:
                out = (*out, self.aot[out])
        return out

    # -- lexical helpers ---------------------------------------------------------

    def skip_blank(self, i: int, *, newlines: bool = False) -> int:
        """Skip spaces, tabs, comments and (if asked) line breaks."""
        while i < self.n:
            ch = self.text[i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                i += 1
            elif ch == "#":
                i = self.end_of_line(i)
            else:
                break
        return i

    def end_of_line(self, i: int) -> int:
        j = self.text.find("\n", i)
        return self.n if j < 0 else j

    def skip_line(self, i: int) -> int:
        """Move past the rest of the current line (trailing comment, closing ``]``)."""
        return min(self.end_of_line(i) + 1, self.n) if i < self.n else self.n

    def parse_key(self, i: int) -> tuple[list[str], int]:
        """Parse a (dotted, possibly quoted) key; returns ``([], i)`` when there is none."""
        keys: list[str] = []
        while True:
            i = self.skip_blank(i)
            if i >= self.n:
                return keys, i
            ch = self.text[i]
            if ch == '"':
                key, i = self.basic_string(i + 1)
            elif ch == "'":
                j = self.text.find("'", i + 1)
                j = self.end_of_line(i) if j < 0 else j
                key, i = self.text[i + 1 : j], j + 1
            else:
                j = i
                while j < self.n and self.text[j] in _BARE_KEY_CHARS:
                    j += 1
                if j == i:
                    return keys, i
                key, i = self.text[i:j], j
            keys.append(key)
            i = self.skip_blank(i)
            if i < self.n and self.text[i] == ".":
                i += 1
                continue
            return keys, i

    def basic_string(self, i: int) -> tuple[str, int]:
        """Decode a one-line basic string whose opening quote is just before ``i``."""
        parts: list[str] = []
        while i < self.n:
            ch = self.text[i]
            if ch == '"':
                return "".join(parts), i + 1
            if ch == "\n":
                break
            if ch == "\\" and i + 1 < self.n:
                esc = self.text[i + 1]
                width = {"u": 4, "U": 8}.get(esc)
                if width is not None:
                    with contextlib.suppress(ValueError, OverflowError):
                        parts.append(chr(int(self.text[i + 2 : i + 2 + width], 16)))
                    i += 2 + width
                    continue
                parts.append(_SIMPLE_ESCAPES.get(esc, esc))
                i += 2
                continue
            parts.append(ch)
            i += 1
        return "".join(parts), i

    # -- values ------------------------------------------------------------------

    def parse_value(self, i: int, path: KeyPath, depth: int) -> int:
        """Skip one value, recording keys of inline tables and array elements in it."""
        i = self.skip_blank(i)
        if i >= self.n:
            return i
        text = self.text
        if depth > _MAX_DEPTH:
            return self.end_of_line(i)
        for quote in ('"""', "'''"):
            if text.startswith(quote, i):
                start = i + 3
                # TOML trims a newline right after the opening delimiter.
                if text.startswith("\r\n", start):
                    start += 2
                elif text.startswith("\n", start):
                    start += 1
                self.out.value_lines.setdefault(path, self.line_of(start))
                return self.multiline_end(i + 3, quote)
        ch = text[i]
        if ch == '"':
            self.out.value_lines.setdefault(path, self.line_of(i))
            return self.basic_string(i + 1)[1]
        if ch == "'":
            self.out.value_lines.setdefault(path, self.line_of(i))
            j = text.find("'", i + 1)
            return self.end_of_line(i) if j < 0 else j + 1
        if ch == "[":
            return self.array(i + 1, path, depth)
        if ch == "{":
            return self.inline_table(i + 1, path, depth)
        while i < self.n and text[i] not in ",]}\n#":
            i += 1
        return i

    def multiline_end(self, i: int, quote: str) -> int:
        """Index just past the closing delimiter of a multi-line string."""
        while i < self.n:
            if quote == '"""' and self.text[i] == "\\":
                i += 2
                continue
            if self.text.startswith(quote, i):
                i += 3
                # Up to two quotes may sit right before the delimiter (TOML 1.0).
                extra = 0
                while extra < 2 and i < self.n and self.text[i] == quote[0]:
                    i += 1
                    extra += 1
                return i
            i += 1
        return self.n

    def array(self, i: int, path: KeyPath, depth: int) -> int:
        index = 0
        while i < self.n:
            i = self.skip_blank(i, newlines=True)
            if i >= self.n:
                break
            ch = self.text[i]
            if ch == "]":
                return i + 1
            if ch == ",":
                i += 1
                continue
            element = (*path, index)
            self.record(element, i)
            j = self.parse_value(i, element, depth + 1)
            i = max(j, i + 1)
            index += 1
        return i

    def inline_table(self, i: int, path: KeyPath, depth: int) -> int:
        while i < self.n:
            i = self.skip_blank(i, newlines=True)
            if i >= self.n:
                break
            ch = self.text[i]
            if ch == "}":
                return i + 1
            if ch == ",":
                i += 1
                continue
            start = i
            keys, i = self.parse_key(i)
            i = self.skip_blank(i)
            if not keys or i >= self.n or self.text[i] != "=":
                # Not a key: step over one character so the scan always advances.
                i = max(i, start + 1)
                continue
            key_path = path + tuple(keys)
            self.record(key_path, start)
            j = self.parse_value(i + 1, key_path, depth + 1)
            i = max(j, i + 1)
        return i
