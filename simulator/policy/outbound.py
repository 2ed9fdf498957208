"""Outbound federation: a Skype client's request leaves through the Edge to a partner.

Reference §2.1 (steps O1-O11), §6 and §7.1. The I/O layer calls these pure
steps in order and stops at the first Decision:

1. :func:`outbound_route` - the caller's own policy (O1: 1002), the Edge's or the
   tenant's policy (O2/O3), then ProxyFqdn or SRV (O4);
2. :func:`outbound_after_srv` - 1008 when the SRV lookup fails (O5), 1009 when no
   target is in the exact domain nor a hosting provider's edge (O6), else the
   usable targets;
3. :func:`outbound_no_address` - 1014 when a target has no address (O7);
4. :func:`outbound_connect_failed` - 1046 when TCP fails (O8, unverified);
5. :func:`outbound_tls_failed` - 1047 when TLS fails (O9);
6. :func:`outbound_check_peer` - 1010 when the partner's certificate is refused,
   revocation included (O10);
7. :func:`outbound_relay` - 1034 added to a partner's error without diagnostics (O11).

Every refusal answers the client with ``ms-diagnostics`` then ``Server: RTC/6.0``
(reference §7.1) and carries an Edge log record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.diagnostics.catalogue import (
    DOMAIN_UNKNOWN_COMPONENT,
    DOMAIN_UNKNOWN_REASON,
    RESULT_CODES,
    TLS_ALERT_HRESULTS,
    WINSOCK_CODES,
    WSAECONNRESET_DESCRIPTION,
    Fidelity,
    hresult,
)
from simulator.diagnostics.format import EdgeLogRecord
from simulator.policy.decision import SERVER_HEADER, Component, Decision
from simulator.policy.facts import (
    FEDERATION_PORT,
    EdgeSettings,
    LocalUser,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    normalise_domain,
)
from simulator.policy.inbound import CERT_MISMATCH_INFO, revocation_refusal
from simulator.policy.partners import provider_targets, tenant_refusal
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

#: [CISCO] 1010 ErrorType for a name mismatch (the only ErrorType text ever seen).
WRONG_PRINCIPAL_ERROR_TYPE = "The peer certificate does not contain a matching FQDN"

_ALERT_PREFIXES = ("tlsv13_alert_", "tlsv1_alert_", "sslv3_alert_", "alert_")


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where the Edge will send an outbound request (reference §2.1 O4).

    Attributes:
        kind: "proxy" = connect to an allowed partner's ProxyFqdn (no SRV);
            "srv" = resolve ``name`` (``_sipfederationtls._tcp.<domain>``) first.
        name: the FQDN to connect to, or the SRV name to resolve.
        port: the port for a "proxy" route (federation port 5061).
    """

    kind: Literal["proxy", "srv"]
    name: str
    port: int = FEDERATION_PORT

    def __post_init__(self) -> None:
        if self.kind not in ("proxy", "srv"):
            raise ValueError(f"route kind must be proxy or srv, not {self.kind!r}")
        if not self.name:
            raise ValueError("route name must not be empty")
        if not 1 <= self.port <= 0xFFFF:
            raise ValueError(f"route port must be 1..65535, not {self.port}")


_diagnostics = diagnostics_header


def _refuse(
    *,
    rule: str,
    status: tuple[int, str],
    domain: str,
    settings: EdgeSettings,
    diagnostics: tuple[str, str] | None,
    symbol: str,
    data: tuple[tuple[str, str], ...],
    fidelity: Fidelity,
    log_fidelity: Fidelity | None = None,
    explanation: str,
    component: Component | None = None,
) -> Decision:
    result = RESULT_CODES[symbol]
    headers = (diagnostics,) if diagnostics is not None else ()
    return Decision(
        rule=rule,
        accepted=False,
        status=status[0],
        reason=status[1],
        domain=normalise_domain(domain),
        headers=(*headers, (SERVER_HEADER, settings.server_header)),
        edge_log=EdgeLogRecord(result=result, data=data, fidelity=log_fidelity or result.fidelity),
        fidelity=fidelity,
        explanation=explanation,
        component=component,
    )


