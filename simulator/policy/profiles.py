"""Which Microsoft Edge a lab emulates: product profiles and the open behaviours ("rules").

A **profile** (``[edge] profile``) names a product: Skype for Business Server
2015, 2019, Subscription Edition, or Office 365's SIP federation gateway. It
sets the TLS versions and cipher suites the Edge offers and accepts, its
``Server`` header, its trust rule and the default of every **rule**.

A **rule** (``[edge.rules]``) is one behaviour Microsoft leaves undocumented or
makes configurable: each has a default per profile, a fidelity tag and a source.

Every value carries the reference's own tag (ms-federation.md §0): ``V`` seen
verbatim in a cited source, ``D`` documented behaviour, ``I`` inferred, ``U``
unverified. ``docs/reference/profiles.md`` gives the sources in full. Pure data:
no ssl, no I/O (the TLS layer maps the version names and OpenSSL cipher names).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Literal, cast

from simulator.diagnostics.catalogue import Fidelity

Tag = Literal["V", "D", "I", "U"]
ProfileName = Literal["sfb2015", "sfb2019", "sfbse", "office365"]
TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
ClientEku = Literal["require", "ignore"]
DomainSource = Literal["pai", "from"]
Revocation = Literal["off", "soft", "hard"]

PROFILE_NAMES: tuple[ProfileName, ...] = ("sfb2015", "sfb2019", "sfbse", "office365")
DEFAULT_PROFILE: ProfileName = "sfb2015"
#: Protocol versions in ascending order (the names ``ssl.TLSVersion`` and ``openssl`` use).
TLS_VERSIONS: tuple[TlsVersion, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: How a reference tag reads as an event/Decision fidelity (D is documented but not a string).
TAG_FIDELITY: dict[Tag, Fidelity] = {
    "V": "verbatim",
    "D": "inferred",
    "I": "inferred",
    "U": "unverified",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Sourced:
    """A value with the reference tag and the source it rests on."""

    tag: Tag
    source: str

    def __post_init__(self) -> None:
        if self.tag not in ("V", "D", "I", "U"):
            raise ValueError(f"tag must be V, D, I or U, not {self.tag!r}")
        if not self.source:
            raise ValueError("every value names its source")


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeRules:
    """The open behaviours of the emulated Edge (``[edge.rules]``).

    Attributes:
        client_eku: "require": an inbound peer certificate whose EKU lacks
            clientAuth is refused at the TLS handshake (OpenSSL's and Windows'
            chain policy for a TLS client certificate); "ignore": the EKU is not
            looked at (the handshake and the policy accept it).
        peer_wildcard: a peer certificate name ``*.d`` matches ``x.d``.
        srv_target_equal_to_domain: an SRV target equal to the domain itself
            counts as "in the domain".
        block_subdomains: a blocked ``d`` also blocks ``x.d`` (suffix match).
        send_diagnostics_to_partners: inbound refusals carry the ms-diagnostics a
            Skype client would get for the same fault
            (``Set-CsDiagnosticHeaderConfiguration -SendToExternalNetworks``).
        domain_source: the inbound caller's domain comes from P-Asserted-Identity
            when present ("pai"), or always from From ("from").
        revocation: how the Edge checks the CRLs of peer certificates
            (``KeepCrlsUpToDateForPeers``): "off" never; "soft" refuses a revoked
            certificate and accepts one whose CRL cannot be fetched; "hard" refuses both.
        discovered_rate: messages per second a discovered partner may send
            (``DiscoveredPartnerStandardRate``); allowed partners are exempt.
        discovered_contacts: distinct internal users a discovered partner may
            contact (``MaxContactsPerDiscoveredPartner``).
        discovered_refusal: the status a discovered partner over either limit gets
            (what Microsoft sends is not public).
    """

    client_eku: ClientEku = "require"
    peer_wildcard: bool = False
    srv_target_equal_to_domain: bool = False
    block_subdomains: bool = True
    send_diagnostics_to_partners: bool = False
    domain_source: DomainSource = "pai"
    revocation: Revocation = "soft"
    discovered_rate: int = 20
    discovered_contacts: int = 1000
    discovered_refusal: int = 503

    def __post_init__(self) -> None:
        if self.client_eku not in ("require", "ignore"):
            raise ValueError(f"client_eku must be require or ignore, not {self.client_eku!r}")
        if self.domain_source not in ("pai", "from"):
            raise ValueError(f"domain_source must be pai or from, not {self.domain_source!r}")
        if self.revocation not in ("off", "soft", "hard"):
            raise ValueError(f"revocation must be off, soft or hard, not {self.revocation!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be true or false")
            if f.type == "int":
                low, high = RULE_RANGES.get(f.name, (0, 0))
                if f.name in RULE_RANGES and not (
                    isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
                ):
                    raise ValueError(f"{f.name} must be a whole number from {low} to {high}")
        if self.discovered_refusal not in DISCOVERED_REFUSALS:
            raise ValueError(
                f"discovered_refusal must be one of {DISCOVERED_REFUSALS}, "
                f"not {self.discovered_refusal!r}"
            )


#: Statuses a discovered partner over its limits may be answered with (rule
#: ``discovered_refusal``): 503 (overload, RFC 3261 §21.5.4), 403, 480 or 504.
DISCOVERED_REFUSALS: tuple[int, ...] = (503, 403, 480, 504)
#: Rules that take a whole number, and its bounds.
RULE_RANGES: dict[str, tuple[int, int]] = {
    "discovered_rate": (1, 1_000_000),
    "discovered_contacts": (1, 10_000_000),
}


#: Rule names, in the order the README and ``fedsim check`` list them.
RULE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EdgeRules))
#: The values each rule takes (booleans: False, True).
RULE_VALUES: dict[str, tuple[object, ...]] = {
    "client_eku": ("require", "ignore"),
    "peer_wildcard": (False, True),
    "srv_target_equal_to_domain": (False, True),
    "block_subdomains": (False, True),
    "send_diagnostics_to_partners": (False, True),
    "domain_source": ("pai", "from"),
    "revocation": ("off", "soft", "hard"),
    "discovered_refusal": DISCOVERED_REFUSALS,
}

#: What each rule means, one line (README, ``fedsim check --rule``).
RULE_MEANINGS: dict[str, str] = {
    "client_eku": "an inbound peer certificate without the clientAuth EKU is refused (require)",
    "peer_wildcard": "a wildcard name (*.d) in the peer certificate matches one label",
    "srv_target_equal_to_domain": "an SRV target equal to the SIP domain counts as in the domain",
    "block_subdomains": "a blocked domain also blocks its sub-domains (suffix match)",
    "send_diagnostics_to_partners": "inbound refusals carry ms-diagnostics to the federated peer",
    "domain_source": "the inbound caller's domain: P-Asserted-Identity, else From (pai)",
    "revocation": "peer certificates' CRLs: off, soft (revoked refused) or hard (also unreachable)",
    "discovered_rate": "messages per second a discovered partner may send (20)",
    "discovered_contacts": "distinct internal users a discovered partner may contact (1000)",
    "discovered_refusal": "the status a discovered partner over a limit gets (not public)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CipherSuite:
    """One cipher suite: Schannel's (IANA) name and OpenSSL's name for it."""

    iana: str
    openssl: str
    versions: tuple[TlsVersion, ...]


def _suite(iana: str, openssl: str, *versions: TlsVersion) -> CipherSuite:
    return CipherSuite(iana=iana, openssl=openssl, versions=versions or ("TLSv1.2",))


_ALL12: tuple[TlsVersion, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2")
_T13: tuple[TlsVersion, ...] = ("TLSv1.3",)

#: Windows Server 2012 R2 (with KB 2919355), enabled by default, in priority order
#: (learn.microsoft.com "TLS Cipher Suites in Windows 8.1"). The ``_P256``/``_P384``
#: curve suffixes collapse into one OpenSSL suite; NULL and SSL 2.0 suites are used
#: only when an application asks for them, and RC4 is not in OpenSSL 3's default
#: provider: those are left out (see docs/reference/profiles.md).
WS2012R2: tuple[CipherSuite, ...] = (
    _suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"),
    _suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    _suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", *_ALL12),
    _suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", *_ALL12),
    _suite("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384"),
    _suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256"),
    _suite("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE-RSA-AES256-SHA", *_ALL12),
    _suite("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE-RSA-AES128-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    _suite("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    _suite("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"),
    _suite("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    _suite("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", *_ALL12),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", *_ALL12),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", *_ALL12),
    _suite("TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", "DHE-DSS-AES256-SHA256"),
    _suite("TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", "DHE-DSS-AES128-SHA256"),
    _suite("TLS_DHE_DSS_WITH_AES_256_CBC_SHA", "DHE-DSS-AES256-SHA", *_ALL12),
    _suite("TLS_DHE_DSS_WITH_AES_128_CBC_SHA", "DHE-DSS-AES128-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", *_ALL12),
    _suite("TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", "EDH-DSS-DES-CBC3-SHA", *_ALL12),
)

#: Windows Server 2022, enabled by default, in priority order (learn.microsoft.com
#: "TLS Cipher Suites in Windows Server 2022"); NULL suites left out as above.
WS2022: tuple[CipherSuite, ...] = (
    _suite("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", *_T13),
    _suite("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", *_T13),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    _suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    _suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    _suite("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384"),
    _suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    _suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"),
    _suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", *_ALL12),
    _suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", *_ALL12),
    _suite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", *_ALL12),
    _suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    _suite("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    _suite("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"),
    _suite("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    _suite("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", *_ALL12),
    _suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", *_ALL12),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """The TLS versions and cipher suites an Edge offers and accepts.

    Attributes:
        versions: accepted protocol versions, ascending (the highest is offered first).
        ciphers: cipher suites in the server's priority order.
        os: the Windows Server whose Schannel defaults ``ciphers`` are.
        versions_source / ciphers_source: tag and source of each.
    """

    versions: tuple[TlsVersion, ...]
    ciphers: tuple[CipherSuite, ...]
    os: str
    versions_source: Sourced
    ciphers_source: Sourced

    def __post_init__(self) -> None:
        if not self.versions or any(v not in TLS_VERSIONS for v in self.versions):
            raise ValueError(f"versions must be among {TLS_VERSIONS}: {self.versions}")
        if list(self.versions) != sorted(self.versions, key=TLS_VERSIONS.index):
            raise ValueError("versions are listed in ascending order")

    def suites_for(self, version: TlsVersion) -> tuple[CipherSuite, ...]:
        """The suites usable at ``version``, in priority order."""
        return tuple(c for c in self.ciphers if version in c.versions)

    @property
    def openssl_ciphers(self) -> str:
        """OpenSSL's cipher list for TLS 1.2 and below (``SSL_CTX_set_cipher_list``)."""
        return ":".join(c.openssl for c in self.ciphers if "TLSv1.3" not in c.versions)

    @property
    def openssl_ciphersuites(self) -> str:
        """OpenSSL's TLS 1.3 suites (``SSL_CTX_set_ciphersuites``)."""
        return ":".join(c.openssl for c in self.ciphers if "TLSv1.3" in c.versions)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """One emulated product: its TLS, ``Server`` header, trust rule and rule defaults.

    Attributes:
        name: the ``[edge] profile`` value.
        title: the product's name.
        tls: versions and cipher suites.
        server_header / server_header_source: the ``Server:`` value of its responses.
        public_ca_only / trust_source: peers must chain to a public CA (Office 365).
        rules: the default of every rule, and ``rule_sources`` the tag and source of each.
    """

    name: ProfileName
    title: str
    tls: TlsSettings
    server_header: str
    server_header_source: Sourced
    public_ca_only: bool
    trust_source: Sourced
    rules: EdgeRules
    rule_sources: dict[str, Sourced]

    def __post_init__(self) -> None:
        if set(self.rule_sources) != set(RULE_NAMES):
            raise ValueError(f"profile {self.name}: every rule needs a source")


