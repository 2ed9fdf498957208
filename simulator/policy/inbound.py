"""Inbound federation: a federated peer (Expressway-E) sends a request to the Edge.

Reference §2.2 and DESIGN.md. Rules run in Microsoft's order and the first
failing rule decides, so the Edge log record is deterministic:

1. first Route not matching the connection (S14) ................ 504 (V)
2. federation off (AllowFederatedUsers; a tenant's master switch) 403 (U)
3. sender domain blocked (suffix match, I; a tenant's list) ...... 403 (U)
4. allow-list mode and domain not allowed (a tenant's list) ..... 403 (U)
5. the sender claims one of our domains, not via a shared-space
   hosting provider (SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN) 504 (U)
6. allowed partner server: certificate must name ProxyFqdn ...... 504 (U)
7. callback SRV lookup of the sender domain failed .............. 504 (I)
8. no SRV target exactly in the domain, nor a hosting provider ... 504 (V [CISCO])
9. peer certificate does not name that target .................... 504 (V [CISCO])
10. chain not trusted (hosted Edge: public root only) ............ 504 (U)
11. certificate outside its validity period ...................... 504 (U)
12. certificate revoked, or its CRL unreachable (rule revocation)  504 (U)
13. a shared-space provider's message for a domain we lack (1017)  403 (I)
14. a discovered partner over its rate or contact limit .......... 503 (U, a rule)
15. an unverified sender not in the called user's contacts ....... 403 (U)
16. the called user may not federate (EnableFederationAccess) ..... 403 (U)

Wire forms. The peer gets a bare answer with ``Server: RTC/6.0`` and no
ms-diagnostics: diagnostics do not cross federation by default (reference
§3.1, §3.3). With the rule ``send_diagnostics_to_partners``
(``Set-CsDiagnosticHeaderConfiguration -SendToExternalNetworks $true``) the
refusal carries the ms-diagnostics a Skype client gets for the same fault
outbound (1027, 1008, 1009, 1010, 1002; none for a blocked or not-allowed
domain, whose id is unknown): which header the Edge sends then is inferred, no
trace shows one. 1017 always goes back to a shared-address-space provider: the
Online user saw it (field cases C10). DNS and certificate faults answer
``504 Server time-out`` exactly as [CISCO] shows. For the policy refusals the
real wire form is unknown (reference §2.1 O3, §9 S11: "likely 403"); fedsim
answers ``403 Forbidden``, the status Microsoft uses for its one verified policy
refusal (1002), and marks those decisions "unverified". Rules 10-12 normally
fail the TLS handshake before any SIP is read (reference §2.2 I1); the policy
still answers them for I/O layers that accept the handshake and check
afterwards, marked "unverified".

Inputs. Besides the route, the peer's certificate, the SRV answer and the
settings, a decision may depend on the request's first Route (:class:`Hop`),
the called user (:class:`LocalUser`) and where a discovered partner stands
against its limits (:data:`PartnerLoad`, counted by the Edge): each is an
explicit argument, so a cache keyed by the arguments is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulator.diagnostics.catalogue import (
    EVENT_14508,
    RESULT_CODES,
    ROUTE_COMPONENT_LOCATION,
    ROUTE_UNTRUSTED_COMPONENT,
    SPLIT_DOMAIN_SUMMARY,
    Fidelity,
    hresult,
    weakest,
)
from simulator.diagnostics.format import EdgeLogRecord
from simulator.policy.decision import (
    SERVER_HEADER,
    Component,
    Decision,
    WindowsEvent,
)
from simulator.policy.facts import (
    EdgeSettings,
    Hop,
    HostingProvider,
    LocalUser,
    PartnerLoad,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    normalise_domain,
)
from simulator.policy.partners import (
    discovered_partner,
    provider_targets,
    route_names_connection,
    shared_provider_peer,
    srv_provider,
    tenant_refusal,
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
    "route-untrusted",
    "federation-off",
    "tenant-federation-off",
    "blocked-domain",
    "tenant-blocked-domain",
    "domain-not-allowed",
    "tenant-domain-not-allowed",
    "split-domain-invalid",
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
    "cert-revoked",
    "crl-offline",
    "split-domain-type",
    "discovered-rate",
    "discovered-contacts",
    "not-a-contact",
    "user-federation-off",
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
    hop: Hop | None = None
    user: LocalUser | None = None
    load: PartnerLoad = "within"


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
    always: tuple[str, str] | None = None,
    component: Component | None = None,
    windows_event: WindowsEvent | None = None,
) -> Decision:
    result = RESULT_CODES[symbol]
    headers: tuple[tuple[str, str], ...] = ((SERVER_HEADER, state.settings.server_header),)
    if always is not None:
        headers = (always, *headers)
    elif partner is not None and state.settings.rules.send_diagnostics_to_partners:
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
        component=component,
        windows_event=windows_event,
    )


def _wrong_principal(target: str, peer: PeerCertificate) -> tuple[tuple[str, str], ...]:
    """1010's parameters for a certificate without ``target`` ([CISCO], reference §3.2)."""
    return (
        ("ErrorType", CERT_MISMATCH_INFO),
        ("tls-target", target),
        ("PeerServer", peer.display_name),
        ("HRESULT", hresult("SEC_E_WRONG_PRINCIPAL")),
    )


