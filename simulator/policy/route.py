"""Before any federation rule: can the request be routed, and whose domain is it?

Two pure steps run on every out-of-dialog request, on parsed SIP values:

1. **Screening** (:func:`screen_inbound`, :func:`screen_outbound`): a request
   whose URIs cannot name a federated domain is answered by the Edge itself,
   as RFC 3261 asks of any element: ``416`` for a Request-URI scheme it does not
   route (§8.2.2.1), ``400`` for a From, To or P-Asserted-Identity that is not a
   SIP URI, ``400`` (inbound) or ``484`` (outbound, §21.4.22) for a host that
   cannot become a DNS question, ``483`` when Max-Forwards is spent (§16.3).
   Microsoft documents none of these answers: they are "inferred".
2. **Routing** (:func:`inbound_route`): the caller's domain (P-Asserted-Identity
   or From, reference §2.2 I2) and the callback SRV name the decision needs,
   or none when a policy rule refuses first or an allowed partner is pinned to
   its server (reference §5.2).

The inbound decision (:func:`simulator.policy.decide_inbound`) is then a pure
function of exactly (route, peer certificate, SRV answer, settings): nothing
else in the request can change it, which is what lets the Edge cache it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from simulator.diagnostics.catalogue import Fidelity
from simulator.policy.facts import DomainSource, EdgeSettings, Hop
from simulator.policy.partners import route_names_connection, tenant_refusal
from simulator.policy.rules import blocked_entry, srv_name, unroutable_domain
from simulator.sip import Request, SipParseError, SipUri, parse_name_addr, parse_uri
from simulator.sip.headers import split_top_level

#: Methods that only exist inside a dialog (RFC 3261 §12.2.2: 481 outside one).
IN_DIALOG_ONLY = frozenset({"BYE", "INFO", "UPDATE", "PRACK", "NOTIFY"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A request the Edge answers itself before any federation rule.

    Attributes:
        status: the SIP status (400, 416, 481, 483, 484).
        rule: stable kebab-case name for events and scenarios.
        why: one line saying what is wrong with the request.
        fidelity: how far Microsoft's Edge is known to answer the same ("inferred":
            these are RFC 3261's answers, no Microsoft trace shows them).
    """

    status: int
    rule: str
    why: str
    fidelity: Fidelity = "inferred"


class Parties(NamedTuple):
    """What screening established about an inbound request's caller (parsed once).

    A named tuple, not a frozen dataclass: one is built per inbound request and is
    the key of the Edge's route cache, and a tuple is built and hashed in C.

    Attributes:
        sender: the host of the From URI, lower-case.
        asserted: the host of the P-Asserted-Identity URI, lower-case, if any.
    """

    sender: str
    asserted: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRoute:
    """The inbound route: the caller's domain and the SRV lookup the decision needs.

    Attributes:
        domain: the caller's domain (lower-case, no root dot).
        source: which header gave it: "pai" (P-Asserted-Identity) or "from".
        srv_name: ``_sipfederationtls._tcp.<domain>``, or None when no DNS is needed.
    """

    domain: str
    source: DomainSource
    srv_name: str | None


def _host(uri: SipUri) -> str:
    # normalise_domain, inlined: this runs on every inbound request.
    return uri.host.strip().rstrip(".").lower()


def screen_inbound(request: Request, settings: EdgeSettings) -> Rejection | Parties:
    """Screen an out-of-dialog request from a federated peer (module docstring, step 1).

    Returns:
        The :class:`Parties` of a request the federation rules can judge, else the
        :class:`Rejection` the Edge answers with.
    """
    if request.method in IN_DIALOG_ONLY:
        return Rejection(status=481, rule="no-dialog", why=f"{request.method} outside a dialog")
    if not request.uri.lower().startswith(("sip:", "sips:")):
        return Rejection(
            status=416,
            rule="unsupported-uri",
            why=f"Request-URI scheme not supported: {request.uri[:60]!r}",
        )
    for name, value in (("From", request.from_), ("To", request.to)):
        if not isinstance(value.uri, SipUri):
            return Rejection(
                status=400,
                rule="unsupported-uri",
                why=f"{name} is not a SIP URI: {str(value.uri)[:60]!r}",
            )
    sender = request.from_.uri
    assert isinstance(sender, SipUri)  # checked just above
    asserted: SipUri | None = None
    pai = request.headers.get("P-Asserted-Identity")
    if pai is not None:
        try:
            uri = parse_name_addr(pai).uri
        except SipParseError:
            return Rejection(
                status=400, rule="unsupported-uri", why="P-Asserted-Identity is not a name-addr"
            )
        if not isinstance(uri, SipUri):
            return Rejection(
                status=400,
                rule="unsupported-uri",
                why=f"P-Asserted-Identity is not a SIP URI: {str(uri)[:60]!r}",
            )
        asserted = uri
    parties = Parties(sender=_host(sender), asserted=None if asserted is None else _host(asserted))
    # The caller's domain becomes a DNS question: it must be a DNS name (issue 12).
    caller = parties.asserted if asserted and settings.rules.domain_source == "pai" else None
    problem = unroutable_domain(caller or parties.sender)
    if problem is not None:
        return Rejection(status=400, rule="unsupported-uri", why=f"the sender's domain {problem}")
    return parties


