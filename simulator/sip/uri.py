"""SIP and SIPS URIs, name-addr / addr-spec, and Via values (RFC 3261 §19.1, §20).

Every parsed value keeps the text it came from closely enough that ``str()``
gives it back: URI parts are kept escaped as written (RFC 3261 §19.1.4 says
compare unescaped, but a relay must not rewrite), and a Via that was never
modified renders its original text byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from simulator.sip import abnf
from simulator.sip.builder import builder_for
from simulator.sip.errors import SipParseError
from simulator.sip.headers import split_top_level

__all__ = [
    "AbsoluteUri",
    "NameAddr",
    "Param",
    "SipUri",
    "Via",
    "parse_name_addr",
    "parse_params",
    "parse_uri",
    "parse_via",
]

#: One ``;name[=value]`` parameter; value None means the parameter has no "=".
Param = tuple[str, str | None]

#: The parser checks the same grammar as the dataclasses' ``__post_init__``;
#: checking twice costs about a third of the parse time of a typical INVITE,
#: so parsed values are filled in through the ``_*_BUILDER`` classes below
#: (builder.py: plain attribute stores, then the frozen class) and skip the check.


def _fail(message: str, text: str) -> SipParseError:
    return SipParseError(message, offending=text.encode("utf-8", "surrogateescape"))


def _find_param(params: tuple[Param, ...], name: str) -> str | None:
    low = name.lower()
    for pname, pvalue in params:
        if pname.lower() == low:
            return pvalue
    return None


def _render_params(params: tuple[Param, ...]) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def _check_ipv6_reference(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        raise _fail(f"bad IPv6 reference {host!r}", text) from None


def _check_host(host: str, text: str) -> None:
    if not abnf.HOST_RE.fullmatch(host):
        raise _fail(f"bad host {host!r}", text)
    if host.startswith("["):
        _check_ipv6_reference(host, text)


def _check_port(port: str, text: str) -> int:
    if not abnf.PORT_RE.fullmatch(port) or int(port) > 65535:
        raise _fail(f"bad port {port!r}", text)
    return int(port)


# --- URIs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUri:
    """A SIP or SIPS URI (RFC 3261 §19.1.1), parts kept as written (still escaped).

    ``host`` keeps the brackets of an IPv6 reference (``[2001:db8::1]``).
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.scheme not in ("sip", "sips"):
            raise ValueError(f"SipUri scheme must be 'sip' or 'sips', not {self.scheme!r}")
        if self.user is not None and not abnf.USER_RE.fullmatch(self.user):
            raise ValueError(f"bad SIP URI user {self.user!r}")
        if self.password is not None:
            if self.user is None:
                raise ValueError("a SIP URI password needs a user")
            if not abnf.PASSWORD_RE.fullmatch(self.password):
                raise ValueError(f"bad SIP URI password {self.password!r}")
        if not abnf.HOST_RE.fullmatch(self.host):
            raise ValueError(f"bad SIP URI host {self.host!r}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"SIP URI port out of range: {self.port}")
        for name, value in self.params:
            if not abnf.PARAMCHARS_RE.fullmatch(name) or (
                value is not None and not abnf.PARAMCHARS_RE.fullmatch(value)
            ):
                raise ValueError(f"bad SIP URI parameter {name!r}={value!r}")
        for hname, hvalue in self.headers:
            if not abnf.HNAME_RE.fullmatch(hname) or not abnf.HVALUE_RE.fullmatch(hvalue):
                raise ValueError(f"bad SIP URI header {hname!r}={hvalue!r}")

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive); "" for a bare ``;lr``.

        Returns None when the parameter is absent.
        """
        for pname, pvalue in self.params:
            if pname.lower() == name.lower():
                return "" if pvalue is None else pvalue
        return None

    def __str__(self) -> str:
        text = f"{self.scheme}:"
        if self.user is not None:
            text += self.user
            if self.password is not None:
                text += f":{self.password}"
            text += "@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        text += _render_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{n}={v}" for n, v in self.headers)
        return text


_SIPURI_BUILDER = builder_for(SipUri)


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """A URI with any other scheme (RFC 3261 §19.1.6 lets tel:, http:, ... appear).

    RFC 4475 unkscm, novelsc and unksm2 carry these; the rest is kept opaque.
    """

    scheme: str
    rest: str

    def __post_init__(self) -> None:
        if not abnf.SCHEME_RE.fullmatch(self.scheme):
            raise ValueError(f"bad URI scheme {self.scheme!r}")
        if not abnf.URIC_RUN_RE.fullmatch(self.rest):
            raise ValueError(f"bad URI {self.scheme}:{self.rest!r}")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


_ABSOLUTEURI_BUILDER = builder_for(AbsoluteUri)


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a Request-URI or the URI inside a name-addr.

    Args:
        text: the URI, without surrounding whitespace or ``<>``.

    Returns:
        SipUri for sip:/sips: (scheme lower-cased), AbsoluteUri for anything else.

    Raises:
        SipParseError: (400) the text is not a URI.
    """
    fast = abnf.FAST_SIP_URI_RE.fullmatch(text)
    if fast is not None:
        return _sip_uri_from(fast)
    return _parse_uri_full(text)


