"""The lab file as data: what an Edge, its DNS, its PKI, its peers and its calls look like.

Everything here is frozen, slotted and keyword-only, so a loaded :class:`Lab` can be
shared by the Edge, the DNS server, the PKI issuer and the runner without anyone
changing it under the others' feet. The loader (:mod:`simulator.lab.load`) checks
user input and reports it with file and line; ``__post_init__`` only guards the
invariants that a programmer building a lab by hand could break.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from simulator.pki.spec import CertSpec
from simulator.policy.facts import HostingProvider, TenantSettings
from simulator.policy.profiles import DEFAULT_PROFILE, EdgeRules, ProfileName
from simulator.skype.media import MEDIA_ENCRYPTION_VALUES, REFUSAL_FORMS

K = TypeVar("K")
V = TypeVar("V")

#: An address to bind or reach: (host, port). The host is an IP literal without
#: brackets, or a name; port 0 asks the OS for a free port.
HostPort = tuple[str, int]

Federation = Literal["discovery", "allowlist", "off"]
TlsProfile = Literal["default", "sfb2015", "sfb2019", "sfbse", "office365"]
DomainSource = Literal["pai", "from"]
TlsExpectation = str  # "refused-at-handshake" or a version ("TLSv1.2")
Direction = Literal["inbound", "outbound"]

FEDERATION_MODES: tuple[Federation, ...] = ("discovery", "allowlist", "off")
TLS_PROFILES: tuple[TlsProfile, ...] = ("default", "sfb2015", "sfb2019", "sfbse", "office365")
#: ``expect.tls`` values: a refused handshake, or the version negotiated.
TLS_EXPECTATIONS: tuple[str, ...] = (
    "refused-at-handshake",
    "TLSv1",
    "TLSv1.1",
    "TLSv1.2",
    "TLSv1.3",
)
DOMAIN_SOURCES: tuple[DomainSource, ...] = ("pai", "from")
DIRECTIONS: tuple[Direction, ...] = ("inbound", "outbound")
#: ``[edge] media_encryption`` (Microsoft's EncryptionLevel; "required" is its default).
MEDIA_ENCRYPTIONS: tuple[str, ...] = MEDIA_ENCRYPTION_VALUES
#: ``[edge] media_refusal``: the Lync 2010+ 488 with ms-client-diagnostics, or the older form.
MEDIA_REFUSALS: tuple[str, ...] = REFUSAL_FORMS
#: ``[edge] users_exist``: any user of a homed domain, or only those ``users`` lists.
USERS_EXIST: tuple[str, ...] = ("any", "listed")
#: ``[[calls]] offer``: the SDP the caller puts in its INVITE.
OFFERS: tuple[str, ...] = ("plain", "srtp", "best-effort", "none", "im", "dtls")
#: The offers a Skype client makes (it never offers DTLS-SRTP).
CLIENT_OFFERS: tuple[str, ...] = ("plain", "srtp", "best-effort", "none", "im")
#: ``[peers.NAME] media``: the simulated Expressway-E zone's media encryption.
PEER_MEDIA: tuple[str, ...] = ("auto", "plain", "srtp")
#: Methods a lab call can start with.
CALL_METHODS: tuple[str, ...] = ("INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE")


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable mapping that keeps insertion order.

    ``types.MappingProxyType`` is read-only but not hashable, which would make the
    frozen dataclasses below unhashable; this one is both.
    """

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        self._items: tuple[tuple[K, V], ...] = pairs
        self._dict: dict[K, V] = dict(pairs)

    def __getitem__(self, key: K) -> V:
        return self._dict[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return hash(frozenset(self._dict.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._dict) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._dict!r})"


def _check_port(what: str, hostport: HostPort | None) -> None:
    if hostport is not None and not 0 <= hostport[1] <= 65535:
        raise ValueError(f"{what}: port {hostport[1]} is outside 0-65535")


