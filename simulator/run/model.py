"""What ``fedsim run`` observed for each call, and how it is judged (pure, no I/O).

A call's :class:`Outcome` ("got") is built from what the runner saw: the final
response the caller received, the Edge's ``events.jsonl`` line for that call
(matched by Call-ID, or by the caller's source port when the TLS handshake was
refused before any SIP), and the requests the partner peer received. It is
compared key by key with the lab file's :class:`~simulator.lab.Expect`; a key
the lab does not set is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from simulator.lab import Expect, FrozenMap

Verdict = Literal["PASS", "FAIL", "ERROR"]

#: What "got" shows for a call whose TLS handshake the other side refused.
TLS_REFUSED = "tls-refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one call produced, in the terms of :class:`~simulator.lab.Expect`.

    Attributes:
        status: final SIP status the caller received; None when none came.
        edge_log: Result-Code symbol of the Edge record written for the call.
        rule: the rule named by the Edge's event for the call.
        ms_diagnostics: ErrorId of the ms-diagnostics header of the final response.
        ms_diagnostics_params: every parameter of that header (reason and source
            included), names as received.
        forwarded: outbound: the partner peer received the request; inbound: the
            Edge accepted it and answered as the Skype user.
        error: why no final response came (TLS refusal, timeout), in words.
        edge_log_data: the ``Data:`` parameters of the call's Edge log record, in order.
        peer_headers: the final response's headers in order, then ``Via.<param>``
            for each parameter of its top Via.
        tls: "refused-at-handshake" when the Edge refused the caller's handshake,
            else the version the caller's connection negotiated.
        component: the text of the TF_COMPONENT line of the call's decision, if any.
        windows_event: the id of the Windows event of the call's decision, if any.
        media: the transport of the first accepted stream of the final response's
            SDP (``RTP/SAVP``, ``RTP/AVP``, ``message``), ``none`` without one.
        notify: each NOTIFY the caller received, ``"<state> <availability>"``.
        bye_after: seconds from the 200 to the called user's BYE, if it sent one.
        bye_headers: the headers of that BYE.
        text: the IM text the Edge recorded for the call.
    """

    status: int | None
    edge_log: str | None = None
    rule: str | None = None
    ms_diagnostics: int | None = None
    ms_diagnostics_params: Mapping[str, str] = field(default_factory=FrozenMap)
    forwarded: bool | None = None
    error: str | None = None
    edge_log_data: tuple[tuple[str, str], ...] | None = None
    peer_headers: tuple[tuple[str, str], ...] = ()
    tls: str | None = None
    component: str | None = None
    windows_event: int | None = None
    media: str | None = None
    notify: tuple[str, ...] = ()
    bye_after: float | None = None
    bye_headers: tuple[tuple[str, str], ...] = ()
    text: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ms_diagnostics_params, FrozenMap):
            object.__setattr__(self, "ms_diagnostics_params", FrozenMap(self.ms_diagnostics_params))


@dataclass(frozen=True, slots=True, kw_only=True)
class Mismatch:
    """One expectation that did not hold."""

    key: str
    expected: object
    got: object

    def line(self) -> str:
        """``status: expected 504, got 200`` (values shown as in the lab file)."""
        return f"{self.key}: expected {_show(self.expected)}, got {_show(self.got)}"


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _param(params: Mapping[str, str], name: str) -> str | None:
    """A diagnostics parameter by name, case-insensitively (reference §3.1: case varies)."""
    for key, value in params.items():
        if key.lower() == name.lower():
            return value
    return None


def header(headers: tuple[tuple[str, str], ...], name: str) -> str:
    """The first value of ``name`` (case-insensitive), ``""`` when absent."""
    return next((v for k, v in headers if k.lower() == name.lower()), "")


