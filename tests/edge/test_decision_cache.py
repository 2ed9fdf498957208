"""The Edge caches verdicts under exactly the decision's arguments, and nothing else leaks in.

A connection remembers the verdict of each (route, SRV answer, first Route, called
user, discovered partner's load) it met (the peer certificate is the connection's
own). The cache is right only if a decision depends on nothing outside those
(and the settings): hypothesis
sends runs of requests that differ in everything else (Call-IDs, called users,
methods, extra headers, PAI or not) through the federation port's real request
path, over an in-memory stream, and every event must carry the status and rule
that the pure functions give for that request alone.
"""

from __future__ import annotations

import io
import json
import random
import tempfile
from pathlib import Path

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.dns import Resolver
from simulator.edge.inbound import FederationConnection, _request
from simulator.edge.recorder import Recorder
from simulator.edge.state import EdgeState, TrustStore
from simulator.edge.userwire import UserLink
from simulator.net.sipstream import SipStream
from simulator.policy import (
    AllowedDomain,
    EdgeSettings,
    PeerCertificate,
    Rejection,
    SrvLookup,
    SrvTarget,
    decide_inbound,
    inbound_route,
    local_user,
    screen_inbound,
)
from simulator.sip import Request, parse_message
from simulator.skype.user import Directory, Leg, SkypeUser, UserProfile, answer_status

DOMAINS = ("acano.steven.lab", "steven.lab", "cms.steven.lab", "blocked.lab")
#: Each domain's SRV answer in the test's DNS: in the domain, outside it, or none.
SRV: dict[str, SrvLookup] = {
    "acano.steven.lab": SrvLookup(
        name="_sipfederationtls._tcp.acano.steven.lab",
        outcome="ok",
        targets=(SrvTarget(target="vcse.steven.lab", port=5061),),
    ),
    "steven.lab": SrvLookup(
        name="_sipfederationtls._tcp.steven.lab",
        outcome="ok",
        targets=(SrvTarget(target="vcse.steven.lab", port=5061),),
    ),
    "cms.steven.lab": SrvLookup(name="_sipfederationtls._tcp.cms.steven.lab", outcome="nxdomain"),
    "blocked.lab": SrvLookup(name="_sipfederationtls._tcp.blocked.lab", outcome="nxdomain"),
}
PEER = PeerCertificate.from_subject(cn="vcse.steven.lab", dns_sans=("vcse.steven.lab",))
SETTINGS = EdgeSettings(
    fqdn="sip.skype.lab",
    domains=("skype.lab",),
    blocked=("blocked.lab",),
    allowed=(AllowedDomain(domain="cms.steven.lab", proxy_fqdn="vcse.steven.lab"),),
)
USERS = {"bob": 486}
DIRECTORY = Directory(settings=SETTINGS, users={"bob": UserProfile(answer=486)})

requests_ = st.fixed_dictionaries(
    {
        "method": st.sampled_from(("INVITE", "OPTIONS", "MESSAGE")),
        "sender": st.sampled_from(DOMAINS),
        "asserted": st.none() | st.sampled_from(DOMAINS),
        "user": st.sampled_from(("alice", "bob", "carol")),
        "to_domain": st.sampled_from(("skype.lab", "skype.lab", "other.lab")),
        "extra": st.sampled_from(("", "Subject: x\r\n", "Priority: urgent\r\nX-Y: z\r\n")),
    }
)


def _wire(n: int, r: dict[str, str | None]) -> bytes:
    pai = f"P-Asserted-Identity: <sip:p@{r['asserted']}>\r\n" if r["asserted"] else ""
    to = f"sip:{r['user']}@{r['to_domain']}"
    return (
        f"{r['method']} {to} SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.9:5061;branch=z9hG4bK{n}\r\n"
        f"From: <sip:2000@{r['sender']}>;tag=f{n}\r\nTo: <{to}>\r\nCall-ID: call-{n}\r\n"
        f"CSeq: {n + 1} {r['method']}\r\n{pai}{r['extra']}Content-Length: 0\r\n\r\n"
    ).encode()


def _expected(request: Request) -> tuple[int, str]:
    """What the pure functions give for this request alone (no cache anywhere)."""
    parties = screen_inbound(request, SETTINGS)
    assert not isinstance(parties, Rejection)
    route = inbound_route(parties, SETTINGS)
    srv = None if route.srv_name is None else SRV[route.domain]
    decision = decide_inbound(route, PEER, srv, SETTINGS, user=_called(request))
    if not decision.accepted:
        return decision.status, decision.rule
    return answer_status(request, DIRECTORY), decision.rule


def _called(request: Request) -> object:
    """The called user's facts, as the Edge derives them (no per-user settings here)."""
    to, caller = request.to.uri, request.from_.uri
    return local_user(
        to.user,  # type: ignore[union-attr]
        to.host,  # type: ignore[union-attr]
        federation=True,
        contacts=(),
        peer=(caller.user, caller.host),  # type: ignore[union-attr]
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(requests_, min_size=2, max_size=12))
async def test_every_cached_verdict_is_the_one_the_pure_decision_gives(
    runs: list[dict[str, str | None]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp), stderr=io.StringIO())
        edge = EdgeState(
            settings=SETTINGS,
            users=USERS,
            resolver=Resolver(("127.0.0.1", 9)),
            trust=TrustStore(roots=[], public_roots=[], intermediates=[]),
            recorder=recorder,
            rng=random.Random(1),
        )
        for domain, lookup in SRV.items():  # the DNS answers, kept as the Edge keeps them
            edge.lookups.keep(f"_sipfederationtls._tcp.{domain}", lookup, 3600)
        ours, peer = trio.testing.memory_stream_pair()
        conn = FederationConnection(
            sip=SipStream(ours, before_send=recorder.flush),
            tls=None,  # type: ignore[arg-type]  # the in-memory stream stands in for TLS
            peer_ip="10.0.0.9",
            peer_port=25002,
            peer=PEER,
            leg=Leg(local=("10.0.0.5", 5061)),
            label="vcse.steven.lab:25002",
        )
        user = SkypeUser(DIRECTORY, rng=random.Random(2))
        sent: list[Request] = []
        async with trio.open_nursery() as nursery:
            conn.link = UserLink(
                user=user,
                send=conn.sip.send,
                nursery=nursery,
                recorder=recorder,
                direction="inbound",
                peer=conn.label,
            )
            for n, r in enumerate(runs):
                message = parse_message(_wire(n, r))
                assert isinstance(message, Request)
                sent.append(message)
                await _request(edge, user, conn, message)
            nursery.cancel_scope.cancel()  # the user's timers (200s waiting for ACKs)
        recorder.close()
        events = [
            json.loads(line) for line in (Path(tmp) / "events.jsonl").read_text().splitlines()
        ]
        got = {e["call_id"]: (e["status"], e["rule"]) for e in events}
        assert got == {m.call_id: _expected(m) for m in sent}
        # One compiled verdict per distinct (route, called user) met, however many
        # requests: a per-user verdict is never reused for another user.
        met = {(id(edge.routes[screen_inbound(m, SETTINGS)]), _called(m)) for m in sent}
        assert len(conn.verdicts) == len(met)
        del peer
