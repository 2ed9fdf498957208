"""Traces the field's tools read: the SIPStack trace, a pcap of the SIP messages, and back.

Pure: the Edge hands each message it receives or sends as a :class:`WireMessage`;
:mod:`~simulator.trace.sipstack` renders it as a ``TL_INFO(TF_PROTOCOL)`` record
(and reads traces back), :mod:`~simulator.trace.pcap` as packets of a pcapng
file (and reads captures back). No trio, no sockets.
"""

from __future__ import annotations

from simulator.trace.model import Direction, Side, WireMessage
from simulator.trace.sipstack import (
    COMPONENT_LOCATION,
    DIRECTIONS,
    PROTOCOL_LOCATION,
    ComponentRecord,
    TraceMessage,
    TraceRecord,
    format_component_record,
    format_peer,
    format_protocol_record,
    parse_trace,
    transaction_key,
)

__all__ = [
    "COMPONENT_LOCATION",
    "DIRECTIONS",
    "PROTOCOL_LOCATION",
    "ComponentRecord",
    "Direction",
    "Side",
    "TraceMessage",
    "TraceRecord",
    "WireMessage",
    "format_component_record",
    "format_peer",
    "format_protocol_record",
    "parse_trace",
    "transaction_key",
]
