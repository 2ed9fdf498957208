"""Lab DNS: zone model and answers (pure), authoritative server and resolver client (trio)."""

from __future__ import annotations

from simulator.dns.resolver import AddressAnswer, Outcome, Resolver, SrvAnswer
from simulator.dns.server import DnsListenError, serve_dns
from simulator.dns.srv import SrvTarget, order_srv
from simulator.dns.zone import (
    Lookup,
    Record,
    ZoneError,
    ZoneSet,
    load_zone_file,
    parse_zone_text,
)

__all__ = [
    "AddressAnswer",
    "DnsListenError",
    "Lookup",
    "Outcome",
    "Record",
    "Resolver",
    "SrvAnswer",
    "SrvTarget",
    "ZoneError",
    "ZoneSet",
    "load_zone_file",
    "order_srv",
    "parse_zone_text",
    "serve_dns",
]
