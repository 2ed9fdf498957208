"""Inbound federation: a federated peer (Expressway-E) sends a request to the Edge.

Reference §2.2 and DESIGN.md. Rules run in Microsoft's order and the first
failing rule decides, so the Edge log record is deterministic:

1. federation off (AllowFederatedUsers) ........................ 403 (U)
2. sender domain blocked (suffix match, I) ...................... 403 (U)
3. allow-list mode and domain not allowed ....................... 403 (U)
4. allowed partner server: certificate must name ProxyFqdn ...... 504 (U)
5. callback SRV lookup of the sender domain failed .............. 504 (I)
6. no SRV target exactly in the domain ........................... 504 (V [CISCO])
7. peer certificate does not name an in-domain SRV target ........ 504 (V [CISCO])
8. chain not trusted (hosted Edge: public root only) ............. 504 (U)
9. certificate outside its validity period ....................... 504 (U)

Wire forms. The peer gets a bare answer with ``Server: RTC/6.0`` and no
ms-diagnostics: diagnostics do not cross federation by default (reference
§3.1, §3.3). With the rule ``send_diagnostics_to_partners``
(``Set-CsDiagnosticHeaderConfiguration -SendToExternalNetworks $true``) the
refusal carries the ms-diagnostics a Skype client gets for the same fault
outbound (1027, 1008, 1009, 1010; none for a blocked or not-allowed domain,
whose id is unknown): which header the Edge sends then is inferred, no trace
shows one. DNS and certificate faults answer ``504 Server time-out`` exactly
as [CISCO] shows. For the policy refusals (1-3) the real wire form is unknown
(reference §2.1 O3, §9 S11: "likely 403"); fedsim answers ``403 Forbidden``,
the status Microsoft uses for its one verified policy refusal (1002), and marks
those decisions "unverified". Rules 8-9 normally fail the TLS handshake before
any SIP is read (reference §2.2 I1); the policy still answers them for I/O
layers that accept the handshake and check afterwards, marked "unverified".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulator.diagnostics.catalogue import RESULT_CODES, Fidelity, hresult, weakest
from simulator.diagnostics.format import EdgeLogRecord
from simulator.policy.decision import SERVER_HEADER, Decision
from simulator.policy.facts import (
    EdgeSettings,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    normalise_domain,
)
from simulator.policy.route import InboundRoute
from simulator.policy.rules import (
    FORBIDDEN,
    TIMEOUT,
    blocked_entry,
    certificate_names,
    diagnostics_header,
    fqdn_params,
    srv_name,
    targets_in_domain,
)

#: [CISCO] Data info= of SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH.
CERT_MISMATCH_INFO = "The peer certificate does not contain a matching FQDN"

#: Every rule name decide_inbound can return, in evaluation order.
INBOUND_RULE_NAMES: tuple[str, ...] = (
    "federation-off",
    "blocked-domain",
    "domain-not-allowed",
    "proxy-fqdn-mismatch",
    "srv-nxdomain",
    "srv-nodata",
    "srv-servfail",
    "srv-refused",
    "srv-timeout",
    "srv-not-in-domain",
    "cert-mismatch",
    "untrusted-root",
    "cert-bad-chain",
    "cert-wrong-usage",
    "cert-expired",
    "cert-not-yet-valid",
    "accepted",
)


def inbound_log_peer(peer: PeerCertificate, port: int) -> str:
    """The log's ``Peer:`` value: certificate name and TCP source port ([CISCO] §4.1)."""
    return f"{peer.display_name}:{port}"


@dataclass(frozen=True, slots=True)
class _State:
    route: InboundRoute
    peer: PeerCertificate
    srv: SrvLookup | None
    settings: EdgeSettings
    domain: str


