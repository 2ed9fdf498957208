"""What the field reads besides ms-diagnostics and Edge records: known sentences, decoded.

``shared/reference/field-cases.md`` lists what engineers actually saw around
Cisco-Microsoft federation failures: Edge component lines and Windows events,
Test-CsFederatedPartner output, the Teams and Skype for Business clients' own
sentences, and the Expressway-E's event log. Each :class:`Phrase` here is one
of those strings (matched after undoing a web page's typography: en dashes,
ellipses, curly quotes), with who prints it, what it means, the usual causes,
the fix and the field cases it comes from. ``fedsim explain`` decodes them
(:func:`simulator.diagnostics.explain_text`), so a customer's paste of any
kind gets an answer. The strings are verbatim (V) from the cited sources; the
explanations are fedsim's reading of them. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulator.diagnostics.catalogue import SFB_NOT_FEDERATED, TEAMS_NOT_SET_UP

#: Web typography undone before matching: dashes, ellipses, curly quotes, hard spaces.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
    }
)
_SPACES = re.compile(r"[ \t]+")


def normalise(text: str) -> str:
    """``text`` with typography undone and runs of blanks made one space (offsets change)."""
    return _SPACES.sub(" ", text.translate(_TYPOGRAPHY))


@dataclass(frozen=True, slots=True, kw_only=True)
class Phrase:
    """One known string and its explanation.

    Attributes:
        pattern: what to find (case-insensitive, on :func:`normalise`'d text).
        title: what the string is, one line.
        seen_by: who prints or reads it.
        meaning / causes / fix: plain sentences.
        cases: the field cases (field-cases.md ids) it appears in.
        source: where the string is quoted from.
        code: an ms-diagnostics ErrorId the string stands for, explained too.
    """

    pattern: re.Pattern[str]
    title: str
    seen_by: str
    meaning: str
    causes: tuple[str, ...]
    fix: str
    cases: tuple[str, ...]
    source: str
    code: int | None = None

    def __post_init__(self) -> None:
        for text in (self.title, self.seen_by, self.meaning, self.fix, self.source):
            if not text or "\n" in text:
                raise ValueError(f"phrase {self.pattern.pattern!r}: one line each")
        if not self.causes:
            raise ValueError(f"phrase {self.pattern.pattern!r}: at least one cause")


def _p(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


_EXPRESSWAY = "the Expressway-E's event log (Status > Logs > Event Log)"
_TLS_FIX = (
    "Make each side trust the other's issuing CA (Expressway: Maintenance > Security > "
    "Trusted CA list; Edge: the Trusted Root store), send the full chain, and match names."
)
_TEAMS_FIX = (
    "Check both tenants' external access: Set-CsTenantFederationConfiguration "
    "-AllowFederatedUsers $true and either open federation (AllowedDomains = "
    "New-CsEdgeAllowAllKnownDomains, no allowed list) or the partner on the allowed list."
)

PHRASES: tuple[Phrase, ...] = (
    # -- the Edge: component lines, record data, Windows events --------------------------
    Phrase(
        pattern=_p(
            r"Exit - domain \[(?P<domain>[^\]]+)\] is unknown and DNS SRV results did not"
            r" match anything"
        ),
        title="Edge component line: an unconfigured domain whose SRV matches nothing",
        seen_by="the Edge's SIPStack trace (TF_COMPONENT)",
        meaning=(
            "Outbound, the called domain is neither an allowed partner nor reached through a "
            "hosting provider, and none of its SRV targets lies in the domain."
        ),
        causes=(
            "The SRV points at a hosting provider's edge (sipfed.online.lync.com for "
            "push.lync.com or an Office 365 tenant) and no New-CsHostingProvider names it.",
            "The partner's SRV points outside its own domain.",
        ),
        fix=(
            "Add the hosting provider (New-CsHostingProvider -ProxyFqdn <its edge>), or the "
            "domain as an allowed partner, or fix the partner's SRV."
        ),
        cases=("C6",),
        source="bhargavs.com 2013-03-28; reference §12",
    ),
    Phrase(
        pattern=_p(
            r"The domain of the message is not configured and does not appear to belong "
            r"to a federated partner"
        ),
        title="Edge record Data reason=: the domain is not configured",
        seen_by="the Edge's diagnostic log (TF_DIAG Data)",
        meaning=(
            "The Edge has no allowed-domain or hosting-provider entry for the domain, and "
            "discovery by SRV did not find a partner it may use (fqdn1= names the SRV target)."
        ),
        causes=("A hosting provider's edge in the SRV without New-CsHostingProvider.",),
        fix="Add the hosting provider, or the domain to the allowed list with its proxy.",
        cases=("C6",),
        source="bhargavs.com 2013-03-28; reference §12",
    ),
    Phrase(
        pattern=_p(r'\bfqdn1="[^"]+"'),
        title="Edge record Data: the SRV targets the Edge found (fqdn1, fqdn2...)",
        seen_by="the Edge's diagnostic log (Data) and 1009",
        meaning=(
            "The targets of _sipfederationtls._tcp.<domain>, none of which is a host directly in "
            "the domain (nor a hosting provider's edge)."
        ),
        causes=("The SRV target is in a parent, sub- or other domain.",),
        fix="Point the SRV at <host>.<domain> and put that name in the certificate.",
        cases=("C1", "C6"),
        source="[CISCO]; bhargavs.com 2013",
        code=1009,
    ),
    Phrase(
        pattern=_p(r"Exit - route headers from untrusted source"),
        title="Edge component line: Route headers from an untrusted source",
        seen_by="the Edge's SIPStack trace (TF_COMPONENT, GetNextHopByRouteHeader)",
        meaning=(
            "The request carried a Route whose first entry does not name the connection it "
            "arrived on (or came from a source whose Route headers are not trusted): the Edge "
            "answers 504 and logs 0xc3e93c5e SIPPROXY_E_ROUTING."
        ),
        causes=("Test-CsFederatedPartner -ProxyFqdn adds an ms-edge-route Route.",),
        fix="Send the request without the Route (or one naming this Edge), or test another way.",
        cases=("C15",),
        source="MS support 'Test-CsFederatedPartner fails'; reference §4.1",
    ),
    Phrase(
        pattern=_p(r"Cannot process Route headers from a non-trusted source"),
        title="Edge record text of 0xc3e93c5e SIPPROXY_E_ROUTING",
        seen_by="the Edge's diagnostic log",
        meaning="See 'route headers from untrusted source': a bare 504 to the sender.",
        causes=("A Route header the Edge does not honour (ms-edge-route from an older tool).",),
        fix="Send the request without the Route, or from a trusted internal server.",
        cases=("C15",),
        source="MS support 'Test-CsFederatedPartner fails'",
    ),
    Phrase(
        pattern=_p(r"The server configuration validation mechanism detected some serious problems"),
        title="Windows event 14517: the Access Edge service refuses its configuration",
        seen_by="the Edge's Lync Server event log (the service does not start)",
        meaning="The Access Edge's configuration check failed; the service stays stopped.",
        causes=(
            "One server is both an allowed partner server (New-CsAllowedDomain -ProxyFqdn) and "
            "an IM service provider (New-CsHostingProvider), e.g. sipfed.online.lync.com.",
        ),
        fix=(
            "Remove the Access Edge FQDN from the federated-domain entry and keep only the "
            "hosting provider (fedsim refuses such a lab the same way)."
        ),
        cases=("C7",),
        source="confusedamused.com 'Lync 2013 CU3 and Hosting Providers'",
    ),
    Phrase(
        pattern=_p(
            r"is configured as both type 'allowed partner server' and type 'IM service "
            r"provider'"
        ),
        title="Windows event 14517's second sentence: a server of two types",
        seen_by="the Edge's Lync Server event log",
        meaning="Names the FQDN that is both an allowed partner server and a hosting provider.",
        causes=("The same ProxyFqdn on a New-CsAllowedDomain and a New-CsHostingProvider.",),
        fix="Remove the ProxyFqdn from the allowed domain; keep the hosting provider.",
        cases=("C7",),
        source="confusedamused.com 2013",
    ),
    Phrase(
        pattern=_p(r"At least one discovered peer has exceeded the number of internal users"),
        title="Windows event 14508: a discovered partner over its limits",
        seen_by="the Edge's Lync Server event log",
        meaning=(
            "A partner found by DNS discovery reached more distinct internal users than "
            "MaxContactsPerDiscoveredPartner (1000) allows; it is throttled."
        ),
        causes=("A busy (or enumerating) discovered partner.",),
        fix="Add the partner as an allowed domain (New-CsAllowedDomain): the limits are lifted.",
        cases=(),
        source="OCS management pack; reference §12",
    ),
    Phrase(
        pattern=_p(r"TLS outgoing connection failures"),
        title="OCS/Lync event 14428: TLS outgoing connection failures",
        seen_by="the Edge's event log",
        meaning="The Edge could not complete TLS to a federated peer it called.",
        causes=("The peer's root is not trusted.", "Wrong principal: the name does not match."),
        fix=_TLS_FIX,
        cases=(),
        source="OCS 2007 events doc; lyncdude.com 2014",
    ),
    Phrase(
        pattern=_p(r"Multiple user domain validation failures from federated partner"),
        title="OCS/Lync event: domain validation failures from a federated partner",
        seen_by="the Edge's event log",
        meaning="Requests from a partner failed the Edge's domain checks again and again.",
        causes=("The partner's SRV or certificate does not match its SIP domain.",),
        fix="Fix the partner's SRV (target in the domain) and certificate (names the target).",
        cases=(),
        source="OCS 2007 events doc",
    ),
    Phrase(
        pattern=_p(
            r"Message expired in the outbound queue before it could be sent|Message or one"
            r" of its headers caused SIP transaction processing error|Transaction"
            r" Time-out: Type \[\d+\] Method"
        ),
        title="Lync diagnostic log: transactions expiring",
        seen_by="the Lync/Skype server's diagnostic log",
        meaning="SIP transactions time out inside the server.",
        causes=("A wrong server clock (time skew between servers).",),
        fix="Synchronise the servers' clocks (NTP).",
        cases=(),
        source="confusedamused.com 'It's About Time'",
    ),
    # -- Microsoft's test tools ------------------------------------------------------------
    Phrase(
        pattern=_p(r"Test-CsFederatedPartner : A 504 \(Server time-out\) response was received"),
        title="Test-CsFederatedPartner: a 504 came back",
        seen_by="the Lync Server Management Shell",
        meaning=(
            "The test OPTIONS (sip:Options_User@<domain>) was answered 504: the Edge refused "
            "the route or the partner's DNS/certificate."
        ),
        causes=(
            "With -ProxyFqdn on an older Edge: Route headers from an untrusted source "
            "(SIPPROXY_E_ROUTING).",
            "The partner's SRV or certificate fails the Edge's rules.",
        ),
        fix="Read the Edge log record of the test request; test without -ProxyFqdn.",
        cases=("C15", "C16"),
        source="MS support 'Test-CsFederatedPartner fails'",
    ),
    Phrase(
        pattern=_p(r"\bResult : Failure\b"),
        title="A Lync synthetic transaction failed",
        seen_by="Test-Cs* cmdlets",
        meaning="The test did not get the expected answer; Error and Diagnosis say what came.",
        causes=("See the Error (SIP status) and Diagnosis (ms-diagnostics) lines.",),
        fix="Decode the Diagnosis line's ErrorCode.",
        cases=("C16",),
        source="Lync 2013 test docs",
    ),
    Phrase(
        pattern=_p(r"\bError : (?P<status>\d{3}), (?P<reason>[A-Za-z -]+)"),
        title="A Lync synthetic transaction's SIP status",
        seen_by="Test-Cs* cmdlets",
        meaning=(
            "The status the test request got: 504 Server time-out from the Edge (DNS or "
            "certificate rules) or 404 Not Found (no such user)."
        ),
        causes=("504: the partner's SRV/certificate; 404: the user does not exist.",),
        fix="Decode the Diagnosis line; for a 504 read the Edge's log record.",
        cases=("C16",),
        source="Lync 2013 test docs",
    ),
    Phrase(
        pattern=_p(r"\bErrorCode=(?P<code>\d+)"),
        title="UCMA's rendering of an ms-diagnostics header (ErrorCode=, Source=, Reason=)",
        seen_by="Test-Cs* cmdlets, UCMA applications",
        meaning="The ms-diagnostics ErrorId the tool received, decoded below.",
        causes=("See the code.",),
        fix="See the code.",
        cases=("C16",),
        source="Lync 2013 test docs",
    ),
    Phrase(
        pattern=_p(r"Microsoft\.Rtc\.Signaling\.DiagnosticHeader"),
        title="UCMA's DiagnosticHeader class",
        seen_by="Test-Cs* cmdlets",
        meaning="The type of the Diagnosis value: a parsed ms-diagnostics header.",
        causes=("Printed with every Diagnosis line.",),
        fix="Decode the ErrorCode of the same line.",
        cases=("C16",),
        source="Lync 2013 test docs",
    ),
    # -- SIP status lines and headers ---------------------------------------------------------
    Phrase(
        pattern=_p(r"(?:SIP/2\.0 )?\b504 Server time-?out\b"),
        title="504 Server time-out: the Edge's refusal",
        seen_by="the Expressway-E (bare), the Skype client (with ms-diagnostics)",
        meaning=(
            "The Edge refused on DNS or certificate grounds (towards a federated peer it is "
            "bare: Server: RTC/x and no ms-diagnostics); the client's copy carries 1008, 1009 "
            "or 1010."
        ),
        causes=(
            "The SRV target is not directly in the domain (1009, SIPPROXY_E_..._NO_SRV_MATCH).",
            "The certificate lacks the SRV target (1010, SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH).",
            "No SRV record, or the Edge cannot reach DNS (1008).",
        ),
        fix="Read the Edge log record of the call (or the client's ms-diagnostics) for which.",
        cases=("C1", "C6", "C8", "C9"),
        source="[CISCO]; vmsilvamolina blog",
    ),
    Phrase(
        pattern=_p(r"SIP/2\.0 404 Not Found"),
        title="404 Not Found",
        seen_by="the calling side",
        meaning="The called user does not exist, or a gateway passed a 404 on (then with 1034).",
        causes=("A misspelt or disabled user (4005).", "A partner without the user (1034)."),
        fix="Check the URI and that the user is enabled; read the ms-diagnostics.",
        cases=("C5",),
        source="C5 trace",
    ),
    Phrase(
        pattern=_p(r"SIP/2\.0 403 Forbidden"),
        title="403 Forbidden: a policy refusal",
        seen_by="the calling side",
        meaning=(
            "A policy refused the request: with 1002 the user's external access policy or a "
            "Teams tenant's federation settings; from an Expressway, its zone or search rules."
        ),
        causes=("EnableFederationAccess False for the user (1002).",),
        fix="Read the ms-diagnostics; grant federation access or allow the domain.",
        cases=("C12", "C20"),
        source="OfficeDocs-Support issue-join-meeting-broadcast.md",
        code=1002,
    ),
    Phrase(
        pattern=_p(r"\b488 (?:Not Acceptable Here|Encryption Levels not compatible)"),
        title="488: the media could not be agreed",
        seen_by="the caller",
        meaning="The called client refused the SDP: typically media encryption (52017).",
        causes=("Lync/Skype requires SRTP and the other side offers RTP only.",),
        fix=(
            "Align media encryption (Set-CsMediaConfiguration -EncryptionLevel "
            "SupportEncryption, or SRTP on the Expressway/CMS)."
        ),
        cases=("C23",),
        source="confusedamused.com; tieto/sipe sipe-media.c",
        code=52017,
    ),
    Phrase(
        pattern=_p(r"\bRTC/(?P<version>\d+\.\d+)\b"),
        title="Server: RTC/x: a Microsoft Front End or Edge answered",
        seen_by="any response's Server header",
        meaning=(
            "RTC/3.0 OCS 2007, 3.5 OCS 2007 R2, 4.0 Lync 2010, 5.0 Lync 2013, 6.0 Skype for "
            "Business Server 2015, 7.0 Skype for Business Online (2019 by version numbering): "
            "fedsim's [edge] profile sets it."
        ),
        causes=("The Edge (or a Front End) generated this response.",),
        fix="Match the lab's profile to it (sfb2015 for RTC/6.0, sfb2019/office365 for RTC/7.0).",
        cases=("C1",),
        source="reference §7.3",
    ),
    Phrase(
        pattern=_p(r"RTCC/[\d.]+ MediationServer"),
        title="Server: RTCC/x MediationServer: a Mediation Server answered",
        seen_by="the calling side",
        meaning="A Microsoft Mediation Server (or the consumer Skype gateway) answered.",
        causes=("The call crossed a Mediation Server / gateway rather than an Edge.",),
        fix="Read its ms-diagnostics (10003: its next hop refused).",
        cases=("C5",),
        source="C5 trace",
    ),
    Phrase(
        pattern=_p(r"X-Remote-Reason: \d+"),
        title="X-Remote-Reason: the consumer Skype gateway's reason",
        seen_by="the calling side (consumer Skype interop, ended 5 May 2025)",
        meaning="The Skype consumer Connect SIP Server's own reason for a failure.",
        causes=("The internal domain was not routable or federated (C5).",),
        fix="Historical: consumer Skype interop has ended.",
        cases=("C5",),
        source="C5 trace",
    ),
    Phrase(
        pattern=_p(r'\bDomain="[^"]*";\s*PeerServer='),
        title="1034's parameters: the partner domain and server that answered",
        seen_by="the Skype client (ms-diagnostics 1034)",
        meaning="Domain and PeerServer name the federated partner whose error was passed on.",
        causes=("The partner answered an error without ms-diagnostics.",),
        fix="Look at that partner's logs (Expressway: Search History).",
        cases=("C5",),
        source="C5 trace",
        code=1034,
    ),
    Phrase(
        pattern=_p(r"WinsockFailureCode=\"?10054\(WSAECONNRESET\)"),
        title="WSAECONNRESET in 1047: the partner reset the TLS connection",
        seen_by="the Skype client (ms-diagnostics 1047)",
        meaning="The partner tore the TCP connection down during TLS.",
        causes=("The partner does not trust the Edge's issuing CA.",),
        fix=_TLS_FIX,
        cases=("C2",),
        source="risual.com 2012",
        code=1047,
    ),
    Phrase(
        pattern=_p(
            r"The client did not respond to the invitation|No push subscription for "
            r"target device"
        ),
        title="408 from Lync mobility: no push subscription",
        seen_by="Snooper on the Front End",
        meaning="The mobile client did not answer and no push notification could be sent.",
        causes=("push.lync.com is not reachable as a federated domain (hosting provider).",),
        fix="Add push.lync.com as an allowed domain with the LyncOnline hosting provider.",
        cases=("C6",),
        source="bhargavs.com 2013",
    ),
    Phrase(
        pattern=_p(r"\bPresence Unknown\b"),
        title="Presence Unknown on a federated contact",
        seen_by="the Skype for Business / Lync client",
        meaning="The client gets no presence for the contact: its SUBSCRIBE failed.",
        causes=(
            "TLS between the Edges fails (1047).",
            "The domain is not federated (403 + 1002).",
        ),
        fix="Decode the ms-diagnostics of the failed SUBSCRIBE in the client log.",
        cases=("C2", "C8", "C13"),
        source="risual.com 2012; SupportArticles-docs",
    ),
    # -- diagnostics reasons seen without their header ----------------------------------------
    Phrase(
        pattern=_p(r"Unable to resolve DNS SRV record"),
        title="1008's reason: no SRV record could be resolved",
        seen_by="the Skype client",
        meaning="See 1008.",
        causes=("See 1008.",),
        fix="See 1008.",
        cases=("C8", "C9"),
        source="vmsilvamolina blog; OfficeDocs-Support incoming-call-fails-cloud-connector.md",
        code=1008,
    ),
    Phrase(
        pattern=_p(r"No match for domain in DNS SRV results"),
        title="1009's reason: no SRV target in the domain",
        seen_by="the Skype client",
        meaning="See 1009.",
        causes=("See 1009.",),
        fix="See 1009.",
        cases=("C1", "C8"),
        source="[CISCO]",
        code=1009,
    ),
    Phrase(
        pattern=_p(r"From URI not authorized to communicate with federated partners"),
        title="1002's reason: the user may not federate",
        seen_by="the Skype client / UCCAPI log",
        meaning="See 1002.",
        causes=("See 1002.",),
        fix="See 1002.",
        cases=("C12", "C13"),
        source="OfficeDocs-Support; SupportArticles-docs",
        code=1002,
    ),
    Phrase(
        pattern=_p(r"Cannot route From and To domains in this combination"),
        title="1017's reason: a split-domain (shared address space) mismatch",
        seen_by="the Skype for Business Online user",
        meaning="See 1017.",
        causes=("See 1017.",),
        fix="See 1017.",
        cases=("C10",),
        source="OfficeDocs-Support sfb-online-users-cant-im.md",
        code=1017,
    ),
    Phrase(
        pattern=_p(r"Cannot route this type of SIP request to or from federated partners"),
        title="1027's reason: federation is not usable",
        seen_by="the Skype client",
        meaning="See 1027.",
        causes=("See 1027.",),
        fix="See 1027.",
        cases=("C3", "C4"),
        source="jon.netdork.net 2012; pdiaz blog",
        code=1027,
    ),
    Phrase(
        pattern=_p(r"Previous hop shared address space peer did not report diagnostic"),
        title="1036's reason (unverified): a hybrid peer's error without diagnostics",
        seen_by="the Skype client",
        meaning="See 1036.",
        causes=("See 1036.",),
        fix="See 1036.",
        cases=(),
        source="reference §3.2 (U)",
        code=1036,
    ),
    Phrase(
        pattern=_p(r"Diagnostic headers removed for privacy"),
        title="13008's reason: diagnostics stripped at the organisation's boundary",
        seen_by="the other organisation's side",
        meaning="See 13008.",
        causes=("See 13008.",),
        fix="See 13008.",
        cases=(),
        source="[OCER] (field cases §2a)",
        code=13008,
    ),
    Phrase(
        pattern=_p(r"Call failed to establish due to a media connectivity failure"),
        title="ms-client-diagnostics 21's text: no media path",
        seen_by="the Skype client",
        meaning="See 21.",
        causes=("See 21.",),
        fix="See 21.",
        cases=(),
        source="tieto/sipe purple-media.c",
        code=21,
    ),
    # -- what the users read ---------------------------------------------------------------
    Phrase(
        pattern=_p(
            r"This message was not delivered to \S+ because the address is outside "
            r"(?:of )?your organization"
        ),
        title="What a Skype for Business user reads: the address is not federated",
        seen_by="the Skype for Business client (the conversation window)",
        meaning=(
            f"The client's sentence for 403 + 1002: '{SFB_NOT_FEDERATED.format(uri='<uri>')}'"
        ),
        causes=(
            "External communication is off for the user (EnableFederationAccess False).",
            "The partner domain is not allowed, or has no SRV record.",
        ),
        fix=(
            "If every external contact fails: the user's external access policy or the "
            "domain's SRV; if one domain fails: allow that domain."
        ),
        cases=("C13",),
        source="SupportArticles-docs cannot-communicate-with-external-contacts.md; leoncon 2012",
        code=1002,
    ),
    Phrase(
        pattern=_p(
            r"We can't set ?up the conversation because your organizations are not set up"
            r" to talk to each other"
        ),
        title="What a Teams user reads: the two organisations do not federate",
        seen_by="the Microsoft Teams client",
        meaning=f"Teams' sentence for a federation refusal: '{TEAMS_NOT_SET_UP}'",
        causes=(
            "An allowed domain on the tenant turned open federation off (C25).",
            "Federation disabled on the tenant (C26), or a trial tenant (C24).",
        ),
        fix=_TEAMS_FIX,
        cases=("C24", "C25", "C26"),
        source="libertad.co.za; uclabs.blog; Tech Community 2105973",
    ),
    Phrase(
        pattern=_p(r"Die Unterhaltung kann nicht eingerichtet werden"),
        title="What a German Teams user reads: the organisations do not federate",
        seen_by="the Microsoft Teams client (German)",
        meaning=f"The German form of '{TEAMS_NOT_SET_UP}'",
        causes=("An allowed domain on the tenant turned open federation off.",),
        fix=_TEAMS_FIX,
        cases=("C25",),
        source="uclabs.blog 2020; myteamsday.com 2019",
    ),
    Phrase(
        pattern=_p(
            r"Users are unable to communicate with external domains in Microsoft Teams|"
            r"Federation settings are being evaluated using the incorrect default"
        ),
        title="Microsoft incident TM1280599 (April 2026): federation blocked by the service",
        seen_by="the Microsoft 365 service health page",
        meaning="Correct settings, yet federation blocked: a Microsoft-side fault.",
        causes=("A service update evaluated federation with the wrong default.",),
        fix="Nothing on the customer's side: wait for Microsoft's mitigation.",
        cases=("C27",),
        source="NHSmail service alert 16/04/2026",
    ),
    Phrase(
        pattern=_p(r"Skype Consumer Interoperability with Teams is no longer supported"),
        title="Consumer Skype interop with Teams ended on 5 May 2025",
        seen_by="Set-CsTenantFederationConfiguration's documentation",
        meaning="AllowPublicUsers no longer works: consumer Skype cannot reach Teams.",
        causes=("The service ended.",),
        fix="Nothing to fix: use Teams (free) accounts instead of consumer Skype.",
        cases=("C5",),
        source="[PS] Set-CsTenantFederationConfiguration",
    ),
    # -- DNS, certificates and TLS, as documented -------------------------------------------
    Phrase(
        pattern=_p(
            r"multiple SRV records with equal priority and weight, the Access Edge "
            r"service will choose the first"
        ),
        title="Duplicate SRV records: the Edge uses the first one it received",
        seen_by="Microsoft's documentation",
        meaning="With several equal SRV records the Edge does not try the others.",
        causes=("A DNS host publishing duplicate or stale SRV records.",),
        fix="Publish exactly one _sipfederationtls._tcp SRV (100 1 5061 sipfed.online.lync.com).",
        cases=("C14",),
        source="SupportArticles-docs dns-configuration-issue.md",
    ),
    Phrase(
        pattern=_p(
            r"You cannot have an SRV record point to an A record that belongs to a "
            r"different namespace"
        ),
        title="The same-domain rule, as the OCS era put it",
        seen_by="Microsoft documentation and blogs",
        meaning="An SRV target must be a host in the SRV's own domain.",
        causes=("One SRV per SIP domain pointing into another namespace.",),
        fix="One SRV per SIP domain, pointing into its own namespace; SANs carry the names.",
        cases=("C33",),
        source="shudnow 2008",
        code=1009,
    ),
    Phrase(
        pattern=_p(r"PIC providers ignore SAN names"),
        title="Public IM providers matched the subject name only",
        seen_by="OCS-era documentation",
        meaning="Old public IM connectivity partners did not read SANs.",
        causes=("A certificate whose needed name is only in a SAN.",),
        fix="Historical; today the Edge matches DNS SANs, the CN only without SANs.",
        cases=("C33",),
        source="shudnow 2008",
    ),
    Phrase(
        pattern=_p(r"must comply with the server's domain or a direct subdomain"),
        title="A third party's statement of the strict domain rule",
        seen_by="C4B XPhone Connect documentation",
        meaning=(
            "The SRV target must be the SIP domain or one label under it (the FQDN == domain "
            "case is this vendor's claim only: fedsim's rule srv_target_equal_to_domain)."
        ),
        causes=("A target deeper under the domain, or in the parent domain.",),
        fix="Use <host>.<domain> as the SRV target.",
        cases=("C32",),
        source="help.c4b.com XPhone Connect 9",
        code=1009,
    ),
    Phrase(
        pattern=_p(r"\bTLS_RSA_WITH_RC4_128_MD5\b"),
        title="A cipher suite the other side insisted on (AOL PIC)",
        seen_by="Schannel / the Edge",
        meaning="No common cipher suite: TLS fails before any SIP.",
        causes=("One side offers only suites the other has disabled.",),
        fix="Align the cipher suites (fedsim: the [edge] profile's Schannel list).",
        cases=("C17",),
        source="OfficeDocs-Support access-edge-services-cannot-negotiate-tls.md",
    ),
    Phrase(
        pattern=_p(
            r"Once TLS 1\.0 and 1\.1 are disabled|Skype for Business Online is capable of "
            r"TLS 1\.2 today"
        ),
        title="Disabling TLS 1.0/1.1 on the Edge",
        seen_by="Microsoft documentation",
        meaning="Partners that speak only TLS 1.0/1.1 can no longer federate.",
        causes=("The Edge (or the partner) allows TLS 1.2 only; the other side lacks it.",),
        fix="Partners must support TLS 1.2 (fedsim: the profiles' TLS versions).",
        cases=("C18",),
        source="OfficeDocs-SkypeForBusiness disable-tls-1.0-1.1.md",
    ),
    Phrase(
        pattern=_p(r"ssl3_get_server_certificate: ?certificate verify failed"),
        title="A TLS client does not trust Microsoft's server certificate",
        seen_by="an SBC or Expressway's TLS library (OpenSSL)",
        meaning="The peer does not trust the root Microsoft's certificate chains to.",
        causes=("Microsoft's root moved (Baltimore CyberTrust -> DigiCert Global Root G2).",),
        fix="Trust both roots; do not pin certificates.",
        cases=("C28", "C29"),
        source="kamailio/kamailio #2597",
    ),
    # -- the Expressway-E's event log ---------------------------------------------------------
    Phrase(
        pattern=_p(r"Inbound TLS Negotiation Error"),
        title="Expressway: an incoming TLS connection failed",
        seen_by=_EXPRESSWAY,
        meaning="A peer (the Edge calling out) connected but TLS did not complete.",
        causes=(
            "The Expressway does not trust the Edge's CA (self signed certificate in chain).",
            "The Edge did not send its intermediates (sslv3 alert certificate unknown).",
        ),
        fix=_TLS_FIX,
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(r"Outbound TLS Negotiation Error"),
        title="Expressway: its own TLS connection failed",
        seen_by=_EXPRESSWAY,
        meaning="The Expressway called the Edge and TLS did not complete.",
        causes=(
            "The Edge reset the connection (it does not trust the Expressway's CA).",
            "A firewall's SIP ALG broke mutual TLS.",
        ),
        fix=_TLS_FIX + " Disable SIP inspection (ALG) on firewalls.",
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(
            r"self signed certificate in certificate chain|ssl3_get_client_certificate: ?"
            r"certificate verify failed"
        ),
        title="Expressway: the peer's certificate chain is not trusted",
        seen_by=_EXPRESSWAY,
        meaning="The chain the peer presented ends at a root the Expressway does not trust.",
        causes=("The Edge's issuing CA is missing from the Expressway's trusted CA list.",),
        fix="Upload the Edge's root and intermediate CAs to the Expressway-E.",
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(r"Peer's TLS certificate identity was unacceptable"),
        title="Expressway: the peer's certificate does not carry the expected name",
        seen_by=_EXPRESSWAY,
        meaning="TLS verify subject name of the zone does not match the peer's certificate.",
        causes=("A typo in the zone's TLS verify subject name.",),
        fix="Set the zone's TLS verify subject name to a name in the Edge's certificate.",
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(r"sslv3 alert certificate unknown"),
        title="Expressway: the other side refused its certificate",
        seen_by=_EXPRESSWAY,
        meaning="The TLS peer sent the certificate_unknown alert about the Expressway's chain.",
        causes=("The Expressway-E did not send its full chain (intermediates).",),
        fix="Serve the full chain on the Expressway-E.",
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(
            r"No SSL error available, probably remote disconnect|Got EOF on socket|"
            r"\bTCP Connection Closed\b"
        ),
        title="Expressway: the other side closed the connection",
        seen_by=_EXPRESSWAY,
        meaning="The connection ended without a TLS alert: the far end (or a middlebox) closed it.",
        causes=(
            "The Edge reset it: it does not trust the Expressway's certificate (a refused "
            "handshake is a reset, as Schannel does).",
            "A firewall ALG interfered.",
        ),
        fix=_TLS_FIX,
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(
            r"\bHandshake in progress\b|want read/write|Searched for DNS Zones by Subject"
            r" Name|\bMatchedZone="
        ),
        title="Expressway: TLS and zone-matching progress (informational)",
        seen_by=_EXPRESSWAY,
        meaning="Normal steps of a TLS connection and of matching it to a DNS zone.",
        causes=("Printed during any TLS connection.",),
        fix="Nothing to fix; look at the lines after it.",
        cases=("C19",),
        source="Cisco Webex Hybrid Call troubleshooting guide",
    ),
    Phrase(
        pattern=_p(r"Authentication Failed for peer cert|\bCall Rejected\b"),
        title="Expressway: a call rejected because the peer's certificate failed",
        seen_by=_EXPRESSWAY,
        meaning="The Expressway refused the call (403) after checking the peer's certificate.",
        causes=("The peer's certificate is not trusted, or its CN/SAN does not match the zone.",),
        fix="Fix the trust store or the zone's expected name.",
        cases=("C20",),
        source="pastebin UeBe2MFM",
    ),
    Phrase(
        pattern=_p(
            r"Call connects but clears after about 30 seconds|failed to get media "
            r"connectivity|ice processing failed"
        ),
        title="A call that connects, then clears: ACK or media never made it",
        seen_by="the Expressway / the users",
        meaning="Signalling reached 200 but the ACK or the media (ICE) failed afterwards.",
        causes=(
            "The ACK is not routed (names that do not resolve between the systems).",
            "No TURN relay, or wrong TURN credentials (ICE fails).",
        ),
        fix="Make both sides resolve each other's FQDNs; deploy TURN on the Expressway-E.",
        cases=("C21",),
        source="Cisco Expressway with Microsoft Infrastructure deployment guide",
    ),
)


def find_phrases(text: str) -> list[tuple[int, Phrase, re.Match[str]]]:
    """Every known phrase in ``text`` (after :func:`normalise`), by position."""
    flat = normalise(text)
    found = [(m.start(), p, m) for p in PHRASES for m in p.pattern.finditer(flat)]
    return sorted(found, key=lambda item: item[0])
