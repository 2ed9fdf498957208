"""The outcome of a policy rule: what the Edge answers, logs and why."""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulator.diagnostics.catalogue import Fidelity, weakest
from simulator.diagnostics.format import EdgeLogRecord

_RULE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

MS_DIAGNOSTICS_HEADER = "ms-diagnostics"
SERVER_HEADER = "Server"


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """A ``TL_ERROR(TF_COMPONENT)`` trace line the Edge writes with a decision (reference §4.1).

    Attributes:
        text: what the component says, e.g. ``Exit - route headers from untrusted source.``
        location: ``SIPStack,<Class>::<Method>:<file>.cpp(<line>)`` when known, else None.
        result: the Result-Code symbol printed after the text (``Result 0xC3E93C5E(...)``),
            or None when the source shows none.
        level: ``TL_ERROR``, ``TL_WARN`` or ``TL_INFO``.
        fidelity: how far the line is Microsoft's ("verbatim" text, or labelled).
    """

    text: str
    location: str | None
    result: str | None
    level: str = "TL_ERROR"
    fidelity: Fidelity = "verbatim"

    def __post_init__(self) -> None:
        if not self.text or "\n" in self.text:
            raise ValueError("a component line's text is one non-empty line")


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowsEvent:
    """A Windows event the Edge would write to its event log with a decision.

    Attributes:
        id: the event id (14508...).
        text: the event's text.
        fidelity: "verbatim" when the text is the documented one for this case.
    """

    id: int
    text: str
    fidelity: Fidelity = "verbatim"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the Edge does with one request, and the rule that decided it.

    Attributes:
        rule: stable kebab-case name of the deciding rule ("accepted", "srv-not-in-domain",
            "cert-mismatch", ...): scenario files and events refer to it.
        accepted: True only for rule "accepted" (the request is routed on).
        status / reason: the SIP status line of a refusal (200 "OK" when accepted: the
            real answer then comes from the called user or the peer).
        domain: the federated domain the decision is about.
        headers: extra response headers in wire order. Inbound refusals carry only
            ``Server`` (ms-diagnostics do not cross federation, reference §3.1/§3.3);
            outbound refusals carry ``ms-diagnostics`` then ``Server`` (reference §7.1).
        edge_log: the Edge log record to write (every refusal has one).
        fidelity: how far the wire answer (status + headers) is known to match the
            real Edge's; the log record has its own ``edge_log.fidelity``.
        explanation: one sentence for consoles and events.
        component: a TF_COMPONENT line that goes with the Edge log record, if any.
        windows_event: a Windows event the Edge writes with the decision, if any.
    """

    rule: str
    accepted: bool
    status: int
    reason: str
    domain: str
    headers: tuple[tuple[str, str], ...]
    edge_log: EdgeLogRecord | None
    fidelity: Fidelity
    explanation: str
    component: Component | None = None
    windows_event: WindowsEvent | None = None

    def __post_init__(self) -> None:
        if not _RULE.fullmatch(self.rule):
            raise ValueError(f"rule must be kebab-case, not {self.rule!r}")
        if self.accepted != (self.rule == "accepted"):
            raise ValueError("accepted is True exactly for rule 'accepted'")
        if self.accepted:
            if not 200 <= self.status <= 299 or self.edge_log is not None:
                raise ValueError("an accepted decision is a 2xx without an Edge log record")
        else:
            if not 400 <= self.status <= 699:
                raise ValueError(f"a refusal needs a 4xx-6xx status, not {self.status}")
            if self.edge_log is None:
                raise ValueError(f"refusal {self.rule!r} must carry an Edge log record")
            if not any(name == SERVER_HEADER for name, _ in self.headers):
                raise ValueError(f"refusal {self.rule!r} must carry a Server header")
        if not self.reason or not self.explanation or "\n" in self.explanation:
            raise ValueError("reason and explanation must be non-empty, one line")

    @property
    def ms_diagnostics(self) -> str | None:
        """The ms-diagnostics header value this answer carries, if any."""
        return next((v for k, v in self.headers if k == MS_DIAGNOSTICS_HEADER), None)

    @property
    def overall_fidelity(self) -> Fidelity:
        """The weakest of the wire answer's and the Edge log record's fidelity."""
        if self.edge_log is None:
            return self.fidelity
        return weakest(self.fidelity, self.edge_log.fidelity)
