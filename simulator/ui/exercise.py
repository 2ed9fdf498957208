"""Training exercises: a broken lab, its task and hints, and the edits the page may make.

Pure. An exercise is a lab file with an ``[exercise]`` table
(:class:`simulator.lab.Exercise`) in ``scenarios/exercises/``; ``fedsim serve
--exercise NAME`` copies it to a working file, serves it, and the trainee fixes
the copy: in the page (:func:`edit_lab_text`: the ``[dns] records`` and each
certificate's names, issuer, validity and revocation) or in an editor. Every change goes
through the lab loader (:func:`check_lab_text`): a bad edit is one error line
and nothing is applied.

Edits are made on the file's text, key by key, so the trainee's comments and
layout stay: a key's value is replaced where it is written, or the key is added
under its table's header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulator.errors import FedsimError, LabError
from simulator.lab import Lab, load_lab_text
from simulator.pki.spec import CertSpec
from simulator.run.model import CallReport

#: Certificate keys the page edits, and the values ``validity`` and ``revoked`` take.
CERT_KEYS = ("cn", "san", "issuer", "validity", "revoked")
VALIDITIES = ("valid", "expired", "not-yet-valid")
#: The page's ``revoked`` choices: "yes" puts the certificate on its issuer's CRL.
REVOKED = {"no": False, "yes": True}
#: What a name typed in the page may be (a DNS name; the loader checks the rest).
_NAME_RE = re.compile(r"[A-Za-z0-9*_.-]{1,253}")
_HEADER_RE = re.compile(r"^[ \t]*\[(?!\[)(?P<key>[^\]\n]+)\][ \t]*(#.*)?$", re.M)
_ANY_HEADER_RE = re.compile(r"^[ \t]*\[", re.M)


class EditError(FedsimError):
    """An edit the page cannot make (one line: what, and how to do it instead)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CertEdit:
    """New values for one certificate (None: leave the key as it is)."""

    cn: str | None = None
    san: tuple[str, ...] | None = None
    issuer: str | None = None
    validity: str | None = None
    revoked: bool | None = None


def _key_path(header: str) -> tuple[str, ...]:
    """``certs."vcse.steven.lab"`` -> ("certs", "vcse.steven.lab") (TOML dotted keys)."""
    parts: list[str] = []
    for m in re.finditer(
        r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*(?:\.|$)', header
    ):
        if m.group(1) is not None:
            parts.append(json.loads(f'"{m.group(1)}"'))
        else:
            parts.append(m.group(2) if m.group(2) is not None else m.group(3))
    return tuple(parts)


def _table_span(text: str, path: tuple[str, ...]) -> tuple[int, int] | None:
    """Where the body of table ``[path]`` is in ``text``: (after its header line, next header)."""
    for m in _HEADER_RE.finditer(text):
        if _key_path(m.group("key")) == path:
            start = text.find("\n", m.end())
            start = len(text) if start < 0 else start + 1
            nxt = _ANY_HEADER_RE.search(text, start)
            return start, nxt.start() if nxt else len(text)
    return None