#: A tenant's refusal: (rule, EMU code, why). The client gets 403 + 1002 for each
#: (field cases C13: "domain not on the allowed list or not set up for federation").
_TENANT_REFUSALS: dict[str, tuple[str, str, str]] = {
    "off": (
        "tenant-federation-off",
        "EMU_UNVERIFIED_TENANT_FEDERATION_DISABLED",
        "the tenant does not allow federated users",
    ),
    "blocked": (
        "tenant-blocked-domain",
        "EMU_UNVERIFIED_TENANT_BLOCKED_DOMAIN",
        "the tenant blocks the domain",
    ),
    "not-allowed": (
        "tenant-domain-not-allowed",
        "EMU_UNVERIFIED_TENANT_DOMAIN_NOT_ALLOWED",
        "the tenant's allowed list does not name the domain (any allowed domain ends open "
        "federation)",
    ),
}


def outbound_route(
    target_domain: str, settings: EdgeSettings, *, caller: LocalUser | None = None
) -> Decision | Route:
    """Apply the caller's and the Edge's policy and choose how to reach ``target_domain``.

    The caller's ExternalAccessPolicy comes first (reference §2.1 O1, evaluated on
    the Front End): without federation access the client gets the verbatim
    ``403 Forbidden`` + ``1002;reason="From URI not authorized to communicate with
    federated partners"``. A tenant (profile office365) refuses with the same 1002
    (field cases C13; its use for each tenant setting is inferred). The on-premises
    Edge's refusals are unverified on the wire (reference §2.1 O2/O3, §9 S11):
    federation off answers ``403`` with 1027 (the FE's verified "Cannot route this
    type of SIP request to or from federated partners"; its status is unknown);
    blocked and not-allowed domains answer a bare ``403`` because no Microsoft
    ms-diagnostics id is known for them and fedsim does not invent one.

    Returns:
        A refusal Decision, ``Route("proxy", proxy_fqdn)`` for an allowed partner
        server, else ``Route("srv", "_sipfederationtls._tcp.<domain>")``.
    """
    domain = normalise_domain(target_domain)
    if caller is not None and not caller.federation:
        who = f"{caller.user}@{caller.domain}"
        return _refuse(
            rule="user-federation-off",
            status=FORBIDDEN,
            domain=domain,
            settings=settings,
            diagnostics=_diagnostics(1002, (), settings),
            symbol="EMU_UNVERIFIED_USER_NOT_FEDERATED",
            data=(("user", who), ("domain", domain)),
            fidelity="verbatim",
            explanation=(
                f"{who}'s external access policy does not allow federation "
                "(EnableFederationAccess False): 403 with 1002, before the Edge is asked."
            ),
        )
    if (tenant := tenant_refusal(domain, settings)) is not None:
        rule, symbol, why = _TENANT_REFUSALS[tenant[0]]
        return _refuse(
            rule=rule,
            status=FORBIDDEN,
            domain=domain,
            settings=settings,
            diagnostics=_diagnostics(1002, (), settings),
            symbol=symbol,
            data=(("domain", domain), *((("blocked", tenant[1]),) if tenant[1] else ())),
            fidelity="inferred",
            explanation=(
                f"{why}, so the request to {domain} is refused with 403 + 1002 (the form "
                "Office 365 gives its users; which tenant setting gives it is inferred)."
            ),
        )
    if settings.tenant is not None:
        return Route(kind="srv", name=srv_name(domain))
    if settings.federation == "off":
        return _refuse(
            rule="federation-off",
            status=FORBIDDEN,
            domain=domain,
            settings=settings,
            diagnostics=_diagnostics(1027, (), settings),
            symbol="EMU_UNVERIFIED_FEDERATION_DISABLED",
            data=(("domain", domain),),
            fidelity="unverified",
            explanation=(
                f"Federation is off, so the request to {domain} cannot leave (1027 is verbatim; "
                "its 403 status is unverified)."
            ),
        )
    if (entry := blocked_entry(domain, settings)) is not None:
        return _refuse(
            rule="blocked-domain",
            status=FORBIDDEN,
            domain=domain,
            settings=settings,
            diagnostics=None,
            symbol="EMU_UNVERIFIED_BLOCKED_DOMAIN",
            data=(("domain", domain), ("blocked", entry)),
            fidelity="unverified",
            explanation=(
                f"{domain} is blocked by the blocked-list entry {entry}; the real answer is "
                "unverified, so fedsim sends a bare 403 without ms-diagnostics."
            ),
        )
    allowed = settings.allowed_entry(domain)
    if settings.federation == "allowlist" and allowed is None:
        return _refuse(
            rule="domain-not-allowed",
            status=FORBIDDEN,
            domain=domain,
            settings=settings,
            diagnostics=None,
            symbol="EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
            data=(("domain", domain),),
            fidelity="unverified",
            explanation=(
                f"Partner discovery is off and {domain} is not on the allowed list; the real "
                "answer is unverified, so fedsim sends a bare 403 without ms-diagnostics."
            ),
        )
    if allowed is not None and allowed.proxy_fqdn is not None:
        return Route(kind="proxy", name=normalise_domain(allowed.proxy_fqdn))
    return Route(kind="srv", name=srv_name(domain))


