"""Load a lab file (TOML) strictly into a :class:`~simulator.lab.model.Lab`.

Strict means: every key is known, every value has the right type and shape,
every name refers to something defined, every file exists and is readable.
The first problem found raises :class:`~simulator.errors.LabError` with a
``path:line:`` prefix, the section and key, what is wrong and how to fix it::

    lab.toml:14: [edge] key 'listn': unknown key (did you mean 'listen'?)

This is deliberately the opposite of loaders that ignore unknown keys: a typo in
a lab file must not silently turn into a default (reference/style.md §8).
The only I/O here is reading the lab file and the files it names.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from simulator.diagnostics.catalogue import EVENT_14517
from simulator.errors import FedsimError, LabError
from simulator.lab.locate import KeyPath, Locator
from simulator.lab.model import (
    CALL_METHODS,
    CLIENT_OFFERS,
    DIRECTIONS,
    DOMAIN_SOURCES,
    FEDERATION_MODES,
    MEDIA_ENCRYPTIONS,
    MEDIA_REFUSALS,
    OFFERS,
    PEER_MEDIA,
    TLS_EXPECTATIONS,
    TLS_PROFILES,
    USERS_EXIST,
    AllowedPartner,
    CallSpec,
    CertFiles,
    CertRef,
    DnsConfig,
    EdgeConfig,
    Exercise,
    Expect,
    FrozenMap,
    HostPort,
    Lab,
    PeerConfig,
    PkiConfig,
    SipTimers,
    TrustRef,
    UserSpec,
)
from simulator.pki.spec import EKU_NAMES, CertSpec, KeyType, Validity
from simulator.policy.facts import (
    VERIFICATION_LEVELS,
    HostingProvider,
    TenantSettings,
    Verification,
)
from simulator.policy.profiles import (
    DEFAULT_PROFILE,
    PROFILE_NAMES,
    RULE_NAMES,
    RULE_RANGES,
    RULE_VALUES,
    EdgeRules,
    ProfileName,
    profile,
    with_rules,
)
from simulator.skype.media import DEFAULT_CODECS
from simulator.skype.presence import AVAILABILITIES

T = TypeVar("T")

#: The keys of one user's table in ``[edge] users``.
USER_KEYS = (
    "answer",
    "federation",
    "presence",
    "contacts",
    "media_encryption",
    "codecs",
    "ignore_ack",
    "hangup_after",
    "media_failure_after",
)
#: ``[edge.timers]`` keys: RFC 3261 T1 and T2 of the emulated users.
_TIMER_KEYS = ("t1", "t2")

#: The packaged seed lab (the Cisco note's lab), also a template users can copy.
SEED_LAB_RESOURCE: Final = "seed.toml"

_TOP_KEYS = ("name", "summary", "edge", "dns", "pki", "certs", "peers", "calls", "exercise")
_EXERCISE_KEYS = ("task", "hints", "calls")
_EDGE_KEYS = (
    "fqdn",
    "domains",
    "listen",
    "clients",
    "cert",
    "trust",
    "federation",
    "blocked",
    "allowed",
    "hosted",
    "users",
    "tls",
    "machine",
    "domain_source",
    "server_header",
    "dns",
    "profile",
    "seed",
    "rules",
    "hosting_providers",
    "tenant",
    "media_encryption",
    "media_refusal",
    "users_exist",
    "timers",
)
#: ``[[edge.hosting_providers]]`` keys (``New-CsHostingProvider``'s parameters).
_PROVIDER_KEYS = ("name", "proxy_fqdn", "verification", "shared_address_space", "enabled")
#: ``[edge.tenant]`` keys (``Set-CsTenantFederationConfiguration``'s parameters).
_TENANT_KEYS = (
    "allow_federated_users",
    "allowed_domains",
    "blocked_domains",
    "block_all_subdomains",
    "treat_discovered_as_unverified",
)
_PKI_KEYS = ("crl_listen",)
#: A CRL distribution point fedsim can fetch: http://host[:port]/path.
_CRL_URL_RE = re.compile(r"http://[A-Za-z0-9._-]+(?::\d{1,5})?/[!-~]*")
#: ``[edge.rules]`` keys: one per open behaviour (simulator.policy.profiles).
_RULE_KEYS: tuple[str, ...] = RULE_NAMES
#: Largest ``[edge] seed`` (Python's Random takes any int; TOML integers are 64-bit).
_SEED_MAX = 2**63 - 1
_ALLOWED_KEYS = ("domain", "proxy_fqdn")
_DNS_KEYS = ("listen", "zones", "records", "silent", "servfail")
_CERT_KEYS = (
    "ca",
    "public",
    "issuer",
    "cn",
    "san",
    "eku",
    "validity",
    "not_before",
    "not_after",
    "key_type",
    "revoked",
    "crl_url",
)
_CERT_FILE_KEYS = ("cert", "key", "chain")
_PEER_KEYS = (
    "cert",
    "trust",
    "answer",
    "listen",
    "tls",
    "require_client_cert",
    "media",
    "presence",
)
_CALL_KEYS = (
    "direction",
    "via",
    "from",
    "to",
    "pai",
    "route",
    "method",
    "expect",
    "offer",
    "ack",
    "hangup",
    "text",
    "expires",
    "refresh",
    "unsubscribe",
)
_EXPECT_KEYS = (
    "status",
    "edge_log",
    "ms_diagnostics",
    "ms_diagnostics_params",
    "forwarded",
    "rule",
    "edge_log_data",
    "peer_headers",
    "tls",
    "component",
    "windows_event",
    "media",
    "notify",
    "bye_after",
    "bye_headers",
    "text",
)
_VALIDITIES: tuple[Validity, ...] = ("valid", "expired", "not-yet-valid")
_KEY_TYPES: tuple[KeyType, ...] = ("ecdsa", "rsa")
#: File suffixes that make a ``trust`` entry a PEM path rather than a [certs] name.
_PEM_SUFFIXES = (".pem", ".crt", ".cer")

# RFC 1035 §2.3.1 / RFC 1123 §2.1 label: letters, digits, hyphens, not at the ends.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# DNS owner names may also carry underscore labels (_sipfederationtls._tcp).
_DNS_LABEL = r"(?:_?[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?|\*)"
_DNS_NAME_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_CERT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PEER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_MACHINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
# RFC 3261 §25.1 user part, loosely: anything but the characters that end it.
_USER_RE = re.compile(r"[^\s@:;<>\"]+")
_SIP_URI_RE = re.compile(r"(?i)(sips?):(?:([^\s@:;<>\"]+)@)?([^\s@:;<>\"]+)(?::(\d{1,5}))?(;\S*)?")
_METHOD_RE = re.compile(r"[A-Z]+")
_SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_TOML_POS_RE = re.compile(r"at line (\d+), column (\d+)")


class _Missing:
    """Marks an absent key (None is not usable: it is a legal default)."""


_MISSING: Final = _Missing()


# -- public API --------------------------------------------------------------------


def load_lab(path: Path) -> Lab:
    """Read and validate the lab file at ``path``.

    Raises:
        LabError: the file cannot be read, is not TOML, or breaks the lab format.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabError(
            f"cannot read lab file: {exc.strerror or exc}", path=str(path), fix="check the path"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LabError(
            "not UTF-8 text", path=str(path), line=line, fix="save the file as UTF-8"
        ) from None
    return load_lab_text(text, path=path)


def load_lab_text(text: str, *, path: Path) -> Lab:
    """Validate lab file ``text``; ``path`` names it in errors and anchors relative paths.

    Raises:
        LabError: the text is not TOML or breaks the lab format.
    """
    absolute = path if path.is_absolute() else Path.cwd() / path
    return _Loader(text, display=str(path), base=absolute.parent, stem=path.stem).lab(absolute)


def seed_lab_text() -> str:
    """Text of the packaged seed lab (commented; a template to copy)."""
    return resources.files(__package__).joinpath(SEED_LAB_RESOURCE).read_text(encoding="utf-8")


def builtin_lab() -> Lab:
    """The lab of the Cisco tech note, shipped as ``simulator/lab/seed.toml``.

    Used by ``fedsim serve`` without a file. Its ``path`` is None: it names no files.
    """
    loader = _Loader(seed_lab_text(), display=SEED_LAB_RESOURCE, base=Path.cwd(), stem="seed")
    return loader.lab(None)


def with_overrides(
    lab: Lab,
    *,
    listen: HostPort | None = None,
    clients: HostPort | None = None,
    dns_listen: HostPort | None = None,
) -> Lab:
    """Return ``lab`` with the given addresses replaced (command-line overrides).

    The Edge's resolver follows ``dns_listen`` when it pointed at the lab's own DNS
    (``[edge] dns`` unset), since it is derived from ``[dns] listen``.
    """
    edge = lab.edge
    if listen is not None:
        edge = replace(edge, listen=listen)
    if clients is not None:
        edge = replace(edge, clients=clients)
    dns = lab.dns if dns_listen is None else replace(lab.dns, listen=dns_listen)
    return replace(lab, edge=edge, dns=dns)


def parse_hostport(text: str, *, default_host: str = "127.0.0.1") -> HostPort:
    """Parse ``"127.0.0.1:5061"``, ``"[::1]:5061"`` or ``":53"`` into ``(host, port)``.

    Raises:
        ValueError: with a short reason, for anything else.
    """
    if text.startswith("["):
        m = re.fullmatch(r"\[([^\]]*)\]:(\d+)", text)
        if m is None:
            raise ValueError("expected [IPv6]:port")
        host, port_text = m.group(1), m.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError("missing ':port'")
        if ":" in host:
            raise ValueError("an IPv6 address needs brackets, as in [::1]:5061")
        if not host:
            host = default_host
        elif not _is_ip(host) and not _DOMAIN_RE.fullmatch(host):
            raise ValueError(f"{host!r} is neither an IP address nor a host name")
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is outside 0-65535")
    return host, port


def parse_host_port(text: str, *, what: str) -> HostPort:
    """Parse a command-line address option (``--listen 127.0.0.1:5061``) like a lab file's.

    Args:
        text: the option's value.
        what: the option's name, for the message (``"--listen"``).

    Raises:
        FedsimError: one line naming the option, the value and the expected form.
    """
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise FedsimError(
            f"{what} {text!r}: {exc} (write it as HOST:PORT, e.g. 127.0.0.1:5061 or [::1]:5061)"
        ) from None


# -- helpers -----------------------------------------------------------------------


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalize_domain(text: str) -> str | None:
    """``text`` as a lower-case domain name without trailing dot, or None if it is not one."""
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not _DOMAIN_RE.fullmatch(name):
        return None
    # RFC 3696 §2: a top-level label is never all-numeric (that is an IP address).
    if name.rsplit(".", 1)[-1].isdigit():
        return None
    return name.lower()


def _describe(value: object) -> str:
    """A TOML value's type in words, for 'expected X, got Y'."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dt.time):
        return "a time"
    return type(value).__name__


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _choices_fix(word: str, choices: Iterable[str], *, noun: str = "one of") -> str:
    choices = list(choices)
    guess = _suggest(word, choices)
    if guess is not None:
        return f"did you mean {guess!r}?"
    if not choices:
        return "none are defined"
    return f"{noun}: " + ", ".join(choices)


def _quote_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else f'"{key}"'


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- the loader --------------------------------------------------------------------


class _Table:
    """One TOML table being validated: its path, a title for messages, its keys."""

    def __init__(
        self,
        loader: _Loader,
        path: KeyPath,
        title: str,
        data: Mapping[str, Any],
        known: tuple[str, ...],
        *,
        prefix: str = "",
    ) -> None:
        self.loader = loader
        self.path = path
        self.title = title
        self.data = data
        self.prefix = prefix
        for key in data:
            if key not in known:
                raise self.error(
                    key, "unknown key", fix=_choices_fix(key, known, noun="known keys")
                )

    # errors

    def label(self, key: str) -> str:
        name = f"key '{self.prefix}{key}'"
        return f"{self.title} {name}" if self.title else name

    def error(
        self, key: str | None, what: str, *, fix: str | None = None, sub: KeyPath = ()
    ) -> LabError:
        if key is None:
            return self.loader.error(self.path, self.title or None, what, fix=fix)
        return self.loader.error((*self.path, key, *sub), self.label(key), what, fix=fix)

    def wrong_type(self, key: str, expected: str, value: object, example: str) -> LabError:
        return self.error(
            key,
            f"expected {expected}, got {_describe(value)}",
            fix=f"write {self.prefix}{key} = {example}",
        )

    # raw access

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str) -> Any:
        return self.data.get(key, _MISSING)

    def required(self, key: str, example: str) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            raise self.error(
                key, "missing required key", fix=f"write {self.prefix}{key} = {example}"
            )
        return value

    # typed access; `default` is returned when the key is absent

    def string(self, key: str, default: T, *, example: str, empty_ok: bool = False) -> str | T:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.wrong_type(key, "a string", value, example)
        if not empty_ok and not value.strip():
            raise self.error(key, "must not be empty", fix=f"write {self.prefix}{key} = {example}")
        return value

    def required_string(self, key: str, *, example: str) -> str:
        self.required(key, example)
        return cast(str, self.string(key, "", example=example))

    def boolean(self, key: str, default: T) -> bool | T:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.wrong_type(key, "true or false", value, "true")
        return value

    def status(self, key: str, default: T, *, example: str = "200") -> int | T:
        value = self.get(key)
        if value is _MISSING:
            return default
        return self.check_status(key, value, example=example)

    def check_status(self, key: str, value: object, *, example: str, sub: KeyPath = ()) -> int:
        if not _is_int(value):
            raise self.error(
                key,
                f"expected a SIP status code (100-699), got {_describe(value)}",
                fix=f"write {self.prefix}{key} = {example}",
                sub=sub,
            )
        status = cast(int, value)
        if not 100 <= status <= 699:
            raise self.error(
                key,
                f"{status} is not a SIP status code (100-699)",
                fix="use 200 to accept, 486 busy, 504 time-out, ...",
                sub=sub,
            )
        return status

    def seconds(self, key: str, default: T, *, example: str, positive: bool = False) -> float | T:
        """A duration in seconds: an integer or a decimal number, >= 0 (> 0 if ``positive``)."""
        value = self.get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong_type(key, "a number of seconds", value, example)
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")) or number < 0:
            raise self.error(key, f"{value} is not a number of seconds", fix=f"write {example}")
        if positive and number == 0:
            raise self.error(key, "must be more than 0 seconds", fix=f"write {example}")
        return number

    def choice(self, key: str, options: tuple[T, ...], default: T) -> T:
        value = self.get(key)
        if value is _MISSING:
            return default
        shown = " | ".join(f'"{o}"' for o in options)
        if not isinstance(value, str):
            raise self.wrong_type(key, f"one of {shown}", value, f'"{options[0]}"')
        if value not in options:
            raise self.error(
                key,
                f"{value!r} is not one of {shown}",
                fix=_choices_fix(value, [str(o) for o in options]),
            )
        return value

    def string_list(self, key: str, *, expected: str, example: str) -> list[str] | None:
        value = self.get(key)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            raise self.wrong_type(key, expected, value, example)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(
                    key,
                    f"item {index + 1}: expected a string, got {_describe(item)}",
                    fix=f"write {self.prefix}{key} = {example}",
                    sub=(index,),
                )
        return cast(list[str], value)

    def domain_value(self, key: str, value: str, *, sub: KeyPath = (), dns: bool = False) -> str:
        """Validate one domain name (``dns``: DNS owner names, underscores allowed)."""
        what = "item " + str(cast(int, sub[0]) + 1) + ": " if sub else ""
        if dns:
            name = value[:-1] if value.endswith(".") else value
            if name and len(name) <= 253 and _DNS_NAME_RE.fullmatch(name):
                return name.lower()
        else:
            normal = normalize_domain(value)
            if normal is not None:
                return normal
        raise self.error(
            key,
            f"{what}{value!r} is not a domain name",
            fix="use letters, digits and hyphens in dot-separated labels, e.g. steven.lab",
            sub=sub,
        )

    def domain(self, key: str, default: T, *, example: str) -> str | T:
        value = self.string(key, _MISSING, example=example)
        if isinstance(value, _Missing):
            return default
        return self.domain_value(key, value)

    def domain_list(self, key: str, *, example: str, dns: bool = False) -> tuple[str, ...] | None:
        items = self.string_list(key, expected="a list of domain names", example=example)
        if items is None:
            return None
        names = tuple(
            self.domain_value(key, item, sub=(i,), dns=dns) for i, item in enumerate(items)
        )
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.error(key, f"{name!r} is listed twice", sub=(i,))
        return names

    def hostport(self, key: str, default: T, *, example: str) -> HostPort | T:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.wrong_type(key, 'a "host:port" string', value, example)
        try:
            return parse_hostport(value)
        except ValueError as exc:
            raise self.error(
                key, f"{value!r} is not host:port: {exc}", fix=f"write {key} = {example}"
            ) from None

    def table(self, key: str, *, example: str) -> dict[str, Any] | None:
        value = self.get(key)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            raise self.wrong_type(key, "a table", value, example)
        return value


class _Loader:
    """Validates one document; knows its source for line numbers and relative paths."""

    def __init__(self, text: str, *, display: str, base: Path, stem: str) -> None:
        self.text = text
        self.display = display
        self.base = base
        self.stem = stem
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            m = _TOML_POS_RE.search(message)
            line = int(m.group(1)) if m else text.count("\n") + 1
            raise LabError(
                f"invalid TOML: {message}",
                path=display,
                line=line,
                fix="see https://toml.io for the syntax",
            ) from None
        self.locator = Locator(text)
        self.cert_specs: dict[str, CertSpec] = {}

    def error(self, path: KeyPath, label: str | None, what: str, *, fix: str | None) -> LabError:
        return LabError(what, path=self.display, line=self.locator.line(path), key=label, fix=fix)

    # -- document ------------------------------------------------------------------

    def lab(self, lab_path: Path | None) -> Lab:
        top = _Table(self, (), "", self.data, _TOP_KEYS)
        name = top.string("name", self.stem, example='"my-lab"')
        summary = top.string("summary", "", example='"what this lab shows"', empty_ok=True)
        self.certs(top)
        edge = self.edge(top)
        dns = self.dns(top)
        pki = self.pki(top)
        self.check_addresses(edge, dns, pki)
        peers = self.peers(top)
        calls = self.calls(top, peers)
        exercise = self.exercise(top, calls)
        return Lab(
            path=lab_path,
            name=name,
            summary=summary,
            edge=edge,
            dns=dns,
            pki=pki,
            certs=tuple(self.cert_specs.values()),
            peers=FrozenMap(peers),
            calls=calls,
            exercise=exercise,
        )

    def check_addresses(self, edge: EdgeConfig, dns: DnsConfig, pki: PkiConfig) -> None:
        """Refuse two listeners on one fixed TCP address (port 0 is always free)."""
        taken: dict[HostPort, str] = {}
        for path, label, addr in (
            (("edge", "listen"), "[edge] key 'listen'", edge.listen),
            (("edge", "clients"), "[edge] key 'clients'", edge.clients),
            (("dns", "listen"), "[dns] key 'listen'", dns.listen),
            (("pki", "crl_listen"), "[pki] key 'crl_listen'", pki.crl_listen),
        ):
            if addr[1] != 0 and addr in taken:
                raise self.error(
                    path,
                    label,
                    f"{addr[0]}:{addr[1]} is already used by {taken[addr]}",
                    fix="give each listener its own port",
                )
            taken[addr] = label

    def section(self, top: _Table, key: str, known: tuple[str, ...], example: str) -> _Table:
        data = top.table(key, example=example)
        if data is None:
            data = {}
        return _Table(self, (key,), f"[{key}]", data, known)

    # -- [certs] -------------------------------------------------------------------

    def certs(self, top: _Table) -> None:
        certs = top.table("certs", example="{ } (or [certs.NAME] tables)")
        if not certs:
            return
        holder = _Table(self, ("certs",), "[certs]", certs, tuple(certs))
        for name, value in certs.items():
            if not isinstance(value, dict):
                raise holder.error(
                    name,
                    f"expected a table [certs.{_quote_key(name)}], got {_describe(value)}",
                    fix=f"write [certs.{_quote_key(name)}] with ca/issuer/cn/san keys",
                )
            if not _CERT_NAME_RE.fullmatch(name) or name.lower().endswith(_PEM_SUFFIXES):
                raise holder.error(
                    name,
                    f"{name!r} is not a usable certificate name",
                    fix="letters, digits, '.', '_' and '-', not ending in .pem (it is a file stem)",
                )
        # Two passes: names first, so an issuer may be defined after what it issues.
        tables = {
            name: _Table(self, ("certs", name), f"[certs.{_quote_key(name)}]", value, _CERT_KEYS)
            for name, value in certs.items()
        }
        is_ca: dict[str, bool] = {}
        for name, t in tables.items():
            ca = t.boolean("ca", False)
            is_ca[name] = ca
        for name, t in tables.items():
            self.cert_specs[name] = self.cert(name, t, is_ca)
        self.check_issuer_cycles(tables)

    def cert(self, name: str, t: _Table, is_ca: Mapping[str, bool]) -> CertSpec:
        ca = is_ca[name]
        issuer = t.string("issuer", None, example='"public-root"')
        if issuer is not None:
            if issuer not in is_ca:
                raise t.error(
                    "issuer",
                    f"no certificate {issuer!r} in [certs]",
                    fix=_choices_fix(issuer, [n for n, c in is_ca.items() if c], noun="CAs"),
                )
            if issuer == name:
                raise t.error("issuer", "a certificate cannot issue itself", fix="omit issuer")
            if not is_ca[issuer]:
                raise t.error(
                    "issuer",
                    f"{issuer!r} is not a CA",
                    fix=f"add ca = true to [certs.{_quote_key(issuer)}]",
                )
        public = t.boolean("public", False)
        if public and not ca:
            raise t.error("public", "only a CA can be public", fix="add ca = true, or omit public")
        if public and issuer is not None:
            raise t.error(
                "public",
                "only a root CA (no issuer) can stand for a public CA",
                fix="omit public here and set it on the root",
            )
        cn = t.string("cn", None, example='"vcse.steven.lab"')
        if cn is None and not ca and t.get("san") is _MISSING:
            # A leaf named like a host ([certs."vcse.steven.lab"]) with neither cn nor
            # san is that host: CN = the name, SAN = the CN (CertSpec's default).
            cn = name
        san_list = t.string_list(
            "san", expected="a list of DNS names", example='["vcse.steven.lab"]'
        )
        san: tuple[str, ...] | None = None
        if san_list is not None:
            san = tuple(
                t.domain_value("san", item, sub=(i,), dns=True) for i, item in enumerate(san_list)
            )
        eku_list = t.string_list("eku", expected="a list of EKU names", example='["serverAuth"]')
        if eku_list is not None:
            for i, item in enumerate(eku_list):
                if item not in EKU_NAMES:
                    raise t.error(
                        "eku",
                        f"item {i + 1}: {item!r} is not a known extended key usage",
                        fix=_choices_fix(item, EKU_NAMES),
                        sub=(i,),
                    )
        validity = t.choice("validity", _VALIDITIES, "valid")
        not_before = self.datetime(t, "not_before")
        not_after = self.datetime(t, "not_after")
        if not_before and not_after and not_before >= not_after:
            raise t.error("not_after", "must be later than not_before")
        key_type = t.choice("key_type", _KEY_TYPES, "ecdsa")
        revoked = t.boolean("revoked", False)
        if revoked and issuer is None:
            raise t.error(
                "revoked",
                "a root (a certificate without issuer) has no CRL to be listed on",
                fix="revoke a certificate its CA issued, or omit revoked",
            )
        crl_url = t.string("crl_url", None, example='"http://127.0.0.1:1/lab-root.crl"')
        if crl_url is not None and not _CRL_URL_RE.fullmatch(crl_url):
            raise t.error(
                "crl_url",
                f"{crl_url!r} is not an http:// URL",
                fix='write crl_url = "http://host:port/ca.crl" (the Edge fetches CRLs over HTTP)',
            )
        if crl_url is not None and issuer is None:
            raise t.error(
                "crl_url", "a root names no CRL distribution point", fix="omit crl_url here"
            )
        spec = CertSpec(
            name=name,
            ca=ca,
            public=public,
            issuer=issuer,
            cn=cn,
            san=san,
            validity=validity,
            not_before=not_before,
            not_after=not_after,
            key_type=key_type,
            revoked=revoked,
            crl_url=crl_url,
        )
        # Absent eku keeps CertSpec's default (serverAuth + clientAuth).
        return spec if eku_list is None else replace(spec, eku=tuple(eku_list))

    def datetime(self, t: _Table, key: str) -> dt.datetime | None:
        value = t.get(key)
        if value is _MISSING:
            return None
        if not isinstance(value, dt.datetime):
            raise t.wrong_type(key, "a TOML date-time", value, "2024-01-01T00:00:00Z")
        # A local date-time is read as UTC, the only zone certificates speak.
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def check_issuer_cycles(self, tables: Mapping[str, _Table]) -> None:
        for name in tables:
            seen = [name]
            issuer = self.cert_specs[name].issuer
            while issuer is not None:
                if issuer in seen:
                    raise tables[name].error(
                        "issuer",
                        "issuers form a loop: " + " -> ".join([*seen, issuer]),
                        fix="one CA in the chain must be a root, without issuer",
                    )
                seen.append(issuer)
                issuer = self.cert_specs[issuer].issuer

    # -- files ---------------------------------------------------------------------

    def file(self, t: _Table, key: str, value: str, *, kind: str, sub: KeyPath = ()) -> Path:
        """Resolve ``value`` against the lab file's folder and check it is a readable file.

        ``kind``: "certificate" and "key" are checked to look like PEM of that kind.
        """
        if not value:
            raise t.error(key, "empty path", sub=sub)
        path = (self.base / Path(value).expanduser()).resolve()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise t.error(
                key,
                f"{value!r}: no such file ({path})",
                fix="paths are relative to the lab file",
                sub=sub,
            ) from None
        except IsADirectoryError:
            raise t.error(key, f"{value!r} is a directory ({path})", sub=sub) from None
        except OSError as exc:
            raise t.error(
                key, f"{value!r}: cannot read {path}: {exc.strerror or exc}", sub=sub
            ) from None
        if kind == "certificate" and b"-----BEGIN CERTIFICATE-----" not in data:
            raise t.error(
                key, f"{path} holds no PEM certificate", fix="use a PEM (Base-64) file", sub=sub
            )
        if kind == "key" and b"PRIVATE KEY-----" not in data:
            raise t.error(
                key, f"{path} holds no PEM private key", fix="use a PEM key file", sub=sub
            )
        return path

    def cert_ref(self, t: _Table, *, required: bool) -> CertRef:
        example = '"<a [certs] name>" or { cert = "x.pem", key = "x.key" }'
        value = t.required("cert", example) if required else t.get("cert")
        if isinstance(value, str):
            if value not in self.cert_specs:
                raise t.error(
                    "cert",
                    f"no certificate {value!r} in [certs]",
                    fix=_choices_fix(value, self.leaf_names(), noun="defined leaf certificates"),
                )
            if self.cert_specs[value].ca:
                raise t.error(
                    "cert",
                    f"{value!r} is a CA",
                    fix="name a leaf certificate, one without ca = true",
                )
            return value
        if isinstance(value, dict):
            files = _Table(self, (*t.path, "cert"), t.title, value, _CERT_FILE_KEYS, prefix="cert.")
            cert = files.required_string("cert", example='"x.pem"')
            key = files.required_string("key", example='"x.key"')
            chain = files.string("chain", None, example='"chain.pem"')
            return CertFiles(
                cert=self.file(files, "cert", cert, kind="certificate"),
                key=self.file(files, "key", key, kind="key"),
                chain=None
                if chain is None
                else self.file(files, "chain", chain, kind="certificate"),
            )
        raise t.wrong_type("cert", "a [certs] name or a table of files", value, example)

    def leaf_names(self) -> list[str]:
        return [n for n, s in self.cert_specs.items() if not s.ca]

    def trust(self, t: _Table) -> tuple[TrustRef, ...] | None:
        items = t.string_list(
            "trust", expected="a list of CA names or PEM paths", example='["public-root"]'
        )
        if items is None:
            return None
        out: list[TrustRef] = []
        for i, item in enumerate(items):
            if item.lower().endswith(_PEM_SUFFIXES):
                out.append(self.file(t, "trust", item, kind="certificate", sub=(i,)))
                continue
            cas = [n for n, s in self.cert_specs.items() if s.ca]
            if item not in self.cert_specs:
                raise t.error(
                    "trust",
                    f"item {i + 1}: no CA {item!r} in [certs]",
                    fix=_choices_fix(item, cas, noun="defined CAs")
                    + "; PEM paths must end in .pem",
                    sub=(i,),
                )
            if not self.cert_specs[item].ca:
                raise t.error(
                    "trust",
                    f"item {i + 1}: {item!r} is not a CA, so it cannot be trusted as one",
                    fix=_choices_fix(item, cas, noun="defined CAs"),
                    sub=(i,),
                )
            out.append(item)
        return tuple(out)

    # -- [edge] --------------------------------------------------------------------

    def edge(self, top: _Table) -> EdgeConfig:
        if not top.has("edge"):
            raise top.error(
                "edge", "missing [edge] section", fix="add [edge] with fqdn, domains, cert, trust"
            )
        t = self.section(top, "edge", _EDGE_KEYS, '{ fqdn = "sip.skype.lab", ... }')
        fqdn = t.required("fqdn", '"sip.skype.lab"')
        fqdn = t.domain("fqdn", fqdn, example='"sip.skype.lab"')
        t.required("domains", '["skype.lab"]')
        domains = t.domain_list("domains", example='["skype.lab"]') or ()
        if not domains:
            raise t.error(
                "domains", "needs at least one SIP domain", fix='write domains = ["skype.lab"]'
            )
        listen = t.hostport("listen", ("127.0.0.1", 5061), example='"127.0.0.1:5061"')
        clients = t.hostport("clients", ("127.0.0.1", 5062), example='"127.0.0.1:5062"')
        t.required("trust", '["public-root"]')
        trust = self.trust(t) or ()
        self.maybe_default_edge_cert(t, fqdn, trust)
        cert = self.cert_ref(t, required=True)
        federation = t.choice("federation", FEDERATION_MODES, "discovery")
        blocked = t.domain_list("blocked", example='["blocked.example"]') or ()
        allowed = self.allowed(t, blocked)
        name: ProfileName = t.choice("profile", PROFILE_NAMES, DEFAULT_PROFILE)
        product = profile(name)
        providers = self.hosting_providers(t, allowed)
        tenant = self.tenant(t, name)
        return EdgeConfig(
            fqdn=fqdn,
            domains=domains,
            listen=listen,
            clients=clients,
            cert=cert,
            trust=trust,
            federation=federation,
            blocked=blocked,
            allowed=allowed,
            # Explicit keys override the profile (hosted, tls, server_header).
            hosted=t.boolean("hosted", product.public_ca_only),
            users=self.users(t),
            tls=t.choice("tls", TLS_PROFILES, name),
            machine=self.machine(t),
            server_header=self.server_header(t, product.server_header),
            dns=t.hostport("dns", None, example='"127.0.0.1:5353"'),
            profile=name,
            rules=self.rules(t, product.rules),
            seed=self.seed(t),
            hosting_providers=providers,
            tenant=tenant,
            media_encryption=t.choice("media_encryption", MEDIA_ENCRYPTIONS, "required"),
            media_refusal=t.choice("media_refusal", MEDIA_REFUSALS, "diagnostics"),
            users_exist=t.choice("users_exist", USERS_EXIST, "any"),
            timers=self.timers(t),
        )

    def timers(self, t: _Table) -> SipTimers:
        """``[edge.timers]``: T1 and T2 (RFC 3261 §17.1.1.1), T1 <= T2."""
        value = t.table("timers", example="{ t1 = 0.5, t2 = 4.0 }")
        if value is None:
            return SipTimers()
        r = _Table(self, ("edge", "timers"), "[edge.timers]", value, _TIMER_KEYS)
        t1 = cast(float, r.seconds("t1", 0.5, example="t1 = 0.5", positive=True))
        t2 = cast(float, r.seconds("t2", max(4.0, t1), example="t2 = 4.0", positive=True))
        if t2 < t1:
            raise r.error("t2", f"{t2:g} is shorter than t1 ({t1:g})", fix="make t2 >= t1")
        return SipTimers(t1=t1, t2=t2)

    def rules(self, t: _Table, defaults: EdgeRules) -> EdgeRules:
        """``[edge.rules]`` over the profile's defaults; ``[edge] domain_source`` still works."""
        changes: dict[str, object] = {}
        old = t.choice("domain_source", DOMAIN_SOURCES, None)
        value = t.table("rules", example='{ client_eku = "ignore" }')
        if value is not None:
            r = _Table(self, ("edge", "rules"), "[edge.rules]", value, _RULE_KEYS)
            for key in value:
                if key in RULE_RANGES:
                    changes[key] = self.rule_number(r, key)
                    continue
                options = RULE_VALUES[key]
                if isinstance(options[0], bool):
                    changes[key] = r.boolean(key, False)
                elif isinstance(options[0], int):
                    changes[key] = self.rule_status(r, key, cast(tuple[int, ...], options))
                else:
                    changes[key] = r.choice(key, cast(tuple[str, ...], options), "")
            if old is not None and "domain_source" in changes and changes["domain_source"] != old:
                raise t.error(
                    "domain_source",
                    "set twice, differently: here and in [edge.rules]",
                    fix="keep [edge.rules] domain_source only (the [edge] key is the old spelling)",
                )
        if old is not None:
            changes.setdefault("domain_source", old)
        return with_rules(defaults, changes)

    def rule_number(self, r: _Table, key: str) -> int:
        """A whole-number rule (``discovered_rate = 20``) within its bounds."""
        low, high = RULE_RANGES[key]
        value = r.get(key)
        if not _is_int(value) or not low <= cast(int, value) <= high:
            raise r.error(
                key,
                f"expected a whole number from {low} to {high}, got {value!r}",
                fix=f"write {key} = {EdgeRules.__dataclass_fields__[key].default}",
            )
        return cast(int, value)

    def rule_status(self, r: _Table, key: str, options: tuple[int, ...]) -> int:
        """A rule that takes one of a few SIP statuses (``discovered_refusal = 503``)."""
        value = r.get(key)
        if not _is_int(value) or value not in options:
            shown = ", ".join(str(o) for o in options)
            raise r.error(
                key, f"{value!r} is not one of {shown}", fix=f"write {key} = {options[0]}"
            )
        return cast(int, value)

    def hosting_providers(
        self, t: _Table, allowed: tuple[AllowedPartner, ...]
    ) -> tuple[HostingProvider, ...]:
        """``[[edge.hosting_providers]]``; one FQDN both pinned and a provider stops the lab."""
        example = '[{ name = "Office365", proxy_fqdn = "sipfed.online.lync.com" }]'
        value = t.get("hosting_providers")
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            raise t.wrong_type("hosting_providers", "a list of provider tables", value, example)
        providers: list[HostingProvider] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise t.error(
                    "hosting_providers",
                    f"item {i + 1}: expected a table, got {_describe(item)}",
                    fix='write [[edge.hosting_providers]] then proxy_fqdn = "..."',
                    sub=(i,),
                )
            p = _Table(
                self,
                ("edge", "hosting_providers", i),
                f"[[edge.hosting_providers]] #{i + 1}",
                item,
                _PROVIDER_KEYS,
            )
            fqdn = p.domain(
                "proxy_fqdn",
                p.required("proxy_fqdn", '"sipfed.online.lync.com"'),
                example='"sipfed.online.lync.com"',
            )
            name = p.string("name", fqdn, example='"Office365"')
            if any(q.proxy_fqdn == fqdn for q in providers):
                raise p.error("proxy_fqdn", f"{fqdn!r} is a hosting provider twice")
            if any(q.name == name for q in providers):
                raise p.error("name", f"{name!r} names two hosting providers")
            pinned = next((a for a in allowed if a.proxy_fqdn == fqdn), None)
            if pinned is not None:
                # Field cases C7: the Access Edge service refuses to start (event 14517).
                raise p.error(
                    "proxy_fqdn",
                    f"{fqdn} is also the proxy_fqdn of the allowed partner {pinned.domain}: an "
                    "Access Edge with one server both an allowed partner server and a hosting "
                    "provider does not start",
                    fix=f"remove proxy_fqdn from the [[edge.allowed]] entry of {pinned.domain} "
                    "and keep the hosting provider",
                ).with_details("Event 14517: " + EVENT_14517[0], EVENT_14517[1].format(fqdn=fqdn))
            verification: Verification = p.choice(
                "verification", VERIFICATION_LEVELS, "AlwaysVerifiable"
            )
            providers.append(
                HostingProvider(
                    name=name,
                    proxy_fqdn=fqdn,
                    verification=verification,
                    shared_address_space=cast(bool, p.boolean("shared_address_space", False)),
                    enabled=cast(bool, p.boolean("enabled", True)),
                )
            )
        return tuple(providers)

    def tenant(self, t: _Table, name: ProfileName) -> TenantSettings | None:
        """``[edge.tenant]``: the Office 365 tenant's federation, instead of the Edge's lists."""
        value = t.table("tenant", example="{ allowed_domains = [] }")
        if value is None:
            return None
        if name != "office365":
            raise t.error(
                "tenant",
                f"the tenant's federation settings belong to Office 365, not profile {name!r}",
                fix='set [edge] profile = "office365", or use federation/allowed/blocked',
            )
        for key in ("federation", "allowed", "blocked"):
            if t.has(key):
                raise t.error(
                    key,
                    "with [edge.tenant] the tenant's lists decide",
                    fix="use [edge.tenant] allow_federated_users, allowed_domains, "
                    "blocked_domains instead",
                )
        r = _Table(self, ("edge", "tenant"), "[edge.tenant]", value, _TENANT_KEYS)
        return TenantSettings(
            allow_federated_users=cast(bool, r.boolean("allow_federated_users", True)),
            allowed_domains=r.domain_list("allowed_domains", example='["steven.lab"]') or (),
            blocked_domains=r.domain_list("blocked_domains", example='["blocked.lab"]') or (),
            block_all_subdomains=cast(bool, r.boolean("block_all_subdomains", False)),
            treat_discovered_as_unverified=cast(
                bool, r.boolean("treat_discovered_as_unverified", False)
            ),
        )

    def pki(self, top: _Table) -> PkiConfig:
        t = self.section(top, "pki", _PKI_KEYS, '{ crl_listen = "127.0.0.1:8081" }')
        return PkiConfig(
            crl_listen=t.hostport("crl_listen", ("127.0.0.1", 0), example='"127.0.0.1:8081"')
        )

    def seed(self, t: _Table) -> int | None:
        value = t.get("seed")
        if value is _MISSING:
            return None
        if not _is_int(value) or not 0 <= cast(int, value) <= _SEED_MAX:
            raise t.error(
                "seed",
                f"expected a non-negative integer, got {_describe(value)}",
                fix="write seed = 1234 (any whole number; the same seed replays the same run)",
            )
        return cast(int, value)

    def maybe_default_edge_cert(self, t: _Table, fqdn: str, trust: tuple[TrustRef, ...]) -> None:
        """Define the Edge's own certificate when ``cert`` names the fqdn and [certs] does not.

        The Edge certificate is boilerplate in most labs (DESIGN.md's example names
        ``cert = "sip.skype.lab"`` without a ``[certs."sip.skype.lab"]`` table), so it
        defaults to a leaf with CN and SAN = fqdn, issued by the first trusted lab CA.
        Any other undefined name stays an error.
        """
        name = t.get("cert")
        if not isinstance(name, str) or name in self.cert_specs or name.lower() != fqdn:
            return
        issuer = next((n for n in trust if isinstance(n, str)), None)
        if issuer is None:
            raise t.error(
                "cert",
                f"no certificate {name!r} in [certs], and no lab CA in trust to issue one",
                fix=f'define [certs."{name}"] with issuer = "<a CA>"',
            )
        self.cert_specs[name] = CertSpec(name=name, issuer=issuer, cn=fqdn, san=(fqdn,))

    def allowed(self, t: _Table, blocked: tuple[str, ...]) -> tuple[AllowedPartner, ...]:
        example = '[{ domain = "steven.lab" }] (or [[edge.allowed]] tables)'
        value = t.get("allowed")
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            raise t.wrong_type("allowed", "a list of partner tables", value, example)
        partners: list[AllowedPartner] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise t.error(
                    "allowed",
                    f"item {i + 1}: expected a table, got {_describe(item)}",
                    fix='write [[edge.allowed]] then domain = "steven.lab"',
                    sub=(i,),
                )
            p = _Table(
                self, ("edge", "allowed", i), f"[[edge.allowed]] #{i + 1}", item, _ALLOWED_KEYS
            )
            domain = p.domain(
                "domain", p.required("domain", '"steven.lab"'), example='"steven.lab"'
            )
            if domain in blocked:
                raise p.error(
                    "domain",
                    f"{domain!r} is both blocked and allowed",
                    fix="remove it from one list; Skype for Business refuses both too",
                )
            if any(q.domain == domain for q in partners):
                raise p.error("domain", f"{domain!r} is allowed twice", fix="keep one entry")
            proxy = p.domain("proxy_fqdn", None, example='"vcse.steven.lab"')
            partners.append(AllowedPartner(domain=domain, proxy_fqdn=proxy))
        return tuple(partners)

    def users(self, t: _Table) -> FrozenMap[str, UserSpec]:
        users = t.table("users", example="{ bob = 486 }")
        if users is None:
            return FrozenMap()
        out: dict[str, UserSpec] = {}
        for user, value in users.items():
            if not _USER_RE.fullmatch(user):
                raise t.error(
                    "users",
                    f"{user!r} is not a SIP user name",
                    fix="write the user part only, e.g. { stejanss = 200 }",
                    sub=(user,),
                )
            if isinstance(value, dict):
                out[user] = self.user_table(t, user, value)
                continue
            status = t.check_status("users", value, example="{ bob = 486 }", sub=(user,))
            out[user] = UserSpec(answer=status)
        return FrozenMap(out)

    def user_table(self, t: _Table, user: str, value: dict[str, Any]) -> UserSpec:
        """``carol = { federation = false }``: one user's table (unknown keys are errors)."""
        if not set(value) <= set(USER_KEYS):
            # A dotted user name unquoted reads as a table of its last labels.
            first = next(k for k in value if k not in USER_KEYS)
            raise t.error(
                "users",
                f"'{user}' has unknown key {first!r} ({_choices_fix(first, USER_KEYS)}); "
                "quote user names that contain dots",
                fix=f'write {{ "{user}.{first}" = 200 }} or {{ {user} = {{ answer = 486 }} }}',
                sub=(user,),
            )
        u = _Table(
            self,
            (*t.path, "users", user),
            t.title,
            value,
            USER_KEYS,
            prefix=f"users.{_quote_key(user)}.",
        )
        contacts = u.string_list(
            "contacts", expected="a list of SIP URIs", example='["sip:bob@partner.lab"]'
        )
        presence = cast(str, u.string("presence", "online", example='"busy"'))
        if presence.strip().lower() not in AVAILABILITIES:
            raise u.error(
                "presence",
                f"{presence!r} is not a presence state",
                fix=_choices_fix(presence, list(AVAILABILITIES)),
            )
        codecs = u.string_list(
            "codecs", expected="a list of encoding names", example='["G722", "PCMU"]'
        )
        if codecs is not None and not codecs:
            raise u.error(
                "codecs",
                "an empty list accepts no call at all",
                fix=f"name the encodings the client accepts, e.g. {list(DEFAULT_CODECS[:4])}",
            )
        return UserSpec(
            answer=cast(int, u.status("answer", 200, example="486")),
            federation=cast(bool, u.boolean("federation", True)),
            presence=presence.strip().lower(),
            contacts=tuple(contacts or ()),
            media_encryption=u.choice("media_encryption", MEDIA_ENCRYPTIONS, None),
            codecs=None if codecs is None else tuple(codecs),
            ignore_ack=cast(bool, u.boolean("ignore_ack", False)),
            hangup_after=u.seconds("hangup_after", None, example="hangup_after = 5"),
            media_failure_after=u.seconds(
                "media_failure_after", None, example="media_failure_after = 3"
            ),
        )

    def machine(self, t: _Table) -> str:
        machine = t.string("machine", "sfvedge", example='"sfvedge"')
        if not _MACHINE_RE.fullmatch(machine):
            raise t.error(
                "machine", f"{machine!r} is not a host name", fix='write machine = "sfvedge"'
            )
        return machine

    def server_header(self, t: _Table, default: str) -> str:
        value = t.string("server_header", default, example='"RTC/6.0"')
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise t.error(
                "server_header", "must be one line of text", fix='write server_header = "RTC/6.0"'
            )
        return value

    # -- [dns] ---------------------------------------------------------------------

    def dns(self, top: _Table) -> DnsConfig:
        t = self.section(top, "dns", _DNS_KEYS, '{ listen = "127.0.0.1:5353" }')
        zones = t.string_list("zones", expected="a list of zone file paths", example='["lab.zone"]')
        records = t.string("records", "", example='"""...zone lines..."""', empty_ok=True)
        return DnsConfig(
            listen=t.hostport("listen", ("127.0.0.1", 5353), example='"127.0.0.1:5353"'),
            zones=tuple(
                self.file(t, "zones", z, kind="zone", sub=(i,)) for i, z in enumerate(zones or ())
            ),
            records=records,
            records_line=self.locator.value_line(("dns", "records")) if records else 0,
            silent=t.domain_list("silent", example='["timeout.steven.lab"]', dns=True) or (),
            servfail=t.domain_list("servfail", example='["broken.steven.lab"]', dns=True) or (),
        )

    # -- [peers] -------------------------------------------------------------------

    def peers(self, top: _Table) -> dict[str, PeerConfig]:
        peers = top.table("peers", example="{ } (or [peers.NAME] tables)")
        if not peers:
            return {}
        holder = _Table(self, ("peers",), "[peers]", peers, tuple(peers))
        out: dict[str, PeerConfig] = {}
        for name, value in peers.items():
            if not isinstance(value, dict):
                raise holder.error(
                    name,
                    f"expected a table [peers.{_quote_key(name)}], got {_describe(value)}",
                    fix=f'write [peers.{_quote_key(name)}] with cert = "..."',
                )
            if not _PEER_NAME_RE.fullmatch(name):
                raise holder.error(
                    name, f"{name!r} is not a usable peer name", fix="letters, digits, '_' and '-'"
                )
            t = _Table(self, ("peers", name), f"[peers.{name}]", value, _PEER_KEYS)
            out[name] = PeerConfig(
                name=name,
                cert=self.cert_ref(t, required=True),
                trust=self.trust(t) or (),
                answer=t.status("answer", 200),
                listen=t.hostport("listen", None, example='"127.0.0.1:0"'),
                tls=t.choice("tls", TLS_PROFILES, "default"),
                require_client_cert=t.boolean("require_client_cert", True),
                media=t.choice("media", PEER_MEDIA, "auto"),
                presence=t.choice("presence", tuple(AVAILABILITIES), "online"),
            )
        return out

    # -- [exercise] ----------------------------------------------------------------

    def exercise(self, top: _Table, calls: tuple[CallSpec, ...]) -> Exercise | None:
        """``[exercise]``: a broken lab for training (task, hints, the calls that judge it)."""
        if not top.has("exercise"):
            return None
        t = self.section(top, "exercise", _EXERCISE_KEYS, '{ task = "..." }')
        task = t.required_string("task", example='"Make call 1 reach stejanss@skype.lab"')
        hints = t.string_list("hints", expected="a list of strings", example='["Look at ..."]')
        numbers = t.get("calls")
        if numbers is _MISSING:
            chosen = tuple(range(1, len(calls) + 1))
        else:
            example = "[1, 2]"
            if not isinstance(numbers, list) or not numbers:
                raise t.wrong_type("calls", "a non-empty list of call numbers", numbers, example)
            for i, n in enumerate(numbers):
                if not _is_int(n) or not 1 <= n <= len(calls):
                    raise t.error(
                        "calls",
                        f"item {i + 1}: {n!r} is not a call of this lab "
                        f"(it has {len(calls)} [[calls]])",
                        fix=f"write calls = {example}: numbers of [[calls]] entries, from 1",
                        sub=(i,),
                    )
            chosen = tuple(dict.fromkeys(cast(list[int], numbers)))
        if not chosen:
            raise t.error(
                None,
                "an exercise without calls cannot be checked",
                fix="add [[calls]] whose expect says what 'fixed' means",
            )
        return Exercise(
            task=task,
            hints=tuple(hints or ()),
            calls=chosen,
            line=self.locator.line(("exercise",)),
        )

    # -- [[calls]] -----------------------------------------------------------------

    def calls(self, top: _Table, peers: Mapping[str, PeerConfig]) -> tuple[CallSpec, ...]:
        value = top.get("calls")
        if value is _MISSING:
            return ()
        example = "[[calls]] tables"
        if not isinstance(value, list):
            raise top.error(
                "calls",
                f"expected a list of tables, got {_describe(value)}",
                fix="write each call as a [[calls]] table",
            )
        calls: list[CallSpec] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise top.error(
                    "calls",
                    f"item {i + 1}: expected a table, got {_describe(item)}",
                    fix=f"write {example}",
                    sub=(i,),
                )
            t = _Table(self, ("calls", i), f"[[calls]] #{i + 1}", item, _CALL_KEYS)
            calls.append(self.call(t, peers))
        return tuple(calls)

    def call(self, t: _Table, peers: Mapping[str, PeerConfig]) -> CallSpec:
        t.required("direction", '"inbound"')
        direction = t.choice("direction", DIRECTIONS, "inbound")
        via = t.string("via", None, example='"expe"')
        if via is None and direction == "inbound":
            raise t.error(
                "via",
                "missing required key: an inbound call is placed by a peer",
                fix=_choices_fix("", list(peers), noun="write via = one of")
                if peers
                else 'define [peers.expe] with cert = "..." and write via = "expe"',
            )
        if via is not None and via not in peers:
            raise t.error(
                "via",
                f"no peer {via!r} in [peers]",
                fix=_choices_fix(via, list(peers), noun="defined peers"),
            )
        from_ = self.sip_uri(t, "from", required=True)
        to = self.sip_uri(t, "to", required=True)
        pai = self.sip_uri(t, "pai", required=False)
        route = t.string("route", None, example='"<sip:sip.skype.lab;lr>"')
        if route is not None and any(c in route for c in "\r\n"):
            raise t.error("route", "a Route header is one line", fix='write route = "<sip:...;lr>"')
        if route is not None and direction != "inbound":
            raise t.error(
                "route",
                "only an inbound call (the Expressway-E's request) carries a Route here",
                fix="remove route, or make the call inbound",
            )
        method = t.string("method", "INVITE", example='"INVITE"')
        if not _METHOD_RE.fullmatch(method):
            raise t.error(
                "method", f"{method!r} is not a SIP method", fix='upper case, e.g. "INVITE"'
            )
        if method not in CALL_METHODS:
            raise t.error(
                "method",
                f"{method!r}: a call starts with one of {', '.join(CALL_METHODS)}",
                fix=_choices_fix(method, CALL_METHODS),
            )
        expires = t.get("expires")
        if expires is not _MISSING and (not _is_int(expires) or cast(int, expires) < 0):
            raise t.error(
                "expires",
                f"expected a number of seconds (0 or more), got {_describe(expires)}",
                fix="write expires = 3600",
            )
        for key in ("expires", "refresh", "unsubscribe"):
            if t.has(key) and method != "SUBSCRIBE":
                raise t.error(key, "only a SUBSCRIBE has it", fix='add method = "SUBSCRIBE"')
        for key in ("offer", "ack", "hangup"):
            if t.has(key) and method != "INVITE":
                raise t.error(key, "only an INVITE has it", fix="remove it, or call with INVITE")
        offer = t.choice("offer", OFFERS, None)
        if offer is not None and direction == "outbound" and offer not in CLIENT_OFFERS:
            raise t.error(
                "offer",
                f"a Skype client does not offer {offer!r}",
                fix=f"use one of {', '.join(CLIENT_OFFERS)} (or call inbound)",
            )
        return CallSpec(
            offer=offer,
            ack=cast(bool, t.boolean("ack", True)),
            hangup=cast(bool, t.boolean("hangup", True)),
            text=t.string("text", None, example='"Hello"'),
            expires=None if expires is _MISSING else cast(int, expires),
            refresh=cast(bool, t.boolean("refresh", False)),
            unsubscribe=cast(bool, t.boolean("unsubscribe", True)),
            direction=direction,
            via=via,
            from_=cast(str, from_),
            to=cast(str, to),
            pai=pai,
            route=route,
            method=method,
            expect=self.expect(t),
            line=self.locator.line(t.path),
        )

    def sip_uri(self, t: _Table, key: str, *, required: bool) -> str | None:
        example = '"sip:2000@acano.steven.lab"'
        if required:
            t.required(key, example)
        value = t.string(key, None, example=example)
        if value is None:
            return None
        m = _SIP_URI_RE.fullmatch(value)
        if m is None or (normalize_domain(m.group(3)) is None and not _is_ip(m.group(3))):
            raise t.error(key, f"{value!r} is not a SIP URI", fix=f"write {key} = {example}")
        if m.group(4) is not None and int(m.group(4)) > 65535:
            raise t.error(key, f"{value!r}: port is outside 0-65535")
        return value

    def string_table(self, e: _Table, key: str, example: str) -> dict[str, str] | None:
        """A table of string values (``edge_log_data``, ``peer_headers``)."""
        value = e.table(key, example=example)
        if value is None:
            return None
        for name, item in value.items():
            if not isinstance(item, str):
                raise e.error(
                    key,
                    f"{name!r}: expected a string, got {_describe(item)}",
                    fix=f"write {key} = {example}",
                    sub=(name,),
                )
        return cast(dict[str, str], value)

    def expect(self, t: _Table) -> Expect:
        example = "{ status = 504 }"
        value = t.required("expect", example)
        if not isinstance(value, dict):
            raise t.wrong_type("expect", "a table", value, example)
        e = _Table(self, (*t.path, "expect"), t.title, value, _EXPECT_KEYS, prefix="expect.")
        if not value:
            raise t.error(
                "expect",
                "expects nothing, so the call cannot fail",
                fix=f"write expect = {example}",
            )
        edge_log = e.string("edge_log", None, example='"SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"')
        if edge_log is not None and not _SYMBOL_RE.fullmatch(edge_log):
            raise e.error(
                "edge_log",
                f"{edge_log!r} is not a Result-Code symbol",
                fix='write the symbol only, e.g. "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"',
            )
        diag = e.get("ms_diagnostics")
        if diag is not _MISSING and (not _is_int(diag) or not 0 < cast(int, diag) < 100000):
            raise e.error(
                "ms_diagnostics",
                f"expected an ms-diagnostics ErrorId (a positive integer), got {diag!r}",
                fix="write expect.ms_diagnostics = 1009",
            )
        params = e.table("ms_diagnostics_params", example='{ domain = "cms.steven.lab" }')
        if params is not None:
            if diag is _MISSING:
                raise e.error(
                    "ms_diagnostics_params",
                    "parameters without an ErrorId",
                    fix="add ms_diagnostics = <ErrorId> next to it",
                )
            for pk, pv in params.items():
                if not isinstance(pv, str):
                    raise e.error(
                        "ms_diagnostics_params",
                        f"parameter {pk!r}: expected a string, got {_describe(pv)}",
                        fix=f'write {pk} = "{pv}"',
                        sub=(pk,),
                    )
        event = e.get("windows_event")
        if event is not _MISSING and (not _is_int(event) or not 0 < cast(int, event) < 65536):
            raise e.error(
                "windows_event",
                f"expected a Windows event id, got {event!r}",
                fix="write expect.windows_event = 14508",
            )
        notify = e.get("notify")
        if notify is _MISSING:
            notify = None
        elif isinstance(notify, list) and all(isinstance(n, str) for n in notify):
            notify = tuple(notify)
        elif not isinstance(notify, str):
            raise e.wrong_type(
                "notify",
                "an availability, or a list of NOTIFYs",
                notify,
                '"busy" or ["active busy", "terminated busy"]',
            )
        return Expect(
            component=e.string(
                "component", None, example='"Exit - route headers from untrusted source."'
            ),
            windows_event=None if event is _MISSING else cast(int, event),
            media=e.string("media", None, example='"RTP/SAVP"'),
            notify=notify,
            bye_after=e.seconds("bye_after", None, example="expect.bye_after = 32"),
            bye_headers=self.string_table(e, "bye_headers", '{ ms-client-diagnostics = "" }') or {},
            text=e.string("text", None, example='"Hello"', empty_ok=True),
            edge_log_data=self.string_table(e, "edge_log_data", '{ domain = "acano.steven.lab" }'),
            peer_headers=self.string_table(e, "peer_headers", '{ Server = "RTC/6.0" }') or {},
            tls=e.choice("tls", TLS_EXPECTATIONS, None),
            status=e.status("status", None, example="504"),
            edge_log=edge_log,
            ms_diagnostics=None if diag is _MISSING else cast(int, diag),
            ms_diagnostics_params=FrozenMap(params or {}),
            forwarded=e.boolean("forwarded", None),
            rule=e.string("rule", None, example='"srv-in-domain"'),
        )


__all__ = [
    "builtin_lab",
    "load_lab",
    "load_lab_text",
    "normalize_domain",
    "parse_host_port",
    "parse_hostport",
    "seed_lab_text",
    "with_overrides",
]