def _value_end(text: str, start: int) -> int:
    """The end of the TOML value that starts at ``start`` (strings, arrays, one-liners)."""
    for quote in ('"""', "'''"):
        if text.startswith(quote, start):
            end = text.find(quote, start + 3)
            if end < 0:
                raise EditError("an unterminated multi-line string: fix the file in an editor")
            end += 3
            while text.startswith(quote[0], end):  # up to two more quotes close it too
                end += 1
            return end
    if text.startswith("[", start):
        depth, i, quote = 0, start, ""
        while i < len(text):
            c = text[i]
            if quote:
                if c == "\\" and quote == '"':
                    i += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'":
                quote = c
            elif c == "#":
                i = text.find("\n", i) - 1 if "\n" in text[i:] else len(text)
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise EditError("an unterminated array: fix the file in an editor")
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def set_key(text: str, table: tuple[str, ...], key: str, value: str) -> str:
    """``text`` with ``key = value`` (TOML, already encoded) in table ``[table]``.

    Raises:
        EditError: the table is not written as a ``[header]`` of its own.
    """
    span = _table_span(text, table)
    if span is None:
        shown = ".".join(
            json.dumps(p) if not re.fullmatch(r"[A-Za-z0-9_-]+", p) else p for p in table
        )
        raise EditError(
            f"[{shown}] is not a table of its own in the lab file: edit it in an editor"
        )
    start, end = span
    m = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=[ \t]*", re.M).search(text, start, end)
    if m is None:
        return f"{text[:start]}{key} = {value}\n{text[start:]}"
    stop = _value_end(text, m.end())
    return f"{text[: m.end()]}{value}{text[stop:]}"


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def records_value(records: str) -> str:
    """``[dns] records`` as a TOML literal multi-line string (no escapes to get wrong)."""
    body = records.replace("\r\n", "\n").strip("\n")
    if "'''" in body:
        raise EditError("the DNS records contain ''' : remove it (it would end the TOML string)")
    return f"'''\n{body}\n'''"


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not _NAME_RE.fullmatch(value):
        raise EditError(f"{what} {value!r} is not a DNS name (letters, digits, '-', '.')")
    return value


def parse_names(text: str) -> tuple[str, ...]:
    """A SAN list typed in the page: names separated by commas, spaces or lines."""
    return tuple(_name(n, "SAN") for n in re.split(r"[\s,]+", text) if n)


def edit_lab_text(
    text: str, *, records: str | None = None, certs: Mapping[str, CertEdit] | None = None
) -> str:
    """The lab file ``text`` with the page's edits made (module docstring).

    Raises:
        EditError: an edit the page cannot make on this file (one line).
    """
    if records is not None:
        if _table_span(text, ("dns",)) is None:
            text = text.rstrip("\n") + "\n\n[dns]\n"
        text = set_key(text, ("dns",), "records", records_value(records))
    for name, edit in (certs or {}).items():
        table = ("certs", name)
        if edit.cn is not None:
            text = set_key(text, table, "cn", _string(_name(edit.cn, "CN")))
        if edit.san is not None:
            text = set_key(text, table, "san", "[" + ", ".join(_string(n) for n in edit.san) + "]")
        if edit.issuer is not None:
            text = set_key(text, table, "issuer", _string(edit.issuer))
        if edit.validity is not None:
            if edit.validity not in VALIDITIES:
                raise EditError(
                    f"validity {edit.validity!r}: choose one of {', '.join(VALIDITIES)}"
                )
            text = set_key(text, table, "validity", _string(edit.validity))
        if edit.revoked is not None:
            text = set_key(text, table, "revoked", "true" if edit.revoked else "false")
    return text


def check_lab_text(text: str, *, path: Path, what: str = "") -> Lab:
    """Load ``text`` as the lab at ``path`` with every check ``fedsim run`` makes.

    Raises:
        LabError / FedsimError: the first problem, as ``file:line: ...``.
    """
    # Imported here: the runner pulls in the Edge, which this pure module does not need.
    from simulator.edge.app import lab_zones
    from simulator.run.runner import placeholder_ports

    lab = load_lab_text(text, path=path)
    lab_zones(lab)
    placeholder_ports(lab)
    if lab.exercise is None:
        if what:
            raise LabError(
                f"not {what}: it has no [exercise] table",
                path=str(path),
                fix="give an exercise of scenarios/exercises/ (or add an [exercise] table)",
            )
        raise LabError(
            "the [exercise] table is gone", path=str(path), fix="put it back: it says what to fix"
        )
    return lab