def outbound_after_srv(
    domain: str, srv: SrvLookup, settings: EdgeSettings
) -> Decision | tuple[SrvTarget, ...]:
    """Judge the SRV answer for ``domain`` (reference §2.1 O5/O6).

    Returns:
        ``504`` + 1008 when the lookup failed (NXDOMAIN, NODATA, SERVFAIL, REFUSED,
        timeout); ``504`` + 1009 with ``domain=`` and ``fqdn1=``, ``fqdn2=``... (every
        target, SRV order) when no target is exactly in the domain; else the
        in-domain targets in SRV order.

    Raises:
        ValueError: ``srv`` is the lookup of another name.
    """
    d = normalise_domain(domain)
    expected = srv_name(d)
    if normalise_domain(srv.name) != expected:
        raise ValueError(f"srv is the lookup of {srv.name!r}, expected {expected!r}")
    if srv.outcome != "ok":
        no_record = srv.outcome in ("nxdomain", "nodata")
        return _refuse(
            rule=f"srv-{srv.outcome}",
            status=TIMEOUT,
            domain=d,
            settings=settings,
            diagnostics=_diagnostics(1008, (), settings),
            symbol="EMU_UNVERIFIED_NO_SRV" if no_record else "EMU_UNVERIFIED_DNS_FAILURE",
            data=(("domain", d), ("srv", expected), ("dns-result", srv.outcome.upper())),
            fidelity="verbatim",
            explanation=(
                f"The SRV lookup {expected} answered {srv.outcome.upper()}, so the Edge has "
                "nowhere to send the request (504 + 1008)."
            ),
        )
    usable = {
        *targets_in_domain(srv.targets, d, settings),
        *provider_targets(srv.targets, settings),
    }
    good = tuple(t for t in srv.targets if t in usable)
    if good:
        return good
    equal = any(normalise_domain(t.target) == d for t in srv.targets)
    one = len(srv.targets) == 1
    names = ", ".join(t.render() for t in srv.targets)
    note = "; a target equal to the domain itself is unverified" if equal else ""
    params = (("domain", d), *fqdn_params(srv.targets))
    fidelity: Fidelity = "unverified" if equal else ("verbatim" if one else "inferred")
    diagnostics = _diagnostics(1009, params, settings)
    if settings.allowed_entry(d) is None:
        # Reference §12 (bhargavs, field cases C6): a domain neither allowed nor a
        # hosting provider's: Data reason= and the component line are verbatim, the
        # Result-Code is not public.
        return _refuse(
            rule="srv-not-in-domain",
            status=TIMEOUT,
            domain=d,
            settings=settings,
            diagnostics=diagnostics,
            symbol="EMU_UNVERIFIED_DOMAIN_UNKNOWN",
            data=(*params, ("reason", DOMAIN_UNKNOWN_REASON)),
            fidelity=fidelity,
            log_fidelity="inferred",
            explanation=(
                f"{d} is not configured (no allowed entry), and {expected} points to {names}: "
                f"no target is a host directly in {d}{note} nor a hosting provider's edge "
                "(504 + 1009; a provider such as sipfed.online.lync.com needs "
                "New-CsHostingProvider)."
            ),
            component=Component(
                text=DOMAIN_UNKNOWN_COMPONENT.format(domain=d),
                location=None,
                result=None,
            ),
        )
    return _refuse(
        rule="srv-not-in-domain",
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=diagnostics,
        symbol="SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        data=params,
        # [CISCO] shows fqdn1 only; fqdn2... is inferred; the log of this direction is
        # inferred (reference §9 S2).
        fidelity=fidelity,
        log_fidelity="inferred",
        explanation=(
            f"{expected} points to {names}, and no target is a host directly in {d}{note} "
            "(504 + 1009)."
        ),
    )