_ENCRYPTION = "[SFB] Skype/SfbServer/plan-your-deployment/security/encryption.md (reference 1.14)"
_WS2012R2 = "learn.microsoft.com 'TLS Cipher Suites in Windows 8.1' (Windows Server 2012 R2)"
_WS2022 = "learn.microsoft.com 'TLS Cipher Suites in Windows Server 2022'"

_ON_PREM_RULES: dict[str, Sourced] = {
    "client_eku": Sourced(
        tag="U",
        source=(
            "reference §6: undocumented whether the Edge refuses a peer without clientAuth; "
            "Windows returns SEC_E_CERT_WRONG_USAGE for a wrong EKU (§4.3)"
        ),
    ),
    "peer_wildcard": Sourced(
        tag="U", source="reference 1.11, §6: wildcard peer names neither documented nor seen"
    ),
    "srv_target_equal_to_domain": Sourced(
        tag="U",
        source=(
            "reference §2.2 / §10.4: undocumented by Microsoft; a third-party vendor (C4B, "
            "field case C32) documents FQDN == SIP domain as valid"
        ),
    ),
    "block_subdomains": Sourced(
        tag="I",
        source=(
            "reference §5.2: Control Panel's domain search is a suffix match; the Edge's "
            "own matching is not stated"
        ),
    ),
    "send_diagnostics_to_partners": Sourced(
        tag="D",
        source=(
            "[PS] Set-CsDiagnosticHeaderConfiguration: 'by default, headers are not included' "
            "for external networks; [CISCO] shows a bare 504"
        ),
    ),
    "domain_source": Sourced(
        tag="U", source="reference §2.2 I2: [CISCO] names From/PAI without a precedence"
    ),
    "revocation": Sourced(
        tag="U",
        source=(
            "[PS] Set-CsAccessEdgeConfiguration KeepCrlsUpToDateForPeers True (D: the Edge "
            "checks peers' CRLs, reference 1.2, §6); what it does when a CRL cannot be "
            "fetched is not documented, so soft-fail is a guess"
        ),
    ),
    "discovered_rate": Sourced(
        tag="D",
        source=(
            "[PS] Set-CsAccessEdgeConfiguration DiscoveredPartnerStandardRate 20 (reference §5.1)"
        ),
    ),
    "discovered_contacts": Sourced(
        tag="D",
        source=(
            "[PS] Set-CsAccessEdgeConfiguration MaxContactsPerDiscoveredPartner 1000, "
            "EnableDiscoveredPartnerContactsLimit True (reference §5.1, §12)"
        ),
    ),
    "discovered_refusal": Sourced(
        tag="U",
        source=(
            "reference §12: event 14508 is the only artefact known; no SIP answer is public, "
            "so 503 (SIP's overload answer, RFC 3261 §21.5.4) is fedsim's choice"
        ),
    ),
}