def compare(expect: Expect, got: Outcome) -> tuple[Mismatch, ...]:
    """Every expectation of ``expect`` that ``got`` breaks, in the lab file's key order."""
    out: list[Mismatch] = []
    if expect.status is not None and got.status != expect.status:
        out.append(Mismatch(key="status", expected=expect.status, got=status_text(got)))
    if expect.edge_log is not None and got.edge_log != expect.edge_log:
        out.append(Mismatch(key="edge_log", expected=expect.edge_log, got=got.edge_log))
    if expect.ms_diagnostics is not None and got.ms_diagnostics != expect.ms_diagnostics:
        out.append(
            Mismatch(key="ms_diagnostics", expected=expect.ms_diagnostics, got=got.ms_diagnostics)
        )
    for name, value in expect.ms_diagnostics_params.items():
        seen = _param(got.ms_diagnostics_params, name)
        if seen != value:
            out.append(Mismatch(key=f"ms_diagnostics_params.{name}", expected=value, got=seen))
    if expect.forwarded is not None and got.forwarded != expect.forwarded:
        out.append(Mismatch(key="forwarded", expected=expect.forwarded, got=got.forwarded))
    if expect.rule is not None and got.rule != expect.rule:
        out.append(Mismatch(key="rule", expected=expect.rule, got=got.rule))
    if expect.edge_log_data is not None:
        wanted = tuple(expect.edge_log_data.items())
        if got.edge_log_data != wanted:
            out.append(
                Mismatch(
                    key="edge_log_data",
                    expected=_data(wanted),
                    got=None if got.edge_log_data is None else _data(got.edge_log_data),
                )
            )
    for name, value in expect.peer_headers.items():
        seen = header(got.peer_headers, name)
        if seen != value:
            out.append(Mismatch(key=f"peer_headers.{name}", expected=value, got=seen or None))
    if expect.tls is not None and got.tls != expect.tls:
        out.append(Mismatch(key="tls", expected=expect.tls, got=got.tls))
    if expect.component is not None and got.component != expect.component:
        out.append(Mismatch(key="component", expected=expect.component, got=got.component))
    if expect.windows_event is not None and got.windows_event != expect.windows_event:
        out.append(
            Mismatch(key="windows_event", expected=expect.windows_event, got=got.windows_event)
        )
    if expect.media is not None and got.media != expect.media:
        out.append(Mismatch(key="media", expected=expect.media, got=got.media))
    if expect.notify is not None and not notify_matches(expect.notify, got.notify):
        out.append(
            Mismatch(key="notify", expected=_notify_text(expect.notify), got=_got_notify(got))
        )
    if expect.bye_after is not None and not bye_in_time(expect.bye_after, got.bye_after):
        out.append(Mismatch(key="bye_after", expected=expect.bye_after, got=got.bye_after))
    for name, value in expect.bye_headers.items():
        seen = header(got.bye_headers, name)
        if seen != value:
            out.append(Mismatch(key=f"bye_headers.{name}", expected=value, got=seen or None))
    if expect.text is not None and got.text != expect.text:
        out.append(Mismatch(key="text", expected=expect.text, got=got.text))
    return tuple(out)


#: How late the called user's BYE may be: a second, or a quarter of the delay if longer
#: (the lab runs four labs at once on a small machine). It may never be early.
BYE_LATE = 1.0
BYE_EARLY = 0.25


def bye_in_time(expected: float, got: float | None) -> bool:
    """Whether a BYE ``got`` seconds after the 200 meets ``expect.bye_after``."""
    if got is None:
        return False
    return expected - BYE_EARLY <= got <= expected + max(BYE_LATE, expected / 4)


def notify_matches(expected: str | tuple[str, ...], got: tuple[str, ...]) -> bool:
    """A string: the availability of the first NOTIFY; a list: every NOTIFY, in order."""
    if isinstance(expected, str):
        return bool(got) and got[0].rsplit(" ", 1)[-1] == expected
    return tuple(expected) == got


