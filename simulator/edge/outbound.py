"""The Edge's outbound connector: a Skype client's request leaves for a federated partner.

Reference §2.1 (O3-O11), §6 and §7.1, in Microsoft's order, each step a pure
decision from :mod:`simulator.policy.outbound` fed with facts gathered here:

1. policy and route (:func:`~simulator.policy.outbound_route`): blocked / off /
   not allowed answer 403; an allowed partner with ``proxy_fqdn`` is reached
   directly (no SRV), anyone else through ``_sipfederationtls._tcp.<domain>``;
2. SRV through the lab DNS (:func:`~simulator.policy.outbound_after_srv`: 1008, 1009);
3. A/AAAA of the target (1014), TCP connect with a bounded timeout (refused and
   timed out told apart, 1046), the TLS handshake presenting the Edge's
   certificate (a reset or an alert is 1047);
4. the partner's certificate: its chain is verified by :func:`simulator.pki.verify_chain`
   against the Edge's trust store and its names against the tls-target
   (:func:`~simulator.policy.outbound_check_peer`: 1010 with the right HRESULT);
5. the request is forwarded as a stateful proxy does (RFC 3261 §16.6: our Via on
   top, Max-Forwards decremented, Record-Route), and every response is relayed
   back without our Via; a partner error without ms-diagnostics gets the 1034 of
   :func:`~simulator.policy.outbound_relay`.

Why the TLS layer does not verify the partner itself: OpenSSL would abort the
handshake on an untrusted or expired chain without showing us the certificate,
and the client-facing 1010 must name it (``PeerServer=``). So the handshake runs
with ``CERT_NONE`` (still presenting the Edge's certificate: mutual TLS as the
partner sees it) and the chain verdict is pure code, exactly as for inbound
connections; nothing is sent on a connection whose certificate was refused.

Connections are reused per (tls-target, port); one reader task per connection
routes responses to the waiting transaction by the branch of the Via the Edge
added, and requests from the partner inside a known dialog (a BYE) back to the
client's connection (best effort: if the client has gone, the partner gets 481
from the dialog table's point of view only when the dialog is unknown).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import socket
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import trio

from simulator.diagnostics import decision_event
from simulator.edge.federation import MAX_REMEMBERED, Edge, TrustStore, peer_certificate
from simulator.edge.tls import TlsStream
from simulator.net import PEER_FAULTS, run_guarded
from simulator.peer.conn import PeerClosed, SipConnection
from simulator.pki import client_context
from simulator.pki.contexts import TlsProfile
from simulator.policy import (
    Decision,
    PeerCertificate,
    Route,
    SrvLookup,
    SrvTarget,
    normalise_domain,
    outbound_after_srv,
    outbound_check_peer,
    outbound_connect_failed,
    outbound_no_address,
    outbound_relay,
    outbound_route,
    outbound_tls_failed,
)
from simulator.policy.facts import FEDERATION_PORT
from simulator.sip import (
    FramingError,
    Headers,
    Request,
    Response,
    SipParseError,
    build_response,
    canonical_name,
    parse_name_addr,
    parse_via,
    serialize,
)
from simulator.sip.headers import split_top_level

#: RFC 3261 §8.1.1.7 magic cookie of every branch we make.
BRANCH_COOKIE = "z9hG4bK"
#: RFC 3261 §8.1.1.6 / §16.6 step 3: Max-Forwards of a request that had none.
DEFAULT_MAX_FORWARDS = 70
#: Seconds a partner may leave a send of ours unfinished before its connection is retired.
PARTNER_SEND_TIMEOUT = 5.0
_SEND_FAILURES = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, trio.TooSlowError)
#: Client-facing responses copy these request headers in this order (reference §7.1).
CLIENT_COPY_ORDER = ("From", "To", "Call-ID", "CSeq", "Via")
#: Methods whose 2xx creates a dialog the Edge stays in (Record-Route, RFC 3261 §16.6 step 4).
DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundLimits:
    """Timeouts of the outbound connector; every one is a setting.

    Attributes:
        connect_timeout: seconds for the TCP connect to one address (then 1046 timeout).
        handshake_timeout: seconds for the TLS handshake (then 1047).
        transaction_timeout: seconds to wait for the partner's final response
            (RFC 3261 Timer B/F, 64*T1 = 32 s); then the client gets 408.
        idle_timeout: seconds a partner connection may stay silent before we close it.
        proxy_port: port of an allowed partner's ``proxy_fqdn`` (the federation
            port; SRV routes carry their own). Tests point it at a private port.
    """

    connect_timeout: float = 5.0
    handshake_timeout: float = 10.0
    transaction_timeout: float = 32.0
    idle_timeout: float = 300.0
    proxy_port: int = FEDERATION_PORT

    @property
    def longest_call(self) -> float:
        """The longest a forwarded call can take: connect, handshake, then the transaction."""
        return self.connect_timeout + self.handshake_timeout + self.transaction_timeout

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "handshake_timeout", "transaction_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if not 1 <= self.proxy_port <= 0xFFFF:
            raise ValueError(f"proxy_port must be 1..65535, not {self.proxy_port}")


class ClientLink(Protocol):
    """The client connection a request came in on, as the connector sees it."""

    peer_ip: str
    peer_port: int
    cid: str

    async def send(self, data: bytes) -> None:
        """Send bytes to the client (one writer at a time)."""


@dataclass(slots=True, eq=False)
class PartnerConnection:
    """One mutual-TLS connection from the Edge to a partner."""

    key: tuple[str, int]
    address: str
    sip: SipConnection
    peer: PeerCertificate
    local: tuple[str, int]
    received_any: bool = False
    closed: bool = False
    failure: BaseException | None = None
    pending: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Lost:
    """The partner connection broke before the final response."""

    error: BaseException | None
    received_any: bool


@dataclass(slots=True, eq=False)
class _Dialog:
    """A dialog the Edge stays in: which partner connection and which client it joins."""

    partner: PartnerConnection
    client: ClientLink
    domain: str


@dataclass(frozen=True, slots=True)
class _PendingInvite:
    """A forwarded INVITE still waiting for its final response (for CANCEL, RFC 3261 §16.10)."""

    branch: str
    partner: PartnerConnection
    forwarded: Request


def outbound_context(
    *, cert: Path, key: Path, chain: Path | None, profile: TlsProfile = "default"
) -> ssl.SSLContext:
    """The TLS client context of the Edge's outbound leg: presents the Edge's certificate.

    ``CERT_NONE``: the partner's chain and names are judged by pure code after the
    handshake (module docstring), so a refused certificate can still be named.
    """
    ctx = client_context(cert=cert, key=key, chain=chain, profile=profile)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def partner_certificate(der: bytes, trust: TrustStore, *, now: dt.datetime) -> PeerCertificate:
    """The policy's facts about a partner's server certificate (chain verified for serverAuth)."""
    return peer_certificate(der, trust, now=now, usage="server")


def tls_failure(exc: BaseException | None) -> tuple[bool, str | None]:
    """Classify a failed handshake (or a connection lost before any answer): (reset, alert).

    A TCP reset, a broken pipe or a close without a TLS alert is what Schannel
    reports as WSAECONNRESET ("The peer forced closure of the connection",
    reference §6); a received alert is returned by its OpenSSL name
    (``TLSV1_ALERT_UNKNOWN_CA``). With TLS 1.3 a partner that refuses our
    certificate does so after our handshake completed, so this also classifies
    the error of the first read.
    """
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) and not isinstance(seen, ssl.SSLEOFError):
            reason = seen.reason or ""
            if "_ALERT_" in reason:
                return False, reason
            if reason == "UNEXPECTED_EOF_WHILE_READING":
                return True, None
            return False, reason or str(seen)
        if isinstance(seen, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError):
            return True, None
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
            continue
        seen = seen.__cause__ or seen.__context__
    return True, None  # EOF without an alert: the partner closed on us


def new_branch(edge: Edge) -> str:
    """A new RFC 3261 §8.1.1.7 branch from the Edge's random source."""
    return f"{BRANCH_COOKIE}{edge.rng.getrandbits(128):032x}"


