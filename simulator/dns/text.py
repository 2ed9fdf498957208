"""Zone-file text: tokens, character-strings and domain names (RFC 1035 §5.1). Pure.

Shared by the zone parser (which reads what users paste) and the wire
boundary (which turns our canonical rdata text back into packets), so both
agree on one spelling of names and quoted strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "TextError",
    "Token",
    "decode_character_string",
    "encode_character_string",
    "name_from_labels",
    "name_problem",
    "split_rdata",
    "tokenize_line",
]

# RFC 1035 §2.3.4: labels are 63 octets or less, names 255 octets or less on the wire
# (253 characters of text without the trailing dot).
MAX_LABEL = 63
MAX_NAME_TEXT = 253

# RFC 952/1123 letters, digits and hyphen, plus "_" (RFC 2782 service labels) and "*" (which
# we refuse to treat as a wildcard, but a query may still ask for it literally).
_LABEL_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")
_SPECIALS = "();"


class TextError(ValueError):
    """A line of zone text cannot be split into tokens.

    Attributes:
        what: the problem.
        fix: how to fix it.
    """

    def __init__(self, what: str, *, fix: str) -> None:
        super().__init__(f"{what} ({fix})")
        self.what = what
        self.fix = fix


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """One word of a zone line. ``quoted`` tokens hold the raw text between the quotes."""

    text: str
    quoted: bool = False

    @property
    def is_open(self) -> bool:
        return not self.quoted and self.text == "("

    @property
    def is_close(self) -> bool:
        return not self.quoted and self.text == ")"


def tokenize_line(line: str) -> list[Token]:
    """Split one physical line into tokens (RFC 1035 §5.1).

    ";" starts a comment outside quotes; "(" and ")" are tokens of their own;
    quoted strings keep their backslash escapes (decode them with
    :func:`decode_character_string`). A quote cannot span lines.

    Raises:
        TextError: an unterminated quoted string.
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r\n\f\v":
            i += 1
        elif c == ";":
            break
        elif c in "()":
            tokens.append(Token(text=c))
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= n:
                raise TextError(
                    "unterminated quoted string", fix='close it with " on the same line'
                )
            tokens.append(Token(text=line[i + 1 : j], quoted=True))
            i = j + 1
        else:
            j = i
            while j < n and not line[j].isspace() and line[j] not in _SPECIALS and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            tokens.append(Token(text=line[i:j]))
            i = j
    return tokens


_RDATA_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def split_rdata(rdata: str) -> list[Token]:
    """Split canonical rdata text (as stored in a Record) into tokens."""
    return [
        Token(text=m.group(1), quoted=True) if m.group(1) is not None else Token(text=m.group(2))
        for m in _RDATA_TOKEN.finditer(rdata)
    ]


def decode_character_string(raw: str) -> bytes:
    r"""Turn a zone-file <character-string> into its octets (RFC 1035 §5.1).

    ``\DDD`` is the octet with that decimal value, ``\X`` is X itself; other
    text is UTF-8.

    Raises:
        TextError: a dangling backslash or a ``\DDD`` above 255.
    """
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= n:
            raise TextError("dangling backslash", fix=r"write \\ for a backslash")
        if raw[i + 1 : i + 4].isdigit() and len(raw[i + 1 : i + 4]) == 3:
            value = int(raw[i + 1 : i + 4])
            if value > 255:
                raise TextError(rf"escape \{value} is above 255", fix=r"use \000 to \255")
            out.append(value)
            i += 4
        else:
            out += raw[i + 1].encode("utf-8")
            i += 2
    return bytes(out)


def encode_character_string(data: bytes) -> str:
    """Quote octets as a zone-file <character-string>, escaping what is not printable ASCII."""
    parts = ['"']
    for b in data:
        if b in (0x22, 0x5C):
            parts.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            parts.append(chr(b))
        else:
            parts.append(f"\\{b:03d}")
    parts.append('"')
    return "".join(parts)


def name_from_labels(labels: tuple[bytes, ...]) -> str:
    r"""Spell wire labels as an absolute, lower-case name with a trailing dot.

    Octets that are not letters, digits, "-", "_" or "*" become ``\DDD``; our
    zone names never contain a backslash, so such a name can only be answered
    NXDOMAIN or REFUSED, never matched by accident.
    """
    if not labels:
        return "."
    spelled = []
    for label in labels:
        spelled.append(
            "".join(
                chr(b) if b in _LABEL_CHARS else f"\\{b:03d}"
                for b in label.lower()  # bytes.lower() folds ASCII only (RFC 4343)
            )
        )
    return ".".join(spelled) + "."


def name_problem(name: str) -> str | None:
    """Say what is wrong with an absolute, lower-case name, or None when it is fine."""
    if name == ".":
        return None
    if not name.endswith("."):
        return "name is not absolute"
    body = name[:-1]
    if len(body) > MAX_NAME_TEXT:
        return f"name is {len(body)} characters long (253 at most)"
    for label in body.split("."):
        if not label:
            return "name has an empty label (two dots in a row)"
        if len(label) > MAX_LABEL:
            return f"label '{label[:20]}...' is {len(label)} characters long (63 at most)"
        if "*" in label:
            return "wildcard names are not served (list each name you need)"
        bad = sorted({c for c in label if ord(c) > 127 or ord(c) not in _LABEL_CHARS})
        if bad:
            return f"label '{label}' has characters {''.join(bad)!r} (letters, digits, '-', '_')"
    return None
