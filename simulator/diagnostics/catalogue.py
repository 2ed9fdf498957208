"""The catalogue of Microsoft Edge diagnostics, as data.

Every string here is copied from ``shared/reference/ms-federation.md`` (the
reference): ``ms-diagnostics`` ErrorIds (reference §3.2), Edge log Result-Codes
(§4.2), Schannel HRESULTs and Winsock codes (§4.3). Nothing is invented: a case
the reference does not cover gets an ``EMU_UNVERIFIED_*`` result code with the
synthetic hex ``0x00000000`` (the marker the reference §4.2 asks for) and an
honest ``Text`` that says it is fedsim's, not Microsoft's.

``fidelity`` says how far to trust a string: ``"verbatim"`` (V in the
reference: seen in a trace, log or spec table), ``"inferred"`` (I: combined
from sources), ``"unverified"`` (U: commonly reported, not found in a source).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Fidelity = Literal["verbatim", "inferred", "unverified"]
Severity = Literal["warning", "error"]

#: Order of confidence, most trusted first; a combination is as weak as its weakest part.
FIDELITY_ORDER: tuple[Fidelity, ...] = ("verbatim", "inferred", "unverified")

#: The reference §4.2 marker for an Edge log record whose real Result-Code is unknown.
UNVERIFIED_HEX = "0x00000000"
UNVERIFIED_PREFIX = "EMU_UNVERIFIED_"

_HEX = re.compile(r"0x[0-9a-fA-F]{8}")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]*")


def weakest(*levels: Fidelity) -> Fidelity:
    """Return the least trusted of ``levels`` (a chain is as strong as its weakest link)."""
    return max(levels, key=FIDELITY_ORDER.index)


def _check_explanations(owner: str, meaning: str, causes: tuple[str, ...], fix: str) -> None:
    if not meaning.strip() or not fix.strip():
        raise ValueError(f"{owner}: meaning and fix must be non-empty sentences")
    if not causes or not all(c.strip() for c in causes):
        raise ValueError(f"{owner}: causes must list at least one non-empty sentence")


@dataclass(frozen=True, slots=True, kw_only=True)
class DiagnosticCode:
    """One ``ms-diagnostics`` ErrorId (reference §3.2).

    Attributes:
        code: the ErrorId.
        reason: what fedsim puts in ``reason="..."``: the wire string when one was
            seen in a trace (it differs from the spec for 1009/1010), else the spec
            string with its trailing period.
        spec_reason: the MS-OCER table string, when captured.
        status: the SIP status it travels on, when known; None = unknown or the
            peer's status passed through (1011, 1034).
        status_fidelity: how far ``status`` is known (None exactly when status is).
        fidelity: how far ``reason`` is known.
        meaning / causes / fix: plain sentences for ``fedsim explain``.
        source: where the string comes from (reference source keys).
    """

    code: int
    reason: str
    spec_reason: str | None
    status: int | None
    status_fidelity: Fidelity | None = None
    fidelity: Fidelity
    meaning: str
    causes: tuple[str, ...]
    fix: str
    source: str

    @property
    def reason_origin(self) -> Literal["wire", "spec", "unverified"]:
        """Where fedsim's ``reason`` string comes from.

        "wire": seen in a trace (it may differ from the spec table: 1009, 1010, and
        the trailing period of 1002 and 1008); "spec": only MS-OCER's table has it,
        and its wire form was never captured (1014); "unverified": neither.
        """
        if self.fidelity != "verbatim":
            return "unverified"
        if self.spec_reason is None or self.reason != self.spec_reason:
            return "wire"
        return "spec"

    def __post_init__(self) -> None:
        if self.code < 0:
            raise ValueError(f"ErrorId must be unsigned, not {self.code}")
        if not self.reason:
            raise ValueError(f"ErrorId {self.code}: reason must be non-empty")
        if (self.status is None) != (self.status_fidelity is None):
            raise ValueError(f"ErrorId {self.code}: status_fidelity goes with status")
        if self.status is not None and not 100 <= self.status <= 699:
            raise ValueError(f"ErrorId {self.code}: {self.status} is not a SIP status")
        _check_explanations(f"ErrorId {self.code}", self.meaning, self.causes, self.fix)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultCode:
    """One Edge log Result-Code (``SIPPROXY_E_*``, reference §4.2) or an EMU_UNVERIFIED_ marker.

    Attributes:
        hex: as the log prints it, e.g. ``0xc3e93d6f``; ``0x00000000`` for markers.
        symbol: ``SIPPROXY_E_...`` or ``EMU_UNVERIFIED_...``.
        text: the log's ``Text:`` line (verbatim for Microsoft codes).
        severity: the log's ``Severity:`` (also selects TL_WARN/TL_ERROR).
        fidelity: "verbatim" for codes seen in a log, "inferred" for markers.
        meaning / causes / fix / source: as for :class:`DiagnosticCode`.
    """

    hex: str
    symbol: str
    text: str
    severity: Severity
    fidelity: Fidelity
    meaning: str
    causes: tuple[str, ...]
    fix: str
    source: str

    def __post_init__(self) -> None:
        if not _HEX.fullmatch(self.hex):
            raise ValueError(f"{self.symbol}: hex must be 0x and 8 hex digits, not {self.hex!r}")
        if not _SYMBOL.fullmatch(self.symbol):
            raise ValueError(f"result symbol must be upper-case, not {self.symbol!r}")
        synthetic = self.symbol.startswith(UNVERIFIED_PREFIX)
        if synthetic and (self.hex != UNVERIFIED_HEX or self.fidelity == "verbatim"):
            # Reference §4.2: "Do not synthesise new hex values".
            raise ValueError(f"{self.symbol}: markers carry {UNVERIFIED_HEX} and are not verbatim")
        if not synthetic and self.hex == UNVERIFIED_HEX:
            raise ValueError(f"{self.symbol}: {UNVERIFIED_HEX} is reserved for EMU_UNVERIFIED_*")
        if "\n" in self.text or not self.text:
            raise ValueError(f"{self.symbol}: text must be one non-empty line")
        _check_explanations(self.symbol, self.meaning, self.causes, self.fix)


# ---------------------------------------------------------------------------
# ms-diagnostics ErrorIds (reference §3.2)
# ---------------------------------------------------------------------------

_FIX_MS_DOCS = (
    "This code is not produced by a federation fault fedsim emulates; see Microsoft's "
    "MS-OCER SipStack table for the component that raised it."
)

_DIAGNOSTIC_CODES: tuple[DiagnosticCode, ...] = (
    DiagnosticCode(
        code=1000,
        reason="Final handshake failed.",
        spec_reason="Final handshake failed.",
        status=None,
        fidelity="verbatim",
        meaning="The final step of the server's authentication handshake failed.",
        causes=("Authentication between client and front end did not complete.",),
        fix=_FIX_MS_DOCS,
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1001,
        reason="From URI not authorized to communicate with public IM providers.",
        spec_reason="From URI not authorized to communicate with public IM providers.",
        status=403,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The calling user's policy does not allow public IM connectivity.",
        causes=("ExternalAccessPolicy of the user has EnablePublicCloudAccess off.",),
        fix="Grant the user an external access policy that enables public IM connectivity.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1002,
        reason="From URI not authorized to communicate with federated partners",
        spec_reason="From URI not authorized to communicate with federated partners.",
        status=403,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning=(
            "The Skype user's own policy forbids federation; the front end refuses before "
            "the Edge is involved."
        ),
        causes=("The user's ExternalAccessPolicy has EnableFederationAccess set to False.",),
        fix=(
            "Grant the user an external access policy with EnableFederationAccess True "
            "(Grant-CsExternalAccessPolicy); nothing on the Expressway side is at fault."
        ),
        source="[OCER]; MS support articles (403 Forbidden + 1002)",
    ),
    DiagnosticCode(
        code=1003,
        reason="User does not exist",
        spec_reason="User does not exist.",
        status=404,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The called user is not known to the Skype deployment.",
        causes=("The SIP URI is misspelt, or the user is not enabled for Skype for Business.",),
        fix="Check the called URI and that the user is enabled (Get-CsUser).",
        source="[OCER]; Lync 2013 logon test doc (wire form without period)",
    ),
    DiagnosticCode(
        code=1004,
        reason="Route set is no longer valid.",
        spec_reason="Route set is no longer valid.",
        status=None,
        fidelity="verbatim",
        meaning="An in-dialog request carried a route set the server no longer accepts.",
        causes=("The dialog outlived a server restart or a connection change.",),
        fix=_FIX_MS_DOCS,
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1005,
        reason="Cannot route to destination domain.",
        spec_reason="Cannot route to destination domain.",
        status=None,
        fidelity="verbatim",
        meaning="The server has no route to the destination domain.",
        causes=("No federation route or static route covers the target domain.",),
        fix="Check federation routing in the topology and the Edge's allowed/blocked lists.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1006,
        reason="Error routing on client connection.",
        spec_reason="Error routing on client connection.",
        status=None,
        fidelity="verbatim",
        meaning="Routing over the client's connection failed.",
        causes=("The client connection was closed or is unusable.",),
        fix=_FIX_MS_DOCS,
        source="[OCER] SipStack table (older: '...on protocol client connection.')",
    ),
    DiagnosticCode(
        code=1007,
        reason="Temporarily cannot route.",
        spec_reason="Temporarily cannot route.",
        status=None,
        fidelity="verbatim",
        meaning="The server cannot route the request for now.",
        causes=("A next hop is temporarily unavailable.",),
        fix="Retry later; check next-hop server health.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1008,
        reason="Unable to resolve DNS SRV record",
        spec_reason="Unable to resolve DNS SRV record.",
        status=504,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning=(
            "The Edge could not resolve _sipfederationtls._tcp.<domain> for the called "
            "domain, so it has nowhere to send the request."
        ),
        causes=(
            "The partner domain publishes no _sipfederationtls._tcp SRV record.",
            "The Edge's external DNS is unreachable (TCP/UDP 53 blocked from the Edge).",
            "The DNS server failed (SERVFAIL) or timed out.",
        ),
        fix=(
            "Publish '_sipfederationtls._tcp.<domain>. IN SRV 0 0 5061 <expressway-e>.<domain>.' "
            "in the partner's public DNS and check that the Edge can reach DNS "
            "(dig SRV _sipfederationtls._tcp.<domain> from the Edge)."
        ),
        source="[OCER]; vmsilvamolina blog; Test-CsAVConference docs",
    ),
    DiagnosticCode(
        code=1009,
        reason="No match for domain in DNS SRV results",
        spec_reason="Conflicting SRV and host domains in DNS.",
        status=504,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning=(
            "The SRV record of the called domain exists, but none of its targets is a host "
            "exactly one label under that domain, so the Edge refuses to use it."
        ),
        causes=(
            "The SRV target is in the parent or another domain (vcse.steven.lab for "
            "cms.steven.lab).",
            "The SRV target is in a sub-domain (vcse.sub.cms.steven.lab for cms.steven.lab).",
        ),
        fix=(
            "Point _sipfederationtls._tcp.<domain> at a host named <host>.<domain> (for "
            "cms.steven.lab: vcse.cms.steven.lab), give it an A record, and put that name "
            "in the Expressway-E certificate's SAN list."
        ),
        source="[OCER]; [CISCO] client log",
    ),
    DiagnosticCode(
        code=1010,
        reason="Certificate trust with another server could not be established",
        spec_reason="Certificate trust with next-hop server could not be established.",
        status=504,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning=(
            "The Edge connected to the partner's server but did not accept its TLS "
            "certificate (see ErrorType and HRESULT)."
        ),
        causes=(
            "The certificate does not name the tls-target (the SRV target or ProxyFqdn) in a "
            "SAN, or in the CN when it has no SAN (HRESULT SEC_E_WRONG_PRINCIPAL).",
            "The certificate chains to a CA the Edge does not trust (SEC_E_UNTRUSTED_ROOT).",
            "The certificate is expired (SEC_E_CERT_EXPIRED).",
        ),
        fix=(
            "Reissue the Expressway-E certificate with the SRV target FQDN in its SAN list "
            "from a CA the Edge trusts (a public CA for Office 365), or import the private "
            "root into the Edge's Trusted Root store."
        ),
        source="[OCER]; [CISCO] client log",
    ),
    DiagnosticCode(
        code=1011,
        reason="ms-diagnostics header not provided by previous hop.",
        spec_reason="ms-diagnostics header not provided by previous hop.",
        status=None,
        fidelity="verbatim",
        meaning="The previous hop answered with an error but gave no ms-diagnostics header.",
        causes=("The previous hop is not a Microsoft server or strips diagnostics.",),
        fix="Look at the previous hop's own logs for the cause of its error.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1012,
        reason="From URI is not authorized to communicate with users outside the enterprise.",
        spec_reason=(
            "From URI is not authorized to communicate with users outside the enterprise."
        ),
        status=403,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The calling user's policy forbids any communication outside the enterprise.",
        causes=("The user's ExternalAccessPolicy disables outside access.",),
        fix="Grant the user an external access policy that allows outside communication.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1013,
        reason="Significant time skew detected during authentication.",
        spec_reason="Significant time skew detected during authentication.",
        status=None,
        fidelity="verbatim",
        meaning="Client and server clocks differ too much for authentication.",
        causes=("A server or client clock is wrong.",),
        fix="Synchronise clocks (NTP) on servers and clients.",
        source="[OCER] SipStack table",
    ),
    DiagnosticCode(
        code=1014,
        reason="Unable to resolve DNS A record.",
        spec_reason="Unable to resolve DNS A record.",
        status=504,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The SRV target was found, but its host name does not resolve to an address.",
        causes=("The SRV target has no A/AAAA record in the partner's public DNS.",),
        fix="Publish an A record for the SRV target (the Expressway-E's public FQDN).",
        source="[OCER] SipStack table (wire form not captured)",
    ),
    DiagnosticCode(
        code=1017,
        reason="Cannot route From and To domains in this combination",
        spec_reason=None,
        status=403,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The From and To domains cannot be routed together (hybrid split domain).",
        causes=("The ms-split-domain-info of the message has the wrong domain type.",),
        fix="Check the hybrid / shared SIP address space configuration on both sides.",
        source="MS support 'SFB Online users in a Microsoft 365 domain can't IM...'",
    ),
    DiagnosticCode(
        code=1027,
        reason="Cannot route this type of SIP request to or from federated partners",
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="Federation is not usable: no federation route or federation is disabled.",
        causes=(
            "AllowFederatedUsers is False on the Access Edge configuration.",
            "No SIP federation route is enabled in the topology.",
        ),
        fix=(
            "Enable federation (Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true) and "
            "the SIP federation route in the topology."
        ),
        source="MS Community article (Lync 2010); jon.netdork.net 2012",
    ),
    DiagnosticCode(
        code=1034,
        reason="Previous hop federated peer did not report diagnostic information",
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning=(
            "The federated partner (e.g. the Expressway) answered with an error and no "
            "ms-diagnostics; the Edge passes the partner's status on and adds this header."
        ),
        causes=(
            "The partner itself refused the request: unknown user (404), unavailable (480), "
            "forbidden (403), no route (503).",
        ),
        fix=(
            "Look at the partner's logs (Expressway: Status > Search History) for why it "
            "answered that status; the Edge side is working."
        ),
        source="1034 trace (Perl fixture); jon.netdork.net",
    ),
    DiagnosticCode(
        code=1036,
        reason="Previous hop shared address space peer did not report diagnostic information",
        spec_reason=None,
        status=None,
        fidelity="unverified",
        meaning="A hybrid (shared SIP address space) peer answered an error without diagnostics.",
        causes=("The online/hybrid side refused the request.",),
        fix="Look at the hybrid peer's logs for why it answered that status.",
        source="commonly reported; not found in a stored source (U)",
    ),
    DiagnosticCode(
        code=1046,
        reason="Failed to connect to a federated peer server",
        spec_reason=None,
        status=504,
        status_fidelity="inferred",
        fidelity="unverified",
        meaning="The Edge could not open a TCP connection to the partner's server.",
        causes=(
            "Port 5061 on the Expressway-E is closed (connection refused).",
            "A firewall drops the traffic (connection timeout).",
            "The SRV target's A record points to the wrong address.",
        ),
        fix=(
            "Open TCP 5061 to the Expressway-E from the Edge's external address and check "
            "the A record of the SRV target."
        ),
        source="commonly reported; not found in a stored source (U)",
    ),
    DiagnosticCode(
        code=1047,
        reason="Failed to complete TLS negotiation with a federated peer server",
        spec_reason=None,
        status=504,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning=(
            "TCP to the partner worked but the TLS handshake failed; with WSAECONNRESET the "
            "partner tore the connection down, typically because it does not trust the "
            "Edge's certificate."
        ),
        causes=(
            "The partner does not trust the CA of the Edge's certificate.",
            "The partner requires something the Edge's certificate lacks (e.g. ClientAuth EKU).",
            "No common TLS version or cipher.",
        ),
        fix=(
            "Add the Edge's issuing CA to the Expressway-E trusted CA list and check the "
            "Expressway's TLS settings."
        ),
        source="risual.com 2012",
    ),
    DiagnosticCode(
        code=2139,
        reason=(
            "Terminating old subscription since new subscription dialog took over the previous one"
        ),
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="A newer subscription replaced this one (informational, in a BENOTIFY).",
        causes=("The client subscribed again.",),
        fix="Nothing to fix; this is normal presence behaviour.",
        source="camel-sipe SipProducerListener.java",
    ),
    DiagnosticCode(
        code=4003,
        reason="From URI not enabled for remote access.",
        spec_reason="From URI not enabled for remote access.",
        status=None,
        fidelity="verbatim",
        meaning="The user is not allowed to connect from outside (remote access).",
        causes=("The user's policy disables remote user access.",),
        fix="Grant the user an external access policy with outside access enabled.",
        source="[OCER] 4000-4999 table (ms-diagnostics-public)",
    ),
    DiagnosticCode(
        code=4004,
        reason="Credentials provided are not authorized to act as specified from URI.",
        spec_reason="Credentials provided are not authorized to act as specified from URI.",
        status=None,
        fidelity="verbatim",
        meaning="The authenticated identity does not own the From URI.",
        causes=("The client signed in as one user and sent as another.",),
        fix="Sign in with the account that owns the From URI.",
        source="[OCER] 4000-4999 table (ms-diagnostics-public)",
    ),
    DiagnosticCode(
        code=4005,
        reason="Destination URI either not enabled for SIP or does not exist",
        spec_reason=None,
        status=404,
        status_fidelity="inferred",
        fidelity="verbatim",
        meaning="The called Skype user does not exist or is not enabled for SIP.",
        causes=("Misspelt URI, or a user not enabled for Skype for Business.",),
        fix="Check the called URI and enable the user (Enable-CsUser).",
        source="MS support 'Newly created users can't sign in...'; [SIPE] sip-transport.c",
    ),
    DiagnosticCode(
        code=4141,
        reason="User disabled",
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="The registration was ended because the user was disabled.",
        causes=("An administrator disabled the user.",),
        fix="Re-enable the user if this was not intended.",
        source="[SIPE] sipe-notify.c (ms-diagnostics-public)",
    ),
    DiagnosticCode(
        code=4268,
        reason=(
            "Delegate operation not allowed as delegate and delegator are in different deployments."
        ),
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="Delegation across deployments (online vs on-premises) is not allowed.",
        causes=("Delegate and delegator are homed in different deployments.",),
        fix="Home both users in the same deployment.",
        source="MS support article (SfB Online delegate)",
    ),
    DiagnosticCode(
        code=10003,
        reason="Proxy returned a SIP failure code",
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="The Mediation Server's next hop answered with a failure (see SipResponseCode).",
        causes=("The gateway or peer behind the Mediation Server refused the call.",),
        fix="Look at the next hop named by component= for why it refused.",
        source="1034 trace (Perl fixture)",
    ),
    DiagnosticCode(
        code=15030,
        reason="Failed to route to Exchange Server",
        spec_reason=None,
        status=None,
        fidelity="verbatim",
        meaning="The call could not be routed to Exchange Unified Messaging.",
        causes=("Exchange UM (online or on-premises) is unreachable or misconfigured.",),
        fix="Check the Exchange UM hosting provider and dial plan configuration.",
        source="mirazon.com blog",
    ),
    DiagnosticCode(
        code=25008,
        reason="Attempting to route to Primary Pool",
        spec_reason=None,
        status=101,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning="Informational: the request is being routed to the user's primary pool.",
        causes=("Normal routing progress (101 Progress Report).",),
        fix="Nothing to fix.",
        source="camel-sipe SipProducerListener.java",
    ),
    DiagnosticCode(
        code=52017,
        reason="Encryption levels dont match",
        spec_reason=None,
        status=488,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning="The two clients' media encryption settings are incompatible (client-generated).",
        causes=("One side requires SRTP and the other refuses it.",),
        fix="Align media encryption (Skype requires SRTP; set the Expressway/CMS to offer it).",
        source="[SIPE] sipe-media.c (ms-client-diagnostics)",
    ),
    DiagnosticCode(
        code=52063,
        reason="Unsupported session description",
        spec_reason=None,
        status=488,
        status_fidelity="verbatim",
        fidelity="verbatim",
        meaning="The client could not use the offered SDP (client-generated).",
        causes=("The SDP offer has no codec or transport the Skype client supports.",),
        fix="Interwork the SDP (use CMS / the Expressway Microsoft interop) before Skype.",
        source="[SIPE] sipe-media.c (ms-client-diagnostics)",
    ),
)

#: ms-diagnostics ErrorIds by number (reference §3.2).
#: The parameter sets each ErrorId was seen with in a source (reference §3.2, 12),
#: besides ``reason`` and ``source``. A header with other parameters is a form no
#: source shows: fedsim's own variant (1010 for an untrusted root, 1047 with an
#: alert's HRESULT), or another build of Microsoft's. ``fqdn2``... after ``fqdn1``
#: is fedsim's numbering of further SRV targets (inferred, reference §2.2).
VERBATIM_PARAMS: Mapping[int, tuple[tuple[str, ...], ...]] = MappingProxyType(
    {
        1002: ((),),
        1008: ((),),
        1009: (("domain", "fqdn1"),),
        1010: (("ErrorType", "tls-target", "PeerServer", "HRESULT"),),
        1017: (("summary",),),
        1027: ((),),
        1034: (("Domain", "PeerServer"),),
        1047: (("WinsockFailureCode", "WinsockFailureDescription"),),
    }
)


#: ``fqdn2``, ``fqdn3``...: fedsim's numbering of SRV targets after ``fqdn1`` (inferred).
FURTHER_TARGET = re.compile(r"fqdn[2-9][0-9]*")


def parameters_fidelity(code: int, names: Sequence[str]) -> Fidelity | None:
    """How far a header's parameter names (``reason`` and ``source`` aside) are Microsoft's.

    "verbatim" when they are a set :data:`VERBATIM_PARAMS` shows for ``code``;
    "inferred" when they are not (or add ``fqdn2``... to one: fedsim's numbering);
    None when no source shows any parameters for ``code``.
    """
    shapes = VERBATIM_PARAMS.get(code)
    if shapes is None:
        return None
    core = tuple(n for n in names if not FURTHER_TARGET.fullmatch(n))
    if core in shapes and len(core) == len(names):
        return "verbatim"
    return "inferred"


MS_DIAGNOSTICS: Mapping[int, DiagnosticCode] = MappingProxyType(
    {d.code: d for d in _DIAGNOSTIC_CODES}
)


# ---------------------------------------------------------------------------
# Edge log Result-Codes (reference §4.2) and the EMU_UNVERIFIED_ markers
# ---------------------------------------------------------------------------

_EMU_SOURCE = "fedsim marker (reference §4.2: real Result-Code not found in any source)"

_RESULT_CODES: tuple[ResultCode, ...] = (
    ResultCode(
        hex="0xc3e93d6f",
        symbol="SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        text=(
            "The domain of the message resolved by DNS SRV but none of the FQDNs is in the "
            "same domain"
        ),
        severity="warning",
        fidelity="verbatim",
        meaning=(
            "Callback check failed: the Edge resolved _sipfederationtls._tcp.<domain> for the "
            "sender's domain (From / P-Asserted-Identity), but no SRV target (Data fqdn1, "
            "fqdn2, ...) is a host exactly one label under that domain."
        ),
        causes=(
            "The SRV of the CMS domain points to the UC domain's Expressway-E "
            "(acano.steven.lab -> vcse.steven.lab).",
            "The SRV target is in a sub-domain (vcse.sub.acano.steven.lab).",
        ),
        fix=(
            "Make _sipfederationtls._tcp.<domain> point to <host>.<domain> (e.g. "
            "vcse.acano.steven.lab) with an A record, and add that name to the Expressway-E "
            "certificate's SANs."
        ),
        source="[CISCO] Edge log",
    ),
    ResultCode(
        hex="0xc3e93d67",
        symbol="SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
        text=(
            "Message cannot be routed because the peer's certificate does not contain a "
            "matching FQDN"
        ),
        severity="error",
        fidelity="verbatim",
        meaning=(
            "The sender's SRV record is correct, but the certificate the peer presented on "
            "the TLS connection does not name the SRV target (Data expected-fqdn; certName is "
            "the certificate's name)."
        ),
        causes=(
            "The Expressway-E certificate lacks the SRV target FQDN in its SAN list (or in the "
            "CN when it has no SANs).",
        ),
        fix=(
            "Reissue the Expressway-E certificate with the expected-fqdn in its SAN list "
            "(e.g. vcse.acano.steven.lab), or point the SRV record at a name the certificate "
            "already carries and that lies in the domain."
        ),
        source="[CISCO] Edge log",
    ),
    ResultCode(
        hex="0xc3e93c5e",
        symbol="SIPPROXY_E_ROUTING",
        text=(
            "Cannot process Route headers from a non-trusted source, or with first Route "
            "field in the set not matching the connection on which the request arrived"
        ),
        severity="warning",
        fidelity="verbatim",
        meaning="The request carried Route headers the Edge does not honour from this source.",
        causes=(
            "An untrusted source sent an ms-edge-route Route header (Test-CsFederatedPartner "
            "-ProxyFqdn against an older Edge).",
        ),
        fix="Send the request without the Route header, or from a trusted internal server.",
        source="MS support 'Test-CsFederatedPartner fails'",
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_FEDERATION_DISABLED",
        text="fedsim: federation is disabled on this Edge (real Edge text unknown)",
        severity="warning",
        fidelity="inferred",
        meaning="The emulated Edge has federation off, so every federated request is refused.",
        causes=('The lab sets [edge] federation = "off" (AllowFederatedUsers False).',),
        fix='Set federation = "discovery" or "allowlist" in the lab\'s [edge] table.',
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_BLOCKED_DOMAIN",
        text="fedsim: the domain of the message is on the blocked list (real Edge text unknown)",
        severity="warning",
        fidelity="inferred",
        meaning="The partner's domain (or a parent of it) is on the Edge's blocked list.",
        causes=("The lab's [edge] blocked list contains the domain or a parent domain.",),
        fix="Remove the domain from the blocked list (Remove-CsBlockedDomain on a real Edge).",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
        text=(
            "fedsim: partner discovery is off and the domain is not on the allowed list "
            "(real Edge text unknown)"
        ),
        severity="warning",
        fidelity="inferred",
        meaning="The Edge only federates with allowed domains and this one is not listed.",
        causes=('federation = "allowlist" and the domain has no [[edge.allowed]] entry.',),
        fix="Add the domain to the allowed list (New-CsAllowedDomain) or enable discovery.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_PROXY_FQDN_MISMATCH",
        text=(
            "fedsim: the peer's certificate does not name the ProxyFqdn configured for its "
            "domain (real Edge text unknown)"
        ),
        severity="error",
        fidelity="inferred",
        meaning=(
            "The domain is an allowed partner pinned to one server (ProxyFqdn), and the peer's "
            "certificate does not name that server."
        ),
        causes=(
            "The ProxyFqdn of the allowed domain is not the Expressway-E's certificate name.",
            "The traffic comes from a different server than the pinned one.",
        ),
        fix="Set ProxyFqdn to the Expressway-E's FQDN, or add that FQDN to its certificate.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_NO_SRV",
        text=(
            "fedsim: the domain of the message has no _sipfederationtls._tcp DNS SRV record "
            "(real Edge text unknown)"
        ),
        severity="warning",
        fidelity="inferred",
        meaning="The SRV lookup answered that the name or the record does not exist.",
        causes=(
            "The partner domain publishes no _sipfederationtls._tcp SRV record (NXDOMAIN or "
            "NODATA).",
        ),
        fix="Publish _sipfederationtls._tcp.<domain> SRV 0 0 5061 <host>.<domain>.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_DNS_FAILURE",
        text=(
            "fedsim: the DNS SRV lookup for the domain of the message failed "
            "(real Edge text unknown)"
        ),
        severity="error",
        fidelity="inferred",
        meaning="The SRV lookup did not get an answer (server failure, refusal or timeout).",
        causes=(
            "The Edge's DNS server is unreachable (port 53 blocked) or failing.",
            "The partner's authoritative DNS is broken.",
        ),
        fix="Check DNS from the Edge's external interface (dig SRV _sipfederationtls._tcp.<d>).",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_NO_ADDRESS",
        text="fedsim: the SRV target has no DNS address record (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="The SRV target host name does not resolve to an IP address.",
        causes=("The SRV target has no A/AAAA record.",),
        fix="Publish an A record for the SRV target.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CONNECT_FAILED",
        text="fedsim: TCP connection to the federated peer failed (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="The Edge could not open TCP to the partner's server (refused or timed out).",
        causes=("Port 5061 closed on the peer, a firewall, or a wrong A record.",),
        fix="Open TCP 5061 to the peer and check the SRV target's A record.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED",
        text="fedsim: the TLS handshake with the federated peer failed (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="TCP worked but TLS did not complete (reset or alert from the peer).",
        causes=(
            "The peer does not trust the Edge's CA and resets the connection.",
            "No common TLS version or cipher suite.",
        ),
        fix="Make the peer trust the Edge's CA and check TLS versions on both sides.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_WRONG_PRINCIPAL",
        text=(
            "fedsim: the federated peer's certificate does not name the TLS target "
            "(real Edge text unknown)"
        ),
        severity="error",
        fidelity="inferred",
        meaning=(
            "Outbound: the certificate of the server the Edge connected to does not carry the "
            "SRV target / ProxyFqdn in a SAN (or CN when it has no SAN)."
        ),
        causes=("The Expressway-E certificate lacks the SRV target FQDN.",),
        fix="Add the SRV target FQDN to the Expressway-E certificate's SAN list.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT",
        text=(
            "fedsim: the peer's certificate does not chain to a root this Edge trusts "
            "(real Edge text unknown)"
        ),
        severity="error",
        fidelity="inferred",
        meaning=(
            "The peer's certificate chains to a CA the Edge does not trust (a hosted / Office "
            "365 Edge trusts public CAs only)."
        ),
        causes=(
            "The Expressway-E certificate is from a private CA not imported on the Edge.",
            "Office 365 / hosted: the certificate is not from a public CA.",
        ),
        fix=(
            "Import the private root into the Edge's Trusted Root store, or (Office 365) use "
            "a certificate from a public CA."
        ),
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_BAD_CHAIN",
        text="fedsim: the peer's certificate chain cannot be built (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="The peer's certificate chain is incomplete or broken.",
        causes=("The peer does not send its intermediate CA certificates.",),
        fix="Configure the full chain (leaf + intermediates) on the Expressway-E.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_EXPIRED",
        text="fedsim: the peer's certificate has expired (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="The peer's certificate is past its notAfter date.",
        causes=("The Expressway-E certificate was not renewed.",),
        fix="Renew the Expressway-E certificate.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_NOT_YET_VALID",
        text="fedsim: the peer's certificate is not yet valid (real Edge text unknown)",
        severity="error",
        fidelity="inferred",
        meaning="The peer's certificate notBefore date is in the future.",
        causes=("A clock is wrong, or the certificate was issued with a future start date.",),
        fix="Check clocks (NTP) on the Edge and the Expressway-E, or reissue the certificate.",
        source=_EMU_SOURCE,
    ),
    ResultCode(
        hex=UNVERIFIED_HEX,
        symbol="EMU_UNVERIFIED_CERT_WRONG_USAGE",
        text=(
            "fedsim: the peer's certificate is not valid for this usage (EKU) "
            "(real Edge text unknown)"
        ),
        severity="error",
        fidelity="inferred",
        meaning="The peer's certificate lacks the extended key usage mutual TLS needs.",
        causes=("The Expressway-E certificate lacks serverAuth or clientAuth EKU.",),
        fix="Reissue the Expressway-E certificate with both serverAuth and clientAuth EKUs.",
        source=_EMU_SOURCE,
    ),
)

#: Edge log Result-Codes by symbol (reference §4.2), including the EMU_UNVERIFIED_ markers.
RESULT_CODES: Mapping[str, ResultCode] = MappingProxyType({r.symbol: r for r in _RESULT_CODES})


# ---------------------------------------------------------------------------
# Windows codes that appear inside ms-diagnostics values (reference §4.3)
# ---------------------------------------------------------------------------

#: Schannel / CryptoAPI HRESULTs by symbol, rendered as in 1010: ``0x80090322(SEC_E_...)``.
HRESULTS: Mapping[str, str] = MappingProxyType(
    {
        "SEC_E_WRONG_PRINCIPAL": "0x80090322",
        "SEC_E_UNTRUSTED_ROOT": "0x80090325",
        "SEC_E_CERT_EXPIRED": "0x80090328",
        "SEC_E_CERT_UNKNOWN": "0x80090327",
        "CRYPT_E_REVOKED": "0x80092010",
        "CRYPT_E_REVOCATION_OFFLINE": "0x80092013",
        "CRYPT_E_NO_REVOCATION_CHECK": "0x80092012",
        "SEC_E_LOGON_DENIED": "0x8009030C",
        "SEC_E_ILLEGAL_MESSAGE": "0x80090326",
        "SEC_E_UNSUPPORTED_FUNCTION": "0x80090302",
        "SEC_E_ALGORITHM_MISMATCH": "0x80090331",
        "SEC_E_INTERNAL_ERROR": "0x80090304",
        "SEC_E_CERT_WRONG_USAGE": "0x80090349",
    }
)

#: TLS alert (RFC 8446 §6 name) -> Schannel symbol, per Microsoft's "Schannel error codes
#: for TLS and SSL alerts" table (reference §4.3).
TLS_ALERT_HRESULTS: Mapping[str, str] = MappingProxyType(
    {
        "unexpected_message": "SEC_E_ILLEGAL_MESSAGE",  # 10
        "record_overflow": "SEC_E_ILLEGAL_MESSAGE",  # 22
        "handshake_failure": "SEC_E_ILLEGAL_MESSAGE",  # 40
        "bad_certificate": "SEC_E_CERT_UNKNOWN",  # 42
        "unsupported_certificate": "SEC_E_CERT_UNKNOWN",  # 43
        "certificate_revoked": "CRYPT_E_REVOKED",  # 44
        "certificate_expired": "SEC_E_CERT_EXPIRED",  # 45
        "certificate_unknown": "SEC_E_CERT_UNKNOWN",  # 46
        "illegal_parameter": "SEC_E_ILLEGAL_MESSAGE",  # 47
        "unknown_ca": "SEC_E_UNTRUSTED_ROOT",  # 48
        "access_denied": "SEC_E_LOGON_DENIED",  # 49
        "decode_error": "SEC_E_ILLEGAL_MESSAGE",  # 50
        "export_restriction": "SEC_E_ILLEGAL_MESSAGE",  # 60
        "protocol_version": "SEC_E_UNSUPPORTED_FUNCTION",  # 70
        "insufficient_security": "SEC_E_ALGORITHM_MISMATCH",  # 71
        "internal_error": "SEC_E_INTERNAL_ERROR",  # 80
    }
)

#: Winsock failures as the Edge prints them in WinsockFailureCode (reference §4.3).
#: 10054 and its description are verbatim (risual.com); 10060/10061 are inferred.
WINSOCK_CODES: Mapping[str, str] = MappingProxyType(
    {
        "reset": "10054(WSAECONNRESET)",
        "timeout": "10060(WSAETIMEDOUT)",
        "refused": "10061(WSAECONNREFUSED)",
    }
)
WSAECONNRESET_DESCRIPTION = "The peer forced closure of the connection"


def hresult(symbol: str) -> str:
    """Render an HRESULT as the Edge does in ms-diagnostics: ``0x80090322(SEC_E_WRONG_PRINCIPAL)``.

    Raises:
        KeyError: ``symbol`` is not in the reference's table.
    """
    return f"{HRESULTS[symbol]}({symbol})"


def lookup_result(hex_or_symbol: str) -> ResultCode | None:
    """Find a Result-Code by symbol or by (case-insensitive) hex; markers only by symbol."""
    if (found := RESULT_CODES.get(hex_or_symbol.strip())) is not None:
        return found
    wanted = hex_or_symbol.strip().lower()
    if wanted == UNVERIFIED_HEX:
        return None  # every marker shares this hex: ambiguous on its own
    for code in _RESULT_CODES:
        if code.hex.lower() == wanted:
            return code
    return None