def _refuse(
    state: _State,
    *,
    rule: str,
    status: tuple[int, str],
    symbol: str,
    data: tuple[tuple[str, str], ...],
    fidelity: Fidelity,
    log_fidelity: Fidelity | None = None,
    explanation: str,
    partner: tuple[int, tuple[tuple[str, str], ...]] | None = None,
) -> Decision:
    result = RESULT_CODES[symbol]
    headers: tuple[tuple[str, str], ...] = ((SERVER_HEADER, state.settings.server_header),)
    if partner is not None and state.settings.rules.send_diagnostics_to_partners:
        # The header the client would get outbound, towards the partner (inferred).
        headers = (diagnostics_header(*partner, state.settings), *headers)
        fidelity = weakest(fidelity, "inferred")
    return Decision(
        rule=rule,
        accepted=False,
        status=status[0],
        reason=status[1],
        domain=state.domain,
        headers=headers,
        edge_log=EdgeLogRecord(result=result, data=data, fidelity=log_fidelity or result.fidelity),
        fidelity=fidelity,
        explanation=explanation,
    )


def _wrong_principal(target: str, peer: PeerCertificate) -> tuple[tuple[str, str], ...]:
    """1010's parameters for a certificate without ``target`` ([CISCO], reference §3.2)."""
    return (
        ("ErrorType", CERT_MISMATCH_INFO),
        ("tls-target", target),
        ("PeerServer", peer.display_name),
        ("HRESULT", hresult("SEC_E_WRONG_PRINCIPAL")),
    )


def _federation_off(s: _State) -> Decision | None:
    if s.settings.federation != "off":
        return None
    return _refuse(
        s,
        rule="federation-off",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_FEDERATION_DISABLED",
        data=(("domain", s.domain),),
        fidelity="unverified",
        explanation=(
            f"Federation is off on this Edge, so the request from {s.domain} is refused "
            "(403 is fedsim's choice: the real wire form is unverified)."
        ),
        partner=(1027, ()),
    )


def _blocked(s: _State) -> Decision | None:
    entry = blocked_entry(s.domain, s.settings)
    if entry is None:
        return None
    return _refuse(
        s,
        rule="blocked-domain",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_BLOCKED_DOMAIN",
        data=(("domain", s.domain), ("blocked", entry)),
        fidelity="unverified",
        explanation=(
            f"{s.domain} is blocked by the blocked-list entry {entry} (sub-domains included, "
            "inferred); 403 is fedsim's choice: the real wire form is unverified."
        ),
    )


def _not_allowed(s: _State) -> Decision | None:
    if s.settings.federation != "allowlist" or s.settings.allowed_entry(s.domain) is not None:
        return None
    return _refuse(
        s,
        rule="domain-not-allowed",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
        data=(("domain", s.domain),),
        fidelity="unverified",
        explanation=(
            f"Partner discovery is off and {s.domain} is not on the allowed list; 403 is "
            "fedsim's choice: the real wire form is unverified."
        ),
    )


def _proxy_fqdn(s: _State) -> Decision | None:
    entry = s.settings.allowed_entry(s.domain)
    if entry is None or entry.proxy_fqdn is None:
        return None
    peer = s.peer
    if certificate_names(peer.names, entry.proxy_fqdn, s.settings):
        return None
    return _refuse(
        s,
        rule="proxy-fqdn-mismatch",
        status=TIMEOUT,
        symbol="EMU_UNVERIFIED_PROXY_FQDN_MISMATCH",
        data=(
            ("domain", s.domain),
            ("proxy-fqdn", entry.proxy_fqdn),
            ("certName", peer.display_name),
        ),
        fidelity="unverified",
        explanation=(
            f"{s.domain} is pinned to the server {entry.proxy_fqdn}, but the peer's "
            f"certificate ({peer.display_name}) does not name it (behaviour inferred, wire "
            "form unverified)."
        ),
        partner=(1010, _wrong_principal(entry.proxy_fqdn, peer)),
    )


def _pinned(s: _State) -> bool:
    entry = s.settings.allowed_entry(s.domain)
    return entry is not None and entry.proxy_fqdn is not None


def _in_domain(s: _State) -> tuple[SrvTarget, ...]:
    assert s.srv is not None  # checked by _srv_lookup, which runs first
    return targets_in_domain(s.srv.targets, s.domain, s.settings)