def _caller_domain(parties: Parties, settings: EdgeSettings) -> tuple[str, DomainSource]:
    if settings.rules.domain_source == "pai" and parties.asserted is not None:
        return parties.asserted, "pai"
    return parties.sender, "from"


def inbound_route(parties: Parties, settings: EdgeSettings) -> InboundRoute:
    """The caller's domain and the callback SRV name (module docstring, step 2).

    [CISCO] names "From/P-Asserted-Identity" without a precedence (reference §2.2
    I2), so ``settings.domain_source`` chooses: "pai" (default) prefers PAI when
    present, "from" always uses From. No DNS is needed when a policy rule refuses
    first (federation off, blocked, not allowed) or when the domain is an allowed
    partner server (ProxyFqdn set: direct federation bypasses SRV, reference §5.2).
    """
    domain, source = _caller_domain(parties, settings)
    name: str | None = srv_name(domain)
    entry = settings.allowed_entry(domain)
    if settings.tenant is not None:
        refused = tenant_refusal(domain, settings) is not None
    else:
        refused = (
            settings.federation == "off"
            or blocked_entry(domain, settings) is not None
            or (settings.federation == "allowlist" and entry is None)
        )
    # One of our own domains (split domain) is never looked up: only a hosting
    # provider sharing the address space may send for it.
    if (
        refused
        or (entry is not None and entry.proxy_fqdn is not None)
        or domain in settings.domains
    ):
        name = None
    return InboundRoute(domain=domain, source=source, srv_name=name)


def inbound_hop(request: Request, local: tuple[str, int]) -> Hop | None:
    """The request's first Route and the connection it came on, or None without a Route.

    A Route header field may carry several routes separated by commas (RFC 3261
    §7.3.1); the first of the first field is the next hop.
    """
    if request.headers.get("Route") is None:  # most requests: one dict lookup
        return None
    routes = request.headers.get_all("Route")
    if not routes:
        return None
    first = split_top_level(routes[0])
    return Hop(route=(first[0] if first else routes[0]).strip(), local=local)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundTarget:
    """Where a Skype client's out-of-dialog request goes.

    Attributes:
        domain: the Request-URI's domain (lower-case, no root dot).
        local: True when the domain is homed behind this Edge (the called user
            answers); False when it leaves for a federated partner.
    """

    domain: str
    local: bool


def screen_outbound(request: Request, settings: EdgeSettings) -> Rejection | OutboundTarget:
    """Screen an out-of-dialog request from a Skype client (module docstring, step 1)."""
    try:
        uri = parse_uri(request.uri)
    except SipParseError:
        uri = None
    if not isinstance(uri, SipUri):
        return Rejection(
            status=416, rule="unsupported-uri", why=f"Request-URI {request.uri[:60]!r}"
        )
    domain = _host(uri)
    if domain in settings.domains:
        return OutboundTarget(domain=domain, local=True)
    problem = unroutable_domain(domain)
    if problem is not None:
        return Rejection(
            status=484, rule="unroutable-domain", why=f"the Request-URI's domain {problem}"
        )
    max_forwards = request.max_forwards
    if max_forwards is not None and max_forwards <= 0:
        return Rejection(status=483, rule="too-many-hops", why="Max-Forwards is 0")
    return OutboundTarget(domain=domain, local=False)


def callback_srv(route: InboundRoute, hop: Hop | None, settings: EdgeSettings) -> str | None:
    """The SRV name the decision of (route, hop) needs resolved, or None.

    A request whose first Route does not name the connection is refused before any
    lookup (the Route check is the first rule), so it needs none.
    """
    if hop is not None and not route_names_connection(hop, settings):
        return None
    return route.srv_name