def _notify_text(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else ", ".join(value) or "no NOTIFY"


def _got_notify(got: Outcome) -> str | None:
    return ", ".join(got.notify) if got.notify else None


def _data(pairs: tuple[tuple[str, str], ...]) -> str:
    """``domain="a";fqdn1="b"``: Data parameters as the Edge log writes them."""
    return ";".join(f'{k}="{v}"' for k, v in pairs)


def status_text(got: Outcome) -> int | str | None:
    """The status as the report shows it: the number, ``tls-refused``, or None."""
    if got.status is not None:
        return got.status
    if got.rule == "tls-handshake-failed" or (got.error or "").startswith("TLS"):
        return TLS_REFUSED
    return None


def describe_expect(expect: Expect) -> str:
    """``status=504 edge_log=SIPPROXY_...``: the keys the lab file sets, in order."""
    parts: list[str] = []
    if expect.status is not None:
        parts.append(f"status={expect.status}")
    if expect.edge_log is not None:
        parts.append(f"edge_log={expect.edge_log}")
    if expect.ms_diagnostics is not None:
        parts.append(f"ms_diagnostics={expect.ms_diagnostics}")
    for name, value in expect.ms_diagnostics_params.items():
        parts.append(f"{name}={value}")
    if expect.forwarded is not None:
        parts.append(f"forwarded={_show(expect.forwarded)}")
    if expect.rule is not None:
        parts.append(f"rule={expect.rule}")
    if expect.edge_log_data is not None:
        parts.append(f"data={_data(tuple(expect.edge_log_data.items()))}")
    for name, value in expect.peer_headers.items():
        parts.append(f"{name}={value or '(absent)'}")
    if expect.tls is not None:
        parts.append(f"tls={expect.tls}")
    if expect.component is not None:
        parts.append(f"component={expect.component!r}")
    if expect.windows_event is not None:
        parts.append(f"windows_event={expect.windows_event}")
    if expect.media is not None:
        parts.append(f"media={expect.media}")
    if expect.notify is not None:
        parts.append(f"notify={_notify_text(expect.notify)}")
    if expect.bye_after is not None:
        parts.append(f"bye_after={expect.bye_after:g}")
    for name, value in expect.bye_headers.items():
        parts.append(f"bye.{name}={value or '(absent)'}")
    if expect.text is not None:
        parts.append(f"text={expect.text}")
    return " ".join(parts)


def describe_got(expect: Expect, got: Outcome) -> str:
    """What was observed for the same keys as :func:`describe_expect` (status always)."""
    parts = [f"status={status_text(got) or '-'}"]
    if expect.edge_log is not None:
        parts.append(f"edge_log={got.edge_log or '-'}")
    if expect.ms_diagnostics is not None:
        parts.append(f"ms_diagnostics={got.ms_diagnostics or '-'}")
    for name in expect.ms_diagnostics_params:
        parts.append(f"{name}={_param(got.ms_diagnostics_params, name) or '-'}")
    if expect.forwarded is not None:
        parts.append(f"forwarded={_show(got.forwarded)}")
    if expect.rule is not None:
        parts.append(f"rule={got.rule or '-'}")
    if expect.edge_log_data is not None:
        parts.append(f"data={_data(got.edge_log_data) if got.edge_log_data else '-'}")
    for name in expect.peer_headers:
        parts.append(f"{name}={header(got.peer_headers, name) or '(absent)'}")
    if expect.tls is not None:
        parts.append(f"tls={got.tls or '-'}")
    if expect.component is not None:
        parts.append(f"component={got.component!r}" if got.component else "component=-")
    if expect.windows_event is not None:
        parts.append(f"windows_event={got.windows_event or '-'}")
    if expect.media is not None:
        parts.append(f"media={got.media or '-'}")
    if expect.notify is not None:
        parts.append(f"notify={_got_notify(got) or '-'}")
    if expect.bye_after is not None:
        parts.append(f"bye_after={'-' if got.bye_after is None else f'{got.bye_after:g}'}")
    for name in expect.bye_headers:
        parts.append(f"bye.{name}={header(got.bye_headers, name) or '(absent)'}")
    if expect.text is not None:
        parts.append(f"text={got.text if got.text is not None else '-'}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class WireMessage:
    """One SIP message of a call, as it crossed a leg between two parties.

    Attributes:
        leg: ``federation`` (Expressway-E <-> Edge) or ``client`` (Skype client <-> Edge).
        sender / receiver: ``Expressway-E``, ``Edge`` or ``Skype client``.
        text: the message as sent (start line, headers, body), CRLF line ends.
    """

    leg: Literal["federation", "client"]
    sender: str
    receiver: str
    text: str

    @property
    def start_line(self) -> str:
        return self.text.split("\r\n", 1)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTrace:
    """Everything observed about one call: the report's excerpt and the ladder's input.

    Attributes:
        scenario: the lab's name.
        number: the call's position in the lab (1-based).
        direction: inbound or outbound.
        method: request method.
        from_uri / to_uri / pai: the request's identities.
        caller: who placed the call ("Expressway-E expe", "Skype client").
        edge_fqdn: the Edge's external FQDN.
        edge_cert_names: names in the certificate the Edge presents.
        peer_name: the lab peer involved (caller inbound, partner outbound), if any.
        peer_cert_names: names the Edge saw in the peer's certificate (from the event).
        request_line: the request's start line as sent.
        responses: status lines of every response the caller received, in order.
        partner_requests: start lines of requests the partner peer received for the call.
        error: why no final response came, in words.
        event: the Edge's events.jsonl object for the call (None if none was written).
        edge_record: the Edge log record for the call, as written (None if none).
        started: when the call was placed (UTC, ISO 8601 with milliseconds).
        caller_address / edge_address: ``ip:port`` of the caller's end of the
            connection and of the Edge port it reached.
        messages: every SIP message of the call the lab's clients and partner
            peers sent or received, in order per leg.
        partner_tls: what the partner Expressway-E saw of TLS during the call
            (outbound): one line per handshake it refused.
    """

    scenario: str
    number: int
    direction: str
    method: str
    from_uri: str
    to_uri: str
    pai: str | None = None
    caller: str
    edge_fqdn: str
    edge_cert_names: tuple[str, ...] = ()
    peer_name: str | None = None
    peer_cert_names: tuple[str, ...] = ()
    request_line: str
    responses: tuple[str, ...] = ()
    partner_requests: tuple[str, ...] = ()
    error: str | None = None
    event: Mapping[str, object] | None = None
    edge_record: str | None = None
    started: str | None = None
    caller_address: str | None = None
    edge_address: str | None = None
    messages: tuple[WireMessage, ...] = ()
    partner_tls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallReport:
    """One call's verdict."""

    id: str
    number: int
    label: str
    expect: Expect
    got: Outcome
    mismatches: tuple[Mismatch, ...]
    trace: CallTrace
    seconds: float

    @property
    def verdict(self) -> Verdict:
        return "FAIL" if self.mismatches else "PASS"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabCert:
    """One certificate of a lab, as issued for the run (or read from a PEM file).

    Attributes:
        name: the ``[certs]`` name, or the PEM file's name.
        subject / issuer: distinguished names (RFC 4514).
        cn: the subject common name; sans: the DNS subjectAltNames.
        eku: extended key usages (empty: any).
        not_before / not_after: validity window (UTC, ISO 8601).
        validity: ``valid``, ``expired`` or ``not-yet-valid`` when the lab ran.
        ca: a certificate authority; public: a root standing for a public CA.
        issuer_name / root: lab names of its issuer and of the root it chains to
            (None for a root, or a certificate given as a file).
        sha256: fingerprint, as OpenSSL prints it.
    """

    name: str
    subject: str
    issuer: str
    cn: str | None = None
    sans: tuple[str, ...] = ()
    eku: tuple[str, ...] = ()
    not_before: str
    not_after: str
    validity: str = "valid"
    ca: bool = False
    public: bool = False
    issuer_name: str | None = None
    root: str | None = None
    sha256: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabPeer:
    """A simulated Expressway-E of the lab.

    Attributes:
        name: ``[peers.NAME]``.
        cert: the certificate it presents (a ``[certs]`` name or a file name).
        trust: the CAs it accepts the Edge's certificate from.
        tls: its TLS profile; answer: its final answer to INVITE/MESSAGE.
        listen: its placeholder address in the lab file (None: it only calls in).
        port: the port it listened on in this run (the SRV records were rewritten to it).
        require_client_cert: it asks the Edge for a certificate.
    """

    name: str
    cert: str
    trust: tuple[str, ...] = ()
    tls: str = "default"
    answer: int = 200
    listen: str | None = None
    port: int | None = None
    require_client_cert: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LabFacts:
    """What a lab was made of: the page's lab section and the facts the views and fixes name.

    Attributes:
        edge_fqdn / domains / edge_cert / edge_trust: the Edge's names and PKI.
        policy: the federation settings, as ``(key, value)`` in the lab file's terms.
        profile: the Edge's TLS profile and identity, as ``(key, value)``.
        federation / hosted: the two settings most fixes depend on.
        dns_records: ``[dns] records`` as written (placeholder ports).
        dns_zones: ``(file name, text)`` of each ``[dns] zones`` file.
        dns_silent / dns_servfail: names never answered / answered SERVFAIL.
        certs: every certificate of the lab (and of the files it names).
        peers: the simulated Expressway-Es.
    """

    edge_fqdn: str
    domains: tuple[str, ...]
    edge_cert: str
    edge_trust: tuple[str, ...]
    policy: tuple[tuple[str, str], ...] = ()
    profile: tuple[tuple[str, str], ...] = ()
    federation: str = "discovery"
    hosted: bool = False
    dns_records: str = ""
    dns_zones: tuple[tuple[str, str], ...] = ()
    dns_silent: tuple[str, ...] = ()
    dns_servfail: tuple[str, ...] = ()
    certs: tuple[LabCert, ...] = ()
    peers: tuple[LabPeer, ...] = ()

    def cert(self, name: str | None) -> LabCert | None:
        """The certificate called ``name``, if the lab has one."""
        return next((c for c in self.certs if c.name == name), None)

    def peer(self, name: str | None) -> LabPeer | None:
        """The peer called ``name``, if the lab has one."""
        return next((p for p in self.peers if p.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class LabReport:
    """One lab's calls, or the error that stopped it before its calls could run."""

    name: str
    id: str
    path: str
    summary: str
    calls: tuple[CallReport, ...]
    error: str | None = None
    seconds: float = 0.0
    selected: int = 0
    facts: LabFacts | None = None

    @property
    def failed(self) -> int:
        return sum(1 for c in self.calls if c.verdict != "PASS")

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0
