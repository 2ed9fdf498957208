"""The recorder's event codec: a compiled line is byte for byte the event_json of the filled-in
event, and a decision's event has a stable key order."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.diagnostics import RESULT_CODES, EdgeLogRecord
from simulator.edge.eventcodec import EventTemplate, decision_event, event_json, json_string
from simulator.policy import Decision

FIELDS = ("time", "call_id", "method", "from", "to", "status")

TEMPLATE: dict[str, object] = {
    "time": "",
    "direction": "inbound",
    "call_id": "",
    "method": "",
    "from": "",
    "to": "",
    "domain": "acano.steven.lab",
    "rule": "srv-not-in-domain",
    "status": 504,
    "explanation": 'SRV "targets" \\ élan',
    "extra": {"cert_names": ["vcse.steven.lab"], "srv": None},
}

# Header text never holds NUL (the parser refuses it), so values avoid it too.
text = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=40)
VALUES = st.fixed_dictionaries(
    {
        "time": text,
        "call_id": text,
        "method": text,
        "from": text,
        "to": text,
        "status": st.integers(100, 699),
    }
)


@given(values=VALUES)
def test_render_equals_event_json_of_the_filled_event(values: dict[str, object]) -> None:
    compiled = EventTemplate(TEMPLATE, FIELDS)
    assert compiled.render(values) == event_json({**TEMPLATE, **values})


def test_a_field_the_event_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no field 'nope'"):
        EventTemplate(TEMPLATE, ("nope",))


@given(values=VALUES)
def test_render_encoded_equals_render(values: dict[str, object]) -> None:
    # The Edge's hot path encodes the values itself, in the template's field order.
    compiled = EventTemplate(TEMPLATE, FIELDS)
    assert compiled.fields == FIELDS
    encoded = [
        json_string(value) if isinstance(value, str) else str(value)
        for value in (values[name] for name in compiled.fields)
    ]
    assert compiled.render_encoded(encoded) == compiled.render(values)


def test_render_encoded_wants_one_value_per_field() -> None:
    with pytest.raises(ValueError, match="expected 6 encoded values, got 2"):
        EventTemplate(TEMPLATE, FIELDS).render_encoded(['"a"', "1"])


NO_SRV_MATCH_RECORD = EdgeLogRecord(
    result=RESULT_CODES["SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"],
    data=(("domain", "acano.steven.lab"), ("fqdn1", "vcse.steven.lab:5061")),
    fidelity="verbatim",
)


def test_decision_event_is_json_with_a_stable_key_order() -> None:
    decision = Decision(
        rule="srv-not-in-domain",
        accepted=False,
        status=504,
        reason="Server time-out",
        domain="acano.steven.lab",
        headers=(("Server", "RTC/6.0"),),
        edge_log=NO_SRV_MATCH_RECORD,
        fidelity="verbatim",
        explanation="x",
    )
    event = decision_event(
        decision,
        time="2017-03-02T07:10:46.230Z",
        direction="inbound",
        call_id="f1b3ad5d-183b-4632-b210-c2f9bec71960",
        method="INVITE",
        from_uri="sip:2000@acano.steven.lab",
        to_uri="sip:stejanss@skype.lab",
        peer="vcse.steven.lab:25002",
        extra={"srv": ["vcse.steven.lab:5061"]},
    )
    line = event_json(event)
    assert "\n" not in line
    assert json.loads(line) == event
    assert list(event)[:5] == ["time", "kind", "direction", "call_id", "method"]
    assert event["kind"] == "decision"
    assert event["ms_diagnostics"] is None
    assert event["edge_log"] == {
        "result_code": "0xc3e93d6f",
        "symbol": "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        "severity": "warning",
        "data": {"domain": "acano.steven.lab", "fqdn1": "vcse.steven.lab:5061"},
        "fidelity": "verbatim",
    }
    with pytest.raises(ValueError, match="JSON"):
        decision_event(
            decision,
            time="t",
            direction="inbound",
            call_id="c",
            method="INVITE",
            from_uri="f",
            to_uri="t",
            peer="p",
            extra={"bad": object()},
        )


def test_a_decision_event_labels_each_part_of_its_ms_diagnostics() -> None:
    from simulator.policy import EdgeSettings, SrvLookup, SrvTarget, outbound_after_srv

    settings = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
    srv = SrvLookup(
        name="_sipfederationtls._tcp.cms.steven.lab",
        outcome="ok",
        targets=(SrvTarget(target="vcse.sub.cms.steven.lab", port=5061),),
    )
    decision = outbound_after_srv("cms.steven.lab", srv, settings)
    assert isinstance(decision, Decision)
    event = decision_event(
        decision,
        time="t",
        direction="outbound",
        call_id="c",
        method="INVITE",
        from_uri="f",
        to_uri="t",
        peer="p",
        extra={},
    )
    assert event["ms_diagnostics_fidelity"] == {
        "reason": "wire",
        "parameters": "verbatim",
        "status": "verbatim",
    }