def client_response(
    edge: Edge,
    request: Request,
    status: int,
    *,
    to_tag: str | None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    reason: str | None = None,
) -> bytes:
    """A response from the Edge to a Skype client, in the seed's envelope (reference §7.1).

    From, To, Call-ID, CSeq, Via (already stamped with ``ms-received-port`` and
    ``ms-received-cid`` when the request arrived), then ``headers`` (for a
    refusal: ms-diagnostics then ``Server``). The seed's ``Authentication-Info:
    TLS-DSK ...`` line is the Front End's signature towards its registered client
    (``targetname`` is the FE), not the Edge's, so it is not emulated.
    """
    response = build_response(
        request,
        status,
        reason,
        to_tag=to_tag,
        headers=headers,
        body=body,
        copy_order=CLIENT_COPY_ORDER,
    )
    return serialize(response)


def _is_ours(value: str, fqdn: str) -> bool:
    """A Route/Record-Route value that names this Edge (loose routing, RFC 3261 §16.4)."""
    try:
        uri = parse_name_addr(value).uri
    except SipParseError:
        return False
    host = getattr(uri, "host", None)
    return isinstance(host, str) and normalise_domain(host) == normalise_domain(fqdn)


def proxied_request(
    request: Request, *, fqdn: str, branch: str, record_route: bool, max_forwards: int
) -> Request:
    """The request as the Edge forwards it (RFC 3261 §16.6).

    Our Via goes on top (``SIP/2.0/TLS <fqdn>:5061;branch=...``), Max-Forwards is
    set to ``max_forwards`` (the caller decremented it), Route entries naming us
    are removed (§16.4), and for dialog-creating requests a
    ``Record-Route: <sip:<fqdn>:5061;transport=tls;lr>`` goes first so that
    in-dialog requests come back through the Edge. Everything else is kept as received.
    """
    pairs: list[tuple[str, str]] = [
        ("Via", f"SIP/2.0/TLS {fqdn}:{FEDERATION_PORT};branch={branch}")
    ]
    have_mf = False
    last_via = 0
    for name, value in request.headers.pairs:
        key = canonical_name(name)
        if key == "max-forwards":
            if have_mf:
                continue
            value, have_mf = str(max_forwards), True
        elif key == "route":
            kept = [v.strip() for v in split_top_level(value) if not _is_ours(v, fqdn)]
            if not kept:
                continue
            value = ", ".join(kept)
        pairs.append((name, value))
        if key == "via":
            last_via = len(pairs)
    if not have_mf:
        pairs.insert(last_via or 1, ("Max-Forwards", str(max_forwards)))
    if record_route:
        rr = f"<sip:{fqdn}:{FEDERATION_PORT};transport=tls;lr>"
        pairs.insert(last_via or 1, ("Record-Route", rr))
    return Request(
        method=request.method, uri=request.uri, headers=Headers(pairs), body=request.body
    )