def _parse_uri_full(text: str) -> SipUri | AbsoluteUri:
    """parse_uri by the full RFC 3261 grammar (every URI the fast path leaves)."""
    colon = text.find(":")
    scheme = text[:colon]
    if colon <= 0 or not abnf.SCHEME_RE.fullmatch(scheme):
        raise _fail("URI has no scheme", text)
    low = scheme.lower()
    rest = text[colon + 1 :]
    if low not in ("sip", "sips"):
        if not abnf.URIC_RUN_RE.fullmatch(rest):
            raise _fail(f"bad {scheme}: URI", text)
        absolute = _ABSOLUTEURI_BUILDER()
        absolute.scheme = scheme
        absolute.rest = rest
        absolute.__class__ = AbsoluteUri
        opaque: AbsoluteUri = absolute
        return opaque

    # RFC 3261 §19.1.1: userinfo ends at the only "@": no other part of a SIP URI
    # may hold a bare "@", while user and password may hold ";", "?" and ","
    # (RFC 4475 intmeth, semiuri).
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, hostpart = rest[:at], rest[at + 1 :]
        if "@" in hostpart:
            raise _fail("SIP URI with more than one '@'", text)
        user, sep, pw = userinfo.partition(":")
        if not abnf.USER_RE.fullmatch(user):
            raise _fail("bad user part in SIP URI", text)
        if sep:
            if not abnf.PASSWORD_RE.fullmatch(pw):
                raise _fail("bad password in SIP URI", text)
            password = pw
    else:
        hostpart = rest

    hostpart, qmark, header_text = hostpart.partition("?")
    hostport, *param_texts = hostpart.split(";")
    if hostport.startswith("["):
        end = hostport.find("]")
        after = hostport[end + 1 :]
        if end < 0 or (after and not after.startswith(":")):
            raise _fail("bad IPv6 reference in SIP URI", text)
        host, has_port, port_text = hostport[: end + 1], bool(after), after[1:]
    else:
        host, colon_sep, port_text = hostport.partition(":")
        has_port = bool(colon_sep)
    _check_host(host, text)
    port = _check_port(port_text, text) if has_port else None

    params: list[Param] = []
    for ptext in param_texts:
        name, eq, value = ptext.partition("=")
        if not abnf.PARAMCHARS_RE.fullmatch(name) or (
            eq and not abnf.PARAMCHARS_RE.fullmatch(value)
        ):
            raise _fail(f"bad SIP URI parameter {ptext!r}", text)
        params.append((name, value if eq else None))

    headers: list[tuple[str, str]] = []
    if qmark:
        for htext in header_text.split("&"):
            hname, eq, hvalue = htext.partition("=")
            if not eq or not abnf.HNAME_RE.fullmatch(hname) or not abnf.HVALUE_RE.fullmatch(hvalue):
                raise _fail(f"bad SIP URI header {htext!r}", text)
            headers.append((hname, hvalue))

    uri = _SIPURI_BUILDER()
    uri.scheme = low
    uri.user = user
    uri.password = password
    uri.host = host
    uri.port = port
    uri.params = tuple(params)
    uri.headers = tuple(headers)
    uri.__class__ = SipUri
    built: SipUri = uri
    return built