def outbound_no_address(domain: str, target: str, settings: EdgeSettings) -> Decision:
    """``504`` + 1014 when the SRV target or ProxyFqdn has no address (reference §2.1 O7).

    The 1014 string is the spec's (V); its wire form and 504 status are inferred.
    """
    d = normalise_domain(domain)
    host = target.rstrip(".")
    return _refuse(
        rule="no-address",
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=_diagnostics(1014, (), settings),
        symbol="EMU_UNVERIFIED_NO_ADDRESS",
        data=(("domain", d), ("fqdn", host)),
        fidelity="inferred",
        explanation=f"{host} (for {d}) has no A/AAAA record, so the Edge cannot connect (1014).",
    )


def outbound_connect_failed(
    domain: str,
    target: str,
    port: int,
    winsock: Literal["refused", "timeout"],
    settings: EdgeSettings,
) -> Decision:
    """``504`` + 1046 when TCP to the partner fails (reference §2.1 O8: unverified).

    ``WinsockFailureCode`` is ``10061(WSAECONNREFUSED)`` or ``10060(WSAETIMEDOUT)``
    (inferred from the 1047 form, reference §4.3).
    """
    if winsock not in ("refused", "timeout"):
        raise ValueError(f"winsock must be refused or timeout, not {winsock!r}")
    d = normalise_domain(domain)
    where = f"{target.rstrip('.')}:{port}"
    code = WINSOCK_CODES[winsock]
    return _refuse(
        rule=f"connect-{winsock}",
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=_diagnostics(1046, (("WinsockFailureCode", code),), settings),
        symbol="EMU_UNVERIFIED_CONNECT_FAILED",
        data=(("domain", d), ("fqdn", where), ("WinsockFailureCode", code)),
        fidelity="unverified",
        explanation=(f"TCP to {where} failed ({code}); 1046 and its form are unverified guesses."),
    )


def _alert_symbol(alert: str) -> str | None:
    name = alert.strip().lower()
    for prefix in _ALERT_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return TLS_ALERT_HRESULTS.get(name)