def _check_status(what: str, status: int | None) -> None:
    if status is not None and not 100 <= status <= 699:
        raise ValueError(f"{what}: SIP status {status} is outside 100-699")


@dataclass(frozen=True, slots=True, kw_only=True)
class CertFiles:
    """A certificate given as PEM files (absolute paths, checked to exist by the loader)."""

    cert: Path
    key: Path
    chain: Path | None = None


#: A ``[certs]`` name, or PEM files.
CertRef = str | CertFiles
#: A ``[certs]`` CA name, or a PEM file of trusted roots (absolute path).
TrustRef = str | Path


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedPartner:
    """One ``New-CsAllowedDomain`` entry; ``proxy_fqdn`` pins the partner's edge (direct)."""

    domain: str
    proxy_fqdn: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSpec:
    """One Skype user of the lab's homed domains (an ``[edge] users`` entry).

    ``users = { bob = 486 }`` is ``bob = UserSpec(answer=486)``; a table sets more:
    ``carol = { federation = false }``, ``alice = { presence = "busy" }``.

    Attributes:
        answer: the final status of an INVITE or MESSAGE to the user (486 busy...).
        federation: whether the user may talk to federated partners
            (``ExternalAccessPolicy.EnableFederationAccess``).
        presence: the availability the user publishes (the words of the lab; the
            presence documents map them).
        contacts: SIP URIs on the user's contact list (a Teams tenant that treats
            discovered partners as unverified lets only those through).
        media_encryption: the user's media policy when it differs from ``[edge]
            media_encryption`` (the media configuration of the user's site).
        codecs: the audio encodings the user's client accepts (None: a stock
            client's list); an offer sharing none gets a 488.
        ignore_ack: the ACK never reaches the user (the field's misrouted ACK):
            it retransmits its 200 and hangs up at 64*T1.
        hangup_after: the user hangs up this many seconds after its 200.
        media_failure_after: media never connects; the user ends the call this
            many seconds after its 200 with the 23 diagnostics.
    """

    answer: int = 200
    federation: bool = True
    presence: str = "online"
    contacts: tuple[str, ...] = ()
    media_encryption: str | None = None
    codecs: tuple[str, ...] | None = None
    ignore_ack: bool = False
    hangup_after: float | None = None
    media_failure_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SipTimers:
    """``[edge.timers]``: RFC 3261 T1 and T2 of the emulated users (seconds).

    A scenario shortens them so "the ACK never came" ends in a fraction of the
    32 s (64*T1) it takes with the defaults.
    """

    t1: float = 0.5
    t2: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"timers need 0 < t1 <= t2, not t1={self.t1} t2={self.t2}")


#: An unlisted user: answers 200, may federate, online, no contacts.
DEFAULT_USER = UserSpec()