def _sip_uri_from(m: re.Match[str]) -> SipUri:
    """Build the SipUri of an ``abnf.FAST_SIP_URI`` match (valid by construction)."""
    return _sip_uri(*m.groups())  # FAST_SIP_URI's groups, in order (see _check_groups)


def _sip_uri(
    scheme: str, user: str | None, password: str | None, host: str, port: str | None, uparams: str
) -> SipUri:
    """Build a SipUri from the groups of ``abnf.FAST_SIP_URI`` (valid by construction)."""
    uri = _SIPURI_BUILDER()
    uri.scheme = scheme if scheme == "sip" else scheme.lower()
    uri.user = user
    uri.password = password
    uri.host = host
    uri.port = None if port is None else int(port)
    uri.params = _split_params(uparams) if uparams else ()
    uri.headers = ()
    uri.__class__ = SipUri
    built: SipUri = uri
    return built


def _split_params(text: str) -> tuple[Param, ...]:
    """Split an already validated ``*(;name[=value])`` run without whitespace."""
    if text.count(";") == 1:  # the usual ";tag=..." or ";transport=tls": no loop
        name, eq, value = text[1:].partition("=")
        return ((name, value if eq else None),)
    out: list[Param] = []
    for piece in text.split(";")[1:]:
        name, eq, value = piece.partition("=")
        out.append((name, value if eq else None))
    return tuple(out)


# --- parameters -----------------------------------------------------------------------


def parse_params(text: str, pos: int, whole: str, *, via: bool = False) -> tuple[Param, ...]:
    """Parse ``*( SEMI generic-param )`` from ``text[pos:]`` to the end.

    Args:
        text: the header value being parsed.
        pos: where the parameters start.
        whole: the text to quote in an error.
        via: the params of a Via, where ``received`` may be a bare IPv6 address.

    Raises:
        SipParseError: (400) an empty parameter (``;;``, RFC 4475 badinv01) or junk.
    """
    rest = text[pos:]
    if not rest.strip(" \t"):
        return ()
    if '"' not in rest and "[" not in rest and not (via and ":" in rest):
        # Fast path: one C-level match validates the whole run, then plain splits.
        if not abnf.SEMI_TOKEN_PARAMS_RE.fullmatch(rest):
            raise _fail("bad or empty parameter", whole)
        out: list[Param] = []
        for piece in rest.split(";")[1:]:
            name, eq, value = piece.partition("=")
            out.append((name.strip(" \t"), value.strip(" \t") if eq else None))
        return tuple(out)
    params: list[Param] = []
    end = len(text)
    match = (abnf.SEMI_VIA_PARAM_RE if via else abnf.SEMI_GENERIC_PARAM_RE).match
    while pos < end:
        m = match(text, pos)
        if m is None:
            if text[pos:].strip(" \t"):
                raise _fail("bad or empty parameter", whole)
            break
        if via and m.group("rname") is not None:
            params.append((m.group("rname"), m.group("rvalue")))
        else:
            params.append((m.group("name"), m.group("value")))
        pos = m.end()
    return tuple(params)


# --- name-addr ------------------------------------------------------------------------


def _unquote(quoted: str) -> str:
    return abnf.QUOTED_PAIR_RE.sub(r"\1", quoted[1:-1])


