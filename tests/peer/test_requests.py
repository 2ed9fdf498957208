"""The requests of the simulated Expressway-E, built as data (RFC 3261 §8.1, §12, §17.1.1.3)."""

from __future__ import annotations

import random

import pytest

from simulator.errors import FedsimError
from simulator.peer import requests
from simulator.sip import Headers, Request, Response, parse_message, serialize

LOCAL = ("10.48.36.47", 25002)


def ids(seed: int = 1) -> requests.CallIds:
    return requests.CallIds.generate(random.Random(seed))


def invite(pai: str | None = None) -> Request:
    return requests.build_request(
        method="INVITE",
        from_uri="sip:2000@acano.steven.lab",
        to_uri="sip:stejanss@skype.lab",
        pai=pai,
        local=LOCAL,
        ids=ids(),
    )


def response_to(request: Request, status: int, *extra: tuple[str, str]) -> Response:
    pairs = [
        ("Via", request.headers.get("Via") or ""),
        ("From", request.headers.get("From") or ""),
        ("To", f"{request.headers.get('To')};tag=C65A7B0A8766A5F1D386474833D07882"),
        ("Call-ID", request.call_id),
        ("CSeq", f"{request.cseq[0]} {request.cseq[1]}"),
        *extra,
    ]
    return Response(status=status, reason="x", headers=Headers(pairs))


def test_call_ids_are_reproducible_from_the_rng_and_shaped_like_expressway() -> None:
    first, again = ids(7), ids(7)
    assert first == again
    assert first.branch.startswith("z9hG4bK")
    assert len(first.branch) == len("z9hG4bK") + 32
    assert len(first.from_tag) == 16
    assert first.call_id.count("-") == 4  # uuid4, as in the seed's f1b3ad5d-183b-...
    assert first.rtp_port % 2 == 0
    assert ids(8) != first


@pytest.mark.parametrize(
    ("method", "content_type", "has_body"),
    [
        ("INVITE", "application/sdp", True),
        ("MESSAGE", "text/plain;charset=UTF-8", True),
        ("OPTIONS", None, False),
    ],
)
def test_each_method_carries_its_body(
    method: str, content_type: str | None, has_body: bool
) -> None:
    request = requests.build_request(
        method=method,
        from_uri="sip:2000@acano.steven.lab",
        to_uri="sip:stejanss@skype.lab",
        pai=None,
        local=LOCAL,
        ids=ids(),
    )
    assert request.headers.get("Content-Type") == content_type
    assert bool(request.body) is has_body
    assert request.cseq[1] == method
    # What we build, the parser reads back unchanged.
    assert parse_message(serialize(request)) == request


def test_invite_headers_follow_the_expressway_shape() -> None:
    request = invite(pai="sip:2000@steven.lab")
    assert request.headers.get("Via") == (f"SIP/2.0/TLS 10.48.36.47:25002;branch={ids().branch}")
    assert request.headers.get("P-Asserted-Identity") == "<sip:2000@steven.lab>"
    assert request.headers.get("Contact") == "<sip:2000@10.48.36.47:25002;transport=tls>"
    assert b"c=IN IP4 10.48.36.47" in request.body


def test_ipv6_sent_by_is_bracketed() -> None:
    request = requests.build_request(
        method="OPTIONS",
        from_uri="sip:2000@acano.steven.lab",
        to_uri="sip:stejanss@skype.lab",
        pai=None,
        local=("::1", 5061),
        ids=ids(),
    )
    assert request.vias[0].host in ("::1", "[::1]")
    assert request.headers.get("Contact") == "<sip:2000@[::1]:5061;transport=tls>"


def test_ack_for_a_failure_reuses_the_invite_branch_and_takes_the_to_tag() -> None:
    request = invite()
    ack = requests.build_ack_for_failure(request, response_to(request, 504))
    assert ack.method == "ACK"
    assert ack.uri == request.uri
    assert ack.headers.get("Via") == request.headers.get("Via")
    assert ack.cseq == (request.cseq[0], "ACK")
    assert ack.to.tag == "C65A7B0A8766A5F1D386474833D07882"
    assert ack.from_ == request.from_
    assert ack.call_id == request.call_id


def test_ack_and_bye_after_a_2xx_follow_contact_and_the_reversed_record_route() -> None:
    request = invite()
    ok = response_to(
        request,
        200,
        ("Record-Route", "<sip:edge2.skype.lab;transport=tls;lr>"),
        ("Record-Route", "<sip:edge1.skype.lab;transport=tls;lr>"),
        ("Contact", "<sip:stejanss@fe.skype.lab:5061;transport=tls>"),
    )
    ack = requests.build_ack_for_success(request, ok, branch="z9hG4bKack")
    bye = requests.build_bye(request, ok, branch="z9hG4bKbye")
    for message in (ack, bye):
        assert message.uri == "sip:stejanss@fe.skype.lab:5061;transport=tls"
        assert message.headers.get_all("Route") == [
            "<sip:edge1.skype.lab;transport=tls;lr>",
            "<sip:edge2.skype.lab;transport=tls;lr>",
        ]
        assert message.to.tag == "C65A7B0A8766A5F1D386474833D07882"
        assert message.vias[0].host == "10.48.36.47"
    assert (ack.vias[0].branch, ack.cseq) == ("z9hG4bKack", (request.cseq[0], "ACK"))
    assert (bye.vias[0].branch, bye.cseq) == ("z9hG4bKbye", (request.cseq[0] + 1, "BYE"))


def test_a_2xx_without_contact_targets_the_request_uri() -> None:
    request = invite()
    bye = requests.build_bye(request, response_to(request, 200), branch="z9hG4bKbye")
    assert bye.uri == request.uri
    assert "Route" not in bye.headers


def test_responses_are_matched_by_call_id_and_cseq() -> None:
    request = invite()
    assert requests.answers(response_to(request, 200), request)
    other = requests.build_request(
        method="INVITE",
        from_uri="sip:2000@acano.steven.lab",
        to_uri="sip:stejanss@skype.lab",
        pai=None,
        local=LOCAL,
        ids=ids(2),
    )
    assert not requests.answers(response_to(other, 200), request)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("method", "REGISTER", "not one of"),
        ("from_uri", "alice", "from URI 'alice' is not a SIP URI"),
        ("to_uri", "mailto:bob@skype.lab", "to URI 'mailto:bob@skype.lab' must be a sip:"),
        ("pai", "sip:", "P-Asserted-Identity"),
    ],
)
def test_bad_inputs_are_fedsim_errors(field: str, value: str, match: str) -> None:
    kwargs: dict[str, object] = {
        "method": "INVITE",
        "from_uri": "sip:2000@acano.steven.lab",
        "to_uri": "sip:stejanss@skype.lab",
        "pai": None,
        "local": LOCAL,
        "ids": ids(),
    }
    kwargs[field] = value
    with pytest.raises(FedsimError, match=match):
        requests.build_request(**kwargs)  # type: ignore[arg-type]