@dataclass(frozen=True, slots=True, kw_only=True)
class PkiConfig:
    """The lab PKI's services (``[pki]``).

    Attributes:
        crl_listen: where fedsim serves the lab CAs' CRLs over HTTP; the lab's
            certificates name ``http://<crl_listen>/<ca>.crl`` as their CRL
            distribution point. Port 0 (the default) takes a free port.
    """

    crl_listen: HostPort = ("127.0.0.1", 0)

    def __post_init__(self) -> None:
        _check_port("crl_listen", self.crl_listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeConfig:
    """The emulated Access Edge: its names, ports, certificate and federation policy.

    Attributes:
        fqdn: external FQDN, written as ``source=`` in ms-diagnostics.
        domains: SIP domains homed behind this Edge.
        listen: federation side (mutual TLS).
        clients: internal side, where simulated Skype clients connect.
        cert: the Edge's certificate.
        trust: CAs the Edge trusts for peer certificates.
        federation: discovery (open), allowlist (enhanced/direct only) or off.
        blocked: domains always rejected (``New-CsBlockedDomain``).
        allowed: allowed partners (``New-CsAllowedDomain``).
        hosted: Office 365 rules (public CAs only): the ``hosted`` key, else the profile's.
        users: the lab's Skype users with something particular (``[edge] users``):
            user -> :class:`UserSpec`; an unlisted user answers 200 and is online.
        tls: the TLS versions and ciphers the Edge uses: the ``tls`` key, else the
            profile's own (always resolved: the TLS layer reads this).
        machine: Edge host name in log records (``[sfvedge\\sfvedge]``).
        server_header: ``Server:`` header of the Edge's responses (key, else profile's).
        dns: resolver target; None means the lab's own ``[dns] listen``.
        profile: the emulated product (``[edge] profile``).
        rules: the open behaviours: the profile's defaults, then ``[edge.rules]``.
        seed: the seed of every random choice (``[edge] seed``); None = random.
        hosting_providers: ``[[edge.hosting_providers]]`` (``New-CsHostingProvider``).
        tenant: ``[edge.tenant]``, the Office 365 tenant's federation (profile office365).
        media_encryption: the users' media policy (``required`` | ``supported`` |
            ``rejected``; Microsoft's default is ``required``).
        media_refusal: how a user's 488 reads: ``diagnostics`` (Lync 2010 and
            later) or ``legacy`` (for SIP stacks that cannot read ms-client-diagnostics).
        users_exist: ``any`` user of a homed domain exists, or only the ``listed`` ones.
        timers: the users' RFC 3261 timers.
    """

    fqdn: str
    domains: tuple[str, ...]
    listen: HostPort = ("127.0.0.1", 5061)
    clients: HostPort = ("127.0.0.1", 5062)
    cert: CertRef
    trust: tuple[TrustRef, ...]
    federation: Federation = "discovery"
    blocked: tuple[str, ...] = ()
    allowed: tuple[AllowedPartner, ...] = ()
    hosted: bool = False
    users: Mapping[str, UserSpec] = field(default_factory=FrozenMap)
    tls: TlsProfile = DEFAULT_PROFILE
    machine: str = "sfvedge"
    server_header: str = "RTC/6.0"
    dns: HostPort | None = None
    profile: ProfileName = DEFAULT_PROFILE
    rules: EdgeRules = field(default_factory=EdgeRules)
    seed: int | None = None
    hosting_providers: tuple[HostingProvider, ...] = ()
    tenant: TenantSettings | None = None
    media_encryption: str = "required"
    media_refusal: str = "diagnostics"
    users_exist: str = "any"
    timers: SipTimers = field(default_factory=SipTimers)

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("an Edge needs at least one SIP domain")
        if self.federation not in FEDERATION_MODES:
            raise ValueError(f"federation must be one of {FEDERATION_MODES}")
        clash = set(self.blocked) & {p.domain for p in self.allowed}
        if clash:
            raise ValueError(f"domains both blocked and allowed: {sorted(clash)}")
        for what, hp in (("listen", self.listen), ("clients", self.clients), ("dns", self.dns)):
            _check_port(what, hp)
        for user, spec in self.users.items():
            _check_status(f"users.{user}", spec.answer)
        if not isinstance(self.users, FrozenMap):
            object.__setattr__(self, "users", FrozenMap(self.users))

    @property
    def domain_source(self) -> DomainSource:
        """Which header names the inbound caller's domain (``rules.domain_source``)."""
        return self.rules.domain_source

    def user(self, name: str) -> UserSpec:
        """The lab's settings of user ``name`` (an unlisted user gets the defaults)."""
        return self.users.get(name) or DEFAULT_USER

    def answer_for(self, user: str) -> int:
        """The SIP status user ``user`` of this Edge answers with (200 unless listed)."""
        spec = self.users.get(user)
        return 200 if spec is None else spec.answer

    @property
    def answers(self) -> Mapping[str, int]:
        """user -> the status INVITE and MESSAGE get, for the users listed with one."""
        return {user: spec.answer for user, spec in self.users.items() if spec.answer != 200}


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsConfig:
    """The lab's authoritative DNS server.

    Attributes:
        listen: UDP and TCP address.
        zones: RFC 1035 master files (absolute paths).
        records: extra zone-file lines written in the lab file.
        records_line: line of the lab file where ``records`` text starts, so a zone
            parser can report errors at ``lab.toml:<records_line + i>``.
        silent: names the server never answers (a resolver timeout).
        servfail: names answered with SERVFAIL.
    """

    listen: HostPort = ("127.0.0.1", 5353)
    zones: tuple[Path, ...] = ()
    records: str = ""
    records_line: int = 0
    silent: tuple[str, ...] = ()
    servfail: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_port("listen", self.listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """A simulated Expressway-E: its certificate, trust, and how it answers calls.

    ``media`` is its zone's media encryption: ``auto`` (answers in kind),
    ``plain`` (cannot encrypt: refuses RTP/SAVP with 488) or ``srtp`` (must).
    ``presence`` is what its users publish to a SUBSCRIBE (``online``, ``busy``...).
    """

    name: str
    cert: CertRef
    trust: tuple[TrustRef, ...] = ()
    answer: int = 200
    listen: HostPort | None = None
    tls: TlsProfile = "default"
    require_client_cert: bool = True
    media: str = "auto"
    presence: str = "online"

    def __post_init__(self) -> None:
        _check_status("answer", self.answer)
        _check_port("listen", self.listen)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect:
    """What a call must produce; None means "not checked".

    Attributes:
        status: final SIP status the caller receives.
        edge_log: Result-Code symbol of the Edge log record (e.g.
            ``SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH``).
        ms_diagnostics: ErrorId of the client-facing ms-diagnostics header.
        ms_diagnostics_params: parameters that header must carry (exact values).
        media: the transport of the 2xx's SDP answer (``RTP/SAVP``, ``RTP/AVP``,
            ``message``), or ``none`` for a final response without one.
        notify: the NOTIFYs the caller received: a string is the availability in
            the first one (``busy``); a list names every one as
            ``"<subscription state> <availability>"`` (``"terminated busy"``).
        bye_after: the Edge's user ended the call with a BYE this many seconds
            after its 200 (late by at most a second or a quarter).
        bye_headers: headers of that BYE (as ``peer_headers``).
        text: the IM text the Edge's event recorded for the request.
        forwarded: whether the Edge forwarded the request to the peer.
        rule: name of the policy rule that decided.
        edge_log_data: the Edge log record's ``Data:`` parameters, exactly (every
            one, in order; values as written, quotes removed).
        peer_headers: headers of the response the caller received (names
            case-insensitive; a value is compared exactly, ``""`` means "absent";
            ``Via.<param>`` names a parameter of the top Via).
        tls: "refused-at-handshake", or the protocol version the caller's TLS
            connection negotiated ("TLSv1.2").
        component: the text of the TF_COMPONENT line the Edge wrote with the
            decision (``Exit - route headers from untrusted source.``).
        windows_event: the id of the Windows event the Edge wrote (14508).
    """

    status: int | None = None
    edge_log: str | None = None
    ms_diagnostics: int | None = None
    ms_diagnostics_params: Mapping[str, str] = field(default_factory=FrozenMap)
    forwarded: bool | None = None
    rule: str | None = None
    edge_log_data: Mapping[str, str] | None = None
    peer_headers: Mapping[str, str] = field(default_factory=FrozenMap)
    tls: TlsExpectation | None = None
    component: str | None = None
    windows_event: int | None = None
    media: str | None = None
    notify: str | tuple[str, ...] | None = None
    bye_after: float | None = None
    bye_headers: Mapping[str, str] = field(default_factory=FrozenMap)
    text: str | None = None

    def __post_init__(self) -> None:
        _check_status("status", self.status)
        if not isinstance(self.bye_headers, FrozenMap):
            object.__setattr__(self, "bye_headers", FrozenMap(self.bye_headers))
        if not isinstance(self.ms_diagnostics_params, FrozenMap):
            object.__setattr__(self, "ms_diagnostics_params", FrozenMap(self.ms_diagnostics_params))
        if not isinstance(self.peer_headers, FrozenMap):
            object.__setattr__(self, "peer_headers", FrozenMap(self.peer_headers))
        if self.edge_log_data is not None and not isinstance(self.edge_log_data, FrozenMap):
            object.__setattr__(self, "edge_log_data", FrozenMap(self.edge_log_data))
        if self.tls is not None and self.tls not in TLS_EXPECTATIONS:
            raise ValueError(f"tls must be one of {TLS_EXPECTATIONS}, not {self.tls!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSpec:
    """One ``[[calls]]`` entry: a request to place and what it must produce.

    ``via`` names the peer that places an inbound call (required for inbound).
    ``from_`` is the lab file's ``from`` key. ``route`` is a Route header the
    peer sends (inbound). ``line`` is where the entry starts in the lab file, for
    reports.

    What the caller does: ``offer`` (the INVITE's SDP: ``plain``, ``srtp``,
    ``best-effort``, ``none``, ``im``, ``dtls`` (inbound only); None: the
    caller's own default, ``best-effort`` inbound, ``srtp`` outbound), ``ack``
    (False: it never ACKs the 200), ``hangup`` (False: it waits for the Skype
    user's BYE), ``text`` (of a MESSAGE or an IM session), and for SUBSCRIBE
    ``expires``, ``refresh`` (one refresh) and ``unsubscribe`` (False: it waits
    for the subscription to expire).
    """

    direction: Direction
    via: str | None = None
    from_: str
    to: str
    pai: str | None = None
    route: str | None = None
    method: str = "INVITE"
    expect: Expect
    line: int = 0
    offer: str | None = None
    ack: bool = True
    hangup: bool = True
    text: str | None = None
    expires: int | None = None
    refresh: bool = False
    unsubscribe: bool = True

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        if self.direction == "inbound" and self.via is None:
            raise ValueError("an inbound call needs a peer (via)")
        if self.offer is not None and self.offer not in OFFERS:
            raise ValueError(f"offer must be one of {OFFERS}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exercise:
    """A training exercise's ``[exercise]`` table: the lab is broken on purpose.

    Attributes:
        task: what the trainee is asked to fix (one paragraph).
        hints: revealed one at a time, from the gentlest to the answer.
        calls: the ``[[calls]]`` (1-based) whose expectations define "fixed".
        line: where the table starts in the lab file.
    """

    task: str
    hints: tuple[str, ...] = ()
    calls: tuple[int, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Lab:
    """A whole lab: one Edge, its DNS, its PKI, the simulated peers and the calls to place."""

    path: Path | None
    name: str
    summary: str = ""
    edge: EdgeConfig
    dns: DnsConfig = field(default_factory=DnsConfig)
    pki: PkiConfig = field(default_factory=PkiConfig)
    certs: tuple[CertSpec, ...] = ()
    peers: Mapping[str, PeerConfig] = field(default_factory=FrozenMap)
    calls: tuple[CallSpec, ...] = ()
    exercise: Exercise | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.certs]
        if len(names) != len(set(names)):
            raise ValueError("duplicate certificate names")
        if not isinstance(self.peers, FrozenMap):
            object.__setattr__(self, "peers", FrozenMap(self.peers))

    def cert_spec(self, name: str) -> CertSpec:
        """The ``[certs.NAME]`` spec called ``name``.

        Raises:
            KeyError: no certificate of that name (the loader makes this impossible
                for names the lab itself refers to).
        """
        for spec in self.certs:
            if spec.name == name:
                return spec
        raise KeyError(f"no certificate {name!r} in this lab; defined: {self.cert_names()}")

    def cert_names(self) -> tuple[str, ...]:
        """Names of the lab's certificates, in file order."""
        return tuple(c.name for c in self.certs)