def _srv_lookup(s: _State) -> Decision | None:
    if _pinned(s):
        return None
    expected = srv_name(s.domain)
    srv = s.srv
    if srv is None:
        raise ValueError(f"the decision needs the SRV lookup of {expected}: facts.srv is None")
    if normalise_domain(srv.name) != expected:
        raise ValueError(f"facts.srv is for {srv.name!r}, the decision needs {expected!r}")
    if srv.outcome == "ok":
        return None
    no_record = srv.outcome in ("nxdomain", "nodata")
    return _refuse(
        s,
        rule=f"srv-{srv.outcome}",
        status=TIMEOUT,
        symbol="EMU_UNVERIFIED_NO_SRV" if no_record else "EMU_UNVERIFIED_DNS_FAILURE",
        data=(("domain", s.domain), ("srv", expected), ("dns-result", srv.outcome.upper())),
        fidelity="inferred",
        explanation=(
            f"The callback SRV lookup {expected} answered {srv.outcome.upper()}, so the Edge "
            f"cannot verify {s.domain} and answers 504 (inferred from [CISCO])."
        ),
        partner=(1008, ()),
    )


def _srv_not_in_domain(s: _State) -> Decision | None:
    if _pinned(s) or _in_domain(s):
        return None
    assert s.srv is not None
    targets = s.srv.targets
    equal = any(normalise_domain(t.target) == s.domain for t in targets)
    names = ", ".join(t.render() for t in targets)
    explanation = (
        f"_sipfederationtls._tcp.{s.domain} points to {names}, and no target is a host "
        f"directly in {s.domain} (sub-domains and other domains are rejected)."
    )
    if equal:
        explanation = explanation[:-1] + "; a target equal to the domain itself is unverified."
    return _refuse(
        s,
        rule="srv-not-in-domain",
        status=TIMEOUT,
        symbol="SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        data=(("domain", s.domain), *fqdn_params(targets)),
        # [CISCO] shows one target; fqdn2... numbering is inferred (reference §2.2).
        fidelity="unverified" if equal else "verbatim",
        log_fidelity="verbatim" if len(targets) == 1 and not equal else "inferred",
        explanation=explanation,
        partner=(1009, (("domain", s.domain), *fqdn_params(targets))),
    )


def _cert_mismatch(s: _State) -> Decision | None:
    if _pinned(s):
        return None
    good = _in_domain(s)
    peer = s.peer
    if any(certificate_names(peer.names, t.host, s.settings) for t in good):
        return None
    expected = good[0].host
    return _refuse(
        s,
        rule="cert-mismatch",
        status=TIMEOUT,
        symbol="SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
        data=(
            ("expected-fqdn", expected),
            ("certName", peer.display_name),
            ("info", CERT_MISMATCH_INFO),
        ),
        fidelity="verbatim",
        explanation=(
            f"The SRV of {s.domain} points to {expected}, but the peer's certificate "
            f"({peer.display_name}) does not carry that name in a SAN (or CN without SANs)."
        ),
        partner=(1010, _wrong_principal(expected, peer)),
    )


def _chain_trust(s: _State) -> Decision | None:
    peer = s.peer
    hosted_private = s.settings.hosted and not peer.public_root
    if peer.chain == "untrusted-root" or hosted_private:
        why = (
            "a hosted (Office 365) Edge accepts only certificates from a public CA"
            if hosted_private
            else "it chains to a root this Edge does not trust"
        )
        return _refuse(
            s,
            rule="untrusted-root",
            status=TIMEOUT,
            symbol="EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT",
            data=(
                ("certName", peer.display_name),
                ("chain", peer.chain),
                *((("hosted", "true"), ("public-root", "false")) if hosted_private else ()),
            ),
            fidelity="unverified",
            explanation=(
                f"The peer's certificate ({peer.display_name}) is refused because {why} "
                "(wire form unverified)."
            ),
            partner=(1010, _chain_params(peer, "SEC_E_UNTRUSTED_ROOT")),
        )
    return _refuse_chain_state(s, _CHAIN_KINDS)


#: Chain states other than trusted/untrusted-root: (rule, EMU code, what is wrong).
_CHAIN_KINDS: dict[str, tuple[str, str, str]] = {
    "bad-chain": ("cert-bad-chain", "EMU_UNVERIFIED_CERT_BAD_CHAIN", "cannot be chained"),
    "wrong-usage": (
        "cert-wrong-usage",
        "EMU_UNVERIFIED_CERT_WRONG_USAGE",
        "is not valid for TLS client/server use (EKU)",
    ),
}