def _quote(text: str) -> str:
    # RFC 3261 §25.1: qdtext excludes '"', '\\' and controls other than SP/HTAB;
    # those go out as quoted-pairs (CR and LF cannot, NameAddr refuses them).
    return '"' + abnf.QUOTE_ME_RE.sub(r"\\\g<0>", text) + '"'


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddr:
    """A To/From/Contact/Route value: ``[display] <uri>;params`` (RFC 3261 §20.10).

    ``display`` is the display name with quotes and quoted-pairs removed (None
    when absent); ``params`` are the header parameters after the URI, values as
    written (a quoted-string value keeps its quotes).
    """

    display: str | None = None
    uri: SipUri | AbsoluteUri
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if self.display is not None and ("\r" in self.display or "\n" in self.display):
            raise ValueError(f"a display name cannot hold CR or LF: {self.display!r}")
        if not isinstance(self.uri, SipUri | AbsoluteUri):
            raise TypeError(f"uri must be SipUri or AbsoluteUri, not {type(self.uri).__name__}")
        for pname, pvalue in self.params:
            if not abnf.TOKEN_RE.fullmatch(pname) or (
                pvalue is not None and not abnf.GEN_VALUE_RE.fullmatch(pvalue)
            ):
                raise ValueError(f"bad parameter {pname!r}={pvalue!r}")

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or None."""
        return _find_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        """The value of header parameter ``name`` (case-insensitive); "" when it has none."""
        for pname, pvalue in self.params:
            if pname.lower() == name.lower():
                return "" if pvalue is None else pvalue
        return None

    def __str__(self) -> str:
        # Always the name-addr form: it is legal for every URI (RFC 3261 §20.10).
        text = f"<{self.uri}>" if self.display is None else f"{_quote(self.display)} <{self.uri}>"
        return text + _render_params(self.params)


_NAMEADDR_BUILDER = builder_for(NameAddr)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI generic-param )`` (To, From, Contact).

    RFC 3261 §20.10: in the addr-spec form (no ``<>``) the URI ends at the first
    ";" and everything after it is a header parameter (RFC 4475 cparam01), and a
    URI holding "?" or "," must be bracketed (RFC 4475 regbadct).

    Raises:
        SipParseError: (400) unterminated quotes (quotbal), a display name that is
            not tokens (baddn), whitespace inside ``<>`` (badaspec), empty params.
    """
    fast = abnf.FAST_NAME_ADDR_RE.fullmatch(text)
    if fast is not None:
        return name_addr_from_match(fast)
    return _parse_name_addr_full(text)


def _parse_name_addr_full(text: str) -> NameAddr:
    """parse_name_addr by the full RFC 3261 grammar (addr-spec, IPv6, quoted-pairs, ...)."""
    s = text.strip(" \t")
    if not s:
        raise _fail("empty address", text)
    display: str | None = None
    if s[0] == '"' or s[0] == "<" or not abnf.SCHEME_COLON_RE.match(s):
        # name-addr: display-name LAQUOT addr-spec RAQUOT
        if s[0] == '"':
            m = abnf.QUOTED_STRING_RE.match(s)
            if m is None:
                raise _fail("unterminated or bad quoted display name", text)
            display = _unquote(m.group())
            lt = m.end()
            while lt < len(s) and s[lt] in " \t":
                lt += 1
            if lt >= len(s) or s[lt] != "<":
                raise _fail("quoted display name not followed by <uri>", text)
        else:
            lt = s.find("<")
            if lt < 0:
                raise _fail("address is neither <uri> nor a URI", text)
            words = s[:lt].strip(" \t")
            if words:
                # RFC 3261 §25.1 display-name = *(token LWS): "Bell, Alexander" is not.
                if not abnf.DISPLAY_TOKENS_RE.fullmatch(words):
                    raise _fail("unquoted display name is not a run of tokens", text)
                display = abnf.WHITESPACE_RE.sub(" ", words)
        gt = s.find(">", lt)
        if gt < 0:
            raise _fail("'<' without '>'", text)
        inner = s[lt + 1 : gt]
        # LAQUOT = SWS "<" and RAQUOT = ">" SWS: no whitespace inside (RFC 4475 badaspec).
        if not inner or inner != inner.strip(" \t"):
            raise _fail("whitespace or nothing inside <>", text)
        uri = _parse_uri_full(inner)
        pos = gt + 1
    else:
        # addr-spec: the URI stops at the first ";" (RFC 3261 §20.10).
        semi = s.find(";")
        pos = len(s) if semi < 0 else semi
        uri_text = s[:pos].rstrip(" \t")
        if "?" in uri_text or "," in uri_text:
            raise _fail("a URI with '?' or ',' must be enclosed in <>", text)
        uri = _parse_uri_full(uri_text)
    name_addr = _NAMEADDR_BUILDER()
    name_addr.display = display
    name_addr.uri = uri
    name_addr.params = parse_params(s, pos, text)
    name_addr.__class__ = NameAddr
    built: NameAddr = name_addr
    return built