def form_edits(form: Mapping[str, str], lab: Lab) -> tuple[str | None, dict[str, CertEdit]]:
    """The page's edit form as edits: ``records`` and ``cn:NAME``, ``san:NAME``... fields."""
    records = form.get("records")
    certs: dict[str, CertEdit] = {}
    for spec in lab.certs:
        if spec.ca:
            continue
        got = {k: form.get(f"{k}:{spec.name}") for k in CERT_KEYS}
        if all(v is None for v in got.values()):
            continue
        cn = got["cn"]
        san = got["san"]
        issuer = got["issuer"]
        if issuer is not None and issuer not in {c.name for c in lab.certs if c.ca}:
            raise EditError(f"issuer {issuer!r} of {spec.name!r} is not a CA of this lab")
        revoked = got["revoked"]
        if revoked is not None and revoked not in REVOKED:
            raise EditError(f"revoked {revoked!r} of {spec.name!r}: choose no or yes")
        certs[spec.name] = CertEdit(
            cn=cn if cn is not None and cn.strip() != (spec.cn or "") else None,
            san=parse_names(san) if san is not None and parse_names(san) != _sans(spec) else None,
            issuer=issuer if issuer is not None and issuer != (spec.issuer or "") else None,
            validity=got["validity"] if got["validity"] not in (None, spec.validity) else None,
            revoked=(
                REVOKED[revoked]
                if revoked is not None and REVOKED[revoked] != spec.revoked
                else None
            ),
        )
    return records, certs


def _sans(spec: CertSpec) -> tuple[str, ...]:
    """The SANs a certificate gets (a leaf without ``san`` gets its CN)."""
    if spec.san is not None:
        return spec.san
    return (spec.cn,) if spec.cn else ()


@dataclass(slots=True, kw_only=True)
class ExerciseState:
    """One exercise being worked on: its lab as now, hints shown, the last check of each call.

    Attributes:
        name: the exercise's name (its file stem).
        source: the exercise file it was copied from.
        work: the working copy the Edge serves (the trainee may edit it).
        lab: the lab as last loaded from ``work``.
        hints_shown: how many hints the trainee has asked for.
        results: call number -> the last report of that call with the lab as now.
        error: the last edit or reload that was refused (one line), or None.
        generation: how many times the lab was (re)loaded.
    """

    name: str
    source: Path
    work: Path
    lab: Lab
    hints_shown: int = 0
    results: dict[int, CallReport] = field(default_factory=dict)
    error: str | None = None
    generation: int = 1

    @property
    def calls(self) -> tuple[int, ...]:
        assert self.lab.exercise is not None
        return self.lab.exercise.calls

    @property
    def hints(self) -> Sequence[str]:
        assert self.lab.exercise is not None
        return self.lab.exercise.hints[: self.hints_shown]

    @property
    def more_hints(self) -> int:
        assert self.lab.exercise is not None
        return len(self.lab.exercise.hints) - self.hints_shown

    @property
    def solved(self) -> bool:
        """Every call that defines "fixed" passed with the lab as it is now."""
        return all(n in self.results and self.results[n].verdict == "PASS" for n in self.calls)

    def reloaded(self, lab: Lab) -> None:
        """The lab changed: earlier checks no longer say anything."""
        self.lab = lab
        self.results.clear()
        self.error = None
        self.generation += 1


def find_exercise(name: str, folder: Path) -> Path:
    """The exercise file ``name`` names: a path, a file stem, its number, or a unique part.

    Raises:
        FedsimError: none or several match (the line lists them).
    """
    given = Path(name)
    if given.suffix == ".toml" and given.is_file():
        return given
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not files:
        raise FedsimError(
            f"no exercises in {folder}/ (run fedsim serve --exercise from the fedsim "
            "checkout, or give the exercise's .toml file)"
        )
    exact = [p for p in files if p.stem == name or p.stem.split("-", 1)[0] == name]
    found = exact or [p for p in files if name in p.stem]
    if len(found) != 1:
        names = ", ".join(p.stem for p in files)
        what = "matches several" if found else "matches none"
        raise FedsimError(f"--exercise {name!r} {what} of: {names}")
    return found[0]


__all__ = [
    "CERT_KEYS",
    "VALIDITIES",
    "CertEdit",
    "EditError",
    "ExerciseState",
    "check_lab_text",
    "edit_lab_text",
    "find_exercise",
    "form_edits",
    "parse_names",
    "records_value",
    "set_key",
]
