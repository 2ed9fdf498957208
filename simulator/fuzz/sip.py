"""The SIP fuzz harness: bytes off the wire through everything the Edge does with them.

:func:`check` is the target. One input is fed to a :class:`StreamFramer` in
chunks (the first byte picks the chunk size, so the fuzzer explores record
boundaries too); every framed message goes to :func:`parse_message`; a request
then goes through the whole request path of each of the Edge's two ports, with
the Edge's own code: screening, routing, the caller's and the target's DNS
names, the policy decision, the emulated Skype user's answer (INVITE, CANCEL,
in-dialog requests, SUBSCRIBE and its NOTIFY) or the relay's forwarded request,
and everything the Edge would send must parse back; an unparsable request gets
:func:`error_response_for`. h11's rule: :class:`SipParseError` is
the only exception allowed; anything else, or a broken invariant
(:class:`FuzzFinding`), is a bug.

Two drivers share it: :func:`run_atheris` (coverage-guided, needs the optional
``atheris`` package) and :func:`run_loop` (pure Python: the seed corpus, then
seeded random mutations until the time is up), which is what CI runs.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from simulator.dns import SrvAnswer
from simulator.dns import SrvTarget as DnsSrvTarget
from simulator.edge.envelope import CLIENT_COPY_ORDER
from simulator.edge.lookups import srv_lookup
from simulator.policy import (
    Decision,
    EdgeSettings,
    PeerCertificate,
    Rejection,
    SrvLookup,
    decide_inbound,
    inbound_route,
    outbound_after_srv,
    outbound_check_peer,
    outbound_route,
    screen_inbound,
    screen_outbound,
)
from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    build_response,
    parse_message,
    serialize,
)
from simulator.sip.proxy import proxied_request, stamp_via
from simulator.sip.unparsable import error_response_for
from simulator.skype.media import MediaSettings, answer_offer
from simulator.skype.user import Answer, Directory, Leg, SkypeUser, UserProfile

__all__ = ["SEEDS", "FuzzFinding", "LoopResult", "check", "mutate", "run_atheris", "run_loop"]

#: Small limits so oversize paths are reached by short inputs.
MAX_HEADER = 4096
MAX_BODY = 8192

_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"m=video 30002 RTP/AVP 96\r\n"
)


def _message(start: str, lines: Sequence[str], body: bytes = b"") -> bytes:
    head = "\r\n".join([start, *lines, f"Content-Length: {len(body)}", "", ""])
    return head.encode() + body


_COMMON = (
    "Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    'From: "Bob" <sip:2000@steven.lab>;tag=1928301774',
    "To: <sip:stejanss@skype.lab>",
    "Call-ID: a84b4c76e66710@pc33.steven.lab",
)

#: Seed corpus: the shapes the Edge meets (an extra corpus directory adds RFC 4475).
SEEDS: tuple[bytes, ...] = (
    _message(
        "INVITE sip:stejanss@skype.lab SIP/2.0",
        [
            *_COMMON,
            "CSeq: 314159 INVITE",
            "Contact: <sip:2000@10.0.0.1:5061;transport=tls>",
            "P-Asserted-Identity: <sip:2000@acano.steven.lab>",
            "Content-Type: application/sdp",
        ],
        _SDP,
    ),
    _message("OPTIONS sip:skype.lab SIP/2.0", [*_COMMON, "CSeq: 1 OPTIONS"]),
    _message(
        "SUBSCRIBE sip:stejanss@skype.lab SIP/2.0",
        [
            *_COMMON,
            "CSeq: 2 SUBSCRIBE",
            "Event: presence",
            "Expires: 600",
            "Contact: <sip:2000@10.0.0.1;transport=tls>",
        ],
    ),
    _message(
        "CANCEL sip:stejanss@skype.lab SIP/2.0",
        [*_COMMON, "CSeq: 314159 CANCEL"],
    ),
    _message(
        "BYE sip:stejanss@sip.skype.lab:5061;transport=tls SIP/2.0",
        [*_COMMON[:-1], "To: <sip:stejanss@skype.lab>;tag=0A1B", _COMMON[-1], "CSeq: 3 BYE"],
    ),
    _message("SIP/2.0 200 OK", [*_COMMON, "CSeq: 1 NOTIFY"]),
    b"\r\n\r\n" + _message("MESSAGE sip:stejanss@skype.lab SIP/2.0", [*_COMMON, "CSeq: 4 MESSAGE"]),
)

#: Byte strings the mutator splices in: the separators and lies the parser must survive.
TOKENS: tuple[bytes, ...] = (
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\r\n",
    b"\r\n\r\n",
    b"\r\n ",
    b"\n",
    b"\r",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"\\",
    b"%",
    b"%00",
    b":",
    b"@",
    b"[",
    b"]",
    b"=",
    b" ",
    b"\t",
    b"Content-Length: 99999999999999\r\n",
    b"Content-Length: -1\r\n",
    b"l: 5\r\n",
    b"Via: SIP/2.0/TLS h;branch=z9hG4bKx\r\n",
    b"v: SIP/2.0/TCP [::1]:1\r\n",
    b";p" * 64,
    b"SIP/2.0 ",
    b"sip:",
    b"sips:a@b",
    b"tag=",
)


class FuzzFinding(AssertionError):
    """An input broke an invariant of the Edge's byte path (a bug to fix).

    Attributes:
        data: the whole input that broke it.
        what: which invariant broke.
    """

    def __init__(self, what: str, data: bytes) -> None:
        super().__init__(f"{what}: input {data[:300]!r}")
        self.what = what
        self.data = data


def check(data: bytes) -> int:
    """Run one input through the Edge's byte path; return how many messages were framed.

    Raises:
        FuzzFinding: an invariant broke.
        Exception: anything other than SipParseError escaping the SIP core (a bug).
    """
    framer = StreamFramer(max_header_bytes=MAX_HEADER, max_body_bytes=MAX_BODY)
    chunk = (data[0] % 61) + 1 if data else 1
    framed = 0
    fed = 0
    while True:
        try:
            item = framer.next_message()
        except SipParseError as exc:  # FramingError/MessageTooLarge: answer, then close
            _answer_unparsable(exc.offending, exc, data)
            return framed
        if item is Need.DATA:
            if fed >= len(data):
                return framed
            framer.receive_data(data[fed : fed + chunk])
            fed += chunk
            if framer.buffered > MAX_HEADER + MAX_BODY + chunk:
                raise FuzzFinding(f"framer buffers {framer.buffered} bytes", data)
            continue
        if item is KeepAlive.PING:
            continue
        if not isinstance(item, bytes):
            raise FuzzFinding(f"framer returned {item!r}", data)
        framed += 1
        _one_message(item, data)


def _one_message(item: bytes, data: bytes) -> None:
    try:
        message = parse_message(item)
    except SipParseError as exc:
        _answer_unparsable(item, exc, data)
        return
    if isinstance(message, Response):
        return  # the Edge drops responses it did not ask for
    _as_the_edge(message, data)


def _answer_unparsable(raw: bytes, exc: SipParseError, data: bytes) -> None:
    if not isinstance(exc.offending, bytes) or not 400 <= exc.status_hint <= 599:
        raise FuzzFinding(f"bad error attributes {exc.status_hint} {exc.offending!r}", data)
    reply = error_response_for(raw, exc.status_hint, server="RTC/6.0", to_tag="0" * 32)
    if reply is not None and not reply.startswith(b"SIP/2.0 %d " % exc.status_hint):
        raise FuzzFinding("error response does not start with its status", data)


#: The Edge the harness answers as: the built-in lab's names, one busy user.
_SETTINGS = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
_DIRECTORY = Directory(settings=_SETTINGS, users={"bob": UserProfile(answer=486)})
#: A partner whose certificate names the in-domain SRV target the harness invents.
_PEER = PeerCertificate.from_subject(cn="vcse.steven.lab", dns_sans=("vcse.steven.lab",))
_FEDERATION_LEG = Leg(
    local=("127.0.0.1", 5061),
    via_params=(
        ("received", "127.0.0.1"),
        ("ms-received-port", "5061"),
        ("ms-received-cid", "100"),
    ),
)
_CLIENTS_LEG = Leg(local=("127.0.0.1", 5062), copy_order=CLIENT_COPY_ORDER)


def _srv(name: str, domain: str) -> SrvLookup:
    """The SRV answer of a well-run partner: one target exactly in its domain."""
    answer = SrvAnswer(
        name=name + ".",
        outcome="ok",
        targets=(DnsSrvTarget(priority=0, weight=0, port=5061, target=f"vcse.{domain}."),),
        ttl=300,
    )
    return srv_lookup(name, answer)


def _sent(wire: bytes, data: bytes, what: str) -> None:
    """Whatever the Edge sends must parse back (a response, or the user's NOTIFY)."""
    try:
        parse_message(wire)
    except SipParseError as exc:
        raise FuzzFinding(f"the Edge's {what} does not parse back: {exc}", data) from None


def _user_answers(user: SkypeUser, request: Request, leg: Leg, data: bytes) -> None:
    if request.method == "CANCEL":
        answer = user.cancel(request, leg)
    elif request.to.tag is not None or request.method == "ACK":
        answer = user.in_dialog(request, leg, 0.0)
    else:
        answer = user.new_request(request, leg, 0.0)
    _check_answer(user, answer, data)


def _check_answer(user: SkypeUser, answer: Answer, data: bytes, depth: int = 0) -> None:
    """Every message parses back, including what the user's timers send later
    (retransmitted 200s, its BYE, a NOTIFY at expiry), followed a few levels deep."""
    for message in answer.messages:
        _sent(message, data, "user's answer")
    if depth < 3:
        for timer in answer.timers:
            _check_answer(user, user.timer(timer, timer.at), data, depth + 1)


def _refusal(request: Request, status: int, headers: Sequence[tuple[str, str]], leg: Leg) -> bytes:
    extra = {"copy_order": leg.copy_order} if leg.copy_order is not None else {}
    response = build_response(
        request,
        status,
        to_tag="0" * 32 if request.to.tag is None else None,
        headers=headers,
        via_params=leg.via_params,
        **extra,  # type: ignore[arg-type]
    )
    return serialize(response)


def _as_the_federation_port(request: Request, data: bytes, user: SkypeUser) -> None:
    """The federation port's whole path: screen, route, SRV, decide, answer (edge/inbound.py)."""
    if request.method == "CANCEL" or request.to.tag is not None or request.method == "ACK":
        _user_answers(user, request, _FEDERATION_LEG, data)
        return
    parties = screen_inbound(request, _SETTINGS)
    server = (("Server", _SETTINGS.server_header),)
    if isinstance(parties, Rejection):
        _sent(_refusal(request, parties.status, server, _FEDERATION_LEG), data, "rejection")
        return
    route = inbound_route(parties, _SETTINGS)
    srv = None if route.srv_name is None else _srv(route.srv_name, route.domain)
    decision = decide_inbound(route, _PEER, srv, _SETTINGS)
    if decision.accepted:
        _user_answers(user, request, _FEDERATION_LEG, data)
    else:
        reply = _refusal(request, decision.status, decision.headers, _FEDERATION_LEG)
        _sent(reply, data, f"{decision.status}")


def _as_the_clients_port(request: Request, data: bytes, user: SkypeUser) -> None:
    """The clients port's whole path: stamp the Via, screen, the local user or the relay's
    policy steps up to the partner (edge/clients.py, edge/outbound.py)."""
    try:
        request = stamp_via(request, ip="127.0.0.1", port=40000, cid="200")
    except SipParseError:
        return  # the port answers 400 (the stream's unparsable-input policy)
    if request.method == "CANCEL" or request.to.tag is not None or request.method == "ACK":
        _user_answers(user, request, _CLIENTS_LEG, data)
        return
    server = (("Server", _SETTINGS.server_header),)
    target = screen_outbound(request, _SETTINGS)
    if isinstance(target, Rejection):
        _sent(_refusal(request, target.status, server, _CLIENTS_LEG), data, "rejection")
        return
    if target.local:
        _user_answers(user, request, _CLIENTS_LEG, data)
        return
    route = outbound_route(target.domain, _SETTINGS)
    if isinstance(route, Decision):
        _sent(_refusal(request, route.status, route.headers, _CLIENTS_LEG), data, "refusal")
        return
    if route.kind == "srv":
        after = outbound_after_srv(target.domain, _srv(route.name, target.domain), _SETTINGS)
        if isinstance(after, Decision):
            _sent(_refusal(request, after.status, after.headers, _CLIENTS_LEG), data, "refusal")
            return
        refusal = outbound_check_peer(target.domain, after[0].target, _PEER, _SETTINGS)
        if refusal is not None:
            _sent(_refusal(request, refusal.status, refusal.headers, _CLIENTS_LEG), data, "1010")
            return
    forwarded = proxied_request(
        request,
        fqdn=_SETTINGS.fqdn,
        port=5061,
        branch="z9hG4bK" + "0" * 32,
        record_route=request.method in ("INVITE", "SUBSCRIBE"),
        max_forwards=69,
    )
    _sent(serialize(forwarded), data, "forwarded request")


def _as_the_edge(request: Request, data: bytes) -> None:
    """Answer ``request`` as each of the Edge's two ports does, with the Edge's own code."""
    user = SkypeUser(_DIRECTORY, rng=random.Random(0))
    # The emulated user's media decision never raises for a peer's SDP.
    answer_offer(
        request.body,
        settings=MediaSettings(),
        address="127.0.0.1",
        port=20000,
        rng=random.Random(0),
        user_uri="sip:user@skype.lab",
    )
    _as_the_federation_port(request, data, user)
    _as_the_clients_port(request, data, user)


def mutate(data: bytes, rng: random.Random, seeds: Sequence[bytes] = SEEDS) -> bytes:
    """One to four random edits: flip, insert a token, delete, duplicate, splice a seed."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(out))
        kind = rng.randrange(6)
        if kind == 0 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            out[pos:pos] = rng.choice(TOKENS)
        elif kind == 2 and out:
            del out[pos : pos + rng.randint(1, 16)]
        elif kind == 3 and out:
            start = rng.randrange(len(out))
            piece = out[start : start + rng.randint(1, 64)]
            out[pos:pos] = piece * rng.randint(1, 8)
        elif kind == 4:
            other = rng.choice(seeds)
            cut = rng.randint(0, len(other))
            out[pos:] = other[cut:]
        else:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(out[: 4 * (MAX_HEADER + MAX_BODY)])


def load_corpus(dirs: Iterable[Path]) -> list[bytes]:
    """The seeds plus every regular file (non-recursive) of ``dirs``."""
    corpus = list(SEEDS)
    for folder in dirs:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                corpus.append(path.read_bytes())
    return corpus


class LoopResult:
    """What a plain-loop run did."""

    def __init__(self) -> None:
        self.inputs = 0
        self.messages = 0


def run_loop(
    corpus: Sequence[bytes],
    *,
    seconds: float,
    seed: int = 0,
    max_inputs: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LoopResult:
    """Every corpus entry once, then seeded mutations until ``seconds`` or ``max_inputs``.

    Raises:
        FuzzFinding: (or any other exception) on the first failing input.
    """
    rng = random.Random(seed)
    result = LoopResult()
    deadline = clock() + seconds
    pool = list(corpus) or [b""]
    for data in pool:
        result.messages += check(data)
        result.inputs += 1
    while clock() < deadline and (max_inputs is None or result.inputs < max_inputs):
        data = mutate(rng.choice(pool), rng, pool)
        try:
            result.messages += check(data)
        except Exception as exc:
            if isinstance(exc, FuzzFinding):
                raise
            raise FuzzFinding(f"{type(exc).__name__}: {exc}", data) from exc
        result.inputs += 1
    return result


def run_atheris(corpus_dirs: Sequence[Path], *, seconds: int, argv: Sequence[str] = ()) -> None:
    """Coverage-guided fuzzing with atheris (``pip install atheris``; see ``make fuzz``)."""
    atheris: Any = importlib.import_module("atheris")
    # The harness imported the framer, parser and reply code already, so
    # instrument_imports() would see nothing new: instrument what is loaded.
    atheris.instrument_all()
    # libFuzzer writes what it finds into the FIRST corpus folder: a writable work
    # folder goes first so seed folders (../shared is read-only material) stay as
    # they are; crashes land beside it.
    work = Path("build/fuzz-corpus")
    work.mkdir(parents=True, exist_ok=True)
    args = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        "-artifact_prefix=build/fuzz-",
        *argv,
        str(work),
        *map(str, corpus_dirs),
    ]
    atheris.Setup(args, check)
    atheris.Fuzz()
