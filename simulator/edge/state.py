"""What every connection of one Edge shares: settings, limits, trust, DNS, the recorder, the RNG.

One :class:`EdgeState` per running lab is built by :func:`simulator.edge.app.serve_lab`
and handed to the federation port, the clients port and the outbound relay. It
holds no decision logic (that is :mod:`simulator.policy`) and no I/O beyond the
resolver it carries; its caches are keyed by exactly what they remember.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeVar

import trio
from cryptography import x509

from simulator.dns import Resolver
from simulator.edge.crl import CrlFetcher
from simulator.edge.lookups import SrvLookups
from simulator.edge.recorder import Recorder
from simulator.lab.model import DEFAULT_USER, UserSpec
from simulator.net import InternalError
from simulator.pki import facts_from_der, verify_chain
from simulator.policy import (
    EdgeSettings,
    InboundRoute,
    LocalUser,
    Parties,
    PartnerCounts,
    PartnerLoad,
    PeerCertificate,
    SrvLookup,
    discovered_partner,
    inbound_route,
    local_user,
    partner_load,
)
from simulator.sip import SipUri, StreamFramer

K = TypeVar("K")
V = TypeVar("V")

#: How many routes, URI texts, dialogs and transactions a table remembers.
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Timeouts and sizes of the Edge's listeners; every one is a setting.

    ``max_connections`` bounds the federation listener and ``max_connections_per_peer``
    one source IP (an Expressway-E cluster node needs a handful; a runaway or
    hostile peer must not take every slot). Beyond either, a new connection is
    reset before its handshake and existing ones keep working.
    """

    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    max_connections: int = 1000
    max_connections_per_peer: int = 100
    max_header_bytes: int = StreamFramer.DEFAULT_MAX_HEADER_BYTES
    max_body_bytes: int = StreamFramer.DEFAULT_MAX_BODY_BYTES
    ring_seconds: float = 0.0
    dns_timeout: float = 2.0
    dns_attempts: int = 2

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_connections_per_peer"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1")
        for name in ("handshake_timeout", "idle_timeout", "dns_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be > 0")


@dataclass(slots=True)
class TrustStore:
    """The CAs the Edge trusts, plus every lab CA for path building (Python 3.11 cannot
    show us the peer's intermediates)."""

    roots: list[x509.Certificate]
    public_roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]


def peer_certificate(
    der: bytes,
    trust: TrustStore,
    *,
    now: dt.datetime,
    usage: Literal["client", "server", "any"] = "client",
) -> PeerCertificate:
    """Turn a peer's DER certificate into the policy's facts (once per connection).

    ``usage`` is the role the certificate plays: "client" for a partner calling in,
    "server" for a partner the Edge calls out to, "any" for a partner calling in when
    the lab's ``client_eku`` rule ignores the EKU (:func:`simulator.policy.client_usage`).
    """
    return peer_facts(der, trust, now=now, usage=usage)[0]


async def checked_peer(
    der: bytes,
    edge: EdgeState,
    *,
    now: dt.datetime,
    usage: Literal["client", "server", "any"],
) -> PeerCertificate:
    """:func:`peer_certificate`, with what the chain's CRLs say when the rule asks for it.

    The CRLs are fetched (or taken from the Edge's cache) only for a trusted chain
    and a ``revocation`` rule other than "off" (reference 1.2, §6).
    """
    peer, path = peer_facts(der, edge.trust, now=now, usage=usage)
    if edge.settings.rules.revocation == "off" or not path or edge.crls is None:
        return peer
    return dataclasses.replace(peer, revocation=await edge.crls.status(path, now=now))


def peer_facts(
    der: bytes,
    trust: TrustStore,
    *,
    now: dt.datetime,
    usage: Literal["client", "server", "any"] = "client",
) -> tuple[PeerCertificate, tuple[x509.Certificate, ...]]:
    """The policy's facts about a peer certificate, and the chain built (empty unless trusted)."""
    facts = facts_from_der(der)
    leaf = x509.load_der_x509_certificate(der)
    verdict = verify_chain(
        leaf,
        trust.intermediates,
        trust.roots,
        now=now,
        public_roots=trust.public_roots,
        usage=usage,
    )
    peer = PeerCertificate(
        display_name=facts.display_name(),
        names=facts.names_for_matching(),
        chain=verdict.status,
        public_root=verdict.root_is_public,
    )
    return peer, verdict.path


