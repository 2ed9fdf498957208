"""The Edge's connections to federated partners: connect, check, reuse, read, retire.

Reference §2.1 steps O7-O10 and §6, each a pure decision from
:mod:`simulator.policy.outbound` fed with facts gathered here: the target's
A/AAAA (1014), the TCP connect with a bounded timeout (refused and timed out
told apart, 1046), the TLS handshake presenting the Edge's certificate (a reset
or an alert is 1047), then the partner's certificate: its chain verified
against the Edge's trust store and its names against the tls-target (1010).

Why the TLS layer does not verify the partner itself: OpenSSL would abort the
handshake on an untrusted or expired chain without showing us the
certificate, and the client-facing 1010 must name it (``PeerServer=``). So the
handshake runs with ``CERT_NONE`` (still presenting the Edge's certificate:
mutual TLS as the partner sees it) and the chain verdict is pure code, exactly
as for inbound connections; nothing is sent on a connection whose certificate
was refused.

A connection is shared by every call to that (tls-target, port); its reader
runs through the guard (a partner vanishing fails the calls waiting on it,
never the Edge) and hands each message to the relay. A send that fails or
stalls retires the connection: the next call connects afresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from simulator.edge.state import EdgeState, peer_certificate
from simulator.edge.taps import Tap, tap_for
from simulator.net import PEER_FAULTS, detach_socket, run_guarded
from simulator.net.sipstream import SipStream
from simulator.net.tls import TlsStream
from simulator.pki import client_context
from simulator.pki.contexts import TlsProfile
from simulator.policy import (
    Decision,
    PeerCertificate,
    normalise_domain,
    outbound_check_peer,
    outbound_connect_failed,
    outbound_no_address,
    outbound_tls_failed,
)
from simulator.sip import FramingError, Request, Response, serialize

#: Seconds a partner may leave a send of ours unfinished before its connection is retired.
PARTNER_SEND_TIMEOUT = 5.0
_SEND_FAILURES = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, trio.TooSlowError)
#: What may end a partner's reader: the partner's doing, contained by the guard.
_READ_FAULTS: tuple[type[BaseException], ...] = (*PEER_FAULTS, FramingError)


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


@dataclass(slots=True, eq=False)
class PartnerConnection:
    """One mutual-TLS connection from the Edge to a partner.

    Attributes:
        key: (tls-target, port): who shares it.
        address: the IP address connected to.
        sip: the SIP stream over the TLS connection.
        peer: the partner's certificate facts.
        local: the Edge's address on it.
        received_any: whether the partner sent anything yet (1047 vs lost answer).
        closed / failure: retired, and why.
    """

    key: tuple[str, int]
    address: str
    sip: SipStream
    peer: PeerCertificate
    local: tuple[str, int]
    received_any: bool = False
    closed: bool = False
    failure: BaseException | None = None
    #: Its wire tap (trace.log, the capture): None when they are off.
    tap: Tap | None = None

    @property
    def label(self) -> str:
        """``target:port``, as events and diagnostics name the partner leg."""
        return f"{self.key[0]}:{self.key[1]}"


#: What the relay does with each message a partner sends.
Dispatch = Callable[[PartnerConnection, Request | Response], Awaitable[None]]
#: What the relay does when a partner connection ends.
Ended = Callable[[PartnerConnection], None]


class Partners:
    """The Edge's partner connections, shared by every call (module docstring).

    Args:
        edge: the shared Edge (resolver, trust, settings, recorder).
        ssl_context: from :func:`outbound_context`.
        connect_timeout / handshake_timeout / idle_timeout: bounds of each step.
        dispatch / ended: the relay's handlers of a partner's messages and of its end.
    """

    def __init__(
        self,
        edge: EdgeState,
        ssl_context: ssl.SSLContext,
        *,
        connect_timeout: float,
        handshake_timeout: float,
        idle_timeout: float,
        dispatch: Dispatch,
        ended: Ended,
    ) -> None:
        self.edge = edge
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.dispatch = dispatch
        self.ended = ended
        self.connections: dict[tuple[str, int], PartnerConnection] = {}
        self._locks: dict[tuple[str, int], trio.Lock] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the connections' reader tasks until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for conn in list(self.connections.values()):
                await trio.aclose_forcefully(conn.sip.stream)

    def _start(self, conn: PartnerConnection) -> None:
        assert self._nursery is not None, "Partners.run() is not running"
        # The partner leg is a connection like any accepted one: whatever its reader
        # meets, the guard keeps it from the lab (its calls fail with 1047).
        self._nursery.start_soon(
            partial(
                run_guarded,
                partial(self._read, conn),
                server="partner",
                peer=conn.label,
                report=self.edge.report_internal,
                expected=_READ_FAULTS,
            )
        )

    async def get(
        self, domain: str, target: str, port: int, attempt: dict[str, object]
    ) -> PartnerConnection | Decision:
        """A checked connection to ``target:port`` (reused when one is open), or the refusal.

        ``attempt`` collects what was learned on the way (addresses, certificate
        names, the TLS outcome) for the call's event.
        """
        settings = self.edge.settings
        key = (normalise_domain(target), port)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            conn = self.connections.get(key)
            if conn is not None and not conn.closed:
                attempt["reused"] = True
                attempt["cert_names"] = list(conn.peer.names)
                return outbound_check_peer(domain, target, conn.peer, settings) or conn
            return await self._connect(domain, target, port, key, attempt)

    async def _connect(
        self,
        domain: str,
        target: str,
        port: int,
        key: tuple[str, int],
        attempt: dict[str, object],
    ) -> PartnerConnection | Decision:
        settings = self.edge.settings
        answer = await self.edge.resolver.addresses(target)
        attempt["addresses"] = list(answer.addresses)
        attempt["address_outcome"] = answer.outcome
        if answer.outcome != "ok":
            return outbound_no_address(domain, target, settings)
        tcp: trio.SocketStream | None = None
        refused = True
        for address in answer.addresses:
            try:
                with trio.fail_after(self.connect_timeout):
                    tcp = await trio.open_tcp_stream(address, port)
                attempt["address"] = address
                break
            except trio.TooSlowError:
                refused = False
            except OSError as exc:
                refused = _refused(exc)
        if tcp is None:
            attempt["connect"] = "refused" if refused else "timeout"
            return outbound_connect_failed(
                domain, target, port, "refused" if refused else "timeout", settings
            )
        local = tcp.socket.getsockname()
        # The TLS stream owns the socket from here (see net/tls.py).
        tls = TlsStream(detach_socket(tcp), self.ssl_context, server_hostname=target)
        try:
            with trio.fail_after(self.handshake_timeout):
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
        peer = peer_certificate(der, self.edge.trust, now=dt.datetime.now(dt.UTC), usage="server")
        attempt["cert_names"] = list(peer.names)
        attempt["cert_name"] = peer.display_name
        attempt["chain"] = peer.chain
        refusal = outbound_check_peer(domain, target, peer, settings)
        if refusal is not None:
            await trio.aclose_forcefully(tls)
            return refusal
        ends = (str(local[0]), int(local[1])), (str(attempt["address"]), port)
        # Named as its events name it: the tls-target and port (the TF_DIAG records' Peer).
        tap = tap_for(self.edge.recorder.taps, "external", *ends, f"{key[0]}:{key[1]}")
        conn = PartnerConnection(
            key=key,
            address=str(attempt["address"]),
            sip=SipStream(
                tls,
                idle_timeout=self.idle_timeout,
                before_send=self.edge.recorder.flush,
                on_wire=tap,
            ),
            peer=peer,
            local=ends[0],
            tap=tap,
        )
        self.connections[key] = conn
        self._start(conn)
        return conn

    async def send(self, conn: PartnerConnection, message: Request | Response) -> None:
        """Send on a partner connection; one that fails, or stalls, is retired.

        A TLS send cut short leaves the stream unusable, and the connection is shared
        by every call to that partner: kept, it would fail each later call with 1047.
        So the send is shielded from the calling task's cancellation (a client hanging
        up mid-send), bounded by :data:`PARTNER_SEND_TIMEOUT` (or the idle timeout, when
        shorter), and on any failure the connection is closed; the next call connects afresh.

        Raises:
            trio.BrokenResourceError: the send failed (``__cause__`` says why).
        """
        try:
            # One scope: shielded from the caller, with its own deadline (the idle timeout
            # when shorter: a partner that takes no data is no livelier than a silent one).
            patience = min(PARTNER_SEND_TIMEOUT, self.idle_timeout)
            deadline = trio.current_time() + patience
            with trio.CancelScope(shield=True, deadline=deadline) as scope:
                await conn.sip.send(serialize(message))
            if scope.cancelled_caught:
                raise trio.TooSlowError(f"{conn.label} took no data for {patience} s")
        except _SEND_FAILURES as exc:
            self.retire(conn, exc)
            raise trio.BrokenResourceError(f"sending to {conn.label} failed: {exc}") from exc

    async def send_quietly(self, conn: PartnerConnection, message: Request | Response) -> None:
        """:meth:`send`, for messages nobody waits on (ACK, CANCEL, relayed answers)."""
        with contextlib.suppress(trio.BrokenResourceError):
            await self.send(conn, message)

    def retire(self, conn: PartnerConnection, exc: BaseException) -> None:
        """Take ``conn`` out of use and close it; its reader reports the pending calls."""
        if conn.failure is None:
            conn.failure = exc
        conn.closed = True
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        assert self._nursery is not None, "Partners.run() is not running"
        self._nursery.start_soon(trio.aclose_forcefully, conn.sip.stream)

    async def _read(self, conn: PartnerConnection) -> None:
        """Hand everything the partner sends to the relay until the connection ends."""
        try:
            # No idle scope: only silence ends the connection, never a slow dispatch.
            while (message := await conn.sip.next_message()) is not None:
                conn.received_any = True
                await self.dispatch(conn, message)
            conn.failure = conn.sip.framing_error
        except _READ_FAULTS as exc:
            conn.failure = exc
            raise
        finally:
            conn.closed = True
            if self.connections.get(conn.key) is conn:
                del self.connections[conn.key]
            self.ended(conn)
            await trio.aclose_forcefully(conn.sip.stream)
            if conn.tap is not None:
                conn.tap.closed()
