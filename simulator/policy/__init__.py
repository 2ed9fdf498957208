"""Edge federation policy: pure functions from facts to a Decision (sans-I/O)."""

from __future__ import annotations

from simulator.policy.decision import Decision
from simulator.policy.facts import (
    AllowedDomain,
    Chain,
    DomainSource,
    EdgeSettings,
    Federation,
    InboundFacts,
    InboundRequest,
    PeerCertificate,
    SrvLookup,
    SrvOutcome,
    SrvTarget,
    names_for_matching,
    normalise_domain,
    uri_host,
)
from simulator.policy.inbound import (
    INBOUND_RULE_NAMES,
    decide_inbound,
    inbound_domain,
    inbound_log_peer,
    inbound_srv_name,
)
from simulator.policy.outbound import (
    Route,
    outbound_after_srv,
    outbound_check_peer,
    outbound_connect_failed,
    outbound_no_address,
    outbound_relay,
    outbound_route,
    outbound_tls_failed,
)
from simulator.policy.rules import (
    domain_blocked_by,
    in_exact_domain,
    name_matches,
    srv_name,
    unroutable_domain,
)

__all__ = [
    "INBOUND_RULE_NAMES",
    "AllowedDomain",
    "Chain",
    "Decision",
    "DomainSource",
    "EdgeSettings",
    "Federation",
    "InboundFacts",
    "InboundRequest",
    "PeerCertificate",
    "Route",
    "SrvLookup",
    "SrvOutcome",
    "SrvTarget",
    "decide_inbound",
    "domain_blocked_by",
    "in_exact_domain",
    "inbound_domain",
    "inbound_log_peer",
    "inbound_srv_name",
    "name_matches",
    "names_for_matching",
    "normalise_domain",
    "outbound_after_srv",
    "outbound_check_peer",
    "outbound_connect_failed",
    "outbound_no_address",
    "outbound_relay",
    "outbound_route",
    "outbound_tls_failed",
    "srv_name",
    "unroutable_domain",
    "uri_host",
]