def remember(table: OrderedDict[K, V], key: K, value: V) -> None:
    """Store ``value`` as the newest entry, forgetting the oldest beyond MAX_REMEMBERED."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_REMEMBERED:
        table.popitem(last=False)


@dataclass(slots=True)
class EdgeState:
    """Everything an Edge connection needs, shared by all connections (module docstring).

    Attributes:
        settings: the policy's view of the lab's ``[edge]``.
        users: the lab's users with a fixed answer (``{"bob": 486}``).
        resolver: the Edge's DNS client (the lab DNS, or ``[edge] dns``).
        trust: the CAs the Edge trusts.
        recorder: the one writer of events and Edge log records.
        rng: every random choice of the Edge (tags, branches, correlation ids).
        crls: the Edge's CRL fetcher (None: revocation is never checked).
        lab_users: the lab's users (``[edge] users``): federation, contacts.
    """

    settings: EdgeSettings
    users: Mapping[str, int]
    resolver: Resolver
    trust: TrustStore
    recorder: Recorder
    limits: Limits = field(default_factory=Limits)
    rng: random.Random = field(default_factory=random.Random)
    crls: CrlFetcher | None = None
    lab_users: Mapping[str, UserSpec] = field(default_factory=dict)
    lookups: SrvLookups = field(init=False)
    #: What each discovered partner did (the rules discovered_rate/_contacts judge it).
    counters: PartnerCounts = field(default_factory=PartnerCounts)
    _local_users: OrderedDict[tuple[str, str, str, str], LocalUser] = field(
        default_factory=OrderedDict
    )
    #: Open federation connections, in all and per source IP (entries removed at 0).
    connections: int = 0
    per_peer: dict[str, int] = field(default_factory=dict)
    connection_counter: int = 0
    #: The route of each caller seen (screening's Parties -> InboundRoute).
    routes: OrderedDict[Parties, InboundRoute] = field(default_factory=OrderedDict)
    _uri_texts: dict[object, str] = field(default_factory=dict)
    #: Whether a (route, SRV answer) is a discovered partner's, by the two objects'
    #: ids (the entry keeps both alive, so the ids stay theirs; settings are fixed).
    _discovered: dict[tuple[int, int], tuple[InboundRoute, SrvLookup | None, bool]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.lookups = SrvLookups(self.resolver)
        self.recorder.correlation = partial(self.rng.getrandbits, 32)

    def next_cid(self) -> str:
        """The next connection's ``ms-received-cid``.

        The seeds show "100" and "6DA00": a connection number followed by "00" in
        hex (inferred from two samples).
        """
        self.connection_counter += 1
        return f"{self.connection_counter * 0x100:X}"

    def new_tag(self) -> str:
        """A To tag as the Edge writes them: 32 upper-case hex digits (reference §7.1)."""
        return f"{self.rng.getrandbits(128):032X}"

    def route(self, parties: Parties) -> InboundRoute:
        """The caller's route (:func:`simulator.policy.inbound_route`), remembered per caller."""
        route = self.routes.get(parties)
        if route is None:
            route = inbound_route(parties, self.settings)
            remember(self.routes, parties, route)
        return route

    def local_user(
        self, user: str | None, domain: str, peer_user: str | None, peer_domain: str
    ) -> LocalUser:
        """The per-user facts of our user ``user@domain`` facing ``peer_user@peer_domain``.

        Remembered, so the same pair gives the same object (the verdict cache hashes it).
        """
        key = (user or "", domain, peer_user or "", peer_domain)
        found = self._local_users.get(key)
        if found is None:
            spec = self.lab_users.get(user or "", DEFAULT_USER)
            found = local_user(
                user,
                domain,
                federation=spec.federation,
                contacts=spec.contacts,
                peer=(peer_user, peer_domain),
            )
            remember(self._local_users, key, found)
        return found

    def request_user(self, ours: object, theirs: object) -> LocalUser:
        """:meth:`local_user` for our user's URI ``ours`` facing the other party's ``theirs``."""
        mine = (ours.user, ours.host.lower()) if isinstance(ours, SipUri) else (None, "")
        if isinstance(theirs, SipUri):
            return self.local_user(*mine, theirs.user, theirs.host.lower())
        return self.local_user(*mine, None, "")

    def partner_load(
        self, route: InboundRoute, srv: SrvLookup | None, user: LocalUser
    ) -> PartnerLoad:
        """Count a discovered partner's request and say where it stands (else "within")."""
        entry = self._discovered.get((id(route), id(srv)))
        if entry is None or entry[0] is not route or entry[1] is not srv:
            if len(self._discovered) >= MAX_REMEMBERED:
                self._discovered.clear()
            entry = (route, srv, discovered_partner(route.domain, srv, self.settings))
            self._discovered[(id(route), id(srv))] = entry
        if not entry[2]:
            return "within"
        rules = self.settings.rules
        sent, rank = self.counters.count(
            route.domain,
            f"{user.user}@{user.domain}",
            now=trio.current_time(),
            rate=rules.discovered_rate,
            contacts=rules.discovered_contacts,
        )
        return partner_load(sent, rank, self.settings)

    def uri_text(self, uri: object) -> str:
        """``str(uri)``, remembered: the same partner URIs come back on every call."""
        try:
            return self._uri_texts[uri]
        except KeyError:
            text = str(uri)
            if len(self._uri_texts) >= MAX_REMEMBERED:
                self._uri_texts.clear()
            self._uri_texts[uri] = text
            return text
        except TypeError:  # an unhashable URI value: render it every time
            return str(uri)

    def report_internal(self, fault: InternalError) -> None:
        """A guard's reporter: record the fedsim bug one connection reached."""
        self.recorder.internal_error(fault)
