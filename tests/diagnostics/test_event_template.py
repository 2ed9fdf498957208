"""A compiled event line is byte for byte the event_json of the filled-in event."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.diagnostics import EventTemplate, event_json, json_string

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