def pop_top_via(headers: Headers) -> tuple[str | None, Headers]:
    """Remove the first Via value (RFC 3261 §16.7 step 3); return its branch and the rest."""
    pairs: list[tuple[str, str]] = []
    branch: str | None = None
    done = False
    for name, value in headers.pairs:
        if not done and canonical_name(name) == "via":
            done = True
            pieces = split_top_level(value)
            try:
                branch = parse_via(pieces[0])[0].branch
            except SipParseError:
                branch = None
            rest = ",".join(pieces[1:]).strip()
            if rest:
                pairs.append((name, rest))
            continue
        pairs.append((name, value))
    return branch, Headers(pairs)


def _top_branch(message: Request | Response) -> str | None:
    try:
        vias = message.vias
    except SipParseError:
        return None
    return vias[0].branch if vias else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Outbound:
    """The Edge's outbound side: routes, connects, forwards and relays.

    Args:
        edge: the shared Edge (settings, resolver, trust store, events, rng).
        ssl_context: from :func:`outbound_context` (presents the Edge's certificate).
        limits: timeouts and the ProxyFqdn port.

    :meth:`run` must be running (it owns the connections' reader tasks) before
    requests are handed to :meth:`forward_new` / :meth:`forward_in_dialog`.
    """

    def __init__(
        self, edge: Edge, ssl_context: ssl.SSLContext, *, limits: OutboundLimits | None = None
    ) -> None:
        self.edge = edge
        self.ssl_context = ssl_context
        self.limits = limits or OutboundLimits()
        self.connections: dict[tuple[str, int], PartnerConnection] = {}
        self.forwarded = 0
        self._locks: dict[tuple[str, int], trio.Lock] = {}
        self._waiting: dict[str, trio.MemorySendChannel[Response | _Lost]] = {}
        self._dialogs: OrderedDict[str, _Dialog] = OrderedDict()
        self._invites: dict[tuple[str, str], _PendingInvite] = {}
        self._reverse: dict[str, PartnerConnection] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the partner connections' reader tasks until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for conn in list(self.connections.values()):
                await trio.aclose_forcefully(conn.sip.stream)

    # --- out of dialog -------------------------------------------------------------

    async def forward_new(self, client: ClientLink, request: Request, domain: str) -> None:
        """Route an out-of-dialog request for a foreign ``domain`` and answer the client."""
        edge = self.edge
        settings = edge.settings
        facts: dict[str, object] = {"client_address": f"{client.peer_ip}:{client.peer_port}"}
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            # RFC 3261 §16.3 step 3: checked before any routing work.
            await self._plain(client, request, 483, rule="too-many-hops", facts=facts)
            return
        if request.method == "INVITE":
            # RFC 3261 §16.2: a proxy that may not answer within 200 ms sends 100 itself.
            await client.send(
                client_response(
                    edge, request, 100, to_tag=None, headers=(("Server", settings.server_header),)
                )
            )
        route = outbound_route(domain, settings)
        if isinstance(route, Decision):
            await self._refuse(client, request, route, facts, peer=None)
            return
        facts["route"] = {"kind": route.kind, "name": route.name}
        candidates = await self._candidates(client, request, domain, route, facts)
        if candidates is None:
            return
        failure: tuple[Decision, str] | None = None
        tried: list[dict[str, object]] = []
        facts["targets_tried"] = tried
        for target, port in candidates:
            attempt: dict[str, object] = {"target": f"{target}:{port}"}
            tried.append(attempt)
            result = await self._partner(domain, target, port, attempt)
            if isinstance(result, Decision):
                failure = (result, f"{target}:{port}")
                continue
            await self._transact(
                client,
                request,
                result,
                domain=domain,
                max_forwards=DEFAULT_MAX_FORWARDS if max_forwards is None else max_forwards - 1,
                facts=facts,
                record_route=request.method in DIALOG_METHODS,
            )
            return
        assert failure is not None  # candidates is never empty
        await self._refuse(client, request, failure[0], facts, peer=failure[1])

    async def _candidates(
        self,
        client: ClientLink,
        request: Request,
        domain: str,
        route: Route,
        facts: dict[str, object],
    ) -> list[tuple[str, int]] | None:
        """(target, port) to try in order, or None when the SRV decision already answered."""
        if route.kind == "proxy":
            return [(route.name, self.limits.proxy_port)]
        answer = await self.edge.resolver.srv(route.name)
        srv = SrvLookup(
            name=route.name,
            outcome=answer.outcome,
            targets=tuple(
                SrvTarget(
                    target=t.target.rstrip("."), port=t.port, priority=t.priority, weight=t.weight
                )
                for t in answer.targets
            ),
        )
        facts["srv"] = {
            "name": srv.name,
            "outcome": srv.outcome,
            "targets": [f"{t.target}:{t.port}" for t in srv.targets],
        }
        after = outbound_after_srv(domain, srv, self.edge.settings)
        if isinstance(after, Decision):
            await self._refuse(client, request, after, facts, peer=None)
            return None
        return [(t.target, t.port) for t in after]

    async def _partner(
        self, domain: str, target: str, port: int, attempt: dict[str, object]
    ) -> PartnerConnection | Decision:
        """A checked connection to ``target:port`` (reused when one is open), or the refusal."""
        settings = self.edge.settings
        key = (normalise_domain(target), port)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            conn = self.connections.get(key)
            if conn is not None and not conn.closed:
                attempt["reused"] = True
                attempt["cert_names"] = list(conn.peer.names)
                return outbound_check_peer(domain, target, conn.peer, settings) or conn
            answer = await self.edge.resolver.addresses(target)
            attempt["addresses"] = list(answer.addresses)
            attempt["address_outcome"] = answer.outcome
            if answer.outcome != "ok":
                return outbound_no_address(domain, target, settings)
            tcp: trio.SocketStream | None = None
            winsock: str = "refused"
            for address in answer.addresses:
                try:
                    with trio.fail_after(self.limits.connect_timeout):
                        tcp = await trio.open_tcp_stream(address, port)
                    attempt["address"] = address
                    break
                except trio.TooSlowError:
                    winsock = "timeout"
                except OSError as exc:
                    winsock = "refused" if _refused(exc) else "timeout"
            if tcp is None:
                attempt["connect"] = winsock
                return outbound_connect_failed(
                    domain,
                    target,
                    port,
                    "refused" if winsock == "refused" else "timeout",
                    settings,
                )
            local = tcp.socket.getsockname()
            # The TLS stream owns the socket from here (see tls.py).
            raw = socket.socket(fileno=tcp.socket.detach())
            tls = TlsStream(raw, self.ssl_context, server_hostname=target)
            try:
                with trio.fail_after(self.limits.handshake_timeout):
                    await tls.do_handshake()
            except trio.TooSlowError:
                await trio.aclose_forcefully(tls)
                attempt["tls"] = "handshake timed out"
                return outbound_tls_failed(domain, target, settings, reset=False, alert=None)
            except (trio.BrokenResourceError, OSError) as exc:
                await trio.aclose_forcefully(tls)
                reset, alert = tls_failure(exc)
                attempt["tls"] = "reset" if reset else alert
                return outbound_tls_failed(domain, target, settings, reset=reset, alert=alert)
            der = tls.getpeercert(binary_form=True)
            if not der:  # an anonymous cipher suite: nothing to trust
                await trio.aclose_forcefully(tls)
                return outbound_tls_failed(domain, target, settings, reset=False, alert=None)
            peer = partner_certificate(der, self.edge.trust, now=_now())
            attempt["cert_names"] = list(peer.names)
            attempt["cert_name"] = peer.display_name
            attempt["chain"] = peer.chain
            refusal = outbound_check_peer(domain, target, peer, settings)
            if refusal is not None:
                await trio.aclose_forcefully(tls)
                return refusal
            conn = PartnerConnection(
                key=key,
                address=str(attempt["address"]),
                sip=SipConnection(tls),
                peer=peer,
                local=(str(local[0]), int(local[1])),
            )
            self.connections[key] = conn
            assert self._nursery is not None, "Outbound.run() is not running"
            # The partner leg is a connection like any accepted one: whatever its
            # reader meets, the guard keeps it from the lab (its calls fail with 1047).
            self._nursery.start_soon(
                partial(
                    run_guarded,
                    partial(self._read, conn),
                    server="partner",
                    peer=_label(conn),
                    report=self.edge.report_internal,
                    expected=(*PEER_FAULTS, PeerClosed, FramingError),
                )
            )
            return conn

    # --- transactions --------------------------------------------------------------

    async def _transact(
        self,
        client: ClientLink,
        request: Request,
        partner: PartnerConnection,
        *,
        domain: str,
        max_forwards: int,
        facts: dict[str, object],
        record_route: bool,
    ) -> None:
        """Forward ``request`` on ``partner``, relay its responses, write the event."""
        edge = self.edge
        branch = new_branch(edge)
        forwarded = proxied_request(
            request,
            fqdn=edge.settings.fqdn,
            branch=branch,
            record_route=record_route,
            max_forwards=max_forwards,
        )
        send, receive = trio.open_memory_channel[Response | _Lost](math.inf)
        self._waiting[branch] = send
        partner.pending.add(branch)
        invite_key = (request.call_id, _top_branch(request) or "")
        if request.method == "INVITE":
            self._invites[invite_key] = _PendingInvite(
                branch=branch, partner=partner, forwarded=forwarded
            )
        self.forwarded += 1
        facts["forwarded_to"] = f"{partner.key[0]}:{partner.key[1]}"
        facts["partner_cert"] = partner.peer.display_name
        final: Response | None = None
        lost: _Lost | None = None
        try:
            if partner.closed:
                lost = _Lost(partner.failure, partner.received_any)
            else:
                try:
                    await self._send(partner, forwarded)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    lost = _Lost(exc, partner.received_any)
            if lost is None:
                with trio.move_on_after(self.limits.transaction_timeout):
                    async for item in receive:
                        if isinstance(item, _Lost):
                            lost = item
                            break
                        if item.cseq[1] != forwarded.cseq[1]:
                            # Same branch, other method: the partner's 200 to our CANCEL
                            # (RFC 3261 §17.1.3 matches on branch and CSeq method).
                            continue
                        if item.status == 100:
                            continue  # RFC 3261 §16.7 step 3: 100 is hop-by-hop
                        if item.status >= 200:
                            final = item
                        if final is not None and request.method == "INVITE" and item.status >= 300:
                            # Hop by hop, before relaying (RFC 3261 §17.1.1.3).
                            await self._ack_failure(partner, forwarded, final)
                        await self._relay_to_client(client, request, item, partner, domain)
                        if final is not None:
                            break
        finally:
            self._waiting.pop(branch, None)
            partner.pending.discard(branch)
            self._invites.pop(invite_key, None)
        if final is not None:
            self._write_forwarded(client, request, domain, facts, final)
            return
        if lost is not None:
            # Never answered: with TLS 1.3 a partner that refuses the Edge's certificate
            # does so on our first read. Either way the client sees 1047 (reference §2.1
            # O9; its use for a connection lost mid-transaction is inferred).
            reset, alert = tls_failure(lost.error)
            decision = outbound_tls_failed(
                domain, partner.key[0], edge.settings, reset=reset, alert=alert
            )
            facts["lost_after_answers"] = lost.received_any
            await self._refuse(client, request, decision, facts, peer=_label(partner))
            return
        facts["timeout"] = self.limits.transaction_timeout
        await self._plain(client, request, 408, rule="partner-timeout", facts=facts)

    async def _relay_to_client(
        self,
        client: ClientLink,
        request: Request,
        response: Response,
        partner: PartnerConnection,
        domain: str,
    ) -> None:
        _, headers = pop_top_via(response.headers)
        if response.status >= 200:
            extra = outbound_relay(
                domain,
                partner.peer.display_name,
                response.status,
                response.reason or "Error",
                "ms-diagnostics" in response.headers,
                self.edge.settings,
            )
            for name, value in extra:
                headers = headers.append(name, value)
            if 200 <= response.status < 300 and request.method in DIALOG_METHODS:
                # Before the 2xx reaches the client, so its ACK finds the dialog.
                self.edge.remember(
                    self._dialogs,
                    request.call_id,
                    _Dialog(partner=partner, client=client, domain=domain),
                )
        relayed = Response(
            status=response.status, reason=response.reason, headers=headers, body=response.body
        )
        await client.send(serialize(relayed))

    async def _ack_failure(
        self, partner: PartnerConnection, forwarded: Request, final: Response
    ) -> None:
        """ACK a non-2xx final on the partner leg (RFC 3261 §17.1.1.3: same branch)."""
        top = forwarded.headers.get("Via") or ""
        pairs = [
            ("Via", split_top_level(top)[0]),
            ("Max-Forwards", str(DEFAULT_MAX_FORWARDS)),
            ("From", forwarded.headers.get("From") or ""),
            ("To", final.headers.get("To") or forwarded.headers.get("To") or ""),
            ("Call-ID", forwarded.call_id),
            ("CSeq", f"{forwarded.cseq[0]} ACK"),
        ]
        ack = Request(method="ACK", uri=forwarded.uri, headers=Headers(pairs))
        # the partner left; its transaction times out on its own
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._send(partner, ack)

    # --- in dialog -------------------------------------------------------------------

    def has_dialog(self, call_id: str) -> bool:
        """Whether the Edge relays the dialog ``call_id`` to a partner."""
        return call_id in self._dialogs

    async def forward_in_dialog(self, client: ClientLink, request: Request) -> bool:
        """Forward an ACK, BYE, re-INVITE... of a relayed dialog; False if not ours.

        ACK for a 2xx is forwarded without waiting for anything (RFC 3261 §16.7 does
        not apply: no response). BYE closes the dialog once the partner answers 2xx.
        """
        dialog = self._dialogs.get(request.call_id)
        if dialog is None:
            return False
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            if request.method != "ACK":
                await self._plain(client, request, 483, rule="too-many-hops", facts={})
            return True
        mf = DEFAULT_MAX_FORWARDS if max_forwards is None else max_forwards - 1
        dialog.client = client
        if request.method == "ACK":
            ack = proxied_request(
                request,
                fqdn=self.edge.settings.fqdn,
                branch=new_branch(self.edge),
                record_route=False,
                max_forwards=mf,
            )
            # nothing to answer to an ACK (RFC 3261 §17.1.1.2)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self._send(dialog.partner, ack)
            self._write_in_dialog(client, request, dialog, status=None)
            return True
        facts: dict[str, object] = {
            "client_address": f"{client.peer_ip}:{client.peer_port}",
            "in_dialog": True,
        }
        await self._transact(
            client,
            request,
            dialog.partner,
            domain=dialog.domain,
            max_forwards=mf,
            facts=facts,
            record_route=False,
        )
        if request.method == "BYE":
            self._dialogs.pop(request.call_id, None)
        return True

    async def cancel(self, client: ClientLink, request: Request) -> bool:
        """CANCEL of a forwarded INVITE (RFC 3261 §16.10): 200 here, CANCEL to the partner.

        Returns False when no forwarded INVITE matches (the caller answers 481).
        """
        pending = self._invites.get((request.call_id, _top_branch(request) or ""))
        if pending is None:
            return False
        server = (("Server", self.edge.settings.server_header),)
        await client.send(client_response(self.edge, request, 200, to_tag=None, headers=server))
        inv = pending.forwarded
        pairs = [
            ("Via", split_top_level(inv.headers.get("Via") or "")[0]),
            ("Max-Forwards", str(DEFAULT_MAX_FORWARDS)),
            *(("Route", r) for r in inv.headers.get_all("Route")),
            ("From", inv.headers.get("From") or ""),
            ("To", inv.headers.get("To") or ""),
            ("Call-ID", inv.call_id),
            ("CSeq", f"{inv.cseq[0]} CANCEL"),
        ]
        cancel = Request(method="CANCEL", uri=inv.uri, headers=Headers(pairs))
        # the INVITE's own transaction reports the lost connection
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._send(pending.partner, cancel)
        return True

    async def response_from_client(self, response: Response) -> bool:
        """A client's answer to a request the partner sent (a BYE): relay it; False if unknown."""
        branch, headers = pop_top_via(response.headers)
        partner = self._reverse.pop(branch or "", None)
        if partner is None:
            return False
        relayed = Response(
            status=response.status, reason=response.reason, headers=headers, body=response.body
        )
        if response.cseq[1] == "BYE" and 200 <= response.status < 300:
            self._dialogs.pop(response.call_id, None)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._send(partner, relayed)
        return True

    # --- the partner's side ------------------------------------------------------------

    async def _send(self, partner: PartnerConnection, message: Request | Response) -> None:
        """Send on a partner connection; one that fails, or stalls, is retired.

        A TLS send cut short leaves the stream unusable, and the connection is shared
        by every call to that partner: kept, it would fail each later call with 1047.
        So the send is shielded from the calling task's cancellation (a client hanging
        up mid-send), bounded by :data:`PARTNER_SEND_TIMEOUT` (or by the idle timeout
        when shorter: a partner that takes no data is no livelier than a silent one),
        and on any failure the connection is closed; the next call connects afresh.

        Raises:
            trio.BrokenResourceError: the send failed (``__cause__`` says why).
        """
        try:
            # One scope: shielded from the caller, with its own deadline.
            patience = min(PARTNER_SEND_TIMEOUT, self.limits.idle_timeout)
            deadline = trio.current_time() + patience
            with trio.CancelScope(shield=True, deadline=deadline) as scope:
                await partner.sip.send(message)
            if scope.cancelled_caught:
                raise trio.TooSlowError(f"{_label(partner)} took no data for {patience} s")
        except _SEND_FAILURES as exc:
            self._retire(partner, exc)
            raise trio.BrokenResourceError(f"sending to {_label(partner)} failed: {exc}") from exc

    def _retire(self, conn: PartnerConnection, exc: BaseException) -> None:
        """Take ``conn`` out of use and close it; its reader reports the pending calls."""
        if conn.failure is None:
            conn.failure = exc
        conn.closed = True
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        assert self._nursery is not None, "Outbound.run() is not running"
        self._nursery.start_soon(trio.aclose_forcefully, conn.sip.stream)

    async def _read(self, conn: PartnerConnection) -> None:
        """Route everything the partner sends until the connection ends."""
        try:
            while True:
                with trio.move_on_after(self.limits.idle_timeout) as idle:
                    message = await conn.sip.receive()
                if idle.cancelled_caught:
                    break
                conn.received_any = True
                if isinstance(message, Response):
                    await self._response_from_partner(conn, message)
                else:
                    await self._request_from_partner(conn, message)
        except (
            PeerClosed,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            OSError,
            FramingError,
        ) as exc:
            conn.failure = exc
        finally:
            conn.closed = True
            if self.connections.get(conn.key) is conn:
                del self.connections[conn.key]
            for branch in list(conn.pending):
                channel = self._waiting.get(branch)
                if channel is not None:
                    channel.send_nowait(_Lost(conn.failure, conn.received_any))
            for call_id in [k for k, d in self._dialogs.items() if d.partner is conn]:
                del self._dialogs[call_id]
            await trio.aclose_forcefully(conn.sip.stream)

    async def _response_from_partner(self, conn: PartnerConnection, response: Response) -> None:
        branch = _top_branch(response)
        channel = self._waiting.get(branch or "")
        if channel is not None:
            channel.send_nowait(response)
            return
        # A 2xx retransmitted after its transaction ended (RFC 3261 §13.3.1.4) is
        # forwarded statelessly (§16.7 step 4 of the core), if its dialog is known.
        dialog = self._dialogs.get(response.call_id)
        if dialog is None or not 200 <= response.status < 300:
            return
        _, headers = pop_top_via(response.headers)
        relayed = Response(
            status=response.status, reason=response.reason, headers=headers, body=response.body
        )
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await dialog.client.send(serialize(relayed))

    async def _request_from_partner(self, conn: PartnerConnection, request: Request) -> None:
        """A request inside a relayed dialog (BYE...) goes to the client; else 481."""
        dialog = self._dialogs.get(request.call_id)
        server = (("Server", self.edge.settings.server_header),)
        if request.method == "ACK":
            return
        if dialog is None or dialog.partner is not conn:
            reply = build_response(request, 481, to_tag=None, headers=server)
            await self._send(conn, reply)
            return
        branch = new_branch(self.edge)
        mf = request.max_forwards
        forwarded = proxied_request(
            request,
            fqdn=self.edge.settings.fqdn,
            branch=branch,
            record_route=False,
            max_forwards=DEFAULT_MAX_FORWARDS if mf is None else max(mf - 1, 0),
        )
        self._reverse[branch] = conn
        while len(self._reverse) > MAX_REMEMBERED:
            self._reverse.pop(next(iter(self._reverse)))
        try:
            await dialog.client.send(serialize(forwarded))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            # The client left: answer for it, so the partner's BYE does not hang.
            self._reverse.pop(branch, None)
            self._dialogs.pop(request.call_id, None)
            reply = build_response(request, 481, to_tag=None, headers=server)
            await self._send(conn, reply)
            return
        self._write_in_dialog(dialog.client, request, dialog, status=None, towards="client")

    # --- answers and records -----------------------------------------------------------

    async def _refuse(
        self,
        client: ClientLink,
        request: Request,
        decision: Decision,
        facts: dict[str, object],
        *,
        peer: str | None,
    ) -> None:
        """Answer the client with a policy refusal; write its Edge record and event first."""
        edge = self.edge
        now = _now()
        label = peer or f"{client.peer_ip}:{client.peer_port}"
        edge.recorded(request)
        record_text: str | None = None
        if decision.edge_log is not None:
            record_text = edge.log_record(
                decision.edge_log,
                when=now,
                start_line=request.start_line,
                call_id=request.call_id,
                cseq=f"{request.cseq[0]} {request.cseq[1]}",
                peer=label,
            )
        event = decision_event(
            decision,
            time=now.isoformat(timespec="milliseconds"),
            direction="outbound",
            call_id=request.call_id,
            method=request.method,
            from_uri=str(request.from_.uri),
            to_uri=str(request.to.uri),
            peer=label,
            extra={**facts, "forwarded": False},
        )
        edge.events.write(event, record_text)
        edge.events.say_decision(
            f"{now:%H:%M:%S} outbound {request.method} {request.from_.uri} -> {request.to.uri}"
            f"  {decision.rule}  {decision.status}"
        )
        await client.send(
            client_response(
                edge,
                request,
                decision.status,
                reason=decision.reason,
                to_tag=edge.new_tag(),
                headers=decision.headers,
            )
        )

    async def _plain(
        self,
        client: ClientLink,
        request: Request,
        status: int,
        *,
        rule: str,
        facts: Mapping[str, object],
    ) -> None:
        """A protocol answer that is no federation decision (483, 408): event, then reply."""
        edge = self.edge
        now = _now()
        edge.recorded(request)
        edge.events.write(
            {
                "time": now.isoformat(timespec="milliseconds"),
                "direction": "outbound",
                "call_id": request.call_id,
                "method": request.method,
                "from": str(request.from_.uri),
                "to": str(request.to.uri),
                "peer": f"{client.peer_ip}:{client.peer_port}",
                "rule": rule,
                "accepted": False,
                "status": status,
                "fidelity": "inferred",
                "extra": dict(facts),
            }
        )
        edge.events.say_decision(
            f"{now:%H:%M:%S} outbound {request.method} {request.from_.uri} -> {request.to.uri}"
            f"  {rule}  {status}"
        )
        server = (("Server", edge.settings.server_header),)
        await client.send(
            client_response(edge, request, status, to_tag=edge.new_tag(), headers=server)
        )

    def _write_forwarded(
        self,
        client: ClientLink,
        request: Request,
        domain: str,
        facts: dict[str, object],
        final: Response,
    ) -> None:
        """The event of a forwarded transaction, with the partner's final answer."""
        now = _now()
        added = None
        if final.status >= 400 and "ms-diagnostics" not in final.headers:
            added = "1034"
        event: dict[str, object] = {
            "time": now.isoformat(timespec="milliseconds"),
            "direction": "outbound",
            "call_id": request.call_id,
            "method": request.method,
            "from": str(request.from_.uri),
            "to": str(request.to.uri),
            "domain": domain,
            "peer": str(facts.get("forwarded_to", "")),
            "rule": "forwarded",
            "accepted": True,
            "status": final.status,
            "reason": final.reason,
            # 1034 is verbatim (reference §2.1 O11); relaying itself is plain RFC 3261.
            "fidelity": "verbatim",
            "ms_diagnostics_added": added,
            "extra": {**facts, "forwarded": True},
        }
        self.edge.recorded(request)
        self.edge.events.write(event)
        self.edge.events.say_decision(
            f"{now:%H:%M:%S} outbound {request.method} {request.from_.uri} -> {request.to.uri}"
            f"  forwarded to {facts.get('forwarded_to')}  {final.status}"
        )

    def _write_in_dialog(
        self,
        client: ClientLink,
        request: Request,
        dialog: _Dialog,
        *,
        status: int | None,
        towards: str = "partner",
    ) -> None:
        now = _now()
        self.edge.events.write(
            {
                "time": now.isoformat(timespec="milliseconds"),
                "direction": "outbound",
                "call_id": request.call_id,
                "method": request.method,
                "domain": dialog.domain,
                "peer": _label(dialog.partner),
                "rule": "in-dialog",
                "accepted": True,
                "status": status,
                "fidelity": "verbatim",
                "extra": {
                    "towards": towards,
                    "client_address": f"{client.peer_ip}:{client.peer_port}",
                },
            }
        )


def _label(conn: PartnerConnection) -> str:
    return f"{conn.key[0]}:{conn.key[1]}"


def _refused(exc: OSError) -> bool:
    """Whether a failed connect was refused (RST) rather than unanswered or unreachable.

    trio.open_tcp_stream raises ``OSError("all attempts to connect ... failed")``
    from a group of the errors of each address tried.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
            continue
        seen = seen.__cause__
    return False
