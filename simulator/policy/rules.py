"""Microsoft's name rules, shared by both directions.

The strict-domain test (:func:`in_exact_domain`) is the core of Edge federation:
[CISCO] "the domain part of the FQDN returned by the SRV lookup must match
exactly (no other domain or sub-domain is allowed)"; reference §1.7, §2.2.
"""

from __future__ import annotations

import functools

from simulator.diagnostics.catalogue import MS_DIAGNOSTICS
from simulator.diagnostics.format import format_ms_diagnostics
from simulator.policy.decision import MS_DIAGNOSTICS_HEADER
from simulator.policy.facts import (
    SRV_SERVICE,
    EdgeSettings,
    SrvTarget,
    dns_name_problem,
    normalise_domain,
)

#: Wire status lines (RFC 3261 §21; the Edge's reason phrases, reference §3.3 / §3.2 1002).
TIMEOUT = (504, "Server time-out")
FORBIDDEN = (403, "Forbidden")


def srv_name(domain: str) -> str:
    """The federation SRV name of ``domain``: ``_sipfederationtls._tcp.<domain>`` (ref. §1.4)."""
    return f"{SRV_SERVICE}.{normalise_domain(domain)}"


@functools.lru_cache(maxsize=4096)
def unroutable_domain(domain: str) -> str | None:
    """Why the Edge cannot federate with ``domain``, taken from a request, or None.

    A domain is looked up as ``_sipfederationtls._tcp.<domain>``: both must be DNS
    names (an IPv6 literal, a 300-character host or an empty label cannot be), so
    the Edge answers such a request itself instead of asking DNS. Memoised: the
    same few partner domains come back on every request.
    """
    d = normalise_domain(domain)
    problem = dns_name_problem(d) if d else "empty"
    if problem is None:
        problem = dns_name_problem(srv_name(d))
        if problem is not None:
            problem = f"its SRV name {srv_name(d)[:60]}... is {problem}"
    return None if problem is None else f"{d[:60]!r} is {problem}"


def in_exact_domain(fqdn: str, domain: str, *, accept_equal: bool = False) -> bool:
    """True when ``fqdn`` is a host exactly one label under ``domain``.

    [CISCO]: ``vcse.cms.steven.lab`` is in cms.steven.lab; ``vcse.sub.cms.steven.lab``
    (sub-domain) and ``vcse.steven.lab`` (parent domain) are not. Case and the
    root dot are ignored (RFC 4343).

    Args:
        fqdn: the SRV target.
        domain: the SIP domain.
        accept_equal: whether ``fqdn == domain`` counts; undocumented (reference §2.2,
            U), hence a setting, off by default.
    """
    f, d = normalise_domain(fqdn), normalise_domain(domain)
    if not f or not d:
        return False
    if f == d:
        return accept_equal
    if not f.endswith("." + d):
        return False
    label = f[: -(len(d) + 1)]
    return bool(label) and "." not in label


def domain_blocked_by(
    domain: str, blocked: tuple[str, ...], *, subdomains: bool = True
) -> str | None:
    """The blocked-list entry that blocks ``domain``, if any.

    With ``subdomains`` (rule ``block_subdomains``) a blocked ``steven.lab`` also
    blocks ``acano.steven.lab`` (suffix match on a label boundary): inferred (I)
    for an on-premises Edge, since Control Panel's domain search is a suffix match
    and the Edge's own enforcement is not documented (reference §5.2); Office 365
    blocks sub-domains only with BlockAllSubdomains (§5.4). Without it, only the
    exact domain is blocked.
    """
    d = normalise_domain(domain)
    for entry in blocked:
        e = normalise_domain(entry)
        if d == e or (subdomains and d.endswith("." + e)):
            return entry
    return None


def blocked_entry(domain: str, settings: EdgeSettings) -> str | None:
    """The blocked-list entry of ``settings`` that blocks ``domain`` (rules honoured)."""
    return domain_blocked_by(domain, settings.blocked, subdomains=settings.rules.block_subdomains)


def name_matches(pattern: str, fqdn: str, *, allow_wildcard: bool) -> bool:
    """Compare a certificate name with an FQDN (case-insensitive, RFC 6125 §6.4.1).

    A ``*.example.com`` name matches exactly one label when ``allow_wildcard`` is on
    (RFC 6125 §6.4.3); whether the Edge accepts a peer's wildcard is U (ref. §1.11).
    """
    p, f = normalise_domain(pattern), normalise_domain(fqdn)
    if p == f:
        return True
    if allow_wildcard and p.startswith("*.") and "." in f:
        return f.split(".", 1)[1] == p[2:]
    return False


def certificate_names(names: tuple[str, ...], fqdn: str, settings: EdgeSettings) -> bool:
    """True when one of the certificate's matching names is ``fqdn``."""
    return any(name_matches(n, fqdn, allow_wildcard=settings.rules.peer_wildcard) for n in names)


def targets_in_domain(
    targets: tuple[SrvTarget, ...], domain: str, settings: EdgeSettings
) -> tuple[SrvTarget, ...]:
    """The SRV targets that satisfy the strict-domain rule, in SRV order."""
    return tuple(
        t
        for t in targets
        if in_exact_domain(t.target, domain, accept_equal=settings.rules.srv_target_equal_to_domain)
    )


def fqdn_params(targets: tuple[SrvTarget, ...]) -> tuple[tuple[str, str], ...]:
    """``fqdn1=``, ``fqdn2=``... for every target, ``target:port`` in SRV order.

    ``fqdn1`` is verbatim ([CISCO]); numbering further targets is inferred (ref. §2.2).
    """
    return tuple((f"fqdn{i}", t.render()) for i, t in enumerate(targets, start=1))


def diagnostics_header(
    code: int, params: tuple[tuple[str, str], ...], settings: EdgeSettings
) -> tuple[str, str]:
    """The ``ms-diagnostics`` header the Edge adds: catalogue reason, params, ``source=``."""
    value = format_ms_diagnostics(
        code, reason=MS_DIAGNOSTICS[code].reason, params=params, source=settings.fqdn
    )
    return (MS_DIAGNOSTICS_HEADER, value)
