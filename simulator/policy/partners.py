"""Who the federated party is: hosting providers, a tenant's lists, discovered partners.

Pure helpers shared by the inbound and outbound rules and by the Edge's routing
step (no I/O): each answers one question about the other side of a request
from the settings and the facts gathered for it.

* **Hosting providers** (``New-CsHostingProvider``, reference §5.4): an SRV
  target that is an enabled provider's ``proxy_fqdn`` is accepted without the
  same-domain rule, and the peer must then be that provider.
* **The tenant** (``Set-CsTenantFederationConfiguration``, profile office365):
  ``AllowFederatedUsers`` is the master switch; any allowed domain turns open
  federation off; blocked domains count only while it is open.
* **Discovered partners** (reference §5.2): a domain found by DNS SRV discovery,
  neither allowed nor reached through a hosting provider. They are throttled
  (rules ``discovered_rate``, ``discovered_contacts``); the counting is state and
  lives in the Edge, which hands the counts to :func:`partner_load`.
* **Route headers** (reference §4.1, S14): the first Route of an inbound request
  must name the connection it arrived on.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from simulator.policy.facts import (
    FEDERATION_PORT,
    EdgeSettings,
    Hop,
    HostingProvider,
    PartnerLoad,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    normalise_domain,
)
from simulator.policy.rules import certificate_names, domain_blocked_by
from simulator.sip import SipParseError, SipUri, parse_name_addr

TenantRefusal = Literal["off", "blocked", "not-allowed"]


def tenant_refusal(domain: str, settings: EdgeSettings) -> tuple[TenantRefusal, str] | None:
    """Why the tenant refuses federation with ``domain``, and the list entry that does, if any.

    Returns:
        ("off", "") when AllowFederatedUsers is off; ("not-allowed", "") when the
        allowed list does not name the domain; ("blocked", entry) when federation
        is open and the blocked list (with sub-domains when BlockAllSubdomains) has it;
        None when the tenant federates with it (or the Edge has no tenant).
    """
    tenant = settings.tenant
    if tenant is None:
        return None
    d = normalise_domain(domain)
    if not tenant.allow_federated_users:
        return ("off", "")
    if not tenant.open:
        allowed = {normalise_domain(a) for a in tenant.allowed_domains}
        return None if d in allowed else ("not-allowed", "")
    entry = domain_blocked_by(d, tenant.blocked_domains, subdomains=tenant.block_all_subdomains)
    return None if entry is None else ("blocked", entry)


def provider_targets(
    targets: tuple[SrvTarget, ...], settings: EdgeSettings
) -> tuple[SrvTarget, ...]:
    """The SRV targets that are an enabled hosting provider's ``proxy_fqdn``, in SRV order."""
    return tuple(t for t in targets if settings.provider(t.host) is not None)


def srv_provider(srv: SrvLookup | None, settings: EdgeSettings) -> HostingProvider | None:
    """The hosting provider an SRV answer routes to (its first provider target), if any."""
    if srv is None or srv.outcome != "ok":
        return None
    found = provider_targets(srv.targets, settings)
    return settings.provider(found[0].host) if found else None


def shared_provider_peer(peer: PeerCertificate, settings: EdgeSettings) -> HostingProvider | None:
    """The enabled shared-address-space provider the peer's certificate names, if any."""
    return next(
        (
            p
            for p in settings.hosting_providers
            if p.enabled
            and p.shared_address_space
            and certificate_names(peer.names, p.proxy_fqdn, settings)
        ),
        None,
    )


def discovered_partner(domain: str, srv: SrvLookup | None, settings: EdgeSettings) -> bool:
    """Whether ``domain`` federates as a discovered partner (reference §5.2).

    Open federation (partner discovery on, or an open tenant), the domain not on
    an allowed list, and its SRV not pointing at a hosting provider.
    """
    d = normalise_domain(domain)
    if d in settings.domains:
        return False
    tenant = settings.tenant
    if tenant is not None:
        if not tenant.allow_federated_users or not tenant.open:
            return False
    elif settings.federation != "discovery" or settings.allowed_entry(d) is not None:
        return False
    return srv_provider(srv, settings) is None


