"""Edge federation policy: pure functions from facts to a Decision (sans-I/O)."""

from __future__ import annotations

from simulator.policy.answers import ALLOW, USER_METHODS, handshake_refused, user_answer
from simulator.policy.decision import Decision
from simulator.policy.facts import (
    AllowedDomain,
    Chain,
    DomainSource,
    EdgeSettings,
    Federation,
    PeerCertificate,
    SrvLookup,
    SrvOutcome,
    SrvTarget,
    names_for_matching,
    normalise_domain,
)
from simulator.policy.inbound import INBOUND_RULE_NAMES, decide_inbound, inbound_log_peer
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
from simulator.policy.route import (
    IN_DIALOG_ONLY,
    InboundRoute,
    OutboundTarget,
    Parties,
    Rejection,
    inbound_route,
    screen_inbound,
    screen_outbound,
)
from simulator.policy.rules import (
    domain_blocked_by,
    in_exact_domain,
    name_matches,
    srv_name,
    unroutable_domain,
)

__all__ = [
    "ALLOW",
    "INBOUND_RULE_NAMES",
    "IN_DIALOG_ONLY",
    "USER_METHODS",
    "AllowedDomain",
    "Chain",
    "Decision",
    "DomainSource",
    "EdgeSettings",
    "Federation",
    "InboundRoute",
    "OutboundTarget",
    "Parties",
    "PeerCertificate",
    "Rejection",
    "Route",
    "SrvLookup",
    "SrvOutcome",
    "SrvTarget",
    "decide_inbound",
    "domain_blocked_by",
    "handshake_refused",
    "in_exact_domain",
    "inbound_log_peer",
    "inbound_route",
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
    "screen_inbound",
    "screen_outbound",
    "srv_name",
    "unroutable_domain",
    "user_answer",
]
