"""``fedsim check --lab``: what the lab's Edge will answer each call, without running it.

The prediction is made of the functions ``fedsim serve`` runs, in the Edge's
order, fed with the lab's facts instead of live connections:

* TLS (:mod:`simulator.policy.tls`): the profile's versions against the
  peer's, the peer's certificate against the Edge's trust store with the usage
  the ``client_eku`` rule asks for, Office 365's public-CA rule, what the
  chain's CRLs say under the ``revocation`` rule;
* inbound: :func:`screen_inbound`, :func:`inbound_route`, :func:`inbound_hop`,
  :func:`callback_srv`, the discovered partner's counts
  (:class:`PartnerCounts`, kept across the lab's calls in order, as the Edge
  keeps them), :func:`decide_inbound`, then the called Skype user's
  :func:`simulator.skype.user.answer_status` (its existence, the lab's fixed
  answer, the media of the very offer the call sends);
* outbound: :func:`screen_outbound`, :func:`outbound_route` (with the caller's
  per-user facts),
  :func:`outbound_after_srv`, :func:`outbound_no_address`,
  :func:`outbound_connect_failed`, :func:`outbound_tls_failed`,
  :func:`outbound_check_peer`, :func:`outbound_relay`.

DNS answers come from the Edge's own resolver asking the lab's own DNS server
(:func:`simulator.check.labfacts.gather_lab_facts`), so nothing here re-implements
DNS. ``tests/check/test_check_equals_serve.py`` runs every scenario both ways and
fails when a prediction and the running Edge differ.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from cryptography import x509

from simulator.diagnostics import parse_ms_diagnostics
from simulator.lab import CallSpec, Lab, PeerConfig
from simulator.lab.model import DEFAULT_USER
from simulator.lab.settings import user_directory
from simulator.peer.requests import CallIds, build_request
from simulator.peer.sdp import AnswerEncryption, Offer, build_answer
from simulator.peer.skype import ClientOffer, build_client_request
from simulator.pki import facts_from_certificate, verify_chain
from simulator.policy import (
    HANDSHAKE_FAILED,
    Decision,
    EdgeSettings,
    LocalUser,
    PartnerCounts,
    PartnerLoad,
    PeerCertificate,
    Rejection,
    RevocationStatus,
    SrvLookup,
    SrvTarget,
    callback_srv,
    decide_inbound,
    discovered_partner,
    inbound_handshake_refusal,
    inbound_hop,
    inbound_route,
    local_user,
    outbound_after_srv,
    outbound_check_peer,
    outbound_connect_failed,
    outbound_no_address,
    outbound_relay,
    outbound_route,
    outbound_tls_failed,
    partner_load,
    screen_inbound,
    screen_outbound,
    version_refusal,
)
from simulator.policy.facts import FEDERATION_PORT
from simulator.policy.profiles import tls_versions
from simulator.sip import SipUri, parse_uri
from simulator.skype.user import answer_status

#: The Edge log symbol of a refused handshake (reference §4.2 marker).
HANDSHAKE_SYMBOL = "EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED"
#: Methods a simulated Expressway-E answers with its configured status (others: 200).
_ANSWERED = frozenset({"INVITE", "MESSAGE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """Certificates the prediction needs (read from the lab's issued PKI)."""

    roots: tuple[x509.Certificate, ...]
    public_roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    edge_leaf: x509.Certificate
    leaves: Mapping[str, x509.Certificate]  # peer name -> its certificate
    peer_roots: Mapping[str, tuple[x509.Certificate, ...]]  # peer name -> whom it trusts


@dataclass(frozen=True, slots=True, kw_only=True)
class LabFacts:
    """What the lab's DNS answered (through the Edge's resolver) and its certificates."""

    srv: Mapping[str, SrvLookup]  # SRV name -> lookup
    addresses: Mapping[str, tuple[str, tuple[str, ...]]]  # host -> (outcome, addresses)
    trust: Trust
    now: dt.datetime
    revocation: Mapping[str, RevocationStatus] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """What one call will get: the keys ``fedsim run`` observes.

    Attributes:
        status: the final SIP status; None when the handshake is refused.
        rule: the rule the Edge's event will name.
        ms_diagnostics: the ErrorId of the final response's ms-diagnostics, if any.
        edge_log: the Result-Code symbol of the Edge's log record, if one is written.
        why: one line for people.
    """

    status: int | None
    rule: str
    ms_diagnostics: int | None
    edge_log: str | None
    why: str


def _from_rejection(rejection: Rejection) -> Prediction:
    """A request the Edge screens out before any decision: no diagnostics, no record."""
    return Prediction(
        status=rejection.status,
        rule=rejection.rule,
        ms_diagnostics=None,
        edge_log=None,
        why=rejection.why,
    )


def _from_decision(decision: Decision, status: int | None = None) -> Prediction:
    diag = decision.ms_diagnostics
    return Prediction(
        status=decision.status if status is None else status,
        rule=decision.rule,
        ms_diagnostics=None if diag is None else parse_ms_diagnostics(diag).code,
        edge_log=None if decision.edge_log is None else decision.edge_log.result.symbol,
        why=decision.explanation,
    )


def _peer_cert(
    leaf: x509.Certificate,
    facts: LabFacts,
    usage: str,
    *,
    partner: bool = False,
    revocation: RevocationStatus = "unchecked",
) -> PeerCertificate:
    """The policy's facts about a certificate, verified as the Edge verifies it."""
    trust = facts.trust
    verdict = verify_chain(
        leaf,
        trust.intermediates,
        trust.roots,
        now=facts.now,
        public_roots=trust.public_roots,
        usage=usage,  # type: ignore[arg-type]
    )
    cert = facts_from_certificate(leaf)
    return PeerCertificate(
        display_name=cert.display_name(),
        names=cert.names_for_matching(),
        chain=verdict.status,
        public_root=verdict.root_is_public,
        revocation=revocation if verdict.status == "trusted" else "unchecked",
    )


def _revocation(settings: EdgeSettings, facts: LabFacts, peer: str) -> RevocationStatus:
    """What the peer's CRLs say, when the rule looks at them (as ``checked_peer`` does)."""
    if settings.rules.revocation == "off":
        return "unchecked"
    return facts.revocation.get(peer, "unchecked")


def _user(
    lab: Lab, user: str | None, domain: str, peer: tuple[str | None, str] | None
) -> LocalUser:
    spec = lab.edge.users.get(user or "", DEFAULT_USER)
    return local_user(user, domain, federation=spec.federation, contacts=spec.contacts, peer=peer)


def predict_calls(lab: Lab, settings: EdgeSettings, facts: LabFacts) -> list[Prediction]:
    """What the lab's Edge answers each of its calls, placed in order.

    One :class:`PartnerCounts` runs through the calls, as the Edge's counters run
    through the requests (the lab's calls are assumed to come within a second of
    each other, as ``fedsim run`` places them).
    """
    counts = PartnerCounts()
    return [predict_call(lab, call, settings, facts, counts=counts) for call in lab.calls]


def _refused(why: str) -> Prediction:
    return Prediction(
        status=None, rule=HANDSHAKE_FAILED, ms_diagnostics=None, edge_log=HANDSHAKE_SYMBOL, why=why
    )


def _host_user(uri: str) -> tuple[str, str | None]:
    parsed = parse_uri(uri)
    if isinstance(parsed, SipUri):
        return parsed.host.lower(), parsed.user
    return "", None


def _edge_trusted_by(peer: str, facts: LabFacts) -> bool:
    roots = facts.trust.peer_roots.get(peer, ())
    verdict = verify_chain(
        facts.trust.edge_leaf, facts.trust.intermediates, roots, now=facts.now, usage="any"
    )
    return verdict.status == "trusted"


def predict_call(
    lab: Lab,
    call: CallSpec,
    settings: EdgeSettings,
    facts: LabFacts,
    *,
    counts: PartnerCounts | None = None,
) -> Prediction:
    """What the lab's Edge answers ``call`` (see the module docstring).

    ``counts`` carries the discovered partners' counts over from the lab's earlier
    calls (:func:`predict_calls`); None counts this call alone.
    """
    if call.direction == "inbound":
        return _inbound(lab, call, settings, facts, counts or PartnerCounts())
    return _outbound(lab, call, settings, facts)


def _inbound(
    lab: Lab, call: CallSpec, settings: EdgeSettings, facts: LabFacts, counts: PartnerCounts
) -> Prediction:
    assert call.via is not None  # the loader requires it
    peer = lab.peers[call.via]
    version, no_version = version_refusal(tls_versions(lab.edge.tls), tls_versions(peer.tls))
    if version is None:
        return _refused(no_version or "no TLS version in common")
    if peer.trust and not _edge_trusted_by(peer.name, facts):
        return _refused(f"the Expressway-E {peer.name} does not trust the Edge's certificate")
    cert = _peer_cert(
        facts.trust.leaves[peer.name],
        facts,
        _usage(settings),
        revocation=_revocation(settings, facts, peer.name),
    )
    refusal = inbound_handshake_refusal(cert, settings)
    if refusal is not None:
        return _refused(refusal)
    request = build_request(
        method=call.method,
        from_uri=call.from_,
        to_uri=call.to,
        pai=call.pai,
        local=("127.0.0.1", 5061),
        ids=CallIds.generate(random.Random(0)),
        route=call.route,
        offer=cast(Offer, call.offer or "best-effort"),
        text=call.text,
        expires=call.expires,
    )
    parties = screen_inbound(request, settings)
    if isinstance(parties, Rejection):
        return _from_rejection(parties)
    route = inbound_route(parties, settings)
    hop = inbound_hop(request, lab.edge.listen)
    name = callback_srv(route, hop, settings)
    srv = facts.srv.get(name) if name is not None else None
    host, user = _host_user(call.to)
    caller_host, caller_user = _host_user(call.from_)
    called = _user(lab, user, host, (caller_user, caller_host))
    load: PartnerLoad = "within"
    if discovered_partner(route.domain, srv, settings):
        rules = settings.rules
        sent, rank = counts.count(
            route.domain,
            f"{called.user}@{called.domain}",
            now=0.0,
            rate=rules.discovered_rate,
            contacts=rules.discovered_contacts,
        )
        load = partner_load(sent, rank, settings)
    decision = decide_inbound(route, cert, srv, settings, hop=hop, user=called, load=load)
    if not decision.accepted:
        return _from_decision(decision)
    return _from_decision(decision, answer_status(request, user_directory(lab)))


def _usage(settings: EdgeSettings) -> str:
    return "client" if settings.rules.client_eku == "require" else "any"


def _listening(lab: Lab) -> dict[int, PeerConfig]:
    """Peers the runner starts, by placeholder port (the SRV ports that reach them)."""
    return {p.listen[1]: p for p in lab.peers.values() if p.listen is not None}


def _outbound(lab: Lab, call: CallSpec, settings: EdgeSettings, facts: LabFacts) -> Prediction:
    _host, user = _host_user(call.to)
    request = build_client_request(
        method=call.method,
        from_uri=call.from_,
        to_uri=call.to,
        local=("127.0.0.1", 5062),
        rng=random.Random(0),
        offer=cast(ClientOffer, call.offer or "srtp"),
        text=call.text,
        expires=call.expires,
    )
    target = screen_outbound(request, settings)
    if isinstance(target, Rejection):
        return _from_rejection(target)
    if target.local:
        status = answer_status(request, user_directory(lab))
        return Prediction(
            status=status,
            rule="local-user",
            # A user that does not exist: the pool's 404 with 4005 (internal clients see it).
            ms_diagnostics=4005 if status == 404 else None,
            edge_log=None,
            why="a local user",
        )
    domain = target.domain
    caller_host, caller_user = _host_user(call.from_)
    caller = _user(lab, caller_user, caller_host, (user, domain))
    route = outbound_route(domain, settings, caller=caller)
    if isinstance(route, Decision):
        return _from_decision(route)
    if route.kind == "proxy":
        candidates = [(route.name, FEDERATION_PORT)]
    else:
        srv = facts.srv[route.name]
        after = outbound_after_srv(domain, srv, settings)
        if isinstance(after, Decision):
            return _from_decision(after)
        candidates = [(t.host, t.port) for t in after]
    failure: Decision | None = None
    peers = _listening(lab)
    for name, port in candidates:
        outcome = _partner(lab, domain, name, port, peers, settings, facts)
        if isinstance(outcome, Decision):
            failure = outcome
            continue
        answer = outcome.answer if call.method in _ANSWERED else 200
        if call.method == "INVITE" and answer == 200 and request.body:
            # The partner's SDP answer, by the function the simulated Expressway-E runs.
            sdp_answer = build_answer(
                request.body,
                address="127.0.0.1",
                port=24000,
                session_id=1,
                encryption=cast(AnswerEncryption, outcome.media),
            )
            answer = 200 if sdp_answer is not None else 488
        extra = outbound_relay(domain, name, answer, "reason", False, settings)
        return Prediction(
            status=answer,
            rule="forwarded",
            ms_diagnostics=1034 if extra else None,
            edge_log=None,
            why=f"forwarded to {outcome.name} at {name}:{port}",
        )
    assert failure is not None  # candidates is never empty
    return _from_decision(failure)


def _partner(
    lab: Lab,
    domain: str,
    target: str,
    port: int,
    peers: Mapping[int, PeerConfig],
    settings: EdgeSettings,
    facts: LabFacts,
) -> PeerConfig | Decision:
    outcome, addresses = facts.addresses.get(target.lower(), ("nxdomain", ()))
    if outcome != "ok":
        return outbound_no_address(domain, target, settings)
    peer = peers.get(port)
    if peer is None or not any(a.startswith("127.") for a in addresses):
        loopback = any(a.startswith("127.") or a == "::1" for a in addresses)
        return outbound_connect_failed(
            domain, target, port, "refused" if loopback else "timeout", settings
        )
    version, _why = version_refusal(tls_versions(lab.edge.tls), tls_versions(peer.tls))
    if version is None:
        return outbound_tls_failed(
            domain, target, settings, reset=False, alert="TLSV1_ALERT_PROTOCOL_VERSION"
        )
    if peer.require_client_cert and not _edge_trusted_by(peer.name, facts):
        return outbound_tls_failed(
            domain, target, settings, reset=False, alert="TLSV1_ALERT_UNKNOWN_CA"
        )
    cert = _peer_cert(
        facts.trust.leaves[peer.name],
        facts,
        "server",
        partner=True,
        revocation=_revocation(settings, facts, peer.name),
    )
    refusal = outbound_check_peer(domain, target, cert, settings)
    if refusal is not None:
        return refusal
    return peer


__all__ = ["LabFacts", "Prediction", "SrvTarget", "Trust", "predict_call", "predict_calls"]