def _route_untrusted(s: _State) -> Decision | None:
    """Reference §4.1 / S14: a first Route that does not name the connection is refused."""
    if s.hop is None or route_names_connection(s.hop, s.settings):
        return None
    return _refuse(
        s,
        rule="route-untrusted",
        status=TIMEOUT,
        symbol="SIPPROXY_E_ROUTING",
        data=(),
        fidelity="verbatim",
        explanation=(
            f"The request's first Route ({s.hop.route}) does not name this Edge on the "
            "connection it arrived on; the Edge processes no Route headers from a federated "
            "(non-trusted) source and answers a bare 504."
        ),
        component=Component(
            text=ROUTE_UNTRUSTED_COMPONENT,
            location=ROUTE_COMPONENT_LOCATION,
            result="SIPPROXY_E_ROUTING",
        ),
    )


#: A tenant's refusal: (rule, EMU code, what is wrong).
_TENANT_KINDS: dict[str, tuple[str, str, str]] = {
    "off": (
        "tenant-federation-off",
        "EMU_UNVERIFIED_TENANT_FEDERATION_DISABLED",
        "the tenant does not allow federated users (AllowFederatedUsers False)",
    ),
    "blocked": (
        "tenant-blocked-domain",
        "EMU_UNVERIFIED_TENANT_BLOCKED_DOMAIN",
        "the tenant blocks it",
    ),
    "not-allowed": (
        "tenant-domain-not-allowed",
        "EMU_UNVERIFIED_TENANT_DOMAIN_NOT_ALLOWED",
        "the tenant's allowed list does not name it (any allowed domain ends open federation)",
    ),
}


def _tenant(s: _State, kinds: tuple[str, ...]) -> Decision | None:
    found = tenant_refusal(s.domain, s.settings)
    if found is None or found[0] not in kinds:
        return None
    rule, symbol, why = _TENANT_KINDS[found[0]]
    data = (("domain", s.domain), *((("blocked", found[1]),) if found[1] else ()))
    return _refuse(
        s,
        rule=rule,
        status=FORBIDDEN,
        symbol=symbol,
        data=data,
        fidelity="unverified",
        explanation=(
            f"The request from {s.domain} is refused: {why}. The partner sees a bare 403 (Teams "
            "shows federated partners no SIP diagnostics; the wire form is unverified)."
        ),
    )


def _federation_off(s: _State) -> Decision | None:
    if s.settings.tenant is not None:
        return _tenant(s, ("off",))
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
    if s.settings.tenant is not None:
        return _tenant(s, ("blocked",))
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
    if s.settings.tenant is not None:
        return _tenant(s, ("not-allowed",))
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


def _own_domain(s: _State) -> bool:
    return s.domain in s.settings.domains


