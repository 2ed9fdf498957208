"""Lab files: the model of an emulated Edge, its DNS, PKI, peers and calls, and its loader."""

from __future__ import annotations

from simulator.lab.load import (
    builtin_lab,
    load_lab,
    load_lab_text,
    normalize_domain,
    parse_host_port,
    parse_hostport,
    seed_lab_text,
    with_overrides,
)
from simulator.lab.locate import KeyPath, Locator
from simulator.lab.model import (
    AllowedPartner,
    CallSpec,
    CertFiles,
    CertRef,
    DnsConfig,
    EdgeConfig,
    Exercise,
    Expect,
    FrozenMap,
    HostPort,
    Lab,
    PeerConfig,
    PkiConfig,
    TrustRef,
    UserSpec,
)
from simulator.lab.settings import edge_settings, settings_from_config, with_profile

__all__ = [
    "AllowedPartner",
    "CallSpec",
    "CertFiles",
    "CertRef",
    "DnsConfig",
    "EdgeConfig",
    "Exercise",
    "Expect",
    "FrozenMap",
    "HostPort",
    "KeyPath",
    "Lab",
    "Locator",
    "PeerConfig",
    "PkiConfig",
    "TrustRef",
    "UserSpec",
    "builtin_lab",
    "edge_settings",
    "load_lab",
    "load_lab_text",
    "normalize_domain",
    "parse_host_port",
    "parse_hostport",
    "seed_lab_text",
    "settings_from_config",
    "with_overrides",
    "with_profile",
]