def partner_load(rate: int, contact: int, settings: EdgeSettings) -> PartnerLoad:
    """Where a discovered partner's request stands against its limits.

    Args:
        rate: the partner's messages in the current second, this one included.
        contact: the rank of this request's internal user among the distinct users
            the partner has contacted (1 for the first), or 0 when the partner
            reached a user it had reached before.
        settings: the limits (rules ``discovered_rate`` and ``discovered_contacts``).

    Returns:
        "contacts" when this is a new user beyond the contact limit, else "rate"
        when the message is beyond the rate, else "within".
    """
    rules = settings.rules
    if contact > rules.discovered_contacts:
        return "contacts"
    if rate > rules.discovered_rate:
        return "rate"
    return "within"


#: Discovered partners whose counts are remembered (the oldest is forgotten first).
MAX_PARTNERS = 10_000
#: The rate window: DiscoveredPartnerStandardRate is per second (reference §5.1).
RATE_WINDOW = 1.0


@dataclass(slots=True)
class PartnerCounts:
    """What each discovered partner did: its recent messages, the internal users it reached.

    The counting behind the rules ``discovered_rate`` and ``discovered_contacts``
    (reference §5.2: 20 messages per second, 1,000 distinct internal URIs). The Edge
    owns one (it is state); ``fedsim check`` keeps its own while it predicts a lab's
    calls in order. The times are the caller's (seconds, any monotonic origin); the
    judgement of the counts is :func:`partner_load`'s.

    Memory is bounded: at most ``rate + 1`` message times per partner (enough to
    know the rate is exceeded), ``contacts`` users, :data:`MAX_PARTNERS` partners.
    """

    partners: OrderedDict[str, tuple[deque[float], dict[str, None]]] = field(
        default_factory=OrderedDict
    )

    def count(
        self, domain: str, user: str, *, now: float, rate: int, contacts: int
    ) -> tuple[int, int]:
        """Count one message from ``domain`` to internal ``user`` at ``now``.

        Returns:
            (messages from the partner in the last second, this one included, at most
            ``rate + 1``; the rank of ``user`` when the partner reaches it for the first
            time, ``contacts + 1`` when it already reached ``contacts`` others, 0 when
            it reached ``user`` before). A user beyond the limit is not remembered.
        """
        partners = self.partners
        entry = partners.get(domain)
        if entry is None:
            entry = partners[domain] = (deque(maxlen=rate + 1), {})
            while len(partners) > MAX_PARTNERS:
                partners.popitem(last=False)
        else:
            partners.move_to_end(domain)  # the most recent partner is forgotten last
        times, users = entry
        if times.maxlen != rate + 1:
            times = deque(times, maxlen=rate + 1)
            partners[domain] = (times, users)
        while times and times[0] <= now - RATE_WINDOW:
            times.popleft()
        times.append(now)
        rank = 0
        if user not in users:
            if len(users) < contacts:
                users[user] = None
                rank = len(users)
            else:
                rank = contacts + 1
        return len(times), rank


def route_names_connection(hop: Hop, settings: EdgeSettings) -> bool:
    """Whether the first Route names the connection the request arrived on.

    The Edge honours a Route only when it names the Edge as reached: its FQDN or
    the address of the connection, with no port, the federation port or the
    connection's own port (inferred from the Result-Code's text, reference §4.1:
    "first Route field in the set not matching the connection on which the
    request arrived"). A Route that cannot be read never matches.
    """
    try:
        uri = parse_name_addr(hop.route).uri
    except SipParseError:
        return False
    if not isinstance(uri, SipUri):
        return False
    host = normalise_domain(uri.host.strip("[]"))
    local_host, local_port = hop.local
    if host not in (normalise_domain(settings.fqdn), local_host.lower()):
        return False
    return uri.port in (None, FEDERATION_PORT, local_port)