def outbound_tls_failed(
    domain: str,
    target: str,
    settings: EdgeSettings,
    *,
    reset: bool,
    alert: str | None,
) -> Decision:
    """1047 when the TLS handshake with the partner fails (reference §2.1 O9).

    ``reset``: the partner closed the connection (the verbatim form, risual.com:
    ``WinsockFailureCode="10054(WSAECONNRESET)";WinsockFailureDescription="The peer
    forced closure of the connection"``). Otherwise a received TLS ``alert``
    (``unknown_ca`` or OpenSSL's ``TLSV1_ALERT_UNKNOWN_CA``) is reported as the
    HRESULT Schannel maps it to (reference §4.3; its use in 1047 is inferred).
    The 504 status is inferred.
    """
    d = normalise_domain(domain)
    host = target.rstrip(".")
    params: tuple[tuple[str, str], ...] = ()
    if reset:
        rule = "tls-reset"
        params = (
            ("WinsockFailureCode", WINSOCK_CODES["reset"]),
            ("WinsockFailureDescription", WSAECONNRESET_DESCRIPTION),
        )
        what = "the partner reset the connection"
    elif alert is not None and (symbol := _alert_symbol(alert)) is not None:
        rule = "tls-alert"
        params = (("HRESULT", hresult(symbol)),)
        what = f"the partner sent the TLS alert {alert}"
    else:
        rule = "tls-failed"
        what = f"the handshake failed ({alert or 'no detail'})"
    data = (("domain", d), ("fqdn", host), *(() if alert is None else (("alert", alert),)))
    return _refuse(
        rule=rule,
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=_diagnostics(1047, params, settings),
        symbol="EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED",
        data=data,
        fidelity="inferred",
        explanation=(
            f"TLS with {host} failed: {what}; typically the partner does not trust the "
            "Edge's CA (1047)."
        ),
    )


_CHAIN_FAULTS: dict[str, tuple[str, str, str, str]] = {
    # chain -> (rule, Schannel symbol, log symbol, sentence). HRESULT values are V
    # (winerror, reference §4.3); their use in 1010 is inferred. not-yet-valid and
    # expired share Windows' time-validity error; a chain that cannot be built is
    # reported as an untrusted root (I).
    "untrusted-root": (
        "untrusted-root",
        "SEC_E_UNTRUSTED_ROOT",
        "EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT",
        "chains to a root this Edge does not trust",
    ),
    "bad-chain": (
        "cert-bad-chain",
        "SEC_E_UNTRUSTED_ROOT",
        "EMU_UNVERIFIED_CERT_BAD_CHAIN",
        "cannot be chained to a trusted root",
    ),
    "wrong-usage": (
        "cert-wrong-usage",
        "SEC_E_CERT_WRONG_USAGE",
        "EMU_UNVERIFIED_CERT_WRONG_USAGE",
        "is not valid for this usage (EKU)",
    ),
    "expired": (
        "cert-expired",
        "SEC_E_CERT_EXPIRED",
        "EMU_UNVERIFIED_CERT_EXPIRED",
        "has expired",
    ),
    "not-yet-valid": (
        "cert-not-yet-valid",
        "SEC_E_CERT_EXPIRED",
        "EMU_UNVERIFIED_CERT_NOT_YET_VALID",
        "is not valid yet",
    ),
}


def outbound_check_peer(
    domain: str, tls_target: str, peer: PeerCertificate, settings: EdgeSettings
) -> Decision | None:
    """Validate the partner's server certificate (reference §2.1 O10, §6).

    Chain faults, then revocation (rule ``revocation``: ``CRYPT_E_REVOKED``, or
    ``CRYPT_E_REVOCATION_OFFLINE`` under "hard"), are checked before the name, as
    Windows' SSL chain policy does (inferred); a hosted Edge refuses any non-public
    root. A name mismatch gives the verbatim [CISCO] 1010 (``ErrorType``,
    ``tls-target``, ``PeerServer``, ``HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)"``).
    Other faults give 1010 with the matching HRESULT and no ``ErrorType``:
    Microsoft's text for them was never captured (reference §10.3) and fedsim does
    not invent it.

    Returns:
        A ``504`` + 1010 refusal, or None when the certificate is acceptable.
    """
    d = normalise_domain(domain)
    target = tls_target.rstrip(".")
    hosted_private = settings.hosted and not peer.public_root
    chain = "untrusted-root" if hosted_private else peer.chain
    if chain != "trusted":
        rule, schannel, symbol, sentence = _CHAIN_FAULTS[chain]
        if hosted_private:
            sentence = "is not from a public CA, which a hosted (Office 365) Edge requires"
        return _chain_refusal(
            d, target, peer, settings, (rule, symbol, schannel, sentence), (("chain", peer.chain),)
        )
    revoked = revocation_refusal(peer, settings)
    if revoked is None:
        if certificate_names(peer.names, target, settings):
            return None
        return _wrong_principal(d, target, peer, settings)
    # Revocation is part of the chain, which Windows builds before the name is checked.
    return _chain_refusal(d, target, peer, settings, revoked, ())


