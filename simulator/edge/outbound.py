"""The Edge's outbound relay: a Skype client's request leaves for a federated partner.

Reference §2.1 (O3-O11), §6 and §7.1, in Microsoft's order, each step a pure
decision from :mod:`simulator.policy.outbound` fed with facts gathered here:

1. policy and route (:func:`~simulator.policy.outbound_route`): a caller without
   federation access gets 403 + 1002; blocked / off / not allowed answer 403 (a
   tenant's with 1002); an allowed partner with ``proxy_fqdn`` is reached
   directly (no SRV), anyone else through ``_sipfederationtls._tcp.<domain>``;
2. the SRV lookup (:func:`~simulator.policy.outbound_after_srv`: 1008, 1009);
3. a checked partner connection for the first usable target
   (:mod:`simulator.edge.partners`: 1014, 1046, 1047, 1010);
4. the request forwarded as a stateful proxy does (:mod:`simulator.sip.proxy`;
   the transactions and dialogs in :mod:`simulator.edge.transactions`), every
   response relayed back without our Via; a partner error without
   ms-diagnostics gets the 1034 of :func:`~simulator.policy.outbound_relay`.

Every refusal answers the client in the seed's envelope (:func:`client_response`)
and is recorded first; every forwarded call gets one ``forwarded`` event with
the partner's final answer.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import trio

from simulator.edge.envelope import ClientLink, client_response
from simulator.edge.partners import PartnerConnection, Partners, tls_failure
from simulator.edge.state import EdgeState
from simulator.edge.transactions import ClientTransaction, Dialog, Lost, RelayTable
from simulator.policy import (
    Decision,
    Route,
    outbound_after_srv,
    outbound_relay,
    outbound_route,
    outbound_tls_failed,
)
from simulator.policy.facts import FEDERATION_PORT
from simulator.sip import Request, Response, build_response, serialize
from simulator.sip.proxy import (
    BRANCH_COOKIE,
    DEFAULT_MAX_FORWARDS,
    ack_for_failure,
    cancel_request,
    pop_top_via,
    proxied_request,
    relayed_response,
    top_branch,
)

#: Methods whose 2xx creates a dialog the Edge stays in (Record-Route, RFC 3261 §16.6 step 4).
DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundLimits:
    """Timeouts of the outbound relay; every one is a setting.

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