_OFFICE365_RULES: dict[str, Sourced] = {
    **_ON_PREM_RULES,
    "block_subdomains": Sourced(
        tag="D",
        source=(
            "[PS] Set-CsTenantFederationConfiguration -BlockAllSubdomains (default False): "
            "a blocked domain does not block its sub-domains unless set"
        ),
    ),
    "send_diagnostics_to_partners": Sourced(
        tag="I",
        source=(
            "no SfB Online peer-facing trace; Microsoft's consumer gateway did send "
            "ms-diagnostics outward (reference §3.1 counter-example), so this stays off"
        ),
    ),
    "discovered_rate": Sourced(
        tag="U",
        source="Office 365's own limits are not public; the on-premises default (20/s) is assumed",
    ),
    "discovered_contacts": Sourced(
        tag="U",
        source=(
            "Office 365's own limits are not public; the on-premises default (1000) is assumed"
        ),
    ),
}

_SERVER_2015 = Sourced(tag="V", source="[CISCO] peer-facing 504: 'Server: RTC/6.0'")
_SERVER_2019 = Sourced(
    tag="I",
    source=(
        "reference §7.3: RTC/<major>.0 follows the product version (2015 = 6.0.9319, "
        "RTC/6.0); SfB 2019 is 7.0.2046 -> RTC/7.0; no public 2019 trace"
    ),
)
_SERVER_SE = Sourced(
    tag="U",
    source=(
        "no public trace or version number found; SE upgrades 2019 in place and shares its "
        "Edge (field cases §3), so 2019's value is assumed"
    ),
)
_SERVER_O365 = Sourced(
    tag="V", source="MS support article (SfB Online delegate 4268 trace): 'Server: RTC/7.0'"
)
_PRIVATE_OK = Sourced(
    tag="D",
    source="[SFB] tls-and-mtls.md: a private CA works when imported into the Edge's store",
)