#: Validity states: (rule, EMU code, what is wrong).
_VALIDITY_KINDS: dict[str, tuple[str, str, str]] = {
    "expired": ("cert-expired", "EMU_UNVERIFIED_CERT_EXPIRED", "has expired"),
    "not-yet-valid": (
        "cert-not-yet-valid",
        "EMU_UNVERIFIED_CERT_NOT_YET_VALID",
        "is not valid yet",
    ),
}


#: The Schannel error each chain state maps to (winerror, reference §4.3; use inferred).
_CHAIN_HRESULTS: dict[str, str] = {
    "bad-chain": "SEC_E_UNTRUSTED_ROOT",
    "wrong-usage": "SEC_E_CERT_WRONG_USAGE",
    "expired": "SEC_E_CERT_EXPIRED",
    "not-yet-valid": "SEC_E_CERT_EXPIRED",
}


def _chain_params(peer: PeerCertificate, schannel: str) -> tuple[tuple[str, str], ...]:
    """1010's parameters for a refused chain (HRESULT inferred, no ErrorType: never seen)."""
    return (("PeerServer", peer.display_name), ("HRESULT", hresult(schannel)))


def _refuse_chain_state(s: _State, kinds: dict[str, tuple[str, str, str]]) -> Decision | None:
    """Refuse a peer whose chain state is one of ``kinds`` (the wire form is unverified).

    With the rule ``client_eku = "ignore"`` a "wrong-usage" chain is not refused:
    the Edge then does not look at the EKU (and gathers the chain with usage
    "any", :func:`simulator.policy.client_usage`, so this state should not occur).
    """
    peer = s.peer
    if peer.chain not in kinds:
        return None
    if peer.chain == "wrong-usage" and s.settings.rules.client_eku == "ignore":
        return None
    rule, symbol, what = kinds[peer.chain]
    return _refuse(
        s,
        rule=rule,
        status=TIMEOUT,
        symbol=symbol,
        data=(("certName", peer.display_name), ("chain", peer.chain)),
        fidelity="unverified",
        explanation=(
            f"The peer's certificate ({peer.display_name}) {what} (wire form unverified)."
        ),
        partner=(1010, _chain_params(peer, _CHAIN_HRESULTS[peer.chain])),
    )


def _validity(s: _State) -> Decision | None:
    return _refuse_chain_state(s, _VALIDITY_KINDS)


#: The inbound rules in Microsoft's order (see the module docstring); first refusal wins.
INBOUND_RULES: tuple[tuple[str, Callable[[_State], Decision | None]], ...] = (
    ("federation-off", _federation_off),
    ("blocked-domain", _blocked),
    ("domain-not-allowed", _not_allowed),
    ("proxy-fqdn-mismatch", _proxy_fqdn),
    ("srv-lookup", _srv_lookup),
    ("srv-not-in-domain", _srv_not_in_domain),
    ("cert-mismatch", _cert_mismatch),
    ("cert-trust", _chain_trust),
    ("cert-validity", _validity),
)


def decide_inbound(
    route: InboundRoute, peer: PeerCertificate, srv: SrvLookup | None, settings: EdgeSettings
) -> Decision:
    """Decide an inbound federated request: the first failing rule answers.

    A pure function of exactly its arguments (the request matters only through its
    route), so the Edge may cache a decision under them.

    Args:
        route: the caller's domain and SRV name (:func:`simulator.policy.inbound_route`).
        peer: the peer's client certificate from the mutual TLS handshake.
        srv: the callback SRV lookup of ``route.srv_name``, or None when the route
            needs none.
        settings: the Edge's configuration.

    Returns:
        A refusal (bare 403/504 with ``Server``, and an Edge log record) or the
        "accepted" decision (status 200: route to the called user).

    Raises:
        ValueError: ``srv`` is missing or for another name while the decision needs
            it (a bug in the caller, not the peer's fault).
    """
    state = _State(route, peer, srv, settings, route.domain)
    for _name, check in INBOUND_RULES:
        if (decision := check(state)) is not None:
            return decision
    return Decision(
        rule="accepted",
        accepted=True,
        status=200,
        reason="OK",
        domain=state.domain,
        headers=(),
        edge_log=None,
        fidelity="verbatim",
        explanation=(
            f"{state.domain} passed every rule (policy, SRV in the exact domain, certificate "
            "name and trust): the request is routed to the called user."
        ),
    )