def _chain_refusal(
    d: str,
    target: str,
    peer: PeerCertificate,
    settings: EdgeSettings,
    fault: tuple[str, str, str, str],
    extra: tuple[tuple[str, str], ...],
) -> Decision:
    """The inferred 1010 for a chain or revocation fault: (rule, EMU code, Schannel code, why)."""
    rule, symbol, schannel, what = fault
    params = (
        ("tls-target", target),
        ("PeerServer", peer.display_name),
        ("HRESULT", hresult(schannel)),
    )
    return _refuse(
        rule=rule,
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=_diagnostics(1010, params, settings),
        symbol=symbol,
        data=(("tls-target", target), ("certName", peer.display_name), *extra),
        fidelity="inferred",
        explanation=(
            f"The certificate of {target} ({peer.display_name}) {what} (1010 with {schannel}; "
            "inferred)."
        ),
    )


def _wrong_principal(
    d: str, target: str, peer: PeerCertificate, settings: EdgeSettings
) -> Decision:
    mismatch = (
        ("ErrorType", WRONG_PRINCIPAL_ERROR_TYPE),
        ("tls-target", target),
        ("PeerServer", peer.display_name),
        ("HRESULT", hresult("SEC_E_WRONG_PRINCIPAL")),
    )
    return _refuse(
        rule="cert-mismatch",
        status=TIMEOUT,
        domain=d,
        settings=settings,
        diagnostics=_diagnostics(1010, mismatch, settings),
        symbol="EMU_UNVERIFIED_CERT_WRONG_PRINCIPAL",
        data=(
            ("expected-fqdn", target),
            ("certName", peer.display_name),
            ("info", CERT_MISMATCH_INFO),
        ),
        fidelity="verbatim",
        explanation=(
            f"The Edge connected to {target}, but its certificate ({peer.display_name}) does "
            "not carry that name in a SAN (or CN without SANs): 1010 SEC_E_WRONG_PRINCIPAL."
        ),
    )


def outbound_relay(
    domain: str,
    peer_fqdn: str,
    status: int,
    reason: str,
    peer_sent_diagnostics: bool,
    settings: EdgeSettings,
) -> tuple[tuple[str, str], ...]:
    """Headers the Edge adds to a partner's response it relays to the client (O11).

    A partner error (4xx-6xx) without ms-diagnostics gets the verbatim 1034
    (``Domain=``, ``PeerServer=``, ``source=``) and keeps its own status (reference
    §3.2). Provisional and success responses, redirections (not errors; inferred)
    and errors that already carry ms-diagnostics get nothing.

    Returns:
        The headers to append, in order (possibly empty).
    """
    if not 100 <= status <= 699:
        raise ValueError(f"not a SIP status: {status}")
    if not reason:
        raise ValueError("the partner's reason phrase must not be empty")
    if status < 400 or peer_sent_diagnostics:
        return ()
    params = (("Domain", normalise_domain(domain)), ("PeerServer", peer_fqdn.rstrip(".")))
    return (_diagnostics(1034, params, settings),)