PROFILES: dict[ProfileName, Profile] = {
    "sfb2015": Profile(
        name="sfb2015",
        title="Skype for Business Server 2015",
        tls=TlsSettings(
            versions=("TLSv1", "TLSv1.1", "TLSv1.2"),
            ciphers=WS2012R2,
            os="Windows Server 2012 R2",
            versions_source=Sourced(tag="V", source=f"{_ENCRYPTION}: 'TLS 1.2 , TLS 1.1, TLS 1.0'"),
            ciphers_source=Sourced(
                tag="I",
                source=(
                    f"{_WS2012R2} (the list is V for that OS; which OS the customer's Edge "
                    "runs is a guess: 2012 R2 was current when SfB 2015 shipped)"
                ),
            ),
        ),
        server_header="RTC/6.0",
        server_header_source=_SERVER_2015,
        public_ca_only=False,
        trust_source=_PRIVATE_OK,
        rules=EdgeRules(),
        rule_sources=_ON_PREM_RULES,
    ),
    "sfb2019": Profile(
        name="sfb2019",
        title="Skype for Business Server 2019",
        tls=TlsSettings(
            versions=("TLSv1.2", "TLSv1.3"),
            ciphers=WS2022,
            os="Windows Server 2022",
            versions_source=Sourced(tag="V", source=f"{_ENCRYPTION}: 'TLS 1.3, TLS 1.2'"),
            ciphers_source=Sourced(
                tag="I",
                source=(
                    f"{_WS2022}: Windows Server 2016/2019 Schannel has no TLS 1.3, so the "
                    "doc's TLS 1.3 implies 2022"
                ),
            ),
        ),
        server_header="RTC/7.0",
        server_header_source=_SERVER_2019,
        public_ca_only=False,
        trust_source=_PRIVATE_OK,
        rules=EdgeRules(),
        rule_sources=_ON_PREM_RULES,
    ),
    "sfbse": Profile(
        name="sfbse",
        title="Skype for Business Server Subscription Edition",
        tls=TlsSettings(
            versions=("TLSv1.2", "TLSv1.3"),
            ciphers=WS2022,
            os="Windows Server 2022",
            versions_source=Sourced(
                tag="D",
                source="field cases §3: SE offers 'TLS 1.3, TLS 1.2' like 2019 (doc claim)",
            ),
            ciphers_source=Sourced(tag="I", source=f"{_WS2022} (OS assumed)"),
        ),
        server_header="RTC/7.0",
        server_header_source=_SERVER_SE,
        public_ca_only=False,
        trust_source=_PRIVATE_OK,
        rules=EdgeRules(),
        rule_sources=_ON_PREM_RULES,
    ),
    "office365": Profile(
        name="office365",
        title="Office 365 (sipfed.online.lync.com)",
        tls=TlsSettings(
            versions=("TLSv1.2", "TLSv1.3"),
            ciphers=WS2022,
            os="unknown (cloud)",
            versions_source=Sourced(
                tag="D",
                source=(
                    "field cases §3: O365 deprecated TLS 1.0/1.1 on 31 Oct 2018 (D); "
                    "TLS 1.3 is unverified (U)"
                ),
            ),
            ciphers_source=Sourced(
                tag="U",
                source="no public list for sipfed.online.lync.com (field cases §3, §6)",
            ),
        ),
        server_header="RTC/7.0",
        server_header_source=_SERVER_O365,
        public_ca_only=True,
        trust_source=Sourced(
            tag="V", source="[CISCO]: Office 365 requires a public CA (reference §5.4)"
        ),
        rules=EdgeRules(block_subdomains=False),
        rule_sources=_OFFICE365_RULES,
    ),
}


def profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        ValueError: no such profile (the message suggests the closest name).
    """
    found = PROFILES.get(cast(ProfileName, name))
    if found is None:
        raise ValueError(f"unknown profile {name!r}{_did_you_mean(name, PROFILE_NAMES)}")
    return found


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; one of {', '.join(choices)}"


def rule_value(name: str, text: str) -> object:
    """Parse ``text`` as the value of rule ``name`` (``--rule KEY=VALUE``).

    Raises:
        ValueError: unknown rule (with a "did you mean") or a value it does not take.
    """
    if name in RULE_RANGES:
        low, high = RULE_RANGES[name]
        digits = text.strip()
        if not digits.isascii() or not digits.isdigit() or not low <= int(digits) <= high:
            raise ValueError(f"rule {name}: {text!r} is not a whole number from {low} to {high}")
        return int(digits)
    if name not in RULE_VALUES:
        raise ValueError(f"unknown rule {name!r}{_did_you_mean(name, RULE_NAMES)}")
    options = RULE_VALUES[name]
    lowered = text.strip().lower()
    for option in options:
        shown = str(option).lower()
        if lowered == shown:
            return option
    shown_all = " | ".join(str(o).lower() for o in options)
    raise ValueError(f"rule {name}: {text!r} is not one of {shown_all}")


def rule_assignments(items: Iterable[str]) -> dict[str, object]:
    """``--rule KEY=VALUE`` options as rule values (a later one for a name wins).

    Raises:
        ValueError: an item without ``=``, an unknown rule (with a "did you mean") or a
            value the rule does not take; the message names the option.
    """
    out: dict[str, object] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--rule {item!r}: write KEY=VALUE, e.g. --rule client_eku=ignore")
        try:
            out[key.strip()] = rule_value(key.strip(), value)
        except ValueError as exc:
            raise ValueError(f"--rule: {exc}") from None
    return out


def with_rules(rules: EdgeRules, changes: dict[str, object]) -> EdgeRules:
    """``rules`` with some values replaced (names checked, with a "did you mean").

    Raises:
        ValueError: an unknown rule name or a wrong value.
    """
    for name in changes:
        if name in RULE_RANGES:
            low, high = RULE_RANGES[name]
            value = changes[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(
                    f"rule {name}: {value!r} is not a whole number from {low} to {high}"
                )
            continue
        if name not in RULE_VALUES:
            raise ValueError(f"unknown rule {name!r}{_did_you_mean(name, RULE_NAMES)}")
        if changes[name] not in RULE_VALUES[name]:
            raise ValueError(f"rule {name}: {changes[name]!r} is not one of {RULE_VALUES[name]}")
    return replace(rules, **changes)  # type: ignore[arg-type]


#: The versions of the TLS profile that is no product (``tls = "default"``): OpenSSL's.
DEFAULT_TLS_VERSIONS: tuple[TlsVersion, ...] = ("TLSv1.2", "TLSv1.3")


def tls_versions(tls_profile: str) -> tuple[TlsVersion, ...]:
    """The versions a TLS profile (a product name, or "default") accepts, ascending.

    Raises:
        ValueError: an unknown name.
    """
    if tls_profile == "default":
        return DEFAULT_TLS_VERSIONS
    return profile(tls_profile).tls.versions


def negotiated_version(
    server: tuple[TlsVersion, ...], client: tuple[TlsVersion, ...]
) -> TlsVersion | None:
    """The protocol version a handshake settles on: the highest both accept, or None."""
    common = [v for v in TLS_VERSIONS if v in server and v in client]
    return common[-1] if common else None