def name_addr_from_match(m: re.Match[str]) -> NameAddr:
    """Build the NameAddr of an ``abnf.FAST_NAME_ADDR`` match (valid by construction)."""
    # One groups() call (FAST_NAME_ADDR's groups, in order: see _check_groups) costs
    # less than looking the groups up by name.
    quoted, tokens, scheme, user, password, host, port, uparams, params = m.groups()
    if quoted is not None:
        display: str | None = quoted  # no quoted-pairs on the fast path: nothing to unescape
    elif tokens is not None:
        display = abnf.WHITESPACE_RE.sub(" ", tokens)
    else:
        display = None
    name_addr = _NAMEADDR_BUILDER()
    name_addr.display = display
    name_addr.uri = _sip_uri(scheme, user, password, host, port, uparams)
    if not params:
        split: tuple[Param, ...] = ()
    elif " " in params or "\t" in params:
        split = parse_params(params, 0, params)  # spaces around ";" and "=" to strip
    else:
        split = _split_params(params)  # validated by the match: ";token[=token]" runs
    name_addr.params = split
    name_addr.__class__ = NameAddr
    built: NameAddr = name_addr
    return built


# --- Via ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value (RFC 3261 §20.42).

    ``raw`` holds the text as received; ``str()`` gives it back untouched until
    ``with_params`` changes something, so a relay never rewrites other hops' Vias.
    """

    protocol: str = "SIP/2.0"
    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    raw: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        name, slash, version = self.protocol.partition("/")
        if not slash or not abnf.TOKEN_RE.fullmatch(name) or not abnf.TOKEN_RE.fullmatch(version):
            raise ValueError(f"Via protocol must be name/version, not {self.protocol!r}")
        if not abnf.TOKEN_RE.fullmatch(self.transport):
            raise ValueError(f"Via transport must be a token, not {self.transport!r}")
        if not abnf.HOST_RE.fullmatch(self.host):
            raise ValueError(f"bad Via host {self.host!r}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"Via port out of range: {self.port}")
        for pname, pvalue in self.params:
            if not abnf.TOKEN_RE.fullmatch(pname) or (
                pvalue is not None
                and not abnf.GEN_VALUE_RE.fullmatch(pvalue)
                # via-received = "received" EQUAL (IPv4address / IPv6address): an IPv6
                # address without brackets is no gen-value, yet it is what §18.2.1 writes.
                and not (pname.lower() == "received" and abnf.RECEIVED_RE.fullmatch(pvalue))
            ):
                raise ValueError(f"bad Via parameter {pname!r}={pvalue!r}")

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive); "" when it has no value."""
        for pname, pvalue in self.params:
            if pname.lower() == name.lower():
                return "" if pvalue is None else pvalue
        return None

    @property
    def branch(self) -> str | None:
        """The transaction id (RFC 3261 §8.1.1.7), or None (RFC 2543 peers)."""
        return _find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` address a previous hop saw (RFC 3261 §18.2.1), or None."""
        return _find_param(self.params, "received")

    @property
    def rport(self) -> str | None:
        """The ``rport`` value (RFC 3581): "" when requested without a value, None when absent."""
        return self.param("rport")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as the sender wrote it."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, *params: Param) -> Via:
        """A copy with each (name, value) set in place or appended, keeping the order.

        When every parameter is new the original text is kept and the parameters
        are appended to it (RFC 3261 §18.2.1 ``received``; Microsoft's
        ``ms-received-port``/``ms-received-cid``, ms-federation.md §7.2).
        """
        current = list(self.params)
        appended: list[Param] = []
        rewritten = False
        for name, value in params:
            for i, (pname, _) in enumerate(current):
                if pname.lower() == name.lower():
                    current[i] = (pname, value)
                    rewritten = True
                    break
            else:
                current.append((name, value))
                appended.append((name, value))
        raw = None if rewritten or self.raw is None else self.raw + _render_params(tuple(appended))
        return Via(
            protocol=self.protocol,
            transport=self.transport,
            host=self.host,
            port=self.port,
            params=tuple(current),
            raw=raw,
        )

    def __str__(self) -> str:
        if self.raw is not None:
            return self.raw
        return f"{self.protocol}/{self.transport} {self.sent_by}{_render_params(self.params)}"


_VIA_BUILDER = builder_for(Via)


def _parse_via_parm(text: str, whole: str) -> Via:
    s = text.strip(" \t")
    fast = abnf.FAST_VIA_RE.fullmatch(s)
    if fast is None:
        return _parse_via_parm_full(s, whole)
    return via_from_match(fast)


def via_from_match(fast: re.Match[str]) -> Via:
    """Build the Via of an ``abnf.FAST_VIA`` full match (valid by construction)."""
    s = fast.string
    transport, host, port, params = fast.groups()  # FAST_VIA's groups (see _check_groups)
    via = _VIA_BUILDER()
    via.protocol = "SIP/2.0"
    via.transport = transport
    via.host = host
    via.port = None if port is None else int(port)
    via.params = _split_params(params) if params else ()
    via.raw = s
    via.__class__ = Via
    built: Via = via
    return built


def _received_ok(value: str) -> bool:
    """A via-received value: IPv4address, or an IPv6 address (bare, or bracketed: RFC 5118)."""
    if not abnf.RECEIVED_RE.fullmatch(value):
        return False
    if ":" not in value:
        return True
    try:
        ipaddress.IPv6Address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _parse_via_parm_full(s: str, whole: str) -> Via:
    """One via-parm by the full RFC 3261 grammar; ``s`` is stripped."""
    m = abnf.VIA_PARM_HEAD_RE.match(s)
    if m is None:
        raise _fail("bad Via value (sent-protocol SP sent-by)", whole)
    host = m.group("host")
    if host.startswith("["):
        _check_ipv6_reference(host, whole)
    port_text = m.group("port")
    port = _check_port(port_text, whole) if port_text is not None else None
    params = parse_params(s, m.end(), whole, via=True)
    for pname, pvalue in params:
        key = pname.lower()
        if key == "branch" and (pvalue is None or not abnf.TOKEN_RE.fullmatch(pvalue)):
            raise _fail("Via branch must be a token", whole)
        if key == "received" and (pvalue is None or not _received_ok(pvalue)):
            raise _fail("Via received must be an IP address", whole)
        if key == "rport" and pvalue is not None and not abnf.RPORT_VALUE_RE.fullmatch(pvalue):
            raise _fail("Via rport must be a port number", whole)
    via = _VIA_BUILDER()
    via.protocol = f"{m.group('name')}/{m.group('version')}"
    via.transport = m.group("transport")
    via.host = host
    via.port = port
    via.params = params
    via.raw = s
    via.__class__ = Via
    built: Via = via
    return built


def parse_via(value: str) -> list[Via]:
    """Parse one Via header value, which may hold several comma-separated vias.

    Raises:
        SipParseError: (400) a bad via, or an empty element (``,,``, RFC 4475 badinv01).
    """
    vias = []
    for piece in split_top_level(value):
        if not piece.strip(" \t"):
            raise _fail("empty Via value", value)
        vias.append(_parse_via_parm(piece, value))
    return vias


def _check_groups() -> None:
    """The builders above unpack ``groups()``: each fast pattern must have these, in order."""
    expected = {
        abnf.FAST_SIP_URI_RE: ("scheme", "user", "password", "host", "port", "uparams"),
        abnf.FAST_NAME_ADDR_RE: (
            *("quoted", "tokens", "scheme", "user", "password", "host", "port", "uparams"),
            "params",
        ),
        abnf.FAST_VIA_RE: ("transport", "host", "port", "params"),
    }
    for pattern, names in expected.items():
        in_order = tuple(sorted(pattern.groupindex, key=pattern.groupindex.__getitem__))
        if in_order != names or pattern.groups != len(names):
            raise RuntimeError(f"{pattern.pattern[:40]!r}...: groups are not {names}")


_check_groups()
