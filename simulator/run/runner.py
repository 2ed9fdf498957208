"""Run lab files end to end on loopback, each lab isolated, and judge every call.

Isolation (documented for users in ``scenarios/README.md``):

- every listener of the lab (federation, clients, DNS) is moved to 127.0.0.1
  port 0 with :func:`~simulator.lab.with_overrides`;
- each ``[peers.NAME]`` that has a ``listen`` address is started first, on a
  free port P; its port N in the lab file is a *placeholder*: every SRV record
  of ``[dns] records`` (and of the zone files) whose port is N is rewritten to P,
  and N = 5061 also makes P the port of ``proxy_fqdn`` partners (which the Edge
  reaches on 5061 in production). SRV records with any other port are served
  as written (``fqdn1="vcse.sub.cms.steven.lab:5061"`` stays verbatim);
- each lab gets its own temporary PKI and log directory (kept with ``--keep-logs``,
  which also writes the Edge's SIPStack trace, ``trace.log``, there; ``--pcap DIR``
  writes a capture per lab, :func:`capture_name`), and its own CRL server on a free
  loopback port (``[pki] crl_listen`` is moved there too): it is bound first, since
  the certificates name its URL;
- labs run concurrently, at most ``jobs`` at a time, in one trio process.

Timeouts are short (a lab is a test, not a production Edge): DNS 0.5 s with one
attempt, TCP connect 2 s, TLS handshake 3 s, partner transaction 5 s. Only how
long a failure takes changes, never which failure it is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import random
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal, cast

import trio
from cryptography.hazmat.primitives.serialization import Encoding

from simulator.diagnostics import DiagnosticsParseError, parse_edge_log, parse_ms_diagnostics
from simulator.edge.app import LabAddresses, lab_zones, serve_lab
from simulator.edge.crl import CrlService, open_crl_service
from simulator.edge.observers import Observer, Watch
from simulator.edge.outbound import OutboundLimits
from simulator.edge.state import Limits
from simulator.errors import FedsimError, LabError
from simulator.lab import CallSpec, Lab, load_lab, with_overrides
from simulator.peer import (
    peer_client_context,
    peer_files,
    peer_server_context,
    place_call,
    serve_peer,
)
from simulator.peer.dialog import Staging
from simulator.peer.sdp import AnswerEncryption, Offer
from simulator.peer.skype import ClientOffer, skype_call
from simulator.pki import client_context, facts_from_der, issue_pki, load_pem_certificates
from simulator.pki.lab import IssuedCert
from simulator.run.facts import lab_facts
from simulator.run.model import (
    CallReport,
    CallTrace,
    LabFacts,
    LabReport,
    Outcome,
    WireMessage,
    compare,
)
from simulator.sip import Request, Response, SipParseError, parse_via, serialize
from simulator.skype.presence import read_availability
from simulator.skype.sdp import SdpError, parse_sdp

LOOPBACK = "127.0.0.1"
#: Production federation port: a peer listening on it also serves ``proxy_fqdn`` routes.
FEDERATION_PORT = 5061
#: Settings of the Edge under test (see the module docstring).
EDGE_LIMITS = Limits(dns_timeout=0.5, dns_attempts=1, handshake_timeout=5.0)
OUTBOUND_LIMITS = OutboundLimits(
    connect_timeout=2.0, handshake_timeout=3.0, transaction_timeout=5.0
)
#: Seconds one call may take from connect to its last response.
CALL_TIMEOUT = 10.0
#: Seconds to wait for the Edge's event of a call whose answer we already have
#: (a refused handshake is logged by the Edge after the peer saw the refusal).
EVENT_WAIT = 2.0
#: The SRV record's port field: "SRV <priority> <weight> <port> <target>" (RFC 2782).
_SRV_PORT = re.compile(r"(?i)(\bSRV\s+\d+\s+\d+\s+)(\d+)(?=\s+\S)")


# --- lab files -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LabFile:
    """A loaded lab and how the report names it (``seeds/01-acano-...``)."""

    id: str
    path: Path
    lab: Lab


def discover(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """The lab files under ``paths`` (files as given, folders searched for ``*.toml``).

    Returns:
        (file, report id) pairs in a stable order; the id is the path relative to
        the folder it was found under, without ``.toml``.

    Raises:
        FedsimError: a path that does not exist, or a folder without lab files.
    """
    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_file():
            found.append((root, root.stem))
        elif root.is_dir():
            files = sorted(p for p in root.rglob("*.toml") if p.is_file())
            if not files:
                raise FedsimError(f"{root}: no *.toml lab files in this folder")
            found.extend((p, p.relative_to(root).with_suffix("").as_posix()) for p in files)
        else:
            raise FedsimError(f"{root}: no such file or folder (give lab files or folders)")
    seen: set[Path] = set()
    unique: list[tuple[Path, str]] = []
    by_id: dict[str, Path] = {}
    for path, ident in found:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        if ident in by_id:
            # Reports, kept logs, ladders, shards and merges all key labs by id.
            raise FedsimError(
                f"{by_id[ident]} and {path} are both lab '{ident}' in the report "
                "(run them separately, or rename one)"
            )
        by_id[ident] = path
        unique.append((path, ident))
    return unique


def excluded(ident: str, patterns: Sequence[str]) -> bool:
    """Whether lab id ``ident`` matches one of the ``--exclude`` globs."""
    return any(fnmatch.fnmatchcase(ident, p) for p in patterns)


def load_lab_files(paths: Sequence[Path], *, exclude: Sequence[str] = ()) -> list[LabFile]:
    """Load and fully validate every lab file first, so bad input stops the run at once.

    Zones are parsed too (their errors name file and line), and peers' placeholder
    ports are checked. Labs whose id matches an ``exclude`` glob are left out.

    Raises:
        LabError / FedsimError: the first bad file, as ``file:line: ...``.
    """
    labs: list[LabFile] = []
    for path, ident in discover(paths):
        if excluded(ident, exclude):
            continue
        lab = load_lab(path)
        lab_zones(lab)
        placeholder_ports(lab)
        labs.append(LabFile(id=ident, path=path, lab=lab))
    return labs


def placeholder_ports(lab: Lab) -> dict[str, int]:
    """Peer name -> the placeholder port of its ``listen`` (peers without one are not served).

    Raises:
        LabError: two peers share a placeholder port.
    """
    ports: dict[str, int] = {}
    for name, peer in lab.peers.items():
        if peer.listen is None:
            continue
        port = peer.listen[1]
        if port == 0:
            raise LabError(
                f"[peers.{name}] listen port 0 cannot be named by an SRV record",
                path=str(lab.path),
                fix='give it the port its SRV records use, e.g. listen = "127.0.0.1:5061"',
            )
        other = next((n for n, p in ports.items() if p == port), None)
        if other is not None:
            raise LabError(
                f"[peers.{name}] and [peers.{other}] both listen on port {port}",
                path=str(lab.path),
                fix="give each partner its own port, and use that port in its SRV records",
            )
        ports[name] = port
    return ports


def rewrite_srv_ports(text: str, ports: Mapping[int, int]) -> str:
    """Replace the port of every SRV record whose port is a key of ``ports``.

    Comments (after ``;``) are left alone; everything else keeps its spacing.
    """
    if not ports:
        return text
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        body, semi, comment = line.partition(";")

        def swap(m: re.Match[str]) -> str:
            port = int(m.group(2))
            return f"{m.group(1)}{ports.get(port, port)}"

        out.append(_SRV_PORT.sub(swap, body) + semi + comment)
    return "".join(out)


def matches(pattern: str | None, name: str, ident: str, number: int) -> bool:
    """``-k``: a substring, or a glob when it has ``*?[``, of "name call-N" or "id call-N"."""
    if not pattern:
        return True
    keys = (f"{name} call-{number}", f"{ident} call-{number}")
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(k, pattern) for k in keys)
    return any(pattern in k for k in keys)


# --- running one lab -----------------------------------------------------------------


@dataclass(slots=True)
class _Partners:
    """What the lab's partner peers saw: requests received, handshakes they refused."""

    received: list[tuple[str, Request]] = field(default_factory=list)
    tls_errors: list[tuple[str, str]] = field(default_factory=list)

    def recorder(self, name: str) -> Callable[[Request, tuple[str, int]], None]:
        def record(request: Request, _addr: tuple[str, int]) -> None:
            self.received.append((name, request))

        return record

    def tls_recorder(self, name: str) -> Callable[[str, tuple[str, int]], None]:
        def record(reason: str, addr: tuple[str, int]) -> None:
            self.tls_errors.append((name, f"{reason} (from {addr[0]}:{addr[1]})"))

        return record

    def for_call(self, call_id: str) -> list[tuple[str, Request]]:
        return [(n, r) for n, r in self.received if r.call_id == call_id]


def _cert_names(path: Path) -> tuple[str, ...]:
    try:
        certs = load_pem_certificates(path.read_bytes(), source=str(path))
    except (OSError, FedsimError):
        return ()
    if not certs:
        return ()
    return facts_from_der(certs[0].public_bytes(Encoding.DER)).names_for_matching()


def _skype_context(addresses: LabAddresses) -> ssl.SSLContext:
    """The simulated Skype client's context: it checks the Edge against the lab CA when known."""
    if addresses.edge_ca is not None:
        return client_context(trust=[addresses.edge_ca])
    ctx = client_context()
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _read_events(log_dir: Path) -> list[dict[str, object]]:
    path = log_dir / "events.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out: list[dict[str, object]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        if isinstance(value, dict):
            out.append(value)
    return out


def find_event(
    events: Sequence[Mapping[str, object]],
    *,
    call_id: str | None,
    method: str,
    peer_address: str | None,
) -> Mapping[str, object] | None:
    """The Edge's decision event for a call: by Call-ID, else the refused handshake by address."""
    for event in events:
        if (
            call_id is not None
            and event.get("call_id") == call_id
            and event.get("method") == method
            and event.get("rule") != "in-dialog"
        ):
            return event
    for event in events:
        if (
            peer_address is not None
            and event.get("kind") == "tls-handshake-failed"
            and event.get("peer_address") == peer_address
        ):
            return event
    return None


def find_record(edge_log: str, *, call_id: str | None, peer_address: str | None) -> str | None:
    """The ``$$begin_record ... $$end_record`` block of ``edge.log`` for the call, if any."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in edge_log.splitlines():
        if "$$begin_record" in line:
            current = [line]
        elif current is not None:
            current.append(line)
            if line.strip() == "$$end_record":
                blocks.append("\n".join(current))
                current = None
    for block in blocks:
        if call_id is not None and f"\nSIP-Call-ID: {call_id}\n" in block:
            return block
    for block in blocks:
        if peer_address is not None and f"\nPeer: {peer_address}\n" in block:
            return block
    return None


def _diagnostics(final: Response | None) -> tuple[int | None, dict[str, str]]:
    if final is None:
        return None, {}
    value = final.headers.get("ms-diagnostics")
    if value is None:
        return None, {}
    try:
        parsed = parse_ms_diagnostics(value)
    except DiagnosticsParseError:
        return None, {"unparsed": value}
    params = dict(parsed.params)
    if parsed.reason is not None:
        params["reason"] = parsed.reason
    if parsed.source is not None:
        params["source"] = parsed.source
    return parsed.code, params


def _symbol(event: Mapping[str, object] | None) -> str | None:
    if event is None:
        return None
    log = event.get("edge_log")
    if isinstance(log, Mapping):
        symbol = log.get("symbol")
        return symbol if isinstance(symbol, str) else None
    return None


def _component(event: Mapping[str, object] | None) -> str | None:
    """The text of the decision's TF_COMPONENT line (expect.component)."""
    found = event.get("component") if event is not None else None
    text = found.get("text") if isinstance(found, Mapping) else None
    return text if isinstance(text, str) else None


def _windows_event(event: Mapping[str, object] | None) -> int | None:
    """The id of the decision's Windows event (expect.windows_event)."""
    found = event.get("windows_event") if event is not None else None
    ident = found.get("id") if isinstance(found, Mapping) else None
    return ident if isinstance(ident, int) else None


def _status_line(response: Response) -> str:
    return f"SIP/2.0 {response.status} {response.reason}"


@dataclass(frozen=True, slots=True)
class _Placed:
    """What placing a call gave, whichever client placed it."""

    request: Request
    responses: tuple[Response, ...]
    final: Response | None
    error: str | None
    local_port: int
    tls_version: str | None = None
    messages: tuple[WireMessage, ...] = ()
    notifies: tuple[Request, ...] = ()
    user_bye: Request | None = None
    bye_after: float | None = None


def _peer_headers(final: Response | None) -> tuple[tuple[str, str], ...]:
    """The final response's headers, then ``Via.<param>`` for its top Via (expect.peer_headers)."""
    if final is None:
        return ()
    pairs = tuple(final.headers)
    vias = final.headers.get_all("Via")
    top: tuple[tuple[str, str], ...] = ()
    if vias:
        with contextlib.suppress(SipParseError, ValueError):
            top = tuple(
                (f"Via.{name}", value or "") for name, value in parse_via(vias[0])[0].params
            )
    return (*pairs, *top)


def _log_data(record: str | None) -> tuple[tuple[str, str], ...] | None:
    """The ``Data:`` parameters of an Edge log record (expect.edge_log_data)."""
    if record is None:
        return None
    parsed = parse_edge_log(record)
    return parsed[0].data if parsed else None


def _text(message: Request | Response) -> str:
    return serialize(message).decode("utf-8", errors="replace")


def _was_sent(local_port: int, error: str | None, responses: Sequence[Response]) -> bool:
    """Whether the request left the caller: the connection was up when it failed, if it did.

    With TLS 1.3 a refused client certificate shows only after the request went
    out ("... during the exchange"), so only failures before that mean unsent.
    """
    if responses or error is None:
        return local_port != 0
    return local_port != 0 and ("exchange" in error or "without answering" in error)


def _leg(
    leg: str,
    caller: str,
    request: Request,
    responses: Sequence[Response],
    later: Sequence[tuple[bool, Request | Response]],
) -> list[WireMessage]:
    """The caller's side of a leg: its request, the answers, then the dialog in order
    (``later``: each message with True when the caller sent it)."""
    kind: Literal["federation", "client"] = "federation" if leg == "federation" else "client"

    def msg(sender: str, receiver: str, m: Request | Response) -> WireMessage:
        return WireMessage(leg=kind, sender=sender, receiver=receiver, text=_text(m))

    out = [msg(caller, "Edge", request)]
    out += [msg("Edge", caller, r) for r in responses]
    out += [msg(caller, "Edge", m) if sent else msg("Edge", caller, m) for sent, m in later]
    return out


def _staging(call: CallSpec) -> Staging:
    """What the caller of ``call`` does after its final response (its ``[[calls]]`` keys)."""
    return Staging(
        ack=call.ack,
        end="bye" if call.hangup else "wait",
        text=call.text if call.offer == "im" else None,
        refresh=call.refresh,
        unsubscribe=call.unsubscribe,
    )


def call_timeout(lab: Lab, call: CallSpec) -> float:
    """How long ``call`` may take: the usual bound, plus what its staging waits for.

    A caller that waits for the Skype user's BYE waits up to 64*T1 (the user's
    give-up on the ACK) or the user's staged hang-up; one that lets its
    subscription expire waits its Expires.
    """
    extra = 0.0
    if call.method == "INVITE" and not (call.ack and call.hangup):
        spec = lab.edge.users.get(_user_of(call.to) or "")
        afters = [64 * lab.edge.timers.t1]
        if spec is not None:
            afters += [a for a in (spec.hangup_after, spec.media_failure_after) if a is not None]
        extra = max(afters)
    elif call.method == "SUBSCRIBE" and not call.unsubscribe:
        extra = float(3600 if call.expires is None else call.expires)
    return CALL_TIMEOUT + extra


def _user_of(uri: str) -> str | None:
    user, sep, _ = uri.partition(":")[2].partition("@")
    return user if sep else None


def _media(final: Response | None) -> str | None:
    """What the final response's SDP answered: the first accepted stream's transport."""
    if final is None:
        return None
    if not final.body:
        return "none"
    try:
        sdp = parse_sdp(final.body)
    except SdpError:
        return "unreadable"
    for media in sdp.media:
        if media.port:
            return "message" if media.media.lower() == "message" else media.proto
    return "none"


def _notify(notifies: Sequence[Request]) -> tuple[str, ...]:
    """Each NOTIFY as ``"<subscription state> <availability>"`` (expect.notify)."""
    out: list[str] = []
    for notify in notifies:
        state = (notify.headers.get("Subscription-State") or "-").split(";", 1)[0].strip()
        found = read_availability(notify.headers.get("Content-Type"), notify.body)
        out.append(f"{state.lower()} {found or 'none'}")
    return tuple(out)


def seeded(lab: Lab, part: str) -> random.Random | None:
    """A random source for one part of a seeded lab (``[edge] seed``), else None (random).

    The Edge, each simulated peer and each call draw from their own generator, each
    seeded from the lab's seed and its own name, so one part's draws never shift
    another's: two runs of a seeded lab send the same messages (times and ports aside).
    """
    if lab.edge.seed is None:
        return None
    return random.Random(f"{lab.edge.seed}/{part}")


class _LabRun:
    """One running lab: its addresses, peers and files, and how to place its calls."""

    def __init__(
        self,
        lab: Lab,
        addresses: LabAddresses,
        issued: Mapping[str, IssuedCert],
        partners: _Partners,
        log_dir: Path,
        peer_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.lab = lab
        self.addresses = addresses
        self.issued = dict(issued)
        self.partners = partners
        self.log_dir = log_dir
        self.edge_names = _cert_names(addresses.edge_cert)
        self.peer_ports = dict(peer_ports or {})

    async def place(self, call: CallSpec, number: int) -> _Placed:
        rng = seeded(self.lab, f"call-{number}")
        if call.direction == "inbound":
            assert call.via is not None  # the loader requires it
            peer = self.lab.peers[call.via]
            ctx = peer_client_context(peer, peer_files(peer, self.issued))
            result = await place_call(
                edge=self.addresses.federation,
                ssl_context=ctx,
                server_hostname=self.lab.edge.fqdn,
                from_uri=call.from_,
                to_uri=call.to,
                pai=call.pai,
                route=call.route,
                method=call.method,
                timeout=call_timeout(self.lab, call),
                offer=cast(Offer, call.offer or "best-effort"),
                staging=_staging(call),
                text=call.text,
                expires=call.expires,
                rng=rng,
            )
            error = result.tls_error or ("no final response" if result.timed_out else None)
            messages: list[WireMessage] = []
            if _was_sent(result.local_port, result.tls_error, result.responses):
                later = result.later or (((True, result.ack),) if result.ack else ())
                messages = _leg(
                    "federation", "Expressway-E", result.request, result.responses, later
                )
            return _Placed(
                result.request,
                result.responses,
                result.final,
                error or result.dialog_error,
                result.local_port,
                result.tls_version,
                tuple(messages),
                notifies=result.notifies,
                user_bye=result.user_bye,
                bye_after=result.bye_after,
            )
        out = await skype_call(
            edge=self.addresses.clients,
            ssl_context=_skype_context(self.addresses),
            server_hostname=self.lab.edge.fqdn,
            from_uri=call.from_,
            to_uri=call.to,
            method=call.method,
            timeout=call_timeout(self.lab, call),
            offer=cast(ClientOffer, call.offer or "srtp"),
            staging=_staging(call),
            text=call.text,
            expires=call.expires,
            rng=rng,
        )
        port = out.local[1] if out.local is not None else 0
        messages = []
        if _was_sent(port, out.error, out.responses):
            later = tuple(out.after.messages) or (((True, out.ack),) if out.ack else ())
            messages = _leg("client", "Skype client", out.request, out.responses, later)
        return _Placed(
            out.request,
            out.responses,
            out.final,
            out.error or out.after.error,
            port,
            messages=tuple(messages),
            notifies=tuple(out.after.notifies),
            user_bye=out.after.bye,
            bye_after=out.after.bye_after,
        )

    def _partner_tried(self, extra: object) -> str | None:
        """The peer an outbound call was meant for, when it received nothing.

        The peer listening on the port of the last target the Edge tried (SRV
        ports were rewritten to the peers' ports), else the lab's only peer.
        """
        tried = extra.get("targets_tried") if isinstance(extra, Mapping) else None
        for attempt in reversed(tried if isinstance(tried, list) else []):
            target = attempt.get("target") if isinstance(attempt, Mapping) else None
            port = str(target).rpartition(":")[2]
            for name, bound in self.peer_ports.items():
                if port == str(bound):
                    return name
        return next(iter(self.lab.peers)) if len(self.lab.peers) == 1 else None

    async def observe(
        self, call: CallSpec, placed: _Placed, *, started: dt.datetime, tls_mark: int
    ) -> tuple[Outcome, CallTrace]:
        """Judge a placed call from the Edge's event and record, and what the peers saw.

        ``tls_mark`` is how many partner handshake refusals were recorded before
        the call: calls of a lab run one at a time, so the rest are this call's.
        """
        call_id = placed.request.call_id if placed.request.headers.get("Call-ID") else None
        peer_address = f"{LOOPBACK}:{placed.local_port}" if placed.local_port else None
        event: Mapping[str, object] | None = None
        with trio.move_on_after(EVENT_WAIT):
            while True:
                event = find_event(
                    _read_events(self.log_dir),
                    call_id=call_id,
                    method=call.method,
                    peer_address=peer_address,
                )
                if event is not None:
                    break
                await trio.sleep(0.02)
        try:
            edge_log = (self.log_dir / "edge.log").read_text(encoding="utf-8")
        except OSError:
            edge_log = ""
        record = find_record(edge_log, call_id=call_id, peer_address=peer_address)
        code, params = _diagnostics(placed.final)
        received = self.partners.for_call(call_id) if call_id is not None else []
        if call.direction == "outbound":
            forwarded: bool | None = bool(received)
        else:
            accepted = event.get("accepted") if event is not None else None
            forwarded = accepted if isinstance(accepted, bool) else False
        rule = event.get("rule") if event is not None else None
        refused = rule == "tls-handshake-failed" or (
            event is not None and event.get("kind") == "tls-handshake-failed"
        )
        got = Outcome(
            status=placed.final.status if placed.final is not None else None,
            edge_log=_symbol(event),
            rule=rule if isinstance(rule, str) else None,
            ms_diagnostics=code,
            ms_diagnostics_params=params,
            forwarded=forwarded,
            error=placed.error,
            edge_log_data=_log_data(record),
            peer_headers=_peer_headers(placed.final),
            tls="refused-at-handshake" if refused else placed.tls_version,
            component=_component(event),
            windows_event=_windows_event(event),
            media=_media(placed.final),
            notify=_notify(placed.notifies),
            bye_after=None if placed.bye_after is None else round(placed.bye_after, 3),
            bye_headers=() if placed.user_bye is None else tuple(placed.user_bye.headers),
            text=_im_text(event, _read_events(self.log_dir), call_id),
        )
        extra = event.get("extra") if event is not None else None
        peer_names: tuple[str, ...] = ()
        if isinstance(extra, Mapping):
            names = extra.get("cert_names")
            tried = extra.get("targets_tried")
            if isinstance(names, list):
                peer_names = tuple(str(n) for n in names)
            elif isinstance(tried, list) and tried and isinstance(tried[-1], Mapping):
                last = tried[-1].get("cert_names")
                if isinstance(last, list):
                    peer_names = tuple(str(n) for n in last)
        partner = received[0][0] if received else None
        if call.direction == "inbound":
            partner = call.via
        elif partner is None:
            partner = self._partner_tried(extra)
        partner_tls = tuple(
            reason
            for _name, reason in self.partners.tls_errors[tls_mark:]
            if call.direction == "outbound"
        )
        messages = list(placed.messages)
        messages += [
            WireMessage(leg="federation", sender="Edge", receiver="Expressway-E", text=_text(r))
            for _, r in received
        ]
        edge = self.addresses.federation if call.direction == "inbound" else self.addresses.clients
        trace = CallTrace(
            scenario=self.lab.name,
            number=0,
            direction=call.direction,
            method=call.method,
            from_uri=call.from_,
            to_uri=call.to,
            pai=call.pai,
            caller=f"Expressway-E {call.via}" if call.direction == "inbound" else "Skype client",
            edge_fqdn=self.lab.edge.fqdn,
            edge_cert_names=self.edge_names,
            peer_name=partner,
            peer_cert_names=peer_names,
            request_line=placed.request.start_line,
            responses=tuple(_status_line(r) for r in placed.responses),
            partner_requests=tuple(r.start_line for _, r in received),
            error=placed.error,
            event=event,
            edge_record=record,
            started=started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            caller_address=peer_address,
            edge_address=f"{edge[0]}:{edge[1]}",
            messages=tuple(messages),
            partner_tls=partner_tls,
        )
        return got, trace


def _im_text(
    event: Mapping[str, object] | None,
    events: Sequence[Mapping[str, object]],
    call_id: str | None,
) -> str | None:
    """The IM text the Edge recorded for the call: in its event, or an IM in its dialog."""
    user = event.get("user") if event is not None else None
    if isinstance(user, Mapping) and isinstance(user.get("text"), str):
        return str(user["text"])
    for other in events:
        if other.get("kind") == "message" and other.get("call_id") == call_id:
            text = other.get("text")
            return text if isinstance(text, str) else None
    return None


def call_label(call: CallSpec, number: int) -> str:
    """``#1: inbound INVITE sip:2000@acano.steven.lab -> sip:stejanss@skype.lab``."""
    return f"#{number}: {call.direction} {call.method} {call.from_} -> {call.to}"


async def run_lab(
    lab_file: LabFile,
    *,
    work_dir: Path,
    pattern: str | None = None,
    trace: bool = False,
    pcap: Path | None = None,
) -> LabReport:
    """Run one lab in ``work_dir`` (certs/ and logs/ go there) and judge its selected calls.

    A lab that cannot start (a port, a certificate file) is reported with ``error``.
    ``trace`` writes the Edge's ``trace.log`` in its logs/, ``pcap`` a capture there.
    """
    lab = lab_file.lab
    started = time.monotonic()
    selected = [
        (n, c)
        for n, c in enumerate(lab.calls, start=1)
        if matches(pattern, lab.name, lab_file.id, n)
    ]
    base = LabReport(
        name=lab.name,
        id=lab_file.id,
        path=str(lab_file.path),
        summary=lab.summary,
        calls=(),
        selected=len(selected),
    )
    if not selected:
        return base
    shutil.rmtree(work_dir / "logs", ignore_errors=True)
    reports: list[CallReport] = []
    facts: LabFacts | None = None
    error: str | None = None
    try:
        reports, facts = await _run_lab_calls(
            lab, lab_file.id, selected, work_dir, sip_trace=trace, pcap=pcap
        )
    except* FedsimError as group:
        error = str(_first(group))
    except* OSError as group:
        error = f"cannot run the lab: {_first(group)}"
    if error is not None:
        return replace(base, error=error, seconds=time.monotonic() - started)
    return replace(base, calls=tuple(reports), seconds=time.monotonic() - started, facts=facts)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class LabSession:
    """A running lab and how to place its calls: ``fedsim run``'s, and the live page's.

    Attributes:
        lab: the lab as running (ports moved, SRV placeholders rewritten when isolated).
        ident: the lab's id in reports.
        addresses: where its Edge and DNS listen.
        facts: what it is made of (the page's lab panel).
        log_dir: its ``edge.log`` and ``events.jsonl``.
    """

    def __init__(
        self,
        lab: Lab,
        ident: str,
        addresses: LabAddresses,
        facts: LabFacts,
        *,
        partners: _Partners | None = None,
        peer_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.lab = lab
        self.ident = ident
        self.addresses = addresses
        self.facts = facts
        self.log_dir = addresses.log_dir
        self._partners = partners or _Partners()
        self._run = _LabRun(
            lab, addresses, addresses.issued, self._partners, addresses.log_dir, peer_ports
        )
        self._lock = trio.Lock()

    @property
    def edge_names(self) -> tuple[str, ...]:
        """The names in the certificate the Edge presents."""
        return self._run.edge_names

    @classmethod
    def of_served(cls, lab: Lab, addresses: LabAddresses, *, ident: str) -> LabSession:
        """A session over a lab ``fedsim serve`` runs (no partner peers of its own)."""
        now = dt.datetime.now(dt.UTC)
        return cls(lab, ident, addresses, lab_facts(lab, addresses.issued, ports={}, now=now))

    async def call(self, number: int, spec: CallSpec | None = None) -> CallReport:
        """Place call ``number`` of the lab (or ``spec``) and judge it; one call at a time."""
        call = spec if spec is not None else self.lab.calls[number - 1]
        async with self._lock:
            t0 = time.monotonic()
            started, tls_mark = dt.datetime.now(dt.UTC), len(self._partners.tls_errors)
            placed = await self._run.place(call, number)
            got, trace = await self._run.observe(call, placed, started=started, tls_mark=tls_mark)
        return CallReport(
            id=f"{self.ident} call-{number}",
            number=number,
            label=call_label(call, number),
            expect=call.expect,
            got=got,
            mismatches=compare(call.expect, got),
            trace=replace(trace, number=number),
            seconds=time.monotonic() - t0,
        )


async def serve_lab_session(
    lab: Lab,
    ident: str,
    work_dir: Path,
    *,
    sip_trace: bool = False,
    pcap: Path | None = None,
    observe: Observer | None = None,
    watch: Watch | None = None,
    task_status: trio.TaskStatus[LabSession] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``lab`` isolated (module docstring) with its partner peers until cancelled.

    Reports a :class:`LabSession` that places the lab's calls. ``observe`` sees every
    event and record the Edge writes (:meth:`~simulator.edge.recorder.Recorder.subscribe`),
    ``watch`` every SIP message it reads or writes;
    ``sip_trace`` writes the Edge's ``trace.log``, ``pcap`` a capture of its legs.
    """
    # The CRL server first: every certificate names its URL. Then the PKI, issued
    # before the peers start (they present these certificates); serve_lab reuses
    # the same files, unchanged, and serves the CRLs on this service.
    crl = await open_crl_service(LOOPBACK, 0)
    try:
        await _serve_with_crl(
            lab,
            ident,
            work_dir,
            crl,
            sip_trace=sip_trace,
            pcap=pcap,
            observe=observe,
            watch=watch,
            task_status=task_status,
        )
    finally:
        for listener in crl.listeners:  # closed here too if the lab never started
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(listener)


async def _serve_with_crl(
    lab: Lab,
    ident: str,
    work_dir: Path,
    crl: CrlService,
    *,
    sip_trace: bool,
    pcap: Path | None,
    observe: Observer | None,
    watch: Watch | None,
    task_status: trio.TaskStatus[LabSession],
) -> None:
    certs_dir, log_dir = work_dir / "certs", work_dir / "logs"
    now = dt.datetime.now(dt.UTC)
    issued = issue_pki(lab.certs, certs_dir, now=now, crl_url=crl.base)
    partners = _Partners()
    async with trio.open_nursery() as nursery:
        ports: dict[int, int] = {}
        peer_ports: dict[str, int] = {}
        for name, placeholder in placeholder_ports(lab).items():
            peer = lab.peers[name]
            ctx = peer_server_context(peer, peer_files(peer, issued))
            _host, port = await nursery.start(
                partial(
                    serve_peer,
                    host=LOOPBACK,
                    port=0,
                    ssl_context=ctx,
                    answer=peer.answer,
                    media=cast(AnswerEncryption, peer.media),
                    presence=peer.presence,
                    name=name,
                    rng=seeded(lab, f"peer-{name}"),
                    on_request=partners.recorder(name),
                    on_tls_error=partners.tls_recorder(name),
                )
            )
            ports[placeholder] = port
            peer_ports[name] = port
        facts = lab_facts(lab, issued, ports=peer_ports, now=now)
        running = _isolated(lab, ports, work_dir)
        outbound = replace(OUTBOUND_LIMITS, proxy_port=ports.get(FEDERATION_PORT, 1))
        addresses: LabAddresses = await nursery.start(
            partial(
                serve_lab,
                running,
                log_dir=log_dir,
                certs_dir=certs_dir,
                limits=EDGE_LIMITS,
                outbound=outbound,
                rng=seeded(lab, "edge"),
                crl=crl,
                trace=sip_trace,
                pcap=pcap,
                observe=observe,
                watch=watch,
            )
        )
        task_status.started(
            LabSession(running, ident, addresses, facts, partners=partners, peer_ports=peer_ports)
        )


async def _run_lab_calls(
    lab: Lab,
    ident: str,
    selected: Sequence[tuple[int, CallSpec]],
    work_dir: Path,
    *,
    sip_trace: bool,
    pcap: Path | None,
) -> tuple[list[CallReport], LabFacts]:
    reports: list[CallReport] = []
    async with trio.open_nursery() as nursery:
        session: LabSession = await nursery.start(
            partial(serve_lab_session, lab, ident, work_dir, sip_trace=sip_trace, pcap=pcap)
        )
        for number, call in selected:
            reports.append(await session.call(number, call))
        nursery.cancel_scope.cancel()
    return reports, session.facts


def _isolated(lab: Lab, ports: Mapping[int, int], work: Path) -> Lab:
    """``lab`` on private loopback ports, its SRV placeholders rewritten (module docstring)."""
    port0 = (LOOPBACK, 0)
    lab = with_overrides(lab, listen=port0, clients=port0, dns_listen=port0)
    if not ports:
        return lab
    zones: list[Path] = []
    for i, zone in enumerate(lab.dns.zones):
        text = zone.read_text(encoding="utf-8")
        new = rewrite_srv_ports(text, ports)
        if new == text:
            zones.append(zone)
            continue
        copy = work / "zones" / f"{i:02d}-{zone.name}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(new, encoding="utf-8")
        zones.append(copy)
    dns = replace(lab.dns, records=rewrite_srv_ports(lab.dns.records, ports), zones=tuple(zones))
    return replace(lab, dns=dns)


# --- running many labs ---------------------------------------------------------------

Progress = Callable[[int, int, Sequence[str]], None]


async def run_labs(
    labs: Sequence[LabFile],
    *,
    jobs: int = 4,
    pattern: str | None = None,
    keep_dir: Path | None = None,
    pcap_dir: Path | None = None,
    progress: Progress | None = None,
) -> list[LabReport]:
    """Run ``labs`` at most ``jobs`` at a time; the reports come back in ``labs`` order.

    Args:
        labs: loaded lab files.
        jobs: how many labs run at once.
        pattern: ``-k`` selection over "name call-N".
        keep_dir: keep each lab's certs/ and logs/ in ``keep_dir/<id>/`` (else a
            temporary directory, removed at the end), with the Edge's ``trace.log``.
        pcap_dir: write each lab's capture there (:func:`capture_name`).
        progress: called with (done, total, names running now) whenever that changes.
    """
    if jobs < 1:
        raise FedsimError(f"-j {jobs}: run at least one lab at a time")
    limiter = trio.CapacityLimiter(jobs)
    results: list[LabReport | None] = [None] * len(labs)
    running: list[str] = []
    done = 0

    def tick() -> None:
        if progress is not None:
            progress(done, len(labs), tuple(running))

    with tempfile.TemporaryDirectory(prefix="fedsim-run-") as tmp:
        root = keep_dir if keep_dir is not None else Path(tmp)

        async def one(index: int, lab_file: LabFile) -> None:
            nonlocal done
            async with limiter:
                running.append(lab_file.id)
                tick()
                work = root / lab_file.id
                results[index] = await run_lab(
                    lab_file,
                    work_dir=work,
                    pattern=pattern,
                    trace=keep_dir is not None,
                    pcap=None if pcap_dir is None else pcap_dir / capture_name(lab_file.id),
                )
                running.remove(lab_file.id)
                done += 1
                tick()

        async with trio.open_nursery() as nursery:
            for index, lab_file in enumerate(labs):
                nursery.start_soon(one, index, lab_file)
    return [r for r in results if r is not None]


def capture_name(ident: str) -> str:
    """``seeds--01-acano-srv-parent-domain.pcapng``: one flat file name per lab (as ladders)."""
    return f"{ident.replace('/', '--')}.pcapng"


__all__ = [
    "CALL_TIMEOUT",
    "LabFile",
    "LabSession",
    "call_label",
    "capture_name",
    "discover",
    "find_event",
    "find_record",
    "load_lab_files",
    "matches",
    "placeholder_ports",
    "rewrite_srv_ports",
    "run_lab",
    "run_labs",
    "serve_lab_session",
]