class Outbound:
    """The Edge's outbound side: routes, connects, forwards and relays.

    Args:
        edge: the shared Edge (settings, lookups, trust, recorder, rng).
        ssl_context: from :func:`simulator.edge.partners.outbound_context`.
        limits: timeouts and the ProxyFqdn port.

    :meth:`run` must be running (it owns the partner connections' readers)
    before requests are handed to :meth:`forward_new` / :meth:`forward_in_dialog`.
    """

    def __init__(
        self, edge: EdgeState, ssl_context: ssl.SSLContext, *, limits: OutboundLimits | None = None
    ) -> None:
        self.edge = edge
        self.limits = limits or OutboundLimits()
        self.table: RelayTable[PartnerConnection, ClientLink] = RelayTable()
        self.partners = Partners(
            edge,
            ssl_context,
            connect_timeout=self.limits.connect_timeout,
            handshake_timeout=self.limits.handshake_timeout,
            idle_timeout=self.limits.idle_timeout,
            dispatch=self._from_partner,
            ended=self._partner_ended,
        )
        self.forwarded = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the partner connections' reader tasks until cancelled."""
        await self.partners.run(task_status=task_status)

    def _branch(self) -> str:
        return f"{BRANCH_COOKIE}{self.edge.rng.getrandbits(128):032x}"

    def _server(self) -> tuple[tuple[str, str], ...]:
        return (("Server", self.edge.settings.server_header),)

    # --- out of dialog -----------------------------------------------------------------

    async def forward_new(self, client: ClientLink, request: Request, domain: str) -> None:
        """Route an out-of-dialog request for a foreign ``domain`` and answer the client."""
        edge = self.edge
        facts: dict[str, object] = {"client_address": client.label}
        if request.method == "INVITE":
            # RFC 3261 §16.2: a proxy that may not answer within 200 ms sends 100 itself.
            await client.send(
                client_response(edge, request, 100, to_tag=None, headers=self._server())
            )
        caller = edge.request_user(request.from_.uri, request.to.uri)
        route = outbound_route(domain, edge.settings, caller=caller)
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
            result = await self.partners.get(domain, target, port, attempt)
            if isinstance(result, Decision):
                failure = (result, f"{target}:{port}")
                continue
            max_forwards = request.max_forwards
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
        srv = await self.edge.lookups.lookup(route.name)
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

    # --- one transaction -----------------------------------------------------------------

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
        """Forward ``request`` on ``partner``, relay its responses, record the outcome."""
        edge = self.edge
        branch = self._branch()
        forwarded = proxied_request(
            request,
            fqdn=edge.settings.fqdn,
            port=FEDERATION_PORT,
            branch=branch,
            record_route=record_route,
            max_forwards=max_forwards,
        )
        tx = self.table.open(
            branch=branch,
            partner=partner,
            forwarded=forwarded,
            client_key=(request.call_id, top_branch(request) or ""),
        )
        self.forwarded += 1
        facts["forwarded_to"] = partner.label
        facts["partner_cert"] = partner.peer.display_name
        try:
            final, added, lost = await self._await_final(client, request, tx, domain)
        finally:
            self.table.close(tx)
        if final is not None:
            edge.recorder.call_event(
                "forwarded",
                request,
                status=final.status,
                rule="forwarded",
                peer=partner.label,
                fields={
                    "domain": domain,
                    "accepted": True,
                    "reason": final.reason,
                    # 1034 is verbatim (reference §2.1 O11); relaying itself is RFC 3261.
                    "fidelity": "verbatim",
                    "ms_diagnostics_added": added,
                    "extra": {**facts, "forwarded": True},
                },
                hold=False,
            )
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
            await self._refuse(client, request, decision, facts, peer=partner.label)
            return
        facts["timeout"] = self.limits.transaction_timeout
        reply = client_response(edge, request, 408, to_tag=edge.new_tag(), headers=self._server())
        edge.recorder.call_event(
            "partner-timeout",
            request,
            status=408,
            rule="partner-timeout",
            peer=client.label,
            fields={"accepted": False, "fidelity": "inferred", "extra": dict(facts)},
        )
        await client.send(reply)

    async def _await_final(
        self,
        client: ClientLink,
        request: Request,
        tx: ClientTransaction[PartnerConnection],
        domain: str,
    ) -> tuple[Response | None, str | None, Lost | None]:
        """Send the forwarded request and relay its answers up to the final one.

        Returns the final response and the ms-diagnostics id the Edge added to it,
        or the loss of the partner connection, or neither (the transaction timed out).
        """
        partner = tx.partner
        if partner.closed:
            return None, None, Lost(partner.failure, partner.received_any)
        try:
            await self.partners.send(partner, tx.forwarded)
        except trio.BrokenResourceError as exc:
            return None, None, Lost(exc, partner.received_any)
        with trio.move_on_after(self.limits.transaction_timeout):
            async for item in tx.answers:
                if isinstance(item, Lost):
                    tx.advance("lost")
                    return None, None, item
                if item.cseq[1] != tx.method:
                    # Same branch, other method: the partner's 200 to our CANCEL
                    # (RFC 3261 §17.1.3 matches on branch and CSeq method).
                    continue
                if item.status == 100:
                    continue  # RFC 3261 §16.7 step 3: 100 is hop-by-hop
                if item.status < 200:
                    tx.advance("provisional")
                    await client.send(serialize(relayed_response(item)))
                    continue
                tx.advance("final")
                if request.method == "INVITE" and item.status >= 300:
                    # Hop by hop, before relaying (RFC 3261 §17.1.1.3).
                    await self.partners.send_quietly(partner, ack_for_failure(tx.forwarded, item))
                extra = outbound_relay(
                    domain,
                    partner.peer.display_name,
                    item.status,
                    item.reason or "Error",
                    "ms-diagnostics" in item.headers,
                    self.edge.settings,
                )
                if 200 <= item.status < 300 and request.method in DIALOG_METHODS:
                    # Before the 2xx reaches the client, so its ACK finds the dialog.
                    self.table.start_dialog(
                        request.call_id, Dialog(partner=partner, client=client, domain=domain)
                    )
                await client.send(serialize(relayed_response(item, extra)))
                return item, extra[0][1].split(";", 1)[0] if extra else None, None
        return None, None, None

    # --- in dialog, CANCEL, answers from the client -----------------------------------------

    def has_dialog(self, call_id: str) -> bool:
        """Whether the Edge relays the dialog ``call_id`` to a partner."""
        return self.table.dialog(call_id) is not None

    async def forward_in_dialog(self, client: ClientLink, request: Request) -> bool:
        """Forward an ACK, BYE, re-INVITE... of a relayed dialog; False if not ours.

        ACK for a 2xx is forwarded without waiting for anything (RFC 3261 §16.7 does
        not apply: no response). BYE ends the dialog once the partner answered it.
        """
        dialog = self.table.dialog(request.call_id)
        if dialog is None:
            return False
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            if request.method != "ACK":
                reply = client_response(
                    self.edge, request, 483, to_tag=self.edge.new_tag(), headers=self._server()
                )
                await client.send(reply)
            return True
        mf = DEFAULT_MAX_FORWARDS if max_forwards is None else max_forwards - 1
        dialog.client = client
        if request.method == "ACK":
            ack = proxied_request(
                request,
                fqdn=self.edge.settings.fqdn,
                port=FEDERATION_PORT,
                branch=self._branch(),
                record_route=False,
                max_forwards=mf,
            )
            await self.partners.send_quietly(dialog.partner, ack)  # nothing to answer
            self._in_dialog_event(client, request, dialog, status=None)
            return True
        facts: dict[str, object] = {"client_address": client.label, "in_dialog": True}
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
            self.table.end_dialog(request.call_id)
        return True

    async def cancel(self, client: ClientLink, request: Request) -> bool:
        """CANCEL of a forwarded INVITE (RFC 3261 §16.10): 200 here, CANCEL to the partner.

        Returns False when no forwarded INVITE matches (the caller answers 481).
        """
        tx = self.table.invite_of(request.call_id, top_branch(request) or "")
        if tx is None:
            return False
        await client.send(
            client_response(self.edge, request, 200, to_tag=None, headers=self._server())
        )
        # the INVITE's own transaction reports a lost connection
        await self.partners.send_quietly(tx.partner, cancel_request(tx.forwarded))
        return True

    async def response_from_client(self, response: Response) -> bool:
        """A client's answer to a request the partner sent (a BYE): relay it; False if unknown."""
        branch, _ = pop_top_via(response.headers)
        partner = self.table.take_route_back(branch)
        if partner is None:
            return False
        if response.cseq[1] == "BYE" and 200 <= response.status < 300:
            self.table.end_dialog(response.call_id)
        await self.partners.send_quietly(partner, relayed_response(response))
        return True

    # --- what the partner sends ------------------------------------------------------------

    async def _from_partner(self, partner: PartnerConnection, message: Request | Response) -> None:
        if isinstance(message, Response):
            await self._response_from_partner(message)
        else:
            await self._request_from_partner(partner, message)

    def _partner_ended(self, partner: PartnerConnection) -> None:
        self.table.partner_lost(partner, partner.failure, partner.received_any)

    async def _response_from_partner(self, response: Response) -> None:
        if self.table.deliver(top_branch(response), response):
            return
        # A 2xx retransmitted after its transaction ended (RFC 3261 §13.3.1.4) is
        # forwarded statelessly (§16.7 step 4 of the core), if its dialog is known.
        dialog = self.table.dialog(response.call_id)
        if dialog is None or not 200 <= response.status < 300:
            return
        # the client left: the partner's retransmissions stop on their own
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await dialog.client.send(serialize(relayed_response(response)))

    async def _request_from_partner(self, partner: PartnerConnection, request: Request) -> None:
        """A request inside a relayed dialog (BYE...) goes to the client; else 481."""
        if request.method == "ACK":
            return
        # Right behind its final (a NOTIFY after the 200 to SUBSCRIBE): after it.
        await self.table.after_final(request.call_id, self.limits.transaction_timeout)
        dialog = self.table.dialog(request.call_id)
        if dialog is None or dialog.partner is not partner:
            reply = build_response(request, 481, to_tag=None, headers=self._server())
            await self.partners.send_quietly(partner, reply)
            return
        branch = self._branch()
        mf = request.max_forwards
        forwarded = proxied_request(
            request,
            fqdn=self.edge.settings.fqdn,
            port=FEDERATION_PORT,
            branch=branch,
            record_route=False,
            max_forwards=DEFAULT_MAX_FORWARDS if mf is None else max(mf - 1, 0),
        )
        self.table.route_back(branch, partner)
        try:
            await dialog.client.send(serialize(forwarded))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            # The client left: answer for it, so the partner's BYE does not hang.
            self.table.take_route_back(branch)
            self.table.end_dialog(request.call_id)
            reply = build_response(request, 481, to_tag=None, headers=self._server())
            await self.partners.send_quietly(partner, reply)
            return
        self._in_dialog_event(dialog.client, request, dialog, status=None, towards="client")

    # --- answers and records ---------------------------------------------------------------

    async def _refuse(
        self,
        client: ClientLink,
        request: Request,
        decision: Decision,
        facts: Mapping[str, object],
        *,
        peer: str | None,
    ) -> None:
        """Answer the client with a policy refusal; its Edge record and event go first."""
        edge = self.edge
        reply = client_response(
            edge,
            request,
            decision.status,
            reason=decision.reason,
            to_tag=edge.new_tag(),
            headers=decision.headers,
        )
        edge.recorder.decision(
            "outbound",
            request,
            decision,
            peer=peer or client.label,
            extra={**facts, "forwarded": False},
        )
        await client.send(reply)

    def _in_dialog_event(
        self,
        client: ClientLink,
        request: Request,
        dialog: Dialog[PartnerConnection, ClientLink],
        *,
        status: int | None,
        towards: str = "partner",
    ) -> None:
        self.edge.recorder.call_event(
            "in-dialog",
            request,
            status=status,
            rule="in-dialog",
            peer=dialog.partner.label,
            fields={
                "domain": dialog.domain,
                "accepted": True,
                "fidelity": "verbatim",
                "extra": {"towards": towards, "client_address": client.label},
            },
            hold=False,
        )