def _split_domain(s: _State) -> Decision | None:
    """The sender claims one of this Edge's own domains (split domain, field cases C11).

    Only a hosting provider sharing the SIP address space may send for them; any
    other external server gets SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN (the
    symbol is verbatim; its value, text and the 504 are not public).
    """
    if not _own_domain(s) or shared_provider_peer(s.peer, s.settings) is not None:
        return None
    return _refuse(
        s,
        rule="split-domain-invalid",
        status=TIMEOUT,
        symbol="SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN",
        data=(("domain", s.domain), ("peer", s.peer.display_name)),
        fidelity="unverified",
        explanation=(
            f"{s.domain} is one of this Edge's own SIP domains, and {s.peer.display_name} is "
            "no hosting provider sharing that address space (New-CsHostingProvider "
            "-EnabledSharedAddressSpace $true), so the Edge refuses it."
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
    """No callback SRV: an allowed partner server, or one of our own (split) domains."""
    entry = s.settings.allowed_entry(s.domain)
    return (entry is not None and entry.proxy_fqdn is not None) or _own_domain(s)


def _in_domain(s: _State) -> tuple[SrvTarget, ...]:
    """The usable SRV targets: exactly in the domain, or a hosting provider's edge."""
    assert s.srv is not None  # checked by _srv_lookup, which runs first
    usable = {
        *targets_in_domain(s.srv.targets, s.domain, s.settings),
        *provider_targets(s.srv.targets, s.settings),
    }
    return tuple(t for t in s.srv.targets if t in usable)


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
        f"directly in {s.domain} (sub-domains and other domains are rejected) or a hosting "
        "provider's edge."
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


def _revocation(s: _State) -> Decision | None:
    """Rule ``revocation``: a revoked chain always, an unreachable CRL under "hard"."""
    refusal = revocation_refusal(s.peer, s.settings)
    if refusal is None:
        return None
    rule, symbol, schannel, what = refusal
    return _refuse(
        s,
        rule=rule,
        status=TIMEOUT,
        symbol=symbol,
        data=(("certName", s.peer.display_name), ("revocation", s.peer.revocation)),
        fidelity="unverified",
        explanation=(
            f"The peer's certificate ({s.peer.display_name}) {what} (wire form unverified)."
        ),
        partner=(1010, _chain_params(s.peer, schannel)),
    )


def revocation_refusal(
    peer: PeerCertificate, settings: EdgeSettings
) -> tuple[str, str, str, str] | None:
    """Whether the rule ``revocation`` refuses ``peer``: (rule, EMU code, Schannel code, why).

    "off" never refuses; "soft" refuses a revoked chain; "hard" also refuses a
    chain whose CRL could not be fetched (CRYPT_E_REVOCATION_OFFLINE) or that names
    no CRL distribution point (CRYPT_E_NO_REVOCATION_CHECK). The HRESULT values are
    Windows' (reference §4.3); what the Edge does with them is unverified.
    """
    mode = settings.rules.revocation
    status = peer.revocation
    if mode == "off" or status in ("unchecked", "good"):
        return None
    if status == "revoked":
        return ("cert-revoked", "EMU_UNVERIFIED_CERT_REVOKED", "CRYPT_E_REVOKED", "is revoked")
    if mode != "hard":
        return None
    if status == "offline":
        return (
            "crl-offline",
            "EMU_UNVERIFIED_CRL_OFFLINE",
            "CRYPT_E_REVOCATION_OFFLINE",
            "cannot be checked: its CRL could not be fetched (revocation = hard)",
        )
    return (
        "crl-offline",
        "EMU_UNVERIFIED_CRL_OFFLINE",
        "CRYPT_E_NO_REVOCATION_CHECK",
        "names no CRL distribution point, so it cannot be checked (revocation = hard)",
    )


def _shared_provider(s: _State) -> HostingProvider | None:
    """The shared-address-space provider this request came through, if any."""
    provider = srv_provider(s.srv, s.settings)
    if provider is not None and provider.shared_address_space:
        return provider
    if _own_domain(s):
        return shared_provider_peer(s.peer, s.settings)
    return None


def _split_domain_type(s: _State) -> Decision | None:
    """1017 (field cases C10): a shared-space provider's message for a domain we lack."""
    provider = _shared_provider(s)
    if provider is None or s.user is None or s.user.domain in s.settings.domains:
        return None
    params = (("summary", SPLIT_DOMAIN_SUMMARY),)
    return _refuse(
        s,
        rule="split-domain-type",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_SPLIT_DOMAIN_TYPE",
        data=(("domain", s.user.domain), ("provider", provider.proxy_fqdn)),
        fidelity="inferred",
        explanation=(
            f"{provider.name} ({provider.proxy_fqdn}) shares this Edge's SIP address space, "
            f"but {s.user.domain} is not in its topology: 1017 (reason and summary verbatim; "
            "the 403 is inferred). Add the domain to the on-premises topology."
        ),
        always=diagnostics_header(1017, params, s.settings),
    )


def _discovered(s: _State) -> Decision | None:
    """A discovered partner over its rate or contact limit (reference §5.2, §12)."""
    if s.load == "within" or not discovered_partner(s.domain, s.srv, s.settings):
        return None
    rules = s.settings.rules
    code = rules.discovered_refusal
    if s.load == "contacts":
        rule, symbol = "discovered-contacts", "EMU_UNVERIFIED_DISCOVERED_CONTACTS"
        what = f"has contacted {rules.discovered_contacts} distinct internal users already"
        data = (("domain", s.domain), ("limit", str(rules.discovered_contacts)))
        event = WindowsEvent(id=14508, text=EVENT_14508)
    else:
        rule, symbol = "discovered-rate", "EMU_UNVERIFIED_DISCOVERED_RATE"
        what = f"sends more than {rules.discovered_rate} messages per second"
        data = (("domain", s.domain), ("limit", f"{rules.discovered_rate}/s"))
        # 14508's text is about contacts; writing it for the rate limit is inferred.
        event = WindowsEvent(id=14508, text=EVENT_14508, fidelity="inferred")
    return _refuse(
        s,
        rule=rule,
        status=(code, _REASONS[code]),
        symbol=symbol,
        data=data,
        fidelity="unverified",
        explanation=(
            f"{s.domain} is a discovered partner and {what}; allowed partners are exempt. "
            f"What the partner receives is not public: {code} is the rule discovered_refusal."
        ),
        windows_event=event,
    )


#: Reason phrases of the statuses fedsim may choose (RFC 3261 §21).
_REASONS: dict[int, str] = {
    403: "Forbidden",
    480: "Temporarily Unavailable",
    503: "Service Unavailable",
    504: "Server time-out",
}


def _unverified(s: _State) -> str | None:
    """Why the request counts as unverified (reference §5.3), or None when it is verified."""
    provider = srv_provider(s.srv, s.settings)
    if provider is not None:
        if provider.verification == "AlwaysUnverifiable":
            return f"the hosting provider {provider.name} is set AlwaysUnverifiable"
        return None
    tenant = s.settings.tenant
    if (
        tenant is not None
        and tenant.treat_discovered_as_unverified
        and discovered_partner(s.domain, s.srv, s.settings)
    ):
        return "the tenant treats discovered partners as unverified"
    return None


def _not_a_contact(s: _State) -> Decision | None:
    why = _unverified(s)
    if why is None or s.user is None or s.user.knows_peer:
        return None
    called = f"{s.user.user}@{s.user.domain}"
    return _refuse(
        s,
        rule="not-a-contact",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_NOT_A_CONTACT",
        data=(("domain", s.domain), ("user", called)),
        fidelity="unverified",
        explanation=(
            f"The message from {s.domain} is unverified ({why}), and unverified messages "
            f"reach only users who have the sender in their contacts; {called} does not."
        ),
    )


def _user_federation(s: _State) -> Decision | None:
    """The called user's ExternalAccessPolicy forbids federation (reference §5.5)."""
    if s.user is None or s.user.federation:
        return None
    called = f"{s.user.user}@{s.user.domain}"
    return _refuse(
        s,
        rule="user-federation-off",
        status=FORBIDDEN,
        symbol="EMU_UNVERIFIED_USER_NOT_FEDERATED",
        data=(("user", called), ("domain", s.domain)),
        fidelity="unverified",
        explanation=(
            f"{called} may not talk to federated partners (EnableFederationAccess False); "
            "outbound that is 403 with 1002 (verbatim), inbound the form is unverified."
        ),
        partner=(1002, ()),
    )


#: The inbound rules in Microsoft's order (see the module docstring); first refusal wins.
INBOUND_RULES: tuple[tuple[str, Callable[[_State], Decision | None]], ...] = (
    ("route-untrusted", _route_untrusted),
    ("federation-off", _federation_off),
    ("blocked-domain", _blocked),
    ("domain-not-allowed", _not_allowed),
    ("split-domain-invalid", _split_domain),
    ("proxy-fqdn-mismatch", _proxy_fqdn),
    ("srv-lookup", _srv_lookup),
    ("srv-not-in-domain", _srv_not_in_domain),
    ("cert-mismatch", _cert_mismatch),
    ("cert-trust", _chain_trust),
    ("cert-validity", _validity),
    ("cert-revocation", _revocation),
    ("split-domain-type", _split_domain_type),
    ("discovered-limits", _discovered),
    ("not-a-contact", _not_a_contact),
    ("user-federation-off", _user_federation),
)


def decide_inbound(
    route: InboundRoute,
    peer: PeerCertificate,
    srv: SrvLookup | None,
    settings: EdgeSettings,
    *,
    hop: Hop | None = None,
    user: LocalUser | None = None,
    load: PartnerLoad = "within",
) -> Decision:
    """Decide an inbound federated request: the first failing rule answers.

    A pure function of exactly its arguments (the request matters only through its
    route, its first Route and its called user), so the Edge may cache a decision
    under them.

    Args:
        route: the caller's domain and SRV name (:func:`simulator.policy.inbound_route`).
        peer: the peer's client certificate from the mutual TLS handshake.
        srv: the callback SRV lookup of ``route.srv_name``, or None when the route
            needs none.
        settings: the Edge's configuration.
        hop: the request's first Route and the connection it came on (None: no Route).
        user: the called user (per-user policy, contacts, the domain for 1017).
        load: where a discovered partner stands against its limits
            (:func:`simulator.policy.partner_load` of the Edge's counts).

    Returns:
        A refusal (bare 403/504 with ``Server``, and an Edge log record) or the
        "accepted" decision (status 200: route to the called user).

    Raises:
        ValueError: ``srv`` is missing or for another name while the decision needs
            it (a bug in the caller, not the peer's fault).
    """
    state = _State(route, peer, srv, settings, route.domain, hop, user, load)
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
